/*
 * xattr_codec.c - s3fs's x-amz-meta-xattr encoding of user xattrs
 * (bfs_xattr.h has the format).  A set is a sorted array; lookups are
 * binary searches, changes memmove (sets are small: the whole encoded
 * value must fit S3's 2 KB of user metadata).
 */
#include <stdlib.h>
#include <string.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_xattr.h"

#define XATTR_NAME_MAX 255

static const char b64_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void bfs_xattrs_free(struct bfs_xattrs *x)
{
	size_t i;

	if (!x)
		return;
	for (i = 0; i < x->n; i++) {
		free(x->v[i].name);
		free(x->v[i].value);
	}
	free(x->v);
	memset(x, 0, sizeof(*x));
}

/* Index of name, or -(insertion point) - 1. */
static long xattrs_search(const struct bfs_xattrs *x, const char *name)
{
	size_t lo = 0, hi = x->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(x->v[mid].name, name);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

const struct bfs_xattr *bfs_xattrs_find(const struct bfs_xattrs *x,
					const char *name)
{
	long i = xattrs_search(x, name);

	return i >= 0 ? &x->v[i] : NULL;
}

/* Takes ownership of name and value (freed on failure). */
static int xattrs_put(struct bfs_xattrs *x, char *name, unsigned char *value,
		      size_t len)
{
	long i = xattrs_search(x, name);
	size_t at;

	if (i >= 0) {
		free(x->v[i].value);
		free(name);
		x->v[i].value = value;
		x->v[i].len = len;
		return 0;
	}
	at = (size_t)(-i - 1);
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 8;
		struct bfs_xattr *nv = realloc(x->v, nc * sizeof(*nv));

		if (!nv) {
			free(name);
			free(value);
			return BFS_ERR_NOMEM;
		}
		x->v = nv;
		x->cap = nc;
	}
	memmove(&x->v[at + 1], &x->v[at], (x->n - at) * sizeof(*x->v));
	x->v[at].name = name;
	x->v[at].value = value;
	x->v[at].len = len;
	x->n++;
	return 0;
}

int bfs_xattrs_set(struct bfs_xattrs *x, const char *name, const void *value,
		   size_t len)
{
	char *n = strdup(name);
	unsigned char *v = malloc(len ? len : 1);

	if (!n || !v) {
		free(n);
		free(v);
		return BFS_ERR_NOMEM;
	}
	if (len)
		memcpy(v, value, len);
	return xattrs_put(x, n, v, len);
}

int bfs_xattrs_del(struct bfs_xattrs *x, const char *name)
{
	long i = xattrs_search(x, name);

	if (i < 0)
		return BFS_ERR_NOTFOUND;
	free(x->v[i].name);
	free(x->v[i].value);
	memmove(&x->v[i], &x->v[i + 1], (x->n - (size_t)i - 1) * sizeof(*x->v));
	x->n--;
	return 0;
}

int bfs_xattr_name_ok(const char *name)
{
	const unsigned char *p;

	if (!name || !name[0] || strlen(name) > XATTR_NAME_MAX)
		return 0;
	for (p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || strchr("\",:{}\\", *p))
			return 0;
	return 1;
}

/* ---- encoding ---- */

