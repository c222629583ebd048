/*
 * upload.c - upload jobs, the pending-upload queue and its worker, and
 * start-up recovery from the upload journal.
 *
 * DESIGN
 * ------
 * Every upload of a staged file is a JOB, run by a thread of its own (a
 * runner, reused for the next job when idle; see job_start): at once
 * when close/flush/fsync or a release starts it; while fewer than
 * UPQ_JOBS_MAX jobs run when the queue starts it (UPQ_DRAIN_JOBS_MAX at
 * shutdown), so thousands of files due at once are not thousands of
 * threads
 * started with a snapshot of the file's size, attributes, key and change
 * counter (of->gen) taken under of->mu (the starter then journals the
 * current attributes, lazily, while the job already sends); the job
 * sends the staging file WITHOUT holding of->mu, so writers of
 * that file, readers and the caller's deadline are never stuck behind a
 * slow or hung server.  At most one job runs per file (of->uploading).  A
 * job marks the file clean (and deletes its journal row) only when
 * nothing changed while it ran (same gen, same name); otherwise the file
 * stays dirty and another job follows.  No job starts on a name a rename
 * (or the deferred delete of an unlinked file) fences (fence.c): the
 * rename waits for the running ones first, so no job stores a file under
 * a name the move just emptied; close/fsync wait for the fence, the
 * queue retries at its next tick.  Retries of single requests (503
 * SlowDown, 500, RequestTimeout, resets, timeouts) happen below, in the
 * http layer, with exponential backoff and full jitter; a job reports
 * only what is left after those.  The staging file is fsync'd only when
 * an upload failed or close/fsync gave up (its data is then kept, so it
 * must survive a power cut): never on the success path, where the FULL
 * commit of the bookkeeping is the one fsync (RELIABILITY.md).
 *
 * WHAT a job sends: a file up to 8 MiB, or any file of a provider
 * without multipart ops (local), goes by put_fd.  Larger files on s3/r2
 * go through bfs_mp_store() (mpu.c, its own DESIGN): a multipart upload
 * whose id is journaled before the first part, resumed by the next job
 * (or the next start) with the parts already stored, never aborted on
 * failure; parts of a sequentially written file are already sent while
 * it is written (streaming), so the job at close only sends the tail and
 * completes.  Ids nobody uses any more are aborted by the worker
 * (bfs_mp_reap, each tick when asked) and, with foreign uploads older
 * than multipart_max_age, by a sweep when the worker starts.
 *
 * close/flush/fsync (bfs_ofile_sync_locked) start a job and wait for it on
 * of->cv; a failed job is followed by another after a jittered backoff
 * until upload_timeout has passed since the call started.  Then the call
 * journals the last error and returns it (EIO): the data stays staged
 * and journaled.  A job still running at the deadline keeps running.
 *
 * The QUEUE is the list of files whose last descriptor was closed while
 * still dirty, plus every journal row adopted at start.  The queue holds
 * a reference on each, so the file stays in the open-file table: a later
 * open sees the staged content, never an older remote copy.  The WORKER
 * thread first sweeps multipart uploads (bfs_mp_sweep: network, so not
 * on the mount's path), then wakes every second, starts a job for each
 * queued file whose backoff (1 s doubling to 30 s, jittered) has passed
 * while there is room (a job that ends when the queue had no room wakes
 * it again, at most every UPQ_MIN_TICK_MS), and drops files
 * that are clean (stored) or unlinked.  It guarantees that every
 * journaled file is retried until it lands or the daemon stops; it does
 * not order uploads and never blocks on a server itself.
 *
 * RECOVERY: bfs_upq_start(), before the FUSE loop serves anything,
 * adopts each journal row whose staging file exists (a row without one is
 * dropped with a warning; a row of an unknown bucket stays) and removes
 * staging files no row names.  The first job of an adopted file HEADs the
 * key: when the remote etag still equals the row's base etag (or both are
 * absent) the staged copy is stored under the key; when the remote
 * changed, it is stored next to it as NAME.conflict-YYYYmmddTHHMMSS
 * (bfs_conflict_key) and a warning names both keys.  No remote change is
 * ever overwritten silently by a recovered copy.
 *
 * SHUTDOWN (bfs_upq_shutdown): jobs for every dirty file (as many at
 * once as there is room for), retried every 200 ms, none started after
 * upload_timeout; the running ones get what is left of it; counts are
 * logged; whatever is left stays journaled for the next start.
 *
 * Locks: queue_mu guards the queue links and `stopping`; nothing else
 * is locked while it is held (references are taken atomically), so it
 * nests under nothing and nothing nests under it (a job takes it to wake
 * the worker after it released of->mu).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_journal.h"
#include "bfs_key.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_store.h"
#define BFS_OFILE_MODULE
#include "ofile_int.h"
#include "vfs_int.h"

#define UPQ_TICK_MS 1000
/* Jobs the queue starts while fewer than this many run: after an outage
 * or a crash thousands of files may be due at once, and each job is a
 * thread with a connection.  A close or fsync starts its own job
 * regardless: its caller waits for it.  At shutdown the bound is wider
 * (what is not stored by the deadline waits for the next start). */
