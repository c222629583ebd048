/*
 * rest.c - the request layer the REST object providers share (s3.c,
 * azure.c; bfs_rest.h): request building, the signed send loop with
 * retries, s3fs-style metadata headers both ways, and the skeletons of
 * the simple operations, parametrized by a provider's dialect.
 *
 * How a request goes: the provider fills a struct bfs_rest_req and its
 * call function builds the URL, then bfs_rest_run() loops: the
 * provider's sign callback gives this attempt's header lines (its own,
 * the request's, the signature), they are formatted into one wiped
 * buffer, bfs_http_do() runs one exchange, the map callback turns the
 * reply into 0 or an error, and bfs_retry_next() decides about another
 * attempt.  Nothing here knows S3 or Azure beyond the metadata header
 * prefix the dialect names.
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

#include "bfs_error.h"
#include "bfs_metrics.h"
#include "bfs_pool.h"
#include "bfs_rest.h"

#define REST_SIGN_MAX (BFS_REST_MAX_HDRS + 8)   /* signer's lines included */

/* ---------------------------------------------------------------- building */

void bfs_rest_req_init(struct bfs_rest_req *q, const char *method,
		       const char *key, int op)
{
	memset(q, 0, sizeof(*q));
	q->method = method;
	q->key = key;
	q->op = op;
	q->body_fd = -1;
	q->out_fd = -1;
	q->sink = BFS_HTTP_TO_BUF;
}

int bfs_rest_q(struct bfs_rest_req *q, const char *name, const char *value)
{
	if (q->nquery >= BFS_REST_MAX_QUERY)
		return BFS_ERR_TOOBIG;
	q->query[q->nquery].name = name;
	q->query[q->nquery++].value = value;
	return 0;
}

int bfs_rest_h(struct bfs_rest_req *q, const char *name, const char *value)
{
	if (q->nhdr >= BFS_REST_MAX_HDRS)
		return BFS_ERR_TOOBIG;
	q->hdr[q->nhdr].name = name;
	q->hdr[q->nhdr++].value = value;
	return 0;
}

int bfs_rest_h_pairs(struct bfs_rest_req *q, const struct bfs_buf *extra)
{
	const char *p, *end, *v;
	int r;

	if (!extra || !extra->len)
		return 0;
	for (p = extra->p, end = extra->p + extra->len; p < end;) {
		v = p + strlen(p) + 1;
		if ((r = bfs_rest_h(q, p, v)) < 0)
			return r;
		p = v + strlen(v) + 1;
	}
	return 0;
}

/* ------------------------------------------------------------ the send loop */

int bfs_rest_run(struct bfs_http *h, const struct bfs_retry_policy *p,
		 const struct bfs_rest_req *q, const char *url,
		 bfs_rest_sign_fn sign, bfs_rest_map_fn map, void *ctx,
		 struct bfs_http_resp *resp)
{
	struct bfs_sigv4_kv kv[REST_SIGN_MAX];
	const char *hl[REST_SIGN_MAX];
	size_t off[REST_SIGN_MAX];
	struct bfs_http_req hr;
	struct bfs_buf lines;
	size_t i, n;
	int r = 0, attempt;

