/*
 * cached.c - the caches as a provider decorator (sshfs cache_wrap(),
 * libfuse's stacked fuse_fs modules): a struct bfs_provider_ops table
 * that wraps the provider of one bucket and keeps the caches of
 * attrcache.c and readcache.c true for every change that passes through.
 *
 * DESIGN
 *
 * The registry (src/route/registry.c) opens each bucket's provider and,
 * unless [mount] cache = off, wraps it here, so every call the vfs makes
 * through b->prov passes this table.  The wrapper's state holds the inner
 * provider, the bucket name (the caches' namespace: views and bucket
 * folders of one bucket share it) and its own copy of the ops table,
 * where an op the inner provider lacks is NULL too (the vfs asks
 * `ops->rename == NULL` to copy and delete instead).
 *
 * Invalidation rule: every op that changes a key (put_fd, put_buf, del,
 * copy, set_meta, rename, mpu_complete, copy_from) calls the inner op,
 * then, whatever it returned (a failure may have changed the key too),
 * drops what it changes with bfs_attr_drop(bucket, key): the key's
 * attributes (and HEAD metadata), its folder's listing and that name in
 * its folder's known-absent record, the key-as-folder listing and record,
 * and the key's data blocks.  Listings are cached only if their own
 * (bucket, folder) drop generation did not move while they were made, so
 * a change in one folder never keeps another folder's listing out.  A
 * folder key that is renamed or deleted ("a/" -> "b/") moves or removes
 * an unknown number of keys below it: the bucket's caches go
 * (bfs_attr_drop_bucket).  The multipart ops before completion
 * (begin, part, list_parts, abort, list_uploads) change no visible key.
 * Drops made after the inner call are enough: a listing or probe that
 * overlapped the change sees a moved generation or a touched name.
 *
 * What it serves: head, from the metadata a HEAD through it stored in the
 * key's attribute entry (fresh for BFS_ATTR_LONG_TTL_MS, whole: etag,
 * content type, xattrs), else the inner head, whose answer it stores
 * unless the key was dropped while the HEAD was on its way (the key's
 * drop generation, bfs_attr_gen: per hash slot and per bucket).
 * Listings' attributes never answer a head (they lack content type and
 * xattrs).  A caller that must see the server's current version uses
 * bfs_cache_head_fresh.  list and get_range pass through: listings are
 * cached one level up by bfs_dir_list (it completes them from the index
 * and parallel HEADs, which need the bucket's settings), and data blocks
 * by bfs_rcache_read, keyed by the version an open file pinned (size,
 * mtime, etag), which this layer cannot know; the drops above keep both
 * true.  get_fd, presign, statfs and the rest pass through.
 *
 * Locks: none of its own; the caches' locks (attr_mu, dir_mu, rc_mu) are
 * leaves, never held across the inner call.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "attrcache.h"
#include "vfs_int.h"

static atomic_int cache_on = 1;

void bfs_cache_set_enabled(int on)
{
	atomic_store(&cache_on, on != 0);
}

int bfs_cache_enabled(void)
{
	return atomic_load(&cache_on);
}

struct cw_state {
	struct bfs_provider_ops ops;    /* this wrapper's table */
	struct bfs_provider *inner;     /* owned */
	char *bucket;                   /* owned */
};

static void cw_destroy(void *vst)
{
	struct cw_state *s = vst;

	if (!s)
		return;
	bfs_provider_close(s->inner);
	free(s->bucket);
	free(s);
}

static int is_folder_key(const char *key)
{
	size_t n = strlen(key);

	return n && key[n - 1] == '/';
}

/* key changed (or may have): everything cached about it goes. */
static void cw_changed(const struct cw_state *s, const char *key)
{
	bfs_attr_drop(s->bucket, key);
}

/* key ("a/"), and an unknown number of keys below it, changed. */
static void cw_changed_tree(const struct cw_state *s, const char *key)
{
	if (is_folder_key(key))
		bfs_attr_drop_bucket(s->bucket);
	else
		bfs_attr_drop(s->bucket, key);
}

static int cw_head(void *vst, const char *key, struct bfs_meta *m)
{
	struct cw_state *s = vst;
	struct bfs_provider *p = s->inner;
	uint64_t gen;
	int r;

	if (bfs_attr_meta_get(s->bucket, key, m))
		return 0;
	gen = bfs_attr_gen(s->bucket, key);
	r = p->ops->head(p->st, key, m);
	if (r == 0)
		bfs_attr_meta_put(s->bucket, key, m, gen);
	return r;
}

static int cw_get_range(void *vst, const char *key, uint64_t off, size_t len,
			char *buf, size_t *got, const char *if_match)
{
	struct cw_state *s = vst;

	return s->inner->ops->get_range(s->inner->st, key, off, len, buf, got,
					if_match);
}

static int cw_get_fd(void *vst, const char *key, int fd, struct bfs_meta *m)
{
	struct cw_state *s = vst;

	return s->inner->ops->get_fd(s->inner->st, key, fd, m);
}

static int cw_put_fd(void *vst, const char *key, int fd, uint64_t size,
		     const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->put_fd(s->inner->st, key, fd, size, m, etag_out,
				      etag_len);

	cw_changed(s, key);
	return r;
}

static int cw_put_buf(void *vst, const char *key, const void *data,
		      size_t len, const struct bfs_meta *m, char *etag_out,
		      size_t etag_len)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->put_buf(s->inner->st, key, data, len, m,
				       etag_out, etag_len);

	cw_changed(s, key);
	return r;
}

static int cw_del(void *vst, const char *key)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->del(s->inner->st, key);

	cw_changed_tree(s, key);
	return r;
}

