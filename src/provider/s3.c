/*
 * s3.c - the S3 provider (bfs_provider_s3), serving both kinds s3 and r2.
 *
 * R2 is S3 with other settings, not other code: struct s3_flavor holds
 * what differs (default endpoint built from the account id, region
 * "auto", path-style addressing - the one form R2's documented endpoint
 * https://ACCOUNT_ID.r2.cloudflarestorage.com serves for every bucket).  Everything else is shared: R2's rules (all multipart parts
 * the same size except the last, no ACL headers) are what this code does
 * for every service - it never sends an ACL header and the part planner
 * only makes equal parts.
 *
 * How a request goes (on the shared REST layer, src/provider/rest.c,
 * s3_dialect): s3_call() builds the URL (path-style
 * endpoint/bucket/key or virtual-hosted bucket.host/key, every key segment
 * URI-encoded once), signs it with SigV4 at the current time, runs one
 * exchange through the http layer, maps the reply with bfs_s3err_map()
 * (the error document's <Code> first) and loops through bfs_retry_next()
 * while the failure is transient, re-signing each attempt.  Bodies are
 * hashed (x-amz-content-sha256) except file ranges over https, which go
 * as UNSIGNED-PAYLOAD.
 *
 * Metadata is s3fs-compatible: x-amz-meta-mode (decimal st_mode with type
 * bits), -uid, -gid, -mtime ("SECONDS" or "SECONDS.NNNNNNNNN", as s3fs
 * writes; read: either, fraction as a decimal fraction).  Folders are
 * "dir/" markers with Content-Type application/x-directory; a symlink is
 * an object whose body is the target and whose mode is S_IFLNK|0777
 * (s3fs_symlink).  Keys arrive with the bucket prefix already applied;
 * only list() strips the prefix it was given.
 *
 * Uploads above BFS_MPU_SINGLE_MAX go multipart, in the equal parts of
 * bfs_mpu_plan() (the plan the vfs streaming uploads use) sent by
 * S3_WORKERS threads pulling part numbers from a shared counter; any
 * failure stops the others and aborts the upload.  The same requests are
 * also offered one by one (mpu_begin/part/list_parts/complete/abort/
 * list_uploads) for the resumable and streaming uploads of upload.c,
 * which keep the upload id in the journal and never abort on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_http.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_mpu.h"
#include "bfs_provider.h"
#include "bfs_rest.h"
#include "bfs_s3xml.h"
#include "bfs_sigv4.h"

#define S3_MAX_PARTS 10000ull
#ifndef S3_COPY_MAX                       /* overridable to test UploadPartCopy */
#define S3_COPY_MAX (5ull << 30)           /* CopyObject limit */
#endif
#define S3_WORKERS 4
#define S3_LIST_PAGE "1000"        /* BFS_LIST_PAGE_KEYS too */
#define S3_URL_MAX (16 * 1024)
#define S3_MAX_EXTRA_META 12             /* other x-amz-meta-* kept by REPLACE */
#define S3_EXTRA_META_MAX 2048           /* S3's own user-metadata limit */
#define S3_HIDDEN_SLOTS 4096
#define S3_DIR_CTYPE "application/x-directory"
#define S3_LINK_CTYPE "application/octet-stream"

/* What differs between services (the "quirks"). */
struct s3_flavor {
	const char *name;
	const char *region;          /* fixed region, NULL: from settings */
	const char *endpoint_fmt;    /* default endpoint; %s = account or region */
	int endpoint_from_account;   /* endpoint_fmt takes account_id */
	int force_path_style;        /* host/bucket/key always */
	int no_part_copy;            /* no UploadPartCopy: a copy over the
				      * single-copy limit streams */
};

static const struct s3_flavor flavor_s3 = {
	"s3", NULL, "https://s3.%s.amazonaws.com", 0, 0, 0
};
static const struct s3_flavor flavor_r2 = {
	"r2", "auto", "https://%s.r2.cloudflarestorage.com", 1, 1, 0
};
/* Google Cloud Storage's XML API with HMAC keys: virtual-hosted, region
 * "auto", no UploadPartCopy.  It rewrites Accept-Encoding, so that header
 * must never be signed: this code never sends it (s3_call signs host, the
 * x-amz-* headers and the few it adds: content-type, range, if-match). */
static const struct s3_flavor flavor_gcs = {
	"gcs", "auto", "https://storage.googleapis.com", 0, 0, 1
};

struct s3_state {
	const struct bfs_rest_dialect *dialect;  /* first: bfs_rest_op_* */
	const struct s3_flavor *fl;
	char *name;                  /* bucket dir name, for logs */
	char *bucket;
	char *region;
	char *scheme;                /* "https" | "http" */
	char *host;                  /* Host header: [bucket.]host[:port] */
	char *uri_base;              /* "/bucket" (path-style) or "" */
	char *access_key;
	char *secret;                /* wiped on destroy */
	char *token;                 /* wiped on destroy; NULL none */
	int https;
	struct bfs_http *http;
	struct bfs_retry_policy retry;
	pthread_mutex_t hidden_lock;
	uint64_t hidden[S3_HIDDEN_SLOTS]; /* hashes of keys logged as hidden;
					   * guarded by hidden_lock */
	size_t nhidden;              /* guarded by hidden_lock */
};

/* ---------------------------------------------------------------- helpers */

/* "/bucket/a%20b/c" or "/a%20b/c": the canonical URI of key. */
static int s3_uri(const struct s3_state *st, const char *key, struct bfs_buf *b)
{
	int r;

	if ((r = bfs_buf_adds(b, st->uri_base)) < 0 ||
	    (r = bfs_buf_adds(b, "/")) < 0)
		return r;
	if (key && (r = bfs_sigv4_uri_encode(key, 1, b)) < 0)
		return r;
	return 0;
}