	bfs_buf_init(&lines, 64 * 1024);
	for (attempt = 1;; attempt++) {
		n = 0;
		if ((r = sign(ctx, q, kv, REST_SIGN_MAX, &n)) < 0)
			goto out;
		bfs_buf_reset(&lines);
		for (i = 0; i < n; i++) {
			off[i] = lines.len;
			/* a NULL value is an empty header (curl drops "Name:") */
			if ((r = kv[i].value ? bfs_buf_addf(&lines, "%s: %s",
							    kv[i].name, kv[i].value)
				 : bfs_buf_addf(&lines, "%s:", kv[i].name)) < 0 ||
			    (r = bfs_buf_add(&lines, "", 1)) < 0)
				goto out;
		}
		for (i = 0; i < n; i++)
			hl[i] = lines.p + off[i];

		memset(&hr, 0, sizeof(hr));
		hr.method = q->method;
		hr.url = url;
		hr.headers = hl;
		hr.nheaders = n;
		hr.op = q->op;
		hr.log_key = q->key;
		hr.body = q->body;
		hr.body_fd = q->body_fd;
		hr.body_off = q->fd_off;
		hr.body_len = q->body_fd >= 0 ? q->fd_len : q->body_len;
		hr.sink = q->sink;
		hr.max_body = q->max_body;
		hr.out_fd = q->out_fd;
		hr.out_mem = q->out_mem;
		hr.out_cap = q->out_cap;

		r = bfs_http_do(h, &hr, resp);
		if (r == 0)
			r = map(ctx, q, resp);
		if (r == 0 || !bfs_retry_next(p, attempt, r))
			break;
	}
out:
	if (lines.p)
		OPENSSL_cleanse(lines.p, lines.len);
	bfs_buf_free(&lines);
	return r;
}

/* ---------------------------------------------------------------- metadata */

int64_t bfs_rest_http_date(const char *s)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (!strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm))
		return 0;
	t = timegm(&tm);
	return t == (time_t)-1 ? 0 : (int64_t)t;
}

int bfs_rest_parse_u32(const char *s, uint32_t *out)
{
	char *end = NULL;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return BFS_ERR_INVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return BFS_ERR_INVAL;
	*out = (uint32_t)v;
	return 0;
}

int bfs_rest_parse_mtime(const char *s, int64_t *sec, long *nsec)
{
	char *end = NULL;
	long long v;
	long ns = 0;
	int digits = 0;

	if (!s || !((*s >= '0' && *s <= '9') || *s == '-'))
		return BFS_ERR_INVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return BFS_ERR_INVAL;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9'; end++)
			if (digits++ < 9)
				ns = ns * 10 + (*end - '0');
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (*end)
		return BFS_ERR_INVAL;
	*sec = v;
	*nsec = ns;
	return 0;
}

void bfs_rest_meta_base(const struct bfs_http_resp *resp, struct bfs_meta *m)
{
	char v[256];
	char *end;

	memset(m, 0, sizeof(*m));
	if (bfs_http_resp_header(resp, "content-length", v, sizeof(v)) == 0) {
		uint64_t size = strtoull(v, &end, 10);

		if (!*end)
			m->size = size;
	}
	if (bfs_http_resp_header(resp, "content-range", v, sizeof(v)) == 0) {
		const char *slash = strrchr(v, '/');

		if (slash && slash[1] != '*')
			m->size = strtoull(slash + 1, NULL, 10);
	}
	if (bfs_http_resp_header(resp, "etag", v, sizeof(v)) == 0) {
		const char *e = v;
		size_t n = strlen(e);

		if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
			e++;
			n -= 2;
		}
		if (n < sizeof(m->etag)) {
			memcpy(m->etag, e, n);
			m->etag[n] = '\0';
		}
	}
	if (bfs_http_resp_header(resp, "content-type", v, sizeof(v)) == 0 &&
	    strlen(v) < sizeof(m->content_type))
		strcpy(m->content_type, v);
	if (bfs_http_resp_header(resp, "last-modified", v, sizeof(v)) == 0)
		m->mtime = bfs_rest_http_date(v);
}

void bfs_rest_meta_values(struct bfs_meta *m, const char *mode,
			  const char *uid, const char *gid, const char *mtime,
			  int folder)
{
	if (mtime && bfs_rest_parse_mtime(mtime, &m->mtime, &m->mtime_nsec) == 0)
		m->has_mtime = 1;
	if (mode && bfs_rest_parse_u32(mode, &m->mode) == 0) {
		m->has_mode = 1;
		if (!(m->mode & S_IFMT))
			m->mode |= folder ? S_IFDIR : S_IFREG;
	}
	if (uid && bfs_rest_parse_u32(uid, &m->uid) == 0)
		m->has_uid = 1;
	if (gid && bfs_rest_parse_u32(gid, &m->gid) == 0)
		m->has_gid = 1;
}

