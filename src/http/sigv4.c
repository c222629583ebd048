/*
 * sigv4.c - AWS Signature Version 4, pure (see bfs_sigv4.h).
 *
 * How it works: the canonical request is built in a capped buffer from
 * the method, the already-encoded URI, the query (each name and value
 * encoded, sorted by encoded name then value), the canonical headers
 * (lowercased names sorted, values trimmed with space runs collapsed,
 * repeated names joined by ','), the signed header list and the payload
 * hash.  The string to sign hashes it; the signing key is derived by the
 * HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request".
 * Every intermediate key is wiped with OPENSSL_cleanse.  Nothing here
 * reads the clock: req->now is the time.
 *
 * The derived key depends only on (secret, day, region, service), so the
 * last few are kept in a small process-wide table (key_cache, under
 * key_cache_mu): a request then costs one HMAC instead of five (the chain
 * was about 60% of signing, signing about 12% of the daemon's CPU per
 * HEAD).  The table holds copies of the secrets it serves; a replaced
 * entry is wiped; secrets longer than KEY_CACHE_SECRET_MAX are not kept.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_sigv4.h"

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_QUERY 64
#define SIGV4_CREQ_MAX (64 * 1024)

/* One canonical header: lowercased name, normalized value, input order. */
struct canon_hdr {
	char *name;
	char *value;
	size_t order;
};

/* One canonical query parameter, both parts already encoded. */
struct canon_q {
	char *name;
	char *value;
};

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int bfs_sigv4_uri_encode(const char *s, int keep_slash, struct bfs_buf *out)
{
	static const char hexd[] = "0123456789ABCDEF";
	const unsigned char *p;
	char esc[3];
	int r;

	for (p = (const unsigned char *)s; *p; p++) {
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			r = bfs_buf_add(out, p, 1);
		} else {
			esc[0] = '%';
			esc[1] = hexd[*p >> 4];
			esc[2] = hexd[*p & 15];
			r = bfs_buf_add(out, esc, 3);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int bfs_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return BFS_ERR_CRYPTO;
	bfs_hex_encode(md, 32, hex);
	return 0;
}

int bfs_sigv4_sha256_fd(int fd, uint64_t off, uint64_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	char *buf = NULL;
	size_t chunk = 256 * 1024;
	ssize_t n;
	int r = BFS_ERR_NOMEM;

	if (!(buf = malloc(chunk)) || !(ctx = EVP_MD_CTX_new()))
		goto out;
	r = BFS_ERR_CRYPTO;
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while (len > 0) {
		n = pread(fd, buf, len < chunk ? (size_t)len : chunk, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? bfs_err_from_errno(errno) : BFS_ERR_IO;
			goto out;
		}
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n)) {
			r = BFS_ERR_CRYPTO;
			goto out;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		r = BFS_ERR_CRYPTO;
		goto out;
	}
	bfs_hex_encode(md, 32, hex);
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return r;
}

static int hmac256(const void *key, size_t keylen, const void *msg,
		   size_t msglen, unsigned char out[32])
{
	unsigned int outlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) ||
	    outlen != 32)
		return BFS_ERR_CRYPTO;
	return 0;
}

#define KEY_CACHE_SLOTS 4
#define KEY_CACHE_SECRET_MAX 128

struct key_cache_entry {
	int used;
	unsigned long long stamp;      /* last use, for replacement */
	char day[9];
	char region[64];
	char service[32];
	size_t secret_len;
	char secret[KEY_CACHE_SECRET_MAX];
	unsigned char key[32];
};

static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct key_cache_entry key_cache[KEY_CACHE_SLOTS];   /* key_cache_mu */
static unsigned long long key_cache_clock;                 /* key_cache_mu */

static int key_cache_fits(const char *day, const char *region,
			  const char *service, size_t slen)
{
	return strlen(day) < sizeof(key_cache[0].day) &&
	       strlen(region) < sizeof(key_cache[0].region) &&
	       strlen(service) < sizeof(key_cache[0].service) &&
	       slen <= KEY_CACHE_SECRET_MAX;
}

/* 1 and the signing key in out when cached. */
static int key_cache_get(const char *secret, const char *day,
			 const char *region, const char *service,
			 unsigned char out[32])
{
	size_t slen = strlen(secret), i;
	int found = 0;

	if (!key_cache_fits(day, region, service, slen))
		return 0;
	pthread_mutex_lock(&key_cache_mu);
	for (i = 0; i < KEY_CACHE_SLOTS; i++) {
		struct key_cache_entry *e = &key_cache[i];

		if (!e->used || e->secret_len != slen || strcmp(e->day, day) ||
		    strcmp(e->region, region) || strcmp(e->service, service) ||
		    CRYPTO_memcmp(e->secret, secret, slen) != 0)
			continue;
		memcpy(out, e->key, 32);
		e->stamp = ++key_cache_clock;
		found = 1;
		break;
	}
	pthread_mutex_unlock(&key_cache_mu);
	return found;
}