static int cw_list(void *vst, const char *prefix, unsigned flags,
		   bfs_list_fn fn, void *arg)
{
	struct cw_state *s = vst;

	return s->inner->ops->list(s->inner->st, prefix, flags, fn, arg);
}

static int cw_copy(void *vst, const char *src, const char *dst,
		   const struct bfs_meta *m)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->copy(s->inner->st, src, dst, m);

	cw_changed(s, dst);
	return r;
}

static int cw_set_meta(void *vst, const char *key, const struct bfs_meta *m)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->set_meta(s->inner->st, key, m);

	cw_changed(s, key);
	return r;
}

static int cw_rename(void *vst, const char *src, const char *dst)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->rename(s->inner->st, src, dst);

	cw_changed_tree(s, src);
	cw_changed_tree(s, dst);
	return r;
}

static int cw_presign(void *vst, const char *key, long expires, char **url)
{
	struct cw_state *s = vst;

	return s->inner->ops->presign(s->inner->st, key, expires, url);
}

static int cw_statfs(void *vst, uint64_t *total, uint64_t *avail)
{
	struct cw_state *s = vst;

	return s->inner->ops->statfs(s->inner->st, total, avail);
}

static int cw_mpu_begin(void *vst, const char *key, const struct bfs_meta *m,
			char *upload_id, size_t idlen)
{
	struct cw_state *s = vst;

	return s->inner->ops->mpu_begin(s->inner->st, key, m, upload_id, idlen);
}

static int cw_mpu_part(void *vst, const char *key, const char *upload_id,
		       unsigned number, int fd, uint64_t off, uint64_t len,
		       char *etag, size_t etag_len)
{
	struct cw_state *s = vst;

	return s->inner->ops->mpu_part(s->inner->st, key, upload_id, number,
				       fd, off, len, etag, etag_len);
}

static int cw_mpu_list_parts(void *vst, const char *key,
			     const char *upload_id,
			     struct bfs_mpu_part **parts, size_t *n)
{
	struct cw_state *s = vst;

	return s->inner->ops->mpu_list_parts(s->inner->st, key, upload_id,
					     parts, n);
}

static int cw_mpu_complete(void *vst, const char *key, const char *upload_id,
			   const struct bfs_mpu_part *parts, size_t n,
			   char *etag_out, size_t etag_len)
{
	struct cw_state *s = vst;
	int r = s->inner->ops->mpu_complete(s->inner->st, key, upload_id,
					    parts, n, etag_out, etag_len);

	cw_changed(s, key);
	return r;
}

static int cw_mpu_abort(void *vst, const char *key, const char *upload_id)
{
	struct cw_state *s = vst;

	return s->inner->ops->mpu_abort(s->inner->st, key, upload_id);
}

static int cw_mpu_list_uploads(void *vst, const char *prefix,
			       bfs_mpu_upload_fn fn, void *arg)
{
	struct cw_state *s = vst;

	return s->inner->ops->mpu_list_uploads(s->inner->st, prefix, fn, arg);
}

/* src_st may be another bucket's wrapper: its inner state is what the
 * inner provider knows. */
static int cw_copy_from(void *vst, void *src_st, const char *src,
			const char *dst)
{
	struct cw_state *s = vst, *o = src_st;
	int r;

	if (o && o->ops.destroy == cw_destroy) {
		if (o->inner->ops != s->inner->ops)
			return BFS_ERR_NOTSUP;
		src_st = o->inner->st;
	}
	r = s->inner->ops->copy_from(s->inner->st, src_st, src, dst);
	cw_changed(s, dst);
	return r;
}

int bfs_cache_wrap(struct bfs_provider *inner, const char *bucket,
		   struct bfs_provider **out)
{
	const struct bfs_provider_ops *in = inner->ops;
	struct bfs_provider *p = NULL;
	struct cw_state *s = NULL;
	int r = BFS_ERR_NOMEM;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))) || !(s = calloc(1, sizeof(*s))) ||
	    !(s->bucket = strdup(bucket)))
		goto out;
	s->inner = inner;
	s->ops.name = in->name;
	s->ops.create = NULL;        /* made by bfs_cache_wrap only */
	s->ops.destroy = cw_destroy;
#define CW_OP(op) s->ops.op = in->op ? cw_##op : NULL
	CW_OP(head);
	CW_OP(get_range);
	CW_OP(get_fd);
	CW_OP(put_fd);
	CW_OP(put_buf);
	CW_OP(del);
	CW_OP(list);
	CW_OP(copy);
	CW_OP(set_meta);
	CW_OP(rename);
	CW_OP(presign);
	CW_OP(statfs);
	CW_OP(mpu_begin);
	CW_OP(mpu_part);
	CW_OP(mpu_list_parts);
	CW_OP(mpu_complete);
	CW_OP(mpu_abort);
	CW_OP(mpu_list_uploads);
	CW_OP(copy_from);
#undef CW_OP
	p->ops = &s->ops;
	p->st = s;
	p->read_only = inner->read_only;
	*out = p;
	p = NULL;
	s = NULL;
	r = 0;
out:
	if (s)
		free(s->bucket);
	free(s);
	free(p);
	return r;
}

int bfs_cache_is_wrapped(const struct bfs_provider *p)
{
	return p && p->ops && p->ops->destroy == cw_destroy;
}

int bfs_cache_head_fresh(struct bfs_provider *p, const char *key,
			 struct bfs_meta *m)
{
	struct cw_state *s;
	uint64_t gen;
	int r;

	if (!bfs_cache_is_wrapped(p))
		return p->ops->head(p->st, key, m);
	s = p->st;
	gen = bfs_attr_gen(s->bucket, key);
	r = s->inner->ops->head(s->inner->st, key, m);
	if (r == 0)
		bfs_attr_meta_put(s->bucket, key, m, gen);
	return r;
}
