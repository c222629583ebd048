/*
 * readcache.c - block cache and parallel prefetch for clean file data.
 *
 * DESIGN.  An object version (rbucket, key, "size/mtime/etag") is an
 * rc_obj with one sparse file cache_dir/blocks/<id>; its data is cut into
 * BFS_RC_BLOCK blocks at aligned offsets.  A block present in the cache
 * is an rc_blk in one global hash (obj id, index) and, once READY, in a
 * global LRU list.  Bytes of LOADING and READY blocks (rounded up to 4 KiB)
 * are counted in rc_used, which never goes above the limit
 * cache_size - bfs_ofile_staged_bytes() - RC_SLACK: a block is fetched only after its bytes are reserved, evicting
 * READY unpinned blocks from the LRU tail (punching a hole in their file);
 * when nothing can be evicted the read goes straight to the provider,
 * uncached, so cache_dir stays within cache_size.
 *
 * Reads: a READY block is pinned, copied out outside the lock and
 * unpinned; a LOADING block is waited for (rc_done_cv); a missing block is
 * fetched by the reading thread itself (one ranged GET of the whole block),
 * written to the block file and copied out.  Per handle, a read in the
 * same block as the last one or the next is sequential: the prefetch
 * window doubles up to BFS_RC_WIN_MAX blocks (and half the cache), and the
 * missing blocks of the window are queued for the worker pool
 * (BFS_RC_WORKERS threads, FIFO); any other read resets the window to 0
 * (random access fetches one block).
 *
 * Buffers: a block is fetched into one of at most RC_BUFS 1 MiB buffers
 * (a pool, reused), written to its file (buffered: the page cache keeps
 * it for the reads that come back to it) and keeps the buffer while it
 * is "hot": reads of it copy from memory instead of a pread of every
 * 128 KiB the kernel asks.  A block needing a buffer when none is idle
 * takes the one of the oldest unpinned hot block (the hot list, in load
 * order; its later reads pread the file).  Block writes are not O_DIRECT:
 * that put a disk write on the path of every cold read and made repeated
 * random reads go to the disk (docs/BENCHMARKS.md: W2, W5).
 *
 * Invalidation: an object opened with another version string marks the
 * old versions of its key dead; bfs_rcache_drop() does so for a key this
 * mount changed.  Dead objects are never found again; their blocks are
 * freed as soon as nobody reads them, and reads of a handle still open on
 * a dead object go uncached.  Objects without handles and blocks are
 * freed (file closed and unlinked).
 *
 * One version per open file: when the caller knows the etag of the
 * version it opened, every GET of it (block, prefetch, uncached read)
 * carries If-Match with that etag, so a block of a newer object is never
 * joined to blocks of the old one.  A 412 (the object was replaced) kills
 * the object and returns BFS_ERR_PRECONDITION; the caller decides (fs.c:
 * a file that served nothing yet moves to the new version, else EIO).
 *
 * Locks: rc_mu guards every field marked (rc_mu) — objects, blocks, LRU,
 * job queue, handles' sequential state, rc_used.  It is a leaf for this
 * module's callers (no provider or FUSE call is made while holding it;
 * bfs_rbucket_put may run under it, which takes no lock of ours).  File
 * I/O on READY blocks and copies from their buffers are done outside it
 * under a pin; a block's write by the thread that fetched it (LOADING:
 * nobody else touches it); the hole punch of eviction under it (a cheap
 * local syscall).  When staging grows,
 * the blocks shrink at the next read, at bfs_rcache_trim() (the staging
 * budget calls it) or within 0.5 s (idle workers).
 *
 * A full cache disk (ENOSPC/EDQUOT writing a block, whatever cache_size
 * says) never fails a read: the fetched bytes are served anyway and the
 * block is dropped.  Then the LRU tail is evicted to make room (the cache
 * shrinks to what the disk holds); when nothing of ours can go, blocks
 * are not cached for RC_FULL_MS (reads go straight to the provider,
 * without prefetch) and one warning per RC_FULL_LOG_MS says so.  Staged
 * writes come first: a write that hits ENOSPC evicts blocks and retries
 * (bfs_rcache_shed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_provider.h"
#include "attrcache.h"
#include "vfs_int.h"
#include "readcache.h"

#define RC_SLACK (256u * 1024)          /* directory and extent overhead */
#define RC_FILE_SLACK 4096u             /* per block file */
#define RC_LRU_SKIP 64                  /* pinned blocks skipped per eviction */
#define RC_PATH_MAX 4096
#define RC_FULL_MS 2000                 /* no new blocks after a full disk */
#define RC_FULL_LOG_MS 30000            /* one warning per this at most */
#define RC_BUFS (BFS_RC_WIN_MAX + BFS_RC_WORKERS + 4) /* block buffers, at most */
#define RC_ALIGN 4096u                  /* buffer alignment, accounting unit */

enum { BLK_LOADING = 1, BLK_READY = 2 };

struct rc_obj {
	struct rc_obj *next;        /* (rc_mu) hash chain; NULL when dead */
	uint64_t id;
	struct bfs_rbucket *b;      /* referenced */
	char *key;
	char *ver;                  /* "size/mtime/etag" */
	char *etag;                 /* If-Match of its GETs; "" unknown */
	uint64_t size;
	uint64_t nblocks;
	int fd;                     /* block file, -1 when none */
	int dead;                   /* (rc_mu) never found again */
	int refs;                   /* (rc_mu) handles */
	uint64_t nblk;              /* (rc_mu) LOADING + READY blocks */
	uint64_t stuck;             /* (rc_mu) bytes freed but not punched */
};

