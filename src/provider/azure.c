/*
 * azure.c - the Azure Blob Storage provider (bfs_provider_azure): block
 * blobs of one container, Shared Key or SAS authorization.
 *
 * How a request goes: az_call() builds the URL (endpoint path, container,
 * every blob-name segment URI-encoded once), adds x-ms-date and the
 * pinned x-ms-version (BFS_AZ_VERSION), signs with Shared Key
 * (src/http/azsign.c) or appends the configured SAS token, runs one
 * exchange through the http layer, maps the reply with bfs_s3err_map()
 * (the x-ms-error-code header first: Azure's codes sit in the same table)
 * and loops through bfs_retry_next() while the failure is transient
 * (ServerBusy, 5xx, timeouts), signing each attempt afresh.
 *
 * Layout, readable by blobfuse2 and by s3fs-minded tools alike:
 * metadata x-ms-meta-mode (decimal st_mode with type bits), -uid, -gid,
 * -mtime ("SECONDS[.NNNNNNNNN]"), as s3fs writes x-amz-meta-*; a symlink
 * is a blob whose body is the target and whose mode is S_IFLNK|0777.
 * A folder "a/b/" is written as blobfuse2 writes it: a zero-length blob
 * "a/b" with metadata hdi_isfolder=true.  Both that and an "a/b/" marker
 * blob (other tools) are read as folders.  A folder blob is never shown
 * as a file: head("a/b") answers NOTFOUND for it, and a listing gives
 * its name once even when a BlobPrefix "a/b/" follows.
 *
 * Uploads: up to BFS_MPU_SINGLE_MAX one Put Blob; above, Put Block of
 * the equal blocks of bfs_mpu_plan() by AZ_WORKERS threads and one Put Block List.  The same
 * requests are the multipart ops of the vfs layer (src/vfs/mpu.c):
 *   upload id  "az1:RAND:MODE:UID:GID:MTIME:NSEC:FLAGS:CTYPE[:XATTR]": a
 *              random 16-hex tag plus the attributes Put Block List must
 *              set (Azure takes metadata at commit, S3 at create); XATTR,
 *              the s3fs-encoded user xattrs (never a ':' in it), is there
 *              when FLAGS has 16;
 *   block id   base64 of RAND + part number (5 digits) + "-" + MD5 of
 *              the block in hex: 54 bytes, the same length for every
 *              block (Azure requires it), and the MD5 comes back in Get
 *              Block List, so resume after a restart keeps exactly the
 *              blocks that hold the staged bytes;
 *   list parts Get Block List of the uncommitted blocks with that tag;
 *   complete   Put Block List (<Latest>, so a retried commit whose first
 *              answer was lost succeeds again);
 *   abort      Azure has no call that drops uncommitted blocks of one
 *              upload: a blob never committed is deleted (that deletes
 *              its blocks), and the tag is remembered so that a Put
 *              Block of it still on the wire is dropped once it lands;
 *              the blocks of a committed blob stay until its next
 *              commit (Put Blob or Put Block List discards every
 *              uncommitted block) or the service collects them after
 *              7 days.  There is no listing of uploads in progress to
 *              sweep: mpu_list_uploads is NULL, the ids the journal
 *              recorded are aborted at start as on S3.
 * Requests go through the shared REST layer (src/provider/rest.c,
 * az_dialect): az_call signs, rest.c sends, retries and reads metadata.
 * Rename copies (Copy Blob, waiting while x-ms-copy-status is pending)
 * then deletes; chmod/chown/utimens are Set Blob Metadata with every
 * other x-ms-meta-* value kept.
 */
#include <errno.h>
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
#include <openssl/evp.h>

#include "bfs_azsign.h"
#include "bfs_azxml.h"
#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_crypto.h"
#include "bfs_error.h"
#include "bfs_http.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_mpu.h"
#include "bfs_provider.h"
#include "bfs_rest.h"

#define AZ_MAX_BLOCKS 10000ull
#define AZ_WORKERS 4
#define AZ_LIST_PAGE "5000"
#define AZ_LIST_ONE_PAGE "1000"     /* BFS_LIST_PAGE_KEYS */
#define AZ_URL_MAX (16 * 1024)
#define AZ_MAX_EXTRA_META 16
#define AZ_EXTRA_META_MAX 8192       /* Azure's whole-metadata limit */
#define AZ_TAG_LEN 16
#define AZ_BLOCKID_RAW 54            /* tag 16 + part 5 + '-' + md5 32 */
#define AZ_COPY_WAIT_MS 600000       /* a pending Copy Blob: 10 minutes */
#define AZ_DEFAULT_ENDPOINT "https://%s.blob.core.windows.net"
#define AZ_ABORTED_MAX 64            /* tags of uploads aborted here, kept */

struct az_state {
	const struct bfs_rest_dialect *dialect;  /* first: bfs_rest_op_* */
	char *name;                  /* bucket dir name, for logs */
	char *account;
	char *container;
	char *scheme;                /* "https" | "http" */
	char *host;                  /* Host: host[:port] */
	char *base;                  /* "/container" or "/account/container" */
	unsigned char key[BFS_AZ_KEY_MAX]; /* decoded account key; wiped */
	size_t keylen;               /* 0: SAS token mode */
	char *sas;                   /* SAS query without '?'; wiped */
	struct bfs_http *http;
	struct bfs_retry_policy retry;
	/* The last AZ_ABORTED_MAX upload tags mpu_abort dropped, so that a
	 * Put Block of one still on the wire (Azure ties no block to an
	 * upload: it would land as a new uncommitted blob) is dropped again
	 * and answers NOTFOUND, as UploadPart after an abort does on S3. */
	pthread_mutex_t aborted_lock;
	char aborted[AZ_ABORTED_MAX][AZ_TAG_LEN + 1]; /* guarded by aborted_lock */
	unsigned aborted_next;       /* next slot; guarded by aborted_lock */
};

/* ---------------------------------------------------------------- helpers */

/* "/base/a%20b/c": the encoded path of blob key (NULL: the container). */
static int az_path(const struct az_state *st, const char *key, struct bfs_buf *b)
{
	int r;

	if ((r = bfs_buf_adds(b, st->base)) < 0)
		return r;
	if (key && ((r = bfs_buf_adds(b, "/")) < 0 ||
		    (r = bfs_sigv4_uri_encode(key, 1, b)) < 0))
		return r;
	return 0;
}

/* ------------------------------------------------------------ the request */

/* What one attempt of az_call() signs with (bfs_rest_run callbacks). */
struct az_sign_ctx {
	struct az_state *st;
	const char *path;            /* encoded path of the URL */
	char date[32], clen[32];
	char auth[256];              /* this attempt's signature; wiped */
};

/* x-ms-date, x-ms-version, q's headers, the Shared Key Authorization
 * (none with a SAS token: it is in the URL) and an empty Expect. */
