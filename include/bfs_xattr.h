/*
 * bfs_xattr.h - user extended attributes as s3fs `-o use_xattr` stores
 * them: one x-amz-meta-xattr value holding every attribute of the object.
 *
 * The value is a JSON object of name -> base64(value), names sorted
 * (s3fs keeps them in a std::map), no spaces:
 *     {"user.a":"dmFsdWU=","user.b":""}
 * URL-encoded as s3fs's urlEncodePath: A-Z a-z 0-9 - . _ ~ / stay, every
 * other byte becomes %XX (upper-case hex).  Reading follows s3fs's
 * parse_xattrs: URL-decode, take what lies between the first '{' and the
 * last '}', split on ',', each pair on its first ':', strip the quotes,
 * base64-decode; a pair that does not parse is skipped.  A set with no
 * attribute is stored as no header at all (s3fs removes it too).
 *
 * Pure code: no I/O, unit-tested with vectors taken from s3fs 1.90.
 */
#ifndef BFS_XATTR_H
#define BFS_XATTR_H

#include <stddef.h>

#include "bfs_buf.h"

struct bfs_xattr {
	char *name;              /* "user.x" */
	unsigned char *value;    /* len bytes (may hold NULs); never NULL */
	size_t len;
};

/* A set, sorted by name (strcmp), names unique.  Zero it to start. */
struct bfs_xattrs {
	struct bfs_xattr *v;
	size_t n, cap;
};

void bfs_xattrs_free(struct bfs_xattrs *x);
/*
 * Decodes an x-amz-meta-xattr value (NULL or "" -> empty set) into x
 * (freed first).  Malformed pairs are skipped as s3fs does; 0, or
 * BFS_ERR_NOMEM (x then empty).
 */
int bfs_xattrs_decode(const char *enc, struct bfs_xattrs *x);
/* Encodes x into out (reset first): "" for an empty set.  0 or
 * BFS_ERR_NOMEM / BFS_ERR_TOOBIG (out's cap). */
int bfs_xattrs_encode(const struct bfs_xattrs *x, struct bfs_buf *out);
/* The attribute called name, or NULL. */
const struct bfs_xattr *bfs_xattrs_find(const struct bfs_xattrs *x,
					const char *name);
/* Adds or replaces name (copies both).  0 or BFS_ERR_NOMEM. */
int bfs_xattrs_set(struct bfs_xattrs *x, const char *name, const void *value,
		   size_t len);
/* Removes name: 0, or BFS_ERR_NOTFOUND when absent. */
int bfs_xattrs_del(struct bfs_xattrs *x, const char *name);
/*
 * 1 when name can be stored so that s3fs reads it back: non-empty, at
 * most 255 bytes, none of '"' ',' ':' '{' '}' '\\' and no control byte
 * (s3fs's parser splits on them); else 0.
 */
int bfs_xattr_name_ok(const char *name);

#endif