struct rc_blk {
	struct rc_blk *hnext;       /* (rc_mu) hash chain */
	struct rc_blk *lprev, *lnext; /* (rc_mu) LRU, READY only; head = newest */
	struct rc_blk *jnext;       /* (rc_mu) job queue */
	struct rc_obj *obj;
	uint64_t idx;
	uint64_t acct;              /* bytes counted in rc_used */
	size_t len;                 /* data bytes */
	int state;                  /* (rc_mu) */
	int pins;                   /* (rc_mu) readers in pread */
	int queued;                 /* (rc_mu) on the job queue */
	char *mem;                  /* (rc_mu) pool buffer holding the data
				     * while LOADING and while hot; NULL:
				     * read it from the block file */
	struct rc_blk *tprev, *tnext; /* (rc_mu) hot list, READY with mem */
};

struct bfs_rc_file {
	struct rc_obj *obj;         /* referenced; NULL: uncached */
	uint64_t last_blk;          /* (rc_mu) */
	int have_last;              /* (rc_mu) */
	unsigned win;               /* (rc_mu) prefetch window, blocks */
};

static pthread_mutex_t rc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rc_job_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t rc_done_cv = PTHREAD_COND_INITIALIZER;
static int rc_on;                         /* (rc_mu) */
static int rc_stop;                       /* (rc_mu) */
static char *rc_dir;                      /* cache_dir/blocks */
static uint64_t rc_size;                  /* cache_size */
static uint64_t rc_used;                  /* (rc_mu) */
static uint64_t rc_next_id;               /* (rc_mu) */
static struct rc_obj **rc_objs;           /* (rc_mu) hash by key */
static size_t rc_nobj_slots;
static struct rc_blk **rc_blks;           /* (rc_mu) hash by (id, idx) */
static size_t rc_nblk_slots;
static struct rc_blk *rc_lru_head, *rc_lru_tail;   /* (rc_mu) */
static struct rc_blk *rc_job_head, *rc_job_tail;   /* (rc_mu) */
static struct rc_blk *rc_hot_head, *rc_hot_tail;   /* (rc_mu) oldest first */
static char *rc_bufs_free[RC_BUFS];       /* (rc_mu) idle pool buffers */
static int rc_nbufs_free;                 /* (rc_mu) */
static int rc_nbufs;                      /* (rc_mu) pool buffers allocated */
static pthread_t rc_workers[BFS_RC_WORKERS];
static int rc_nworkers;
static _Atomic int64_t rc_full_until;     /* ms, CLOCK_MONOTONIC */
static _Atomic int64_t rc_full_logged;    /* ms of the last warning */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The disk was full lately and still has no room for a few blocks: no
 * new blocks for now. */