static int az_sign(void *vc, const struct bfs_rest_req *q,
		   struct bfs_sigv4_kv *out, size_t cap, size_t *n)
{
	struct az_sign_ctx *c = vc;
	struct az_state *st = c->st;
	struct bfs_azsign_req ar;
	size_t i, ns = 0;
	int r;

	if (q->nhdr + 5 > cap)
		return BFS_ERR_TOOBIG;
	bfs_azsign_date(time(NULL), c->date);
	out[ns].name = "x-ms-date";
	out[ns++].value = c->date;
	out[ns].name = "x-ms-version";
	out[ns++].value = BFS_AZ_VERSION;
	for (i = 0; i < q->nhdr; i++)
		out[ns++] = q->hdr[i];
	if (st->keylen) {
		/* Content-Length is signed, but curl sends it: signed from a
		 * slot past the lines sent */
		out[ns].name = "content-length";
		out[ns].value = q->has_body ? c->clen : "";
		memset(&ar, 0, sizeof(ar));
		ar.method = q->method;
		ar.account = st->account;
		ar.path = c->path;
		ar.query = q->query;
		ar.nquery = q->nquery;
		ar.headers = out;
		ar.nheaders = ns + 1;
		if ((r = bfs_azsign_sign(&ar, st->key, st->keylen, c->auth,
					 sizeof(c->auth), NULL)) < 0)
			return r;
		out[ns].name = "Authorization";
		out[ns++].value = c->auth;
	}
	/* no "Expect: 100-continue" round trip per block */
	out[ns].name = "Expect";
	out[ns++].value = NULL;
	*n = ns;
	return 0;
}

/* The x-ms-error-code header first, then the status: bfs_s3err_map(). */
static int az_map(void *vc, const struct bfs_rest_req *q,
		  const struct bfs_http_resp *resp)
{
	struct az_sign_ctx *c = vc;
	char code[128];

	code[0] = '\0';
	if (resp->status >= 300 &&
	    bfs_http_resp_header(resp, "x-ms-error-code", code,
				 sizeof(code)) == 0)
		BFS_DEBUG("azure %s %s %s: %d %s", c->st->name, q->method,
			  q->key ? q->key : "", resp->status, code);
	return bfs_s3err_map(resp->status, code);
}

/*
 * Sends q with retries (bfs_rest_run), signed afresh each attempt;
 * resp (initialized by the caller) holds the last reply.  0 on a 2xx,
 * else the mapped error.
 */
static int az_call(void *vst, const struct bfs_rest_req *q,
		   struct bfs_http_resp *resp)
{
	struct az_state *st = vst;
	struct az_sign_ctx c;
	struct bfs_buf path, url;
	size_t i;
	int r = 0;

	bfs_buf_init(&path, AZ_URL_MAX);
	bfs_buf_init(&url, 2 * AZ_URL_MAX);
	memset(&c, 0, sizeof(c));
	if ((r = az_path(st, q->key, &path)) < 0 ||
	    (r = bfs_buf_addf(&url, "%s://%s%s", st->scheme, st->host,
			      bfs_buf_str(&path))) < 0)
		goto out;
	for (i = 0; i < q->nquery; i++) {
		if ((r = bfs_buf_adds(&url, i ? "&" : "?")) < 0 ||
		    (r = bfs_sigv4_uri_encode(q->query[i].name, 0, &url)) < 0 ||
		    (r = bfs_buf_adds(&url, "=")) < 0 ||
		    (r = bfs_sigv4_uri_encode(q->query[i].value ? q->query[i].value
					      : "", 0, &url)) < 0)
			goto out;
	}
	if (st->sas && (r = bfs_buf_addf(&url, "%s%s", q->nquery ? "&" : "?",
					 st->sas)) < 0)
		goto out;
	c.st = st;
	c.path = bfs_buf_str(&path);
	snprintf(c.clen, sizeof(c.clen), "%" PRIu64,
		 q->body_fd >= 0 ? q->fd_len : (uint64_t)q->body_len);
	r = bfs_rest_run(st->http, &st->retry, q, bfs_buf_str(&url), az_sign,
			 az_map, &c, resp);
out:
	OPENSSL_cleanse(c.auth, sizeof(c.auth));
	if (url.p && st->sas)
		OPENSSL_cleanse(url.p, url.len);
	bfs_buf_free(&url);
	bfs_buf_free(&path);
	return r;
}

/* --------------------------------------------------------------- metadata */

/* Fills the s3fs-style fields of m from metadata values (any may be
 * NULL); a folder blob without a mode is a 0755 folder. */
static void az_meta_values(struct bfs_meta *m, const char *mode,
			   const char *uid, const char *gid, const char *mtime,
			   int folder)
{
	bfs_rest_meta_values(m, mode, uid, gid, mtime, folder);
	if (folder && !(m->mode & S_IFMT))
		m->mode = S_IFDIR | 0755;
}

/* Fills m from the headers of a HEAD / GET; *folder: hdi_isfolder=true. */
static void az_meta_from_resp(const struct bfs_http_resp *resp,
			      const char *key, struct bfs_meta *m, int *folder)
{
	char v[16];
	int isdir;

	(void)key;
	bfs_rest_meta_base(resp, m);
	isdir = bfs_http_resp_header(resp, "x-ms-meta-hdi_isfolder", v,
				     sizeof(v)) == 0 && !strcasecmp(v, "true");
	/* s3fs's user xattrs go as x-ms-meta-xattr */
	bfs_rest_meta_posix(resp, "x-ms-meta-", isdir, m);
	if (isdir && !(m->mode & S_IFMT))
		m->mode = S_IFDIR | 0755;
	if (folder)
		*folder = isdir;
}

static const struct bfs_rest_dialect az_dialect = {
	.meta_prefix = "x-ms-meta-",
	.range_hdr = "x-ms-range",
	.call = az_call,
	.meta = az_meta_from_resp,
};

static const char *az_content_type(const char *key, const struct bfs_meta *m)
{
	if (m && m->has_mode && S_ISLNK(m->mode))
		return "application/octet-stream";
	if (m && m->has_mode && S_ISDIR(m->mode))
		return "application/octet-stream";
	if (m && m->content_type[0])
		return m->content_type;
	return bfs_content_type(key);
}

/* Adds the x-ms-meta-* headers of m (and its content type when ctype). */
static int az_add_meta(struct bfs_rest_req *q, struct bfs_rest_meta_hdrs *mh,
		       const char *key, const struct bfs_meta *m,
		       const char *ctype_hdr)
{
	int r;

	if (ctype_hdr) {
		snprintf(mh->ctype, sizeof(mh->ctype), "%s",
			 az_content_type(key, m));
		if ((r = bfs_rest_h(q, ctype_hdr, mh->ctype)) < 0)
			return r;
	}
	return bfs_rest_add_meta(q, mh, "x-ms-meta-", m);
}

static int az_is_dir_key(const char *key)
{
	size_t n = strlen(key);

	return n && key[n - 1] == '/';
}

/* "a/b/" -> "a/b" (caller frees). */
static char *az_folder_blob(const char *key)
{
	size_t n = strlen(key);

	return strndup(key, n ? n - 1 : 0);
}

