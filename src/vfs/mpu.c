/*
 * mpu.c - resumable and streaming multipart uploads of staged files, and
 * the sweep of multipart uploads nobody will finish.
 *
 * DESIGN
 * ------
 * A file larger than BFS_MPU_SINGLE_MAX on a provider with multipart ops
 * (s3, r2) is stored as a multipart upload whose id lives in its journal
 * row (bfs_store_mpu_begin records the id, in the same transaction, in
 * the table of every id the daemon created, before the first part goes
 * out).  struct bfs_mp is the in-memory side: the id, the key it belongs
 * to, the part plan (bfs_mpu.h) and one state per part: NONE (to send),
 * FLIGHT (a part thread sends it), DONE (stored, its etag known).
 *
 * STREAMING: every change of a file's bytes calls bfs_mp_wrote_locked()
 * with the changed range.  Once an appending write makes the file larger
 * than one PUT (8 MiB, so part 1 is complete), the upload is begun (by a part thread: no network under
 * of->mu) and from then on every complete part below the file's size is
 * sent by part jobs on the I/O pool (bfs_pool_io; at most MP_FILE_PARTS per file, MP_ALL_PARTS in
 * all) that pread the staging file without holding of->mu, while the
 * application keeps writing.  A change of bytes already sent or being
 * sent turns those parts back to NONE (a part in flight is flagged and
 * re-sent when it returns), so a rewrite below the streamed mark or a
 * truncate costs re-sending the affected parts, never wrong bytes.
 *
 * COMPLETION is an upload job of upload.c (close, fsync, the queue):
 * bfs_mp_store() takes the size the job snapshotted, makes sure an id
 * exists (the streamed one; after a restart or a lost state the id of
 * the journal row, whose stored parts are listed and kept only when size
 * and ETag equal the MD5 of the same staged range; a new one when the id
 * is gone), sends every part of the final plan that is not DONE
 * (including the tail), waits for them and completes.  A failed job
 * keeps the id and the DONE parts, so the next try (or the next start)
 * sends only what is missing.  A Complete whose answer was lost is
 * recognised by the object's multipart ETag.  The upload is begun with
 * the attributes of that moment; when they differ at completion (a
 * stream: mtime moved) they are replaced afterwards (set_meta).
 *
 * IDS NOBODY USES: a rename clears the row's id (an id belongs to its
 * key), an unlink or a small final size drops the row or stores by PUT;
 * the id stays recorded.  bfs_mp_reap() (the queue worker, at start and
 * then whenever asked or every MP_REAP_TICKS) aborts every recorded id no
 * journal row uses and forgets it.  bfs_mp_sweep() at start also lists
 * each s3/r2 bucket's uploads under its prefix and aborts those older
 * than multipart_max_age that no journal row uses.
 *
 * Locks: every field of struct bfs_mp is guarded by the owning file's
 * of->mu; a part thread holds a reference on the file and on the mp
 * (inflight), so neither goes away under it.  mp_global counts part
 * threads of all files (atomic).  Nothing else is locked here.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_mpu.h"
#include "bfs_pool.h"
#include "bfs_store.h"
#define BFS_OFILE_MODULE
#include "ofile_int.h"
#include "vfs_int.h"

#define MP_FILE_PARTS 8          /* parts in flight per file */
#define MP_ALL_PARTS 16          /* parts in flight in all */

enum { P_NONE, P_FLIGHT, P_DONE };

struct mp_part {
	unsigned char state;
	unsigned char stale;     /* changed while in flight: send again */
	uint64_t len;            /* bytes sent (FLIGHT, DONE) */
	char etag[96];
};

struct bfs_mp {
	struct bfs_rbucket *b;   /* referenced: the id's bucket */
	char *key;               /* the key the id was created for */
	char id[BFS_MPU_ID_MAX]; /* "" until begun */
	uint64_t base;
	int grow;
	struct mp_part *parts;   /* part n at parts[n - 1] */
	unsigned cap;
	unsigned scan;           /* no NONE part below this number */
	int inflight;            /* part (and begin) threads running */
	int beginning;           /* a begin thread runs */
	int listed;              /* parts known (streamed or listed) */
	int err;                 /* first part failure since the last job */
	int gone;                /* the id is gone or unusable */
	int dead;                /* detached from its file: freed by the
				  * last user (part jobs, the upload job) */
	int job;                 /* an upload job holds it (bfs_mp_store) */
	int final;               /* a job sends the tail too */
	int nostream;            /* sent bytes were rewritten: parts go
				  * only with a job */
	uint64_t final_size;
	struct bfs_meta meta;    /* attributes the upload was begun with */
	int meta_known;
};

