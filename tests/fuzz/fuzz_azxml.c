/*
 * fuzz_azxml.c - libFuzzer target for the Azure Blob XML parsers (List
 * Blobs pages and Get Block List bodies, src/http/azxml.c).
 *
 * The input goes whole to both parsers.  Every string a callback sees
 * must be NUL-terminated; the NextMarker is freed; the parsers must never
 * crash, leak or read out of bounds whatever the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_azxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_blob(void *arg, const struct bfs_azxml_blob *b)
{
	size_t *n = arg;

	*n += strlen(b->name) + strlen(b->etag) + strlen(b->content_type) +
	      (b->meta_mode ? strlen(b->meta_mode) : 0) +
	      (b->meta_mtime ? strlen(b->meta_mtime) : 0);
	return 0;
}

static int on_block(void *arg, const struct bfs_azxml_block *b)
{
	size_t *n = arg;

	*n += strlen(b->name) + (size_t)b->size;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t seen = 0;
	char *next = NULL;

	bfs_azxml_parse_list((const char *)data, size, on_blob, &seen, &next);
	free(next);
	bfs_azxml_parse_blocks((const char *)data, size, on_block, &seen);
	return 0;
}
