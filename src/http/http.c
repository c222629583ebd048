/*
 * http.c - the only file that includes curl (see bfs_http.h).
 *
 * How it works: a client owns a share handle (DNS and TLS session caches,
 * guarded by one mutex per curl_lock_data; NOT the connection cache,
 * which libcurl does not support sharing between concurrent threads: 32
 * parallel HEADs crashed in it) and a stack of
 * idle easy handles.  bfs_http_do() pops a handle (or makes one), sets
 * every option afresh (curl_easy_reset keeps the live connection, so
 * keep-alive survives), runs the transfer and pushes the handle back.
 * Request bodies come from memory or from a file range read with pread
 * (a seek callback lets curl rewind); response bodies of a 2xx go to the
 * requested sink, any other status to a capped error buffer.  TLS
 * verification is always on.  Debug logs show method, host, key, status
 * and latency only: never headers (Authorization, tokens).
 *
 * Lock order: pool_lock and the share locks are never held together.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bfs_error.h"
#include "bfs_http.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_provider.h"

#define HTTP_POOL_MAX 32              /* idle handles kept */
#define HTTP_ERRBODY_MAX (64 * 1024)
#define HTTP_HEADERS_MAX (32 * 1024)
#define HTTP_DEFAULT_BODY_MAX (1024 * 1024)
#define HTTP_DEFAULT_CONNECT 10
#define HTTP_DEFAULT_LOW_SPEED 60
/* Request body chunk curl asks read_cb for.  curl's default (64 KiB)
 * made an 8 MiB part 128 preads, 128 polls and 128 sends; 512 KiB cuts
 * those syscalls 8x.  The buffer is per easy handle, allocated by curl
 * for uploads only: 16 parts in flight hold 8 MiB. */
#define HTTP_UPLOAD_CHUNK (512L * 1024)
#define HTTP_RECV_BIG (256L * 1024)   /* receive buffer of big GETs to memory */

struct bfs_http {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[HTTP_POOL_MAX];    /* idle handles; guarded by pool_lock */
	int npool;                    /* guarded by pool_lock */
};

