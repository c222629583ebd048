/*
 * test_pool.c - the bounded worker pool (src/util/pool.c): FIFO start
 * order, group waits, the bound on jobs running at once, a shutdown that
 * drains and refuses, many submitters at once.  Synchronisation is by
 * condition variables and counters, never by sleeping; the Makefile's
 * TSan build runs the same suite.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfs_error.h"
#include "bfs_pool.h"
#include "unit.h"

/* ---- order: one thread runs jobs in submit order ---- */

/* No group wait here: a waiting submitter runs its group's queued jobs
 * itself, beside the worker, so only the pool's one thread orders them. */
struct order_ctx {
	pthread_mutex_t mu;
	pthread_cond_t all;            /* mu: n reached 200 */
	unsigned seen[200];
	unsigned n;
};

struct order_job {
	struct order_ctx *c;
	unsigned i;
};

static void order_fn(void *arg)
{
	struct order_job *j = arg;

	pthread_mutex_lock(&j->c->mu);
	j->c->seen[j->c->n++] = j->i;
	if (j->c->n == 200)
		pthread_cond_signal(&j->c->all);
	pthread_mutex_unlock(&j->c->mu);
}

START_TEST(test_fifo_order)
{
	static struct order_ctx c = { .mu = PTHREAD_MUTEX_INITIALIZER,
				      .all = PTHREAD_COND_INITIALIZER };
	static struct order_job jobs[200];
	struct bfs_pool *p;
	unsigned i;

	ck_assert_int_eq(bfs_pool_create(1, "t-order", &p), 0);
	for (i = 0; i < 200; i++) {
		jobs[i].c = &c;
		jobs[i].i = i;
		ck_assert_int_eq(bfs_pool_submit(p, NULL, order_fn, &jobs[i]), 0);
	}
	pthread_mutex_lock(&c.mu);
	while (c.n < 200)
		pthread_cond_wait(&c.all, &c.mu);
	pthread_mutex_unlock(&c.mu);
	ck_assert_uint_eq(c.n, 200);
	for (i = 0; i < 200; i++)
		ck_assert_uint_eq(c.seen[i], i);
	bfs_pool_destroy(p);
}
END_TEST

/* ---- group wait: returns only once every job of the group returned ---- */

struct slow_job {
	atomic_int done;
	int in_worker;
};

static void slow_fn(void *arg)
{
	struct slow_job *j = arg;

	usleep(2000);           /* work, not synchronisation */
	j->in_worker = bfs_pool_in_worker();
	atomic_store(&j->done, 1);
}

START_TEST(test_group_wait)
{
	struct slow_job a[40], b[5];
	struct bfs_pool_group ga, gb;
	struct bfs_pool *p;
	unsigned i;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(bfs_pool_create(4, "t-group", &p), 0);
	bfs_pool_group_init(&ga, p);
	bfs_pool_group_init(&gb, p);
	for (i = 0; i < 40; i++)
		ck_assert_int_eq(bfs_pool_submit(p, &ga, slow_fn, &a[i]), 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(bfs_pool_submit(p, &gb, slow_fn, &b[i]), 0);
	/* gb's jobs, queued behind ga's, ran here (or on a free thread) */
	bfs_pool_group_wait(&gb);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(atomic_load(&b[i].done), 1);
	bfs_pool_group_wait(&ga);
	for (i = 0; i < 40; i++)
		ck_assert_int_eq(atomic_load(&a[i].done), 1);
	ck_assert_int_eq(bfs_pool_in_worker(), 0);
	/* an empty group does not wait */
	bfs_pool_group_wait(&ga);
	bfs_pool_destroy(p);
}
END_TEST

/* ---- a wait never depends on the queue before its group ---- */

struct block_ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, open;       /* mu */
};

static void blocker_fn(void *arg)
{
	struct block_ctx *b = arg;

	pthread_mutex_lock(&b->mu);
	b->started = 1;
	pthread_cond_broadcast(&b->cv);
	while (!b->open)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

START_TEST(test_wait_runs_queued_group_jobs)
{
	static struct block_ctx b = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	};
	struct slow_job a[6];
	struct bfs_pool_group g, gb;
	struct bfs_pool *p;
	unsigned i;

	memset(a, 0, sizeof(a));
	ck_assert_int_eq(bfs_pool_create(1, "t-help", &p), 0);
	bfs_pool_group_init(&gb, p);
	bfs_pool_group_init(&g, p);
	/* the only thread is held by a job that waits for this test */
	ck_assert_int_eq(bfs_pool_submit(p, &gb, blocker_fn, &b), 0);
	pthread_mutex_lock(&b.mu);
	while (!b.started)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(bfs_pool_submit(p, &g, slow_fn, &a[i]), 0);
	/* returns although no pool thread is free: the jobs ran here */
	bfs_pool_group_wait(&g);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(atomic_load(&a[i].done), 1);
		ck_assert_int_eq(a[i].in_worker, 0);
	}
	pthread_mutex_lock(&b.mu);
	b.open = 1;
	pthread_cond_broadcast(&b.cv);
	pthread_mutex_unlock(&b.mu);
	bfs_pool_group_wait(&gb);
	bfs_pool_destroy(p);
}
END_TEST

