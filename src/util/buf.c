/*
 * buf.c - capped growable buffer (see bfs_buf.h).  Growth doubles; an add
 * that would pass the cap frees the buffer and fails with BFS_ERR_TOOBIG.
 * bfs_hex_encode() is the one bytes -> lower-case hex encoder and
 * bfs_hex_decode() the one decoder.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_buf.h"
#include "bfs_error.h"

void bfs_buf_init(struct bfs_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void bfs_buf_free(struct bfs_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->alloc = 0;
}

void bfs_buf_reset(struct bfs_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

static int buf_grow(struct bfs_buf *b, size_t extra)
{
	size_t need, na;
	char *np;

	if (extra > b->max || b->len > b->max - extra) {
		bfs_buf_free(b);
		return BFS_ERR_TOOBIG;
	}
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	na = b->alloc ? b->alloc : 64;
	while (na < need)
		na *= 2;
	np = realloc(b->p, na);
	if (!np) {
		bfs_buf_free(b);
		return BFS_ERR_NOMEM;
	}
	b->p = np;
	b->alloc = na;
	return 0;
}

int bfs_buf_add(struct bfs_buf *b, const void *data, size_t len)
{
	int r = buf_grow(b, len);

	if (r)
		return r;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int bfs_buf_adds(struct bfs_buf *b, const char *s)
{
	return bfs_buf_add(b, s, strlen(s));
}

int bfs_buf_addf(struct bfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return BFS_ERR_INVAL;
	r = buf_grow(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int bfs_buf_add_json_str(struct bfs_buf *b, const char *s)
{
	int r = bfs_buf_add(b, "\"", 1);

	for (; r == 0 && s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			r = bfs_buf_addf(b, "\\%c", c);
		else if (c == '\n')
			r = bfs_buf_adds(b, "\\n");
		else if (c == '\t')
			r = bfs_buf_adds(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			r = bfs_buf_addf(b, "\\u%04x", c);
		else
			r = bfs_buf_add(b, s, 1);
	}
	if (r == 0)
		r = bfs_buf_add(b, "\"", 1);
	return r;
}

const char *bfs_buf_str(const struct bfs_buf *b)
{
	return b->p ? b->p : "";
}

char *bfs_buf_steal(struct bfs_buf *b)
{
	char *p = b->p;

	if (!p)
		p = calloc(1, 1);
	b->p = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void bfs_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int bfs_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int bfs_hex_decode(const char *in, size_t n, unsigned char *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = bfs_hex_value((unsigned char)in[2 * i]);
		if (hi < 0)
			return -1;
		lo = bfs_hex_value((unsigned char)in[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}