static void key_cache_put(const char *secret, const char *day,
			  const char *region, const char *service,
			  const unsigned char key[32])
{
	struct key_cache_entry *e;
	size_t slen = strlen(secret), i;

	if (!key_cache_fits(day, region, service, slen))
		return;
	pthread_mutex_lock(&key_cache_mu);
	e = &key_cache[0];
	for (i = 1; i < KEY_CACHE_SLOTS && e->used; i++)
		if (!key_cache[i].used || key_cache[i].stamp < e->stamp)
			e = &key_cache[i];
	OPENSSL_cleanse(e, sizeof(*e));
	e->used = 1;
	e->stamp = ++key_cache_clock;
	strcpy(e->day, day);
	strcpy(e->region, region);
	strcpy(e->service, service);
	memcpy(e->secret, secret, slen);
	e->secret_len = slen;
	memcpy(e->key, key, 32);
	pthread_mutex_unlock(&key_cache_mu);
}

/* The signing key of (secret, day, region, service), from the cache or
 * derived (and cached). */
static int signing_key(const struct bfs_sigv4_req *req, const char *day,
		       unsigned char out[32])
{
	struct bfs_buf key;
	unsigned char k1[32], k2[32];
	int r = BFS_ERR_CRYPTO;

	if (key_cache_get(req->secret, day, req->region, req->service, out))
		return 0;
	bfs_buf_init(&key, 1024);
	if ((r = bfs_buf_addf(&key, "AWS4%s", req->secret)) < 0)
		goto out;
	r = BFS_ERR_CRYPTO;
	if (hmac256(key.p, key.len, day, strlen(day), k1) < 0 ||
	    hmac256(k1, 32, req->region, strlen(req->region), k2) < 0 ||
	    hmac256(k2, 32, req->service, strlen(req->service), k1) < 0 ||
	    hmac256(k1, 32, "aws4_request", 12, out) < 0)
		goto out;
	key_cache_put(req->secret, day, req->region, req->service, out);
	r = 0;
out:
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	if (key.p)
		OPENSSL_cleanse(key.p, key.len);
	bfs_buf_free(&key);
	return r;
}