/* ------------------------------------------------------- create / destroy */

static void az_destroy(void *vst)
{
	struct az_state *st = vst;

	if (!st)
		return;
	bfs_http_free(st->http);
	OPENSSL_cleanse(st->key, sizeof(st->key));
	pthread_mutex_destroy(&st->aborted_lock);
	if (st->sas) {
		OPENSSL_cleanse(st->sas, strlen(st->sas));
		free(st->sas);
	}
	free(st->base);
	free(st->host);
	free(st->scheme);
	free(st->container);
	free(st->account);
	free(st->name);
	free(st);
}

static int az_create(const struct bfs_bucket_conf *bc, void **out, char *err,
		     size_t errlen)
{
	struct az_state *st = NULL;
	struct bfs_buf ep;
	const char *p, *hostpart, *path, *sas;
	const char *bname = bc->name ? bc->name : "?";
	size_t hlen, plen;
	int r = BFS_ERR_CONFIG, https = 0;

	*out = NULL;
	bfs_buf_init(&ep, 2048);
	if (!(st = calloc(1, sizeof(*st)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_init(&st->aborted_lock, NULL);
	st->dialect = &az_dialect;
	bfs_retry_policy_default(&st->retry);
	if (!bc->bucket_name || !*bc->bucket_name || !bc->account_id ||
	    !*bc->account_id ||
	    !((bc->secret_access_key && *bc->secret_access_key) ||
	      (bc->session_token && *bc->session_token))) {
		snprintf(err, errlen, "bucket '%s': azure needs account_name, "
			 "bucket_name and account_key or sas_token", bname);
		goto out;
	}
	if (bc->secret_access_key && *bc->secret_access_key &&
	    bfs_azsign_key_decode(bc->secret_access_key, st->key,
				  &st->keylen) < 0) {
		snprintf(err, errlen, "bucket '%s': account_key is not base64",
			 bname);
		goto out;
	}
	if (!st->keylen) {
		sas = bc->session_token;
		if (*sas == '?')
			sas++;
		if (!(st->sas = strdup(sas))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
	}
	if (bc->endpoint && *bc->endpoint)
		r = bfs_buf_adds(&ep, bc->endpoint);
	else
		r = bfs_buf_addf(&ep, AZ_DEFAULT_ENDPOINT, bc->account_id);
	if (r < 0)
		goto out;
	p = bfs_buf_str(&ep);
	if (!strncasecmp(p, "https://", 8)) {
		https = 1;
		hostpart = p + 8;
	} else if (!strncasecmp(p, "http://", 7)) {
		hostpart = p + 7;
	} else {
		snprintf(err, errlen, "bucket '%s': endpoint must start with "
			 "http:// or https://", bname);
		r = BFS_ERR_CONFIG;
		goto out;
	}
	hlen = strcspn(hostpart, "/?#");
	path = hostpart + hlen;
	plen = strlen(path);
	while (plen && path[plen - 1] == '/')
		plen--;
	if (hlen == 0 || strcspn(path, "?#") < strlen(path)) {
		snprintf(err, errlen, "bucket '%s': endpoint must be "
			 "scheme://host[:port][/path]", bname);
		r = BFS_ERR_CONFIG;
		goto out;
	}
	st->scheme = strdup(https ? "https" : "http");
	st->host = strndup(hostpart, hlen);
	st->account = strdup(bc->account_id);
	st->container = strdup(bc->bucket_name);
	st->name = strdup(bc->name ? bc->name : bc->bucket_name);
	if ((st->base = malloc(plen + strlen(bc->bucket_name) + 2)))
		sprintf(st->base, "%.*s/%s", (int)plen, path, bc->bucket_name);
	if (!st->scheme || !st->host || !st->account || !st->container ||
	    !st->name || !st->base) {
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
	az_destroy(st);
	return r;
}

/* ------------------------------------------------------------ simple ops */

/* Get Blob Properties of the blob itself; folder: hdi_isfolder. */
static int az_head_blob(struct az_state *st, const char *blob,
			struct bfs_meta *m, int *folder, struct bfs_buf *extra)
{
	return bfs_rest_head(&az_dialect, st, blob, m, folder, extra,
			     AZ_MAX_EXTRA_META);
}

/*
 * HEAD of key.  A folder key "a/b/" is the folder blob "a/b"
 * (hdi_isfolder) or else an "a/b/" marker blob; *blob_out (may be NULL;
 * caller frees) names the blob that holds it.  A file key whose blob is a
 * folder blob is NOTFOUND.
 */
static int az_head_ex(struct az_state *st, const char *key, struct bfs_meta *m,
		      struct bfs_buf *extra, char **blob_out)
{
	char *fb = NULL;
	int r, folder = 0;

	if (blob_out)
		*blob_out = NULL;
	if (!az_is_dir_key(key)) {
		r = az_head_blob(st, key, m, &folder, extra);
		if (r == 0 && folder)
			r = BFS_ERR_NOTFOUND;
		if (r == 0 && blob_out && !(*blob_out = strdup(key)))
			r = BFS_ERR_NOMEM;
		return r;
	}
	if (!(fb = az_folder_blob(key)))
		return BFS_ERR_NOMEM;
	r = *fb ? az_head_blob(st, fb, m, &folder, extra) : BFS_ERR_NOTFOUND;
	if (r == 0 && !folder)
		r = BFS_ERR_NOTFOUND;        /* a file "a/b", not the folder */
	if (r == BFS_ERR_NOTFOUND) {
		free(fb);
		if (extra)
			bfs_buf_reset(extra);
		if (!(fb = strdup(key)))
			return BFS_ERR_NOMEM;
		r = az_head_blob(st, key, m, &folder, extra);
	}
	if (r == 0) {
		if (!(m->mode & S_IFMT) || !S_ISDIR(m->mode))
			m->mode = S_IFDIR | (m->has_mode ? (m->mode & 07777) : 0755);
		if (blob_out) {
			*blob_out = fb;
			fb = NULL;
		}
	}
	free(fb);
	return r;
}

static int az_head(void *vst, const char *key, struct bfs_meta *m)
{
	return az_head_ex(vst, key, m, NULL, NULL);
}

/* One Put Blob of a memory body or a file, with metadata. */
static int az_put_single(struct az_state *st, const char *key, const void *data,
			 size_t len, int fd, uint64_t fdlen,
			 const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	char *fb = NULL;
	const char *blob = key;
	int r;

	if (az_is_dir_key(key)) {
		/* a folder: blobfuse2's zero-length "a/b" + hdi_isfolder */
		if (!(fb = az_folder_blob(key))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		blob = fb;
		data = "";
		len = 0;
		fd = -1;
	}
	bfs_rest_req_init(&q, "PUT", blob, BFS_OP_PUT);
	if ((r = bfs_rest_h(&q, "x-ms-blob-type", "BlockBlob")) < 0 ||
	    (r = az_add_meta(&q, &mh, key, m, "x-ms-blob-content-type")) < 0 ||
	    (fb && (r = bfs_rest_h(&q, "x-ms-meta-hdi_isfolder", "true")) < 0))
		goto out;
	q.has_body = 1;
	if (fd >= 0) {
		q.body_fd = fd;
		q.fd_len = fdlen;
	} else {
		q.body = data;
		q.body_len = len;
	}
	r = bfs_rest_send(&az_dialect, st, &q, etag_out, etag_len);
out:
	free(fb);
	return r;
}

static int az_put_buf(void *vst, const char *key, const void *data, size_t len,
		      const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	if (etag_out && etag_len)
		etag_out[0] = '\0';
	return az_put_single(vst, key, data, len, -1, 0, m, etag_out, etag_len);
}

static int az_del_blob(struct az_state *st, const char *blob)
{
	return bfs_rest_delete(&az_dialect, st, blob);
}

static int az_del(void *vst, const char *key)
{
	struct az_state *st = vst;
	struct bfs_meta m;
	char *fb;
	int r, folder = 0;

	if (!az_is_dir_key(key))
		return az_del_blob(st, key);
	/* both folder forms; "a/b" only when it is a folder blob */
	if (!(fb = az_folder_blob(key)))
		return BFS_ERR_NOMEM;
	r = *fb ? az_head_blob(st, fb, &m, &folder, NULL) : BFS_ERR_NOTFOUND;
	if (r == 0 && folder)
		r = az_del_blob(st, fb);
	else if (r == BFS_ERR_NOTFOUND)
		r = 0;
	free(fb);
	if (r == 0)
		r = az_del_blob(st, key);
	return r;
}

/* ------------------------------------------------------------ block ids */

/* Upload id of a new upload: a random tag and the attributes of m. */
static int az_upload_id(const char *key, const struct bfs_meta *m, char *id,
			size_t idlen)
{
	unsigned char rnd[AZ_TAG_LEN / 2];
	char tag[AZ_TAG_LEN + 1], ct[128];
	const char *ctype = az_content_type(key, m);
	unsigned flags = 0;
	int n;

	if (bfs_random(rnd, sizeof(rnd)) < 0)
		return BFS_ERR_CRYPTO;
	bfs_hex_encode(rnd, sizeof(rnd), tag);
	tag[AZ_TAG_LEN] = '\0';
	if (m) {
		flags = (m->has_mode ? 1u : 0) | (m->has_uid ? 2u : 0) |
			(m->has_gid ? 4u : 0) | (m->has_mtime ? 8u : 0) |
			(m->xattr[0] ? 16u : 0);
		/* s3fs's encoding escapes ':' (bfs_xattr.h); the id's last
		 * field could not hold one */
		if (strchr(m->xattr, ':'))
			return BFS_ERR_INVAL;
	}
	/* the content type ends at the xattr field's ':' */
	snprintf(ct, sizeof(ct), "%s", ctype);
	for (n = 0; (flags & 16) && ct[n]; n++)
		if (ct[n] == ':')
			ct[n] = '_';
	n = snprintf(id, idlen, "az1:%s:%" PRIu32 ":%" PRIu32 ":%" PRIu32 ":%"
		     PRId64 ":%ld:%u:%s%s%s", tag, m ? m->mode : 0,
		     m ? m->uid : 0, m ? m->gid : 0, m ? m->mtime : 0,
		     m ? m->mtime_nsec : 0, flags, ct, flags & 16 ? ":" : "",
		     flags & 16 ? m->xattr : "");
	return n < 0 || (size_t)n >= idlen ? BFS_ERR_TOOBIG : 0;
}

/* Parses an upload id: tag (17 bytes) and the attributes into m. */
static int az_upload_parse(const char *id, char tag[AZ_TAG_LEN + 1],
			   struct bfs_meta *m)
{
	unsigned long long mode, uid, gid;
	long long mtime;
	long nsec;
	unsigned flags;
	const char *ct;
	size_t ctlen;
	int off = 0;

	memset(m, 0, sizeof(*m));
	if (strncmp(id, "az1:", 4) || strlen(id) < 4 + AZ_TAG_LEN + 1 ||
	    id[4 + AZ_TAG_LEN] != ':')
		return BFS_ERR_NOTFOUND;     /* not ours: treated as gone */
	memcpy(tag, id + 4, AZ_TAG_LEN);
	tag[AZ_TAG_LEN] = '\0';
	if (sscanf(id + 5 + AZ_TAG_LEN, "%llu:%llu:%llu:%lld:%ld:%u:%n", &mode,
		   &uid, &gid, &mtime, &nsec, &flags, &off) != 6 || off <= 0)
		return BFS_ERR_NOTFOUND;
	m->mode = (uint32_t)mode;
	m->uid = (uint32_t)uid;
	m->gid = (uint32_t)gid;
	m->mtime = mtime;
	m->mtime_nsec = nsec;
	m->has_mode = !!(flags & 1);
	m->has_uid = !!(flags & 2);
	m->has_gid = !!(flags & 4);
	m->has_mtime = !!(flags & 8);
	ct = id + 5 + AZ_TAG_LEN + off;
	ctlen = strcspn(ct, ":");
	if (flags & 16) {
		if (!ct[ctlen] || strlen(ct + ctlen + 1) >= sizeof(m->xattr))
			return BFS_ERR_NOTFOUND;
		strcpy(m->xattr, ct + ctlen + 1);
	} else {
		ctlen = strlen(ct);      /* ids of before the xattr field */
	}
	m->has_xattr = 1;
	snprintf(m->content_type, sizeof(m->content_type), "%.*s", (int)ctlen,
		 ct);
	return 0;
}

/* Block id (base64, 72 chars + NUL) of part number of tag with md5 hex. */
static void az_block_id(const char *tag, unsigned number, const char *md5,
			char out[80])
{
	char raw[AZ_BLOCKID_RAW + 1];

	snprintf(raw, sizeof(raw), "%.16s%05u-%.32s", tag, number, md5);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw,
			AZ_BLOCKID_RAW);
}

/* Decodes a listed block id of tag: number and md5; 0 or not ours (-1). */
static int az_block_parse(const char *b64, const char *tag, unsigned *number,
			  char md5[33])
{
	unsigned char raw[AZ_BLOCKID_RAW + 3];
	char num[6];
	int i;

	if (strlen(b64) != 72 ||
	    EVP_DecodeBlock(raw, (const unsigned char *)b64, 72) != AZ_BLOCKID_RAW)
		return -1;
	if (memcmp(raw, tag, AZ_TAG_LEN) || raw[AZ_TAG_LEN + 5] != '-')
		return -1;
	memcpy(num, raw + AZ_TAG_LEN, 5);
	num[5] = '\0';
	for (i = 0; i < 5; i++)
		if (num[i] < '0' || num[i] > '9')
			return -1;
	memcpy(md5, raw + AZ_TAG_LEN + 6, 32);
	md5[32] = '\0';
	for (i = 0; i < 32; i++)
		if (bfs_hex_value(md5[i]) < 0)
			return -1;
	*number = (unsigned)strtoul(num, NULL, 10);
	return *number >= 1 && *number <= AZ_MAX_BLOCKS ? 0 : -1;
}

/* ----------------------------------------------------------------- blocks */

/* 1 when the upload tagged tag was aborted here (mark: record it). */
static int az_aborted(struct az_state *st, const char *tag, int mark)
{
	unsigned i;
	int found = 0;

	pthread_mutex_lock(&st->aborted_lock);
	for (i = 0; i < AZ_ABORTED_MAX && !found; i++)
		found = !strcmp(st->aborted[i], tag);
	if (mark && !found) {
		snprintf(st->aborted[st->aborted_next], AZ_TAG_LEN + 1, "%s", tag);
		st->aborted_next = (st->aborted_next + 1) % AZ_ABORTED_MAX;
	}
	pthread_mutex_unlock(&st->aborted_lock);
	return found;
}

/*
 * Deletes the uncommitted blocks of key where Azure can: a blob never
 * committed (Get Blob Properties: 404) is deleted, which deletes its
 * uncommitted blocks, with If-None-Match: * so that a blob another
 * client committed meanwhile is not (412: left as it is).  The blocks
 * of a committed blob stay until its next commit or the service's
 * 7-day collection (file comment).
 */
static int az_drop_uncommitted(struct az_state *st, const char *key)
{
	struct bfs_http_resp resp;
	struct bfs_meta m;
	struct bfs_rest_req q;
	int r, folder = 0;

	r = bfs_rest_head(&az_dialect, st, key, &m, &folder, NULL, 0);
	if (r != BFS_ERR_NOTFOUND)
		return r;                    /* 0: committed, blocks stay */
	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "DELETE", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_h(&q, "If-None-Match", "*")) == 0)
		r = az_call(st, &q, &resp);
	if (r == BFS_ERR_NOTFOUND || r == BFS_ERR_PRECONDITION)
		r = 0;                       /* no blocks, or committed meanwhile */
	bfs_http_resp_free(&resp);
	return r;
}

/* Put Block `number` of the upload tagged tag from fd [off, off + len). */
static int az_put_block(struct az_state *st, const char *key, const char *tag,
			unsigned number, int fd, uint64_t off, uint64_t len,
			char *etag, size_t etag_len)
{
	struct bfs_rest_req q;
	unsigned char bin[16];
	char md5[33], bid[80], md5b64[32];
	int r;

	if (az_aborted(st, tag, 0))
		return BFS_ERR_NOTFOUND;     /* the upload is gone */
	if ((r = bfs_mpu_md5_fd(fd, off, len, md5)) < 0)
		return r;
	if (bfs_hex_decode(md5, 16, bin) < 0)
		return BFS_ERR_INTERNAL;
	EVP_EncodeBlock((unsigned char *)md5b64, bin, 16);
	az_block_id(tag, number, md5, bid);
	bfs_rest_req_init(&q, "PUT", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "comp", "block")) < 0 ||
	    (r = bfs_rest_q(&q, "blockid", bid)) < 0 ||
	    (r = bfs_rest_h(&q, "Content-MD5", md5b64)) < 0)
		return r;
	q.has_body = 1;
	q.body_fd = fd;
	q.fd_off = off;
	q.fd_len = len;
	if ((r = bfs_rest_send(&az_dialect, st, &q, NULL, 0)) < 0)
		return r;
	if (az_aborted(st, tag, 0)) {
		/* aborted while this block was on the wire: drop it too */
		az_drop_uncommitted(st, key);
		return BFS_ERR_NOTFOUND;
	}
	/* the part's etag is its MD5: Get Block List gives it back */
	snprintf(etag, etag_len, "%s", md5);
	return 0;
}

/*
 * Put Block List of parts[0..n) of the upload id: commits the blob with
 * the attributes the id carries.  An InvalidBlockList (a block is gone:
 * another commit of the blob discarded it) is NOTFOUND, "the upload is
 * gone", so the caller starts over.
 */
static int az_commit(struct az_state *st, const char *key, const char *id,
		     const struct bfs_mpu_part *parts, size_t n,
		     char *etag_out, size_t etag_len)
{
	struct bfs_http_resp resp;
	struct bfs_rest_meta_hdrs mh;
	struct bfs_meta m, got;
	struct bfs_buf body;
	struct bfs_rest_req q;
	char tag[AZ_TAG_LEN + 1], bid[80], code[64];
	size_t i;
	int r;

	bfs_http_resp_init(&resp);
	bfs_buf_init(&body, n * 100 + 128);
	if ((r = az_upload_parse(id, tag, &m)) < 0)
		goto out;
	if ((r = bfs_buf_adds(&body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
			      "<BlockList>")) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (strlen(parts[i].etag) != 32) {
			r = BFS_ERR_INVAL;
			goto out;
		}
		az_block_id(tag, parts[i].number, parts[i].etag, bid);
		if ((r = bfs_buf_addf(&body, "<Latest>%s</Latest>", bid)) < 0)
			goto out;
	}
	if ((r = bfs_buf_adds(&body, "</BlockList>")) < 0)
		goto out;
	bfs_rest_req_init(&q, "PUT", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "comp", "blocklist")) < 0 ||
	    (r = az_add_meta(&q, &mh, key, &m, "x-ms-blob-content-type")) < 0)
		goto out;
	q.has_body = 1;
	q.body = body.p;
	q.body_len = body.len;
	r = az_call(st, &q, &resp);
	if (r == BFS_ERR_INVAL &&
	    bfs_http_resp_header(&resp, "x-ms-error-code", code,
				 sizeof(code)) == 0 &&
	    !strcmp(code, "InvalidBlockList"))
		r = BFS_ERR_NOTFOUND;
	if (r < 0)
		goto out;
	az_meta_from_resp(&resp, key, &got, NULL);
	if (etag_out && etag_len)
		snprintf(etag_out, etag_len, "%s", got.etag);
	r = 0;