/* Query string for the URL: "a=b&uploads" (no '=' for empty values). */
static int s3_url_query(const struct bfs_rest_req *q, struct bfs_buf *b)
{
	size_t i;
	int r;

	for (i = 0; i < q->nquery; i++) {
		if ((r = bfs_buf_adds(b, i ? "&" : "?")) < 0 ||
		    (r = bfs_sigv4_uri_encode(q->query[i].name, 0, b)) < 0)
			return r;
		if (q->query[i].value && *q->query[i].value &&
		    ((r = bfs_buf_adds(b, "=")) < 0 ||
		     (r = bfs_sigv4_uri_encode(q->query[i].value, 0, b)) < 0))
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------ the request */

/* What one attempt of s3_call() signs with (bfs_rest_run callbacks). */
struct s3_sign_ctx {
	struct s3_state *st;
	const char *uri;             /* canonical URI */
	const char *hash;            /* payload hash */
	struct bfs_sigv4_out so;     /* this attempt's signature; wiped */
};

/* host, q's headers, x-amz-date, x-amz-content-sha256, the token, the
 * Authorization of a SigV4 signature made now. */
static int s3_sign(void *vc, const struct bfs_rest_req *q,
		   struct bfs_sigv4_kv *out, size_t cap, size_t *n)
{
	struct s3_sign_ctx *c = vc;
	struct s3_state *st = c->st;
	struct bfs_sigv4_req sr;
	size_t i;
	int r;

	if (q->nhdr + 5 > cap)
		return BFS_ERR_TOOBIG;
	out[0].name = "host";
	out[0].value = st->host;
	for (i = 0; i < q->nhdr; i++)
		out[i + 1] = q->hdr[i];
	memset(&sr, 0, sizeof(sr));
	sr.method = q->method;
	sr.uri = c->uri;
	sr.query = q->query;
	sr.nquery = q->nquery;
	sr.headers = out;
	sr.nheaders = q->nhdr + 1;
	sr.payload_hash = c->hash;
	sr.region = st->region;
	sr.service = "s3";
	sr.access_key = st->access_key;
	sr.secret = st->secret;
	sr.session_token = st->token;
	sr.add_content_sha256 = 1;
	sr.now = time(NULL);
	if ((r = bfs_sigv4_sign(&sr, &c->so, NULL, NULL)) < 0)
		return r;
	*n = q->nhdr + 1;
	out[*n].name = "x-amz-date";
	out[(*n)++].value = c->so.amz_date;
	out[*n].name = "x-amz-content-sha256";
	out[(*n)++].value = c->so.content_sha256;
	if (st->token) {
		out[*n].name = "x-amz-security-token";
		out[(*n)++].value = st->token;
	}
	out[*n].name = "Authorization";
	out[(*n)++].value = c->so.authorization;
	return 0;
}

/* The error document's <Code> first (also in a 2xx when asked), then
 * the status: bfs_s3err_map(). */
static int s3_map(void *vc, const struct bfs_rest_req *q,
		  const struct bfs_http_resp *resp)
{
	struct s3_sign_ctx *c = vc;
	struct bfs_s3xml_reply reply;
	const char *code = NULL;
	int is2xx = resp->status >= 200 && resp->status < 300;

	if ((!is2xx || q->check_200_error) && resp->body.len &&
	    bfs_s3xml_parse_reply(resp->body.p, resp->body.len, &reply) == 0 &&
	    bfs_s3xml_is_error(&reply)) {
		code = reply.code;
		BFS_DEBUG("s3 %s %s %s: %d %s request %s", c->st->name,
			  q->method, q->key ? q->key : "", resp->status,
			  reply.code, reply.request_id);
	}
	return bfs_s3err_map(resp->status, code);
}

/*
 * Sends q with retries (bfs_rest_run), signed afresh each attempt.
 * resp (initialized by the caller) holds the last reply.  Returns 0 on
 * a 2xx (without <Error> when check_200_error), else the mapped error.
 * A sink writing to memory or a file restarts at its beginning on each
 * attempt.
 */
static int s3_call(void *vst, const struct bfs_rest_req *q,
		   struct bfs_http_resp *resp)
{
	struct s3_state *st = vst;
	struct s3_sign_ctx c;
	struct bfs_buf uri, url;
	char hash[65];
	int r = 0;

	bfs_buf_init(&uri, S3_URL_MAX);
	bfs_buf_init(&url, S3_URL_MAX);
	memset(&c, 0, sizeof(c));

	/* payload hash: memory bodies always, file ranges unless https */
	if (q->body_fd >= 0 && st->https)
		strcpy(hash, BFS_SIGV4_UNSIGNED);
	else if (q->body_fd >= 0)
		r = bfs_sigv4_sha256_fd(q->body_fd, q->fd_off, q->fd_len, hash);
	else
		r = bfs_sigv4_sha256_hex(q->body ? q->body : "", q->body_len, hash);
	if (r < 0)
		goto out;

	if ((r = s3_uri(st, q->key, &uri)) < 0 ||
	    (r = bfs_buf_addf(&url, "%s://%s%s", st->scheme, st->host,
			      bfs_buf_str(&uri))) < 0 ||
	    (r = s3_url_query(q, &url)) < 0)
		goto out;
	c.st = st;
	c.uri = bfs_buf_str(&uri);
	c.hash = hash;
	r = bfs_rest_run(st->http, &st->retry, q, bfs_buf_str(&url), s3_sign,
			 s3_map, &c, resp);
out:
	OPENSSL_cleanse(&c.so, sizeof(c.so));
	bfs_buf_free(&url);
	bfs_buf_free(&uri);
	return r;
}

/* --------------------------------------------------------------- metadata */

/*
 * Fills m from the reply headers of a HEAD / GET of key.  A mode without
 * type bits (s3fs 1.90 writes folder markers as plain 493 = 0755) gets
 * S_IFDIR for a folder marker or an application/x-directory object, else
 * S_IFREG, as s3fs itself reads them.
 */
static void s3_meta_from_resp(const struct bfs_http_resp *resp, const char *key,
			      struct bfs_meta *m, int *folder)
{
	size_t n = key ? strlen(key) : 0;

	bfs_rest_meta_base(resp, m);
	bfs_rest_meta_posix(resp, "x-amz-meta-",
			    (n && key[n - 1] == '/') ||
			    !strcmp(m->content_type, S3_DIR_CTYPE), m);
	if (folder)
		*folder = 0;
}

static const struct bfs_rest_dialect s3_dialect = {
	.meta_prefix = "x-amz-meta-",
	.range_hdr = "range",
	.call = s3_call,
	.meta = s3_meta_from_resp,
};

static const char *s3_content_type(const char *key, const struct bfs_meta *m)
{
	size_t n = strlen(key);

	if (n && key[n - 1] == '/')
		return S3_DIR_CTYPE;
	if (m && m->has_mode && S_ISLNK(m->mode))
		return S3_LINK_CTYPE;          /* as s3fs_symlink stores them */
	if (m && m->content_type[0])
		return m->content_type;
	return bfs_content_type(key);
}

/* Adds Content-Type and the x-amz-meta-* headers of m to q. */
static int s3_add_meta(struct bfs_rest_req *q, struct bfs_rest_meta_hdrs *mh,
		       const char *key, const struct bfs_meta *m)
{
	int r;

	snprintf(mh->ctype, sizeof(mh->ctype), "%s", s3_content_type(key, m));
	if ((r = bfs_rest_h(q, "content-type", mh->ctype)) < 0)
		return r;
	return bfs_rest_add_meta(q, mh, "x-amz-meta-", m);
}

static void s3_copy_etag(const char *etag, char *out, size_t outlen)
{
	if (out && outlen)
		snprintf(out, outlen, "%s", etag);
}

/* ------------------------------------------------------- create / destroy */

static void s3_destroy(void *vst)
{
	struct s3_state *st = vst;

	if (!st)
		return;
	bfs_http_free(st->http);
	if (st->secret) {
		OPENSSL_cleanse(st->secret, strlen(st->secret));
		free(st->secret);
	}
	if (st->token) {
		OPENSSL_cleanse(st->token, strlen(st->token));
		free(st->token);
	}
	free(st->access_key);
	free(st->uri_base);
	free(st->host);
	free(st->scheme);
	free(st->region);
	free(st->bucket);
	free(st->name);
	pthread_mutex_destroy(&st->hidden_lock);
	free(st);
}

static int s3_create(const struct bfs_bucket_conf *bc, void **out, char *err,
		     size_t errlen)
{
	struct s3_state *st = NULL;
	struct bfs_buf ep;
	const char *p, *hostpart;
	size_t hlen;
	int r = BFS_ERR_CONFIG, virt;

	*out = NULL;
	bfs_buf_init(&ep, 2048);
	if (!(st = calloc(1, sizeof(*st)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_init(&st->hidden_lock, NULL);
	st->dialect = &s3_dialect;
	st->fl = bc->provider == BFS_PROV_R2 ? &flavor_r2 :
		 bc->provider == BFS_PROV_GCS ? &flavor_gcs : &flavor_s3;
	bfs_retry_policy_default(&st->retry);
	if (!bc->bucket_name || !*bc->bucket_name || !bc->access_key_id ||
	    !bc->secret_access_key) {
		snprintf(err, errlen, "bucket '%s': %s needs bucket_name, "
			 "access_key_id and a secret", bc->name ? bc->name : "?",
			 st->fl->name);
		goto out;
	}
	if (st->fl->region)
		st->region = strdup(st->fl->region);
	else
		st->region = strdup(bc->region && *bc->region ? bc->region
				    : "us-east-1");
	/* endpoint: settings, else the flavor's default */
	if (bc->endpoint && *bc->endpoint) {
		r = bfs_buf_adds(&ep, bc->endpoint);
	} else if (st->fl->endpoint_from_account) {
		if (!bc->account_id || !*bc->account_id) {
			snprintf(err, errlen, "bucket '%s': r2 needs account_id "
				 "or endpoint", bc->name ? bc->name : "?");
			r = BFS_ERR_CONFIG;
			goto out;
		}
		r = bfs_buf_addf(&ep, st->fl->endpoint_fmt, bc->account_id);
	} else if (strstr(st->fl->endpoint_fmt, "%s")) {
		r = bfs_buf_addf(&ep, st->fl->endpoint_fmt, st->region);
	} else {
		r = bfs_buf_adds(&ep, st->fl->endpoint_fmt);
	}
	if (r < 0)
		goto out;
	p = bfs_buf_str(&ep);
	if (!strncasecmp(p, "https://", 8)) {
		st->https = 1;
		hostpart = p + 8;
	} else if (!strncasecmp(p, "http://", 7)) {
		hostpart = p + 7;
	} else {
		snprintf(err, errlen, "bucket '%s': endpoint must start with "
			 "http:// or https://", bc->name ? bc->name : "?");
		r = BFS_ERR_CONFIG;
		goto out;
	}
	hlen = strcspn(hostpart, "/?#");
	if (hlen == 0 || hostpart[hlen + (hostpart[hlen] == '/')] != '\0') {
		snprintf(err, errlen, "bucket '%s': endpoint must be "
			 "scheme://host[:port] without a path",
			 bc->name ? bc->name : "?");
		r = BFS_ERR_CONFIG;
		goto out;
	}
	/* virtual-hosted unless asked otherwise; a dotted bucket cannot
	 * match a wildcard certificate, so it stays path-style */
	virt = !bc->path_style && !st->fl->force_path_style &&
	       !strchr(bc->bucket_name, '.');
	st->scheme = strdup(st->https ? "https" : "http");
	st->bucket = strdup(bc->bucket_name);
	st->name = strdup(bc->name ? bc->name : bc->bucket_name);
	st->access_key = strdup(bc->access_key_id);
	st->secret = strdup(bc->secret_access_key);
	if (bc->session_token && *bc->session_token)
		st->token = strdup(bc->session_token);
	if (virt) {
		if ((st->host = malloc(strlen(st->bucket) + hlen + 2)))
			sprintf(st->host, "%s.%.*s", st->bucket, (int)hlen, hostpart);
		st->uri_base = strdup("");
	} else {
		st->host = strndup(hostpart, hlen);
		if ((st->uri_base = malloc(strlen(st->bucket) + 2)))
			sprintf(st->uri_base, "/%s", st->bucket);
	}
	if (!st->region || !st->scheme || !st->bucket || !st->name ||
	    !st->access_key || !st->secret || !st->host || !st->uri_base ||
	    (bc->session_token && *bc->session_token && !st->token)) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = bfs_http_new(&st->http)) < 0)
		goto out;
	*out = st;
	st = NULL;
	r = 0;
out:
	bfs_buf_free(&ep);
	s3_destroy(st);
	return r;
}

/* ------------------------------------------------------------ simple ops */

/* HEAD of key into m; extra (may be NULL) gets the other user metadata. */
static int s3_head_ex(struct s3_state *st, const char *key, struct bfs_meta *m,
		      struct bfs_buf *extra)
{
	return bfs_rest_head(&s3_dialect, st, key, m, NULL, extra,
			     S3_MAX_EXTRA_META);
}

static int s3_head(void *vst, const char *key, struct bfs_meta *m)
{
	return s3_head_ex(vst, key, m, NULL);
}

/* One PUT of a memory body or a file range, with metadata. */
static int s3_put_single(struct s3_state *st, const char *key, const void *data,
			 size_t len, int fd, uint64_t fdlen,
			 const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	int r;

	bfs_rest_req_init(&q, "PUT", key, BFS_OP_PUT);
	if ((r = s3_add_meta(&q, &mh, key, m)) < 0)
		return r;
	if (fd >= 0) {
		q.body_fd = fd;
		q.fd_off = 0;
		q.fd_len = fdlen;
	} else {
		q.body = data;
		q.body_len = len;
	}
	return bfs_rest_send(&s3_dialect, st, &q, etag_out, etag_len);
}

static int s3_put_buf(void *vst, const char *key, const void *data, size_t len,
		      const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	if (etag_out && etag_len)
		etag_out[0] = '\0';
	return s3_put_single(vst, key, data, len, -1, 0, m, etag_out, etag_len);
}

static int s3_del(void *vst, const char *key)
{
	return bfs_rest_delete(&s3_dialect, vst, key);
}

/* -------------------------------------------------------------- multipart */

struct s3_mpu {
	struct s3_state *st;
	const char *key;
	char upload_id[1024];
	/* source: a file (put) or another key (copy) */
	int fd;
	const char *copy_src;        /* "/bucket/encoded-key" */
	uint64_t size, part_size;
	unsigned nparts;
	char (*etags)[96];           /* per part; written by its worker only */
};

static int s3_mpu_create(struct s3_state *st, const char *key,
			 const struct bfs_meta *m, char *upload_id, size_t idlen)
{
	struct bfs_http_resp resp;
	struct bfs_s3xml_reply reply;
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	int r;

	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "POST", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "uploads", "")) < 0 ||
	    (r = s3_add_meta(&q, &mh, key, m)) < 0 ||
	    (r = s3_call(st, &q, &resp)) < 0)
		goto out;
	if ((r = bfs_s3xml_parse_reply(resp.body.p ? resp.body.p : "",
				       resp.body.len, &reply)) < 0)
		goto out;
	if (!reply.upload_id[0] || strlen(reply.upload_id) >= idlen) {
		r = BFS_ERR_PROTOCOL;
		goto out;
	}
	strcpy(upload_id, reply.upload_id);
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

/* AbortMultipartUpload of (key, upload_id); an id already gone is fine. */
static int s3_abort_id(struct s3_state *st, const char *key, const char *id)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	int r;

	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "DELETE", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "uploadId", id)) == 0)
		r = s3_call(st, &q, &resp);
	if (r == BFS_ERR_NOTFOUND)
		r = 0;
	bfs_http_resp_free(&resp);
	return r;
}

