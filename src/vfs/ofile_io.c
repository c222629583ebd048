/*
 * ofile_io.c - the content of an open file as fs.c's operations use it
 * (part of the open-file module, ofile_int.h): stat, handles, reads of the
 * staged copy or of the pinned remote version, writes, truncation, and
 * the small snapshots the path operations decide on (readdir, unlink,
 * rename).  Every function names the lock it needs or takes ofile.mu
 * itself; none holds it across a network call (the read path's HEADs and
 * GETs run after it is released, on what was copied under it).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "attrcache.h"
#define BFS_OFILE_MODULE
#include "ofile_int.h"
#include "vfs_int.h"
#include "readcache.h"

void bfs_ofile_stat(struct bfs_ofile *of, struct stat *st)
{
	pthread_mutex_lock(&of->mu);
	bfs_ofile_stat_locked(of, st);
	pthread_mutex_unlock(&of->mu);
}

void bfs_ofile_snap(struct bfs_ofile *of, struct bfs_ofile_snap *sn)
{
	pthread_mutex_lock(&of->mu);
	sn->dirty = of->dirty;
	sn->exists_remote = of->exists_remote;
	sn->staged = of->staged;
	sn->unlinked = of->unlinked;
	sn->handles = of->handles;
	pthread_mutex_unlock(&of->mu);
}

int bfs_ofile_child(struct bfs_ofile *of, const char *bucket,
		    const char *prefix, size_t plen, struct stat *st,
		    char **name)
{
	int r;

	*name = NULL;
	pthread_mutex_lock(&of->mu);
	if (!of->unlinked && strcmp(of->b->name, bucket) == 0 &&
	    strncmp(of->key, prefix, plen) == 0 &&
	    of->key[plen] && !strchr(of->key + plen, '/')) {
		bfs_ofile_stat_locked(of, st);
		*name = strdup(of->key + plen);
		r = *name ? 0 : BFS_ERR_NOMEM;
	} else {
		r = 1;          /* not (any more) an entry of this folder */
	}
	pthread_mutex_unlock(&of->mu);
	return r;
}

void bfs_ofile_handle_open(struct bfs_ofile *of)
{
	pthread_mutex_lock(&of->mu);
	of->handles++;
	pthread_mutex_unlock(&of->mu);
}

int bfs_ofile_handle_close(struct bfs_ofile *of)
{
	int dirty;

	pthread_mutex_lock(&of->mu);
	of->handles--;
	dirty = of->dirty && !of->unlinked;
	if (dirty)
		bfs_ofile_kick_locked(of);
	pthread_mutex_unlock(&of->mu);
	return dirty;
}

int bfs_ofile_sync(struct bfs_ofile *of, int timeout)
{
	int r;

	pthread_mutex_lock(&of->mu);
	r = bfs_ofile_sync_locked(of, timeout);
	pthread_mutex_unlock(&of->mu);
	return r;
}

void bfs_ofile_wait_quiet(struct bfs_ofile *of)
{
	pthread_mutex_lock(&of->mu);
	while (of->uploading || of->attr_busy)
		pthread_cond_wait(&of->cv, &of->mu);
	pthread_mutex_unlock(&of->mu);
}

int bfs_ofile_keepable(struct bfs_ofile *of, int can_keep, char **etag)
{
	int keep;

	*etag = NULL;
	pthread_mutex_lock(&of->mu);
	keep = !of->staged && of->exists_remote && !of->unlinked && can_keep;
	if (keep && of->read_etag && !(*etag = strdup(of->read_etag)))
		keep = BFS_ERR_NOMEM;
	pthread_mutex_unlock(&of->mu);
	return keep;
}

/* ---- truncation ---- */

int bfs_ofile_truncate(struct bfs_ofile *of, uint64_t size)
{
	int r;

	pthread_mutex_lock(&of->mu);
	/* of->b: mu held (a rename swaps it) */
	r = of->b->read_only ? BFS_ERR_READONLY :
	    bfs_ofile_truncate_locked(of, size);
	pthread_mutex_unlock(&of->mu);
	return r;
}

int bfs_ofile_truncate_sync(struct bfs_ofile *of, uint64_t size, int timeout,
			    int *ours)
{
	int r;

	pthread_mutex_lock(&of->mu);
	r = bfs_ofile_truncate_locked(of, size);
	*ours = of->handles == 0;
	if (r == 0 && *ours)
		r = bfs_ofile_sync_locked(of, timeout);
	pthread_mutex_unlock(&of->mu);
	return r;
}