out:
	bfs_buf_free(&body);
	bfs_http_resp_free(&resp);
	return r;
}

/* A whole-file block upload (put_fd above BFS_MPU_SINGLE_MAX). */
struct az_up {
	struct az_state *st;
	const char *key;
	const char *tag;
	int fd;
	uint64_t size, block;
	unsigned nblocks;
	struct bfs_mpu_part *parts;  /* per block; written by its worker only */
};

/* Put Block of block i (0-based) of u (a bfs_rest_parallel() job). */
static int az_up_block(void *vu, unsigned i)
{
	struct az_up *u = vu;
	uint64_t off = (uint64_t)i * u->block;
	uint64_t len = bfs_mpu_part_len(u->block, u->size, i + 1);

	u->parts[i].number = i + 1;
	u->parts[i].size = len;
	return az_put_block(u->st, u->key, u->tag, i + 1, u->fd, off, len,
			    u->parts[i].etag, sizeof(u->parts[i].etag));
}

static int az_put_fd(void *vst, const char *key, int fd, uint64_t size,
		     const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct az_state *st = vst;
	struct az_up u;
	char id[BFS_MPU_ID_MAX], tag[AZ_TAG_LEN + 1];
	struct bfs_meta pm;
	int r;

	if (etag_out && etag_len)
		etag_out[0] = '\0';
	if (size <= BFS_MPU_SINGLE_MAX || az_is_dir_key(key))
		return az_put_single(st, key, NULL, 0, fd, size, m, etag_out,
				     etag_len);
	memset(&u, 0, sizeof(u));
	if ((r = az_upload_id(key, m, id, sizeof(id))) < 0 ||
	    (r = az_upload_parse(id, tag, &pm)) < 0)
		goto out;
	u.st = st;
	u.key = key;
	u.tag = tag;
	u.fd = fd;
	u.size = size;
	if ((r = bfs_mpu_plan(size, BFS_MPU_BASE, BFS_MPU_AZ_BLOCK_MAX, &u.block,
			      &u.nblocks)) < 0)
		goto out;
	if (!(u.parts = calloc(u.nblocks, sizeof(*u.parts)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = bfs_rest_parallel(u.nblocks, AZ_WORKERS, az_up_block, &u)) < 0)
		goto out;
	r = az_commit(st, key, id, u.parts, u.nblocks, etag_out, etag_len);
out:
	free(u.parts);
	return r;
}

/* ------------------------------------------ multipart, driven by the caller */

static int az_op_mpu_begin(void *vst, const char *key, const struct bfs_meta *m,
			   char *upload_id, size_t idlen)
{
	(void)vst;
	/* nothing to send: the id is ours, the blocks name it */
	return az_upload_id(key, m, upload_id, idlen);
}

static int az_op_mpu_part(void *vst, const char *key, const char *upload_id,
			  unsigned number, int fd, uint64_t off, uint64_t len,
			  char *etag, size_t etag_len)
{
	char tag[AZ_TAG_LEN + 1];
	struct bfs_meta m;
	int r;

	if (number < 1 || number > AZ_MAX_BLOCKS || fd < 0 || etag_len < 33)
		return BFS_ERR_INVAL;
	if ((r = az_upload_parse(upload_id, tag, &m)) < 0)
		return r;
	return az_put_block(vst, key, tag, number, fd, off, len, etag, etag_len);
}

struct az_blocks_ctx {
	const char *tag;
	struct bfs_mpu_part *a;
	size_t n, alloc;
};

static int az_blocks_add(void *arg, const struct bfs_azxml_block *b)
{
	struct az_blocks_ctx *c = arg;
	struct bfs_mpu_part *na;
	char md5[33];
	unsigned number;
	size_t i, j;

	if (b->committed || az_block_parse(b->name, c->tag, &number, md5) < 0)
		return 0;
	if (c->n == c->alloc) {
		if (c->alloc >= AZ_MAX_BLOCKS)
			return BFS_ERR_PROTOCOL;
		c->alloc = c->alloc ? 2 * c->alloc : 64;
		if (!(na = realloc(c->a, c->alloc * sizeof(*na))))
			return BFS_ERR_NOMEM;
		c->a = na;
	}
	/* kept sorted by number; a number listed twice keeps the last */
	for (i = 0; i < c->n && c->a[i].number < number; i++)
		;
	if (i < c->n && c->a[i].number == number) {
		c->a[i].size = b->size;
		memcpy(c->a[i].etag, md5, 33);
		return 0;
	}
	for (j = c->n; j > i; j--)
		c->a[j] = c->a[j - 1];
	c->a[i].number = number;
	c->a[i].size = b->size;
	memcpy(c->a[i].etag, md5, 33);
	c->n++;
	return 0;
}

static int az_op_mpu_list_parts(void *vst, const char *key,
				const char *upload_id,
				struct bfs_mpu_part **parts, size_t *n)
{
	struct az_state *st = vst;
	struct az_blocks_ctx c;
	struct bfs_http_resp resp;
	struct bfs_meta m;
	struct bfs_rest_req q;
	char tag[AZ_TAG_LEN + 1];
	int r;

	*parts = NULL;
	*n = 0;
	memset(&c, 0, sizeof(c));
	bfs_http_resp_init(&resp);
	if ((r = az_upload_parse(upload_id, tag, &m)) < 0)
		goto out;
	c.tag = tag;
	bfs_rest_req_init(&q, "GET", key, BFS_OP_MULTIPART);
	if ((r = bfs_rest_q(&q, "comp", "blocklist")) < 0 ||
	    (r = bfs_rest_q(&q, "blocklisttype", "uncommitted")) < 0)
		goto out;
	q.max_body = 8u << 20;
	r = az_call(st, &q, &resp);
	if (r == BFS_ERR_NOTFOUND) {
		r = 0;                  /* no blob, no blocks: nothing stored */
		goto done;
	}
	if (r < 0)
		goto out;
	if ((r = bfs_azxml_parse_blocks(resp.body.p ? resp.body.p : "",
					resp.body.len, az_blocks_add, &c)) < 0)
		goto out;
done:
	*parts = c.a;
	*n = c.n;
	c.a = NULL;
	r = 0;
out:
	free(c.a);
	bfs_http_resp_free(&resp);
	return r;
}

static int az_op_mpu_complete(void *vst, const char *key, const char *upload_id,
			      const struct bfs_mpu_part *parts, size_t n,
			      char *etag_out, size_t etag_len)
{
	if (etag_out && etag_len)
		etag_out[0] = '\0';
	if (!n || n > AZ_MAX_BLOCKS)
		return BFS_ERR_INVAL;
	return az_commit(vst, key, upload_id, parts, n, etag_out, etag_len);
}

/*
 * Drops the blocks of an abandoned upload where Azure can
 * (az_drop_uncommitted): blocks of every upload of that blob name go, so
 * a concurrent upload of the same name finds its blocks gone at commit
 * (InvalidBlockList: NOTFOUND) and starts over.  The tag is remembered
 * first, so that a Put Block of this upload still on the wire is
 * dropped after it lands.
 */
static int az_op_mpu_abort(void *vst, const char *key, const char *upload_id)
{
	struct az_state *st = vst;
	char tag[AZ_TAG_LEN + 1];
	struct bfs_meta m;

	if (az_upload_parse(upload_id, tag, &m) == 0)
		az_aborted(st, tag, 1);
	return az_drop_uncommitted(st, key);
}

/* ------------------------------------------------------------ copy / meta */

/* Full URL of blob key as a copy source (caller frees). */
static char *az_source_url(const struct az_state *st, const char *key)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 2 * AZ_URL_MAX);
	if (bfs_buf_addf(&b, "%s://%s", st->scheme, st->host) < 0 ||
	    az_path(st, key, &b) < 0 ||
	    (st->sas && bfs_buf_addf(&b, "?%s", st->sas) < 0)) {
		bfs_buf_free(&b);
		return NULL;
	}
	return bfs_buf_steal(&b);
}