static void s3_mpu_abort(struct s3_mpu *u)
{
	int r = s3_abort_id(u->st, u->key, u->upload_id);

	if (r < 0)
		BFS_WARN("%s: abort of multipart upload of %s failed: %s "
			 "(left for cleanup)", u->st->name, u->key, bfs_strerror(r));
}

/* UploadPart `number` of (key, id) from fd [off, off + len). */
static int s3_part_fd(struct s3_state *st, const char *key, const char *id,
		      unsigned number, int fd, uint64_t off, uint64_t len,
		      char *etag, size_t etag_len)
{
	struct bfs_rest_req q;
	char pn[16];
	int r;

	snprintf(pn, sizeof(pn), "%u", number);
	bfs_rest_req_init(&q, "PUT", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "partNumber", pn)) < 0 ||
	    (r = bfs_rest_q(&q, "uploadId", id)) < 0)
		return r;
	q.body_fd = fd;
	q.fd_off = off;
	q.fd_len = len;
	if ((r = bfs_rest_send(&s3_dialect, st, &q, etag, etag_len)) < 0)
		return r;
	return etag[0] ? 0 : BFS_ERR_PROTOCOL;
}

/* Sends part i (0-based) of u (a bfs_rest_parallel() job). */
static int s3_mpu_part(void *vu, unsigned i)
{
	struct s3_mpu *u = vu;
	struct bfs_http_resp resp;
	struct bfs_s3xml_reply reply;
	struct bfs_rest_req q;
	char pn[16], range[64];
	uint64_t off = (uint64_t)i * u->part_size;
	uint64_t len = bfs_mpu_part_len(u->part_size, u->size, i + 1);
	int r;

	if (!u->copy_src)
		return s3_part_fd(u->st, u->key, u->upload_id, i + 1, u->fd, off,
				  len, u->etags[i], sizeof(u->etags[i]));
	bfs_http_resp_init(&resp);
	snprintf(pn, sizeof(pn), "%u", i + 1);
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off,
		 off + len - 1);
	bfs_rest_req_init(&q, "PUT", u->key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "partNumber", pn)) < 0 ||
	    (r = bfs_rest_q(&q, "uploadId", u->upload_id)) < 0 ||
	    (r = bfs_rest_h(&q, "x-amz-copy-source", u->copy_src)) < 0 ||
	    (r = bfs_rest_h(&q, "x-amz-copy-source-range", range)) < 0)
		goto out;
	q.check_200_error = 1;
	if ((r = s3_call(u->st, &q, &resp)) < 0)
		goto out;
	if ((r = bfs_s3xml_parse_reply(resp.body.p ? resp.body.p : "",
				       resp.body.len, &reply)) < 0)
		goto out;
	snprintf(u->etags[i], sizeof(u->etags[i]), "%s", reply.etag);
	r = u->etags[i][0] ? 0 : BFS_ERR_PROTOCOL;