/* Per-transfer state handed to the callbacks. */
struct xfer {
	const struct bfs_http_req *req;
	struct bfs_http_resp *resp;
	CURL *easy;
	uint64_t sent;               /* request body bytes handed to curl */
	int status_checked;          /* first body byte seen */
	int to_error;                /* body goes to resp->body (non-2xx) */
	int err;                     /* error raised in a callback */
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static int http_global_ok;

static void http_global_init(void)
{
	http_global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access a, void *u)
{
	struct bfs_http *h = u;

	(void)c;
	(void)a;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *u)
{
	struct bfs_http *h = u;

	(void)c;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

int bfs_http_new(struct bfs_http **out)
{
	struct bfs_http *h = NULL;
	int r = BFS_ERR_NOMEM, i;

	*out = NULL;
	pthread_once(&http_once, http_global_init);
	if (!http_global_ok)
		return BFS_ERR_INTERNAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	h->share = curl_share_init();
	if (!h->share)
		goto out;
	if (curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) {
		r = BFS_ERR_INTERNAL;
		goto out;
	}
	*out = h;
	h = NULL;
	r = 0;
out:
	bfs_http_free(h);
	return r;
}

void bfs_http_free(struct bfs_http *h)
{
	int i;

	if (!h)
		return;
	/* easy handles first: they reference the share */
	for (i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	free(h);
}

static CURL *pool_get(struct bfs_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->npool > 0)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_reset(c);
	else
		c = curl_easy_init();
	return c;
}

/* Returns a handle to the pool; broken ones (after an error) are dropped. */
static void pool_put(struct bfs_http *h, CURL *c, int keep)
{
	if (!c)
		return;
	pthread_mutex_lock(&h->pool_lock);
	if (keep && h->npool < HTTP_POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

void bfs_http_resp_init(struct bfs_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	bfs_buf_init(&resp->body, HTTP_DEFAULT_BODY_MAX);
	bfs_buf_init(&resp->headers, HTTP_HEADERS_MAX);
}

void bfs_http_resp_free(struct bfs_http_resp *resp)
{
	bfs_buf_free(&resp->body);
	bfs_buf_free(&resp->headers);
	resp->status = 0;
	resp->got = 0;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	const struct bfs_http_req *req = x->req;
	size_t want = size * nmemb;
	uint64_t left = req->body_len - x->sent;
	ssize_t n;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (req->body_fd >= 0) {
		do {
			n = pread(req->body_fd, buf, want,
				  (off_t)(req->body_off + x->sent));
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			/* short file: the caller's size was wrong */
			x->err = n < 0 ? bfs_err_from_errno(errno) : BFS_ERR_IO;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)n;
	} else {
		memcpy(buf, (const char *)req->body + x->sent, want);
	}
	x->sent += want;
	return want;
}

static int seek_cb(void *ud, curl_off_t off, int origin)
{
	struct xfer *x = ud;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	const struct bfs_http_req *req = x->req;
	struct bfs_http_resp *resp = x->resp;
	size_t n = size * nmemb, done;
	long status = 0;
	ssize_t w;
	int r;

	if (!x->status_checked) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		x->to_error = status < 200 || status >= 300;
		if (x->to_error || req->sink == BFS_HTTP_TO_BUF) {
			bfs_buf_free(&resp->body);
			bfs_buf_init(&resp->body, x->to_error ? HTTP_ERRBODY_MAX
				     : (req->max_body ? req->max_body
					: HTTP_DEFAULT_BODY_MAX));
		}
		x->status_checked = 1;
	}
	if (x->to_error || req->sink == BFS_HTTP_TO_BUF) {
		if ((r = bfs_buf_add(&resp->body, data, n)) < 0) {
			x->err = r;
			return 0;
		}
		resp->got += x->to_error ? 0 : n;
		return n;
	}
	switch (req->sink) {
	case BFS_HTTP_TO_FD:
		for (done = 0; done < n; done += (size_t)w) {
			w = pwrite(req->out_fd, data + done, n - done,
				   (off_t)(req->out_off + resp->got + done));
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w <= 0) {
				x->err = w < 0 ? bfs_err_from_errno(errno) : BFS_ERR_IO;
				return 0;
			}
		}
		break;
	case BFS_HTTP_TO_MEM:
		if (n > req->out_cap - resp->got) {
			x->err = BFS_ERR_TOOBIG;
			return 0;
		}
		memcpy(req->out_mem + resp->got, data, n);
		break;
	case BFS_HTTP_TO_FN:
		if ((r = req->out_fn(req->out_arg, data, n)) < 0) {
			x->err = r;
			return 0;
		}
		break;
	default:
		x->err = BFS_ERR_INTERNAL;
		return 0;
	}
	resp->got += n;
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	/* a new status line (redirect, 100 Continue) starts a new header set */
	if (n >= 5 && !strncmp(data, "HTTP/", 5))
		bfs_buf_reset(&x->resp->headers);
	if (bfs_buf_add(&x->resp->headers, data, n) < 0) {
		x->err = BFS_ERR_TOOBIG;
		return 0;
	}
	return n;
}

static int map_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return BFS_ERR_TIMEOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return BFS_ERR_CONFIG;
	case CURLE_OUT_OF_MEMORY:
		return BFS_ERR_NOMEM;
	case CURLE_READ_ERROR:
	case CURLE_WRITE_ERROR:
		return BFS_ERR_IO;
	default:
		/* resolve/connect failures, resets, partial replies, TLS handshake */
		return BFS_ERR_NETWORK;
	}
}

/* Host part of the URL for logs: between "://" and the next '/'. */
static void log_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

int bfs_http_do(struct bfs_http *h, const struct bfs_http_req *req,
		struct bfs_http_resp *resp)
{
	const struct bfs_provider_globals *g = bfs_provider_get_globals();
	struct curl_slist *hdrs = NULL, *tmp;
	struct xfer x;
	CURLcode cc;
	CURL *c = NULL;
	long status = 0;
	curl_off_t up = 0, down = 0;
	double secs = 0;
	char host[256];
	size_t i;
	int r = BFS_ERR_NOMEM, keep = 0, has_ctype = 0;

