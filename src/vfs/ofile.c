/*
 * ofile.c - the open-file table (s3fs fd-cache idea, one state per file).
 *
 * Every fd of one (bucket, key) shares a struct bfs_ofile, so all of them
 * see the same staged bytes.  Writes go to a staging file under
 * cache_dir/staging (0600); an existing object is downloaded into it the
 * first time it is written or truncated (bfs_ofile_stage_locked).  Once
 * staged, the staging file is the file's content until the last fd closes;
 * reads of a clean, unstaged file go to the provider (ofile_io.c).
 *
 * The first time a file becomes dirty its upload journal row (bucket, key,
 * staging path, base etag, attributes) is written before the change is
 * acknowledged (bfs_ofile_set_dirty_locked; lazily: durable against
 * kill -9, against a power cut once an upload failed); renames and
 * unlinks keep the row true.  Uploads themselves are upload.c's: a dirty
 * file stays in the table (the pending queue holds a reference) until it
 * is stored, so every later open sees the staged content, and the staging
 * file is never deleted while dirty (its path is logged instead when the
 * table lets go of it at exit).
 *
 * Staged bytes are bounded by cache_size (bfs_ofile_budget_locked): a
 * process-wide atomic counter, each file's share in of->acct.
 *
 * The open-file module is this file, ofile_attr.c, ofile_io.c, upload.c
 * and mpu.c: only they include ofile_int.h (it #errors elsewhere) and
 * touch the fields of struct bfs_ofile; the rest of src/vfs calls the
 * transitions of vfs_int.h.
 *
 * States (flags under ofile.mu; docs/ARCHITECTURE.md has the table):
 *
 *   CLEAN       !staged: reads go to the provider, pinned to read_etag.
 *   STAGING     stage_busy: one stage downloads (or HEADs) without mu.
 *   STAGED      staged && !dirty: fd holds the whole content.
 *   DIRTY       dirty: staged content not stored yet.
 *   UPLOADING   dirty && uploading: a job sends a snapshot without mu.
 *   ATTR        attr_busy: a metadata copy of the clean object runs
 *               without mu (ofile_attr.c).
 *   DETACHED    unlinked, out of the table (unlink, replaced by a rename,
 *               a recovered file stored as a conflict copy): no upload,
 *               no journal row; the last reference frees it and deletes
 *               the object kept for its handles (gone).
 *
 * Transitions and their locks:
 *
 *   get/find/put        table_mu (refs to and from 0), then mu.
 *   CLEAN -> STAGING -> STAGED   bfs_ofile_stage_locked, mu held
 *                       (released across the network; stage_busy).
 *   STAGED -> DIRTY     bfs_ofile_set_dirty_locked, mu held (write,
 *                       truncate, create, rename of a staged file).
 *   DIRTY -> UPLOADING  bfs_ofile_kick_locked, mu held (upload.c).
 *   UPLOADING -> STAGED the job ends, mu held: clean only when gen is
 *                       the one it snapshot, else DIRTY again.
 *   ATTR                bfs_ofile_attr_begin .. send_begin_locked ..
 *                       send_end .. bfs_ofile_unlock (mu; attr_busy
 *                       spans the unlocked copy).
 *   rekey               table_mu and mu for b and key; journal rows after
 *                       table_mu is released.  Callers fence both names
 *                       and wait for UPLOADING and ATTR to end first
 *                       (bfs_ofile_wait_quiet).
 *   -> DETACHED         bfs_ofile_detach: table_mu and mu to retire,
 *                       then waits for a running job, row dropped unlocked.
 *
 * Invariants:
 *
 *   1. dirty && !unlinked => the file has a journal row (written before
 *      set_dirty returns the first time; a failed write of it is that
 *      call's error, the file stays dirty) and the staging file is kept.
 *   2. The pending gauge (bfs_metrics_pending_add) counts the files that
 *      are dirty and not unlinked: +1 when one becomes so (set_dirty,
 *      adopt), -1 when it stops (stored, retired).
 *   3. gen is bumped under mu by every change of content, attributes or
 *      name; an upload marks the file clean only if gen did not move.
 *   4. dirty => staged => fd >= 0; staging_path is never reused while
 *      keep_path says a journal row may name it.
 *   5. b and key change only with table_mu and mu held: read them under
 *      one, keep them beyond it only through bfs_ofile_where.
 *   6. cv: whoever clears stage_busy, uploading or attr_busy, or ends a
 *      part, broadcasts it under mu.  Waiters (stage, sync, budget,
 *      attr_wait, wait_idle, wait_quiet, multipart) hold a reference,
 *      wait in a loop on their own condition and re-check b, key and the
 *      state they read before, since each wait releases mu.
 *   7. No network call, sleep or fsync with table_mu held; under mu only
 *      the durable journal commits named below.
 *
 * Every *_locked function asserts its lock at entry under BFS_LOCK_CHECK
 * (bfs_lock.h; the sanitizer and unit-test builds).
 *
 * Locking: table_mu guards the hash chains, refs reaching 0 and every (T)
 * field of struct bfs_ofile (those change with both table_mu and
 * ofile.mu held).  Lock order: table_mu -> ofile.mu -> fence_mu.  No
 * network call or sleep happens with table_mu or ofile.mu held, and no
 * store call with table_mu held; the durable journal commits of an
 * upload's bookkeeping and of a failed attempt run under ofile.mu.
 */
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
#include "bfs_key.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_store.h"
#define BFS_OFILE_MODULE
#include "ofile_int.h"
#include "vfs_int.h"
#include "readcache.h"