static atomic_int mp_global;
static atomic_int reap_wanted;

static struct bfs_store *store(void)
{
	return bfs_registry_store(bfs_fs.reg);
}

static int capable(const struct bfs_rbucket *b)
{
	const struct bfs_provider_ops *o = b->prov ? b->prov->ops : NULL;

	return o && o->mpu_begin && o->mpu_part && o->mpu_list_parts &&
	       o->mpu_complete && o->mpu_abort && !b->read_only;
}

int bfs_mp_wanted(const struct bfs_rbucket *b, uint64_t size)
{
	return size > BFS_MPU_SINGLE_MAX && capable(b);
}

void bfs_mp_reap_soon(void)
{
	atomic_store(&reap_wanted, 1);
}

static void mp_free(struct bfs_mp *mp)
{
	if (!mp)
		return;
	bfs_rbucket_put(mp->b);
	free(mp->key);
	free(mp->parts);
	free(mp);
}

static struct bfs_mp *mp_new(struct bfs_rbucket *b, const char *key,
			     uint64_t base, int grow)
{
	struct bfs_mp *mp = calloc(1, sizeof(*mp));

	if (!mp || !(mp->key = strdup(key))) {
		free(mp);
		return NULL;
	}
	mp->b = b;
	bfs_rbucket_ref(b);
	mp->base = base;
	mp->grow = grow;
	mp->scan = 1;
	return mp;
}

/* Detaches of->mp (its id becomes an orphan for the reaper); mu held. */
void bfs_mp_drop_locked(struct bfs_ofile *of)
{
	struct bfs_mp *mp = of->mp;

	bfs_lock_assert_held(&of->mu);
	if (!mp)
		return;
	of->mp = NULL;
	if (mp->id[0])
		bfs_mp_reap_soon();
	if (mp->inflight || mp->job)
		mp->dead = 1;    /* the last user frees it */
	else
		mp_free(mp);
}

/* Room for part n; mu held. */
static int mp_grow_to(struct bfs_mp *mp, unsigned n)
{
	struct mp_part *np;
	unsigned cap;

	if (n <= mp->cap)
		return 0;
	if (n > BFS_MPU_MAX_PARTS)
		return BFS_ERR_TOOBIG;
	cap = mp->cap ? mp->cap : 64;
	while (cap < n)
		cap *= 2;
	if (cap > BFS_MPU_MAX_PARTS)
		cap = BFS_MPU_MAX_PARTS;
	if (!(np = realloc(mp->parts, cap * sizeof(*np))))
		return BFS_ERR_NOMEM;
	memset(np + mp->cap, 0, (cap - mp->cap) * sizeof(*np));
	mp->parts = np;
	mp->cap = cap;
	return 0;
}

/* ---- part jobs (run on the I/O pool) ---- */

struct mp_task {
	struct bfs_ofile *of;    /* referenced */
	struct bfs_mp *mp;       /* counted in mp->inflight */
	unsigned n;              /* part number; 0: begin the upload */
	uint64_t off, len;
	int fd;
	char *key;
	char id[BFS_MPU_ID_MAX];
	struct bfs_meta meta;
};

static void pump_locked(struct bfs_ofile *of);

static int meta_same(const struct bfs_meta *a, const struct bfs_meta *b)
{
	return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid &&
	       a->mtime == b->mtime && a->mtime_nsec == b->mtime_nsec &&
	       strcmp(a->content_type, b->content_type) == 0;
}

/* Begins the upload of mp (no lock held); records the id durably. */
static int mp_begin(struct bfs_mp *mp, const struct bfs_meta *m, char *id)
{
	struct bfs_provider *p = mp->b->prov;
	int r;

	id[0] = '\0';
	r = p->ops->mpu_begin(p->st, mp->key, m, id, BFS_MPU_ID_MAX);
	bfs_rbucket_note(mp->b, r);
	if (r != 0)
		return r;
	r = bfs_store_mpu_begin(store(), mp->b->name, mp->key, id, mp->base,
				mp->grow);
	if (r != 0) {
		/* recorded or not, nobody uses it: abort it now */
		BFS_DEBUG("%s/%s: upload id not journaled (%s); aborting it",
			  mp->b->name, mp->key, bfs_strerror(r));
		if (p->ops->mpu_abort(p->st, mp->key, id) == 0)
			bfs_store_mpu_forget(store(), id);
		id[0] = '\0';
		return r;
	}
	BFS_DEBUG("%s/%s: multipart upload begun", mp->b->name, mp->key);
	return 0;
}