int bfs_ofile_open_trunc(struct bfs_ofile *of)
{
	int r = 0;

	pthread_mutex_lock(&of->mu);
	if (of->staged || of->size != 0 || !of->exists_remote)
		r = bfs_ofile_truncate_locked(of, 0);
	pthread_mutex_unlock(&of->mu);
	return r;
}

int bfs_ofile_create_reset(struct bfs_ofile *of, uint32_t mode, uint32_t uid,
			   uint32_t gid)
{
	int r;

	pthread_mutex_lock(&of->mu);
	of->mode = mode;
	of->uid = uid;
	of->gid = gid;
	r = bfs_ofile_truncate_locked(of, 0);
	pthread_mutex_unlock(&of->mu);
	return r;
}

/* ---- reads, writes ---- */

/* The etag of the version a clean file's reads will serve: what the
 * attribute cache holds for it now (the lookup of this open).  Once set it
 * stays until read_version_gone() moves it. */
void bfs_ofile_pin_read_version(struct bfs_ofile *of)
{
	char etag[sizeof(((struct bfs_meta *)0)->etag)];

	pthread_mutex_lock(&of->mu);
	if (!of->read_etag && !of->staged && of->exists_remote &&
	    !atomic_load(&of->read_served) &&
	    bfs_attr_etag(of->b->name, of->key, etag, sizeof(etag)) == 1)
		of->read_etag = strdup(etag);
	pthread_mutex_unlock(&of->mu);
}


/*
 * Clean reads of a file hold one version: the etag seen at open goes with
 * every GET as If-Match (readcache.c), so no block of a newer object is
 * joined to blocks of the old one.  Before a file of more than one block
 * returns its first byte, a HEAD checks that the etag pinned at open (from
 * the attribute cache, up to BFS_ATTR_LONG_TTL_MS old) is still the
 * server's: blocks cached earlier would otherwise be served before the
 * first GET could notice a replacement.  A file that returned no byte yet
 * moves to the version the server has (size, mtime, etag); one that did
 * fails with EIO from then on when a GET finds the object replaced,
 * rather than mix two versions (mountpoint-s3 does the same).  The
 * attribute and block caches of the key are dropped, so the next open
 * sees the new version.
 */

/* HEAD of key: when its etag is not etag, a file that returned no byte
 * yet moves to it.  0: unchanged; 1: moved (or moved meanwhile), read
 * again; BFS_ERR_*. */
static int read_follow_server(struct bfs_ofile *of, unsigned gen,
			      struct bfs_rbucket *b, const char *key,
			      const char *etag)
{
	struct bfs_meta m;
	struct stat st;
	char *e;
	int r;

	memset(&m, 0, sizeof(m));
	r = b->prov ? bfs_cache_head_fresh(b->prov, key, &m) : BFS_ERR_IO;
	bfs_rbucket_note(b, r);
	if (r != 0)
		return r;
	if (!strcmp(m.etag, etag))
		return 0;
	bfs_fs_meta_to_stat(b, &m, 0, &st);
	if (!S_ISREG(st.st_mode) || !m.etag[0])
		return BFS_ERR_PRECONDITION;
	bfs_attr_drop(b->name, key);
	pthread_mutex_lock(&of->mu);
	if (of->read_gen == gen && !of->staged &&
	    !atomic_load(&of->read_served) && (e = strdup(m.etag)) != NULL) {
		free(of->read_etag);
		of->read_etag = e;
		of->size = (uint64_t)st.st_size;
		of->mtime = st.st_mtim;
		of->read_gen++;
		BFS_INFO("%s/%s was replaced on the server before its first "
			 "read: reading the new version", b->name, key);
	}
	pthread_mutex_unlock(&of->mu);
	return 1;
}