#define OFILE_SLOTS 1024

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_ofile *table[OFILE_SLOTS];            /* table_mu */
static _Atomic uint64_t staged_bytes;                    /* lock-free */

/*
 * Spare staging files: a stored file's staging file is emptied and kept
 * for the next new file instead of being unlinked.  Creating a file costs
 * more than it seems on ext4 (the inode allocator skips recently deleted
 * inodes by reading the inode table, and a create-upload-unlink stream
 * deletes one per file); ftruncate of a file whose pages never reached
 * the disk only drops them.  A spare is empty and no journal row names
 * it; the start removes any left over like every unnamed staging file.
 */
#define SPARE_MAX 8

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static int spare_fd[SPARE_MAX];                          /* spare_mu */
static char *spare_path[SPARE_MAX];                      /* spare_mu */
static int nspare;                                       /* spare_mu */
static int spares_closed;                                /* spare_mu */

/* Takes a spare for of (fd and path); 0 when there is none. */
static int spare_take(struct bfs_ofile *of)
{
	int got = 0;

	pthread_mutex_lock(&spare_mu);
	if (nspare > 0) {
		nspare--;
		of->fd = spare_fd[nspare];
		of->staging_path = spare_path[nspare];
		got = 1;
	}
	pthread_mutex_unlock(&spare_mu);
	return got;
}

/* Keeps (fd, path) as an empty spare; 0 (caller closes and unlinks)
 * when the pool is full or closed or the file cannot be emptied. */
static int spare_give(int fd, char *path)
{
	int kept = 0;

	pthread_mutex_lock(&spare_mu);
	if (!spares_closed && nspare < SPARE_MAX && ftruncate(fd, 0) == 0) {
		spare_fd[nspare] = fd;
		spare_path[nspare] = path;
		nspare++;
		kept = 1;
	}
	pthread_mutex_unlock(&spare_mu);
	return kept;
}

void bfs_ofile_spares_drop(void)
{
	pthread_mutex_lock(&spare_mu);
	spares_closed = 1;
	while (nspare > 0) {
		nspare--;
		unlink(spare_path[nspare]);
		close(spare_fd[nspare]);
		free(spare_path[nspare]);
	}
	pthread_mutex_unlock(&spare_mu);
}

static unsigned of_hash(const char *bucket, const char *key)
{
	return bfs_key_hash(bucket, key) % OFILE_SLOTS;
}

void bfs_ofile_init(void)
{
}

/* table_mu held. */
static struct bfs_ofile *find_locked(const char *bucket, const char *key)
{
	struct bfs_ofile *of;

	bfs_lock_assert_held(&table_mu);
	for (of = table[of_hash(bucket, key)]; of; of = of->next)
		if (strcmp(of->b->name, bucket) == 0 && strcmp(of->key, key) == 0)
			return of;
	return NULL;
}

/* table_mu held. */
static void unlink_locked(struct bfs_ofile *of)
{
	struct bfs_ofile **pp;

	bfs_lock_assert_held(&table_mu);
	if (!of->in_table)
		return;
	for (pp = &table[of_hash(of->b->name, of->key)]; *pp; pp = &(*pp)->next) {
		if (*pp == of) {
			*pp = of->next;
			break;
		}
	}
	of->next = NULL;
	of->in_table = 0;
}

/* table_mu held. */
static void insert_locked(struct bfs_ofile *of)
{
	unsigned h = of_hash(of->b->name, of->key);

	bfs_lock_assert_held(&table_mu);
	of->next = table[h];
	table[h] = of;
	of->in_table = 1;
}