static void *task_main(void *arg)
{
	struct mp_task *t = arg;
	struct bfs_ofile *of = t->of;
	struct bfs_mp *mp = t->mp;
	struct bfs_provider *p = mp->b->prov;
	struct mp_part *pt;
	char etag[96];
	int r;

	etag[0] = '\0';
	if (t->n == 0) {
		r = mp_begin(mp, &t->meta, t->id);
	} else {
		r = p->ops->mpu_part(p->st, t->key, t->id, t->n, t->fd, t->off,
				     t->len, etag, sizeof(etag));
		bfs_rbucket_note(mp->b, r);
	}
	pthread_mutex_lock(&of->mu);
	mp->inflight--;
	atomic_fetch_sub(&mp_global, 1);
	if (t->n == 0) {
		mp->beginning = 0;
		if (r == 0) {
			snprintf(mp->id, sizeof(mp->id), "%s", t->id);
			mp->meta = t->meta;
			mp->meta_known = 1;
			mp->listed = 1;
		} else {
			BFS_WARN("%s/%s: cannot begin a multipart upload: %s",
				 mp->b->name, mp->key, bfs_strerror(r));
			mp->gone = 1;
			if (!mp->err)
				mp->err = r;
		}
	} else if (strcmp(mp->id, t->id) == 0 && t->n <= mp->cap) {
		pt = &mp->parts[t->n - 1];
		if (r == 0 && !pt->stale && pt->len == t->len) {
			pt->state = P_DONE;
			snprintf(pt->etag, sizeof(pt->etag), "%s", etag);
		} else {
			pt->state = P_NONE;
			if (t->n < mp->scan)
				mp->scan = t->n;
			if (r == BFS_ERR_NOTFOUND)
				mp->gone = 1;
			if (r != 0 && !mp->err) {
				BFS_WARN("%s/%s: part %u failed: %s", mp->b->name,
					 mp->key, t->n, bfs_strerror(r));
				mp->err = r;
			}
		}
		pt->stale = 0;
	}
	if (mp->dead) {
		if (!mp->inflight && !mp->job)
			mp_free(mp);
	} else if (!mp->err) {
		pump_locked(of);
	}
	pthread_cond_broadcast(&of->cv);
	pthread_mutex_unlock(&of->mu);
	free(t->key);
	free(t);
	bfs_ofile_put(of);
	return NULL;
}

/* task_main as a job of the I/O pool (bfs_pool.h). */
static void task_job(void *arg)
{
	task_main(arg);
}

/* Starts a task on the I/O pool (mu held: submitting never waits); 0 or
 * an error (nothing started). */
static int task_start(struct bfs_ofile *of, struct bfs_mp *mp, unsigned n,
		      uint64_t off, uint64_t len)
{
	struct bfs_pool *pool = bfs_pool_io();
	struct mp_task *t;
	int r = 0;

	if (!pool)
		return BFS_ERR_BUSY;    /* shut down: the job sends it */

	if (!(t = calloc(1, sizeof(*t))) || !(t->key = strdup(mp->key))) {
		free(t);
		return BFS_ERR_NOMEM;
	}
	t->of = of;
	t->mp = mp;
	t->n = n;
	t->off = off;
	t->len = len;
	t->fd = of->fd;
	snprintf(t->id, sizeof(t->id), "%s", mp->id);
	if (n == 0)
		bfs_ofile_meta_locked(of, &t->meta);
	bfs_ofile_ref(of);
	mp->inflight++;
	atomic_fetch_add(&mp_global, 1);
	if ((r = bfs_pool_submit(pool, NULL, task_job, t)) != 0) {
		mp->inflight--;
		atomic_fetch_sub(&mp_global, 1);
		atomic_fetch_sub(&of->refs, 1);   /* the caller holds one */
		free(t->key);
		free(t);
	}
	return r;
}

/* The parts the current mode may send: 1..*last, part n's length. */
static uint64_t part_len(const struct bfs_mp *mp, unsigned n, uint64_t size)
{
	uint64_t off = bfs_mpu_part_off(mp->base, mp->grow, n);
	uint64_t ps = bfs_mpu_part_size(mp->base, mp->grow, n);

	if (off >= size)
		return 0;
	return size - off < ps ? size - off : ps;
}