/* Waits while dst's copy is pending (Copy Blob may finish later). */
static int az_copy_wait(struct az_state *st, const char *dst)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char status[32];
	int r, waited = 0, step = 50;

	for (;;) {
		bfs_http_resp_init(&resp);
		bfs_rest_req_init(&q, "HEAD", dst, BFS_OP_HEAD);
		r = az_call(st, &q, &resp);
		status[0] = '\0';
		if (r == 0)
			bfs_http_resp_header(&resp, "x-ms-copy-status", status,
					     sizeof(status));
		bfs_http_resp_free(&resp);
		if (r < 0)
			return r;
		if (strcmp(status, "pending"))
			break;
		if (waited >= AZ_COPY_WAIT_MS)
			return BFS_ERR_TIMEOUT;
		usleep((useconds_t)step * 1000);
		waited += step;
		if (step < 1000)
			step *= 2;
	}
	return !status[0] || !strcmp(status, "success") ? 0 : BFS_ERR_SERVER;
}

/*
 * Copy Blob src of container ss (st itself or another bucket's state of
 * the same account) -> dst (blob names).  m NULL: the source's metadata
 * goes along; else m's attributes plus extra (the source's other
 * metadata).
 */
static int az_copy_blob(struct az_state *st, const struct az_state *ss,
			const char *src, const char *dst,
			const struct bfs_meta *m, const struct bfs_buf *extra)
{
	struct bfs_http_resp resp;
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	char *url = NULL, status[32];
	int r = BFS_ERR_NOMEM;

	bfs_http_resp_init(&resp);
	if (!(url = az_source_url(ss, src)))
		goto out;
	bfs_rest_req_init(&q, "PUT", dst, BFS_OP_COPY);
	if ((r = bfs_rest_h(&q, "x-ms-copy-source", url)) < 0)
		goto out;
	if (m && ((r = az_add_meta(&q, &mh, dst, m, NULL)) < 0 ||
		  (r = bfs_rest_h_pairs(&q, extra)) < 0))
		goto out;
	q.has_body = 1;
	q.body = "";
	if ((r = az_call(st, &q, &resp)) < 0)
		goto out;
	status[0] = '\0';
	bfs_http_resp_header(&resp, "x-ms-copy-status", status, sizeof(status));
	r = !strcmp(status, "pending") ? az_copy_wait(st, dst)
	    : (!status[0] || !strcmp(status, "success") ? 0 : BFS_ERR_SERVER);
out:
	if (url)
		OPENSSL_cleanse(url, strlen(url));
	free(url);
	bfs_http_resp_free(&resp);
	return r;
}