out:
	bfs_http_resp_free(&resp);
	return r;
}

/*
 * Sends a CompleteMultipartUpload body for (key, id); the new etag out
 * (HEADed when the server answers an empty one).
 */
static int s3_complete_send(struct s3_state *st, const char *key,
			    const char *id, const struct bfs_buf *body,
			    char *etag_out, size_t etag_len)
{
	struct bfs_http_resp resp;
	struct bfs_s3xml_reply reply;
	struct bfs_rest_req q;
	int r;

	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "POST", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "uploadId", id)) < 0 ||
	    (r = bfs_rest_h(&q, "content-type", "application/xml")) < 0)
		goto out;
	q.body = body->p;
	q.body_len = body->len;
	q.check_200_error = 1;          /* a 200 may still carry <Error> */
	if ((r = s3_call(st, &q, &resp)) < 0)
		goto out;
	if ((r = bfs_s3xml_parse_reply(resp.body.p ? resp.body.p : "",
				       resp.body.len, &reply)) < 0)
		goto out;
	if (!reply.etag[0] && etag_out && etag_len) {
		/* some RGW versions answer <ETag></ETag>: ask the object */
		struct bfs_meta hm;

		if ((r = s3_head(st, key, &hm)) < 0)
			goto out;
		memcpy(reply.etag, hm.etag, sizeof(reply.etag));
	}
	s3_copy_etag(reply.etag, etag_out, etag_len);
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