/*
 * Sends what may go now (mu held): while streaming, every complete part
 * below the file's size; in a job (final), every part of final_size.
 */
static void pump_locked(struct bfs_ofile *of)
{
	struct bfs_mp *mp = of->mp;
	uint64_t size, len, off;
	unsigned n, last;

	bfs_lock_assert_held(&of->mu);
	if (!mp || mp->dead || !mp->id[0] || mp->gone || mp->err ||
	    of->unlinked || of->fd < 0 || (!mp->final && mp->nostream))
		return;
	size = mp->final ? mp->final_size : of->size;
	last = bfs_mpu_part_count(mp->base, mp->grow, size);
	if (!last)
		return;
	if (!mp->final) {
		/* only complete parts; never the last one of the plan */
		while (last > 0 && bfs_mpu_part_off(mp->base, mp->grow,
						     last + 1) > size)
			last--;
	}
	for (n = mp->scan; n <= last; n++) {
		if (mp->inflight >= MP_FILE_PARTS ||
		    atomic_load(&mp_global) >= MP_ALL_PARTS)
			return;
		if (mp_grow_to(mp, n) != 0)
			return;
		if (mp->parts[n - 1].state != P_NONE)
			continue;
		len = part_len(mp, n, size);
		off = bfs_mpu_part_off(mp->base, mp->grow, n);
		if (!len)
			break;
		mp->parts[n - 1].state = P_FLIGHT;
		mp->parts[n - 1].stale = 0;
		mp->parts[n - 1].len = len;
		if (task_start(of, mp, n, off, len) != 0) {
			mp->parts[n - 1].state = P_NONE;
			return;
		}
		if (n == mp->scan)
			mp->scan = n + 1;
	}
}

void bfs_mp_wrote_locked(struct bfs_ofile *of, uint64_t off, uint64_t len)
{
	struct bfs_mp *mp = of->mp;
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	unsigned n, first;

	bfs_lock_assert_held(&of->mu);
	if (mp && !mp->dead && mp->cap) {
		/* parts overlapping [off, end) no longer hold these bytes */
		first = bfs_mpu_part_count(mp->base, mp->grow, off + 1);
		if (!first)
			first = mp->cap + 1;
		for (n = first; n <= mp->cap; n++) {
			struct mp_part *pt = &mp->parts[n - 1];

			if (bfs_mpu_part_off(mp->base, mp->grow, n) >= end)
				break;
			if (pt->state == P_FLIGHT)
				pt->stale = 1;
			else if (pt->state == P_DONE)
				pt->state = P_NONE;
			else
				continue;
			/* not a sequential writer: no more parts before the
			 * job, which sends what changed */
			mp->nostream = 1;
			if (n < mp->scan)
				mp->scan = n;
		}
	}
	if (of->unlinked || of->recovered || !of->dirty || of->fd < 0 ||
	    !capable(of->b))
		return;
	if (!mp) {
		/* a stream starts when an appending write completes part 1 */
		/* a file of 8 MiB or less is one PUT: no stream for it */
		if (end != of->size || of->size <= BFS_MPU_SINGLE_MAX)
			return;
		/* R2 wants equal parts: 8 MiB up to 80,000 MiB, then the
		 * job starts over with a larger equal plan.  Elsewhere the
		 * ramp: 4 parts of 8 MiB, then 32 MiB ones (fewer parts
		 * cost the server less CPU per GiB) */
		if (!(mp = mp_new(of->b, of->key, BFS_MPU_BASE,
				  of->b->kind == BFS_PROV_R2 ?
				  BFS_MPU_PLAN_EQUAL : BFS_MPU_PLAN_RAMP)))
			return;
		of->mp = mp;
	}
	if (mp->dead || mp->gone || mp->final || strcmp(mp->key, of->key) ||
	    mp->b != of->b)
		return;
	if (!mp->id[0]) {
		if (!mp->beginning && !mp->err) {
			mp->beginning = 1;
			if (task_start(of, mp, 0, 0, 0) != 0)
				mp->beginning = 0;
		}
		return;
	}
	pump_locked(of);
}

