/*
 * pool.c - the bounded worker pool of bfs_pool.h (its DESIGN note says
 * what it guarantees).  A pool is a mutex, a singly linked FIFO of jobs
 * and a fixed array of threads that pop the head, run it without the
 * mutex, and count it off its group (a group waiter unlinks the
 * group's queued jobs and runs them itself); shutdown flips the state so that
 * submit refuses, wakes every thread, and joins them once the FIFO is
 * empty.  The I/O pool is a static pool started on first use: it is
 * never freed, so a caller racing its shutdown gets BFS_ERR_BUSY, never
 * freed memory.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_pool.h"

enum { POOL_NEW, POOL_RUNNING, POOL_STOPPING, POOL_STOPPED };

struct pool_job {
	void (*fn)(void *arg);
	void *arg;
	struct bfs_pool_group *g;
	struct pool_job *next;
};

struct bfs_pool {
	pthread_mutex_t mu;
	pthread_cond_t work;         /* mu: a job queued, or stopping */
	pthread_cond_t done;         /* mu: a group's count reached 0 */
	struct pool_job *head, *tail;    /* mu: the FIFO */
	int state;                   /* mu */
	unsigned running, peak;      /* mu: jobs running now / at most */
	unsigned nthreads;           /* threads started; fixed once running */
	pthread_t *th;
	char name[16];
};

static _Thread_local int pool_worker;

static struct bfs_pool io_pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.name = "bfs-io",
};
static pthread_mutex_t io_mu = PTHREAD_MUTEX_INITIALIZER; /* io_pool start */

static void *pool_main(void *vp)
{
	struct bfs_pool *p = vp;
	struct bfs_pool_group *g;
	struct pool_job *j;

	pool_worker = 1;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && p->state == POOL_RUNNING)
			pthread_cond_wait(&p->work, &p->mu);
		if (!(j = p->head))
			break;              /* stopping, and drained */
		if (!(p->head = j->next))
			p->tail = NULL;
		if (++p->running > p->peak)
			p->peak = p->running;
		pthread_mutex_unlock(&p->mu);
		g = j->g;
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->mu);
		p->running--;
		/* the waiter may free g once it sees 0: not touched after */
		if (g && --g->pending == 0)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Starts n threads on p (state NEW, mu held by no one); 0 or an error
 * with none left running. */
static int pool_start(struct bfs_pool *p, unsigned n)
{
	unsigned i;
	int r = BFS_ERR_NOMEM;

	if (!(p->th = calloc(n, sizeof(*p->th))))
		return r;
	pthread_mutex_lock(&p->mu);
	p->state = POOL_RUNNING;
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < n; i++) {
		if (pthread_create(&p->th[i], NULL, pool_main, p) != 0)
			break;
		pthread_setname_np(p->th[i], p->name);
		p->nthreads++;
	}
	if (p->nthreads == n)
		return 0;
	BFS_ERROR("pool %s: cannot start %u threads (%u started)", p->name, n,
		  p->nthreads);
	pthread_mutex_lock(&p->mu);
	p->state = POOL_STOPPING;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	p->nthreads = 0;
	free(p->th);
	p->th = NULL;
	pthread_mutex_lock(&p->mu);
	p->state = POOL_STOPPED;
	pthread_mutex_unlock(&p->mu);
	return r;
}

/* Drains and joins p; the struct stays valid (submit answers BUSY). */
static void pool_stop(struct bfs_pool *p)
{
	unsigned i;

	if (pool_worker) {
		BFS_ERROR("pool %s: shut down from a pool job", p->name);
		abort();
	}
	pthread_mutex_lock(&p->mu);
	if (p->state != POOL_RUNNING) {
		p->state = POOL_STOPPED;
		pthread_mutex_unlock(&p->mu);
		return;
	}
	p->state = POOL_STOPPING;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	p->th = NULL;
	pthread_mutex_lock(&p->mu);
	p->nthreads = 0;
	p->state = POOL_STOPPED;
	pthread_mutex_unlock(&p->mu);
}