static int s3_mpu_complete(struct s3_mpu *u, char *etag_out, size_t etag_len)
{
	struct bfs_buf body;
	unsigned i;
	int r;

	bfs_buf_init(&body, (size_t)u->nparts * 160 + 256);
	if ((r = bfs_buf_adds(&body, "<CompleteMultipartUpload>")) < 0)
		goto out;
	for (i = 0; i < u->nparts; i++)
		if ((r = bfs_buf_addf(&body, "<Part><PartNumber>%u</PartNumber>"
				      "<ETag>\"%s\"</ETag></Part>", i + 1,
				      u->etags[i])) < 0)
			goto out;
	if ((r = bfs_buf_adds(&body, "</CompleteMultipartUpload>")) < 0)
		goto out;
	r = s3_complete_send(u->st, u->key, u->upload_id, &body, etag_out,
			     etag_len);
out:
	bfs_buf_free(&body);
	return r;
}

/*
 * Multipart upload of key from a file (fd >= 0) or a server-side source
 * (copy_src), size bytes, metadata m.  Aborts the upload on failure.
 */
static int s3_multipart(struct s3_state *st, const char *key, int fd,
			const char *copy_src, uint64_t size,
			const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct s3_mpu u;
	int r, created = 0;

	memset(&u, 0, sizeof(u));
	u.st = st;
	u.key = key;
	u.fd = fd;
	u.copy_src = copy_src;
	u.size = size;
	if ((r = bfs_mpu_plan(size, copy_src ? BFS_MPU_COPY_BASE : BFS_MPU_BASE,
			      BFS_MPU_S3_PART_MAX, &u.part_size, &u.nparts)) < 0)
		goto out;
	if (!(u.etags = calloc(u.nparts ? u.nparts : 1, sizeof(*u.etags)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = s3_mpu_create(st, key, m, u.upload_id, sizeof(u.upload_id))) < 0)
		goto out;
	created = 1;
	if ((r = bfs_rest_parallel(u.nparts, S3_WORKERS, s3_mpu_part, &u)) < 0)
		goto out;
	if ((r = s3_mpu_complete(&u, etag_out, etag_len)) < 0)
		goto out;
	created = 0;
	r = 0;
out:
	if (r < 0 && created)
		s3_mpu_abort(&u);
	free(u.etags);
	return r;
}

static int s3_put_fd(void *vst, const char *key, int fd, uint64_t size,
		     const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct s3_state *st = vst;

	if (etag_out && etag_len)
		etag_out[0] = '\0';
	if (size <= BFS_MPU_SINGLE_MAX)
		return s3_put_single(st, key, NULL, 0, fd, size, m, etag_out,
				     etag_len);
	return s3_multipart(st, key, fd, NULL, size, m, etag_out, etag_len);
}

/* ------------------------------------------ multipart, driven by the caller */

static int s3_op_mpu_begin(void *vst, const char *key, const struct bfs_meta *m,
			   char *upload_id, size_t idlen)
{
	return s3_mpu_create(vst, key, m, upload_id, idlen);
}

static int s3_op_mpu_part(void *vst, const char *key, const char *upload_id,
			  unsigned number, int fd, uint64_t off, uint64_t len,
			  char *etag, size_t etag_len)
{
	if (number < 1 || number > S3_MAX_PARTS || fd < 0 || !etag_len)
		return BFS_ERR_INVAL;
	return s3_part_fd(vst, key, upload_id, number, fd, off, len, etag,
			  etag_len);
}

struct s3_parts_ctx {
	struct bfs_mpu_part *a;
	size_t n, alloc;
};

static int s3_parts_add(void *arg, const struct bfs_s3xml_part *p)
{
	struct s3_parts_ctx *c = arg;
	struct bfs_mpu_part *na;

	if (c->n == c->alloc) {
		if (c->alloc >= S3_MAX_PARTS)
			return BFS_ERR_PROTOCOL;
		c->alloc = c->alloc ? 2 * c->alloc : 64;
		if (!(na = realloc(c->a, c->alloc * sizeof(*na))))
			return BFS_ERR_NOMEM;
		c->a = na;
	}
	c->a[c->n].number = p->number;
	c->a[c->n].size = p->size;
	snprintf(c->a[c->n].etag, sizeof(c->a[c->n].etag), "%s", p->etag);
	c->n++;
	return 0;
}

static int s3_op_mpu_list_parts(void *vst, const char *key,
				const char *upload_id,
				struct bfs_mpu_part **parts, size_t *n)
{
	struct s3_state *st = vst;
	struct s3_parts_ctx c;
	struct bfs_s3xml_list_cb cb;
	struct bfs_s3xml_page page;
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char marker[16];
	unsigned last = 0;
	int r;

	*parts = NULL;
	*n = 0;
	memset(&c, 0, sizeof(c));
	memset(&page, 0, sizeof(page));
	memset(&cb, 0, sizeof(cb));
	cb.part = s3_parts_add;
	cb.arg = &c;
	bfs_http_resp_init(&resp);
	for (;;) {
		snprintf(marker, sizeof(marker), "%u", last);
		bfs_rest_req_init(&q, "GET", key, BFS_OP_MULTIPART);
		if ((r = bfs_rest_q(&q, "uploadId", upload_id)) < 0 ||
		    (r = bfs_rest_q(&q, "max-parts", S3_LIST_PAGE)) < 0 ||
		    (last && (r = bfs_rest_q(&q, "part-number-marker", marker)) < 0))
			goto out;
		q.max_body = BFS_S3XML_LIST_MAX;
		if ((r = s3_call(st, &q, &resp)) < 0)
			goto out;
		if ((r = bfs_s3xml_parse_list(resp.body.p ? resp.body.p : "",
					      resp.body.len, &cb, 0, &page)) < 0)
			goto out;
		if (page.is_error) {
			r = bfs_s3err_map(200, page.error_code);
			goto out;
		}
		if (!page.is_truncated)
			break;
		if (page.next_part_marker <= last) {
			r = BFS_ERR_PROTOCOL;  /* would loop forever */
			goto out;
		}
		last = page.next_part_marker;
		bfs_s3xml_page_clear(&page);
	}
	*parts = c.a;
	*n = c.n;
	c.a = NULL;
	r = 0;
out:
	free(c.a);
	bfs_s3xml_page_clear(&page);
	bfs_http_resp_free(&resp);
	return r;
}

static int s3_op_mpu_complete(void *vst, const char *key, const char *upload_id,
			      const struct bfs_mpu_part *parts, size_t n,
			      char *etag_out, size_t etag_len)
{
	struct bfs_buf body;
	size_t i;
	int r;

	if (etag_out && etag_len)
		etag_out[0] = '\0';
	if (!n || n > S3_MAX_PARTS)
		return BFS_ERR_INVAL;
	bfs_buf_init(&body, n * 160 + 256);
	if ((r = bfs_buf_adds(&body, "<CompleteMultipartUpload>")) < 0)
		goto out;
	for (i = 0; i < n; i++)
		if ((r = bfs_buf_addf(&body, "<Part><PartNumber>%u</PartNumber>"
				      "<ETag>\"%s\"</ETag></Part>",
				      parts[i].number, parts[i].etag)) < 0)
			goto out;
	if ((r = bfs_buf_adds(&body, "</CompleteMultipartUpload>")) < 0)
		goto out;
	r = s3_complete_send(vst, key, upload_id, &body, etag_out, etag_len);
out:
	bfs_buf_free(&body);
	return r;
}

static int s3_op_mpu_abort(void *vst, const char *key, const char *upload_id)
{
	return s3_abort_id(vst, key, upload_id);
}

struct s3_uploads_ctx {
	bfs_mpu_upload_fn fn;
	void *arg;
	int stopped;
};

static int s3_uploads_one(void *arg, const struct bfs_s3xml_upload *u)
{
	struct s3_uploads_ctx *c = arg;

	if (c->fn(c->arg, u->key, u->upload_id, u->initiated)) {
		c->stopped = 1;
		return 1;
	}
	return 0;
}

static int s3_op_mpu_list_uploads(void *vst, const char *prefix,
				  bfs_mpu_upload_fn fn, void *arg)
{
	struct s3_state *st = vst;
	struct s3_uploads_ctx c;
	struct bfs_s3xml_list_cb cb;
	struct bfs_s3xml_page page;
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char *km = NULL, *im = NULL;
	int r;

	memset(&page, 0, sizeof(page));
	memset(&cb, 0, sizeof(cb));
	c.fn = fn;
	c.arg = arg;
	c.stopped = 0;
	cb.upload = s3_uploads_one;
	cb.arg = &c;
	bfs_http_resp_init(&resp);
	for (;;) {
		bfs_rest_req_init(&q, "GET", NULL, BFS_OP_MULTIPART);
		if ((r = bfs_rest_q(&q, "uploads", "")) < 0 ||
		    (r = bfs_rest_q(&q, "prefix", prefix ? prefix : "")) < 0 ||
		    (r = bfs_rest_q(&q, "max-uploads", S3_LIST_PAGE)) < 0 ||
		    (r = bfs_rest_q(&q, "encoding-type", "url")) < 0 ||
		    (km && (r = bfs_rest_q(&q, "key-marker", km)) < 0) ||
		    (im && (r = bfs_rest_q(&q, "upload-id-marker", im)) < 0))
			goto out;
		q.max_body = BFS_S3XML_LIST_MAX;
		if ((r = s3_call(st, &q, &resp)) < 0)
			goto out;
		r = bfs_s3xml_parse_list(resp.body.p ? resp.body.p : "",
					 resp.body.len, &cb, 1, &page);
		if (r == BFS_S3XML_STOPPED || c.stopped) {
			r = 0;
			goto out;
		}
		if (r < 0)
			goto out;
		if (page.is_error) {
			r = bfs_s3err_map(200, page.error_code);
			goto out;
		}
		if (!page.is_truncated)
			break;
		if (!page.next_key_marker || (km && im &&
		    !strcmp(km, page.next_key_marker) &&
		    page.next_upload_id_marker &&
		    !strcmp(im, page.next_upload_id_marker))) {
			r = BFS_ERR_PROTOCOL;  /* would loop forever */
			goto out;
		}
		free(km);
		free(im);
		km = page.next_key_marker;
		im = page.next_upload_id_marker;
		page.next_key_marker = page.next_upload_id_marker = NULL;
		bfs_s3xml_page_clear(&page);
	}
	r = 0;
out:
	free(km);
	free(im);
	bfs_s3xml_page_clear(&page);
	bfs_http_resp_free(&resp);
	return r;
}

/* ------------------------------------------------------------ copy / meta */

/* "/bucket/encoded/key" for x-amz-copy-source (caller frees). */
static char *s3_copy_source(const struct s3_state *st, const char *src)
{
	struct bfs_buf b;

	bfs_buf_init(&b, S3_URL_MAX);
	if (bfs_buf_addf(&b, "/%s/", st->bucket) < 0 ||
	    bfs_sigv4_uri_encode(src, 1, &b) < 0)
		return NULL;
	return bfs_buf_steal(&b);
}

/*
 * A copy through this host for services without UploadPartCopy (gcs):
 * src of srcst (st itself, or another bucket's state) is read into an
 * unnamed temporary file ($TMPDIR, else /tmp) and stored as dst of st by
 * multipart upload with m (NULL: the source's sm).
 */
static int s3_copy_streamed(struct s3_state *st,
			    const struct s3_state *srcst,
			    const char *src, const char *dst,
			    const struct bfs_meta *sm, const struct bfs_meta *m)
{
	const char *dir = getenv("TMPDIR");
	struct bfs_meta got;
	int fd, r;

	fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return bfs_err_from_errno(errno);
	BFS_DEBUG("%s: copy of %s streams (%s has no UploadPartCopy)", st->name,
		  src, st->fl->name);
	/* the ops take a non-const state; a GET changes none of it */
	if ((r = bfs_rest_get_fd(&s3_dialect, (void *)(uintptr_t)srcst, src, fd,
				 &got)) == 0)
		r = s3_multipart(st, dst, fd, NULL, got.size, m ? m : sm, NULL, 0);
	close(fd);
	return r;
}

/*
 * Server-side copy src -> dst.  m NULL: metadata copied (COPY); else
 * replaced by m (REPLACE), keeping the source's other user metadata
 * (extra, from s3_head_ex).  sm: the source's metadata from a HEAD.
 */
static int s3_copy_across(struct s3_state *st, const struct s3_state *srcst,
			  const char *src, const char *dst,
			  const struct bfs_meta *sm, const struct bfs_meta *m,
			  const struct bfs_buf *extra);

static int s3_copy_with(struct s3_state *st, const char *src, const char *dst,
			const struct bfs_meta *sm, const struct bfs_meta *m,
			const struct bfs_buf *extra)
{
	return s3_copy_across(st, st, src, dst, sm, m, extra);
}

/* s3_copy_with from key src of bucket srcst (same service and account). */
static int s3_copy_across(struct s3_state *st, const struct s3_state *srcst,
			  const char *src, const char *dst,
			  const struct bfs_meta *sm, const struct bfs_meta *m,
			  const struct bfs_buf *extra)
{
	struct bfs_http_resp resp;
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	char *cs = NULL;
	int r = BFS_ERR_NOMEM;

	bfs_http_resp_init(&resp);
	if (!(cs = s3_copy_source(srcst, src)))
		goto out;
	if (sm->size > S3_COPY_MAX && st->fl->no_part_copy) {
		r = s3_copy_streamed(st, srcst, src, dst, sm, m);
		goto out;
	}
	if (sm->size > S3_COPY_MAX) {
		/* UploadPartCopy: metadata of the new object set at create */
		r = s3_multipart(st, dst, -1, cs, sm->size, m ? m : sm, NULL, 0);
		goto out;
	}
	bfs_rest_req_init(&q, "PUT", dst, BFS_OP_COPY);
	if ((r = bfs_rest_h(&q, "x-amz-copy-source", cs)) < 0 ||
	    (r = bfs_rest_h(&q, "x-amz-metadata-directive", m ? "REPLACE" : "COPY")) < 0)
		goto out;
	if (m && (r = s3_add_meta(&q, &mh, dst, m)) < 0)
		goto out;
	if (m && (r = bfs_rest_h_pairs(&q, extra)) < 0)
		goto out;
	q.check_200_error = 1;
	r = s3_call(st, &q, &resp);
out:
	bfs_http_resp_free(&resp);
	free(cs);
	return r;
}

static int s3_copy(void *vst, const char *src, const char *dst,
		   const struct bfs_meta *m)
{
	struct s3_state *st = vst;
	struct bfs_meta sm, nm;
	struct bfs_buf extra;
	int r;

	bfs_buf_init(&extra, S3_EXTRA_META_MAX);
	if ((r = s3_head_ex(st, src, &sm, &extra)) < 0)
		goto out;
	if (m) {
		/* REPLACE resets Content-Type: keep the source's unless given */
		nm = *m;
		if (!nm.content_type[0])
			memcpy(nm.content_type, sm.content_type, sizeof(nm.content_type));
		if (!nm.has_xattr)
			memcpy(nm.xattr, sm.xattr, sizeof(nm.xattr));
		r = s3_copy_with(st, src, dst, &sm, &nm, &extra);
	} else {
		r = s3_copy_with(st, src, dst, &sm, NULL, NULL);
	}
out:
	bfs_buf_free(&extra);
	return r;
}

/* The service host without a virtual-hosted "bucket." in front. */
static const char *s3_service_host(const struct s3_state *st)
{
	size_t bl = strlen(st->bucket);

	if (!st->uri_base[0] && !strncmp(st->host, st->bucket, bl) &&
	    st->host[bl] == '.')
		return st->host + bl + 1;
	return st->host;
}

/*
 * Server-side copy of key src of another bucket's state vsrc into dst:
 * only where both buckets are one service (flavor, scheme, host, region)
 * and one account (access key), since the request is signed with this
 * bucket's credentials; BFS_ERR_NOTSUP otherwise (the caller streams).
 * The object keeps its metadata.
 */
static int s3_copy_from(void *vst, void *vsrc, const char *src,
			const char *dst)
{
	struct s3_state *st = vst, *ss = vsrc;
	struct bfs_meta sm;
	int r;

	if (st->fl != ss->fl || strcmp(st->scheme, ss->scheme) ||
	    strcmp(s3_service_host(st), s3_service_host(ss)) ||
	    strcmp(st->region, ss->region) ||
	    strcmp(st->access_key, ss->access_key))
		return BFS_ERR_NOTSUP;
	if ((r = s3_head_ex(ss, src, &sm, NULL)) < 0)
		return r;
	return s3_copy_across(st, ss, src, dst, &sm, NULL, NULL);
}

static int s3_set_meta(void *vst, const char *key, const struct bfs_meta *m)
{
	struct s3_state *st = vst;
	struct bfs_meta cur, nm;
	struct bfs_buf extra;
	int r;

	bfs_buf_init(&extra, S3_EXTRA_META_MAX);
	if ((r = s3_head_ex(st, key, &cur, &extra)) < 0)
		goto out;
	/* fields m does not carry keep their stored value */
	nm = cur;
	bfs_rest_meta_merge(&nm, m);
	r = s3_copy_with(st, key, key, &cur, &nm, &extra);
out:
	bfs_buf_free(&extra);
	return r;
}

/* ------------------------------------------------------------------- list */

struct s3_list_ctx {
	struct s3_state *st;
	const char *prefix;
	bfs_list_fn fn;
	void *arg;
	unsigned flags;          /* BFS_LIST_UNSAFE: hidden keys as NULL */
	int stopped;
};

static uint64_t s3_hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ? h : 1;
}