static int az_copy(void *vst, const char *src, const char *dst,
		   const struct bfs_meta *m)
{
	struct az_state *st = vst;
	struct bfs_meta sm, nm;
	struct bfs_buf extra;
	char *blob = NULL;
	int r;

	bfs_buf_init(&extra, AZ_EXTRA_META_MAX);
	if ((r = az_head_ex(st, src, &sm, &extra, &blob)) < 0)
		goto out;
	if (az_is_dir_key(src) || az_is_dir_key(dst)) {
		/* a folder is a marker: write a new one */
		r = az_put_single(st, dst, "", 0, -1, 0, m ? m : &sm, NULL, 0);
		goto out;
	}
	if (m) {
		/* the source's xattrs go along unless m carries a set */
		nm = *m;
		if (!nm.has_xattr)
			memcpy(nm.xattr, sm.xattr, sizeof(nm.xattr));
		r = az_copy_blob(st, st, blob, dst, &nm, &extra);
	} else {
		r = az_copy_blob(st, st, blob, dst, NULL, NULL);
	}
out:
	free(blob);
	bfs_buf_free(&extra);
	return r;
}

/*
 * Copy Blob of key src of another bucket's state vsrc into dst, metadata
 * kept: only within one account on one endpoint (scheme, host, account),
 * where this bucket's Shared Key (or the source's SAS in its URL)
 * authorizes reading the source; BFS_ERR_NOTSUP otherwise (the caller
 * streams).  A folder is written anew as a folder blob.
 */