#define UPQ_JOBS_MAX 16
#define UPQ_DRAIN_JOBS_MAX 64
#define UPQ_MIN_TICK_MS 100       /* ticks woken by a job's end, at most */
#define UPQ_BACKOFF_MAX 30        /* seconds between retries of one file */
#define SYNC_BACKOFF_MIN_MS 200
#define SYNC_BACKOFF_MAX_MS 2000

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cv;                 /* queue_mu; monotonic */
static pthread_once_t queue_once = PTHREAD_ONCE_INIT;   /* queue_cv */
static struct bfs_ofile *queue_head;            /* queue_mu */
static int stopping;                            /* queue_mu */
static atomic_int draining;                     /* shutdown: short backoff */
static pthread_t worker;
static int worker_on;
static atomic_int jobs_running;
static atomic_int queue_waits_room;   /* a tick stopped at UPQ_JOBS_MAX */

static struct bfs_store *store(void)
{
	return bfs_registry_store(bfs_fs.reg);
}

static void mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static void ts_add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Jitter source: spread, not secrecy. */
static unsigned jitter(unsigned ceil)
{
	static _Thread_local unsigned state;
	struct timespec ts;

	if (!state) {
		mono_now(&ts);
		state = (unsigned)ts.tv_nsec ^ (unsigned)(uintptr_t)&state ^ 1u;
	}
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return ceil ? state % (ceil + 1) : 0;
}

/* The object metadata of of as it is now (mode, owner, mtime, size,
 * content type from the name).  of->mu held. */
void bfs_ofile_meta_locked(const struct bfs_ofile *of, struct bfs_meta *m)
{
	const char *name = strrchr(of->key, '/') ? strrchr(of->key, '/') + 1 :
						   of->key;

	bfs_lock_assert_held(&of->mu);
	memset(m, 0, sizeof(*m));
	m->size = of->size;
	m->mode = of->mode;
	m->uid = of->uid;
	m->gid = of->gid;
	m->mtime = of->mtime.tv_sec;
	m->mtime_nsec = of->mtime.tv_nsec;
	m->has_mode = m->has_uid = m->has_gid = m->has_mtime = 1;
	snprintf(m->content_type, sizeof(m->content_type), "%s",
		 bfs_content_type(name));
	bfs_ofile_xattr_meta_locked(of, m);
}

int bfs_index_put(const char *bucket, const char *key,
		  const struct bfs_meta *m, const char *etag,
		  const char *done_key)
{
	const char *name = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	struct bfs_file_row row;
	int r;

	memset(&row, 0, sizeof(row));
	row.bucket = (char *)(uintptr_t)bucket;
	row.key = (char *)(uintptr_t)key;
	row.size = m->size;
	row.etag = (char *)(uintptr_t)(etag ? etag : "");
	row.content_type = (char *)(uintptr_t)(m->content_type[0] ?
					       m->content_type :
					       bfs_content_type(name));
	row.mode = m->mode;
	row.uid = m->uid;
	row.gid = m->gid;
	row.mtime = m->mtime;
	row.created_at = row.updated_at = (int64_t)time(NULL);
	if ((r = bfs_store_upload_done(store(), &row, done_key)) != 0) {
		BFS_ERROR("%s/%s: stored, but the index row failed: %s", bucket,
			  key, bfs_strerror(r));
		if (done_key)
			r = bfs_store_journal_done(store(), bucket, done_key);
	}
	return r;
}

/*
 * The recovery check of an adopted file: *target becomes key (the remote
 * is what the staged copy was based on) or a new conflict key (caller
 * frees).  Errors of the HEAD are returned (the job fails and retries).
 * An unchanged remote also gives the job's metadata jm its stored user
 * xattrs when jm has none (the journal does not keep them).
 */
static int recovery_target(struct bfs_provider *p, const char *key,
			   const char *base, char **target, struct bfs_meta *jm)
{
	struct bfs_meta m;
	int r, changed;

	*target = NULL;
	memset(&m, 0, sizeof(m));
	r = bfs_cache_head_fresh(p, key, &m);
	if (r == BFS_ERR_NOTFOUND)
		changed = base != NULL;
	else if (r == 0)
		changed = !base || strcmp(base, m.etag) != 0;
	else
		return r;
	if (!changed && !jm->has_xattr && r == 0 && m.has_xattr) {
		memcpy(jm->xattr, m.xattr, sizeof(jm->xattr));
		jm->has_xattr = 1;
	}
	if (!changed)
		return (*target = strdup(key)) ? 0 : BFS_ERR_NOMEM;
	return bfs_conflict_key(key, time(NULL), target);
}