void bfs_mp_adopt_locked(struct bfs_ofile *of, const char *upload_id,
			 uint64_t base, int grow)
{
	struct bfs_mp *mp;

	bfs_lock_assert_held(&of->mu);
	if (!upload_id || !upload_id[0] || !base || of->mp)
		return;
	if (strlen(upload_id) >= BFS_MPU_ID_MAX)
		return;
	if (!(mp = mp_new(of->b, of->key, base, grow)))
		return;
	snprintf(mp->id, sizeof(mp->id), "%s", upload_id);
	of->mp = mp;
}

/* ---- completion (an upload job of upload.c) ---- */

/*
 * The stored parts of mp's id worth keeping (no lock held): those whose
 * size equals the plan's for size and whose ETag is the MD5 of the same
 * staged range.  *out: a new array of *n parts (caller frees).
 * NOTFOUND when the id is gone.
 */
static int mp_list(struct bfs_mp *mp, const char *id, uint64_t base, int grow,
		   int fd, uint64_t size, struct bfs_mpu_part **out, size_t *nout)
{
	struct bfs_provider *p = mp->b->prov;
	struct bfs_mpu_part *lp = NULL;
	char md5[33];
	size_t n = 0, i, k = 0;
	uint64_t len, off;
	unsigned last = bfs_mpu_part_count(base, grow, size);
	int r;

	*out = NULL;
	*nout = 0;
	r = p->ops->mpu_list_parts(p->st, mp->key, id, &lp, &n);
	bfs_rbucket_note(mp->b, r);
	if (r != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (lp[i].number < 1 || lp[i].number > last)
			continue;
		off = bfs_mpu_part_off(base, grow, lp[i].number);
		len = size - off < bfs_mpu_part_size(base, grow, lp[i].number) ?
		      size - off : bfs_mpu_part_size(base, grow, lp[i].number);
		if (lp[i].size != len ||
		    bfs_mpu_md5_fd(fd, off, len, md5) != 0 ||
		    strcasecmp(md5, lp[i].etag) != 0)
			continue;
		lp[k++] = lp[i];
	}
	*out = lp;
	*nout = k;
	return 0;
}

/*
 * A Complete that found no upload: done anyway when the object's ETag is
 * the multipart ETag of exactly these parts (its answer was lost).
 */
static int completed_before(struct bfs_mp *mp, const struct bfs_mpu_part *v,
			    size_t n, char *etag_out, size_t etag_len)
{
	struct bfs_provider *p = mp->b->prov;
	struct bfs_meta m;
	char (*md5s)[33], want[64];
	size_t i;
	int ok = 0;

	if (!(md5s = calloc(n, sizeof(*md5s))))
		return 0;
	for (i = 0; i < n; i++) {
		if (strlen(v[i].etag) != 32)
			goto out;
		memcpy(md5s[i], v[i].etag, 33);
	}
	if (bfs_mpu_etag((const char (*)[33])md5s, n, want, sizeof(want)) != 0)
		goto out;
	memset(&m, 0, sizeof(m));
	if (bfs_cache_head_fresh(p, mp->key, &m) == 0 &&
	    strcasecmp(m.etag, want) == 0) {
		snprintf(etag_out, etag_len, "%s", m.etag);
		ok = 1;
	}
out:
	free(md5s);
	return ok;
}