	bfs_buf_reset(&resp->body);
	bfs_buf_reset(&resp->headers);
	resp->status = 0;
	resp->got = 0;
	resp->seconds = 0;
	memset(&x, 0, sizeof(x));
	x.req = req;
	x.resp = resp;

	c = pool_get(h);
	if (!c)
		goto out;
	x.easy = c;
	for (i = 0; i < req->nheaders; i++) {
		if (!strncasecmp(req->headers[i], "content-type:", 13))
			has_ctype = 1;
		if (!(tmp = curl_slist_append(hdrs, req->headers[i])))
			goto out;
		hdrs = tmp;
	}
	/* no "Expect: 100-continue"; no curl default form content type */
	if (!(tmp = curl_slist_append(hdrs, "Expect:")))
		goto out;
	hdrs = tmp;
	if (!has_ctype && !strcmp(req->method, "POST")) {
		if (!(tmp = curl_slist_append(hdrs, "Content-Type:")))
			goto out;
		hdrs = tmp;
	}

	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* S3 keys are literal: "a/../b" must not be squashed by curl */
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (g && g->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, g->ca_bundle);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			 (long)(g && g->connect_timeout > 0 ? g->connect_timeout
				: HTTP_DEFAULT_CONNECT));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 (long)(g && g->low_speed_time > 0 ? g->low_speed_time
				: HTTP_DEFAULT_LOW_SPEED));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);

	/* A big body read into memory comes in HTTP_RECV_BIG reads instead
	 * of curl's 16 KiB ones (one recv and one poll each); other
	 * requests keep curl's default (the handle is reused). */
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE,
			 req->sink == BFS_HTTP_TO_MEM &&
			 req->out_cap >= HTTP_RECV_BIG ? (long)HTTP_RECV_BIG :
			 (long)CURL_MAX_WRITE_SIZE);
	if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "PUT") || !strcmp(req->method, "POST")) {
		if (!strcmp(req->method, "PUT")) {
			curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)req->body_len);
		} else {
			curl_easy_setopt(c, CURLOPT_POST, 1L);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)req->body_len);
		}
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_CHUNK);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, &x);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	}
	if (req->body_len && req->body_fd < 0 && !req->body) {
		r = BFS_ERR_INVAL;
		goto out;
	}

	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &secs);
	curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
	resp->seconds = secs;
	bfs_metrics_bytes((uint64_t)(up > 0 ? up : 0), (uint64_t)(down > 0 ? down : 0));
	if (cc != CURLE_OK) {
		r = x.err ? x.err : map_curl(cc);
		bfs_metrics_request(req->op, 0);
		if (bfs_log_get_level() >= BFS_LOG_DEBUG) {
			log_host(req->url, host, sizeof(host));
			BFS_DEBUG("http %s %s %s: %s (%s) %.0f ms", req->method, host,
				  req->log_key ? req->log_key : "",
				  curl_easy_strerror(cc), bfs_strerror(r), secs * 1000);
		}
		goto out;
	}
	resp->status = (int)status;
	bfs_metrics_request(req->op, (int)status);
	if (bfs_log_get_level() >= BFS_LOG_DEBUG) {
		log_host(req->url, host, sizeof(host));
		BFS_DEBUG("http %s %s %s: %ld %.0f ms", req->method, host,
			  req->log_key ? req->log_key : "", status, secs * 1000);
	}
	keep = 1;
	r = 0;
out:
	curl_slist_free_all(hdrs);
	pool_put(h, c, keep);
	return r;
}

int bfs_http_resp_header(const struct bfs_http_resp *resp, const char *name,
			 char *out, size_t outlen)
{
	const char *p = bfs_buf_str(&resp->headers), *eol, *v, *e;
	size_t nlen = strlen(name);

	if (outlen)
		out[0] = '\0';
	for (; *p; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		if ((size_t)(eol - p) <= nlen || p[nlen] != ':' ||
		    strncasecmp(p, name, nlen))
			continue;
		v = p + nlen + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		e = eol;
		while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - v) >= outlen)
			return BFS_ERR_TOOBIG;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return 0;
	}
	return BFS_ERR_NOTFOUND;
}
