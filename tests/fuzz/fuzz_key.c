/*
 * fuzz_key.c - libFuzzer target for the key rules (src/util/key.c).
 *
 * The input is split at its first 0x00 byte into a prefix and a relative
 * path.  Every function must return without a sanitizer report, and the
 * rules must agree with each other: a key built by bfs_key_from_path()
 * passes bfs_key_check() and bfs_key_strip_prefix() gives the path back;
 * a valid segment is valid UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *prefix, *rel, *key = NULL;
	const char *back;
	size_t plen;
	int dir;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	(void)bfs_utf8_valid(buf, size);
	if (bfs_key_segment_check(buf, size) == 0 && !bfs_utf8_valid(buf, size))
		abort();
	(void)bfs_key_check(buf, 0);
	(void)bfs_key_check(buf, 1);
	(void)bfs_bucket_name_valid(buf);
	(void)bfs_ctx_id_valid(buf);
	if (!bfs_content_type(buf))
		abort();

	/* "prefix\0relpath": the prefix of a real bucket is "" or "x/". */
	plen = strlen(buf);
	prefix = buf;
	rel = plen < size ? buf + plen + 1 : buf + size;
	dir = size > 0 && (data[0] & 1);
	if (prefix[0] && (prefix[plen - 1] != '/' || bfs_key_check(prefix, 1)))
		prefix = (char *)"";
	(void)bfs_key_strip_prefix(prefix, rel);
	if (bfs_key_from_path(prefix, rel, dir, &key) == 0) {
		if (rel[0]) {
			if (bfs_key_check(key, dir) != 0)
				abort();
			back = bfs_key_strip_prefix(prefix, key);
			if (!back || strncmp(back, rel, strlen(rel)) != 0)
				abort();
		} else if (strcmp(key, prefix) != 0) {
			abort();
		}
		free(key);
	} else if (key) {
		abort();
	}
	free(buf);
	return 0;
}