static int az_copy_from(void *vst, void *vsrc, const char *src,
			const char *dst)
{
	struct az_state *st = vst, *ss = vsrc;
	struct bfs_meta sm;
	char *blob = NULL;
	int r;

	if (strcmp(st->scheme, ss->scheme) || strcmp(st->host, ss->host) ||
	    strcmp(st->account, ss->account) || (!st->keylen && !ss->sas))
		return BFS_ERR_NOTSUP;
	if ((r = az_head_ex(ss, src, &sm, NULL, &blob)) < 0)
		return r;
	if (az_is_dir_key(src) || az_is_dir_key(dst))
		r = az_put_single(st, dst, "", 0, -1, 0, &sm, NULL, 0);
	else
		r = az_copy_blob(st, ss, blob, dst, NULL, NULL);
	free(blob);
	return r;
}

static int az_set_meta(void *vst, const char *key, const struct bfs_meta *m)
{
	struct az_state *st = vst;
	struct bfs_http_resp resp;
	struct bfs_rest_meta_hdrs mh;
	struct bfs_meta cur, nm;
	struct bfs_buf extra;
	struct bfs_rest_req q;
	char *blob = NULL;
	int r;

	bfs_buf_init(&extra, AZ_EXTRA_META_MAX);
	bfs_http_resp_init(&resp);
	if ((r = az_head_ex(st, key, &cur, &extra, &blob)) < 0)
		goto out;
	nm = cur;
	bfs_rest_meta_merge(&nm, m);
	/* Set Blob Metadata replaces all metadata: the others go along */
	bfs_rest_req_init(&q, "PUT", blob, BFS_OP_COPY);
	if ((r = bfs_rest_q(&q, "comp", "metadata")) < 0 ||
	    (r = az_add_meta(&q, &mh, key, &nm, NULL)) < 0 ||
	    (r = bfs_rest_h_pairs(&q, &extra)) < 0)
		goto out;
	q.has_body = 1;
	q.body = "";
	r = az_call(st, &q, &resp);
out:
	free(blob);
	bfs_http_resp_free(&resp);
	bfs_buf_free(&extra);
	return r;
}

/* ------------------------------------------------------------------- list */

struct az_list_ctx {
	struct az_state *st;
	const char *prefix;
	bfs_list_fn fn;
	void *arg;
	unsigned flags;          /* BFS_LIST_UNSAFE: hidden names as NULL */
	int stopped;
	/* names of folder blobs given, so a BlobPrefix of the same folder
	 * is not given again: open addressing over 64-bit hashes */
	uint64_t *seen;
	size_t nseen, cap;
};

