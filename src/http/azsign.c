/*
 * azsign.c - Azure Storage Shared Key signatures and read-only service
 * SAS tokens (see bfs_azsign.h for the rules).  Pure: the request and the
 * clock come in, strings go out; the key is only used inside HMAC and
 * every buffer that held derived material is wiped.
 *
 * Shared Key: the verb, eleven standard header values, the sorted x-ms-*
 * headers and the canonicalized resource, joined as Microsoft's
 * "Authorize with Shared Key" page specifies, HMAC-SHA256 under the
 * decoded account key, base64.  SAS: the 2020-12-06 string to sign of a
 * service SAS (sp, st, se, /blob/ACCOUNT/CONTAINER/BLOB, si, sip, spr,
 * sv, sr, snapshot time, ses, rscc, rscd, rsce, rscl, rsct).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bfs_azsign.h"
#include "bfs_error.h"

#define AZ_MAX_HDRS 64
#define AZ_MAX_QUERY 32

/* The standard headers in string-to-sign order (after the verb). */
static const char *const az_std_headers[] = {
	"content-encoding", "content-language", "content-length",
	"content-md5", "content-type", "date", "if-modified-since",
	"if-match", "if-none-match", "if-unmodified-since", "range"
};

static const char *az_trim(const char *s, size_t *len)
{
	size_t n;

	if (!s)
		s = "";
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*len = n;
	return s;
}

/* Value of header name among r's headers, trimmed; NULL when absent. */
static const char *az_header(const struct bfs_azsign_req *r, const char *name,
			     size_t *len)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (r->headers[i].name && !strcasecmp(r->headers[i].name, name))
			return az_trim(r->headers[i].value, len);
	return NULL;
}

static int az_cmp_ci(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = (unsigned char)*a, cb = (unsigned char)*b;

		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb || !ca)
			return ca - cb;
	}
}

/* Appends s lowercased. */
static int az_add_lower(struct bfs_buf *b, const char *s)
{
	char c;
	int r;

	for (; *s; s++) {
		c = *s;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if ((r = bfs_buf_add(b, &c, 1)) < 0)
			return r;
	}
	return 0;
}

/* Insertion sort of pointers to kv by case-insensitive name (few items). */
static void az_sort(const struct bfs_sigv4_kv **v, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		const struct bfs_sigv4_kv *t = v[i];

		for (j = i; j > 0 && az_cmp_ci(v[j - 1]->name, t->name) > 0; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
}

int bfs_azsign_string(const struct bfs_azsign_req *r, struct bfs_buf *out)
{
	const struct bfs_sigv4_kv *xs[AZ_MAX_HDRS], *qs[AZ_MAX_QUERY];
	const char *v;
	size_t i, j, n, nx = 0, nq = 0;
	int rc;

	if (!r || !r->method || !r->account || !*r->account || !r->path ||
	    r->path[0] != '/')
		return BFS_ERR_INVAL;
	bfs_buf_reset(out);
	if ((rc = bfs_buf_adds(out, r->method)) < 0 ||
	    (rc = bfs_buf_adds(out, "\n")) < 0)
		return rc;
	for (i = 0; i < sizeof(az_std_headers) / sizeof(az_std_headers[0]); i++) {
		v = az_header(r, az_std_headers[i], &n);
		/* from 2015-02-21 a zero Content-Length is signed as "" */
		if (v && i == 2 && n == 1 && v[0] == '0')
			n = 0;
		if ((v && (rc = bfs_buf_add(out, v, n)) < 0) ||
		    (rc = bfs_buf_adds(out, "\n")) < 0)
			return rc;
	}
	/* canonicalized headers: x-ms-*, lowercased, sorted */
	for (i = 0; i < r->nheaders; i++) {
		if (!r->headers[i].name ||
		    strncasecmp(r->headers[i].name, "x-ms-", 5))
			continue;
		if (nx == AZ_MAX_HDRS)
			return BFS_ERR_TOOBIG;
		xs[nx++] = &r->headers[i];
	}
	az_sort(xs, nx);
	for (i = 0; i < nx; i++) {
		v = az_trim(xs[i]->value, &n);
		if ((rc = az_add_lower(out, xs[i]->name)) < 0 ||
		    (rc = bfs_buf_adds(out, ":")) < 0 ||
		    (rc = bfs_buf_add(out, v, n)) < 0 ||
		    (rc = bfs_buf_adds(out, "\n")) < 0)
			return rc;
	}
	/* canonicalized resource */
	if ((rc = bfs_buf_addf(out, "/%s%s", r->account, r->path)) < 0)
		return rc;
	for (i = 0; i < r->nquery; i++) {
		if (nq == AZ_MAX_QUERY)
			return BFS_ERR_TOOBIG;
		qs[nq++] = &r->query[i];
	}
	az_sort(qs, nq);
	for (i = 0; i < nq; i = j) {
		if ((rc = bfs_buf_adds(out, "\n")) < 0 ||
		    (rc = az_add_lower(out, qs[i]->name)) < 0 ||
		    (rc = bfs_buf_adds(out, ":")) < 0)
			return rc;
		for (j = i; j < nq && !az_cmp_ci(qs[j]->name, qs[i]->name); j++)
			if ((j > i && (rc = bfs_buf_adds(out, ",")) < 0) ||
			    (rc = bfs_buf_adds(out, qs[j]->value ? qs[j]->value
						       : "")) < 0)
				return rc;
	}
	return 0;
}

int bfs_azsign_key_decode(const char *b64, unsigned char *key, size_t *len)
{
	unsigned char tmp[BFS_AZ_KEY_MAX + 3];
	size_t n, pad = 0, i;
	int got;

	*len = 0;
	if (!b64)
		return BFS_ERR_INVAL;
	n = strlen(b64);
	if (n == 0 || n % 4 || n / 4 * 3 > sizeof(tmp))
		return BFS_ERR_INVAL;
	for (i = 0; i < n; i++) {
		char c = b64[i];

		if (c == '=') {
			if (i < n - 2)
				return BFS_ERR_INVAL;
			pad++;
		} else if (pad || !((c >= 'A' && c <= 'Z') ||
				    (c >= 'a' && c <= 'z') ||
				    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return BFS_ERR_INVAL;
		}
	}
	got = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad || (size_t)got - pad > BFS_AZ_KEY_MAX ||
	    (size_t)got == pad) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return BFS_ERR_INVAL;
	}
	*len = (size_t)got - pad;
	memcpy(key, tmp, *len);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

/* base64(HMAC-SHA256(key, data)) into out (at least 45 bytes). */
static int az_hmac_b64(const unsigned char *key, size_t keylen,
		       const void *data, size_t len, char out[45])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, mac, &maclen) ||
	    maclen != 32) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return BFS_ERR_CRYPTO;
	}
	EVP_EncodeBlock((unsigned char *)out, mac, 32);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int bfs_azsign_sign(const struct bfs_azsign_req *r, const unsigned char *key,
		    size_t keylen, char *auth, size_t authlen,
		    struct bfs_buf *sts)
{
	struct bfs_buf own;
	struct bfs_buf *b = sts;
	char sig[45];
	int rc, n;