static void ofile_free(struct bfs_ofile *of)
{
	if (of->fd >= 0 && of->staging_path && !of->keep_path &&
	    (!of->dirty || of->unlinked) &&
	    spare_give(of->fd, of->staging_path)) {
		of->fd = -1;
		of->staging_path = NULL;
	}
	if (of->fd >= 0)
		close(of->fd);
	if (of->staging_path) {
		if (of->dirty && !of->unlinked) {
			BFS_ERROR("%s/%s: closed with an upload still failing; "
				  "data kept in %s", of->b->name, of->key,
				  of->staging_path);
		} else {
			unlink(of->staging_path);
		}
	}
	if (of->dirty && !of->unlinked)
		bfs_metrics_pending_add(-1);
	if (of->mp) {
		bfs_mp_free(of->mp);     /* no part thread: they hold refs */
		bfs_mp_reap_soon();
	}
	atomic_fetch_sub(&staged_bytes, of->acct);
	free(of->base_etag);
	free(of->read_etag);
	free(of->xattr);
	free(of->staging_path);
	/* an unlinked file's kept object goes with its last handle */
	bfs_gone_finish(of->gone, of->b);
	free(of->key);
	bfs_rbucket_put(of->b);
	pthread_cond_destroy(&of->cv);
	pthread_mutex_destroy(&of->mu);
	free(of);
}

/* A new entry for (b, key) with the sync primitives ready; not in the
 * table yet.  NULL when out of memory. */
static struct bfs_ofile *ofile_new(struct bfs_rbucket *b, const char *key)
{
	struct bfs_ofile *of;
	pthread_condattr_t ca;

	if (!(of = calloc(1, sizeof(*of))))
		return NULL;
	if (!(of->key = strdup(key))) {
		free(of);
		return NULL;
	}
	pthread_mutex_init(&of->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&of->cv, &ca);
	pthread_condattr_destroy(&ca);
	of->fd = -1;
	of->refs = 1;
	of->b = b;
	bfs_rbucket_ref(b);
	return of;
}

int bfs_ofile_get(struct bfs_rbucket *b, const char *key,
		  const struct stat *st, struct bfs_ofile **out, int *created)
{
	struct bfs_ofile *of, *nof = NULL;
	int r = BFS_ERR_NOMEM;

	*out = NULL;
	if (created)
		*created = 0;
	pthread_mutex_lock(&table_mu);
	if ((of = find_locked(b->name, key)) != NULL) {
		of->refs++;
		*out = of;
		r = 0;
		goto out;
	}
	if (!(nof = ofile_new(b, key)))
		goto out;
	if (st) {
		nof->exists_remote = 1;
		nof->size = (uint64_t)st->st_size;
		nof->mode = st->st_mode;
		nof->uid = st->st_uid;
		nof->gid = st->st_gid;
		nof->mtime = st->st_mtim;
	} else {
		nof->mode = S_IFREG | 0644;
		nof->uid = bfs_fs.uid;
		nof->gid = bfs_fs.gid;
		clock_gettime(CLOCK_REALTIME, &nof->mtime);
		nof->xattr_known = 1;          /* a new file has none */
	}
	insert_locked(nof);
	*out = nof;
	if (created)
		*created = 1;
	r = 0;
out:
	pthread_mutex_unlock(&table_mu);
	return r;
}

/* The caller holds a reference, so refs cannot reach 0 meanwhile: an
 * atomic increment needs no table lock (callable with of->mu held). */
void bfs_ofile_ref(struct bfs_ofile *of)
{
	atomic_fetch_add(&of->refs, 1);
}

struct bfs_ofile *bfs_ofile_find(const char *bucket, const char *key)
{
	struct bfs_ofile *of;

	pthread_mutex_lock(&table_mu);
	if ((of = find_locked(bucket, key)) != NULL)
		of->refs++;
	pthread_mutex_unlock(&table_mu);
	return of;
}

void bfs_ofile_put(struct bfs_ofile *of)
{
	int last;

	if (!of)
		return;
	pthread_mutex_lock(&table_mu);
	last = --of->refs == 0;
	if (last)
		unlink_locked(of);
	pthread_mutex_unlock(&table_mu);
	if (last)
		ofile_free(of);
}

static struct bfs_store *store(void)
{
	return bfs_registry_store(bfs_fs.reg);
}

/*
 * Takes a file out of the table for good (unlink, replaced by a rename):
 * no job starts on it any more, its multipart upload is forgotten.
 * Returns 1 when its journal row is to be deleted (the caller does it
 * after the locks are released: journal_drop).  table_mu and mu held.
 */
static int retire_locked(struct bfs_ofile *of)
{
	int journaled = of->dirty && !of->unlinked;

	bfs_lock_assert_held(&table_mu);
	bfs_lock_assert_held(&of->mu);
	unlink_locked(of);
	if (journaled)
		bfs_metrics_pending_add(-1);
	bfs_mp_drop_locked(of);
	of->unlinked = 1;
	of->gen++;
	return journaled;
}