static int disk_full(void)
{
	int64_t until = atomic_load(&rc_full_until);
	struct statvfs sv;

	if (!until || mono_ms() >= until)
		return 0;
	if (rc_dir && statvfs(rc_dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize >= 4ull * BFS_RC_BLOCK) {
		atomic_store(&rc_full_until, 0);   /* room again */
		return 0;
	}
	return 1;
}


static size_t obj_slot(const char *bucket, const char *key)
{
	return bfs_key_hash(bucket, key) % rc_nobj_slots;
}

static size_t blk_slot(uint64_t id, uint64_t idx)
{
	uint64_t h = (id * 0x9E3779B97F4A7C15ull) ^ (idx * 0xC2B2AE3D27D4EB4Full);

	return (size_t)((h ^ (h >> 29)) % rc_nblk_slots);
}

/* Bytes the blocks may use now.  rc_mu held. */
static uint64_t limit_locked(void)
{
	uint64_t fixed = RC_SLACK + bfs_ofile_staged_bytes();

	bfs_lock_assert_held(&rc_mu);
	return rc_size > fixed ? rc_size - fixed : 0;
}

/* ---- objects and blocks (rc_mu held) ---- */

static void lru_unlink(struct rc_blk *k)
{
	if (k->lprev)
		k->lprev->lnext = k->lnext;
	else if (rc_lru_head == k)
		rc_lru_head = k->lnext;
	if (k->lnext)
		k->lnext->lprev = k->lprev;
	else if (rc_lru_tail == k)
		rc_lru_tail = k->lprev;
	k->lprev = k->lnext = NULL;
}

static void lru_push(struct rc_blk *k)
{
	k->lprev = NULL;
	k->lnext = rc_lru_head;
	if (rc_lru_head)
		rc_lru_head->lprev = k;
	rc_lru_head = k;
	if (!rc_lru_tail)
		rc_lru_tail = k;
}

/* ---- block buffers (rc_mu held) ---- */

static void hot_unlink(struct rc_blk *k)
{
	if (k->tprev)
		k->tprev->tnext = k->tnext;
	else if (rc_hot_head == k)
		rc_hot_head = k->tnext;
	if (k->tnext)
		k->tnext->tprev = k->tprev;
	else if (rc_hot_tail == k)
		rc_hot_tail = k->tprev;
	k->tprev = k->tnext = NULL;
}

/* READY block k with a buffer joins the hot list as its newest. */
static void hot_push(struct rc_blk *k)
{
	k->tnext = NULL;
	k->tprev = rc_hot_tail;
	if (rc_hot_tail)
		rc_hot_tail->tnext = k;
	else
		rc_hot_head = k;
	rc_hot_tail = k;
}

/* Gives k's buffer back to the pool; its data stays in the block file. */
static void blk_drop_mem(struct rc_blk *k)
{
	if (!k->mem)
		return;
	if (k->state == BLK_READY)
		hot_unlink(k);
	if (rc_nbufs_free < RC_BUFS)
		rc_bufs_free[rc_nbufs_free++] = k->mem;
	else
		free(k->mem);      /* not reached: at most RC_BUFS exist */
	k->mem = NULL;
}

/*
 * A BFS_RC_BLOCK buffer (page aligned): an idle one, a new one
 * while fewer than RC_BUFS exist, else the one of the oldest unpinned hot
 * block (its reads then come from the block file).  NULL when none.  The
 * pool recycles the same pages, so a long read touches no new memory.
 */
static char *buf_get_locked(void)
{
	struct rc_blk *k;
	void *m = NULL;
	char *b;
	int skip = 0;

	bfs_lock_assert_held(&rc_mu);
	if (rc_nbufs_free > 0)
		return rc_bufs_free[--rc_nbufs_free];
	if (rc_nbufs < RC_BUFS) {
		if (posix_memalign(&m, RC_ALIGN, BFS_RC_BLOCK) != 0)
			return NULL;
		rc_nbufs++;
		return m;
	}
	for (k = rc_hot_head; k && k->pins; k = k->tnext)
		if (++skip > RC_LRU_SKIP)
			return NULL;
	if (!k)
		return NULL;
	b = k->mem;
	hot_unlink(k);
	k->mem = NULL;
	return b;
}

static void obj_unhash(struct rc_obj *o)
{
	struct rc_obj **pp;

	for (pp = &rc_objs[obj_slot(o->b->name, o->key)]; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	o->next = NULL;
}

/* Closes (and with unlink_it deletes) o's file and frees o. */
static void obj_free_final(struct rc_obj *o, int unlink_it)
{
	char path[RC_PATH_MAX];

	if (o->fd >= 0) {
		close(o->fd);
		if (unlink_it && rc_dir) {
			snprintf(path, sizeof(path), "%s/%llu", rc_dir,
				 (unsigned long long)o->id);
			unlink(path);
		}
	}
	bfs_rbucket_put(o->b);
	free(o->key);
	free(o->ver);
	free(o->etag);
	free(o);
}

/* Frees o when nothing uses it any more. */
static void obj_maybe_free(struct rc_obj *o)
{
	if (o->refs > 0 || o->nblk > 0)
		return;
	if (!o->dead)
		obj_unhash(o);
	rc_used -= o->stuck;
	obj_free_final(o, 1);
}

static void obj_kill(struct rc_obj *o);

/* Removes block k (not pinned, not queued) and gives its bytes back. */
static void blk_free(struct rc_blk *k)
{
	struct rc_obj *o = k->obj;
	struct rc_blk **pp;

	for (pp = &rc_blks[blk_slot(o->id, k->idx)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == k) {
			*pp = k->hnext;
			break;
		}
	}
	blk_drop_mem(k);
	if (k->state == BLK_READY)
		lru_unlink(k);
	if (k->state == BLK_READY && o->fd >= 0 &&
	    fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(k->idx * BFS_RC_BLOCK), (off_t)k->acct) != 0)
		o->stuck += k->acct;      /* freed with the file */
	else
		rc_used -= k->acct;
	o->nblk--;
	free(k);
	obj_maybe_free(o);
}

static struct rc_blk *blk_find(struct rc_obj *o, uint64_t idx)
{
	struct rc_blk *k;

	for (k = rc_blks[blk_slot(o->id, idx)]; k; k = k->hnext)
		if (k->obj == o && k->idx == idx)
			return k;
	return NULL;
}

/* Makes room for need bytes; 1 when reserved (counted in rc_used). */
static int reserve(uint64_t need)
{
	uint64_t lim = limit_locked();
	struct rc_blk *k, *prev;
	int skip;

	while (rc_used + need > lim) {
		for (k = rc_lru_tail, skip = 0; k && k->pins; k = prev) {
			prev = k->lprev;
			if (++skip > RC_LRU_SKIP) {
				k = NULL;
				break;
			}
		}
		if (!k)
			return 0;
		blk_free(k);
	}
	rc_used += need;
	return 1;
}

/* New LOADING block idx of o with its bytes reserved, or NULL. */
static struct rc_blk *blk_new(struct rc_obj *o, uint64_t idx)
{
	struct rc_blk *k;
	size_t len;
	uint64_t acct, slot;

	if (o->dead || o->fd < 0 || idx >= o->nblocks || disk_full())
		return NULL;
	len = (size_t)(o->size - idx * BFS_RC_BLOCK < BFS_RC_BLOCK ?
		       o->size - idx * BFS_RC_BLOCK : BFS_RC_BLOCK);
	acct = ((uint64_t)len + RC_ALIGN - 1) & ~(uint64_t)(RC_ALIGN - 1);
	if (!(k = calloc(1, sizeof(*k))))
		return NULL;
	if (!reserve(acct)) {
		free(k);
		return NULL;
	}
	k->obj = o;
	k->idx = idx;
	k->len = len;
	k->acct = acct;
	k->state = BLK_LOADING;
	slot = blk_slot(o->id, idx);
	k->hnext = rc_blks[slot];
	rc_blks[slot] = k;
	o->nblk++;
	return k;
}

/* Marks o dead and frees its idle blocks. */
static void obj_kill(struct rc_obj *o)
{
	struct rc_blk *k, *n;
	uint64_t i;

	if (o->dead)
		return;
	obj_unhash(o);
	o->dead = 1;
	o->refs++;            /* keeps o while its blocks go */
	if (o->nblk <= o->nblocks / 4 + 1) {
		for (k = rc_lru_head; k; k = n) {
			n = k->lnext;
			if (k->obj == o && !k->pins)
				blk_free(k);
		}
	} else {
		for (i = 0; i < o->nblocks && o->nblk; i++)
			if ((k = blk_find(o, i)) && k->state == BLK_READY && !k->pins)
				blk_free(k);
	}
	o->refs--;
	obj_maybe_free(o);
}

/* A READY or LOADING block finished with by a reader or worker. */
static void blk_settle(struct rc_blk *k)
{
	if (k->obj->dead && k->state == BLK_READY && !k->pins)
		blk_free(k);
}

/* ---- workers ---- */

/* Writes the fetched block k from buf to its file; 0 or BFS_ERR_*. */
static int blk_write(struct rc_obj *o, struct rc_blk *k, const char *buf)
{
	off_t at = (off_t)(k->idx * BFS_RC_BLOCK);
	size_t done = 0, len = k->len;
	ssize_t n;

	while (done < len) {
		n = pwrite(o->fd, buf + done, len - done, at + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? bfs_err_from_errno(errno) : BFS_ERR_IO;
		done += (size_t)n;
	}
	return 0;
}

/* Fetches block k into buf and writes it to its file; 0 or BFS_ERR_*.
 * *have becomes 1 once buf holds the block (also when writing it
 * failed). */
static int fetch_block(struct rc_blk *k, char *buf, int *have)
{
	struct rc_obj *o = k->obj;
	struct bfs_provider *p = o->b->prov;
	size_t got = 0;
	int r;

	if (!p)
		return BFS_ERR_IO;
	r = p->ops->get_range(p->st, o->key, k->idx * BFS_RC_BLOCK, k->len, buf,
			      &got, o->etag);
	bfs_rbucket_note(o->b, r);
	if (r == BFS_ERR_RANGE)
		return BFS_ERR_PRECONDITION;
	if (r != 0)
		return r;
	if (got != k->len)
		return BFS_ERR_PRECONDITION;   /* the object changed under us */
	*have = 1;
	return blk_write(o, k, buf);
}

/* Ends the LOADING state of k: READY on success, removed otherwise. */
static void blk_loaded(struct rc_blk *k, int r)
{
	/* LOADING blocks are never pinned (readers wait for them). */
	k->state = BLK_READY;
	lru_push(k);
	if (k->mem)
		hot_push(k);
	if (r != 0 || k->obj->dead)
		blk_free(k);     /* possibly written: the hole gives it back */
	pthread_cond_broadcast(&rc_done_cv);
}

/*
 * Writing a block failed with r (k already given back).  On a full disk:
 * evict the LRU tail to make room for the next block; when nothing of ours
 * can go, stop caching for RC_FULL_MS and warn.  rc_mu held.
 */
static uint64_t shed_locked(uint64_t bytes);

static void write_failed_locked(int r)
{
	int64_t now, last;

	bfs_lock_assert_held(&rc_mu);
	if (r != BFS_ERR_NOSPC)
		return;
	if (shed_locked(2ull * BFS_RC_BLOCK) > 0)
		return;
	now = mono_ms();
	atomic_store(&rc_full_until, now + RC_FULL_MS);
	last = atomic_load(&rc_full_logged);
	if (!last || now - last >= RC_FULL_LOG_MS) {
		atomic_store(&rc_full_logged, now);
		BFS_WARN("block cache %s: %s: reads go uncached until there "
			 "is room", rc_dir ? rc_dir : "?", strerror(ENOSPC));
	}
}

static void *worker_main(void *arg)
{
	char *buf, *tmp;
	struct rc_blk *k;
	struct timespec ts;
	int r, have;

	(void)arg;
	pthread_mutex_lock(&rc_mu);
	for (;;) {
		while (!rc_stop && !rc_job_head) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 500 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&rc_job_cv, &rc_mu, &ts) != 0)
				reserve(0);  /* idle: follow the staging budget */
		}
		if (rc_stop)
			break;
		k = rc_job_head;
		rc_job_head = k->jnext;
		if (!rc_job_head)
			rc_job_tail = NULL;
		k->jnext = NULL;
		k->queued = 0;
		if (k->obj->dead) {
			blk_loaded(k, BFS_ERR_PRECONDITION);
			continue;
		}
		/* The block owns its buffer while LOADING (nobody else
		 * touches it then); one from outside the pool when the pool
		 * has none to give. */
		tmp = NULL;
		buf = k->mem = buf_get_locked();
		if (!buf && !(buf = tmp = malloc(BFS_RC_BLOCK))) {
			blk_loaded(k, BFS_ERR_NOMEM);
			continue;
		}
		pthread_mutex_unlock(&rc_mu);
		have = 0;
		r = fetch_block(k, buf, &have);
		free(tmp);
		if (r != 0)
			BFS_DEBUG("prefetch %s block %llu: %s", k->obj->key,
				  (unsigned long long)k->idx, bfs_strerror(r));
		pthread_mutex_lock(&rc_mu);
		blk_loaded(k, r);
		if (have && r != 0)
			write_failed_locked(r);
	}
	pthread_mutex_unlock(&rc_mu);
	return NULL;
}

