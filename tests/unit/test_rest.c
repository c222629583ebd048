/*
 * test_rest.c - the shared REST request layer (src/provider/rest.c):
 * s3fs metadata headers both ways under either provider's prefix, the
 * metadata a rewrite keeps, the merge of chmod/chown/utimens/setxattr
 * into stored metadata, the ranged-GET skeleton against a fake call
 * function, and the parallel part runner's first-failure rule.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bfs_error.h"
#include "bfs_pool.h"
#include "bfs_rest.h"
#include "unit.h"

/* A reply whose raw header lines are text. */
static void resp_with(struct bfs_http_resp *resp, const char *text)
{
	bfs_http_resp_init(resp);
	ck_assert_int_eq(bfs_buf_adds(&resp->headers, text), 0);
}

static const char *hdr(const struct bfs_rest_req *q, const char *name)
{
	size_t i;

	for (i = 0; i < q->nhdr; i++)
		if (!strcmp(q->hdr[i].name, name))
			return q->hdr[i].value;
	return NULL;
}

START_TEST(test_meta_out_both_prefixes)
{
	static const char *const prefixes[] = { "x-amz-meta-", "x-ms-meta-" };
	struct bfs_rest_meta_hdrs mh;
	struct bfs_rest_req q;
	struct bfs_meta m;
	char name[64];
	size_t i;

	memset(&m, 0, sizeof(m));
	m.mode = S_IFREG | 0640;
	m.uid = 1234;
	m.gid = 0;
	m.mtime = 981173106;
	m.has_mode = m.has_uid = m.has_gid = m.has_mtime = 1;
	strcpy(m.xattr, "%7B%7D");
	for (i = 0; i < 2; i++) {
		bfs_rest_req_init(&q, "PUT", "k", 0);
		ck_assert_int_eq(bfs_rest_add_meta(&q, &mh, prefixes[i], &m), 0);
		ck_assert_uint_eq(q.nhdr, 5);
		snprintf(name, sizeof(name), "%smode", prefixes[i]);
		ck_assert_str_eq(hdr(&q, name), "33184");
		snprintf(name, sizeof(name), "%suid", prefixes[i]);
		ck_assert_str_eq(hdr(&q, name), "1234");
		snprintf(name, sizeof(name), "%sgid", prefixes[i]);
		ck_assert_str_eq(hdr(&q, name), "0");
		/* s3fs: no fraction when nsec is 0 */
		snprintf(name, sizeof(name), "%smtime", prefixes[i]);
		ck_assert_str_eq(hdr(&q, name), "981173106");
		snprintf(name, sizeof(name), "%sxattr", prefixes[i]);
		ck_assert_str_eq(hdr(&q, name), "%7B%7D");
	}
	m.mtime_nsec = 5;
	m.has_uid = m.has_gid = 0;
	m.xattr[0] = '\0';
	bfs_rest_req_init(&q, "PUT", "k", 0);
	ck_assert_int_eq(bfs_rest_add_meta(&q, &mh, "x-ms-meta-", &m), 0);
	ck_assert_uint_eq(q.nhdr, 2);
	ck_assert_str_eq(hdr(&q, "x-ms-meta-mtime"), "981173106.000000005");
	bfs_rest_req_init(&q, "PUT", "k", 0);
	ck_assert_int_eq(bfs_rest_add_meta(&q, &mh, "x-ms-meta-", NULL), 0);
	ck_assert_uint_eq(q.nhdr, 0);
}
END_TEST

