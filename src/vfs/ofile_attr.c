/*
 * ofile_attr.c - attribute changes of an open file (part of the open-file
 * module, ofile_int.h): chmod, chown, utimens (fs.c change_attrs) and
 * setxattr, removexattr (xattr.c) go through the transitions here instead
 * of reaching into struct bfs_ofile.
 *
 * One change at a time per file, none while a rename fences its name:
 * bfs_ofile_attr_begin takes ofile.mu and waits on of->cv until no other
 * change copies the object (attr_busy) and no fence covers the name.  The
 * caller edits under mu.  A clean stored file gets the change by a
 * metadata copy on the server, which runs without mu between
 * bfs_ofile_attr_send_begin_locked (sets attr_busy, releases mu) and
 * bfs_ofile_attr_send_end (takes mu, clears attr_busy, broadcasts cv);
 * a dirty one by its next upload (bfs_ofile_attr_changed_locked moves the
 * generation and says when the pending queue must own it).
 *
 * Locks: ofile.mu for every field read or written here; fence_mu (a leaf)
 * inside it through bfs_fence_covers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bfs_error.h"
#include "bfs_lock.h"
#define BFS_OFILE_MODULE
#include "ofile_int.h"
#include "vfs_int.h"

void bfs_ofile_lock(struct bfs_ofile *of)
{
	pthread_mutex_lock(&of->mu);
}

void bfs_ofile_unlock(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	pthread_mutex_unlock(&of->mu);
}

void attr_wait_locked(struct bfs_ofile *of)
{
	struct timespec ts;

	bfs_lock_assert_held(&of->mu);
	for (;;) {
		if (of->attr_busy) {
			pthread_cond_wait(&of->cv, &of->mu);
			continue;
		}
		if (of->unlinked || !bfs_fence_covers(of->b->name, of->key))
			return;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&of->cv, &of->mu, &ts);
	}
}

int bfs_ofile_attr_begin(struct bfs_ofile *of, const char *bucket,
			 const char *key)
{
	pthread_mutex_lock(&of->mu);
	attr_wait_locked(of);
	if (bucket && (strcmp(of->b->name, bucket) != 0 ||
		       strcmp(of->key, key) != 0)) {
		pthread_mutex_unlock(&of->mu);
		return BFS_ERR_NOTFOUND;     /* renamed meanwhile */
	}
	return 0;
}

int bfs_ofile_attr_must_send_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	return !of->dirty && !of->unlinked && of->exists_remote;
}

void bfs_ofile_attr_send_begin_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	of->attr_busy = 1;
	pthread_mutex_unlock(&of->mu);
}

void bfs_ofile_attr_send_end(struct bfs_ofile *of)
{
	bfs_lock_assert_free(&of->mu);
	pthread_mutex_lock(&of->mu);
	of->attr_busy = 0;
	pthread_cond_broadcast(&of->cv);
}

int bfs_ofile_attr_changed_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	if (!of->dirty)
		return 0;
	of->gen++;     /* a running upload carries the old attributes */
	return !of->unlinked && of->handles == 0;
}

int bfs_ofile_read_only_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	return of->b->read_only;
}

void bfs_ofile_attrs_locked(struct bfs_ofile *of, struct bfs_ofile_attrs *a)
{
	bfs_lock_assert_held(&of->mu);
	a->mode = of->mode;
	a->uid = of->uid;
	a->gid = of->gid;
	a->mtime = of->mtime;
	a->size = of->size;
}

void bfs_ofile_set_attrs_locked(struct bfs_ofile *of,
				const struct bfs_ofile_attrs *a)
{
	bfs_lock_assert_held(&of->mu);
	of->mode = a->mode;
	of->uid = a->uid;
	of->gid = a->gid;
	of->mtime = a->mtime;
}

void bfs_ofile_attr_drop_locked(struct bfs_ofile *of)
{
	bfs_lock_assert_held(&of->mu);
	bfs_attr_drop(of->b->name, of->key);
}

/* ---- user xattrs ---- */

int bfs_ofile_xattr_set_locked(struct bfs_ofile *of, const char *enc)
{
	char *n = NULL;

	bfs_lock_assert_held(&of->mu);
	if (enc[0] && !(n = strdup(enc)))
		return BFS_ERR_NOMEM;
	free(of->xattr);
	of->xattr = n;
	of->xattr_known = 1;
	return 0;
}

void bfs_ofile_learn_xattr_locked(struct bfs_ofile *of,
				  const struct bfs_meta *m)
{
	bfs_lock_assert_held(&of->mu);
	if (!of->xattr_known && m->has_xattr)
		bfs_ofile_xattr_set_locked(of, m->xattr);
}

void bfs_ofile_xattr_meta_locked(const struct bfs_ofile *of,
				 struct bfs_meta *m)
{
	bfs_lock_assert_held(&of->mu);
	m->has_xattr = of->xattr_known ? 1 : 0;
	snprintf(m->xattr, sizeof(m->xattr), "%s", of->xattr ? of->xattr : "");
}

int bfs_ofile_xattr_own_locked(struct bfs_ofile *of, const char **enc)
{
	bfs_lock_assert_held(&of->mu);
	*enc = of->xattr ? of->xattr : "";
	return of->xattr_known || of->dirty || of->unlinked ||
	       !of->exists_remote;
}

char *bfs_ofile_xattr_dup(struct bfs_ofile *of)
{
	char *enc = NULL;

	pthread_mutex_lock(&of->mu);
	if (of->xattr_known)
		enc = strdup(of->xattr ? of->xattr : "");
	pthread_mutex_unlock(&of->mu);
	return enc;
}

void bfs_ofile_xattr_learn(struct bfs_ofile *of, const char *enc)
{
	pthread_mutex_lock(&of->mu);
	if (!of->xattr_known)
		bfs_ofile_xattr_set_locked(of, enc);
	pthread_mutex_unlock(&of->mu);
}

int bfs_ofile_base_etag(struct bfs_ofile *of, char *etag, size_t len)
{
	int r = 1;

	pthread_mutex_lock(&of->mu);
	if (of->base_known) {
		r = of->base_etag ? 0 : BFS_ERR_NOTFOUND;
		if (r == 0)
			snprintf(etag, len, "%s", of->base_etag);
	} else if (!of->exists_remote) {
		r = BFS_ERR_NOTFOUND;
	}
	pthread_mutex_unlock(&of->mu);
	return r;
}