/* Records a failed upload in the journal row (bucket, key), durably; a
 * row that moved meanwhile (rename) is logged at debug, any other store
 * failure as an error: the data is still staged, only the row's reason
 * is older. */
static void journal_fail(const char *bucket, const char *key, const char *msg)
{
	int r = bfs_store_journal_fail(store(), bucket, key, msg);

	if (r == BFS_ERR_NOTFOUND)
		BFS_DEBUG("%s/%s: journal row moved meanwhile", bucket, key);
	else if (r != 0)
		BFS_ERROR("%s/%s: upload failure not journaled: %s", bucket,
			  key, bfs_strerror(r));
}

/*
 * fsync of a staging file whose upload failed: from here on its data must
 * survive a power cut (the journal row is made durable right after, by
 * the synchronous=FULL commit of bfs_store_journal_fail, which syncs
 * every earlier lazy commit of the WAL with it).  The success path never
 * needs it: the object is on the server before close returns.
 */
static void sync_staging(const char *bucket, const char *key, int fd)
{
	if (fd >= 0 && fsync(fd) < 0)
		BFS_WARN("%s/%s: staging fsync: %s", bucket, key,
			 strerror(errno));
}

/*
 * The same for a file whose mu the caller holds: mu is released across
 * the fsync (the fd stays valid: it is closed only when the last
 * reference goes, and the caller holds one).  mu held on entry and exit.
 */
static void sync_staging_unlocked(struct bfs_ofile *of)
{
	int fd = of->fd, err = 0;

	if (fd < 0)
		return;
	pthread_mutex_unlock(&of->mu);
	if (fsync(fd) < 0)
		err = errno;
	pthread_mutex_lock(&of->mu);
	if (err)
		BFS_WARN("%s/%s: staging fsync: %s", of->b->name, of->key,
			 strerror(err));
}

/*
 * The same plus the journal row's failure, both without mu (an fsync and
 * a synchronous=FULL commit): the name is copied first; a rename of the
 * file meanwhile only makes the UPDATE find no row (logged at debug).
 * mu held on entry and exit.
 */
