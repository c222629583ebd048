/*
 * fuzz_config.c - libFuzzer target for the ini config parser
 * (src/util/config.c): any text must give either a config or an error
 * message naming the file, without a sanitizer report or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_config.h"
#include "bfs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fname[] = "/nonexistent-bfs-fuzz/bucketfs.conf";
	struct bfs_config *c = NULL;
	struct bfs_bucket_conf copy;
	char *text = malloc(size + 1), err[512];
	uint64_t sz;
	size_t i;
	int r;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)bfs_parse_size(text, &sz);
	r = bfs_config_parse(text, fname, &c, err, sizeof(err));
	if (r == 0) {
		if (!c || !c->database || !c->cache_dir || !c->master_key_file)
			abort();
		for (i = 0; i < c->nbuckets; i++) {
			/* What the parser accepted, validate accepts too. */
			if (bfs_bucket_conf_validate(&c->buckets[i], err, sizeof(err)))
				abort();
			if (bfs_bucket_conf_copy(&copy, &c->buckets[i]) == 0)
				bfs_bucket_conf_clear(&copy);
		}
		bfs_config_free(c);
	} else {
		if (c || strncmp(err, fname, sizeof(fname) - 1) != 0)
			abort();
	}
	free(text);
	return 0;
}