/* ---- public ---- */

static int rm_blocks_dir(const char *dir)
{
	struct dirent *de;
	DIR *d;

	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : bfs_err_from_errno(errno);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}

int bfs_rcache_init(const char *cache_dir, uint64_t cache_size)
{
	size_t len = strlen(cache_dir) + 16;
	uint64_t blocks = cache_size / BFS_RC_BLOCK + 64;
	int r = BFS_ERR_NOMEM, i;

	if (rc_on)
		return 0;
	if (!(rc_dir = malloc(len)))
		goto out;
	snprintf(rc_dir, len, "%s/blocks", cache_dir);
	if (mkdir(rc_dir, 0700) != 0 && errno != EEXIST) {
		r = bfs_err_from_errno(errno);
		BFS_ERROR("cache folder %s: %s", rc_dir, strerror(errno));
		goto out;
	}
	if ((r = rm_blocks_dir(rc_dir)) != 0)
		goto out;
	r = BFS_ERR_NOMEM;
	rc_nblk_slots = blocks < 1024 ? 1024 : blocks > (1u << 20) ? (1u << 20) :
			(size_t)blocks;
	rc_nobj_slots = 4096;
	if (!(rc_blks = calloc(rc_nblk_slots, sizeof(*rc_blks))) ||
	    !(rc_objs = calloc(rc_nobj_slots, sizeof(*rc_objs))))
		goto out;
	rc_size = cache_size;
	rc_used = 0;
	rc_stop = 0;
	for (i = 0; i < BFS_RC_WORKERS; i++) {
		if (pthread_create(&rc_workers[i], NULL, worker_main, NULL) != 0)
			break;
		rc_nworkers++;
	}
	if (rc_nworkers == 0) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_lock(&rc_mu);
	rc_on = 1;
	pthread_mutex_unlock(&rc_mu);
	r = 0;
out:
	if (r != 0) {
		free(rc_blks);
		free(rc_objs);
		free(rc_dir);
		rc_blks = NULL;
		rc_objs = NULL;
		rc_dir = NULL;
	}
	return r;
}