/* Deletes the journal row of a retired file (bucket and key are those it
 * was retired with and no longer change); no lock held. */
static void journal_drop(struct bfs_ofile *of, const char *bucket,
			 const char *key)
{
	int r;

	if ((r = bfs_store_journal_done(store(), bucket, key)) != 0) {
		BFS_WARN("%s/%s: journal row not removed: %s", bucket, key,
			 bfs_strerror(r));
		pthread_mutex_lock(&of->mu);
		of->keep_path = 1;
		pthread_mutex_unlock(&of->mu);
	}
}

void bfs_ofile_detach(struct bfs_ofile *of)
{
	int journaled;

	pthread_mutex_lock(&table_mu);
	pthread_mutex_lock(&of->mu);
	journaled = retire_locked(of);
	pthread_mutex_unlock(&table_mu);
	/* No job starts on an unlinked file; one already running may still
	 * store the old name, so the caller's delete must come after it. */
	bfs_ofile_wait_idle_locked(of);
	pthread_mutex_unlock(&of->mu);
	/* retired: nothing changes b and key any more (set_gone is ours) */
	if (journaled)
		journal_drop(of, of->b->name, of->key);
}

void bfs_ofile_set_gone(struct bfs_ofile *of, char *aside, char *etag,
			struct bfs_gone *g)
{
	char *ok = NULL;

	pthread_mutex_lock(&table_mu);
	pthread_mutex_lock(&of->mu);
	if (aside) {
		ok = of->key;
		of->key = aside;
		of->gen++;
	}
	if (!of->read_etag && etag) {
		of->read_etag = etag;
		etag = NULL;
	}
	if (!of->gone) {
		of->gone = g;
		g = NULL;
	}
	pthread_mutex_unlock(&of->mu);
	pthread_mutex_unlock(&table_mu);
	free(ok);
	free(etag);
	/* a second record cannot happen (an unlink detaches first) */
	if (g)
		bfs_gone_finish(g, of->b);
}

void bfs_ofile_unhook(struct bfs_ofile *of)
{
	pthread_mutex_lock(&table_mu);
	unlink_locked(of);
	pthread_mutex_unlock(&table_mu);
}

int bfs_ofile_journal_put_locked(struct bfs_ofile *of, int durable)
{
	struct bfs_journal_entry e;
	int r;

	bfs_lock_assert_held(&of->mu);
	if (!of->dirty || of->unlinked || !of->staging_path)
		return 0;
	memset(&e, 0, sizeof(e));
	e.bucket = of->b->name;
	e.key = of->key;
	e.staging_path = of->staging_path;
	e.base_etag = of->base_etag;
	e.size = of->size;
	e.mode = of->mode;
	e.uid = of->uid;
	e.gid = of->gid;
	e.mtime = of->mtime.tv_sec;
	r = durable ? bfs_store_journal_put(store(), &e) :
		      bfs_store_journal_put_lazy(store(), &e);
	if (r != 0)
		BFS_ERROR("%s/%s: upload journal write failed: %s", of->b->name,
			  of->key, bfs_strerror(r));
	return r;
}

int bfs_ofile_set_dirty_locked(struct bfs_ofile *of, int dirty)
{
	int was = of->dirty;

	bfs_lock_assert_held(&of->mu);
	if (dirty)
		of->gen++;
	of->dirty = dirty;
	if (of->unlinked || was == dirty)
		return 0;
	bfs_metrics_pending_add(dirty ? 1 : -1);
	/* Lazy: acknowledged writes are promised to survive kill -9, not a
	 * power cut, until close/fsync; a failed upload makes the row and
	 * the staging file durable (upload.c, keep_durable_unlocked). */
	return dirty ? bfs_ofile_journal_put_locked(of, 0) : 0;
}

uint64_t bfs_ofile_staged_bytes(void)
{
	return atomic_load(&staged_bytes);
}

int bfs_ofile_budget_locked(struct bfs_ofile *of, uint64_t new_size)
{
	struct timespec end, now, ts;
	uint64_t need, cur, cap = bfs_fs.cache_size;
	int waited = 0;

	bfs_lock_assert_held(&of->mu);
	if (new_size <= of->acct) {
		atomic_fetch_sub(&staged_bytes, of->acct - new_size);
		of->acct = new_size;
		return 0;
	}
	need = new_size - of->acct;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += bfs_fs.upload_timeout > 0 ? bfs_fs.upload_timeout : 60;
	for (;;) {
		cur = atomic_load(&staged_bytes);
		if (!cap || cur + need <= cap) {
			if (atomic_compare_exchange_weak(&staged_bytes, &cur,
							 cur + need))
				break;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
			BFS_WARN("%s/%s: staging space (cache_size %llu bytes) "
				 "still full after %d s: no space", of->b->name,
				 of->key, (unsigned long long)cap,
				 bfs_fs.upload_timeout);
			return BFS_ERR_NOSPC;
		}
		if (!waited++)
			BFS_INFO("%s/%s: staging space full; waiting for uploads",
				 of->b->name, of->key);
		/* Let this file's own upload job finish meanwhile. */
		ts = now;
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&of->cv, &of->mu, &ts);
	}
	of->acct = new_size;
	bfs_rcache_trim();     /* cached blocks give way to staged data */
	return 0;
}