START_TEST(test_meta_in)
{
	struct bfs_http_resp resp;
	struct bfs_meta m;

	resp_with(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
		  "ETag: \"0x8DA\"\r\nContent-Type: text/plain\r\n"
		  "Last-Modified: Sat, 03 Feb 2001 04:05:06 GMT\r\n"
		  "x-ms-meta-mode: 493\r\nx-ms-meta-uid: 7\r\n"
		  "x-ms-meta-mtime: 12.5\r\nx-ms-meta-xattr: %7B%7D\r\n");
	bfs_rest_meta_base(&resp, &m);
	ck_assert_uint_eq(m.size, 7);
	ck_assert_str_eq(m.etag, "0x8DA");
	ck_assert_str_eq(m.content_type, "text/plain");
	ck_assert_int_eq(m.mtime, 981173106);
	/* a mode without type bits: a folder's or a file's */
	bfs_rest_meta_posix(&resp, "x-ms-meta-", 1, &m);
	ck_assert_uint_eq(m.mode, S_IFDIR | 0755);
	ck_assert(m.has_uid && m.uid == 7 && !m.has_gid);
	ck_assert(m.has_mtime && m.mtime == 12 && m.mtime_nsec == 500000000L);
	ck_assert(m.has_xattr);
	ck_assert_str_eq(m.xattr, "%7B%7D");
	bfs_rest_meta_base(&resp, &m);
	bfs_rest_meta_posix(&resp, "x-ms-meta-", 0, &m);
	ck_assert_uint_eq(m.mode, S_IFREG | 0755);
	/* the other prefix sees none of it */
	bfs_rest_meta_base(&resp, &m);
	bfs_rest_meta_posix(&resp, "x-amz-meta-", 0, &m);
	ck_assert(!m.has_mode && !m.has_uid && !m.has_mtime);
	ck_assert(m.has_xattr && !m.xattr[0]);
	bfs_http_resp_free(&resp);
}
END_TEST

START_TEST(test_parse_values)
{
	uint32_t v;
	int64_t s;
	long ns;

	ck_assert_int_eq(bfs_rest_parse_u32("4294967295", &v), 0);
	ck_assert_uint_eq(v, 4294967295u);
	ck_assert_int_eq(bfs_rest_parse_u32("4294967296", &v), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_rest_parse_u32("-1", &v), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_rest_parse_u32("12x", &v), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_rest_parse_u32(NULL, &v), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_rest_parse_mtime("1.1234567891", &s, &ns), 0);
	ck_assert(s == 1 && ns == 123456789L);
	ck_assert_int_eq(bfs_rest_parse_mtime("-5", &s, &ns), 0);
	ck_assert(s == -5 && ns == 0);
	ck_assert_int_eq(bfs_rest_parse_mtime("1.2.3", &s, &ns), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_rest_http_date("Sat, 03 Feb 2001 04:05:06 GMT"),
			 981173106);
	ck_assert_int_eq(bfs_rest_http_date("yesterday"), 0);
}
END_TEST

START_TEST(test_extra_meta_kept)
{
	struct bfs_http_resp resp;
	struct bfs_buf extra;
	struct bfs_rest_req q;

	resp_with(&resp, "HTTP/1.1 200 OK\r\nx-ms-meta-mode: 1\r\n"
		  "x-ms-meta-hdi_isfolder: true\r\nx-ms-meta-xattr: x\r\n"
		  "x-amz-meta-atime: 9\r\nX-Ms-Meta-Other:  v w \r\n");
	bfs_buf_init(&extra, 4096);
	ck_assert_int_eq(bfs_rest_extra_meta(&resp, "x-ms-meta-", 16, &extra), 0);
	bfs_rest_req_init(&q, "PUT", "k", 0);
	ck_assert_int_eq(bfs_rest_h_pairs(&q, &extra), 0);
	/* what bfs_rest_add_meta writes is not kept twice; others are */
	ck_assert_uint_eq(q.nhdr, 2);
	ck_assert_str_eq(q.hdr[0].name, "x-ms-meta-hdi_isfolder");
	ck_assert_str_eq(q.hdr[0].value, "true");
	ck_assert_str_eq(q.hdr[1].name, "X-Ms-Meta-Other");
	ck_assert_str_eq(q.hdr[1].value, "v w");
	bfs_buf_reset(&extra);
	ck_assert_int_eq(bfs_rest_extra_meta(&resp, "x-ms-meta-", 1, &extra),
			 BFS_ERR_TOOBIG);
	bfs_buf_free(&extra);
	bfs_http_resp_free(&resp);
}
END_TEST