static void keep_durable_unlocked(struct bfs_ofile *of, const char *msg)
{
	char *bucket = strdup(of->b->name), *key = strdup(of->key);

	sync_staging_unlocked(of);
	if (!bucket || !key) {
		BFS_ERROR("%s/%s: upload failure not journaled: %s",
			  of->b->name, of->key, bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	pthread_mutex_unlock(&of->mu);
	journal_fail(bucket, key, msg);
	pthread_mutex_lock(&of->mu);
out:
	free(bucket);
	free(key);
}

struct job {
	struct bfs_ofile *of;          /* referenced */
	struct bfs_rbucket *b;         /* referenced */
	char *key;
	char *base;
	uint64_t gen;
	int fd;
	int recovered;
	struct bfs_meta m;
	struct job *next;              /* runner_mu: the run queue */
};

static void job_free(struct job *j)
{
	bfs_rbucket_put(j->b);
	free(j->base);
	free(j->key);
	free(j);
}

/* Sets the retry time of the queue after a failed job; mu held. */
static void backoff_locked(struct bfs_ofile *of)
{
	int d = atomic_load(&draining);

	bfs_lock_assert_held(&of->mu);
	of->backoff_s = of->backoff_s ? of->backoff_s * 2 : 1;
	if (of->backoff_s > UPQ_BACKOFF_MAX)
		of->backoff_s = UPQ_BACKOFF_MAX;
	if (d)
		of->backoff_s = 1;
	mono_now(&of->next_try);
	ts_add_ms(&of->next_try, (long)of->backoff_s * 500 +
		  (long)jitter((unsigned)of->backoff_s * 500));
}

/* 1 when the file is still what job j stored: no write since the job
 * took its snapshot, not unlinked, same bucket and key; mu held. */
static int job_current_locked(struct bfs_ofile *of, const struct job *j)
{
	bfs_lock_assert_held(&of->mu);
	return of->gen == j->gen && !of->unlinked && of->b == j->b &&
	       strcmp(of->key, j->key) == 0;
}

static void job_run(struct job *j)
{
	struct bfs_ofile *of = j->of;
	struct bfs_provider *p = j->b->prov;
	struct timespec t0, t1;
	char etag[96], *target = NULL;
	int r, conflict = 0, same, multipart = 0, kept = 0, committed = 0;

	etag[0] = '\0';
	mono_now(&t0);
	if (!p) {
		r = BFS_ERR_IO;
	} else if (j->recovered &&
		   (r = recovery_target(p, j->key, j->base, &target, &j->m)) != 0) {
		;
	} else {
		conflict = target && strcmp(target, j->key) != 0;
		if (!conflict && bfs_mp_wanted(j->b, j->m.size)) {
			/* resumable: see mpu.c */
			r = bfs_mp_store(of, j->key, &j->m, etag, sizeof(etag));
			multipart = 1;
		} else {
			r = p->ops->put_fd(p->st, target ? target : j->key,
					   j->fd, j->m.size, &j->m, etag,
					   sizeof(etag));
			bfs_rbucket_note(j->b, r);
		}
	}
	mono_now(&t1);
	/*
	 * The bookkeeping that goes to disk or to the catalog (fsync, the
	 * journal row, the index row: a PostgreSQL round trip) runs without
	 * mu, which stat and readdir of this file wait on.  A running job
	 * is fenced against renames (fence.c), so (j->b, j->key) stays this
	 * file's name meanwhile; a write meanwhile is seen below when mu is
	 * taken again.
	 */
	if (r != 0) {
		/* A failed upload leaves the data only here: on disk before
		 * the journal says so.  journal_fail is an UPDATE: a row an
		 * unlink removed meanwhile stays removed. */
		sync_staging(j->b->name, j->key, j->fd);
		pthread_mutex_lock(&of->mu);
		same = !of->unlinked;
		pthread_mutex_unlock(&of->mu);
		if (same)
			journal_fail(j->b->name, j->key, bfs_strerror(r));
	} else if (conflict) {
		/* the staged copy's row moves to the conflict key */
		pthread_mutex_lock(&of->mu);
		of->committing = 1;
		pthread_mutex_unlock(&of->mu);
		kept = bfs_index_put(j->b->name, target, &j->m, etag, j->key);
	} else {
		/* Writes wait while the rows are written (committing): the
		 * journal row deleted here must not be one a write since
		 * the check relies on.  Stat and readdir do not wait. */
		pthread_mutex_lock(&of->mu);
		same = job_current_locked(of, j);
		of->committing = 1;
		pthread_mutex_unlock(&of->mu);
		/* the journal row goes with the index row only when the
		 * stored bytes are the file's latest */
		kept = bfs_index_put(j->b->name, j->key, &j->m, etag,
				     same ? j->key : NULL) && same;
		committed = same;
	}
	pthread_mutex_lock(&of->mu);
	of->committing = 0;            /* broadcast below, with uploading */
	same = job_current_locked(of, j);
	of->last_err = r;
	if (r == 0 && !multipart)
		bfs_mp_drop_locked(of);    /* stored whole: any stream is moot */
	if (r != 0) {
		BFS_WARN("%s/%s: upload failed: %s", j->b->name, j->key,
			 bfs_strerror(r));
		backoff_locked(of);
	} else if (conflict) {
		BFS_WARN("%s/%s: changed on the server since the staged copy "
			 "was based on it; the staged copy is stored as %s/%s",
			 j->b->name, j->key, j->b->name, target);
		if (kept)
			of->keep_path = 1;      /* the row may name it */
		bfs_gone_supersede(j->b->name, target, 0);
		/* The copy is a new entry of the folder: a cached listing
		 * of that folder must not hide it. */
		bfs_attr_drop(j->b->name, target);
		if (of->dirty && !of->unlinked)
			bfs_metrics_pending_add(-1);
		of->dirty = 0;
		of->unlinked = 1;
		of->recovered = 0;
	} else {
		bfs_metrics_upload_latency((double)(t1.tv_sec - t0.tv_sec) +
					   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		if (kept)
			of->keep_path = 1;      /* the row may name it */
		/* a kept object of an unlinked file is not this name's now */
		bfs_gone_supersede(j->b->name, j->key, 0);
		bfs_attr_drop(j->b->name, j->key);
		of->recovered = 0;
		of->backoff_s = 0;
		if (committed) {
			/* the server holds these bytes now */
			free(of->base_etag);
			of->base_etag = etag[0] ? strdup(etag) : NULL;
			of->base_known = 1;
			of->exists_remote = 1;
		}
		if (same) {
			bfs_ofile_set_dirty_locked(of, 0);
		} else if (committed && of->dirty && !of->unlinked) {
			/* changed in the gap without a write (a rename of
			 * it waits for the job; an attribute change does
			 * not): the journal row that commit removed comes
			 * back (lazy, as any first write's) */
			bfs_ofile_journal_put_locked(of, 0);
		}
		BFS_DEBUG("%s/%s: uploaded %llu bytes%s", j->b->name, j->key,
			  (unsigned long long)j->m.size,
			  same ? "" : " (changed meanwhile: again)");
	}
	of->uploading = 0;
	pthread_cond_broadcast(&of->cv);
	pthread_mutex_unlock(&of->mu);
	if (conflict)
		bfs_ofile_unhook(of);
	free(target);
	job_free(j);
	bfs_ofile_put(of);
	atomic_fetch_sub(&jobs_running, 1);
	if (atomic_exchange(&queue_waits_room, 0)) {
		/* the queue has due files it left for want of room */
		pthread_mutex_lock(&queue_mu);
		pthread_cond_broadcast(&queue_cv);
		pthread_mutex_unlock(&queue_mu);
	}
}

/*
 * Job RUNNERS: a thread that ran a job waits RUNNER_IDLE_S for the next
 * one before it exits, so a stream of closes (one upload after another)
 * reuses one thread instead of creating and tearing down one per file.
 * Every job still gets a thread at once: a job is only queued for a
 * runner that is idle and reserved for it (runners_idle counts idle
 * runners not yet promised a job), else a new runner starts with it.
 */
#define RUNNER_IDLE_S 10

static pthread_mutex_t runner_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t runner_cv;                /* runner_mu; monotonic */
static pthread_once_t runner_once = PTHREAD_ONCE_INIT;
static struct job *runq_head, *runq_tail;       /* runner_mu */
static int runners_idle;                        /* runner_mu */

static void runner_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&runner_cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void *runner_main(void *arg)
{
	struct job *j = arg;
	struct timespec until;

	while (j) {
		job_run(j);
		j = NULL;
		pthread_mutex_lock(&runner_mu);
		runners_idle++;
		mono_now(&until);
		until.tv_sec += RUNNER_IDLE_S;
		while (!runq_head &&
		       pthread_cond_timedwait(&runner_cv, &runner_mu,
					      &until) == 0)
			;
		if (runq_head) {        /* reserved for us by job_start */
			j = runq_head;
			if (!(runq_head = j->next))
				runq_tail = NULL;
		} else {
			runners_idle--;
		}
		pthread_mutex_unlock(&runner_mu);
	}
	return NULL;
}

/* Hands j to an idle runner or a new one; an error when neither. */
static int job_start(struct job *j)
{
	pthread_attr_t at;
	pthread_t t;
	int r;

	pthread_once(&runner_once, runner_init);
	pthread_mutex_lock(&runner_mu);
	if (runners_idle > 0) {
		runners_idle--;
		j->next = NULL;
		if (runq_tail)
			runq_tail->next = j;
		else
			runq_head = j;
		runq_tail = j;
		pthread_cond_signal(&runner_cv);
		pthread_mutex_unlock(&runner_mu);
		return 0;
	}
	pthread_mutex_unlock(&runner_mu);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &at, runner_main, j);
	pthread_attr_destroy(&at);
	return r;
}

void bfs_ofile_kick_locked(struct bfs_ofile *of)
{
	struct job *j;

	bfs_lock_assert_held(&of->mu);
	if (!of->dirty || of->unlinked || of->uploading || !of->staged ||
	    of->fd < 0 || of->b->read_only)
		return;
	/* a rename or deferred delete of this name is under way (fence.c) */
	if (bfs_fence_covers(of->b->name, of->key))
		return;
	if (!(j = calloc(1, sizeof(*j))) || !(j->key = strdup(of->key)) ||
	    (of->base_etag && !(j->base = strdup(of->base_etag)))) {
		if (j) {
			free(j->key);
			free(j);
		}
		of->last_err = BFS_ERR_NOMEM;
		return;
	}
	j->of = of;
	j->b = of->b;
	bfs_rbucket_ref(j->b);
	j->gen = of->gen;
	j->fd = of->fd;
	j->recovered = of->recovered;
	bfs_ofile_meta_locked(of, &j->m);
	bfs_ofile_ref(of);
	of->uploading = 1;
	atomic_fetch_add(&jobs_running, 1);
	if (job_start(j) != 0) {
		BFS_ERROR("%s/%s: cannot start an upload thread", of->b->name,
			  of->key);
		atomic_fetch_sub(&jobs_running, 1);
		of->uploading = 0;
		of->last_err = BFS_ERR_NOMEM;
		atomic_fetch_sub(&of->refs, 1);    /* the caller holds one */
		job_free(j);
	}
	/*
	 * The row gets the current attributes while the job already sends
	 * (lazily: only a crash of this process is to be survived here, see
	 * set_dirty).  The job's bookkeeping, which deletes the row, takes
	 * mu, which we hold: it cannot run before this upsert.
	 */
	bfs_ofile_journal_put_locked(of, 0);
}

void bfs_ofile_wait_idle_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	while (of->uploading)
		pthread_cond_wait(&of->cv, &of->mu);
}

int bfs_ofile_sync_locked(struct bfs_ofile *of, int timeout)
{
	struct timespec deadline, now, until;
	long backoff = SYNC_BACKOFF_MIN_MS;
	int started = 0, waited = 0, r = BFS_ERR_IO;
	char msg[128];

	bfs_lock_assert_held(&of->mu);
	mono_now(&deadline);
	ts_add_ms(&deadline, (long)(timeout > 0 ? timeout : 60) * 1000);
	for (;;) {
		if (!of->dirty || of->unlinked) {
			r = 0;
			goto out;
		}
		if (of->b->read_only) {
			r = BFS_ERR_READONLY;
			goto out;
		}
		if (!of->uploading) {
			if (started && of->last_err != 0 && !waited) {
				r = of->last_err;
				if (!bfs_err_retryable(r))
					goto fail;
				mono_now(&until);
				ts_add_ms(&until, (long)jitter((unsigned)backoff));
				if (!ts_before(&until, &deadline))
					goto fail;
				backoff = backoff * 2 > SYNC_BACKOFF_MAX_MS ?
					  SYNC_BACKOFF_MAX_MS : backoff * 2;
				while (!of->uploading &&
				       pthread_cond_timedwait(&of->cv, &of->mu,
							      &until) == 0)
					;
				waited = 1;    /* then a new job, unless one runs */
				continue;
			}
			waited = 0;
			if (bfs_fence_covers(of->b->name, of->key)) {
				/* renamed right now: the job starts after */
				mono_now(&until);
				if (!ts_before(&until, &deadline)) {
					r = BFS_ERR_TIMEOUT;
					goto fail;
				}
				ts_add_ms(&until, 20);
				pthread_cond_timedwait(&of->cv, &of->mu, &until);
				continue;
			}
			bfs_ofile_kick_locked(of);
			if (!of->uploading) {
				r = of->last_err ? of->last_err : BFS_ERR_IO;
				goto fail;
			}
			started = 1;
		}
		while (of->uploading &&
		       pthread_cond_timedwait(&of->cv, &of->mu, &deadline) == 0)
			;
		waited = 0;            /* a job ended: back off before the next */
		mono_now(&now);
		if (of->uploading && !ts_before(&now, &deadline)) {
			r = BFS_ERR_TIMEOUT;
			goto fail;
		}
	}
fail:
	if (r == BFS_ERR_TIMEOUT)
		snprintf(msg, sizeof(msg), "no answer within upload_timeout "
			 "(%d s)", timeout);
	else
		snprintf(msg, sizeof(msg), "%s", bfs_strerror(r));
	BFS_ERROR("%s/%s: not stored within %d s: %s; kept in %s and retried "
		  "in the background", of->b->name, of->key, timeout, msg,
		  of->staging_path ? of->staging_path : "?");
	if (!of->unlinked) {
		/* EIO promises the data is kept: durable now (a job still
		 * running at the deadline has not synced it). */
		keep_durable_unlocked(of, msg);
	}
out:
	return r;
}

/* ---- the queue ---- */

void bfs_upq_add(struct bfs_ofile *of)
{
	pthread_mutex_lock(&queue_mu);
	if (!of->queued) {
		bfs_ofile_ref(of);
		of->queued = 1;
		of->qnext = queue_head;
		queue_head = of;
	}
	pthread_mutex_unlock(&queue_mu);
}

/* Takes of out of the queue and drops the queue's reference. */
static void queue_remove(struct bfs_ofile *of)
{
	struct bfs_ofile **pp;
	int found = 0;

	pthread_mutex_lock(&queue_mu);
	for (pp = &queue_head; *pp; pp = &(*pp)->qnext) {
		if (*pp == of) {
			*pp = of->qnext;
			of->qnext = NULL;
			of->queued = 0;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&queue_mu);
	if (found)
		bfs_ofile_put(of);
}

/* Referenced snapshot of the queue into *out (caller puts each). */
static size_t queue_snapshot(struct bfs_ofile ***out)
{
	struct bfs_ofile *of, **v = NULL;
	size_t n = 0, i = 0;

	pthread_mutex_lock(&queue_mu);
	for (of = queue_head; of; of = of->qnext)
		n++;
	if (n && (v = malloc(n * sizeof(*v))) != NULL)
		for (of = queue_head; of; of = of->qnext) {
			bfs_ofile_ref(of);   /* the queue holds one */
			v[i++] = of;
		}
	pthread_mutex_unlock(&queue_mu);
	*out = v;
	return i;
}

/* 1 when the queue may start one more job (UPQ_JOBS_MAX, at shutdown
 * UPQ_DRAIN_JOBS_MAX); else 0, and the next job to end wakes the queue
 * worker. */
static int queue_room(void)
{
	if (atomic_load(&jobs_running) < (atomic_load(&draining) ?
					  UPQ_DRAIN_JOBS_MAX : UPQ_JOBS_MAX))
		return 1;
	atomic_store(&queue_waits_room, 1);
	return 0;
}

/* One pass of the worker: start due jobs (while there is room), drop
 * what is done. */
static void queue_tick(void)
{
	struct bfs_ofile **v;
	struct timespec now;
	size_t n, i;
	int done;

	n = queue_snapshot(&v);
	for (i = 0; i < n; i++) {
		struct bfs_ofile *of = v[i];

		mono_now(&now);
		pthread_mutex_lock(&of->mu);
		done = (!of->dirty || of->unlinked) && !of->uploading;
		if (!done && !of->uploading && !ts_before(&now, &of->next_try) &&
		    queue_room())
			bfs_ofile_kick_locked(of);
		pthread_mutex_unlock(&of->mu);
		if (done)
			queue_remove(of);
		bfs_ofile_put(of);
	}
	free(v);
}

static void *worker_main(void *arg)
{
	struct timespec ts, last, now;

	(void)arg;
	/* off the mount's path: ids nobody uses, old foreign uploads */
	bfs_mp_sweep();
	pthread_mutex_lock(&queue_mu);
	while (!stopping) {
		pthread_mutex_unlock(&queue_mu);
		mono_now(&last);
		queue_tick();
		bfs_mp_reap(0);
		pthread_mutex_lock(&queue_mu);
		if (stopping)
			break;
		ts = last;
		ts_add_ms(&ts, UPQ_TICK_MS);
		pthread_cond_timedwait(&queue_cv, &queue_mu, &ts);
		/* woken by a job's end: the next tick, not sooner than
		 * UPQ_MIN_TICK_MS after the last (a tick walks the queue) */
		ts = last;
		ts_add_ms(&ts, UPQ_MIN_TICK_MS);
		for (;;) {
			mono_now(&now);
			if (stopping || !ts_before(&now, &ts))
				break;
			pthread_cond_timedwait(&queue_cv, &queue_mu, &ts);
		}
	}
	pthread_mutex_unlock(&queue_mu);
	return NULL;
}

/* ---- start-up ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes files in the staging folder that no journal row names. */
static void remove_orphans(char **keep, size_t nkeep)
{
	DIR *d;
	struct dirent *de;
	char *path;
	size_t len, removed = 0;

	if (!(d = opendir(bfs_fs.staging_dir))) {
		BFS_WARN("staging folder %s: %s", bfs_fs.staging_dir,
			 strerror(errno));
		return;
	}
	if (nkeep > 1)
		qsort(keep, nkeep, sizeof(*keep), cmp_str);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(bfs_fs.staging_dir) + strlen(de->d_name) + 2;
		if (!(path = malloc(len)))
			break;
		snprintf(path, len, "%s/%s", bfs_fs.staging_dir, de->d_name);
		if (!nkeep || !bsearch(&path, keep, nkeep, sizeof(*keep),
				       cmp_str)) {
			if (unlink(path) == 0)
				removed++;
		}
		free(path);
	}
	closedir(d);
	if (removed)
		BFS_INFO("removed %zu staging file(s) no upload journal row "
			 "names", removed);
}

/* Adopts every journal row (see DESIGN); returns how many. */
static size_t adopt_journal(void)
{
	struct bfs_journal_entry *e = NULL;
	struct bfs_ofile *of;
	struct bfs_rbucket *b;
	char **keep = NULL;
	size_t n = 0, i, nkeep = 0, adopted = 0;
	int r;

	if ((r = bfs_store_journal_list(store(), &e, &n)) != 0) {
		BFS_ERROR("cannot read the upload journal: %s; staged data is "
			  "left untouched", bfs_strerror(r));
		return 0;
	}
	if (n && !(keep = calloc(n, sizeof(*keep)))) {
		BFS_ERROR("out of memory reading the upload journal");
		goto out;
	}
	for (i = 0; i < n; i++) {
		keep[nkeep++] = e[i].staging_path;
		if (!(b = bfs_registry_get(bfs_fs.reg, e[i].bucket))) {
			BFS_WARN("journaled upload %s/%s: bucket not mounted; "
				 "kept for a later start", e[i].bucket, e[i].key);
			continue;
		}
		r = bfs_ofile_adopt(b, &e[i], &of);
		if (r == BFS_ERR_NOTFOUND) {
			BFS_WARN("journaled upload %s/%s: staging file %s is "
				 "gone; dropping the journal row", e[i].bucket,
				 e[i].key, e[i].staging_path);
			bfs_store_journal_done(store(), e[i].bucket, e[i].key);
			nkeep--;
		} else if (r != 0) {
			BFS_ERROR("journaled upload %s/%s: cannot adopt %s: %s",
				  e[i].bucket, e[i].key, e[i].staging_path,
				  bfs_strerror(r));
		} else {
			BFS_INFO("recovering journaled upload %s/%s (%llu bytes, "
				 "%d failed attempt(s) so far%s)", e[i].bucket,
				 e[i].key, (unsigned long long)of->size,
				 e[i].attempts, e[i].upload_id ?
				 "; multipart upload to resume" : "");
			pthread_mutex_lock(&of->mu);
			bfs_mp_adopt_locked(of, e[i].upload_id, e[i].part_size,
					    e[i].part_grow);
			pthread_mutex_unlock(&of->mu);
			bfs_upq_add(of);
			bfs_ofile_put(of);
			adopted++;
		}
		bfs_rbucket_put(b);
	}
	remove_orphans(keep, nkeep);
out:
	free(keep);
	bfs_journal_entries_free(e, n);
	return adopted;
}

/* queue_cv once per process: a job of an earlier context may still end
 * (and wake it) while the next context starts. */
static void queue_cv_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&queue_cv, &ca);
	pthread_condattr_destroy(&ca);
}