static int make_staging(struct bfs_ofile *of)
{
	size_t len = strlen(bfs_fs.staging_dir) + 32;
	char *path = NULL;
	int fd, r = BFS_ERR_NOMEM;

	if (!(path = malloc(len)))
		goto out;
	snprintf(path, len, "%s/bfs-XXXXXX", bfs_fs.staging_dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		r = bfs_err_from_errno(errno);
		BFS_ERROR("cannot create a staging file in %s: %s",
			  bfs_fs.staging_dir, strerror(errno));
		goto out;
	}
	/* mkostemp makes it 0600 already; a failure is only logged */
	if (fchmod(fd, 0600) != 0)
		BFS_WARN("%s: chmod 0600: %s", path, strerror(errno));
	of->fd = fd;
	of->staging_path = path;
	path = NULL;
	r = 0;
out:
	free(path);
	return r;
}

/* Remembers etag as the base of the staged copy; mu held. */
static void set_base(struct bfs_ofile *of, const char *etag)
{
	free(of->base_etag);
	of->base_etag = etag && etag[0] ? strdup(etag) : NULL;
	of->base_known = 1;
}

/*
 * The network part of staging (the download, a HEAD) runs WITHOUT mu:
 * of->stage_busy is set meanwhile and every other stage waits for it on
 * of->cv, so readers, stat and readdir of the file never wait for the
 * server, and writers wait on the condition variable, not on the lock.
 * This takes what the request needs under mu (the bucket referenced, the
 * key copied: a rename may change both meanwhile) and, on success,
 * releases mu (stage_end_locked takes it back); on failure mu stays held.
 */
static int stage_begin_locked(struct bfs_ofile *of, struct bfs_rbucket **b,
			      char **key)
{
	bfs_lock_assert_held(&of->mu);
	if (!(*key = strdup(of->key)))
		return BFS_ERR_NOMEM;
	*b = of->b;
	bfs_rbucket_ref(*b);
	of->stage_busy = 1;
	pthread_mutex_unlock(&of->mu);
	return 0;
}

/* Back under mu: wakes the waiters; frees what stage_begin took. */
static void stage_end_locked(struct bfs_ofile *of, struct bfs_rbucket *b,
			     char *key)
{
	bfs_lock_assert_free(&of->mu);
	pthread_mutex_lock(&of->mu);
	of->stage_busy = 0;
	pthread_cond_broadcast(&of->cv);
	bfs_rbucket_put(b);
	free(key);
}

/*
 * Learns the etag of the object a truncating write replaces, so the
 * journal can tell later whether someone else changed it (conflict
 * copies).  A failed HEAD leaves the base unknown (NULL): the staging
 * goes on; at worst a recovery stores a conflict copy.  mu held
 * (released across the HEAD).
 */
static void learn_base(struct bfs_ofile *of)
{
	struct bfs_rbucket *b;
	struct bfs_meta m;
	char *key;
	int r;

	if (of->base_known || !of->exists_remote || !of->b->prov)
		return;
	if (stage_begin_locked(of, &b, &key) != 0)
		return;                 /* (mu still held) */
	memset(&m, 0, sizeof(m));
	r = bfs_cache_head_fresh(b->prov, key, &m);
	if (r != 0 && r != BFS_ERR_NOTFOUND)
		BFS_DEBUG("%s/%s: base etag unknown: %s", b->name, key,
			  bfs_strerror(r));
	stage_end_locked(of, b, key);
	if (of->base_known)
		return;
	if (r == 0) {
		set_base(of, m.etag);
		bfs_ofile_learn_xattr_locked(of, &m);
	} else if (r == BFS_ERR_NOTFOUND)
		set_base(of, NULL);
}