void bfs_rcache_destroy(void)
{
	struct rc_blk *k, *n;
	struct rc_obj *o, *on;
	size_t i;
	int w;

	pthread_mutex_lock(&rc_mu);
	if (!rc_on) {
		pthread_mutex_unlock(&rc_mu);
		return;
	}
	rc_on = 0;
	rc_stop = 1;
	pthread_cond_broadcast(&rc_job_cv);
	pthread_mutex_unlock(&rc_mu);
	for (w = 0; w < rc_nworkers; w++)
		pthread_join(rc_workers[w], NULL);
	rc_nworkers = 0;
	pthread_mutex_lock(&rc_mu);
	/* Every object leaves the hash; queued jobs never ran. */
	for (i = 0; i < rc_nobj_slots; i++) {
		for (o = rc_objs[i]; o; o = on) {
			on = o->next;
			o->next = NULL;
			o->dead = 1;
		}
		rc_objs[i] = NULL;
	}
	rc_job_head = rc_job_tail = NULL;
	rc_lru_head = rc_lru_tail = NULL;
	rc_hot_head = rc_hot_tail = NULL;
	while (rc_nbufs_free > 0)
		free(rc_bufs_free[--rc_nbufs_free]);
	rc_nbufs = 0;
	/* Blocks go; an object goes with its last block unless a handle
	 * still points to it (bfs_rcache_close frees it then, uncached). */
	for (i = 0; i < rc_nblk_slots; i++) {
		for (k = rc_blks[i]; k; k = n) {
			n = k->hnext;
			o = k->obj;
			free(k->mem);
			free(k);
			if (--o->nblk == 0 && o->refs == 0)
				obj_free_final(o, 1);
		}
		rc_blks[i] = NULL;
	}
	rc_used = 0;
	pthread_mutex_unlock(&rc_mu);
	rm_blocks_dir(rc_dir);
	rmdir(rc_dir);
	free(rc_blks);
	free(rc_objs);
	free(rc_dir);
	rc_blks = NULL;
	rc_objs = NULL;
	rc_dir = NULL;
}

/* Version string of what the caller saw at open. */
static char *make_ver(uint64_t size, const struct timespec *mtime,
		      const char *etag)
{
	size_t len = 64 + strlen(etag);
	char *v;

	if (!(v = malloc(len)))
		return NULL;
	snprintf(v, len, "%llu/%lld.%09ld/%s", (unsigned long long)size,
		 (long long)(mtime ? mtime->tv_sec : 0),
		 mtime ? mtime->tv_nsec : 0L, etag);
	return v;
}

/* The live object of (b, key, ver), made when absent (old versions of the
 * key die); +1 ref.  NULL when the cache is off or on failure. */