/* A GET of version gen found the object replaced (412). */
static int read_version_gone(struct bfs_ofile *of, unsigned gen,
			     struct bfs_rbucket *b, const char *key,
			     const char *etag)
{
	int r;

	pthread_mutex_lock(&of->mu);
	if (of->read_gen != gen || of->staged) {
		pthread_mutex_unlock(&of->mu);
		return 1;           /* moved meanwhile: read again */
	}
	if (atomic_load(&of->read_served) || of->read_gone) {
		if (!of->read_gone)
			BFS_WARN("%s/%s was replaced on the server while open: "
				 "its reads fail (EIO) rather than mix two "
				 "versions; open it again for the new one",
				 b->name, key);
		of->read_gone = 1;
		pthread_mutex_unlock(&of->mu);
		bfs_attr_drop(b->name, key);
		return BFS_ERR_PRECONDITION;
	}
	pthread_mutex_unlock(&of->mu);
	r = read_follow_server(of, gen, b, key, etag);
	return r == 0 ? BFS_ERR_PRECONDITION : r;
}

/* A read of version gen returned bytes: from now on the file holds it.
 * BFS_ERR_PRECONDITION when a concurrent first read moved the file to a
 * newer version meanwhile (the bytes read are of the old one). */
static int read_served(struct bfs_ofile *of, unsigned gen)
{
	int r = 0;

	pthread_mutex_lock(&of->mu);
	if (of->read_gen != gen)
		r = BFS_ERR_PRECONDITION;
	else
		atomic_store(&of->read_served, 1);
	pthread_mutex_unlock(&of->mu);
	return r;
}

/* fs.c read: see vfs_int.h. */
int bfs_ofile_read(struct bfs_ofile *of, struct bfs_rc_file **rc, char *buf,
		   size_t size, off_t off)
{
	struct bfs_rbucket *b = NULL;
	struct timespec mtime;
	uint64_t fsize;
	char *key = NULL, etag[sizeof(((struct bfs_meta *)0)->etag)];
	ssize_t n;
	size_t done = 0;
	unsigned gen;
	int r, moved, tries = 0;

again:
	pthread_mutex_lock(&of->mu);
	if (of->staged) {
		while (done < size) {
			n = pread(of->fd, buf + done, size - done, off + (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = bfs_err_from_errno(errno);
				pthread_mutex_unlock(&of->mu);
				return r;
			}
			if (n == 0)
				break;
			done += (size_t)n;
		}
		pthread_mutex_unlock(&of->mu);
		return (int)done;
	}
	if (of->read_gone) {
		pthread_mutex_unlock(&of->mu);
		return BFS_ERR_IO;
	}
	r = bfs_ofile_where_locked(of, &b, &key);
	fsize = of->size;       /* the version read: size, mtime, etag */
	mtime = of->mtime;
	snprintf(etag, sizeof(etag), "%s", of->read_etag ? of->read_etag : "");
	gen = of->read_gen;
	pthread_mutex_unlock(&of->mu);
	if (r != 0)
		return r;
	moved = 0;
	if (off < 0)
		r = BFS_ERR_INVAL;
	else if (etag[0] && fsize > BFS_RC_BLOCK && !tries &&
		 !atomic_load(&of->read_served))
		r = moved = read_follow_server(of, gen, b, key, etag);
	else
		r = 0;
	if (r == 0)
		r = bfs_rcache_read(rc, b, key, fsize, &mtime, etag, buf,
				    size, (uint64_t)off);
	if (r > 0 && !moved && !atomic_load(&of->read_served)) {
		int s = read_served(of, gen);

		if (s < 0)
			r = s;
	}
	if (r == BFS_ERR_PRECONDITION && etag[0] && !tries)
		r = moved = read_version_gone(of, gen, b, key, etag);
	if (moved == 1 && !tries++) {
		/* Moved to the server's version: read it (uncached by a
		 * handle whose cache object died with the old one). */
		free(key);
		bfs_rbucket_put(b);
		key = NULL;
		goto again;
	}
	free(key);
	bfs_rbucket_put(b);
	return r;
}

/*
 * A failed write to the staging file (ENOSPC: cache_dir's file system is
 * full, whatever cache_size says).  The whole write fails; bytes it put
 * past the file's end are cut off again so the staging file holds exactly
 * what was acknowledged and the space goes back.  One log line per
 * failure names the file, the folder and the error.  mu held.
 */
static int write_failed(struct bfs_ofile *of, int err, size_t size, off_t off,
			size_t done)
{
	if (done && (uint64_t)off + done > of->size &&
	    ftruncate(of->fd, (off_t)of->size) != 0)
		BFS_WARN("%s/%s: staging truncate: %s", of->b->name, of->key,
			 strerror(errno));
	if ((uint64_t)off + size > of->size)
		bfs_ofile_budget_locked(of, of->size);   /* gives it back */
	BFS_WARN("%s/%s: write of %zu bytes at %lld failed in %s: %s",
		 of->b->name, of->key, size, (long long)off, bfs_fs.staging_dir,
		 strerror(err));
	return bfs_err_from_errno(err);
}

/*
 * Waits while an upload job of of writes its index and journal rows
 * without mu (upload.c, `committing`): a change of content then comes
 * after the job marked the file clean or not, and so journals itself.
 * mu held; released while waiting.
 */
static void commit_wait_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	while (of->committing)
		pthread_cond_wait(&of->cv, &of->mu);
}