int bfs_upq_running(void)
{
	return atomic_load(&jobs_running);
}

int bfs_upq_start(void)
{
	size_t n;
	int r;

	pthread_once(&queue_once, queue_cv_init);
	atomic_store(&queue_waits_room, 0);
	atomic_store(&draining, 0);
	n = adopt_journal();
	if (n)
		BFS_INFO("%zu journaled upload(s) left by the last run are "
			 "being finished in the background", n);
	stopping = 0;
	if ((r = pthread_create(&worker, NULL, worker_main, NULL)) != 0)
		return bfs_err_from_errno(r);
	worker_on = 1;
	return 0;
}

struct drain {
	int dirty;
	int kick;               /* before the deadline: jobs may start */
	struct timespec now;
};

static int drain_one(void *arg, struct bfs_ofile *of)
{
	struct drain *d = arg;

	pthread_mutex_lock(&of->mu);
	if (of->dirty && !of->unlinked) {
		d->dirty++;
		if (d->kick && !of->uploading && (!of->last_err ||
				       !ts_before(&d->now, &of->next_try)) &&
		    queue_room())
			bfs_ofile_kick_locked(of);
	}
	pthread_mutex_unlock(&of->mu);
	return 0;
}

/* Counts what stays journaled at exit and makes it durable (a job still
 * running, or a file never closed, has not synced its staging file). */