static struct rc_obj *obj_get(struct bfs_rbucket *b, const char *key,
			      uint64_t size, const struct timespec *mtime,
			      const char *etag)
{
	struct rc_obj *o = NULL, *n = NULL, *it, *next;
	char *ver, path[RC_PATH_MAX];
	size_t slot;

	pthread_mutex_lock(&rc_mu);
	if (!rc_on) {
		pthread_mutex_unlock(&rc_mu);
		return NULL;
	}
	pthread_mutex_unlock(&rc_mu);
	if (!(ver = make_ver(size, mtime, etag)))
		return NULL;
	if (!(n = calloc(1, sizeof(*n))) || !(n->key = strdup(key)) ||
	    !(n->etag = strdup(etag)))
		goto out;
	n->fd = -1;
	pthread_mutex_lock(&rc_mu);
	if (!rc_on) {
		pthread_mutex_unlock(&rc_mu);
		goto out;
	}
	n->id = ++rc_next_id;
	pthread_mutex_unlock(&rc_mu);
	snprintf(path, sizeof(path), "%s/%llu", rc_dir, (unsigned long long)n->id);
	n->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (n->fd < 0) {
		BFS_WARN("block cache file %s: %s", path, strerror(errno));
		goto out;
	}
	pthread_mutex_lock(&rc_mu);
	if (!rc_on) {
		pthread_mutex_unlock(&rc_mu);
		goto out;
	}
	slot = obj_slot(b->name, key);
	for (it = rc_objs[slot]; it; it = next) {
		next = it->next;
		if (it->b != b || strcmp(it->key, key) != 0)
			continue;
		if (strcmp(it->ver, ver) == 0) {
			o = it;
			o->refs++;
			break;
		}
		obj_kill(it);
	}
	if (!o) {
		o = n;
		n = NULL;
		o->b = b;
		bfs_rbucket_ref(b);
		o->ver = ver;
		ver = NULL;
		o->size = size;
		o->nblocks = (size + BFS_RC_BLOCK - 1) / BFS_RC_BLOCK;
		o->refs = 1;
		o->stuck = RC_FILE_SLACK;   /* its file; given back with it */
		rc_used += RC_FILE_SLACK;
		o->next = rc_objs[slot];
		rc_objs[slot] = o;
	}
	pthread_mutex_unlock(&rc_mu);
out:
	if (n) {
		if (n->fd >= 0) {
			close(n->fd);
			unlink(path);
		}
		free(n->key);
		free(n->etag);
		free(n);
	}
	free(ver);
	return o;
}

/* Uncached read of [off, off+len) (clipped by the caller) of the version
 * etag ("": whatever the server has). */
static int direct_read(struct bfs_rbucket *b, const char *key, char *buf,
		       size_t len, uint64_t off, const char *etag)
{
	struct bfs_provider *p = b->prov;
	size_t got = 0;
	int r;

	if (!p)
		return BFS_ERR_IO;
	r = p->ops->get_range(p->st, key, off, len, buf, &got, etag);
	bfs_rbucket_note(b, r);
	if (r == BFS_ERR_RANGE)
		return 0;
	return r != 0 ? r : (int)got;
}

/* Appends LOADING block k to the workers' queue; rc_mu held. */
static void job_push_locked(struct rc_blk *k)
{
	bfs_lock_assert_held(&rc_mu);
	k->queued = 1;
	if (rc_job_tail)
		rc_job_tail->jnext = k;
	else
		rc_job_head = k;
	rc_job_tail = k;
}

/* Queues prefetches of blocks (from, from+win]; rc_mu held. */
static void prefetch_locked(struct rc_obj *o, uint64_t from, unsigned win)
{
	struct rc_blk *k;
	uint64_t i;
	int queued = 0;

	bfs_lock_assert_held(&rc_mu);
	for (i = from + 1; i <= from + win && i < o->nblocks; i++) {
		if (blk_find(o, i))
			continue;
		if (!(k = blk_new(o, i)))
			break;
		job_push_locked(k);
		queued = 1;
	}
	if (queued)
		pthread_cond_broadcast(&rc_job_cv);
}

/* Takes queued block k off the job queue. */
static void job_unqueue(struct rc_blk *k)
{
	struct rc_blk **pp, *prev = NULL;

	for (pp = &rc_job_head; *pp; prev = *pp, pp = &(*pp)->jnext) {
		if (*pp == k) {
			*pp = k->jnext;
			if (rc_job_tail == k)
				rc_job_tail = prev;
			break;
		}
	}
	k->jnext = NULL;
	k->queued = 0;
}

/*
 * Copies [off, off+len) of block idx (len within the block) into out:
 * from the cache, after waiting for a prefetch, or by fetching it here.
 * Returns bytes copied or BFS_ERR_*.  rc_mu held on entry and exit.
 */