int bfs_pool_create(unsigned threads, const char *name, struct bfs_pool **out)
{
	struct bfs_pool *p;
	int r;

	*out = NULL;
	if (threads < 1 || threads > 256)
		return BFS_ERR_INVAL;
	if (!(p = calloc(1, sizeof(*p))))
		return BFS_ERR_NOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "bfs-pool");
	if ((r = pool_start(p, threads)) < 0) {
		pthread_cond_destroy(&p->done);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void bfs_pool_destroy(struct bfs_pool *p)
{
	if (!p)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

struct bfs_pool *bfs_pool_io(void)
{
	struct bfs_pool *p = NULL;
	int state;

	/* Only a start takes io_mu: bfs_pool_io_shutdown holds it while it
	 * joins the threads, and a job finishing then (a part starting the
	 * next part) must see STOPPING here, not wait for the join. */
	pthread_mutex_lock(&io_pool.mu);
	state = io_pool.state;
	pthread_mutex_unlock(&io_pool.mu);
	if (state != POOL_NEW)
		return state == POOL_RUNNING ? &io_pool : NULL;
	pthread_mutex_lock(&io_mu);
	pthread_mutex_lock(&io_pool.mu);
	state = io_pool.state;
	pthread_mutex_unlock(&io_pool.mu);
	if (state == POOL_NEW) {
		if (pool_start(&io_pool, BFS_POOL_IO_THREADS) == 0) {
			state = POOL_RUNNING;
		} else {            /* the next use tries again */
			pthread_mutex_lock(&io_pool.mu);
			io_pool.state = POOL_NEW;
			pthread_mutex_unlock(&io_pool.mu);
		}
	}
	if (state == POOL_RUNNING)
		p = &io_pool;
	pthread_mutex_unlock(&io_mu);
	return p;
}

void bfs_pool_io_shutdown(void)
{
	pthread_mutex_lock(&io_mu);
	pool_stop(&io_pool);
	pthread_mutex_unlock(&io_mu);
}

void bfs_pool_group_init(struct bfs_pool_group *g, struct bfs_pool *p)
{
	g->pool = p;
	g->pending = 0;
}

int bfs_pool_submit(struct bfs_pool *p, struct bfs_pool_group *g,
		    void (*fn)(void *arg), void *arg)
{
	struct pool_job *j;
	int r = BFS_ERR_BUSY;

	if (g && g->pool != p)
		return BFS_ERR_INVAL;
	if (!(j = malloc(sizeof(*j))))
		return BFS_ERR_NOMEM;
	j->fn = fn;
	j->arg = arg;
	j->g = g;
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->state == POOL_RUNNING) {
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		if (g)
			g->pending++;
		pthread_cond_signal(&p->work);
		j = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&p->mu);
	free(j);                        /* refused */
	return r;
}

void bfs_pool_group_wait(struct bfs_pool_group *g)
{
	struct bfs_pool *p = g->pool;
	struct pool_job *j, *prev;

	if (pool_worker) {
		BFS_ERROR("pool %s: a job waits for a job group", p->name);
		abort();
	}
	pthread_mutex_lock(&p->mu);
	while (g->pending) {
		/* a job of g still queued runs here, now: the wait never
		 * depends on what is queued before it */
		for (prev = NULL, j = p->head; j && j->g != g; j = j->next)
			prev = j;
		if (!j) {
			pthread_cond_wait(&p->done, &p->mu);
			continue;
		}
		if (prev)
			prev->next = j->next;
		else
			p->head = j->next;
		if (p->tail == j)
			p->tail = prev;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->mu);
		g->pending--;
	}
	pthread_mutex_unlock(&p->mu);
}

int bfs_pool_in_worker(void)
{
	return pool_worker;
}

void bfs_pool_stats(struct bfs_pool *p, unsigned *running, unsigned *peak)
{
	pthread_mutex_lock(&p->mu);
	*running = p->running;
	*peak = p->peak;
	pthread_mutex_unlock(&p->mu);
}