int bfs_ofile_stage_locked(struct bfs_ofile *of, int want_empty)
{
	struct bfs_rbucket *b;
	struct bfs_meta m;
	struct stat st;
	char *key;
	int r, fd;

	bfs_lock_assert_held(&of->mu);
	while (of->stage_busy)
		pthread_cond_wait(&of->cv, &of->mu);
	if (of->staged)
		return 0;
	/*
	 * A new staging file is empty already.  Truncating it anyway costs
	 * more than a syscall: on ext4 a truncate to size 0 arms
	 * auto_da_alloc, which starts writeback of the file when it is
	 * closed, so every staged file went to disk (and its blocks were
	 * discarded again at unlink) although its data is never read back
	 * from disk once uploaded.
	 */
	if (of->fd < 0) {
		if (!spare_take(of) && (r = make_staging(of)) != 0)
			return r;
	} else if (ftruncate(of->fd, 0) < 0) {
		return bfs_err_from_errno(errno);
	}
	bfs_ofile_budget_locked(of, 0);
	if (of->exists_remote && !want_empty) {
		if (!of->b->prov)
			return BFS_ERR_IO;
		if ((r = bfs_ofile_budget_locked(of, of->size)) != 0)
			return r;
		/* the budget wait may have let another stage finish */
		while (of->stage_busy)
			pthread_cond_wait(&of->cv, &of->mu);
		if (of->staged)
			return 0;
		/* the fd stays: it is closed only with the last reference
		 * (the caller's), truncated only by a stage (we are it) */
		fd = of->fd;
		if ((r = stage_begin_locked(of, &b, &key)) != 0)
			return r;
		memset(&m, 0, sizeof(m));
		r = b->prov->ops->get_fd(b->prov->st, key, fd, &m);
		bfs_rbucket_note(b, r);
		if (r != 0)
			BFS_WARN("%s/%s: download for writing failed: %s",
				 b->name, key, bfs_strerror(r));
		stage_end_locked(of, b, key);
		if (r != 0) {
			if (ftruncate(of->fd, 0) < 0)
				BFS_WARN("staging truncate: %s", strerror(errno));
			bfs_ofile_budget_locked(of, 0);
			return r;
		}
		if (fstat(of->fd, &st) < 0)
			return bfs_err_from_errno(errno);
		of->size = (uint64_t)st.st_size;
		if (!of->base_known)
			set_base(of, m.etag);
		bfs_ofile_learn_xattr_locked(of, &m);
		if (of->size > of->acct &&
		    (r = bfs_ofile_budget_locked(of, of->size)) != 0)
			return r;
	} else {
		if (!want_empty)
			set_base(of, NULL);
		else if (!of->dirty)
			learn_base(of);
		/* (learn_base may release mu: nothing else stages meanwhile) */
		of->size = 0;
	}
	of->staged = 1;
	return 0;
}

void bfs_ofile_stat_locked(struct bfs_ofile *of, struct stat *st)
{
	bfs_lock_assert_held(&of->mu);
	memset(st, 0, sizeof(*st));
	st->st_mode = of->mode;
	st->st_nlink = 1;
	st->st_uid = of->uid;
	st->st_gid = of->gid;
	st->st_size = (off_t)of->size;
	st->st_blocks = (blkcnt_t)((of->size + 511) / 512);
	st->st_blksize = BFS_FS_IO_SIZE;
	st->st_mtim = of->mtime;
	st->st_ctim = of->mtime;
	st->st_atim = of->mtime;
}

/*
 * The journal row of a dirty file written durably from a snapshot of its
 * state taken under mu (the commit is made without it).  Rename: a dirty
 * file whose row was not found where it lived.
 */
static int journal_put_durable(struct bfs_ofile *of)
{
	struct bfs_journal_entry e;
	int r = 0, want;

	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&of->mu);
	want = of->dirty && !of->unlinked && of->staging_path;
	if (want) {
		e.bucket = strdup(of->b->name);
		e.key = strdup(of->key);
		e.staging_path = strdup(of->staging_path);
		e.base_etag = of->base_etag ? strdup(of->base_etag) : NULL;
		e.size = of->size;
		e.mode = of->mode;
		e.uid = of->uid;
		e.gid = of->gid;
		e.mtime = of->mtime.tv_sec;
		if (!e.bucket || !e.key || !e.staging_path ||
		    (of->base_etag && !e.base_etag))
			r = BFS_ERR_NOMEM;
	}
	pthread_mutex_unlock(&of->mu);
	if (want && r == 0)
		r = bfs_store_journal_put(store(), &e);
	free(e.bucket);
	free(e.key);
	free(e.staging_path);
	free(e.base_etag);
	return r;
}

int bfs_ofile_journal_sync(struct bfs_ofile *of)
{
	int fd;

	pthread_mutex_lock(&of->mu);
	fd = of->fd;
	pthread_mutex_unlock(&of->mu);
	if (fd >= 0 && fsync(fd) < 0)
		BFS_WARN("staging fsync: %s", strerror(errno));
	return journal_put_durable(of);
}

