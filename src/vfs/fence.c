/*
 * fence.c - keeps upload jobs, renames and deferred deletes of one name
 * apart, and hides the names this mount unlinked while a descriptor still
 * reads their object.
 *
 * FENCES.  A rename puts a fence over its source and its destination (a
 * key, or a folder prefix) before it moves anything, and lifts it once
 * the open-file table and the upload journal follow the move.  No upload
 * job starts on a fenced key (bfs_ofile_kick_locked asks
 * bfs_fence_covers); the rename waits for the jobs that started before,
 * so no job stores a file under a name it no longer has (a folder rename
 * would otherwise bring the source folder back).  close/fsync wait for a
 * fence to go instead of failing (bfs_ofile_sync_locked); the pending
 * queue simply retries at its next tick.  The deferred delete of a gone
 * name fences that key too while it checks and deletes.
 *
 * GONE NAMES.  unlink of a file that is open and whose reads go to the
 * remote object (clean, never staged) does not download it: the name goes
 * at once, the object stays until the last handle of that open file
 * closes (POSIX: open descriptors keep reading what they opened), then it
 * is deleted (bfs_gone_finish, from the open file's last reference).
 *   - With a provider rename (local): the object is moved aside to a
 *     hidden ".bfs-tmp-" key at the bucket root at once (the provider's
 *     listings never show those); the open file reads it there; nothing
 *     else needs to know.
 *   - Without (s3, r2): the object stays under its key and a record here
 *     hides it: lookups treat an object with the recorded etag as absent,
 *     listings skip the name.  A new object this mount stores under the
 *     name (upload, rename, symlink) supersedes the record: the name shows
 *     again and the deferred delete does nothing.  The delete itself, under
 *     a fence on the key, deletes only when no open file of this mount has
 *     the name and a HEAD still shows the recorded etag, so it never
 *     removes a newer object of this mount (another client's write in the
 *     instant between that HEAD and the DELETE is the one window).
 *   Nothing of this is journaled: after a crash the object is simply still
 *   there (docs/RELIABILITY.md, "unlink of an open file").
 *
 * Locks: fence_mu guards both lists; it is a leaf (taken inside ofile.mu by
 * kick, never held across a call out of this file).
 */
#include <stdlib.h>
#include <string.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "vfs_int.h"

struct bfs_fence {
	char *bucket;
	char *key;
	int prefix;                   /* key is a folder prefix ("a/") */
	struct bfs_fence *next;       /* fence_mu */
};

struct bfs_gone {
	char *bucket;
	char *key;                    /* the key to delete at the last close */
	char *etag;                   /* the version the open file reads; NULL:
				       * unknown (any version is hidden) */
	int hide;                     /* the object still has the name */
	int superseded;               /* (fence_mu) this mount stored a new
				       * object under the name */
	struct bfs_gone *next;        /* fence_mu */
};

static pthread_mutex_t fence_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_fence *fences;                 /* fence_mu */
static struct bfs_gone *gones;                   /* fence_mu */

int bfs_fence_add(const char *bucket, const char *key, int prefix,
		  struct bfs_fence **out)
{
	struct bfs_fence *f;

	*out = NULL;
	if (!(f = calloc(1, sizeof(*f))) || !(f->bucket = strdup(bucket)) ||
	    !(f->key = strdup(key))) {
		if (f)
			free(f->bucket);
		free(f);
		return BFS_ERR_NOMEM;
	}
	f->prefix = prefix;
	pthread_mutex_lock(&fence_mu);
	f->next = fences;
	fences = f;
	pthread_mutex_unlock(&fence_mu);
	*out = f;
	return 0;
}