	if (auth && authlen)
		auth[0] = '\0';
	if (!key || !keylen || !auth)
		return BFS_ERR_INVAL;
	if (!b) {
		bfs_buf_init(&own, 256 * 1024);
		b = &own;
	}
	if ((rc = bfs_azsign_string(r, b)) < 0)
		goto out;
	if ((rc = az_hmac_b64(key, keylen, b->p ? b->p : "", b->len, sig)) < 0)
		goto out;
	n = snprintf(auth, authlen, "SharedKey %s:%s", r->account, sig);
	rc = n < 0 || (size_t)n >= authlen ? BFS_ERR_TOOBIG : 0;
	if (rc < 0)
		auth[0] = '\0';
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	if (b == &own)
		bfs_buf_free(&own);
	return rc;
}

void bfs_azsign_date(time_t t, char out[32])
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	/* not strftime: %a/%b follow the locale */
	snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int bfs_azsign_sas(const char *account, const char *container,
		   const char *blob, const unsigned char *key, size_t keylen,
		   time_t now, long expires, struct bfs_buf *out)
{
	struct bfs_buf sts;
	struct tm tm;
	time_t exp;
	char se[64], sig[45];
	int rc;

	if (!account || !*account || !container || !*container || !blob ||
	    !*blob || !key || !keylen || expires < 1 || expires > BFS_AZ_SAS_MAX)
		return BFS_ERR_INVAL;
	exp = now + expires;
	gmtime_r(&exp, &tm);
	snprintf(se, sizeof(se), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
	bfs_buf_init(&sts, 64 * 1024);
	bfs_buf_reset(out);
	/* sp st se resource si sip spr sv sr snapshot ses rscc rscd rsce
	 * rscl rsct */
	if ((rc = bfs_buf_addf(&sts, "r\n\n%s\n/blob/%s/%s/%s\n\n\n\n%s\nb\n\n\n"
			       "\n\n\n\n", se, account, container, blob,
			       BFS_AZ_VERSION)) < 0)
		goto out;
	if ((rc = az_hmac_b64(key, keylen, sts.p, sts.len, sig)) < 0)
		goto out;
	if ((rc = bfs_buf_addf(out, "sv=%s&se=", BFS_AZ_VERSION)) < 0 ||
	    (rc = bfs_sigv4_uri_encode(se, 0, out)) < 0 ||
	    (rc = bfs_buf_adds(out, "&sr=b&sp=r&sig=")) < 0 ||
	    (rc = bfs_sigv4_uri_encode(sig, 0, out)) < 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	bfs_buf_free(&sts);
	return rc;
}