/* One file of a rekey: its new key and what phase 2 does for it. */
struct rekey_ent {
	struct bfs_ofile *of;         /* referenced during the rekey */
	char *nk;                     /* new key (moves into of->key) */
	char *ok;                     /* old key (after the swap) */
	int journaled;                /* had a journal row to move */
	struct bfs_ofile *old;        /* referenced: replaced at nk */
	int old_journaled;
};

/*
 * Phase 1, under table_mu (memory only): every match is unhooked, gets
 * its new key and bucket and goes back in; files open under a new key
 * are retired.  Phase 2, without the table lock: the journal follows
 * (one commit for a folder), moved staged files are marked dirty.  The
 * caller fences src and dst (fence.c) and waited for their jobs, so no
 * job runs or starts between the phases.
 */
int bfs_ofile_rekey(const char *sbucket, const char *src,
		    struct bfs_rbucket *db, const char *dst, int prefix,
		    int mark_dirty)
{
	struct bfs_ofile *of;
	struct rekey_ent *v = NULL;
	size_t slen = strlen(src), dlen = strlen(dst), i, n = 0;
	int r = BFS_ERR_NOMEM, any = 0, jr, queue;

	pthread_mutex_lock(&table_mu);
	for (i = 0; i < OFILE_SLOTS; i++)
		for (of = table[i]; of; of = of->next)
			if (strcmp(of->b->name, sbucket) == 0 &&
			    (prefix ? strncmp(of->key, src, slen) == 0 :
				      strcmp(of->key, src) == 0))
				n++;
	/* Everything allocated before anything changes: ENOMEM moves none. */
	if (n && !(v = calloc(n, sizeof(*v))))
		goto fail;
	n = 0;
	for (i = 0; i < OFILE_SLOTS; i++) {
		for (of = table[i]; of; of = of->next) {
			if (strcmp(of->b->name, sbucket) != 0 ||
			    (prefix ? strncmp(of->key, src, slen) != 0 :
				      strcmp(of->key, src) != 0))
				continue;
			if (!(v[n].nk = malloc(dlen + strlen(of->key) - slen + 1)))
				goto fail;
			memcpy(v[n].nk, dst, dlen);
			strcpy(v[n].nk + dlen, of->key + slen);
			v[n++].of = of;
		}
	}
	/* Unhook every match first, then re-insert under the new keys. */
	for (i = 0; i < n; i++) {
		unlink_locked(v[i].of);
		v[i].of->refs++;
	}
	for (i = 0; i < n; i++) {
		of = v[i].of;
		/* A file already open under the new name is replaced. */
		if ((v[i].old = find_locked(db->name, v[i].nk)) != NULL) {
			v[i].old->refs++;
			pthread_mutex_lock(&v[i].old->mu);
			v[i].old_journaled = retire_locked(v[i].old);
			pthread_mutex_unlock(&v[i].old->mu);
		}
		pthread_mutex_lock(&of->mu);
		v[i].ok = of->key;
		of->key = v[i].nk;
		v[i].nk = NULL;
		if (of->b != db) {
			bfs_rbucket_ref(db);
			bfs_rbucket_put(of->b);
			of->b = db;
		}
		of->gen++;
		v[i].journaled = of->dirty && !of->unlinked;
		any |= v[i].journaled;
		pthread_mutex_unlock(&of->mu);
		insert_locked(of);
	}
	pthread_mutex_unlock(&table_mu);

	/* Phase 2: rows of replaced files go before ours move there. */
	for (i = 0; i < n; i++)
		if (v[i].old && v[i].old_journaled)
			journal_drop(v[i].old, v[i].old->b->name, v[i].old->key);
	if (prefix && any &&
	    (jr = bfs_store_journal_rename_prefix(store(), sbucket, src,
						  db->name, dst)) != 0)
		BFS_ERROR("%s/%s: journal rows not moved from %s/%s: %s",
			  db->name, dst, sbucket, src, bfs_strerror(jr));
	for (i = 0; i < n; i++) {
		of = v[i].of;
		if (!prefix && v[i].journaled) {
			jr = bfs_store_journal_rename(store(), sbucket, v[i].ok,
						      db->name, dst);
			if (jr == BFS_ERR_NOTFOUND)
				jr = journal_put_durable(of);
			if (jr != 0)
				BFS_ERROR("%s/%s: journal row not moved from "
					  "%s/%s: %s", db->name, dst, sbucket,
					  v[i].ok, bfs_strerror(jr));
		}
		if (mark_dirty) {
			pthread_mutex_lock(&of->mu);
			if (of->staged && !of->unlinked)
				bfs_ofile_set_dirty_locked(of, 1);
			/* no handle left to upload it at close: the queue */
			queue = of->dirty && !of->unlinked && of->handles == 0;
			pthread_mutex_unlock(&of->mu);
			if (queue)
				bfs_upq_add(of);
		}
	}
	r = 0;
	goto out;
fail:
	pthread_mutex_unlock(&table_mu);
	BFS_ERROR("%s/%s: out of memory: open files not moved to %s/%s",
		  sbucket, src, db->name, dst);
	n = v ? n : 0;
	for (i = 0; i < n; i++)
		v[i].of = NULL;       /* no reference taken yet */
out:
	for (i = 0; v && i < n; i++) {
		bfs_ofile_put(v[i].old);
		bfs_ofile_put(v[i].of);
		free(v[i].nk);
		free(v[i].ok);
	}
	free(v);
	return r;
}