/* Copies a header value trimmed, with runs of whitespace collapsed. */
static char *normalize_value(const char *v)
{
	size_t n = strlen(v), j = 0;
	char *out = malloc(n + 1);
	int space = 0;

	if (!out)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = 1;
			continue;
		}
		if (space && j > 0)
			out[j++] = ' ';
		space = 0;
		out[j++] = *v;
	}
	out[j] = '\0';
	return out;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	char *p;

	if (!d)
		return NULL;
	for (p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static int hdr_cmp(const void *a, const void *b)
{
	const struct canon_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int q_cmp(const void *a, const void *b)
{
	const struct canon_q *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static int hdr_add(struct canon_hdr *h, size_t *n, const char *name,
		   const char *value)
{
	if (*n >= SIGV4_MAX_HEADERS)
		return BFS_ERR_TOOBIG;
	h[*n].name = lower_dup(name);
	h[*n].value = normalize_value(value ? value : "");
	h[*n].order = *n;
	(*n)++;
	if (!h[*n - 1].name || !h[*n - 1].value)
		return BFS_ERR_NOMEM;
	return 0;
}

static void hdrs_free(struct canon_hdr *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
}

static void qs_free(struct canon_q *q, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(q[i].name);
		free(q[i].value);
	}
}

static int encode_dup(const char *s, char **out)
{
	struct bfs_buf b;
	int r;

	*out = NULL;
	bfs_buf_init(&b, 16 * 1024);
	if ((r = bfs_sigv4_uri_encode(s ? s : "", 0, &b)) < 0)
		return r;
	*out = b.p ? bfs_buf_steal(&b) : strdup("");
	return *out ? 0 : BFS_ERR_NOMEM;
}

/* The canonical query string (sorted, encoded) of n raw parameters. */
static int canonical_query(const struct bfs_sigv4_kv *kv, size_t n,
			   const struct bfs_sigv4_kv *extra, size_t nextra,
			   struct bfs_buf *out)
{
	struct canon_q q[SIGV4_MAX_QUERY];
	size_t nq = 0, i;
	int r = BFS_ERR_TOOBIG;

	if (n + nextra > SIGV4_MAX_QUERY)
		return r;
	memset(q, 0, sizeof(q));
	for (i = 0; i < n + nextra; i++) {
		const struct bfs_sigv4_kv *p = i < n ? &kv[i] : &extra[i - n];

		nq++;
		if (!p->name || (r = encode_dup(p->name, &q[i].name)) < 0 ||
		    (r = encode_dup(p->value, &q[i].value)) < 0) {
			if (!p->name)
				r = BFS_ERR_INVAL;
			goto out;
		}
	}
	qsort(q, nq, sizeof(q[0]), q_cmp);
	for (i = 0; i < nq; i++) {
		if ((i && (r = bfs_buf_adds(out, "&")) < 0) ||
		    (r = bfs_buf_addf(out, "%s=%s", q[i].name, q[i].value)) < 0)
			goto out;
	}
	r = 0;
out:
	qs_free(q, nq);
	return r;
}

static int format_date(time_t now, char amz_date[17], char day[9])
{
	struct tm tm;

	if (!gmtime_r(&now, &tm))
		return BFS_ERR_INVAL;
	if (strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return BFS_ERR_INVAL;
	memcpy(day, amz_date, 8);
	day[8] = '\0';
	return 0;
}

/*
 * Canonical request + string to sign + signature.  headers: the caller's
 * plus the signer's own (x-amz-date...).  signed_out receives the signed
 * header list, sig_hex the signature.
 */
static int sign_core(const struct bfs_sigv4_req *req, const char *amz_date,
		     const char *day, const struct bfs_sigv4_kv *extra_q,
		     size_t nextra_q, const struct bfs_sigv4_kv *extra_h,
		     size_t nextra_h, const char *payload_hash,
		     struct bfs_buf *signed_out, char sig_hex[65],
		     struct bfs_buf *creq_out, struct bfs_buf *sts_out)
{
	struct canon_hdr h[SIGV4_MAX_HEADERS];
	struct bfs_buf creq, sts;
	unsigned char k1[32], sig[32];
	char hash[65];
	size_t nh = 0, i;
	int r = BFS_ERR_INVAL, have_host = 0;

	bfs_buf_init(&creq, SIGV4_CREQ_MAX);
	bfs_buf_init(&sts, 4096);
	if (!req->method || !req->uri || !req->region || !req->service ||
	    !req->access_key || !req->secret || (req->nheaders && !req->headers) ||
	    (req->nquery && !req->query))
		goto out;
	for (i = 0; i < req->nheaders; i++) {
		if (!req->headers[i].name) {
			r = BFS_ERR_INVAL;
			goto out;
		}
		if (!strcasecmp(req->headers[i].name, "host"))
			have_host = 1;
		if ((r = hdr_add(h, &nh, req->headers[i].name,
				 req->headers[i].value)) < 0)
			goto out;
	}
	for (i = 0; i < nextra_h; i++)
		if ((r = hdr_add(h, &nh, extra_h[i].name, extra_h[i].value)) < 0)
			goto out;
	if (!have_host) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	qsort(h, nh, sizeof(h[0]), hdr_cmp);

	/* method, URI, query */
	if ((r = bfs_buf_addf(&creq, "%s\n%s\n", req->method, req->uri)) < 0 ||
	    (r = canonical_query(req->query, req->nquery, extra_q, nextra_q,
				 &creq)) < 0 ||
	    (r = bfs_buf_adds(&creq, "\n")) < 0)
		goto out;
	/* canonical headers, repeated names joined with ',' */
	for (i = 0; i < nh; i++) {
		int same = i > 0 && !strcmp(h[i].name, h[i - 1].name);

		if (same)
			r = bfs_buf_addf(&creq, ",%s", h[i].value);
		else
			r = bfs_buf_addf(&creq, "%s%s:%s", i ? "\n" : "",
					 h[i].name, h[i].value);
		if (r < 0)
			goto out;
		if (!same && (r = bfs_buf_addf(signed_out, "%s%s", i ? ";" : "",
					       h[i].name)) < 0)
			goto out;
	}
	if ((r = bfs_buf_addf(&creq, "\n\n%s\n%s", bfs_buf_str(signed_out),
			      payload_hash)) < 0)
		goto out;

	if ((r = bfs_sigv4_sha256_hex(creq.p, creq.len, hash)) < 0)
		goto out;
	if ((r = bfs_buf_addf(&sts, "%s\n%s\n%s/%s/%s/aws4_request\n%s",
			      SIGV4_ALGO, amz_date, day, req->region,
			      req->service, hash)) < 0)
		goto out;

	if ((r = signing_key(req, day, k1)) < 0)
		goto out;
	r = BFS_ERR_CRYPTO;
	if (hmac256(k1, 32, sts.p, sts.len, sig) < 0)
		goto out;
	bfs_hex_encode(sig, 32, sig_hex);

	if (creq_out) {
		bfs_buf_reset(creq_out);
		if ((r = bfs_buf_add(creq_out, creq.p, creq.len)) < 0)
			goto out;
	}
	if (sts_out) {
		bfs_buf_reset(sts_out);
		if ((r = bfs_buf_add(sts_out, sts.p, sts.len)) < 0)
			goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(sig, sizeof(sig));
	bfs_buf_free(&sts);
	bfs_buf_free(&creq);
	hdrs_free(h, nh);
	return r;
}

int bfs_sigv4_sign(const struct bfs_sigv4_req *req, struct bfs_sigv4_out *out,
		   struct bfs_buf *creq, struct bfs_buf *sts)
{
	struct bfs_sigv4_kv extra[3];
	struct bfs_buf signed_hdrs;
	char day[9], sig[65];
	const char *ph = req->payload_hash ? req->payload_hash
					   : BFS_SIGV4_EMPTY_SHA256;
	size_t ne = 0;
	int r;

	memset(out, 0, sizeof(*out));
	bfs_buf_init(&signed_hdrs, 4096);
	if ((r = format_date(req->now, out->amz_date, day)) < 0)
		goto out;
	extra[ne].name = "x-amz-date";
	extra[ne++].value = out->amz_date;
	if (req->add_content_sha256) {
		if (strlen(ph) >= sizeof(out->content_sha256)) {
			r = BFS_ERR_INVAL;
			goto out;
		}
		strcpy(out->content_sha256, ph);
		extra[ne].name = "x-amz-content-sha256";
		extra[ne++].value = out->content_sha256;
	}
	if (req->session_token && *req->session_token) {
		extra[ne].name = "x-amz-security-token";
		extra[ne++].value = req->session_token;
	}
	if ((r = sign_core(req, out->amz_date, day, NULL, 0, extra, ne, ph,
			   &signed_hdrs, sig, creq, sts)) < 0)
		goto out;
	if (snprintf(out->authorization, sizeof(out->authorization),
		     SIGV4_ALGO " Credential=%s/%s/%s/%s/aws4_request, "
		     "SignedHeaders=%s, Signature=%s", req->access_key, day,
		     req->region, req->service, bfs_buf_str(&signed_hdrs), sig) >=
	    (int)sizeof(out->authorization)) {
		r = BFS_ERR_TOOBIG;
		goto out;
	}
	r = 0;
out:
	bfs_buf_free(&signed_hdrs);
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

int bfs_sigv4_presign(const struct bfs_sigv4_req *req, long expires,
		      struct bfs_buf *query)
{
	struct bfs_sigv4_kv extra[6];
	struct bfs_buf signed_hdrs;
	char amz_date[17], day[9], sig[65], exp[24], cred[512];
	size_t ne = 0;
	int r = BFS_ERR_INVAL;

	bfs_buf_reset(query);
	bfs_buf_init(&signed_hdrs, 256);
	if (expires < 1 || expires > BFS_SIGV4_PRESIGN_MAX || !req->access_key ||
	    !req->region || !req->service)
		goto out;
	if ((r = format_date(req->now, amz_date, day)) < 0)
		goto out;
	snprintf(exp, sizeof(exp), "%ld", expires);
	if (snprintf(cred, sizeof(cred), "%s/%s/%s/%s/aws4_request",
		     req->access_key, day, req->region, req->service) >=
	    (int)sizeof(cred)) {
		r = BFS_ERR_TOOBIG;
		goto out;
	}
	extra[ne].name = "X-Amz-Algorithm";
	extra[ne++].value = SIGV4_ALGO;
	extra[ne].name = "X-Amz-Credential";
	extra[ne++].value = cred;
	extra[ne].name = "X-Amz-Date";
	extra[ne++].value = amz_date;
	extra[ne].name = "X-Amz-Expires";
	extra[ne++].value = exp;
	extra[ne].name = "X-Amz-SignedHeaders";
	extra[ne++].value = "host";
	if (req->session_token && *req->session_token) {
		extra[ne].name = "X-Amz-Security-Token";
		extra[ne++].value = req->session_token;
	}
	if ((r = sign_core(req, amz_date, day, extra, ne, NULL, 0,
			   BFS_SIGV4_UNSIGNED, &signed_hdrs, sig, NULL,
			   NULL)) < 0)
		goto out;
	if (strcmp(bfs_buf_str(&signed_hdrs), "host") != 0) {
		r = BFS_ERR_INVAL;     /* only Host may be signed in a URL */
		goto out;
	}
	if ((r = canonical_query(req->query, req->nquery, extra, ne, query)) < 0 ||
	    (r = bfs_buf_addf(query, "&X-Amz-Signature=%s", sig)) < 0)
		goto out;
	r = 0;
out:
	bfs_buf_free(&signed_hdrs);
	if (r < 0)
		bfs_buf_free(query);
	return r;
}