/* The value of header PREFIX+name into v, or NULL when absent. */
static const char *rest_meta_hdr(const struct bfs_http_resp *resp,
				 const char *prefix, const char *name,
				 char *v, size_t vlen)
{
	char hn[64];

	snprintf(hn, sizeof(hn), "%s%s", prefix, name);
	return bfs_http_resp_header(resp, hn, v, vlen) == 0 ? v : NULL;
}

void bfs_rest_meta_posix(const struct bfs_http_resp *resp, const char *prefix,
			 int folder, struct bfs_meta *m)
{
	char mode[32], uid[32], gid[32], mt[64];

	bfs_rest_meta_values(m,
		rest_meta_hdr(resp, prefix, "mode", mode, sizeof(mode)),
		rest_meta_hdr(resp, prefix, "uid", uid, sizeof(uid)),
		rest_meta_hdr(resp, prefix, "gid", gid, sizeof(gid)),
		rest_meta_hdr(resp, prefix, "mtime", mt, sizeof(mt)), folder);
	/* s3fs's user xattrs; a value too long for m is dropped (cannot be
	 * s3fs's own: S3 caps user metadata at 2 KB) */
	if (!rest_meta_hdr(resp, prefix, "xattr", m->xattr, sizeof(m->xattr)))
		m->xattr[0] = '\0';
	m->has_xattr = 1;
}

int bfs_rest_add_meta(struct bfs_rest_req *q, struct bfs_rest_meta_hdrs *mh,
		      const char *prefix, const struct bfs_meta *m)
{
	int r;

	if (!m)
		return 0;
	if (m->has_mode) {
		snprintf(mh->n_mode, sizeof(mh->n_mode), "%smode", prefix);
		snprintf(mh->mode, sizeof(mh->mode), "%" PRIu32, m->mode);
		if ((r = bfs_rest_h(q, mh->n_mode, mh->mode)) < 0)
			return r;
	}
	if (m->has_uid) {
		snprintf(mh->n_uid, sizeof(mh->n_uid), "%suid", prefix);
		snprintf(mh->uid, sizeof(mh->uid), "%" PRIu32, m->uid);
		if ((r = bfs_rest_h(q, mh->n_uid, mh->uid)) < 0)
			return r;
	}
	if (m->has_gid) {
		snprintf(mh->n_gid, sizeof(mh->n_gid), "%sgid", prefix);
		snprintf(mh->gid, sizeof(mh->gid), "%" PRIu32, m->gid);
		if ((r = bfs_rest_h(q, mh->n_gid, mh->gid)) < 0)
			return r;
	}
	if (m->has_mtime) {
		/* s3fs str(timespec): seconds, ".%09ld" only when nsec != 0 */
		snprintf(mh->n_mtime, sizeof(mh->n_mtime), "%smtime", prefix);
		if (m->mtime_nsec > 0 && m->mtime_nsec < 1000000000L)
			snprintf(mh->mtime, sizeof(mh->mtime), "%" PRId64 ".%09ld",
				 m->mtime, m->mtime_nsec);
		else
			snprintf(mh->mtime, sizeof(mh->mtime), "%" PRId64, m->mtime);
		if ((r = bfs_rest_h(q, mh->n_mtime, mh->mtime)) < 0)
			return r;
	}
	if (m->xattr[0]) {
		snprintf(mh->n_xattr, sizeof(mh->n_xattr), "%sxattr", prefix);
		if ((r = bfs_rest_h(q, mh->n_xattr, m->xattr)) < 0)
			return r;
	}
	return 0;
}

