/*
 * bfs_buf.h - growable byte buffer with a hard cap (curl DYNBUF style).
 *
 * The buffer is always NUL-terminated after its content.  Every add fails
 * with BFS_ERR_TOOBIG once len would exceed max, and the buffer is then
 * freed (callers cannot keep using a half-built value by accident).
 */
#ifndef BFS_BUF_H
#define BFS_BUF_H

#include <stddef.h>

struct bfs_buf {
	char *p;       /* content, NUL-terminated; NULL while empty */
	size_t len;    /* bytes of content */
	size_t alloc;  /* bytes allocated */
	size_t max;    /* cap on len */
};

void bfs_buf_init(struct bfs_buf *b, size_t max);
/* Frees the memory; safe on an initialized or zeroed buffer. */
void bfs_buf_free(struct bfs_buf *b);
/* Keeps memory, empties content. */
void bfs_buf_reset(struct bfs_buf *b);
int bfs_buf_add(struct bfs_buf *b, const void *data, size_t len);
int bfs_buf_adds(struct bfs_buf *b, const char *s);
int bfs_buf_addf(struct bfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Adds s as a JSON string literal, quotes included, escaping as needed. */
int bfs_buf_add_json_str(struct bfs_buf *b, const char *s);
/* Returns the content ("" when empty); valid until the next change. */
const char *bfs_buf_str(const struct bfs_buf *b);
/* Hands the content to the caller (who frees it); buffer becomes empty. */
char *bfs_buf_steal(struct bfs_buf *b);

/*
 * Lower-case hex of n bytes of in: writes 2 * n digits and a NUL, so out
 * must hold 2 * n + 1 bytes.  (Not a bfs_buf operation; it lives here as
 * the one fixed-size encoder shared by crypto, signing and providers.)
 */
void bfs_hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1 for any other char. */
int bfs_hex_value(int c);
/*
 * Decodes exactly 2 * n hex digits (either case) of in into n bytes of
 * out.  0, or -1 at the first non-digit (out then holds a partial value:
 * callers decoding secrets wipe it).
 */
int bfs_hex_decode(const char *in, size_t n, unsigned char *out);

#endif