static int count_dirty(void *arg, struct bfs_ofile *of)
{
	int *n = arg, dirty;

	pthread_mutex_lock(&of->mu);
	dirty = of->dirty && !of->unlinked;
	pthread_mutex_unlock(&of->mu);
	if (dirty) {
		(*n)++;
		bfs_ofile_journal_sync(of);
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int bfs_upq_shutdown(int timeout)
{
	struct timespec deadline, now;
	struct bfs_ofile *of;
	struct drain d;
	int first = -1, left = 0, running;

	if (timeout <= 0)
		timeout = 60;
	mono_now(&deadline);
	ts_add_ms(&deadline, (long)timeout * 1000);
	atomic_store(&draining, 1);
	for (;;) {
		memset(&d, 0, sizeof(d));
		mono_now(&d.now);
		d.kick = ts_before(&d.now, &deadline);
		bfs_ofile_each(NULL, "", drain_one, &d);
		if (first < 0) {
			first = d.dirty;
			if (first)
				BFS_INFO("uploading %d pending file(s) before exit "
					 "(at most %d s)", first, timeout);
		}
		if (!d.dirty || !ts_before(&d.now, &deadline))
			break;
		sleep_ms(200);
	}
	/* Jobs still running get what is left of the bound. */
	for (;;) {
		mono_now(&now);
		if (!atomic_load(&jobs_running) || !ts_before(&now, &deadline))
			break;
		sleep_ms(50);
	}
	bfs_ofile_each(NULL, "", count_dirty, &left);
	running = atomic_load(&jobs_running);
	if (first > 0 || left)
		BFS_INFO("exit: %d pending upload(s) stored, %d left in the "
			 "journal for the next start%s", first > left ?
			 first - left : 0, left, running ? " (an upload is "
			 "still running)" : "");
	pthread_mutex_lock(&queue_mu);
	stopping = 1;
	pthread_cond_broadcast(&queue_cv);
	pthread_mutex_unlock(&queue_mu);
	if (worker_on) {
		pthread_join(worker, NULL);
		worker_on = 0;
	}
	/* Drop the queue's references; dirty files keep their staging
	 * files and journal rows. */
	for (;;) {
		pthread_mutex_lock(&queue_mu);
		of = queue_head;
		pthread_mutex_unlock(&queue_mu);
		if (!of)
			break;
		queue_remove(of);
	}
	return left ? BFS_ERR_IO : 0;
}