START_TEST(test_meta_merge)
{
	struct bfs_meta nm, m;

	memset(&nm, 0, sizeof(nm));
	nm.mode = S_IFREG | 0644;
	nm.uid = 1;
	nm.has_mode = nm.has_uid = 1;
	strcpy(nm.xattr, "old");
	strcpy(nm.content_type, "text/plain");
	memset(&m, 0, sizeof(m));
	m.mode = S_IFREG | 0600;
	m.has_mode = 1;
	bfs_rest_meta_merge(&nm, &m);       /* chmod: the rest stays */
	ck_assert_uint_eq(nm.mode, S_IFREG | 0600);
	ck_assert(nm.has_uid && nm.uid == 1);
	ck_assert_str_eq(nm.xattr, "old");
	ck_assert_str_eq(nm.content_type, "text/plain");
	memset(&m, 0, sizeof(m));
	m.has_xattr = 1;                    /* the last xattr removed */
	bfs_rest_meta_merge(&nm, &m);
	ck_assert_str_eq(nm.xattr, "");
}
END_TEST

/* A fake call function: answers every GET with a canned reply. */
struct fake {
	const struct bfs_rest_dialect *d;
	int status;
	int err;
	char method[16], range[64], if_match[64]; /* of the last request */
};

static int fake_call(void *vst, const struct bfs_rest_req *q,
		     struct bfs_http_resp *resp)
{
	struct fake *f = vst;
	const char *v;

	snprintf(f->method, sizeof(f->method), "%s", q->method);
	v = hdr(q, f->d->range_hdr);
	snprintf(f->range, sizeof(f->range), "%s", v ? v : "");
	v = hdr(q, "if-match");
	snprintf(f->if_match, sizeof(f->if_match), "%s", v ? v : "");
	resp->status = f->status;
	if (f->err == 0 && q->sink == BFS_HTTP_TO_MEM && q->out_cap >= 3) {
		memcpy(q->out_mem, "abc", 3);
		resp->got = 3;
	}
	return f->err;
}

static void fake_meta(const struct bfs_http_resp *resp, const char *key,
		      struct bfs_meta *m, int *folder)
{
	(void)key;
	bfs_rest_meta_base(resp, m);
	if (folder)
		*folder = 0;
}