/* ---- bound: never more than `threads` at once, and that many do run ---- */

struct bound_ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned cur, max, gate, finished;   /* mu */
	unsigned off_pool;                   /* mu: ran outside a pool thread */
};

static void gate_fn(void *arg)
{
	struct bound_ctx *c = arg;

	pthread_mutex_lock(&c->mu);
	c->off_pool += !bfs_pool_in_worker();
	if (++c->cur > c->max)
		c->max = c->cur;
	pthread_cond_broadcast(&c->cv);
	/* the first jobs hold their thread until `gate` run at once */
	while (c->cur < c->gate)
		pthread_cond_wait(&c->cv, &c->mu);
	c->gate = 0;
	pthread_mutex_unlock(&c->mu);
	usleep(500);
	pthread_mutex_lock(&c->mu);
	c->cur--;
	c->finished++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

START_TEST(test_bound)
{
	static struct bound_ctx c = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	};
	struct bfs_pool *p;
	unsigned i, running, peak;

	c.gate = 3;
	ck_assert_int_eq(bfs_pool_create(3, "t-bound", &p), 0);
	/* no group: only the pool's threads run them (a group waiter
	 * would run queued ones too) */
	for (i = 0; i < 60; i++)
		ck_assert_int_eq(bfs_pool_submit(p, NULL, gate_fn, &c), 0);
	pthread_mutex_lock(&c.mu);
	while (c.finished < 60)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	ck_assert_uint_eq(c.max, 3);
	ck_assert_uint_eq(c.cur, 0);
	ck_assert_uint_eq(c.off_pool, 0);
	bfs_pool_stats(p, &running, &peak);
	ck_assert_uint_eq(peak, 3);
	ck_assert_uint_le(running, 1);  /* the last may not be counted off */
	bfs_pool_destroy(p);
}
END_TEST

/* ---- shutdown: drains what is queued, refuses what comes after ---- */

struct drain_ctx {
	struct bfs_pool *p;
	atomic_int runs, tried, accepted, refused;
};

struct drain_job {
	struct drain_ctx *c;
	int depth;
};

static void drain_fn(void *arg)
{
	struct drain_job *j = arg;
	struct drain_ctx *c = j->c;
	struct drain_job *k;
	int r;

	usleep(200);
	atomic_fetch_add(&c->runs, 1);
	/* a job may submit more jobs; during the drain they are refused */
	if (j->depth < 2 && (k = malloc(sizeof(*k)))) {
		atomic_fetch_add(&c->tried, 1);
		k->c = c;
		k->depth = j->depth + 1;
		if ((r = bfs_pool_submit(c->p, NULL, drain_fn, k)) == 0) {
			atomic_fetch_add(&c->accepted, 1);
		} else {
			ck_assert_int_eq(r, BFS_ERR_BUSY);
			atomic_fetch_add(&c->refused, 1);
			free(k);
		}
	}
	free(j);
}

START_TEST(test_shutdown_drains)
{
	struct drain_ctx c;
	struct drain_job *j;
	unsigned i;
	int runs;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_pool_create(2, "t-drain", &c.p), 0);
	for (i = 0; i < 100; i++) {
		ck_assert_ptr_nonnull(j = malloc(sizeof(*j)));
		j->c = &c;
		j->depth = 0;
		ck_assert_int_eq(bfs_pool_submit(c.p, NULL, drain_fn, j), 0);
	}
	bfs_pool_destroy(c.p);
	runs = atomic_load(&c.runs);
	/* every queued job and every accepted child ran before the return */
	ck_assert_int_eq(runs, 100 + atomic_load(&c.accepted));
	ck_assert_int_eq(atomic_load(&c.accepted) + atomic_load(&c.refused),
			 atomic_load(&c.tried));
	ck_assert_int_ge(runs, 100);
}
END_TEST

/* The I/O pool: starts on first use; after shutdown it is gone for good
 * and a submit to it is refused (not a use of freed memory). */
START_TEST(test_io_pool_shutdown)
{
	struct slow_job a[8];
	struct bfs_pool_group g;
	struct bfs_pool *p;
	unsigned i;

	memset(a, 0, sizeof(a));
	ck_assert_ptr_nonnull(p = bfs_pool_io());
	ck_assert_ptr_eq(bfs_pool_io(), p);
	bfs_pool_group_init(&g, p);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(bfs_pool_submit(p, &g, slow_fn, &a[i]), 0);
	bfs_pool_io_shutdown();
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(atomic_load(&a[i].done), 1);
	ck_assert_uint_eq(g.pending, 0);
	ck_assert_ptr_null(bfs_pool_io());
	ck_assert_int_eq(bfs_pool_submit(p, NULL, slow_fn, &a[0]),
			 BFS_ERR_BUSY);
	bfs_pool_io_shutdown();         /* twice: harmless */
}
END_TEST