static int read_block(struct rc_obj *o, uint64_t idx, char *out, size_t len,
		      uint64_t off)
{
	struct rc_blk *k;
	char *tmp = NULL, *buf, *src;
	size_t done = 0;
	ssize_t n;
	int r, have = 0;

	for (;;) {
		k = blk_find(o, idx);
		if (k && k->state == BLK_LOADING && k->queued) {
			job_unqueue(k);   /* no worker took it yet: fetch it here */
			break;
		}
		if (k && k->state == BLK_LOADING) {
			pthread_cond_wait(&rc_done_cv, &rc_mu);
			continue;
		}
		break;
	}
	if (k && k->state == BLK_READY) {
		k->pins++;             /* keeps k and its buffer */
		lru_unlink(k);
		lru_push(k);
		src = k->mem;
		pthread_mutex_unlock(&rc_mu);
		bfs_metrics_cache(1);
		r = 0;
		if (src) {             /* hot: no file read */
			memcpy(out, src + (off - idx * BFS_RC_BLOCK), len);
			done = len;
		}
		while (done < len) {
			n = pread(o->fd, out + done, len - done, (off_t)(off + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r = n < 0 ? bfs_err_from_errno(errno) : BFS_ERR_IO;
				break;
			}
			done += (size_t)n;
		}
		pthread_mutex_lock(&rc_mu);
		k->pins--;
		blk_settle(k);
		return r != 0 ? r : (int)done;
	}
	bfs_metrics_cache(0);
	if (!k && !(k = blk_new(o, idx))) {
		pthread_mutex_unlock(&rc_mu);
		r = direct_read(o->b, o->key, out, len, off, o->etag);
		pthread_mutex_lock(&rc_mu);
		return r;
	}
	buf = k->mem = buf_get_locked();   /* k's while LOADING */
	pthread_mutex_unlock(&rc_mu);
	if (!buf)
		buf = tmp = malloc(BFS_RC_BLOCK);
	if (!buf)
		r = BFS_ERR_NOMEM;
	else
		r = fetch_block(k, buf, &have);
	if (have)     /* served even when the block could not be cached */
		memcpy(out, buf + (off - idx * BFS_RC_BLOCK), len);
	free(tmp);
	pthread_mutex_lock(&rc_mu);
	blk_loaded(k, r);
	if (have && r != 0) {
		write_failed_locked(r);
		r = 0;
	}
	if (r == BFS_ERR_PRECONDITION && !o->etag[0]) {
		/* Size changed on the server and no etag to hold the
		 * version: serve what it has now. */
		pthread_mutex_unlock(&rc_mu);
		r = direct_read(o->b, o->key, out, len, off, "");
		pthread_mutex_lock(&rc_mu);
		return r;
	}
	if (r == BFS_ERR_PRECONDITION)
		obj_kill(o);   /* replaced: no more blocks of it */
	return r != 0 ? r : (int)len;
}

static pthread_once_t rc_once = PTHREAD_ONCE_INIT;

/* First read: starts the cache in cache_dir (the parent of the staging
 * folder) with cache_size, after the daemon forked and set bfs_fs. */
static void lazy_init(void)
{
	const char *sd = bfs_fs.staging_dir, *slash;
	char *dir;

	if (!bfs_cache_enabled())
		return;         /* [mount] cache = off: every read uncached */
	if (!sd || !(slash = strrchr(sd, '/')) || slash == sd ||
	    !(dir = strndup(sd, (size_t)(slash - sd))))
		return;
	if (bfs_rcache_init(dir, bfs_fs.cache_size ? bfs_fs.cache_size :
			    (2ull << 30)) != 0)
		BFS_WARN("block cache off: reads go uncached");
	free(dir);
}

int bfs_rcache_read(struct bfs_rc_file **hp, struct bfs_rbucket *b,
		    const char *key, uint64_t size,
		    const struct timespec *mtime, const char *etag, char *buf,
		    size_t len, uint64_t off)
{
	struct bfs_rc_file *h;
	struct rc_obj *o;
	uint64_t first, last, idx, bs, be;
	size_t done = 0, n;
	unsigned wmax;
	int r = 0, seq;

	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	pthread_once(&rc_once, lazy_init);
	/* Reads of one handle may run at once (FUSE worker threads): *hp is
	 * published under rc_mu, so it is read under rc_mu too. */
	pthread_mutex_lock(&rc_mu);
	h = *hp;
	pthread_mutex_unlock(&rc_mu);
	if (!h) {
		if (!(h = calloc(1, sizeof(*h))))
			return BFS_ERR_NOMEM;
		h->obj = obj_get(b, key, size, mtime, etag);
		pthread_mutex_lock(&rc_mu);
		if (*hp) {              /* a concurrent first read won */
			if (h->obj) {
				h->obj->refs--;
				obj_maybe_free(h->obj);
			}
			free(h);
			h = *hp;
		} else {
			*hp = h;
		}
		pthread_mutex_unlock(&rc_mu);
	}
	o = h->obj;
	pthread_mutex_lock(&rc_mu);
	if (!o || o->dead || !rc_on) {
		pthread_mutex_unlock(&rc_mu);
		return direct_read(b, key, buf, len, off, etag);
	}
	first = off / BFS_RC_BLOCK;
	last = (off + len - 1) / BFS_RC_BLOCK;
	seq = h->have_last && (first == h->last_blk || first == h->last_blk + 1);
	wmax = (unsigned)(limit_locked() / BFS_RC_BLOCK / 2);
	if (wmax > BFS_RC_WIN_MAX)
		wmax = BFS_RC_WIN_MAX;
	if (seq || (!h->have_last && off == 0))
		h->win = h->win ? h->win * 2 : 2;
	else
		h->win = 0;
	if (h->win > wmax)
		h->win = wmax;
	h->last_blk = last;
	h->have_last = 1;
	if (h->win)
		prefetch_locked(o, last, h->win);
	for (idx = first; idx <= last; idx++) {
		bs = idx == first ? off : idx * BFS_RC_BLOCK;
		be = (idx + 1) * BFS_RC_BLOCK;
		if (be > off + len)
			be = off + len;
		n = (size_t)(be - bs);
		r = read_block(o, idx, buf + done, n, bs);
		if (r < 0)
			break;
		done += (size_t)r;
		if ((size_t)r < n)
			break;
		r = 0;
	}
	pthread_mutex_unlock(&rc_mu);
	if (r < 0 && done == 0)
		return r;
	return (int)done;
}

/* 1 when the live object of (b, key, ver) holds block 0; rc_mu held. */
static int first_block_known_locked(struct bfs_rbucket *b, const char *key,
				    const char *ver)
{
	struct rc_obj *o;

	bfs_lock_assert_held(&rc_mu);
	for (o = rc_objs[obj_slot(b->name, key)]; o; o = o->next)
		if (o->b == b && !strcmp(o->key, key) && !strcmp(o->ver, ver))
			return blk_find(o, 0) != NULL;
	return 0;
}

void bfs_rcache_prefetch(struct bfs_rbucket *b, const char *key,
			 uint64_t size, const struct timespec *mtime)
{
	struct rc_obj *o;
	struct rc_blk *k;
	char *ver, etag[96];
	int known;

	/* Block 0 only, and only of a version known by its etag: its GETs
	 * carry If-Match, so the block is never joined to blocks of
	 * another version fetched later (see the top of this file). */
	if (size == 0 || bfs_attr_etag(b->name, key, etag, sizeof(etag)) != 1)
		return;
	pthread_once(&rc_once, lazy_init);
	if (!(ver = make_ver(size, mtime, etag)))
		return;
	pthread_mutex_lock(&rc_mu);
	/* Speculative: never evicts a cached block to make room, and an
	 * object already cached costs no block file (obj_get makes one). */
	known = !rc_on || first_block_known_locked(b, key, ver) ||
		rc_used + 2ull * BFS_RC_BLOCK > limit_locked();
	pthread_mutex_unlock(&rc_mu);
	free(ver);
	if (known || !(o = obj_get(b, key, size, mtime, etag)))
		return;
	pthread_mutex_lock(&rc_mu);
	if (rc_on && !o->dead && !blk_find(o, 0) &&
	    rc_used + 2ull * BFS_RC_BLOCK <= limit_locked() &&
	    (k = blk_new(o, 0)) != NULL) {
		job_push_locked(k);
		pthread_cond_broadcast(&rc_job_cv);
	}
	/* The queued block keeps o (nblk) until it is read or evicted. */
	o->refs--;
	if (!rc_on) {
		if (o->refs == 0)
			obj_free_final(o, 1);
	} else {
		obj_maybe_free(o);
	}
	pthread_mutex_unlock(&rc_mu);
}

void bfs_rcache_close(struct bfs_rc_file *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&rc_mu);
	if (h->obj) {
		h->obj->refs--;
		if (!rc_on) {
			/* Outlived bfs_rcache_destroy: no blocks, no hash. */
			if (h->obj->refs == 0)
				obj_free_final(h->obj, 1);
		} else {
			obj_maybe_free(h->obj);
		}
	}
	pthread_mutex_unlock(&rc_mu);
	free(h);
}