int bfs_rest_extra_meta(const struct bfs_http_resp *resp, const char *prefix,
			size_t max, struct bfs_buf *extra)
{
	static const char *const known[] = { "mode", "uid", "gid", "mtime",
					     "xattr" };
	const char *p = bfs_buf_str(&resp->headers), *eol, *colon, *v, *e;
	size_t i, n = 0, pl = strlen(prefix);
	int r, skip;

	for (; *p; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || (size_t)(colon - p) <= pl || strncasecmp(p, prefix, pl))
			continue;
		skip = 0;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if ((size_t)(colon - p) - pl == strlen(known[i]) &&
			    !strncasecmp(p + pl, known[i], strlen(known[i])))
				skip = 1;
		if (skip)
			continue;
		if (++n > max)
			return BFS_ERR_TOOBIG;
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		e = eol;
		while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((r = bfs_buf_add(extra, p, (size_t)(colon - p))) < 0 ||
		    (r = bfs_buf_add(extra, "", 1)) < 0 ||
		    (r = bfs_buf_add(extra, v, (size_t)(e - v))) < 0 ||
		    (r = bfs_buf_add(extra, "", 1)) < 0)
			return r;
	}
	return 0;
}

void bfs_rest_meta_merge(struct bfs_meta *nm, const struct bfs_meta *m)
{
	if (m->has_mode) {
		nm->mode = m->mode;
		nm->has_mode = 1;
	}
	if (m->has_uid) {
		nm->uid = m->uid;
		nm->has_uid = 1;
	}
	if (m->has_gid) {
		nm->gid = m->gid;
		nm->has_gid = 1;
	}
	if (m->has_mtime) {
		nm->mtime = m->mtime;
		nm->mtime_nsec = m->mtime_nsec;
		nm->has_mtime = 1;
	}
	if (m->content_type[0])
		memcpy(nm->content_type, m->content_type, sizeof(nm->content_type));
	if (m->has_xattr)
		memcpy(nm->xattr, m->xattr, sizeof(nm->xattr));
}

/* -------------------------------------------------------- request skeletons */

int bfs_rest_head(const struct bfs_rest_dialect *d, void *st, const char *key,
		  struct bfs_meta *m, int *folder, struct bfs_buf *extra,
		  size_t extra_max)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	int r;

	memset(m, 0, sizeof(*m));
	if (folder)
		*folder = 0;
	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "HEAD", key, BFS_OP_HEAD);
	if ((r = d->call(st, &q, &resp)) < 0)
		goto out;
	d->meta(&resp, key, m, folder);
	if (extra && (r = bfs_rest_extra_meta(&resp, d->meta_prefix, extra_max,
					      extra)) < 0)
		goto out;
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

int bfs_rest_get_range(const struct bfs_rest_dialect *d, void *st,
		       const char *key, uint64_t off, size_t len, char *buf,
		       size_t *got, const char *if_match)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	char range[64], cond[112];
	int r;

	*got = 0;
	if (len == 0)
		return 0;
	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "GET", key, BFS_OP_GET);
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off,
		 off + len - 1);
	if ((r = bfs_rest_h(&q, d->range_hdr, range)) < 0)
		goto out;
	if (if_match && if_match[0]) {
		/* 412 PreconditionFailed / ConditionNotMet -> PRECONDITION */
		if (strlen(if_match) + 3 > sizeof(cond)) {
			r = BFS_ERR_INVAL;
			goto out;
		}
		snprintf(cond, sizeof(cond), "\"%s\"", if_match);
		if ((r = bfs_rest_h(&q, "if-match", cond)) < 0)
			goto out;
	}
	q.sink = BFS_HTTP_TO_MEM;
	q.out_mem = buf;
	q.out_cap = len;
	r = d->call(st, &q, &resp);
	if (r == BFS_ERR_RANGE) {
		r = 0;                 /* at or past the end: nothing to read */
		goto out;
	}
	if (r < 0)
		goto out;
	if (resp.status == 200 && off > 0) {
		r = BFS_ERR_PROTOCOL;  /* the server ignored Range */
		goto out;
	}
	*got = (size_t)resp.got;
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