int bfs_mp_store(struct bfs_ofile *of, const char *key,
		 const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct bfs_mp *mp;
	struct bfs_mpu_part *v = NULL;
	struct bfs_provider *p;
	unsigned last, n, kept = 0;
	int r, fresh = 0, fd, listed;
	char id[BFS_MPU_ID_MAX];
	struct timespec ts;

	etag_out[0] = '\0';
	pthread_mutex_lock(&of->mu);
	/* a stream's begin thread first */
	while (of->mp && of->mp->beginning)
		pthread_cond_wait(&of->cv, &of->mu);
	mp = of->mp;
	if (mp && (mp->gone || strcmp(mp->key, key) != 0 || mp->b != of->b ||
		   (mp->id[0] && !bfs_mpu_part_count(mp->base, mp->grow,
						     m->size)))) {
		BFS_DEBUG("%s/%s: multipart upload state dropped (%s)",
			  of->b->name, key, mp->gone ? "gone" : "moved");
		bfs_mp_drop_locked(of);
		mp = NULL;
	}
	if (!mp) {
		uint64_t base = bfs_mpu_base_for(m->size);

		if (!(mp = mp_new(of->b, key, base, 0))) {
			pthread_mutex_unlock(&of->mu);
			return BFS_ERR_NOMEM;
		}
		of->mp = mp;
	}
	/* no part thread of a stream runs while the job owns the parts */
	mp->job = 1;
	mp->final = 1;
	mp->final_size = m->size;
	mp->err = 0;
	while (mp->inflight)
		pthread_cond_wait(&of->cv, &of->mu);
	fd = of->fd;
	listed = mp->listed;
	snprintf(id, sizeof(id), "%s", mp->id);
	pthread_mutex_unlock(&of->mu);

	/* the job's own requests: no lock held, mp stays ours (final);
	 * names come from mp->b, the bucket of its upload id (referenced,
	 * fixed), never of->b, which a rename swaps under mu */
	if (id[0] && !listed) {
		struct bfs_mpu_part *lp = NULL;
		size_t nl = 0, i;
		uint64_t gen;

		pthread_mutex_lock(&of->mu);
		gen = of->gen;
		pthread_mutex_unlock(&of->mu);
		r = mp_list(mp, id, mp->base, mp->grow, fd, m->size, &lp, &nl);
		if (r == BFS_ERR_NOTFOUND) {
			BFS_INFO("%s/%s: multipart upload gone; starting a new "
				 "one", mp->b->name, key);
			bfs_store_mpu_clear(store(), mp->b->name, key, id);
			bfs_store_mpu_forget(store(), id);
			id[0] = '\0';
		} else if (r != 0) {
			goto fail;
		} else {
			pthread_mutex_lock(&of->mu);
			last = bfs_mpu_part_count(mp->base, mp->grow, m->size);
			/* bytes changed while they were hashed: keep none */
			if (of->gen == gen && mp_grow_to(mp, last) == 0) {
				for (i = 0; i < nl; i++) {
					struct mp_part *pt =
						&mp->parts[lp[i].number - 1];

					pt->state = P_DONE;
					pt->len = lp[i].size;
					snprintf(pt->etag, sizeof(pt->etag),
						 "%s", lp[i].etag);
					kept++;
				}
			}
			pthread_mutex_unlock(&of->mu);
			BFS_INFO("%s/%s: resuming multipart upload: %u stored "
				 "part(s) kept", mp->b->name, key, kept);
		}
		free(lp);
	}
	if (!id[0]) {
		pthread_mutex_lock(&of->mu);
		free(mp->parts);
		mp->parts = NULL;
		mp->cap = 0;
		mp->scan = 1;
		mp->id[0] = '\0';
		/* a new id: the equal-part plan of this size */
		mp->grow = 0;
		mp->base = bfs_mpu_base_for(m->size);
		mp->nostream = 0;
		pthread_mutex_unlock(&of->mu);
		if ((r = mp_begin(mp, m, id)) != 0)
			goto fail;
		fresh = 1;
	}
	pthread_mutex_lock(&of->mu);
	if (fresh) {
		snprintf(mp->id, sizeof(mp->id), "%s", id);
		mp->meta = *m;
		mp->meta_known = 1;
	}
	mp->listed = 1;
	last = bfs_mpu_part_count(mp->base, mp->grow, m->size);
	r = mp_grow_to(mp, last);
	/* a DONE tail of another length is sent again */
	for (n = 1; r == 0 && n <= last; n++)
		if (mp->parts[n - 1].state == P_DONE &&
		    mp->parts[n - 1].len != part_len(mp, n, m->size)) {
			mp->parts[n - 1].state = P_NONE;
			if (n < mp->scan)
				mp->scan = n;
		}
	for (;;) {
		if (r != 0 || mp->err || mp->gone || of->unlinked ||
		    of->mp != mp)
			break;
		pump_locked(of);
		for (n = 1; n <= last; n++)
			if (mp->parts[n - 1].state != P_DONE)
				break;
		if (n > last && !mp->inflight)
			break;
		/* timed: a part held back by the global bound is retried */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&of->cv, &of->mu, &ts);
	}
	if (r == 0)
		r = mp->err ? mp->err : mp->gone ? BFS_ERR_NOTFOUND :
		    of->unlinked || of->mp != mp ? BFS_ERR_NOTFOUND : 0;
	while (mp->inflight)
		pthread_cond_wait(&of->cv, &of->mu);
	if (r == 0 && !(v = calloc(last, sizeof(*v))))
		r = BFS_ERR_NOMEM;
	for (n = 1; r == 0 && n <= last; n++) {
		v[n - 1].number = n;
		v[n - 1].size = mp->parts[n - 1].len;
		memcpy(v[n - 1].etag, mp->parts[n - 1].etag, sizeof(v[0].etag));
	}
	pthread_mutex_unlock(&of->mu);
	if (r != 0)
		goto fail;

	p = mp->b->prov;
	r = p->ops->mpu_complete(p->st, key, id, v, last, etag_out, etag_len);
	bfs_rbucket_note(mp->b, r);
	if (r == BFS_ERR_NOTFOUND &&
	    completed_before(mp, v, last, etag_out, etag_len)) {
		BFS_INFO("%s/%s: multipart upload was completed by a request "
			 "whose answer was lost", mp->b->name, key);
		r = 0;
	}
	if (r == BFS_ERR_NOTFOUND) {
		pthread_mutex_lock(&of->mu);
		mp->gone = 1;
		pthread_mutex_unlock(&of->mu);
		bfs_store_mpu_clear(store(), mp->b->name, key, id);
	}
	if (r != 0)
		goto fail;
	bfs_store_mpu_forget(store(), id);
	if (!mp->meta_known || !meta_same(&mp->meta, m)) {
		/* begun with other attributes (a stream: mtime moved) */
		if ((r = p->ops->set_meta(p->st, key, m)) != 0) {
			BFS_WARN("%s/%s: stored, but its attributes were not "
				 "updated: %s", mp->b->name, key,
				 bfs_strerror(r));
			r = 0;
		} else if (p->ops->head(p->st, key, &mp->meta) == 0) {
			snprintf(etag_out, etag_len, "%s", mp->meta.etag);
		}
	}
	pthread_mutex_lock(&of->mu);
	mp->job = 0;
	if (of->mp == mp)
		bfs_mp_drop_locked(of);
	else if (mp->dead && !mp->inflight)
		mp_free(mp);
	pthread_mutex_unlock(&of->mu);
	free(v);
	return 0;