int bfs_ofile_adopt(struct bfs_rbucket *b, const struct bfs_journal_entry *e,
		    struct bfs_ofile **out)
{
	struct bfs_ofile *of = NULL;
	struct stat st;
	int fd = -1, r = BFS_ERR_NOMEM;

	*out = NULL;
	if ((fd = open(e->staging_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		r = errno == ENOENT ? BFS_ERR_NOTFOUND : bfs_err_from_errno(errno);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = BFS_ERR_IO;
		goto out;
	}
	if (!(of = ofile_new(b, e->key)))
		goto out;
	if (!(of->staging_path = strdup(e->staging_path)))
		goto out;
	if (e->base_etag && !(of->base_etag = strdup(e->base_etag)))
		goto out;
	of->base_known = 1;
	of->fd = fd;
	fd = -1;
	of->staged = 1;
	of->exists_remote = e->base_etag != NULL;
	of->size = (uint64_t)st.st_size;
	of->acct = of->size;
	atomic_fetch_add(&staged_bytes, of->acct);
	of->mode = e->mode ? (S_IFREG | (e->mode & 07777)) : (S_IFREG | 0644);
	of->uid = e->uid;
	of->gid = e->gid;
	of->mtime.tv_sec = (time_t)e->mtime;
	of->recovered = 1;
	of->dirty = 1;
	of->gen = 1;
	bfs_metrics_pending_add(1);
	pthread_mutex_lock(&table_mu);
	if (find_locked(b->name, e->key)) {
		pthread_mutex_unlock(&table_mu);
		r = BFS_ERR_EXISTS;
		goto out;
	}
	insert_locked(of);
	pthread_mutex_unlock(&table_mu);
	*out = of;
	of = NULL;
	r = 0;
out:
	if (of) {
		/* Not in the table: the row and its staging file stay. */
		if (of->dirty)
			bfs_metrics_pending_add(-1);
		of->dirty = 0;
		free(of->staging_path);
		of->staging_path = NULL;
		ofile_free(of);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

int bfs_ofile_where_locked(struct bfs_ofile *of, struct bfs_rbucket **b,
			   char **key)
{
	bfs_lock_assert_held(&of->mu);
	*b = NULL;
	if (key && !(*key = strdup(of->key)))
		return BFS_ERR_NOMEM;
	bfs_rbucket_ref(of->b);
	*b = of->b;
	return 0;
}

int bfs_ofile_where(struct bfs_ofile *of, struct bfs_rbucket **b, char **key)
{
	int r;

	pthread_mutex_lock(&of->mu);
	r = bfs_ofile_where_locked(of, b, key);
	pthread_mutex_unlock(&of->mu);
	return r;
}

int bfs_ofile_each(const char *bucket, const char *prefix, bfs_ofile_fn fn,
		   void *arg)
{
	struct bfs_ofile **v = NULL, *of;
	size_t n = 0, cap = 0, i, plen = strlen(prefix);
	int r = 0;

	pthread_mutex_lock(&table_mu);
	for (i = 0; i < OFILE_SLOTS; i++) {
		for (of = table[i]; of; of = of->next) {
			if (bucket && strcmp(of->b->name, bucket) != 0)
				continue;
			if (strncmp(of->key, prefix, plen) != 0)
				continue;
			if (n == cap) {
				struct bfs_ofile **nv;

				cap = cap ? cap * 2 : 16;
				if (!(nv = realloc(v, cap * sizeof(*v)))) {
					r = BFS_ERR_NOMEM;
					pthread_mutex_unlock(&table_mu);
					goto out;
				}
				v = nv;
			}
			of->refs++;
			v[n++] = of;
		}
	}
	pthread_mutex_unlock(&table_mu);
	for (i = 0; i < n; i++)
		if (r == 0 && fn(arg, v[i]) != 0)
			r = 1;
out:
	for (i = 0; i < n; i++)
		bfs_ofile_put(v[i]);
	free(v);
	return r;
}