static void drop_matching(const char *bucket, const char *key)
{
	struct rc_obj *o, *next;
	size_t i, lo, hi;

	pthread_mutex_lock(&rc_mu);
	if (!rc_on) {
		pthread_mutex_unlock(&rc_mu);
		return;
	}
	if (key) {
		lo = obj_slot(bucket, key);
		hi = lo + 1;
	} else {
		lo = 0;
		hi = rc_nobj_slots;
	}
	for (i = lo; i < hi; i++) {
		for (o = rc_objs[i]; o; o = next) {
			next = o->next;
			if (strcmp(o->b->name, bucket) == 0 &&
			    (!key || strcmp(o->key, key) == 0))
				obj_kill(o);
		}
	}
	pthread_mutex_unlock(&rc_mu);
}

void bfs_rcache_drop(const char *bucket, const char *key)
{
	drop_matching(bucket, key);
}

void bfs_rcache_drop_bucket(const char *bucket)
{
	drop_matching(bucket, NULL);
}

/* Evicts unpinned READY blocks from the LRU tail until bytes are freed;
 * returns the bytes freed.  rc_mu held. */
static uint64_t shed_locked(uint64_t bytes)
{
	struct rc_blk *k, *prev;
	uint64_t freed = 0;
	int skip;

	bfs_lock_assert_held(&rc_mu);
	while (freed < bytes) {
		for (k = rc_lru_tail, skip = 0; k && k->pins; k = prev) {
			prev = k->lprev;
			if (++skip > RC_LRU_SKIP) {
				k = NULL;
				break;
			}
		}
		if (!k)
			break;
		freed += k->acct;
		blk_free(k);
	}
	return freed;
}

uint64_t bfs_rcache_shed(uint64_t bytes)
{
	uint64_t freed = 0;

	pthread_mutex_lock(&rc_mu);
	if (rc_on)
		freed = shed_locked(bytes);
	pthread_mutex_unlock(&rc_mu);
	return freed;
}

void bfs_rcache_trim(void)
{
	pthread_mutex_lock(&rc_mu);
	if (rc_on)
		reserve(0);
	pthread_mutex_unlock(&rc_mu);
}

uint64_t bfs_rcache_used(void)
{
	uint64_t u;

	pthread_mutex_lock(&rc_mu);
	u = rc_used;
	pthread_mutex_unlock(&rc_mu);
	return u;
}