fail:
	pthread_mutex_lock(&of->mu);
	mp->job = 0;
	if (of->mp == mp) {
		mp->final = 0;
		mp->err = 0;
	} else if (mp->dead && !mp->inflight) {
		mp_free(mp);
	}
	pthread_cond_broadcast(&of->cv);
	pthread_mutex_unlock(&of->mu);
	free(v);
	return r;
}

void bfs_mp_free(struct bfs_mp *mp)
{
	mp_free(mp);
}

/* ---- ids nobody uses ---- */

#define MP_REAP_TICKS 30

void bfs_mp_reap(int force)
{
	static unsigned ticks;
	struct bfs_mpu_rec *o = NULL;
	struct bfs_rbucket *b;
	size_t n = 0, i, aborted = 0;
	int r;

	if (!force && !atomic_exchange(&reap_wanted, 0) &&
	    ++ticks % MP_REAP_TICKS != 0)
		return;
	if ((r = bfs_store_mpu_orphans(store(), &o, &n)) != 0) {
		BFS_WARN("cannot list recorded multipart uploads: %s",
			 bfs_strerror(r));
		return;
	}
	for (i = 0; i < n; i++) {
		if (!(b = bfs_registry_get(bfs_fs.reg, o[i].bucket)))
			continue;       /* not mounted: kept for later */
		if (b->prov && b->prov->ops->mpu_abort) {
			r = b->prov->ops->mpu_abort(b->prov->st, o[i].key,
						    o[i].upload_id);
			if (r == 0) {
				bfs_store_mpu_forget(store(), o[i].upload_id);
				BFS_INFO("%s/%s: aborted multipart upload no "
					 "journal row uses", o[i].bucket,
					 o[i].key);
				aborted++;
			} else {
				BFS_WARN("%s/%s: abort of unused multipart "
					 "upload failed: %s (retried later)",
					 o[i].bucket, o[i].key,
					 bfs_strerror(r));
			}
		}
		bfs_rbucket_put(b);
	}
	if (aborted)
		BFS_INFO("aborted %zu multipart upload(s) no journal row uses",
			 aborted);
	bfs_mpu_recs_free(o, n);
}

struct sweep_ctx {
	struct bfs_rbucket *b;
	struct bfs_journal_entry *e;   /* the journal, for ids in use */
	size_t ne;
	int64_t cutoff;
	char **keys;                   /* aborted (bounded, for the log) */
	char **ids;
	size_t nk, cap;
};