int bfs_rest_get_fd(const struct bfs_rest_dialect *d, void *st,
		    const char *key, int fd, struct bfs_meta *m)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	int r;

	if (m)
		memset(m, 0, sizeof(*m));
	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "GET", key, BFS_OP_GET);
	q.sink = BFS_HTTP_TO_FD;
	q.out_fd = fd;
	if ((r = d->call(st, &q, &resp)) < 0)
		goto out;
	if (ftruncate(fd, (off_t)resp.got) < 0 && errno != EINVAL) {
		r = bfs_err_from_errno(errno);
		goto out;
	}
	if (m) {
		d->meta(&resp, key, m, NULL);
		m->size = resp.got;
	}
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

int bfs_rest_op_get_range(void *st, const char *key, uint64_t off,
			  size_t len, char *buf, size_t *got,
			  const char *if_match)
{
	return bfs_rest_get_range(*(const struct bfs_rest_dialect **)st, st,
				  key, off, len, buf, got, if_match);
}

int bfs_rest_op_get_fd(void *st, const char *key, int fd, struct bfs_meta *m)
{
	return bfs_rest_get_fd(*(const struct bfs_rest_dialect **)st, st, key,
			       fd, m);
}

int bfs_rest_send(const struct bfs_rest_dialect *d, void *st,
		  const struct bfs_rest_req *q, char *etag_out,
		  size_t etag_len)
{
	struct bfs_http_resp resp;
	struct bfs_meta got;
	int r;

	bfs_http_resp_init(&resp);
	if ((r = d->call(st, q, &resp)) < 0)
		goto out;
	d->meta(&resp, q->key, &got, NULL);
	if (etag_out && etag_len)
		snprintf(etag_out, etag_len, "%s", got.etag);
	r = 0;
out:
	bfs_http_resp_free(&resp);
	return r;
}

int bfs_rest_delete(const struct bfs_rest_dialect *d, void *st,
		    const char *key)
{
	struct bfs_http_resp resp;
	struct bfs_rest_req q;
	int r;

	bfs_http_resp_init(&resp);
	bfs_rest_req_init(&q, "DELETE", key, BFS_OP_DELETE);
	r = d->call(st, &q, &resp);
	if (r == BFS_ERR_NOTFOUND)
		r = 0;                  /* already gone: the goal is reached */
	bfs_http_resp_free(&resp);
	return r;
}

/* ---------------------------------------------------------- parallel parts */

struct rest_par {
	int (*one)(void *arg, unsigned i);
	void *arg;
	unsigned n;
	pthread_mutex_t lock;
	unsigned next;               /* next index; guarded by lock */
	int err;                     /* first failure; guarded by lock */
};

static void *rest_par_worker(void *vp)
{
	struct rest_par *p = vp;
	unsigned i;
	int r;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->err || p->next >= p->n) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->lock);
		if ((r = p->one(p->arg, i)) < 0) {
			pthread_mutex_lock(&p->lock);
			if (!p->err)
				p->err = r;
			pthread_mutex_unlock(&p->lock);
			break;
		}
	}
	return NULL;
}

/* A bfs_pool job: one more puller of p's indexes. */
static void rest_par_job(void *vp)
{
	rest_par_worker(vp);
}

int bfs_rest_parallel(unsigned n, unsigned workers,
		      int (*one)(void *arg, unsigned i), void *arg)
{
	struct bfs_pool_group g;
	struct bfs_pool *pool = NULL;
	struct rest_par p;
	unsigned i;

	memset(&p, 0, sizeof(p));
	p.one = one;
	p.arg = arg;
	p.n = n;
	pthread_mutex_init(&p.lock, NULL);
	if (workers > BFS_POOL_IO_THREADS)
		workers = BFS_POOL_IO_THREADS;
	/* in a pool job no group wait is allowed: do it all here */
	if (workers > 1 && n > 1 && !bfs_pool_in_worker())
		pool = bfs_pool_io();
	if (pool) {
		bfs_pool_group_init(&g, pool);
		for (i = 1; i < workers && i < n; i++)
			if (bfs_pool_submit(pool, &g, rest_par_job, &p) != 0)
				break;
	}
	rest_par_worker(&p);            /* this thread is one of them */
	if (pool)
		bfs_pool_group_wait(&g);
	pthread_mutex_destroy(&p.lock);
	return p.err;
}
