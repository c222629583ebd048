/*
 * bfs_pool.h - a bounded worker pool: a fixed set of threads started
 * with the pool, one FIFO of jobs, job groups a submitter waits for, and
 * a shutdown that drains.  The daemon's parallel transfers run on one of
 * them, bfs_pool_io(): the parts of whole-file uploads
 * (bfs_rest_parallel), the streaming part uploads of src/vfs/mpu.c and
 * the HEADs of a folder listing (src/cache/attrcache.c).
 *
 * DESIGN (what it guarantees; in the manner of Redis' bio.c)
 * ------
 * BOUND: at most `threads` jobs run at once, on the threads created by
 *   bfs_pool_create() (or by the first bfs_pool_io()); a job never gets
 *   a thread of its own, however many are queued.
 * ORDER: the pool's threads start jobs in the order they were
 *   submitted (one FIFO for the pool); with one thread they also finish
 *   in that order.  Nothing is promised about the finishing order with
 *   more threads.
 * GROUPS: bfs_pool_group_wait() returns once every job submitted with
 *   that group has returned; the submitter may then free what the jobs
 *   used.  While it waits, the group's jobs still queued are taken out
 *   of the FIFO and run in the waiting thread, so a wait depends only on
 *   the group's jobs already running, never on the queue before them.
 *   A job may submit more jobs (to any group).
 * SHUTDOWN: bfs_pool_destroy() / bfs_pool_io_shutdown() refuse new jobs
 *   (BFS_ERR_BUSY, also to jobs that submit), run every job already
 *   queued, and join the threads: when it returns no job runs, and none
 *   ever will.
 * A JOB MAY NOT wait for another job of the pool (no group wait in a
 *   job: checked, it aborts), and a submitter may not hold a lock that a
 *   job of its group takes while it waits (a condition-variable wait that
 *   releases it is fine).  Why that rules out deadlock: a job then only
 *   blocks on locks held briefly by non-waiting code or on the network
 *   (which times out), never on the queue; so every running job returns,
 *   and a group wait, which runs its queued jobs itself, returns once
 *   its running ones have.  Code that may run inside a job and wants parallelism
 *   asks bfs_pool_in_worker() and does the work in its own thread.
 * LOCKS: one mutex per pool guards the queue, the counters and every
 *   group's count; no job runs under it.
 */
#ifndef BFS_POOL_H
#define BFS_POOL_H

#include <stddef.h>

/* Threads of bfs_pool_io(): the streaming parts of src/vfs/mpu.c (16 in
 * all), the HEADs of a listing (15 besides its caller) and the parts of
 * four whole-file uploads (3 each besides the uploading thread) at once. */
#define BFS_POOL_IO_THREADS 64

struct bfs_pool;

/* A set of jobs a submitter waits for; fields are the pool's (its lock). */
struct bfs_pool_group {
	struct bfs_pool *pool;
	unsigned pending;        /* submitted, not yet returned; pool lock */
};

/* A pool of threads threads (1..256) named name in logs.  0, or
 * BFS_ERR_INVAL / BFS_ERR_NOMEM (nothing started). */
int bfs_pool_create(unsigned threads, const char *name, struct bfs_pool **out);
/* Shuts p down (drains, joins; see SHUTDOWN) and frees it.  NULL: no-op.
 * Not from a job of p. */
void bfs_pool_destroy(struct bfs_pool *p);

/* The process-wide I/O pool, started on first use with
 * BFS_POOL_IO_THREADS threads; NULL when it cannot start (the next call
 * tries again) or is shut down. */
struct bfs_pool *bfs_pool_io(void);
/* Shuts the I/O pool down for good (drains, joins); later
 * bfs_pool_io() calls answer NULL.  Not from a job. */
void bfs_pool_io_shutdown(void);

void bfs_pool_group_init(struct bfs_pool_group *g, struct bfs_pool *p);
/*
 * Queues fn(arg) on p, counted in g (NULL: no group; the job owns what
 * it needs and frees it).  0; BFS_ERR_BUSY once shutdown has begun,
 * BFS_ERR_NOMEM: not queued, fn will not run.  g, when given, must be
 * of p.
 */
int bfs_pool_submit(struct bfs_pool *p, struct bfs_pool_group *g,
		    void (*fn)(void *arg), void *arg);
/* Waits until every job submitted with g has returned, running those
 * still queued in this thread.  Never from a job of any pool (aborts:
 * that wait could deadlock). */
void bfs_pool_group_wait(struct bfs_pool_group *g);

/* 1 in a thread of a pool (running a job), else 0. */
int bfs_pool_in_worker(void);

/* Jobs running now, and the most that ever ran at once. */
void bfs_pool_stats(struct bfs_pool *p, unsigned *running, unsigned *peak);

#endif