/* Logs a hidden key once per provider instance (bounded memory). */
static void s3_hidden(struct s3_state *st, const char *key)
{
	uint64_t h = s3_hash_key(key);
	size_t i, slot;
	int first = 1;

	pthread_mutex_lock(&st->hidden_lock);
	slot = (size_t)(h % S3_HIDDEN_SLOTS);
	for (i = 0; i < S3_HIDDEN_SLOTS; i++, slot = (slot + 1) % S3_HIDDEN_SLOTS) {
		if (st->hidden[slot] == h) {
			first = 0;
			break;
		}
		if (!st->hidden[slot]) {
			if (st->nhidden < S3_HIDDEN_SLOTS / 2) {
				st->hidden[slot] = h;
				st->nhidden++;
			}
			break;
		}
	}
	pthread_mutex_unlock(&st->hidden_lock);
	if (first) {
		char shown[96];
		size_t j;

		/* control characters are not echoed into the log */
		for (j = 0; key[j] && j < sizeof(shown) - 1; j++)
			shown[j] = (unsigned char)key[j] < 0x20 || key[j] == 0x7f
				   ? '?' : key[j];
		shown[j] = '\0';
		BFS_WARN("%s: key \"%s%s\" is not a safe path: hidden", st->name,
			 shown, key[j] ? "..." : "");
	}
}