/* A job that asks for the I/O pool while it is being shut down (a
 * finishing part starting the next one) gets no pool and does not wait:
 * the shutdown joins the threads while it holds the start lock. */
static atomic_int io_stopping;
static atomic_int io_asked;

static void ask_io_fn(void *arg)
{
	(void)arg;
	while (!atomic_load(&io_stopping))
		usleep(1000);
	usleep(50 * 1000);      /* let the shutdown reach its join */
	(void)bfs_pool_io();    /* NULL once STOPPING; must not block */
	atomic_store(&io_asked, 1);
}

START_TEST(test_io_pool_asked_during_shutdown)
{
	struct bfs_pool *p;

	ck_assert_ptr_nonnull(p = bfs_pool_io());
	ck_assert_int_eq(bfs_pool_submit(p, NULL, ask_io_fn, NULL), 0);
	atomic_store(&io_stopping, 1);
	bfs_pool_io_shutdown();         /* hung here before (test timeout) */
	ck_assert_int_eq(atomic_load(&io_asked), 1);
	ck_assert_ptr_null(bfs_pool_io());
}
END_TEST

/* ---- many submitters, each waiting for its own group ---- */

#define SUBMITTERS 8
#define PER_SUBMITTER 400

struct sub_ctx {
	struct bfs_pool *p;
	atomic_int count;
	int ok;
};

static void count_fn(void *arg)
{
	struct sub_ctx *s = arg;

	atomic_fetch_add(&s->count, 1);
}

static void *submitter(void *arg)
{
	struct sub_ctx *s = arg;
	struct bfs_pool_group g;
	int i, r = 0;

	bfs_pool_group_init(&g, s->p);
	for (i = 0; i < PER_SUBMITTER && r == 0; i++)
		r = bfs_pool_submit(s->p, &g, count_fn, s);
	bfs_pool_group_wait(&g);
	s->ok = r == 0 && atomic_load(&s->count) == PER_SUBMITTER;
	return NULL;
}

START_TEST(test_many_submitters)
{
	struct sub_ctx s[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	struct bfs_pool *p;
	unsigned running, peak;
	int i;

	ck_assert_int_eq(bfs_pool_create(3, "t-many", &p), 0);
	memset(s, 0, sizeof(s));
	for (i = 0; i < SUBMITTERS; i++) {
		s[i].p = p;
		ck_assert_int_eq(pthread_create(&th[i], NULL, submitter, &s[i]), 0);
	}
	for (i = 0; i < SUBMITTERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(s[i].ok, 1);
	}
	bfs_pool_stats(p, &running, &peak);
	ck_assert_uint_le(peak, 3);
	bfs_pool_destroy(p);
}
END_TEST

/* ---- a job that waits for a group is a bug: it aborts ---- */

static void waiting_fn(void *arg)
{
	bfs_pool_group_wait(arg);
}

START_TEST(test_wait_in_job_aborts)
{
	struct bfs_pool_group inner;
	struct bfs_pool *p;

	ck_assert_int_eq(bfs_pool_create(1, "t-abort", &p), 0);
	bfs_pool_group_init(&inner, p);
	/* no group: a pool thread runs it (a waiter would run it here) */
	ck_assert_int_eq(bfs_pool_submit(p, NULL, waiting_fn, &inner), 0);
	bfs_pool_destroy(p);            /* drains: the job aborts */
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct bfs_pool *p, *q;
	struct bfs_pool_group g;

	ck_assert_int_eq(bfs_pool_create(0, "t", &p), BFS_ERR_INVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(bfs_pool_create(257, "t", &p), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_pool_create(1, "t-a", &p), 0);
	ck_assert_int_eq(bfs_pool_create(1, "t-b", &q), 0);
	bfs_pool_group_init(&g, p);
	/* a group belongs to its pool */
	ck_assert_int_eq(bfs_pool_submit(q, &g, count_fn, NULL), BFS_ERR_INVAL);
	bfs_pool_destroy(q);
	bfs_pool_destroy(p);
	bfs_pool_destroy(NULL);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fifo_order);
	tcase_add_test(tc, test_group_wait);
	tcase_add_test(tc, test_wait_runs_queued_group_jobs);
	tcase_add_test(tc, test_bound);
	tcase_add_test(tc, test_shutdown_drains);
	tcase_add_test(tc, test_many_submitters);
	tcase_add_test(tc, test_bad_arguments);
	/* these end the process-wide pool or the process: forked runs only */
	if (!getenv("CK_FORK") || strcmp(getenv("CK_FORK"), "no") != 0) {
		tcase_add_test(tc, test_io_pool_shutdown);
		tcase_add_test(tc, test_io_pool_asked_during_shutdown);
		tcase_add_test_raise_signal(tc, test_wait_in_job_aborts,
					    SIGABRT);
	}
	suite_add_tcase(s, tc);
	return s;
}