/* fs.c write: see vfs_int.h. */
int bfs_ofile_write(struct bfs_ofile *of, const char *buf, size_t size,
		    off_t off)
{
	size_t done = 0;
	ssize_t n;
	int r;

	pthread_mutex_lock(&of->mu);
	if (of->b->read_only) {         /* of->b: mu held (rename swaps it) */
		r = BFS_ERR_READONLY;
		goto out;
	}
	if ((r = bfs_ofile_stage_locked(of, 0)) != 0)
		goto out;
	if ((uint64_t)off + size > of->size &&
	    (r = bfs_ofile_budget_locked(of, (uint64_t)off + size)) != 0)
		goto out;
	commit_wait_locked(of);
	while (done < size) {
		n = pwrite(of->fd, buf + done, size - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		/* A full cache disk: cached clean blocks give way first. */
		if (n < 0 && (errno == ENOSPC || errno == EDQUOT) &&
		    bfs_rcache_shed(size - done) > 0)
			continue;
		if (n < 0) {
			r = write_failed(of, errno, size, off, done);
			goto out;
		}
		done += (size_t)n;
	}
	if ((uint64_t)off + size > of->size)
		of->size = (uint64_t)off + size;
	clock_gettime(CLOCK_REALTIME, &of->mtime);
	/* journaled (durably, the first time) before the write is acked */
	r = bfs_ofile_set_dirty_locked(of, 1);
out:
	if (done)       /* parts already sent of these bytes go again */
		bfs_mp_wrote_locked(of, (uint64_t)off, done);
	pthread_mutex_unlock(&of->mu);
	return r;
}

/*
 * Sets the size of an open file (staging it first: a cut to 0 stages an
 * empty file, never downloads), marks it dirty and tells the multipart
 * state which sent parts no longer hold its bytes.  The one way to cut a
 * file: truncate, ftruncate, open(O_TRUNC) and create.  mu held.
 */
int bfs_ofile_truncate_locked(struct bfs_ofile *of, uint64_t size)
{
	uint64_t from;
	int r;

	bfs_lock_assert_held(&of->mu);
	if ((r = bfs_ofile_stage_locked(of, size == 0)) != 0)
		return r;
	/* (after the stage: it may have released mu) */
	from = size < of->size ? size : of->size;
	if (size > of->size && (r = bfs_ofile_budget_locked(of, size)) != 0)
		return r;
	commit_wait_locked(of);
	if (ftruncate(of->fd, (off_t)size) < 0)
		return bfs_err_from_errno(errno);
	of->size = size;
	if (size < of->acct)
		bfs_ofile_budget_locked(of, size);
	clock_gettime(CLOCK_REALTIME, &of->mtime);
	r = bfs_ofile_set_dirty_locked(of, 1);
	bfs_mp_wrote_locked(of, from, UINT64_MAX - from);
	return r;
}


/*
 * A clean open file's reads are pinned to an etag; after this mount moved
 * the object to (b, key) by a copy, they follow the etag the server gives
 * there now (same bytes).  The HEAD runs without of->mu.
 */
void repin_read_version(struct bfs_ofile *of, struct bfs_rbucket *b,
			const char *key)
{
	struct bfs_meta m;
	char *e;
	int want;

	pthread_mutex_lock(&of->mu);
	want = of->read_etag && !of->staged;
	pthread_mutex_unlock(&of->mu);
	if (!want || !b->prov)
		return;
	memset(&m, 0, sizeof(m));
	if (bfs_cache_head_fresh(b->prov, key, &m) != 0 || !m.etag[0])
		return;
	pthread_mutex_lock(&of->mu);
	if (of->read_etag && !of->staged && m.size == of->size &&
	    (e = strdup(m.etag)) != NULL) {
		free(of->read_etag);
		of->read_etag = e;
	}
	pthread_mutex_unlock(&of->mu);
}