/* Delivers one entry (object key or common prefix) to the caller. */
static int s3_list_emit(struct s3_list_ctx *c, const char *key, int is_dir_hint,
			const struct bfs_meta *m)
{
	const char *rel;
	char name[BFS_KEY_MAX + 1];
	size_t n;
	int is_dir = is_dir_hint;

	if (!strcmp(key, c->prefix))
		return 0;                /* the listed folder's own marker */
	rel = bfs_key_strip_prefix(c->prefix, key);
	n = rel ? strlen(rel) : 0;
	if (n && rel[n - 1] == '/') {
		is_dir = 1;
		n--;
	}
	if (!rel || n == 0 || n > BFS_KEY_MAX) {
		s3_hidden(c->st, key);
		if (!(c->flags & BFS_LIST_UNSAFE))
			return 0;
		if (c->fn(c->arg, NULL, is_dir, m) != 0) {
			c->stopped = 1;
			return BFS_S3XML_STOPPED;
		}
		return 0;
	}
	memcpy(name, rel, n);
	name[n] = '\0';
	if (c->fn(c->arg, name, is_dir, m) != 0) {
		c->stopped = 1;
		return BFS_S3XML_STOPPED;
	}
	return 0;
}

static int s3_list_object(void *arg, const struct bfs_s3xml_object *o)
{
	struct s3_list_ctx *c = arg;
	struct bfs_meta m;
	size_t n = strlen(o->key);

	memset(&m, 0, sizeof(m));
	m.size = o->size;
	m.mtime = o->mtime;          /* LastModified; has_mtime: metadata only */
	snprintf(m.etag, sizeof(m.etag), "%s", o->etag);
	if (n && o->key[n - 1] == '/')
		snprintf(m.content_type, sizeof(m.content_type), "%s", S3_DIR_CTYPE);
	return s3_list_emit(c, o->key, 0, &m);
}