/* s3fs urlEncodePath: unreserved bytes and '/' stay, others %XX. */
static int url_encode_add(struct bfs_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == '/') {
			r = bfs_buf_add(out, &s[i], 1);
		} else {
			e[0] = '%';
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			r = bfs_buf_add(out, e, 3);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Standard base64 with '=' padding into raw (not yet URL-encoded). */
static int b64_add(struct bfs_buf *raw, const unsigned char *v, size_t n)
{
	size_t i;
	char q[4];
	int r;

	for (i = 0; i + 2 < n; i += 3) {
		q[0] = b64_alpha[v[i] >> 2];
		q[1] = b64_alpha[((v[i] & 3) << 4) | (v[i + 1] >> 4)];
		q[2] = b64_alpha[((v[i + 1] & 15) << 2) | (v[i + 2] >> 6)];
		q[3] = b64_alpha[v[i + 2] & 63];
		if ((r = bfs_buf_add(raw, q, 4)) < 0)
			return r;
	}
	if (i < n) {
		q[0] = b64_alpha[v[i] >> 2];
		if (i + 1 < n) {
			q[1] = b64_alpha[((v[i] & 3) << 4) | (v[i + 1] >> 4)];
			q[2] = b64_alpha[(v[i + 1] & 15) << 2];
		} else {
			q[1] = b64_alpha[(v[i] & 3) << 4];
			q[2] = '=';
		}
		q[3] = '=';
		if ((r = bfs_buf_add(raw, q, 4)) < 0)
			return r;
	}
	return 0;
}

int bfs_xattrs_encode(const struct bfs_xattrs *x, struct bfs_buf *out)
{
	struct bfs_buf raw;
	size_t i;
	int r = 0;

	bfs_buf_reset(out);
	if (!x || x->n == 0)
		return 0;
	/* the JSON is never longer than its encoding: same cap */
	bfs_buf_init(&raw, out->max);
	for (i = 0; i < x->n && r == 0; i++) {
		if ((r = bfs_buf_add(&raw, i ? ",\"" : "{\"", 2)) < 0 ||
		    (r = bfs_buf_adds(&raw, x->v[i].name)) < 0 ||
		    (r = bfs_buf_add(&raw, "\":\"", 3)) < 0 ||
		    (r = b64_add(&raw, x->v[i].value, x->v[i].len)) < 0 ||
		    (r = bfs_buf_add(&raw, "\"", 1)) < 0)
			break;
	}
	if (r == 0 && (r = bfs_buf_add(&raw, "}", 1)) == 0)
		r = url_encode_add(out, raw.p, raw.len);
	bfs_buf_free(&raw);
	return r < 0 ? r : 0;
}

/* ---- decoding ---- */

static int b64_value(int c)
{
	const char *p;

	if (!c)
		return -1;
	p = strchr(b64_alpha, c);
	return p ? (int)(p - b64_alpha) : -1;
}

/* Decodes s[n] (padding optional) into *out (malloc'd, *len).  0, 1 when
 * s is not base64, BFS_ERR_NOMEM. */
static int b64_decode(const char *s, size_t n, unsigned char **out,
		      size_t *len)
{
	unsigned char *d;
	unsigned acc = 0;
	size_t i, k = 0;
	int bits = 0, v;

	while (n && s[n - 1] == '=')
		n--;
	if (!(d = malloc(n / 4 * 3 + 3)))
		return BFS_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		if ((v = b64_value((unsigned char)s[i])) < 0) {
			free(d);
			return 1;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[k++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out = d;
	*len = k;
	return 0;
}

/* s3fs takeout_str_dquart: the text between the first and last '"'
 * (none: all of it); a '"' left inside fails. */
static int unquote(const char **s, size_t *n)
{
	const char *q = memchr(*s, '"', *n), *e;

	if (!q)
		return 0;
	*n -= (size_t)(q + 1 - *s);
	*s = q + 1;
	if (!(e = memrchr(*s, '"', *n)))
		return -1;
	*n = (size_t)(e - *s);
	return memchr(*s, '"', *n) ? -1 : 0;
}

/* One "name":"b64" pair of p[n]: added to x, skipped when malformed. */
static int decode_pair(struct bfs_xattrs *x, const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n), *k, *v;
	size_t kn, vn, len = 0;
	unsigned char *val = NULL;
	char *name;
	int r;

	if (!colon)
		return 0;
	k = p;
	kn = (size_t)(colon - p);
	v = colon + 1;
	vn = n - kn - 1;
	if (unquote(&k, &kn) < 0 || unquote(&v, &vn) < 0 || kn == 0 ||
	    memchr(k, '\0', kn))
		return 0;
	if ((r = b64_decode(v, vn, &val, &len)) != 0)
		return r == 1 ? 0 : r;
	if (!(name = strndup(k, kn))) {
		free(val);
		return BFS_ERR_NOMEM;
	}
	return xattrs_put(x, name, val, len);
}

int bfs_xattrs_decode(const char *enc, struct bfs_xattrs *x)
{
	char *json = NULL, *o = NULL, *open, *close, *p, *end;
	size_t i, n;
	int r = 0, hi, lo;

	bfs_xattrs_free(x);
	if (!enc || !enc[0])
		return 0;
	n = strlen(enc);
	if (!(json = malloc(n + 1)))
		return BFS_ERR_NOMEM;
	/* s3fs urlDecode: %XX (either case); anything else as is */
	for (i = 0, o = json; i < n; i++) {
		if (enc[i] == '%' && i + 2 < n &&
		    (hi = bfs_hex_value((unsigned char)enc[i + 1])) >= 0 &&
		    (lo = bfs_hex_value((unsigned char)enc[i + 2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = enc[i];
		}
	}
	*o = '\0';
	end = o;
	open = memchr(json, '{', (size_t)(end - json));
	close = open ? memrchr(json, '}', (size_t)(end - json)) : NULL;
	if (!open || !close || close <= open)
		goto out;
	for (p = open + 1; p < close && r == 0;) {
		char *comma = memchr(p, ',', (size_t)(close - p));
		char *pe = comma ? comma : close;

		r = decode_pair(x, p, (size_t)(pe - p));
		p = pe + 1;
	}
out:
	free(json);
	if (r != 0)
		bfs_xattrs_free(x);
	return r;
}