void bfs_fence_del(struct bfs_fence *f)
{
	struct bfs_fence **pp;

	if (!f)
		return;
	pthread_mutex_lock(&fence_mu);
	for (pp = &fences; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	pthread_mutex_unlock(&fence_mu);
	free(f->bucket);
	free(f->key);
	free(f);
}

int bfs_fence_covers(const char *bucket, const char *key)
{
	struct bfs_fence *f;
	int hit = 0;

	pthread_mutex_lock(&fence_mu);
	for (f = fences; f && !hit; f = f->next)
		hit = strcmp(f->bucket, bucket) == 0 &&
		      (f->prefix ? strncmp(key, f->key, strlen(f->key)) == 0 :
				   strcmp(key, f->key) == 0);
	pthread_mutex_unlock(&fence_mu);
	return hit;
}

static void gone_free(struct bfs_gone *g)
{
	if (!g)
		return;
	free(g->bucket);
	free(g->key);
	free(g->etag);
	free(g);
}

int bfs_gone_add(const char *bucket, const char *key, const char *etag,
		 int hide, struct bfs_gone **out)
{
	struct bfs_gone *g;

	*out = NULL;
	if (!(g = calloc(1, sizeof(*g))) || !(g->bucket = strdup(bucket)) ||
	    !(g->key = strdup(key)) ||
	    (etag && etag[0] && !(g->etag = strdup(etag)))) {
		gone_free(g);
		return BFS_ERR_NOMEM;
	}
	g->hide = hide;
	pthread_mutex_lock(&fence_mu);
	g->next = gones;
	gones = g;
	pthread_mutex_unlock(&fence_mu);
	*out = g;
	return 0;
}

/* A record that hides (bucket, key) now; fence_mu held. */
static struct bfs_gone *hider_locked(const char *bucket, const char *key)
{
	struct bfs_gone *g;

	bfs_lock_assert_held(&fence_mu);
	for (g = gones; g; g = g->next)
		if (g->hide && !g->superseded && strcmp(g->key, key) == 0 &&
		    strcmp(g->bucket, bucket) == 0)
			return g;
	return NULL;
}

int bfs_gone_hidden(const char *bucket, const char *key)
{
	int hit;

	pthread_mutex_lock(&fence_mu);
	hit = hider_locked(bucket, key) != NULL;
	pthread_mutex_unlock(&fence_mu);
	return hit;
}

int bfs_gone_hides_etag(const char *bucket, const char *key, const char *etag)
{
	struct bfs_gone *g;
	int hit = 0;

	pthread_mutex_lock(&fence_mu);
	for (g = gones; g && !hit; g = g->next)
		hit = g->hide && !g->superseded &&
		      strcmp(g->key, key) == 0 &&
		      strcmp(g->bucket, bucket) == 0 &&
		      (!g->etag || !etag || !etag[0] ||
		       strcmp(g->etag, etag) == 0);
	pthread_mutex_unlock(&fence_mu);
	return hit;
}

void bfs_gone_supersede(const char *bucket, const char *key, int prefix)
{
	struct bfs_gone *g;
	size_t klen = strlen(key);

	pthread_mutex_lock(&fence_mu);
	for (g = gones; g; g = g->next)
		if (g->hide && strcmp(g->bucket, bucket) == 0 &&
		    (prefix ? strncmp(g->key, key, klen) == 0 :
			      strcmp(g->key, key) == 0))
			g->superseded = 1;
	pthread_mutex_unlock(&fence_mu);
}

/* Takes g out of the list. */
static void gone_unlist(struct bfs_gone *g)
{
	struct bfs_gone **pp;

	pthread_mutex_lock(&fence_mu);
	for (pp = &gones; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	pthread_mutex_unlock(&fence_mu);
}

/*
 * Whether the kept object of g is still the one to delete: not
 * superseded, no open file of this mount under the name (its upload, run
 * or to come, replaces the object), the server still has the recorded
 * version.  Called under a fence on the key, no lock held.
 */
static int gone_still_ours(struct bfs_gone *g, struct bfs_provider *p)
{
	struct bfs_ofile *of;
	struct bfs_meta m;
	int sup, r;

	pthread_mutex_lock(&fence_mu);
	sup = g->superseded;
	pthread_mutex_unlock(&fence_mu);
	if (sup)
		return 0;
	if ((of = bfs_ofile_find(g->bucket, g->key)) != NULL) {
		bfs_ofile_put(of);
		return 0;
	}
	memset(&m, 0, sizeof(m));
	if ((r = bfs_cache_head_fresh(p, g->key, &m)) != 0) {
		if (r != BFS_ERR_NOTFOUND)
			BFS_WARN("%s/%s: unlinked while open; not deleted at its "
				 "last close: %s", g->bucket, g->key,
				 bfs_strerror(r));
		return 0;
	}
	return !g->etag || !m.etag[0] || strcmp(g->etag, m.etag) == 0;
}

/* Drops the cached attributes and listings of key and of each folder
 * above it (a folder made only by the kept object goes with it). */
static void drop_with_folders(const char *bucket, const char *key)
{
	char *k = strdup(key), *slash;

	bfs_attr_drop(bucket, key);
	if (!k)
		return;
	while ((slash = strrchr(k, '/')) != NULL) {
		*slash = '\0';
		bfs_attr_drop(bucket, k);
	}
	free(k);
}

void bfs_gone_finish(struct bfs_gone *g, struct bfs_rbucket *b)
{
	struct bfs_provider *p = b ? b->prov : NULL;
	struct bfs_fence *f = NULL;
	int r;

	if (!g)
		return;
	if (!p) {
		BFS_WARN("%s/%s: unlinked while open; not deleted at its last "
			 "close: the bucket has no provider", g->bucket, g->key);
		goto out;
	}
	if (!g->hide) {
		/* moved aside: nobody else knows the key */
		r = p->ops->del(p->st, g->key);
		/* listings showed its folders: they may not any more */
		if (r == 0)
			drop_with_folders(g->bucket, g->key);
	} else {
		if (bfs_fence_add(g->bucket, g->key, 0, &f) != 0) {
			BFS_WARN("%s/%s: unlinked while open; not deleted at its "
				 "last close: out of memory", g->bucket, g->key);
			goto out;
		}
		if (!gone_still_ours(g, p)) {
			BFS_DEBUG("%s/%s: unlinked while open; kept object not "
				  "deleted: the name has a newer one", g->bucket,
				  g->key);
			goto out;
		}
		r = p->ops->del(p->st, g->key);
		/* listings showed its folders: they may not any more */
		if (r == 0)
			drop_with_folders(g->bucket, g->key);
	}
	bfs_rbucket_note(b, r);
	if (r != 0)
		BFS_WARN("%s/%s: unlinked while open; delete at its last close "
			 "failed: %s", g->bucket, g->key, bfs_strerror(r));
	else
		BFS_DEBUG("%s/%s: unlinked while open; deleted at its last "
			  "close", g->bucket, g->key);
out:
	gone_unlist(g);
	bfs_fence_del(f);
	gone_free(g);
}

void bfs_gone_drop(struct bfs_gone *g)
{
	if (!g)
		return;
	gone_unlist(g);
	gone_free(g);
}
