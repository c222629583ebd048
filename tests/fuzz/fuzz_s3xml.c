/*
 * fuzz_s3xml.c - libFuzzer target for the S3 XML parsers.
 *
 * The input is fed to the streaming listing parser in two chunks (split at
 * a point taken from the first byte, so chunk boundaries are fuzzed too),
 * with and without url-decoding, and whole to the small-reply parser.
 * Every key reaching a callback must be a NUL-terminated string; the
 * parsers must never crash, leak or read out of bounds whatever the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bfs_s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_object(void *arg, const struct bfs_s3xml_object *o)
{
	size_t *n = arg;

	*n += strlen(o->key) + strlen(o->etag);
	return 0;
}

static int on_prefix(void *arg, const char *prefix)
{
	size_t *n = arg;

	*n += strlen(prefix);
	return 0;
}

static int on_upload(void *arg, const struct bfs_s3xml_upload *u)
{
	size_t *n = arg;

	*n += strlen(u->key) + strlen(u->upload_id);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t seen = 0;
	struct bfs_s3xml_list_cb cb = { on_object, on_prefix, on_upload, &seen, NULL };
	struct bfs_s3xml_reply reply;
	const char *xml = (const char *)data;
	size_t split = size ? data[0] % (size + 1) : 0;
	int decoded;

	for (decoded = 0; decoded <= 1; decoded++) {
		struct bfs_s3xml_page page;
		struct bfs_s3xml_list *p = bfs_s3xml_list_new(&cb, decoded, 1 << 20);
		int r;

		if (!p)
			return 0;
		memset(&page, 0, sizeof(page));
		r = bfs_s3xml_list_feed(p, xml, split);
		if (r == 0)
			r = bfs_s3xml_list_feed(p, xml + split, size - split);
		if (r == 0)
			bfs_s3xml_list_finish(p, &page);
		bfs_s3xml_page_clear(&page);
		bfs_s3xml_list_free(p);
	}
	bfs_s3xml_parse_reply(xml, size, &reply);
	return 0;
}