START_TEST(test_get_range_skeleton)
{
	static const struct bfs_rest_dialect d = {
		"x-ms-meta-", "x-ms-range", fake_call, fake_meta
	};
	struct fake f;
	char buf[8];
	size_t got = 99;

	memset(&f, 0, sizeof(f));
	f.d = &d;
	f.status = 206;
	ck_assert_int_eq(bfs_rest_op_get_range(&f, "k", 10, 3, buf, &got,
					       "0x8D"), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert(!memcmp(buf, "abc", 3));
	ck_assert_str_eq(f.range, "bytes=10-12");
	ck_assert_str_eq(f.if_match, "\"0x8D\"");
	/* a server that ignores Range is caught */
	f.status = 200;
	ck_assert_int_eq(bfs_rest_get_range(&d, &f, "k", 10, 3, buf, &got, NULL),
			 BFS_ERR_PROTOCOL);
	/* past the end: nothing, no error */
	f.err = BFS_ERR_RANGE;
	ck_assert_int_eq(bfs_rest_get_range(&d, &f, "k", 10, 3, buf, &got, NULL),
			 0);
	ck_assert_uint_eq(got, 0);
	/* delete: absent is done */
	f.err = BFS_ERR_NOTFOUND;
	ck_assert_int_eq(bfs_rest_delete(&d, &f, "k"), 0);
	ck_assert_str_eq(f.method, "DELETE");
}
END_TEST

static int par_one(void *arg, unsigned i)
{
	unsigned *done = arg;

	__atomic_add_fetch(&done[i], 1, __ATOMIC_SEQ_CST);
	return i == 3 ? BFS_ERR_SERVER : 0;
}

START_TEST(test_parallel)
{
	unsigned done[64] = { 0 };
	unsigned i, ran = 0;

	ck_assert_int_eq(bfs_rest_parallel(3, 4, par_one, done), 0);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(done[i], 1);
	/* every index once at most; the failure is what comes back */
	memset(done, 0, sizeof(done));
	ck_assert_int_eq(bfs_rest_parallel(64, 4, par_one, done),
			 BFS_ERR_SERVER);
	for (i = 0; i < 64; i++)
		ck_assert_uint_le(done[i], 1);
	ck_assert_uint_eq(done[3], 1);
	/* one worker: nothing is taken after the failure */
	memset(done, 0, sizeof(done));
	ck_assert_int_eq(bfs_rest_parallel(64, 1, par_one, done),
			 BFS_ERR_SERVER);
	for (i = 0; i < 64; i++)
		ran += done[i];
	ck_assert_uint_eq(ran, 4);
}
END_TEST

/* Parts in flight at once: up to `workers`, and that many do run (the
 * first four hold their puller until four run at once). */
struct par_conc {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned cur, max, gate, in_pool;   /* mu */
	pthread_t self;
	unsigned other_thread;              /* mu */
};

static int par_gate(void *arg, unsigned i)
{
	struct par_conc *c = arg;

	(void)i;
	pthread_mutex_lock(&c->mu);
	if (++c->cur > c->max)
		c->max = c->cur;
	c->in_pool += bfs_pool_in_worker();
	c->other_thread += !pthread_equal(pthread_self(), c->self);
	pthread_cond_broadcast(&c->cv);
	while (c->cur < c->gate)
		pthread_cond_wait(&c->cv, &c->mu);
	c->gate = 0;
	c->cur--;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

START_TEST(test_parallel_on_pool)
{
	static struct par_conc c = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	};

	c.gate = 4;
	c.self = pthread_self();
	ck_assert_int_eq(bfs_rest_parallel(40, 4, par_gate, &c), 0);
	ck_assert_uint_eq(c.max, 4);
	/* the caller is one puller, the others are I/O pool jobs */
	ck_assert_uint_gt(c.in_pool, 0);
}
END_TEST

struct par_nested {
	unsigned done[8];
	int r;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int finished;            /* mu */
};

static void par_nested_job(void *arg)
{
	struct par_nested *n = arg;
	static struct par_conc c = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	};

	/* in a pool job: no group wait (it would abort), all in this thread */
	c.self = pthread_self();
	n->r = bfs_rest_parallel(8, 4, par_gate, &c);
	if (n->r == 0 && c.other_thread)
		n->r = BFS_ERR_INTERNAL;
	if (n->r == 0)
		n->r = bfs_rest_parallel(8, 4, par_one, n->done);
	pthread_mutex_lock(&n->mu);
	n->finished = 1;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

START_TEST(test_parallel_in_pool_job)
{
	struct par_nested n;
	struct bfs_pool *p;
	unsigned i;

	memset(&n, 0, sizeof(n));
	pthread_mutex_init(&n.mu, NULL);
	pthread_cond_init(&n.cv, NULL);
	ck_assert_ptr_nonnull(p = bfs_pool_io());
	/* no group: a group wait would run it in this thread */
	ck_assert_int_eq(bfs_pool_submit(p, NULL, par_nested_job, &n), 0);
	pthread_mutex_lock(&n.mu);
	while (!n.finished)
		pthread_cond_wait(&n.cv, &n.mu);
	pthread_mutex_unlock(&n.mu);
	/* par_one fails index 3; one puller takes nothing after it */
	ck_assert_int_eq(n.r, BFS_ERR_SERVER);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(n.done[i], 1);
	for (i = 4; i < 8; i++)
		ck_assert_uint_eq(n.done[i], 0);
}
END_TEST

Suite *rest_suite(void)
{
	Suite *s = suite_create("rest");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_meta_out_both_prefixes);
	tcase_add_test(tc, test_meta_in);
	tcase_add_test(tc, test_parse_values);
	tcase_add_test(tc, test_extra_meta_kept);
	tcase_add_test(tc, test_meta_merge);
	tcase_add_test(tc, test_get_range_skeleton);
	tcase_add_test(tc, test_parallel);
	tcase_add_test(tc, test_parallel_on_pool);
	tcase_add_test(tc, test_parallel_in_pool_job);
	suite_add_tcase(s, tc);
	return s;
}