static int s3_list_prefix(void *arg, const char *prefix)
{
	return s3_list_emit(arg, prefix, 1, NULL);
}

static int s3_list(void *vst, const char *prefix, unsigned flags,
		   bfs_list_fn fn, void *arg)
{
	struct s3_state *st = vst;
	struct s3_list_ctx c;
	struct bfs_s3xml_list_cb cb;
	struct bfs_s3xml_page page;
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char *token = NULL;
	int r;

	memset(&page, 0, sizeof(page));
	bfs_http_resp_init(&resp);
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.prefix = prefix ? prefix : "";
	c.flags = flags;
	c.fn = fn;
	c.arg = arg;
	memset(&cb, 0, sizeof(cb));
	cb.object = s3_list_object;
	cb.prefix = s3_list_prefix;
	cb.arg = &c;
	for (;;) {
		bfs_rest_req_init(&q, "GET", NULL, BFS_OP_LIST);
		if ((r = bfs_rest_q(&q, "list-type", "2")) < 0 ||
		    (r = bfs_rest_q(&q, "prefix", c.prefix)) < 0 ||
		    (r = bfs_rest_q(&q, "max-keys", S3_LIST_PAGE)) < 0 ||
		    (r = bfs_rest_q(&q, "encoding-type", "url")) < 0 ||
		    (!(flags & BFS_LIST_RECURSIVE) &&
		     (r = bfs_rest_q(&q, "delimiter", "/")) < 0) ||
		    (token && (r = bfs_rest_q(&q, "continuation-token", token)) < 0))
			goto out;
		/* the whole page is received before any callback runs, so a
		 * retried request never delivers an entry twice */
		q.max_body = BFS_S3XML_LIST_MAX;
		if ((r = s3_call(st, &q, &resp)) < 0)
			goto out;
		r = bfs_s3xml_parse_list(resp.body.p ? resp.body.p : "",
					 resp.body.len, &cb, 1, &page);
		if (r == BFS_S3XML_STOPPED || c.stopped) {
			r = 0;
			goto out;
		}
		if (r < 0)
			goto out;
		if (page.is_error) {
			r = bfs_s3err_map(200, page.error_code);
			goto out;
		}
		if (flags & BFS_LIST_ONE_PAGE) {
			r = page.is_truncated ? BFS_LIST_MORE : 0;
			goto out;
		}
		if (!page.is_truncated)
			break;
		if (!page.next_token || !*page.next_token ||
		    (token && !strcmp(token, page.next_token))) {
			r = BFS_ERR_PROTOCOL;  /* would loop forever */
			goto out;
		}
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		bfs_s3xml_page_clear(&page);
	}
	r = 0;
out:
	bfs_s3xml_page_clear(&page);
	free(token);
	bfs_http_resp_free(&resp);
	return r;
}

/* ---------------------------------------------------------------- presign */

static int s3_presign(void *vst, const char *key, long expires, char **url)
{
	struct s3_state *st = vst;
	struct bfs_sigv4_kv host = { "host", NULL };
	struct bfs_sigv4_req sr;
	struct bfs_buf uri, qs, out;
	int r;

	*url = NULL;
	bfs_buf_init(&uri, S3_URL_MAX);
	bfs_buf_init(&qs, S3_URL_MAX);
	bfs_buf_init(&out, 2 * S3_URL_MAX);
	host.value = st->host;
	if ((r = s3_uri(st, key, &uri)) < 0)
		goto out;
	memset(&sr, 0, sizeof(sr));
	sr.method = "GET";
	sr.uri = bfs_buf_str(&uri);
	sr.headers = &host;
	sr.nheaders = 1;
	sr.region = st->region;
	sr.service = "s3";
	sr.access_key = st->access_key;
	sr.secret = st->secret;
	sr.session_token = st->token;
	sr.now = time(NULL);
	if ((r = bfs_sigv4_presign(&sr, expires, &qs)) < 0 ||
	    (r = bfs_buf_addf(&out, "%s://%s%s?%s", st->scheme, st->host,
			      bfs_buf_str(&uri), bfs_buf_str(&qs))) < 0)
		goto out;
	*url = bfs_buf_steal(&out);
	r = *url ? 0 : BFS_ERR_NOMEM;
out:
	bfs_buf_free(&out);
	bfs_buf_free(&qs);
	bfs_buf_free(&uri);
	return r;
}

const struct bfs_provider_ops bfs_provider_s3 = {
	.name = "s3",
	.create = s3_create,
	.destroy = s3_destroy,
	.head = s3_head,
	.get_range = bfs_rest_op_get_range,
	.get_fd = bfs_rest_op_get_fd,
	.put_fd = s3_put_fd,
	.put_buf = s3_put_buf,
	.del = s3_del,
	.list = s3_list,
	.copy = s3_copy,
	.set_meta = s3_set_meta,
	.rename = NULL,
	.presign = s3_presign,
	.statfs = NULL,
	.mpu_begin = s3_op_mpu_begin,
	.mpu_part = s3_op_mpu_part,
	.mpu_list_parts = s3_op_mpu_list_parts,
	.mpu_complete = s3_op_mpu_complete,
	.mpu_abort = s3_op_mpu_abort,
	.mpu_list_uploads = s3_op_mpu_list_uploads,
	.copy_from = s3_copy_from,
};
