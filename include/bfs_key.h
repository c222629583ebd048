/*
 * bfs_key.h - key safety and path -> key mapping (pure, no I/O).
 *
 * Rules (INTERFACE.md "File semantics"): a key that is empty, has an empty,
 * "." or ".." segment, contains "//", a control character (0x00-0x1f, 0x7f)
 * or invalid UTF-8, has a segment over 255 bytes, or is over 1024 bytes in
 * total (prefix included) is not a safe path: it is never shown nor
 * followed, and a path that would produce one is refused.
 */
#ifndef BFS_KEY_H
#define BFS_KEY_H

#include <stddef.h>

#define BFS_KEY_MAX 1024
#define BFS_NAME_MAX 255
#define BFS_BUCKET_NAME_MAX 63
#define BFS_CTX_ID_MAX 128

/* One path segment (no '/'): 0, BFS_ERR_INVAL or BFS_ERR_NAMETOOLONG. */
int bfs_key_segment_check(const char *seg, size_t len);

/*
 * A whole key.  allow_dir_marker: a single trailing '/' is accepted (the
 * "a/b/" folder marker).  Returns 0, BFS_ERR_INVAL or BFS_ERR_NAMETOOLONG.
 */
int bfs_key_check(const char *key, int allow_dir_marker);

/*
 * Builds prefix + relpath into a new string (*out, caller frees; NULL on
 * failure).  relpath has no leading '/' ("" is the bucket root and gives
 * just the prefix).  dir != 0 appends '/' (folder marker / listing prefix).
 * The result (without prefix for "" relpath) is checked with bfs_key_check.
 */
int bfs_key_from_path(const char *prefix, const char *relpath, int dir, char **out);

/*
 * Remote key -> name relative to the listed prefix: validates that key
 * starts with prefix and that the rest is a safe key.  Returns a pointer
 * into key, or NULL when the key must be hidden.
 */
const char *bfs_key_strip_prefix(const char *prefix, const char *key);

/* [a-z0-9][a-z0-9._-]{0,62}: 1 when valid. */
int bfs_bucket_name_valid(const char *name);
/* [A-Za-z0-9_-]{1,128}: 1 when valid. */
int bfs_ctx_id_valid(const char *id);

/*
 * 1 when s[0..len) is well-formed UTF-8: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF, no truncated sequence.  Control
 * characters are valid UTF-8; callers reject them separately.
 */
int bfs_utf8_valid(const char *s, size_t len);

/* Content type from the file name's extension; never NULL. */
const char *bfs_content_type(const char *name);

#endif