static uint64_t az_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* 1 when h is in the set; adds it when add.  <0 on ENOMEM. */
static int az_seen(struct az_list_ctx *c, uint64_t h, int add)
{
	size_t i, slot;

	if (add && (c->nseen + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		uint64_t *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return BFS_ERR_NOMEM;
		for (i = 0; i < c->cap; i++) {
			if (!c->seen[i])
				continue;
			for (slot = c->seen[i] % ncap; ns[slot];
			     slot = (slot + 1) % ncap)
				;
			ns[slot] = c->seen[i];
		}
		free(c->seen);
		c->seen = ns;
		c->cap = ncap;
	}
	if (!c->cap)
		return 0;
	for (slot = h % c->cap; c->seen[slot]; slot = (slot + 1) % c->cap)
		if (c->seen[slot] == h)
			return 1;
	if (add) {
		c->seen[slot] = h;
		c->nseen++;
	}
	return 0;
}

static int az_list_blob(void *arg, const struct bfs_azxml_blob *b)
{
	struct az_list_ctx *c = arg;
	const char *rel;
	char name[BFS_KEY_MAX + 1];
	struct bfs_meta m;
	size_t n;
	int is_dir = b->is_prefix || b->is_folder, r;

	if (!strcmp(b->name, c->prefix))
		return 0;                /* the listed folder's own marker */
	rel = bfs_key_strip_prefix(c->prefix, b->name);
	n = rel ? strlen(rel) : 0;
	if (n && rel[n - 1] == '/') {
		is_dir = 1;
		n--;
	}
	if (!rel || n == 0 || n > BFS_KEY_MAX) {
		BFS_DEBUG("%s: blob name is not a safe path: hidden", c->st->name);
		/* BFS_LIST_UNSAFE: its folder exists all the same */
		if (!(c->flags & BFS_LIST_UNSAFE))
			return 0;
		if (c->fn(c->arg, NULL, is_dir, NULL) != 0) {
			c->stopped = 1;
			return BFS_AZXML_STOPPED;
		}
		return 0;
	}
	memcpy(name, rel, n);
	name[n] = '\0';
	if (is_dir) {
		uint64_t h = az_hash(name, n);

		/* "a/b" (hdi_isfolder) sorts before "a/b/": give it once */
		if ((r = az_seen(c, h, 1)) < 0)
			return r;
		if (r == 1)
			return 0;
	}
	memset(&m, 0, sizeof(m));
	if (!b->is_prefix) {
		m.size = b->size;
		m.mtime = b->mtime;
		snprintf(m.etag, sizeof(m.etag), "%s", b->etag);
		snprintf(m.content_type, sizeof(m.content_type), "%s",
			 b->content_type);
		az_meta_values(&m, b->meta_mode, b->meta_uid, b->meta_gid,
			       b->meta_mtime, is_dir);
		if (is_dir && m.has_mode && !S_ISDIR(m.mode))
			m.mode = S_IFDIR | (m.mode & 07777);
	}
	if (c->fn(c->arg, name, is_dir, b->is_prefix ? NULL : &m) != 0) {
		c->stopped = 1;
		return BFS_AZXML_STOPPED;
	}
	return 0;
}

static int az_list(void *vst, const char *prefix, unsigned flags,
		   bfs_list_fn fn, void *arg)
{
	struct az_state *st = vst;
	struct az_list_ctx c;
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char *marker = NULL, *next = NULL;
	int r;

	bfs_http_resp_init(&resp);
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.prefix = prefix ? prefix : "";
	c.fn = fn;
	c.arg = arg;
	c.flags = flags;
	for (;;) {
		bfs_rest_req_init(&q, "GET", NULL, BFS_OP_LIST);
		if ((r = bfs_rest_q(&q, "restype", "container")) < 0 ||
		    (r = bfs_rest_q(&q, "comp", "list")) < 0 ||
		    (r = bfs_rest_q(&q, "prefix", c.prefix)) < 0 ||
		    (r = bfs_rest_q(&q, "maxresults",
				    (flags & BFS_LIST_ONE_PAGE) ?
				    AZ_LIST_ONE_PAGE : AZ_LIST_PAGE)) < 0 ||
		    (r = bfs_rest_q(&q, "include", "metadata")) < 0 ||
		    (!(flags & BFS_LIST_RECURSIVE) &&
		     (r = bfs_rest_q(&q, "delimiter", "/")) < 0) ||
		    (marker && (r = bfs_rest_q(&q, "marker", marker)) < 0))
			goto out;
		/* the whole page arrives before any callback runs, so a
		 * retried request never delivers an entry twice */
		q.max_body = 64u << 20;
		if ((r = az_call(st, &q, &resp)) < 0)
			goto out;
		r = bfs_azxml_parse_list(resp.body.p ? resp.body.p : "",
					 resp.body.len, az_list_blob, &c, &next);
		if (r == BFS_AZXML_STOPPED || c.stopped) {
			r = 0;
			goto out;
		}
		if (r < 0)
			goto out;
		if (flags & BFS_LIST_ONE_PAGE) {
			r = next ? BFS_LIST_MORE : 0;
			goto out;
		}
		if (!next)
			break;
		if (marker && !strcmp(marker, next)) {
			r = BFS_ERR_PROTOCOL;  /* would loop forever */
			goto out;
		}
		free(marker);
		marker = next;
		next = NULL;
	}
	r = 0;
out:
	free(next);
	free(marker);
	free(c.seen);
	bfs_http_resp_free(&resp);
	return r;
}

/* ---------------------------------------------------------------- presign */

static int az_presign(void *vst, const char *key, long expires, char **url)
{
	struct az_state *st = vst;
	struct bfs_buf sas, out;
	int r;

	*url = NULL;
	if (!st->keylen)
		return BFS_ERR_NOTSUP;   /* a SAS token cannot sign another */
	bfs_buf_init(&sas, AZ_URL_MAX);
	bfs_buf_init(&out, 2 * AZ_URL_MAX);
	if ((r = bfs_azsign_sas(st->account, st->container, key, st->key,
				st->keylen, time(NULL), expires, &sas)) < 0 ||
	    (r = bfs_buf_addf(&out, "%s://%s", st->scheme, st->host)) < 0 ||
	    (r = az_path(st, key, &out)) < 0 ||
	    (r = bfs_buf_addf(&out, "?%s", bfs_buf_str(&sas))) < 0)
		goto out;
	*url = bfs_buf_steal(&out);
	r = *url ? 0 : BFS_ERR_NOMEM;
out:
	bfs_buf_free(&out);
	bfs_buf_free(&sas);
	return r;
}

const struct bfs_provider_ops bfs_provider_azure = {
	.name = "azure",
	.create = az_create,
	.destroy = az_destroy,
	.head = az_head,
	.get_range = bfs_rest_op_get_range,
	.get_fd = bfs_rest_op_get_fd,
	.put_fd = az_put_fd,
	.put_buf = az_put_buf,
	.del = az_del,
	.list = az_list,
	.copy = az_copy,
	.set_meta = az_set_meta,
	.rename = NULL,
	.presign = az_presign,
	.statfs = NULL,
	.mpu_begin = az_op_mpu_begin,
	.mpu_part = az_op_mpu_part,
	.mpu_list_parts = az_op_mpu_list_parts,
	.mpu_complete = az_op_mpu_complete,
	.mpu_abort = az_op_mpu_abort,
	.mpu_list_uploads = NULL,
	.copy_from = az_copy_from,
};