static int sweep_one(void *arg, const char *key, const char *upload_id,
		     int64_t initiated)
{
	struct sweep_ctx *c = arg;
	char **nk, **ni;
	size_t i;

	if (!initiated || initiated > c->cutoff)
		return 0;
	for (i = 0; i < c->ne; i++)
		if (c->e[i].upload_id && !strcmp(c->e[i].upload_id, upload_id))
			return 0;          /* a journal row resumes it */
	if (c->nk == c->cap) {
		if (c->cap >= 100000)
			return 1;
		c->cap = c->cap ? 2 * c->cap : 16;
		if (!(nk = realloc(c->keys, c->cap * sizeof(*nk))))
			return 1;
		c->keys = nk;
		if (!(ni = realloc(c->ids, c->cap * sizeof(*ni))))
			return 1;
		c->ids = ni;
	}
	c->keys[c->nk] = strdup(key);
	c->ids[c->nk] = strdup(upload_id);
	if (!c->keys[c->nk] || !c->ids[c->nk]) {
		free(c->keys[c->nk]);
		free(c->ids[c->nk]);
		return 1;
	}
	c->nk++;
	return 0;
}

int64_t bfs_mp_max_age_default = 86400;
static struct { char *name; int64_t age; } *ages;
static size_t nages;

void bfs_mp_set_max_age(const struct bfs_config *cfg)
{
	size_t i;

	bfs_mp_max_age_default = cfg->multipart_max_age;
	for (i = 0; i < nages; i++)
		free(ages[i].name);
	free(ages);
	ages = NULL;
	nages = 0;
	if (!cfg->nbuckets || !(ages = calloc(cfg->nbuckets, sizeof(*ages))))
		return;
	for (i = 0; i < cfg->nbuckets; i++) {
		if (!cfg->buckets[i].has_multipart_max_age ||
		    !(ages[nages].name = strdup(cfg->buckets[i].name)))
			continue;
		ages[nages++].age = cfg->buckets[i].multipart_max_age;
	}
}

static int64_t max_age_of(const char *bucket)
{
	size_t i;

	for (i = 0; i < nages; i++)
		if (!strcmp(ages[i].name, bucket))
			return ages[i].age;
	return bfs_mp_max_age_default;
}

void bfs_mp_sweep(void)
{
	struct bfs_journal_entry *e = NULL;
	struct sweep_ctx c;
	struct bfs_rbucket *b;
	char **names = NULL;
	size_t ne = 0, nn = 0, i, k, aborted;
	int64_t age;
	int r;

	bfs_mp_reap(1);
	if (bfs_registry_names(bfs_fs.reg, &names, &nn) != 0)
		return;
	if (bfs_store_journal_list(store(), &e, &ne) != 0) {
		bfs_registry_names_free(names, nn);
		return;
	}
	for (i = 0; i < nn; i++) {
		if ((age = max_age_of(names[i])) <= 0)
			continue;
		if (!(b = bfs_registry_get(bfs_fs.reg, names[i])))
			continue;
		if (!b->prov || !b->prov->ops->mpu_list_uploads || b->read_only) {
			bfs_rbucket_put(b);
			continue;
		}
		memset(&c, 0, sizeof(c));
		c.b = b;
		c.e = e;
		c.ne = ne;
		c.cutoff = (int64_t)time(NULL) - age;
		r = b->prov->ops->mpu_list_uploads(b->prov->st,
						   b->prefix ? b->prefix : "",
						   sweep_one, &c);
		if (r != 0)
			BFS_WARN("%s: cannot list multipart uploads: %s",
				 names[i], bfs_strerror(r));
		for (k = 0, aborted = 0; k < c.nk; k++) {
			r = b->prov->ops->mpu_abort(b->prov->st, c.keys[k],
						    c.ids[k]);
			if (r == 0) {
				aborted++;
				bfs_store_mpu_forget(store(), c.ids[k]);
				BFS_INFO("%s: aborted multipart upload of %s "
					 "(older than multipart_max_age %llds)",
					 names[i], c.keys[k], (long long)age);
			} else {
				BFS_WARN("%s: abort of old multipart upload of "
					 "%s failed: %s", names[i], c.keys[k],
					 bfs_strerror(r));
			}
			free(c.keys[k]);
			free(c.ids[k]);
		}
		if (aborted)
			BFS_INFO("%s: aborted %zu old multipart upload(s)",
				 names[i], aborted);
		free(c.keys);
		free(c.ids);
		bfs_rbucket_put(b);
	}
	bfs_journal_entries_free(e, ne);
	bfs_registry_names_free(names, nn);
}
