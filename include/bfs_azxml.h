/*
 * bfs_azxml.h - Azure Blob service response bodies (pure, expat): List
 * Blobs pages (EnumerationResults) and Get Block List (BlockList).
 *
 * A page is parsed in one pass; each <Blob> and <BlobPrefix> is handed to
 * the callback when its element closes, with the few metadata values
 * bucketfs reads (mode, uid, gid, mtime, hdi_isfolder) as text.  Names
 * sent with Encoded="true" are percent-decoded.  DOCTYPE and entity
 * declarations abort the parse, as in s3xml.c.
 */
#ifndef BFS_AZXML_H
#define BFS_AZXML_H

#include <stddef.h>
#include <stdint.h>

#define BFS_AZXML_STOPPED 1      /* a callback asked to stop */

struct bfs_azxml_blob {
	const char *name;        /* full blob name (BlobPrefix: ends in '/') */
	int is_prefix;
	uint64_t size;
	int64_t mtime;           /* Last-Modified, epoch seconds; 0 unknown */
	const char *etag;        /* without quotes; "" unknown */
	const char *content_type;
	/* x-ms-meta-* values; NULL when absent */
	const char *meta_mode, *meta_uid, *meta_gid, *meta_mtime;
	int is_folder;           /* metadata hdi_isfolder = true */
};

/* 0 goes on, BFS_AZXML_STOPPED stops, < 0 fails with that error. */
typedef int (*bfs_azxml_blob_fn)(void *arg, const struct bfs_azxml_blob *b);

/*
 * Parses one List Blobs page.  *next_marker (caller frees) is the
 * NextMarker, NULL when the listing is complete.  Returns 0,
 * BFS_AZXML_STOPPED, a callback's error, BFS_ERR_PROTOCOL (malformed) or
 * BFS_ERR_NOMEM.
 */
int bfs_azxml_parse_list(const char *xml, size_t len, bfs_azxml_blob_fn fn,
			 void *arg, char **next_marker);

struct bfs_azxml_block {
	const char *name;        /* the base64 block id as listed */
	uint64_t size;
	int committed;
};

typedef int (*bfs_azxml_block_fn)(void *arg, const struct bfs_azxml_block *b);

/* Parses a Get Block List body; same returns as bfs_azxml_parse_list. */
int bfs_azxml_parse_blocks(const char *xml, size_t len, bfs_azxml_block_fn fn,
			   void *arg);

#endif
