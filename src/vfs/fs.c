/*
 * fs.c - the filesystem operations of src/vfs, path-based like libfuse's
 * high-level API (src/vfs/vfs.c calls them through bfs_fs_operations()
 * for the bfs_vfs_* entry points; src/fuse/ops.c maps fuse_operations
 * onto those).  No FUSE header here: handles are struct bfs_vfs_file,
 * the caller is bfs_vfs_caller_cur().
 *
 * Every operation resolves its path through the routing layer
 * (bfs_route_resolve: root, control file or bucket + relative path), turns
 * the relative path into a remote key (bfs_route_key, which refuses unsafe
 * keys) and calls the bucket's provider.  Results are BFS_ERR_* codes
 * (the FUSE adapter maps them to errno).
 *
 * Attributes: the open-file table first (staged size, mode, mtime of a file
 * being written), then the attribute cache (filled by listings), then
 * head(key), head(key + "/") (folder marker) and a one-entry listing of
 * key + "/" (implicit folder).
 *
 * Data: writes are staged in the shared open-file state (ofile.c) and
 * uploaded by flush/fsync/release; reads of a clean file go through the
 * block cache (readcache.c: cached blocks in cache_dir, parallel prefetch
 * on sequential reads), reads of a staged file go to its staging file.
 * Listings come from attrcache.c (cached, attributes completed by
 * parallel HEADs).
 *
 * Control files get a per-open snapshot of their rendering (direct_io); an
 * open for writing is one write session (route/control.c): write() feeds
 * it, a flush (close) by a process that wrote to it applies what it took,
 * release ends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_perm.h"
#include "bfs_store.h"
#include "bfs_strset.h"
#include "bfs_view.h"
#include "attrcache.h"
#include "vfs_int.h"
#include "readcache.h"

#define FS_LIST_MAX (10u * 1000 * 1000)   /* entries in one readdir */
#define FS_MOVE_MAX (1u * 1000 * 1000)    /* keys in one folder rename */
#define FS_BIG_SPACE (256ULL << 40)       /* statfs when unknown: 256 TiB */

struct bfs_fs_ctx bfs_fs;

/* One open() of a file or control file; linked in fs_fhs until release
 * (so a shutdown with files still open can free them). */
struct fs_fh {
	struct fs_fh *prev, *next;   /* fs_fh_mu */
	int ctl;                  /* control file kind, -1 for a file,
				   * FS_FH_DIR for a bucket folder */
	struct bfs_buf snap;      /* control file content at open */
	struct bfs_ctl_session *sess; /* control file opened for writing */
	struct bfs_ofile *of;     /* referenced (files) */
	struct bfs_rc_file *rc;   /* read cache state (readcache.c locks it) */
	struct fs_dirlist *dir;   /* bucket folders: the entries readdir
				   * hands out (libfuse serializes readdir
				   * calls on one handle) */
	pid_t opener;             /* the process (thread) that opened it */
	atomic_int flushed;       /* its opener close()d it (FLUSH) and no
				   * read or write came since: the handle is
				   * going, its RELEASE on the way (fs_unlink) */
};

#define FS_FH_DIR (-2)

static struct timespec fs_start_time;
static pthread_mutex_t fs_fh_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fs_fh *fs_fhs;                 /* fs_fh_mu; every live handle */

static inline struct fs_fh *get_fh(struct bfs_vfs_file *fi)
{
	return fi ? (struct fs_fh *)(uintptr_t)fi->fh : NULL;
}

static void fill_dir(struct stat *st, uint32_t perm)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | perm;
	st->st_nlink = 2;
	st->st_uid = bfs_fs.uid;
	st->st_gid = bfs_fs.gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_blocks = 8;
	st->st_mtim = st->st_ctim = st->st_atim = fs_start_time;
}

/* A folder of bucket b that has no marker with metadata (implied by a
 * prefix): the bucket's owner, group and dir_mode. */
static void fill_implied_dir(const struct bfs_rbucket *b, struct stat *st)
{
	fill_dir(st, b ? b->dir_mode : BFS_DIR_MODE_DEFAULT);
	if (b) {
		st->st_uid = b->uid;
		st->st_gid = b->gid;
	}
}

void bfs_fs_bucket_dir_stat(const struct bfs_rbucket *b, struct stat *st)
{
	fill_dir(st, b ? b->mode : BFS_BUCKET_MODE_DEFAULT);
	if (b) {
		st->st_uid = b->uid;
		st->st_gid = b->gid;
	}
}

void bfs_fs_meta_to_stat(const struct bfs_rbucket *b, const struct bfs_meta *m,
			 int dir, struct stat *st)
{
	uint32_t type = m->mode & S_IFMT, perm;

	memset(st, 0, sizeof(*st));
	if (dir)
		type = S_IFDIR;
	else if (!type || (type != S_IFREG && type != S_IFLNK && type != S_IFDIR))
		type = S_IFREG;
	if (m->has_mode && (m->mode & 07777))
		perm = m->mode & 07777;
	else if (type == S_IFLNK)
		perm = 0777;
	else if (type == S_IFDIR)
		perm = b ? b->dir_mode : BFS_DIR_MODE_DEFAULT;
	else
		perm = b ? b->file_mode : BFS_FILE_MODE_DEFAULT;
	st->st_mode = type | perm;
	st->st_nlink = type == S_IFDIR ? 2 : 1;
	st->st_uid = m->has_uid ? m->uid : b ? b->uid : bfs_fs.uid;
	st->st_gid = m->has_gid ? m->gid : b ? b->gid : bfs_fs.gid;
	st->st_size = type == S_IFDIR ? 4096 : (off_t)m->size;
	st->st_blksize = type == S_IFDIR ? 4096 : BFS_FS_IO_SIZE;
	st->st_blocks = (blkcnt_t)(((uint64_t)st->st_size + 511) / 512);
	st->st_mtim.tv_sec = m->mtime;
	st->st_mtim.tv_nsec = m->mtime_nsec;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* The provider of a bucket route, or NULL (status error). */
static struct bfs_provider *prov_of(const struct bfs_route *rt)
{
	return rt->b ? rt->b->prov : NULL;
}

/* The error for a path that cannot be resolved, when creating something. */
static int create_route_err(const char *path, int r)
{
	const char *p = path + 1;

	if (r == BFS_ERR_NOTFOUND && !strchr(p, '/'))
		return (p[0] == '.' || p[0] == '@') ? BFS_ERR_INVAL :
						      BFS_ERR_PERM;
	return r;
}

static char *cat3(const char *a, const char *b, const char *c);

/* A one-level listing that stops at the first entry: not the folder's
 * own marker and, with skip_kept, not a file unlinked while open whose
 * object is kept under its name (fence.c).  Such a file still makes its
 * folder exist (listings show the folder until its last close), but does
 * not make it non-empty. */
struct first_ctx {
	const char *bucket;
	const char *prefix;           /* the listed folder, "a/" */
	int skip_kept;
	int found;
};

static int stop_first(void *arg, const char *name, int is_dir,
		      const struct bfs_meta *meta)
{
	struct first_ctx *c = arg;
	char *k;
	int hidden;

	if (name && !name[0])
		return 0;     /* the folder's own marker */
	if (name && !is_dir && c->skip_kept) {
		if (!(k = cat3(c->prefix, name, "")))
			hidden = 0;       /* shown: at worst ENOTEMPTY */
		else
			hidden = bfs_gone_hides_etag(c->bucket, k, meta ?
						     meta->etag : NULL);
		free(k);
		if (hidden)
			return 0;
	}
	c->found = 1;
	return 1;
}

/*
 * Attributes of key in bucket b (not a bucket root): open file, cache,
 * the folder's record of names (bfs_dir_lookup: absent, or which of the
 * requests can answer), head(key), head(key/), one-entry listing of key/.
 */
int lookup_key(struct bfs_rbucket *b, const char *key, struct stat *st)
{
	struct bfs_provider *p = b->prov;
	struct bfs_ofile *of;
	struct bfs_meta m;
	struct first_ctx fc;
	size_t klen = strlen(key);
	char *dkey = NULL;
	int r, gone, hint;

	if ((of = bfs_ofile_find(b->name, key)) != NULL) {
		bfs_ofile_stat(of, st);
		bfs_ofile_put(of);
		return 0;
	}
	/* unlinked while open, its object kept: a cached entry may be it */
	gone = bfs_gone_hidden(b->name, key);
	if (!gone && bfs_attr_get(b->name, key, st))
		return 0;
	/* the folder's names, probed by the first lookup in it */
	if ((hint = bfs_dir_lookup(b, key)) == BFS_DIR_ABSENT)
		return BFS_ERR_NOTFOUND;
	if (hint < 0 || !p) {
		r = hint < 0 ? hint : BFS_ERR_IO;
		goto out;
	}
	memset(&m, 0, sizeof(m));
	r = hint == BFS_DIR_FOLDER ? BFS_ERR_NOTFOUND
				   : p->ops->head(p->st, key, &m);
	if (r == 0 && !(gone && bfs_gone_hides_etag(b->name, key, m.etag))) {
		bfs_fs_meta_to_stat(b, &m, 0, st);
		goto found;
	}
	if (r == 0)
		r = BFS_ERR_NOTFOUND;     /* the kept object: look for a folder */
	if (r != BFS_ERR_NOTFOUND)
		goto out;
	if (klen + 1 > BFS_KEY_MAX) {
		r = BFS_ERR_NOTFOUND;
		goto out;
	}
	if (!(dkey = malloc(klen + 2))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	memcpy(dkey, key, klen);
	dkey[klen] = '/';
	dkey[klen + 1] = '\0';
	memset(&m, 0, sizeof(m));
	r = p->ops->head(p->st, dkey, &m);
	if (r == 0) {
		bfs_fs_meta_to_stat(b, &m, 1, st);
		goto found;
	}
	if (r != BFS_ERR_NOTFOUND)
		goto out;
	if (hint == BFS_DIR_FOLDER) {
		fill_implied_dir(b, st);  /* its parent's listing showed it */
		goto found;
	}
	/* An implicit folder: any key below it, unsafe ones too, since the
	 * listing of its parent shows it for those (a/b//c shows a/b). */
	fc.bucket = b->name;
	fc.prefix = dkey;
	fc.skip_kept = 0;
	fc.found = 0;
	if ((r = p->ops->list(p->st, dkey, BFS_LIST_UNSAFE, stop_first,
			      &fc)) != 0)
		goto out;
	if (!fc.found) {
		r = BFS_ERR_NOTFOUND;
		goto out;
	}
	fill_implied_dir(b, st);
found:
	/* with the etag the open of a file pins (bfs_ofile_pin_read_version) */
	bfs_attr_put_meta(b->name, key, st, m.etag[0] ? m.etag : NULL);
	bfs_xattr_note(b->name, key, &m);
	r = 0;
out:
	if (r != 0 && r != BFS_ERR_NOTFOUND)
		bfs_rbucket_note(b, r);
	free(dkey);
	return r;
}

/*
 * Sizes of the control files for getattr and the root's readdir without
 * rendering each time: .buckets is a GROUP BY over the whole index under
 * the store mutex, and `ls -l` of the root or a stat loop would run it
 * per call.  A rendering (by ctl_stat or by an open, which renders its
 * snapshot anyway) is remembered for CTL_SIZE_TTL_MS, the kernel's own
 * attr_timeout; this mount's writes to a control file forget it.  Reads
 * never depend on the size: every open reads its own snapshot with
 * direct_io up to its end.  .metrics, rendered from atomics and changing
 * all the time, is rendered every time.
 */
#define CTL_SIZE_TTL_MS 1000

static pthread_mutex_t ctl_size_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	size_t size;
	struct timespec at;          /* CLOCK_MONOTONIC; 0: unknown */
} ctl_sizes[BFS_CTL_COUNT];      /* ctl_size_mu */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remembers size as kind's rendered size now (SIZE_MAX: forgets it). */
static void ctl_size_note(int kind, size_t size)
{
	if (kind < 0 || kind >= BFS_CTL_COUNT || kind == BFS_CTL_METRICS)
		return;
	pthread_mutex_lock(&ctl_size_mu);
	ctl_sizes[kind].size = size;
	if (size == SIZE_MAX)
		memset(&ctl_sizes[kind].at, 0, sizeof(ctl_sizes[kind].at));
	else
		clock_gettime(CLOCK_MONOTONIC, &ctl_sizes[kind].at);
	pthread_mutex_unlock(&ctl_size_mu);
}

/* 1 and *size when kind was rendered within CTL_SIZE_TTL_MS. */
static int ctl_size_known(int kind, size_t *size)
{
	int64_t at;
	int known = 0;

	if (kind < 0 || kind >= BFS_CTL_COUNT || kind == BFS_CTL_METRICS)
		return 0;
	pthread_mutex_lock(&ctl_size_mu);
	at = (int64_t)ctl_sizes[kind].at.tv_sec * 1000 +
	     ctl_sizes[kind].at.tv_nsec / 1000000;
	if (at && mono_ms() - at < CTL_SIZE_TTL_MS) {
		*size = ctl_sizes[kind].size;
		known = 1;
	}
	pthread_mutex_unlock(&ctl_size_mu);
	return known;
}

static int ctl_stat(int kind, struct stat *st)
{
	struct bfs_buf b;
	int64_t admin_gid;
	size_t size = 0;

	if (!ctl_size_known(kind, &size)) {
		bfs_buf_init(&b, BFS_CTL_RENDER_MAX);
		if (bfs_ctl_render(bfs_fs.reg, kind, &b) == 0) {
			size = b.len;
			ctl_size_note(kind, size);
		}
		bfs_buf_free(&b);
	}
	memset(st, 0, sizeof(*st));
	admin_gid = atomic_load(&bfs_fs.admin_gid);
	/* INTERFACE.md "Who may do what": the mounting user's; the routing
	 * files also writable by admin_group when one is set */
	if (!bfs_ctl_writable(kind))
		st->st_mode = S_IFREG | 0444;
	else
		st->st_mode = S_IFREG | (admin_gid >= 0 ? 0664 : 0644);
	st->st_nlink = 1;
	st->st_uid = bfs_fs.uid;
	st->st_gid = bfs_ctl_writable(kind) && admin_gid >= 0 ?
		     (gid_t)admin_gid : bfs_fs.gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_ctim = st->st_atim = st->st_mtim;
	return 0;
}

/*
 * The context folder of a view (@chat/ID) exists for every valid ID its
 * bucket serves and looks like that bucket's folder: owner, group and
 * mode of the routed bucket's folder (INTERFACE.md "Who may do what").
 * One function, so the bucket-folder attributes have one source.
 */
static void view_ctx_stat(const struct bfs_rbucket *b, struct stat *st)
{
	bfs_fs_bucket_dir_stat(b, st);
}

/* lookup_key, and once more after dropping the caches when the index
 * places the file in this bucket (moved here by bucketctl context move
 * after a listing called the name absent). */
static int lookup_indexed(const struct bfs_route *rt, const char *key,
			  struct stat *st)
{
	int r = lookup_key(rt->b, key, st);

	if (r == BFS_ERR_NOTFOUND && rt->indexed) {
		bfs_attr_drop(rt->b->name, key);
		r = lookup_key(rt->b, key, st);
	}
	return r;
}

/*
 * Attributes of the bucket route rt of path (below a bucket root) and its
 * key (*key, caller frees).  A context file served from another bucket
 * (rt->elsewhere) that is gone there - moved into the routed bucket
 * meanwhile by bucketctl context move - is routed afresh: *rt is then
 * replaced by the new route, so the caller works on where the file is.
 */
static int route_lookup(const char *path, struct bfs_route *rt, char **key,
			struct stat *st)
{
	struct bfs_route again;
	int r;

	*key = NULL;
	if ((r = bfs_route_key(rt, 0, key)) != 0)
		return r;
	r = lookup_indexed(rt, *key, st);
	if (r != BFS_ERR_NOTFOUND || !rt->elsewhere)
		return r;
	if (bfs_route_resolve(bfs_fs.reg, path, &again) != 0)
		return r;
	if (again.kind != BFS_ROUTE_BUCKET ||
	    strcmp(again.b->name, rt->b->name) == 0) {
		bfs_route_clear(&again);
		return r;
	}
	bfs_route_clear(rt);
	*rt = again;                  /* the route's own strings move along */
	free(*key);
	*key = NULL;
	if ((r = bfs_route_key(rt, 0, key)) != 0)
		return r;
	return lookup_indexed(rt, *key, st);
}

static int fs_getattr(const char *path, struct stat *st,
		      struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);
	struct bfs_route rt;
	char *key = NULL;
	int r;

	if (fh && fh->of) {
		bfs_ofile_stat(fh->of, st);
		return 0;
	}
	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	if ((r = bfs_route_allows(&rt, BFS_ROP_LOOKUP)) != 0) {
		bfs_route_clear(&rt);
		return r;
	}
	switch (rt.kind) {
	case BFS_ROUTE_ROOT:
		fill_dir(st, 0755);
		r = 0;
		break;
	case BFS_ROUTE_CTL:
		r = ctl_stat(rt.ctl, st);
		break;
	case BFS_ROUTE_VIEW:
		fill_dir(st, 0755);
		r = 0;
		break;
	default:
		if (!rt.rel[0]) {
			bfs_fs_bucket_dir_stat(rt.b, st);
			r = 0;
			break;
		}
		if (rt.ctx_root) {
			view_ctx_stat(rt.b, st);
			r = 0;
			break;
		}
		r = route_lookup(path, &rt, &key, st);
		if (r == BFS_ERR_NOTFOUND && rt.dir_elsewhere) {
			/* a folder of the context's files in other buckets */
			view_ctx_stat(rt.b, st);
			r = 0;
		}
		break;
	}
	free(key);
	bfs_route_clear(&rt);
	return r;
}

/* ---- readdir ---- */

/*
 * The entries of one open bucket folder, numbered from 1 for the filler's
 * offsets: readdir runs libfuse's offset mode, because only that mode
 * gives the kernel the attributes of FUSE_FILL_DIR_PLUS entries in
 * libfuse < 3.17 (in the offset-0 mode 3.14 drops them, so `ls -l` sent
 * one LOOKUP per entry, and leaked a node reference per entry).  The
 * list is built at offset 0 (opendir, rewinddir) and read by offset
 * afterwards, so the offsets stay stable even if the listing cache
 * changes in between.
 */
struct fs_dent {
	size_t name;              /* offset in names */
	struct stat st;
	int plus;
};

struct fs_dirlist {
	struct fs_dent *e;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
};

static void dirlist_free(struct fs_dirlist *dl)
{
	if (!dl)
		return;
	free(dl->e);
	free(dl->names);
	free(dl);
}

static int dirlist_add(struct fs_dirlist *dl, const char *name,
		       const struct stat *st, int plus)
{
	size_t nl = strlen(name) + 1;
	struct fs_dent *d;

	if (dl->n == dl->cap) {
		size_t nc = dl->cap ? dl->cap * 2 : 64;
		struct fs_dent *ne = realloc(dl->e, nc * sizeof(*ne));

		if (!ne)
			return BFS_ERR_NOMEM;
		dl->e = ne;
		dl->cap = nc;
	}
	if (dl->nlen + nl > dl->ncap) {
		size_t nc = dl->ncap ? dl->ncap * 2 : 4096;
		char *nn;

		while (nc < dl->nlen + nl)
			nc *= 2;
		if (!(nn = realloc(dl->names, nc)))
			return BFS_ERR_NOMEM;
		dl->names = nn;
		dl->ncap = nc;
	}
	d = &dl->e[dl->n++];
	d->name = dl->nlen;
	memcpy(dl->names + dl->nlen, name, nl);
	dl->nlen += nl;
	if (st)
		d->st = *st;
	else
		memset(&d->st, 0, sizeof(d->st));
	d->plus = plus;
	return 0;
}

struct rd_ctx {
	struct fs_dirlist *dl;
	struct bfs_rbucket *b;
	const char *prefix;       /* listing prefix: "" or ends with '/' */
	size_t plen;
	struct bfs_strset names;  /* given to the filler ("a" and "a/" once) */
	char *keybuf;             /* prefix + name scratch */
	const char *rel;          /* context folders: the route's rel */
	int err;
};

/* One entry of bfs_dir_list (attrcache.c): complete attributes (plus)
 * are final unless a file being written here knows better; placeholders
 * (folders without a marker, failed HEADs) are resolved by lookup. */
static int rd_entry(void *arg, const char *name, const struct stat *lst,
		    int plus)
{
	struct rd_ctx *c = arg;
	struct bfs_ofile *of;
	struct stat st = *lst;
	size_t nlen = strlen(name);
	int r;

	if (bfs_strset_count(&c->names) >= FS_LIST_MAX) {
		BFS_WARN("%s/%s: listing cut at %u entries", c->b->name,
			 c->prefix, FS_LIST_MAX);
		return 1;
	}
	/* unlinked while open here, its object kept under the name */
	if (!S_ISDIR(st.st_mode) && c->plen + nlen <= BFS_KEY_MAX) {
		memcpy(c->keybuf, c->prefix, c->plen);
		memcpy(c->keybuf + c->plen, name, nlen + 1);
		if (bfs_gone_hidden(c->b->name, c->keybuf))
			return 0;
	}
	if ((r = bfs_strset_add(&c->names, name, 0)) <= 0) {
		if (r < 0) {
			c->err = r;
			return 1;
		}
		return 0;
	}
	if (plus && !S_ISDIR(st.st_mode) && c->plen + nlen <= BFS_KEY_MAX) {
		memcpy(c->keybuf, c->prefix, c->plen);
		memcpy(c->keybuf + c->plen, name, nlen + 1);
		if ((of = bfs_ofile_find(c->b->name, c->keybuf)) != NULL) {
			bfs_ofile_stat(of, &st);
			bfs_ofile_put(of);
		}
	}
	if ((r = dirlist_add(c->dl, name, &st, plus)) != 0) {
		c->err = r;
		return 1;
	}
	return 0;
}

/*
 * Open files directly in the folder that the listing did not show yet
 * (created, not uploaded until close).  The name is copied under the
 * open file's lock (bfs_ofile_child): a rename may rekey the file
 * meanwhile, and a file renamed out of the folder, whose key no longer
 * starts with the prefix, is not listed here.
 */
static int rd_open_file(void *arg, struct bfs_ofile *of)
{
	struct rd_ctx *c = arg;
	struct stat st;
	char *name = NULL;
	int r;

	r = bfs_ofile_child(of, c->b->name, c->prefix, c->plen, &st, &name);
	if (r == 0 && (r = bfs_strset_add(&c->names, name, 0)) == 1)
		r = dirlist_add(c->dl, name, &st, 1);
	else if (r == 1)
		r = 0;
	free(name);
	if (r < 0) {
		c->err = r;
		return 1;
	}
	return 0;
}

/* One indexed file of the context in another bucket (rd_elsewhere). */
static int rd_elsewhere_row(void *arg, const struct bfs_ctx_row *row)
{
	struct rd_ctx *c = arg;
	struct bfs_meta m;
	struct stat st;
	const char *name, *slash;
	size_t rl = strlen(c->rel);
	char *sub = NULL;
	int r, dir;

	if (bfs_strset_count(&c->names) >= FS_LIST_MAX) {
		BFS_WARN("%s/%s: listing cut at %u entries", c->b->name,
			 c->prefix, FS_LIST_MAX);
		return 1;
	}
	if (strncmp(row->rel, c->rel, rl) != 0 || row->rel[rl] != '/')
		return 0;
	name = row->rel + rl + 1;
	if (!name[0] || bfs_key_check(name, 0) != 0)
		return 0;
	slash = strchr(name, '/');
	dir = slash != NULL;
	if (dir) {
		if (!(sub = strndup(name, (size_t)(slash - name)))) {
			c->err = BFS_ERR_NOMEM;
			return 1;
		}
		name = sub;
	}
	if ((r = bfs_strset_add(&c->names, name, 0)) <= 0) {
		/* the current bucket's entry wins */
		free(sub);
		if (r < 0) {
			c->err = r;
			return 1;
		}
		return 0;
	}
	memset(&m, 0, sizeof(m));
	m.size = row->size;
	m.mode = row->mode;
	m.has_mode = row->mode != 0;
	m.uid = row->uid;
	m.has_uid = row->mode != 0;
	m.gid = row->gid;
	m.has_gid = row->mode != 0;
	m.mtime = row->mtime;
	if (dir)
		view_ctx_stat(c->b, &st);
	else
		/* a row without metadata (imported) looks like the
		 * context's other files: the routed bucket's defaults */
		bfs_fs_meta_to_stat(c->b, &m, 0, &st);
	r = dirlist_add(c->dl, name, &st, !dir);
	free(sub);
	if (r != 0) {
		c->err = r;
		return 1;
	}
	return 0;
}

/*
 * Stable paths across re-routing: a context folder lists its current
 * bucket (above) plus the context's indexed files that other buckets
 * hold below it, from ONE index query; a name the current bucket (or an
 * open file) already gave is not repeated.  Indexed files of the current
 * bucket that its (cached) listing does not show yet - moved in by
 * bucketctl context move - are added the same way.
 */
static int dirlist_elsewhere(struct bfs_route *rt, struct rd_ctx *c)
{
	int r;

	c->rel = rt->rel;
	r = bfs_route_ctx_elsewhere(bfs_fs.reg, rt, rd_elsewhere_row, c);
	return r != 0 ? r : c->err;
}

/* Builds the entry list of the bucket folder of rt ("." and ".." first). */
static int dirlist_build(struct bfs_route *rt, struct fs_dirlist *dl)
{
	struct rd_ctx c;
	struct stat st;
	char *prefix = NULL;
	int r;

	memset(&c, 0, sizeof(c));
	dl->n = 0;
	dl->nlen = 0;
	if (rt->rel[0])
		fill_implied_dir(rt->b, &st);
	else
		bfs_fs_bucket_dir_stat(rt->b, &st);
	if ((r = dirlist_add(dl, ".", &st, 0)) != 0 ||
	    (r = dirlist_add(dl, "..", NULL, 0)) != 0)
		goto out;
	if (!prov_of(rt)) {
		r = BFS_ERR_IO;
		goto out;
	}
	if ((r = bfs_route_key(rt, rt->rel[0] ? 1 : 0, &prefix)) != 0)
		goto out;
	c.dl = dl;
	c.b = rt->b;
	c.prefix = prefix;
	c.plen = strlen(prefix);
	if (!(c.keybuf = malloc(BFS_KEY_MAX + 2))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	r = bfs_dir_list(rt->b, prefix, rd_entry, &c);
	if (r == 0)
		r = c.err;
	if (r == 0 &&
	    (r = bfs_ofile_each(rt->b->name, prefix, rd_open_file, &c)) >= 0)
		r = c.err;
	if (r == 0 && rt->ctx_type >= 0)
		r = dirlist_elsewhere(rt, &c);
out:
	free(c.keybuf);
	bfs_strset_free(&c.names);
	free(prefix);
	return r;
}

/* The view folders (@general, @chat, @form) a bucket can serve now. */
static void readdir_views(void *buf, bfs_vfs_fill_t filler)
{
	int present[BFS_VIEW_COUNT];
	struct stat st;
	int v;

	bfs_registry_views(bfs_fs.reg, present, BFS_VIEW_COUNT);
	fill_dir(&st, 0755);
	for (v = 1; v < BFS_VIEW_COUNT; v++)
		if (present[v] &&
		    filler(buf, bfs_view_dir_name(v), &st, 0, 0) != 0)
			break;
}

/* @chat, @form: the IDs with an assignment or indexed files.  Their
 * attributes come from lookups (each ID may route to its own bucket). */
static int readdir_view_ids(const struct bfs_route *rt, void *buf,
			    bfs_vfs_fill_t filler)
{
	struct stat st;
	char **ids = NULL;
	size_t n = 0, i;
	int r;

	fill_dir(&st, 0755);
	filler(buf, ".", &st, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if ((r = bfs_route_ctx_ids(bfs_fs.reg, rt->ctx_type, &ids, &n)) != 0)
		return r;
	for (i = 0; i < n; i++)
		if (filler(buf, ids[i], NULL, 0, 0) != 0)
			break;
	bfs_registry_names_free(ids, n);
	return 0;
}

static int fs_readdir(const char *path, void *buf, bfs_vfs_fill_t filler,
		      off_t off, struct bfs_vfs_file *fi,
		      unsigned flags)
{
	struct fs_fh *fh = get_fh(fi);
	struct fs_dirlist *dl;
	struct bfs_route rt;
	struct stat st;
	char **names = NULL;
	size_t n = 0, i;
	int r;

	(void)flags;
	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	if ((r = bfs_route_allows(&rt, BFS_ROP_READDIR)) != 0)
		goto out;
	if (rt.kind == BFS_ROUTE_ROOT) {
		fill_dir(&st, 0755);
		filler(buf, ".", &st, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		for (i = 0; i < BFS_CTL_COUNT; i++) {
			ctl_stat((int)i, &st);
			filler(buf, bfs_ctl_name((int)i), &st, 0, BFS_VFS_FILL_PLUS);
		}
		if ((r = bfs_registry_names(bfs_fs.reg, &names, &n)) != 0)
			goto out;
		for (i = 0; i < n; i++) {
			struct bfs_rbucket *b = bfs_registry_get(bfs_fs.reg,
								 names[i]);
			int full;

			/* gone since the names were read: no attributes */
			bfs_fs_bucket_dir_stat(b, &st);
			full = filler(buf, names[i], &st, 0,
				      b ? BFS_VFS_FILL_PLUS : 0) != 0;
			bfs_rbucket_put(b);
			if (full)
				break;
		}
		readdir_views(buf, filler);
		r = 0;
		goto out;
	}
	if (rt.kind == BFS_ROUTE_VIEW) {
		r = readdir_view_ids(&rt, buf, filler);
		goto out;
	}
	if (!fh || fh->ctl != FS_FH_DIR || !fh->dir) {
		r = BFS_ERR_IO;           /* opendir made one for every folder */
		goto out;
	}
	dl = fh->dir;
	if (off <= 0 || (size_t)off > dl->n) {
		if (off > 0) {            /* past the end */
			r = 0;
			goto out;
		}
		if ((r = dirlist_build(&rt, dl)) != 0)
			goto out;
	}
	for (i = off > 0 ? (size_t)off : 0; i < dl->n; i++) {
		struct fs_dent *d = &dl->e[i];

		if (filler(buf, dl->names + d->name, &d->st, (off_t)(i + 1),
			   d->plus ? BFS_VFS_FILL_PLUS : 0) != 0)
			break;
	}
	r = 0;
out:
	if (r != 0)
		BFS_DEBUG("readdir %s: %s", path, bfs_strerror(r));
	bfs_registry_names_free(names, n);
	bfs_route_clear(&rt);
	return r;
}

/*
 * Bucket folders let the kernel cache what readdir returned
 * (cache_readdir), and keep it across opens (keep_cache) only while the
 * listing cache still holds the very listing that filled it
 * (bfs_dir_kept): a listing fetched again after the TTL, or dropped by a
 * change this mount made (also ones the kernel did not see, such as a
 * conflict copy), makes the kernel drop its copy.  Creates, unlinks and
 * renames through the mount drop the kernel's copy by themselves.  The
 * mount root is never cached (bucket names change with the config).
 * libfuse's high-level API passes these two bits to the kernel only from
 * 3.16.1 on (libfuse issue #821); with 3.14 they are dropped and every
 * opendir lists again (from the listing cache while it is fresh).
 */
static struct fs_fh *fh_new(int ctl, struct bfs_ofile *of);
static void fh_free(struct fs_fh *fh);

static int fs_opendir(const char *path, struct bfs_vfs_file *fi)
{
	struct bfs_route rt;
	char *prefix = NULL;
	int r;

	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	fi->fh = 0;
	fi->cache_readdir = 0;
	fi->keep_cache = 0;
	if (rt.kind == BFS_ROUTE_BUCKET) {
		struct fs_fh *fh;

		if (!(fh = fh_new(FS_FH_DIR, NULL)) ||
		    !(fh->dir = calloc(1, sizeof(*fh->dir)))) {
			fh_free(fh);
			r = BFS_ERR_NOMEM;
			goto out;
		}
		fi->fh = (uintptr_t)fh;
		if (prov_of(&rt) &&
		    bfs_route_key(&rt, rt.rel[0] ? 1 : 0, &prefix) == 0) {
			fi->cache_readdir = 1;
			/* a context folder also shows index rows of other
			 * buckets, which the listing cache does not track */
			fi->keep_cache = rt.ctx_type < 0 &&
					 bfs_dir_kept(rt.b->name, prefix) != 0;
		}
	}
	r = 0;
out:
	free(prefix);
	bfs_route_clear(&rt);
	return r;
}

static int fs_releasedir(const char *path, struct bfs_vfs_file *fi)
{
	(void)path;
	fh_free(get_fh(fi));
	return 0;
}

/* ---- open, create, read, write, close ---- */

static struct fs_fh *fh_new(int ctl, struct bfs_ofile *of)
{
	struct fs_fh *fh = calloc(1, sizeof(*fh));

	if (!fh)
		return NULL;
	fh->ctl = ctl;
	fh->of = of;
	fh->opener = bfs_vfs_caller_cur() ? bfs_vfs_caller_cur()->pid : 0;
	if (of)
		bfs_ofile_handle_open(of);
	bfs_buf_init(&fh->snap, BFS_CTL_RENDER_MAX);
	pthread_mutex_lock(&fs_fh_mu);
	fh->next = fs_fhs;
	if (fs_fhs)
		fs_fhs->prev = fh;
	fs_fhs = fh;
	pthread_mutex_unlock(&fs_fh_mu);
	bfs_metrics_handles_add(1);
	return fh;
}

static void fh_free(struct fs_fh *fh)
{
	if (!fh)
		return;
	pthread_mutex_lock(&fs_fh_mu);
	if (fh->prev)
		fh->prev->next = fh->next;
	else
		fs_fhs = fh->next;
	if (fh->next)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&fs_fh_mu);
	bfs_metrics_handles_add(-1);
	bfs_buf_free(&fh->snap);
	bfs_ctl_session_end(fh->sess, 0);
	bfs_rcache_close(fh->rc);
	dirlist_free(fh->dir);
	free(fh);
}

static void now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static int ctl_open(int kind, struct bfs_vfs_file *fi)
{
	struct fs_fh *fh;
	int acc = fi->flags & O_ACCMODE, r;

	if (!(fh = fh_new(kind, NULL)))
		return BFS_ERR_NOMEM;
	if ((r = bfs_ctl_render(bfs_fs.reg, kind, &fh->snap)) != 0 ||
	    (acc != O_RDONLY &&
	     (r = bfs_ctl_session_new(bfs_fs.reg, kind,
				      (fi->flags & O_APPEND) != 0,
				      &fh->sess)) != 0)) {
		fh_free(fh);
		return r;
	}
	ctl_size_note(kind, fh->snap.len);
	fi->fh = (uintptr_t)fh;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

/*
 * Sequential walks: cp -r, tar and rsync open the files of a folder one
 * after another in readdir (listing) order, and the first read of each
 * waited for a whole GET.  When a read-only open follows the open of the
 * file listed just before it, the first block (1 MiB) of each of the next
 * BFS_RC_NEXT_FILES files is fetched in the background (readcache.c
 * workers), so their first reads find it cached.  It is fetched at the
 * version the attribute cache shows, which is what their open reads (the
 * block cache key holds size, mtime and etag; the GET carries If-Match);
 * this mount's changes drop attributes and blocks, so its own writes are
 * never read stale.
 * One walk per mount is followed (walk_last); two interleaved walks just
 * get no prefetch.
 */
static pthread_mutex_t walk_mu = PTHREAD_MUTEX_INITIALIZER;
static char *walk_last;          /* walk_mu: "BUCKET/KEY" opened last */

static void walk_prefetch(struct bfs_rbucket *b, const char *key)
{
	char *cur, *prev, *next[BFS_RC_NEXT_FILES];
	size_t bl = strlen(b->name), kl = strlen(key), i, n = 0;
	struct bfs_ofile *of;
	struct stat st;
	int same;

	if (!(cur = malloc(bl + kl + 2)))
		return;
	memcpy(cur, b->name, bl);
	cur[bl] = '/';
	memcpy(cur + bl + 1, key, kl + 1);
	/* cur belongs to walk_last once published: the next open takes it
	 * as its prev and frees it, so it is compared before the unlock and
	 * never touched after; prev is ours alone from here on. */
	pthread_mutex_lock(&walk_mu);
	prev = walk_last;
	walk_last = cur;
	same = prev && !strncmp(prev, cur, bl + 1);
	pthread_mutex_unlock(&walk_mu);
	if (same)
		n = bfs_dir_next_files(b->name, key, prev + bl + 1, next,
				       BFS_RC_NEXT_FILES);
	free(prev);
	for (i = 0; i < n; i++) {
		/* an open file may hold staged bytes the server lacks */
		if ((of = bfs_ofile_find(b->name, next[i])) != NULL)
			bfs_ofile_put(of);
		else if (bfs_attr_get(b->name, next[i], &st) &&
			 S_ISREG(st.st_mode))
			bfs_rcache_prefetch(b, next[i], (uint64_t)st.st_size,
					    &st.st_mtim);
		free(next[i]);
	}
}

/*
 * list_metadata = listing hands the kernel a listing's attributes (the
 * bucket's owner and file_mode) for objects no HEAD has told yet, and the
 * kernel's check (default_permissions) used those.  So an open in that
 * mode checks the caller again against what its lookup found: an object
 * another client stored 0600 stays closed to others (INTERFACE.md "Who
 * may do what").  0 or BFS_ERR_ACCESS.
 */
int bfs_fs_listing_access(const struct bfs_rbucket *b, const struct stat *st,
			  unsigned want)
{
	const struct bfs_vfs_caller *fc = bfs_vfs_caller_cur();
	struct bfs_perm_who who;
	gid_t g[64];
	uint32_t groups[64];
	int n, i;

	if (bfs_dir_list_mode(b) != BFS_LIST_META_LISTING || !fc)
		return 0;
	memset(&who, 0, sizeof(who));
	who.uid = (uint32_t)fc->uid;
	who.gid = (uint32_t)fc->gid;
	if (bfs_perm_may(st->st_mode, st->st_uid, st->st_gid, &who, want))
		return 0;
	/* refused by the primary ids alone: the supplementary groups may
	 * still grant it (read from /proc only then) */
	if ((n = bfs_vfs_caller_groups(fc, 64, g)) > 0) {
		for (i = 0; i < n && i < 64; i++)
			groups[i] = (uint32_t)g[i];
		who.groups = groups;
		who.ngroups = (size_t)(n < 64 ? n : 64);
		if (bfs_perm_may(st->st_mode, st->st_uid, st->st_gid, &who,
				 want))
			return 0;
	}
	return BFS_ERR_ACCESS;
}

static int fs_open(const char *path, struct bfs_vfs_file *fi)
{
	struct bfs_route rt;
	struct bfs_ofile *of = NULL;
	struct fs_fh *fh = NULL;
	struct stat st;
	char *key = NULL;
	int r, acc = fi->flags & O_ACCMODE, wr, trunc, op;

	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	trunc = (fi->flags & O_TRUNC) != 0;
	wr = acc != O_RDONLY || trunc;
	op = acc != O_RDONLY ? BFS_ROP_OPEN_WRITE :
	     trunc ? BFS_ROP_OPEN_TRUNC : BFS_ROP_OPEN_READ;
	if ((r = bfs_route_allows(&rt, op)) != 0)
		goto out;
	if (rt.kind == BFS_ROUTE_CTL) {
		r = ctl_open(rt.ctl, fi);
		bfs_route_clear(&rt);
		return r;
	}
	if ((r = bfs_route_key(&rt, 0, &key)) != 0)
		goto out;
	if (!(of = bfs_ofile_find(rt.b->name, key))) {
		free(key);
		if ((r = route_lookup(path, &rt, &key, &st)) != 0)
			goto out;
		/* route_lookup may have routed afresh, to another bucket */
		if ((r = bfs_route_allows(&rt, op)) != 0)
			goto out;
		if (S_ISDIR(st.st_mode)) {
			r = BFS_ERR_ISDIR;
			goto out;
		}
		if ((r = bfs_fs_listing_access(rt.b, &st, (wr ? BFS_PERM_W : 0) |
					       (acc != O_WRONLY ? BFS_PERM_R : 0))) != 0)
			goto out;
		if (S_ISLNK(st.st_mode)) {
			/* The kernel took a symlink for a file: a listing
			 * (list_metadata = listing) showed it before a HEAD
			 * told its type.  ESTALE makes the VFS look the path
			 * up again (LOOKUP_REVAL), which now finds the link. */
			bfs_route_clear(&rt);
			free(key);
			return BFS_ERR_STALE;
		}
		if ((r = bfs_ofile_get(rt.b, key, &st, &of, NULL)) != 0)
			goto out;
	} else if (bfs_dir_list_mode(rt.b) == BFS_LIST_META_LISTING) {
		bfs_ofile_stat(of, &st);
		if ((r = bfs_fs_listing_access(rt.b, &st, (wr ? BFS_PERM_W : 0) |
					       (acc != O_WRONLY ? BFS_PERM_R : 0))) != 0)
			goto out;
	}
	bfs_ofile_pin_read_version(of);
	if (trunc && wr) {
		if ((r = bfs_ofile_open_trunc(of)) != 0)
			goto out;
	}
	if (!(fh = fh_new(-1, of))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	of = NULL;
	fi->fh = (uintptr_t)fh;
	if (!wr)
		walk_prefetch(rt.b, key);
	r = 0;
out:
	bfs_ofile_put(of);
	free(key);
	bfs_route_clear(&rt);
	return r;
}

/*
 * O_EXCL: 0 when key is free to create, BFS_ERR_EXISTS when something has
 * the name, or the lookup's error.  The name as a lookup sees it (an open
 * file, the attribute cache, the folder's record of names, the server),
 * then, on a remote bucket, one HEAD of the exact key: the record may be
 * a listing TTL old, and an object another client stored since must not
 * be overwritten by an exclusive create.  So cp, rsync and install cost a
 * HEAD and a PUT per file in a folder the record knows, not HEAD, HEAD,
 * LIST and PUT.
 */
static int excl_absent(struct bfs_rbucket *b, const char *key)
{
	struct bfs_meta m;
	struct stat st;
	int r;

	r = lookup_key(b, key, &st);
	if (r == 0)
		return BFS_ERR_EXISTS;
	if (r != BFS_ERR_NOTFOUND)
		return r;
	if (b->kind == BFS_PROV_LOCAL)
		return 0;               /* the lookup was a system call */
	if (!b->prov)
		return BFS_ERR_IO;
	memset(&m, 0, sizeof(m));
	r = bfs_cache_head_fresh(b->prov, key, &m);
	if (r == BFS_ERR_NOTFOUND)
		return 0;
	if (r != 0) {
		bfs_rbucket_note(b, r);
		return r;
	}
	/* an object kept for a reader after its unlink is not the name's */
	if (bfs_gone_hidden(b->name, key) &&
	    bfs_gone_hides_etag(b->name, key, m.etag))
		return 0;
	bfs_attr_drop(b->name, key);     /* the record said absent: wrong */
	return BFS_ERR_EXISTS;
}

static int fs_create(const char *path, mode_t mode, struct bfs_vfs_file *fi)
{
	const struct bfs_vfs_caller *fc = bfs_vfs_caller_cur();
	struct bfs_route rt;
	struct bfs_ofile *of = NULL;
	struct fs_fh *fh = NULL;
	char *key = NULL;
	int r;

	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return create_route_err(path, r);
	if ((r = bfs_route_allows(&rt, BFS_ROP_CREATE)) != 0)
		goto out;
	if (!prov_of(&rt)) {
		r = BFS_ERR_IO;
		goto out;
	}
	if ((r = bfs_route_key(&rt, 0, &key)) != 0)
		goto out;
	if ((fi->flags & O_EXCL) && (r = excl_absent(rt.b, key)) != 0)
		goto out;
	if ((r = bfs_ofile_get(rt.b, key, NULL, &of, NULL)) != 0)
		goto out;
	if ((r = bfs_ofile_create_reset(of, S_IFREG | (mode & 07777),
					fc ? fc->uid : bfs_fs.uid,
					fc ? fc->gid : bfs_fs.gid)) != 0)
		goto out;
	bfs_attr_drop(rt.b->name, key);
	if (!(fh = fh_new(-1, of))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	of = NULL;
	fi->fh = (uintptr_t)fh;
	r = 0;
out:
	bfs_ofile_put(of);
	free(key);
	bfs_route_clear(&rt);
	return r;
}

static int ctl_read(struct fs_fh *fh, char *buf, size_t size, off_t off)
{
	size_t n;

	if (off < 0 || (uint64_t)off >= fh->snap.len)
		return 0;
	n = fh->snap.len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(buf, fh->snap.p + off, n);
	return (int)n;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);

	(void)path;
	if (!fh)
		return BFS_ERR_BADF;
	if (fh->ctl >= 0)
		return ctl_read(fh, buf, size, off);
	atomic_store(&fh->flushed, 0);
	return bfs_ofile_read(fh->of, &fh->rc, buf, size, off);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);
	struct bfs_ofile *of;
	int r;

	(void)path;
	if (!fh)
		return BFS_ERR_BADF;
	if (fh->ctl >= 0) {
		if (!fh->sess)
			return BFS_ERR_BADF;
		if (off < 0)
			return BFS_ERR_INVAL;
		r = bfs_ctl_session_write(fh->sess, buf, size, (uint64_t)off,
					  fi->lock_owner);
		return r ? r : (int)size;
	}
	atomic_store(&fh->flushed, 0);
	of = fh->of;
	r = bfs_ofile_write(of, buf, size, off);
	return r ? r : (int)size;
}

static int upload_fh(struct fs_fh *fh)
{
	int r;

	if (!fh || fh->ctl >= 0)
		return 0;
	r = bfs_ofile_sync(fh->of, bfs_fs.upload_timeout);
	return r;
}

/*
 * close() and fsync() return 0 only once the provider stored the data and
 * report a failed upload (after retries for upload_timeout seconds) as
 * BFS_ERR_IO, EIO to the user (INTERFACE.md "File semantics"), except "no
 * space" and "read-only" which say more.  The data stays staged and journaled (upload.c).
 */
static int upload_result(int r)
{
	if (r == 0)
		return 0;
	if (r == BFS_ERR_NOSPC || r == BFS_ERR_READONLY)
		return r;
	return BFS_ERR_IO;
}

/*
 * Flush comes with every close() of a descriptor (dup and fork make
 * several per open), release once after the last, and only flush's answer
 * reaches close().  So a flush of a control-file session by a process that
 * wrote to it applies what was written since the previous one (route/
 * control.c): with one writer (the common case) that is the whole session,
 * and its close() reports EINVAL.
 */
static int fs_flush(const char *path, struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);

	(void)path;
	if (fh && fh->sess) {
		int r = bfs_ctl_session_commit(fh->sess, fi->lock_owner);

		ctl_size_note(fh->ctl, SIZE_MAX);   /* it may have applied */
		return r;
	}
	/* a close by another process (a forked child closing what it
	 * inherited) says nothing of the opener's use of it */
	if (fh && bfs_vfs_caller_cur() &&
	    bfs_vfs_caller_cur()->pid == fh->opener)
		atomic_store(&fh->flushed, 1);
	return upload_result(upload_fh(fh));
}

static int fs_fsync(const char *path, int datasync, struct bfs_vfs_file *fi)
{
	(void)path;
	(void)datasync;
	return upload_result(upload_fh(get_fh(fi)));
}

static int fs_release(const char *path, struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);

	(void)path;
	if (!fh)
		return 0;
	if (fh->sess) {
		/* flush applied the session; writes no flush saw apply now */
		bfs_ctl_session_end(fh->sess, 1);
		fh->sess = NULL;
		ctl_size_note(fh->ctl, SIZE_MAX);
	}
	if (fh->of) {
		/* flush (close) already waited; what is still dirty (a failed
		 * upload, writes after the flush) goes to the pending queue,
		 * which retries it until it is stored. */
		if (bfs_ofile_handle_close(fh->of))
			bfs_upq_add(fh->of);
		bfs_ofile_put(fh->of);
	}
	fh_free(fh);
	return 0;
}

/* ---- truncate and attributes ---- */

/*
 * +1 ref on the open file of a bucket route: the table's entry, else a new
 * one for the existing object.  BFS_ERR_ISDIR for a folder.
 */
static int route_ofile(struct bfs_route *rt, struct bfs_ofile **out)
{
	struct stat st;
	char *key = NULL;
	int r;

	*out = NULL;
	if ((r = bfs_route_key(rt, 0, &key)) != 0)
		goto out;
	if ((*out = bfs_ofile_find(rt->b->name, key)) != NULL) {
		r = 0;
		goto out;
	}
	if ((r = lookup_key(rt->b, key, &st)) != 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		r = BFS_ERR_ISDIR;
		goto out;
	}
	if ((r = bfs_ofile_get(rt->b, key, &st, out, NULL)) != 0)
		goto out;
	r = 0;
out:
	free(key);
	return r;
}

/*
 * truncate(2) and ftruncate(2).  With a handle (path may be NULL for an
 * unlinked file) the open state is changed and uploaded at close; a path
 * nobody has open is staged, cut and uploaded at once.  "Nobody" is
 * decided under the open file's lock against its handle count
 * (bfs_ofile_truncate_sync), not by whether the file was in the table: a
 * file whose last handle is being released may still be there, and its
 * release may already have seen it clean, so nobody else would upload the
 * cut.
 */
static int fs_truncate(const char *path, off_t size, struct bfs_vfs_file *fi)
{
	struct fs_fh *fh = get_fh(fi);
	struct bfs_route rt;
	struct bfs_ofile *of = NULL;
	int r, ours = 0;

	if (size < 0)
		return BFS_ERR_INVAL;
	if (fh && fh->ctl >= 0)
		return 0;      /* `>` on a control file never wipes it */
	if (fh) {
		of = fh->of;
		return bfs_ofile_truncate(of, (uint64_t)size);
	}
	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	/* a control file: accepted, never wiped */
	if ((r = bfs_route_allows(&rt, BFS_ROP_TRUNCATE)) != 0 ||
	    !bfs_route_has_key(&rt))
		goto out;
	if ((r = route_ofile(&rt, &of)) != 0)
		goto out;
	r = bfs_ofile_truncate_sync(of, (uint64_t)size, bfs_fs.upload_timeout,
				    &ours);
	if (r != 0 && ours)
		bfs_upq_add(of);    /* kept and retried in the background */
out:
	bfs_ofile_put(of);
	bfs_route_clear(&rt);
	return r;
}

/* Which attributes a chmod/chown/utimens changes. */
struct attr_change {
	int set_mode, set_uid, set_gid, set_mtime;
	uint32_t mode, uid, gid;
	struct timespec mtime;
};

static void apply_change(const struct attr_change *c, uint32_t *mode,
			 uint32_t *uid, uint32_t *gid, struct timespec *mtime)
{
	if (c->set_mode)
		*mode = (*mode & S_IFMT) | (c->mode & 07777);
	if (c->set_uid)
		*uid = c->uid;
	if (c->set_gid)
		*gid = c->gid;
	if (c->set_mtime)
		*mtime = c->mtime;
}

static void meta_from_attrs(struct bfs_meta *m, uint32_t mode, uint32_t uid,
			    uint32_t gid, const struct timespec *mtime)
{
	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = uid;
	m->gid = gid;
	m->mtime = mtime->tv_sec;
	m->mtime_nsec = mtime->tv_nsec;
	m->has_mode = m->has_uid = m->has_gid = m->has_mtime = 1;
}

/* Remote set_meta of a clean object + its index row; dir: folder marker
 * (made when the folder was only implicit). */
static int remote_set_attr(struct bfs_rbucket *b, const char *key, int dir,
			   const struct bfs_meta *m)
{
	struct bfs_provider *p = b->prov;
	size_t klen = strlen(key);
	char *dkey = NULL;
	int r;

	if (!p)
		return BFS_ERR_IO;
	if (!dir) {
		r = p->ops->set_meta(p->st, key, m);
		bfs_rbucket_note(b, r);
		if (r == 0 &&
		    bfs_store_file_set_attr(bfs_registry_store(bfs_fs.reg),
					    b->name, key, m->mode, m->uid,
					    m->gid, m->mtime) != 0)
			BFS_WARN("%s/%s: attributes stored, but not in the index",
				 b->name, key);
		return r;
	}
	if (!(dkey = malloc(klen + 2)))
		return BFS_ERR_NOMEM;
	memcpy(dkey, key, klen);
	memcpy(dkey + klen, "/", 2);
	r = p->ops->set_meta(p->st, dkey, m);
	if (r == BFS_ERR_NOTFOUND)
		r = p->ops->put_buf(p->st, dkey, "", 0, m, NULL, 0);
	bfs_rbucket_note(b, r);
	free(dkey);
	return r;
}

static int change_attrs(const char *path, struct bfs_vfs_file *fi,
			const struct attr_change *c)
{
	struct fs_fh *fh = get_fh(fi);
	struct bfs_route rt;
	struct bfs_ofile *of = NULL;
	struct bfs_ofile_attrs a;
	struct bfs_meta m;
	struct stat st;
	char *key = NULL;
	uint32_t mode, uid, gid;
	struct timespec mt;
	struct bfs_rbucket *sb = NULL;
	char *skey = NULL;
	int r, queue, send;
	int op = (c->set_mode || c->set_uid || c->set_gid) ? BFS_ROP_SETATTR :
		 BFS_ROP_SETTIMES;

	memset(&rt, 0, sizeof(rt));
	if (fh && fh->ctl >= 0)
		return BFS_ERR_PERM;
	if (fh) {
		of = fh->of;
		bfs_ofile_ref(of);
	} else {
		if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
			return r;
		if (!bfs_route_has_key(&rt)) {
			/* roots and control files: times are accepted (cp -a,
			 * touch), the rest is not ours to change */
			r = bfs_route_allows(&rt, op);
			goto out;
		}
		if ((r = bfs_route_key(&rt, 0, &key)) != 0)
			goto out;
		of = bfs_ofile_find(rt.b->name, key);
	}
	if (of) {
		/* one change at a time per file, none during a rename of it;
		 * the copy on the server runs without mu (attr_busy) */
		bfs_ofile_attr_begin(of, NULL, NULL);
		if (bfs_ofile_read_only_locked(of)) {
			/* mu held: a rename swaps the bucket, and the wait
			 * let one finish */
			bfs_ofile_unlock(of);
			r = BFS_ERR_READONLY;
			goto out;
		}
		bfs_ofile_attrs_locked(of, &a);
		apply_change(c, &a.mode, &a.uid, &a.gid, &a.mtime);
		bfs_ofile_set_attrs_locked(of, &a);
		/* the upload of the new attributes needs an owner: the
		 * release of the last handle may have passed already */
		queue = bfs_ofile_attr_changed_locked(of);
		r = 0;
		send = bfs_ofile_attr_must_send_locked(of);
		if (send) {
			meta_from_attrs(&m, a.mode, a.uid, a.gid, &a.mtime);
			m.size = a.size;
			if (bfs_ofile_where_locked(of, &sb, &skey) != 0) {
				r = BFS_ERR_NOMEM;
				send = 0;
			}
		}
		bfs_ofile_attr_drop_locked(of);
		if (!send) {
			bfs_ofile_unlock(of);
		} else {
			bfs_ofile_attr_send_begin_locked(of);
			r = remote_set_attr(sb, skey, 0, &m);
			if (r == 0)
				repin_read_version(of, sb, skey);
			bfs_attr_drop(sb->name, skey);
			bfs_ofile_attr_send_end(of);
			bfs_ofile_unlock(of);
			bfs_rbucket_put(sb);
			free(skey);
		}
		if (queue)
			bfs_upq_add(of);
		goto out;
	}
	if ((r = bfs_route_allows(&rt, op)) != 0)
		goto out;
	if ((r = lookup_key(rt.b, key, &st)) != 0)
		goto out;
	mode = st.st_mode;
	uid = st.st_uid;
	gid = st.st_gid;
	mt = st.st_mtim;
	apply_change(c, &mode, &uid, &gid, &mt);
	meta_from_attrs(&m, mode, uid, gid, &mt);
	m.size = (uint64_t)st.st_size;
	r = remote_set_attr(rt.b, key, S_ISDIR(st.st_mode), &m);
	bfs_attr_drop(rt.b->name, key);
out:
	bfs_ofile_put(of);
	free(key);
	bfs_route_clear(&rt);
	return r;
}

static int fs_chmod(const char *path, mode_t mode, struct bfs_vfs_file *fi)
{
	struct attr_change c;

	memset(&c, 0, sizeof(c));
	c.set_mode = 1;
	c.mode = mode;
	return change_attrs(path, fi, &c);
}

static int fs_chown(const char *path, uid_t uid, gid_t gid,
		    struct bfs_vfs_file *fi)
{
	struct attr_change c;

	memset(&c, 0, sizeof(c));
	c.set_uid = uid != (uid_t)-1;
	c.uid = uid;
	c.set_gid = gid != (gid_t)-1;
	c.gid = gid;
	if (!c.set_uid && !c.set_gid)
		return 0;
	return change_attrs(path, fi, &c);
}

static int fs_utimens(const char *path, const struct timespec tv[2],
		      struct bfs_vfs_file *fi)
{
	struct attr_change c;

	memset(&c, 0, sizeof(c));
	if (!tv || tv[1].tv_nsec == UTIME_NOW) {
		c.set_mtime = 1;
		now_ts(&c.mtime);
	} else if (tv[1].tv_nsec != UTIME_OMIT) {
		c.set_mtime = 1;
		c.mtime = tv[1];
	}
	if (!c.set_mtime)
		return 0;
	return change_attrs(path, fi, &c);
}

/* ---- namespace: mkdir, rmdir, unlink, symlink, readlink ---- */

/* Resolves a bucket path below the bucket root for a modifying op
 * (enum bfs_route_op). */
static int modify_route(const char *path, int op, struct bfs_route *rt,
			int dir, char **key)
{
	int r;

	*key = NULL;
	if ((r = bfs_route_resolve(bfs_fs.reg, path, rt)) != 0)
		return r;
	if ((r = bfs_route_allows(rt, op)) != 0)
		return r;
	if (!rt->b->prov)
		return BFS_ERR_IO;
	return bfs_route_key(rt, dir, key);
}

static void caller_meta(struct bfs_meta *m, uint32_t mode)
{
	const struct bfs_vfs_caller *fc = bfs_vfs_caller_cur();
	struct timespec ts;

	now_ts(&ts);
	meta_from_attrs(m, mode, fc ? fc->uid : bfs_fs.uid,
			fc ? fc->gid : bfs_fs.gid, &ts);
}

static int fs_mkdir(const char *path, mode_t mode)
{
	struct bfs_route rt;
	struct bfs_meta m;
	char *key = NULL;
	int r;

	if ((r = modify_route(path, BFS_ROP_MKDIR, &rt, 1, &key)) != 0) {
		if (r == BFS_ERR_NOTFOUND) {
			bfs_route_clear(&rt);
			return create_route_err(path, r);
		}
		goto out;
	}
	caller_meta(&m, S_IFDIR | (mode & 07777));
	r = rt.b->prov->ops->put_buf(rt.b->prov->st, key, "", 0, &m, NULL, 0);
	bfs_rbucket_note(rt.b, r);
	key[strlen(key) - 1] = '\0';
	bfs_attr_drop(rt.b->name, key);
	if (r == 0) {
		/* the kernel's lookup found nothing at key, key/ or below */
		key[strlen(key)] = '/';
		bfs_dir_note_empty(rt.b->name, key);
	}
out:
	free(key);
	bfs_route_clear(&rt);
	return r;
}

/* bfs_ofile_each callback: *found = 1 at an open file still named. */
static int open_child(void *arg, struct bfs_ofile *of)
{
	int *found = arg;
	struct bfs_ofile_snap sn;

	bfs_ofile_snap(of, &sn);
	if (!sn.unlinked)
		*found = 1;
	return *found;
}

/*
 * *empty: folder dkey_slash ("a/") of b shows no entry: nothing listed
 * (but its marker and kept objects of files unlinked while open) and no
 * file open under it.
 */
static int dir_is_empty(struct bfs_rbucket *b, const char *dkey_slash,
			int *empty)
{
	struct first_ctx fc;
	int found = 0, r;

	*empty = 0;
	fc.bucket = b->name;
	fc.prefix = dkey_slash;
	fc.skip_kept = 1;
	fc.found = 0;
	/* unsafe keys too: the folder stats for them (lookup_key) */
	if ((r = b->prov->ops->list(b->prov->st, dkey_slash, BFS_LIST_UNSAFE,
				    stop_first, &fc)) != 0)
		return r;
	if (fc.found)
		return 0;
	r = bfs_ofile_each(b->name, dkey_slash, open_child, &found);
	if (r < 0)
		return r;     /* not known: not "empty" */
	*empty = !found;
	return 0;
}

static int fs_rmdir(const char *path)
{
	struct bfs_route rt;
	struct bfs_provider *p;
	char *key = NULL;
	int r, empty;

	if ((r = modify_route(path, BFS_ROP_RMDIR, &rt, 1, &key)) != 0)
		goto out;
	if (rt.dir_elsewhere) {
		r = BFS_ERR_NOTEMPTY;     /* the context's files elsewhere */
		goto out;
	}
	p = rt.b->prov;
	if ((r = dir_is_empty(rt.b, key, &empty)) != 0)
		goto out;
	if (!empty) {
		r = BFS_ERR_NOTEMPTY;
		goto out;
	}
	/* the cache decorator drops the bucket's caches (a folder key) */
	r = p->ops->del(p->st, key);
out:
	if (rt.b)
		bfs_rbucket_note(rt.b, r);
	free(key);
	bfs_route_clear(&rt);
	return r;
}

/*
 * Where unlink puts the object of a file still open when the provider can
 * rename: a hidden name at the bucket's root (the local provider never
 * lists ".bfs-tmp-" names), unique within this process and across starts.
 */
#define FS_ASIDE_PREFIX ".bfs-tmp-gone-"

static int aside_key(const struct bfs_rbucket *b, char **out)
{
	static atomic_uint seq;
	struct timespec ts;
	char name[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), FS_ASIDE_PREFIX "%llx-%x-%x",
		 (unsigned long long)ts.tv_sec * 1000000000ull +
		 (unsigned long long)ts.tv_nsec, (unsigned)getpid(),
		 atomic_fetch_add(&seq, 1));
	*out = cat3(b->prefix, name, "");
	return *out ? 0 : BFS_ERR_NOMEM;
}

/*
 * Keeps the object of key for the open handles of of, whose reads go to
 * it (clean, never staged), when key is about to lose it (unlink, or the
 * target of a rename with hide 0): moved aside when the provider renames,
 * else, with hide, left under its key and hidden (fence.c).  Returns 0
 * with *g NULL when nothing needs keeping (or cannot be: rename onto a
 * file of a provider without rename), else with *g, *aside (or NULL) and
 * *etag for bfs_ofile_set_gone after the detach.  No GET; a HEAD when the
 * reads were not pinned yet.  No lock held.
 */
static int keep_for_handles(struct bfs_rbucket *b, const char *key,
			    struct bfs_ofile *of, int hide, char **aside,
			    char **etag, struct bfs_gone **g)
{
	struct bfs_provider *p = b->prov;
	struct bfs_meta m;
	int r = 0, keep;

	*aside = *etag = NULL;
	*g = NULL;
	if ((keep = bfs_ofile_keepable(of, hide || p->ops->rename, etag)) < 0)
		r = keep;
	if (keep <= 0)
		goto out;
	if (!*etag) {
		/* the version its reads will be pinned to */
		memset(&m, 0, sizeof(m));
		r = bfs_cache_head_fresh(p, key, &m);
		bfs_rbucket_note(b, r);
		if (r == BFS_ERR_NOTFOUND) {
			r = 0;               /* nothing left to keep */
			goto out;
		}
		if (r != 0)
			goto out;
		if (m.etag[0] && !(*etag = strdup(m.etag))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
	}
	if (p->ops->rename && (r = aside_key(b, aside)) != 0)
		goto out;
	if ((r = bfs_gone_add(b->name, *aside ? *aside : key, *etag, !*aside,
			      g)) != 0)
		goto out;
	if (*aside) {
		r = p->ops->rename(p->st, key, *aside);
		bfs_rbucket_note(b, r);
		if (r != 0) {
			bfs_gone_drop(*g);
			*g = NULL;
		}
	}
out:
	if (r != 0 || !*g) {
		free(*aside);
		free(*etag);
		*aside = *etag = NULL;
	}
	return r;
}

/*
 * unlink(2).  The name goes at once: the object, its index row and its
 * cached attributes.  A file open here whose reads go to the remote
 * object keeps that object for its handles until the last one closes,
 * without any GET (keep_for_handles, fence.c "GONE NAMES").  A staged
 * file's handles read its staging file.
 */
/*
 * 1 when of has a handle still in use.  close() returns after FLUSH but
 * before the kernel's RELEASE reaches us, so "close(); unlink()" finds the
 * file still open.  A handle its opener closed (FLUSH from the process
 * that opened it) and nobody read or wrote since is taken as closed: its
 * RELEASE is waited for a moment (up to 200 ms, no lock held), and the
 * unlink then deletes the object at once even if it has not come.  A
 * handle in use (read or written since, never closed, or closed only by
 * another process such as a forked child) is open: its reads keep the
 * object (keep_for_handles).  The one case this gets wrong: a process
 * that closes one of two dup()ed descriptors, and reads through the other
 * after the unlink, gets EIO.
 */
static int still_open(const struct bfs_ofile *of)
{
	struct fs_fh *fh;
	int n, live, i;

	for (i = 0; i < 40; i++) {
		n = live = 0;
		pthread_mutex_lock(&fs_fh_mu);
		for (fh = fs_fhs; fh; fh = fh->next)
			if (fh->of == of) {
				n++;
				live += !atomic_load(&fh->flushed);
			}
		pthread_mutex_unlock(&fs_fh_mu);
		if (n == 0 || live)
			return live != 0;
		usleep(5000);
	}
	return 0;
}

static int fs_unlink(const char *path)
{
	struct bfs_route rt;
	struct bfs_provider *p;
	struct bfs_ofile *of = NULL;
	struct bfs_gone *g = NULL;
	char *key = NULL, *aside = NULL, *etag = NULL;
	int r;

	if ((r = modify_route(path, BFS_ROP_UNLINK, &rt, 0, &key)) != 0)
		goto out;
	p = rt.b->prov;
	if ((of = bfs_ofile_find(rt.b->name, key)) != NULL && still_open(of) &&
	    (r = keep_for_handles(rt.b, key, of, 1, &aside, &etag, &g)) != 0)
		goto out;
	if (of)
		bfs_ofile_detach(of);
	if (g) {
		bfs_ofile_set_gone(of, aside, etag, g);
		aside = etag = NULL;
		g = NULL;
	} else {
		r = p->ops->del(p->st, key);
		bfs_rbucket_note(rt.b, r);
	}
	bfs_attr_drop(rt.b->name, key);
	if (r == 0 && bfs_store_file_delete(bfs_registry_store(bfs_fs.reg),
					    rt.b->name, key) != 0)
		BFS_WARN("%s/%s: deleted, but not from the index", rt.b->name, key);
out:
	bfs_ofile_put(of);
	free(aside);
	free(etag);
	free(key);
	bfs_route_clear(&rt);
	return r;
}

static void index_put(struct bfs_rbucket *b, const char *key,
		      const struct bfs_meta *m, const char *etag)
{
	bfs_index_put(b->name, key, m, etag, NULL);    /* logs a failure */
}

static int fs_symlink(const char *target, const char *linkpath)
{
	struct bfs_route rt;
	struct bfs_meta m;
	char *key = NULL, etag[96];
	size_t tlen = strlen(target);
	int r;

	if ((r = modify_route(linkpath, BFS_ROP_SYMLINK, &rt, 0,
			      &key)) != 0) {
		if (r == BFS_ERR_NOTFOUND) {
			bfs_route_clear(&rt);
			return create_route_err(linkpath, r);
		}
		goto out;
	}
	if (tlen >= 4096) {
		r = BFS_ERR_NAMETOOLONG;
		goto out;
	}
	caller_meta(&m, S_IFLNK | 0777);
	m.size = tlen;
	etag[0] = '\0';
	/* the cache decorator drops what the put changes */
	r = rt.b->prov->ops->put_buf(rt.b->prov->st, key, target, tlen, &m,
				     etag, sizeof(etag));
	bfs_rbucket_note(rt.b, r);
	if (r == 0) {
		index_put(rt.b, key, &m, etag);
		bfs_gone_supersede(rt.b->name, key, 0);
	}
out:
	free(key);
	bfs_route_clear(&rt);
	return r;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct bfs_route rt;
	struct stat st;
	char *key = NULL;
	size_t got = 0;
	int r;

	if (size == 0)
		return BFS_ERR_INVAL;
	if ((r = bfs_route_resolve(bfs_fs.reg, path, &rt)) != 0)
		return r;
	if ((r = bfs_route_allows(&rt, BFS_ROP_READLINK)) != 0)
		goto out;
	if (!rt.b->prov) {
		r = BFS_ERR_IO;
		goto out;
	}
	if ((r = bfs_route_key(&rt, 0, &key)) != 0)
		goto out;
	if ((r = lookup_key(rt.b, key, &st)) != 0)
		goto out;
	if (!S_ISLNK(st.st_mode)) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	r = rt.b->prov->ops->get_range(rt.b->prov->st, key, 0, size - 1, buf,
				       &got, NULL);
	bfs_rbucket_note(rt.b, r);
	if (r != 0)
		goto out;
	buf[got] = '\0';
out:
	free(key);
	bfs_route_clear(&rt);
	return r;
}

/* ---- rename ---- */

static int same_bucket(const struct bfs_rbucket *a, const struct bfs_rbucket *b)
{
	return a == b || strcmp(a->name, b->name) == 0;
}

/* An unnamed temp file in the staging folder (cross-bucket copies). */
static int temp_fd(void)
{
	size_t len = strlen(bfs_fs.staging_dir) + 32;
	char *path = malloc(len);
	int fd;

	if (!path)
		return BFS_ERR_NOMEM;
	snprintf(path, len, "%s/bfs-mv-XXXXXX", bfs_fs.staging_dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		fd = bfs_err_from_errno(errno);
	} else {
		unlink(path);
	}
	free(path);
	return fd;
}

/*
 * Moves one object (file, symlink or folder marker "x/") from sb/skey to
 * db/dkey: provider rename, else server copy + delete in one bucket;
 * across buckets the body streams through a temp file with the same
 * metadata.  The index row follows.
 */
static int move_key(struct bfs_rbucket *sb, const char *skey,
		    struct bfs_rbucket *db, const char *dkey)
{
	struct bfs_provider *sp = sb->prov, *dp = db->prov;
	struct bfs_file_row row;
	struct bfs_meta m;
	struct stat st;
	size_t klen = strlen(dkey), got = 0;
	const char *name;
	char *body = NULL, etag[96];
	int fd = -1, r, ir, indexed = 0;

	etag[0] = '\0';
	if (same_bucket(sb, db)) {
		if (sp->ops->rename) {
			r = sp->ops->rename(sp->st, skey, dkey);
		} else {
			r = sp->ops->copy(sp->st, skey, dkey, NULL);
			if (r == 0)
				r = sp->ops->del(sp->st, skey);
		}
		goto index;
	}
	memset(&m, 0, sizeof(m));
	if ((r = sp->ops->head(sp->st, skey, &m)) != 0)
		goto out;
	name = strrchr(dkey, '/');
	name = name && name[1] ? name + 1 : dkey;
	if (klen && dkey[klen - 1] == '/') {
		r = dp->ops->put_buf(dp->st, dkey, "", 0, &m, NULL, 0);
	} else if (S_ISLNK(m.mode)) {
		if (m.size >= 65536) {
			r = BFS_ERR_NAMETOOLONG;
			goto out;
		}
		if (!(body = malloc((size_t)m.size + 1))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		if ((r = sp->ops->get_range(sp->st, skey, 0, (size_t)m.size,
					    body, &got, NULL)) != 0)
			goto out;
		m.size = got;
		r = dp->ops->put_buf(dp->st, dkey, body, got, &m, etag,
				     sizeof(etag));
	} else {
		if ((fd = temp_fd()) < 0) {
			r = fd;
			goto out;
		}
		if ((r = sp->ops->get_fd(sp->st, skey, fd, &m)) != 0)
			goto out;
		if (fstat(fd, &st) < 0) {
			r = bfs_err_from_errno(errno);
			goto out;
		}
		m.size = (uint64_t)st.st_size;
		snprintf(m.content_type, sizeof(m.content_type), "%s",
			 bfs_content_type(name));
		r = dp->ops->put_fd(dp->st, dkey, fd, m.size, &m, etag,
				    sizeof(etag));
	}
	if (r != 0)
		goto out;
	r = sp->ops->del(sp->st, skey);
index:
	if (r != 0 || (klen && dkey[klen - 1] == '/'))
		goto out;
	bfs_gone_supersede(db->name, dkey, 0);
	/* The index follows the object; a file it did not know gets a row. */
	memset(&row, 0, sizeof(row));
	ir = bfs_store_file_get(bfs_registry_store(bfs_fs.reg), sb->name, skey,
				&row);
	if (ir == 0)
		bfs_file_row_clear(&row);
	/* Unknown (catalog unreachable): the rename, queued, follows the
	 * queued or existing row. */
	indexed = ir != BFS_ERR_NOTFOUND;
	if (indexed) {
		if (bfs_store_file_rename(bfs_registry_store(bfs_fs.reg),
					  sb->name, skey, db->name, dkey) != 0)
			BFS_WARN("%s/%s: moved, but not in the index", db->name,
				 dkey);
	} else if (dp->ops->head(dp->st, dkey, &m) == 0) {
		index_put(db, dkey, &m, etag[0] ? etag : m.etag);
	}
out:
	if (fd >= 0)
		close(fd);
	free(body);
	bfs_rbucket_note(sb, r);
	return r;
}

struct mv_entry {
	char *name;
	int is_dir;
};

struct mv_list {
	struct mv_entry *v;
	size_t n, cap;
	int err;
	const char *bucket;      /* the source folder, for kept objects */
	const char *dir;
};

static int mv_collect(void *arg, const char *name, int is_dir,
		      const struct bfs_meta *meta)
{
	struct mv_list *l = arg;
	char *k;
	int kept;

	if (!name[0])
		return 0;
	if (!is_dir) {
		/* the kept object of a file unlinked while open stays */
		if (!(k = cat3(l->dir, name, ""))) {
			l->err = BFS_ERR_NOMEM;
			return 1;
		}
		kept = bfs_gone_hides_etag(l->bucket, k, meta ? meta->etag : NULL);
		free(k);
		if (kept)
			return 0;
	}
	if (l->n >= FS_MOVE_MAX) {
		l->err = BFS_ERR_TOOBIG;
		return 1;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct mv_entry *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv) {
			l->err = BFS_ERR_NOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = ncap;
	}
	if (!(l->v[l->n].name = strdup(name))) {
		l->err = BFS_ERR_NOMEM;
		return 1;
	}
	l->v[l->n++].is_dir = is_dir;
	return 0;
}

static int mv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mv_entry *)a)->name,
		      ((const struct mv_entry *)b)->name);
}

static char *cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/*
 * Moves folder sdir ("a/") to ddir ("b/"): the provider's own rename in one
 * bucket when it has one, else every key below (files first, then folder
 * markers made at the destination and removed at the source deepest
 * first), then the folder's own marker.
 */
static int move_dir(struct bfs_rbucket *sb, const char *sdir,
		    struct bfs_rbucket *db, const char *ddir)
{
	struct bfs_provider *sp = sb->prov, *dp = db->prov;
	struct mv_list l;
	struct bfs_meta m;
	char *s = NULL, *d = NULL;
	size_t i;
	int r;

	memset(&l, 0, sizeof(l));
	l.bucket = sb->name;
	l.dir = sdir;
	if (same_bucket(sb, db) && sp->ops->rename) {
		r = sp->ops->rename(sp->st, sdir, ddir);
		goto index;
	}
	if ((r = sp->ops->list(sp->st, sdir, BFS_LIST_RECURSIVE, mv_collect,
			       &l)) != 0)
		goto out;
	if ((r = l.err) != 0)
		goto out;
	qsort(l.v, l.n, sizeof(*l.v), mv_cmp);
	for (i = 0; i < l.n; i++) {
		if (l.v[i].is_dir)
			continue;
		if (!(s = cat3(sdir, l.v[i].name, "")) ||
		    !(d = cat3(ddir, l.v[i].name, ""))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		if ((r = move_key(sb, s, db, d)) != 0)
			goto out;
		free(s);
		free(d);
		s = d = NULL;
	}
	for (i = 0; i < l.n; i++) {
		if (!l.v[i].is_dir)
			continue;
		if (!(s = cat3(sdir, l.v[i].name, "/")) ||
		    !(d = cat3(ddir, l.v[i].name, "/"))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		memset(&m, 0, sizeof(m));
		if (sp->ops->head(sp->st, s, &m) == 0 &&
		    (r = dp->ops->put_buf(dp->st, d, "", 0, &m, NULL, 0)) != 0)
			goto out;
		free(s);
		free(d);
		s = d = NULL;
	}
	for (i = l.n; i-- > 0;) {
		if (!l.v[i].is_dir)
			continue;
		if (!(s = cat3(sdir, l.v[i].name, "/"))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		if ((r = sp->ops->del(sp->st, s)) != 0)
			goto out;
		free(s);
		s = NULL;
	}
	memset(&m, 0, sizeof(m));
	if (sp->ops->head(sp->st, sdir, &m) == 0) {
		if ((r = dp->ops->put_buf(dp->st, ddir, "", 0, &m, NULL, 0)) != 0)
			goto out;
	} else if (!l.n) {
		caller_meta(&m, S_IFDIR | 0755);
		if ((r = dp->ops->put_buf(dp->st, ddir, "", 0, &m, NULL, 0)) != 0)
			goto out;
	}
	r = sp->ops->del(sp->st, sdir);
index:
	if (r == 0 && bfs_store_file_rename_prefix(bfs_registry_store(bfs_fs.reg),
						   sb->name, sdir, db->name,
						   ddir) != 0)
		BFS_WARN("%s/%s: folder moved, but not in the index", db->name,
			 ddir);
out:
	for (i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(s);
	free(d);
	bfs_rbucket_note(sb, r);
	return r;
}

/* bfs_ofile_each callback: waits until no upload job and no attribute
 * change runs on the file. */
static int wait_job(void *arg, struct bfs_ofile *of)
{
	(void)arg;
	bfs_ofile_wait_quiet(of);
	return 0;
}

/*
 * Fences the source and destination of a rename (a key, or with prefix a
 * folder "a/") and waits for the upload jobs that started before on files
 * there: until rename_unfence no upload stores anything under either
 * name, so none lands under a name the move just emptied (fence.c).
 */
static int rename_fence(const struct bfs_rbucket *sb, const char *src,
			const struct bfs_rbucket *db, const char *dst,
			int prefix, struct bfs_fence *f[2])
{
	int r;

	f[0] = f[1] = NULL;
	if ((r = bfs_fence_add(sb->name, src, prefix, &f[0])) != 0 ||
	    (r = bfs_fence_add(db->name, dst, prefix, &f[1])) != 0)
		goto fail;
	if ((r = bfs_ofile_each(sb->name, src, wait_job, NULL)) < 0 ||
	    (r = bfs_ofile_each(db->name, dst, wait_job, NULL)) < 0)
		goto fail;
	return 0;
fail:
	bfs_fence_del(f[1]);
	bfs_fence_del(f[0]);
	f[0] = f[1] = NULL;
	return r;
}

static void rename_unfence(struct bfs_fence *f[2])
{
	bfs_fence_del(f[1]);
	bfs_fence_del(f[0]);
}

/*
 * Renames a file (not a folder) skey -> dkey.  Under a fence on both
 * names: a file open under dkey is replaced (detached); a clean source
 * moves on the provider and its open file follows; a dirty one keeps its
 * content staged for the upload under dkey and its old object is deleted.
 */
static int rename_file(struct bfs_rbucket *sb, const char *skey,
		       struct bfs_rbucket *db, const char *dkey)
{
	struct bfs_fence *f[2];
	struct bfs_ofile *sof = NULL, *dof;
	struct bfs_ofile_snap sn;
	struct bfs_gone *g = NULL;
	char *aside = NULL, *etag = NULL, *back = NULL;
	int r, dirty = 0, exists = 0;

	if ((r = rename_fence(sb, skey, db, dkey, 0, f)) != 0)
		return r;
	/* A file open under the destination name is replaced; with a
	 * provider rename its handles keep reading the replaced object. */
	if ((dof = bfs_ofile_find(db->name, dkey)) != NULL) {
		if ((r = keep_for_handles(db, dkey, dof, 0, &aside, &etag,
					  &g)) != 0) {
			bfs_ofile_put(dof);
			goto out;
		}
		bfs_ofile_detach(dof);
		if (g) {
			back = aside ? strdup(aside) : NULL;
			bfs_ofile_set_gone(dof, aside, etag, g);
		}
		bfs_ofile_put(dof);
	}
	if ((sof = bfs_ofile_find(sb->name, skey)) != NULL) {
		bfs_ofile_snap(sof, &sn);
		dirty = sn.dirty;
		exists = sn.exists_remote;
	}
	if (!dirty) {
		if ((r = move_key(sb, skey, db, dkey)) != 0) {
			/* the replaced file goes back to its name (its old
			 * descriptors lose it: they read the aside key) */
			if (back && db->prov->ops->rename(db->prov->st, back,
							  dkey) != 0)
				BFS_ERROR("%s/%s: rename failed and the "
					  "replaced file could not be moved "
					  "back: it is %s, deleted at its last "
					  "close", db->name, dkey, back);
			goto out;
		}
		if (sof)
			repin_read_version(sof, db, dkey);
	}
	if (sof && (r = bfs_ofile_rekey(sb->name, skey, db, dkey, 0,
					dirty)) != 0)
		goto out;
	if (dirty && exists) {
		/* The content lives in the staging file and goes up under the
		 * new key at close; the old object goes now. */
		r = sb->prov->ops->del(sb->prov->st, skey);
		bfs_rbucket_note(sb, r);
		if (r == 0 && bfs_store_file_delete(bfs_registry_store(bfs_fs.reg),
						    sb->name, skey) != 0)
			BFS_WARN("%s/%s: deleted, but not from the index",
				 sb->name, skey);
	}
out:
	rename_unfence(f);
	bfs_ofile_put(sof);
	free(back);
	return r;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct bfs_route rs, rd;
	struct stat sst, dst;
	struct bfs_fence *fence[2];
	char *skey = NULL, *dkey = NULL, *sdir = NULL, *ddir = NULL;
	int r, dexists = 0, empty, fenced = 0;

	memset(&rd, 0, sizeof(rd));
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return BFS_ERR_INVAL;
	if ((r = modify_route(from, BFS_ROP_RENAME_FROM, &rs, 0, &skey)) != 0)
		goto out;
	if ((r = modify_route(to, BFS_ROP_RENAME_TO, &rd, 0, &dkey)) != 0) {
		if (r == BFS_ERR_NOTFOUND)
			r = BFS_ERR_PERM;
		goto out;
	}
	if ((r = lookup_key(rs.b, skey, &sst)) != 0)
		goto out;
	bfs_attr_drop(rd.b->name, dkey);
	r = lookup_key(rd.b, dkey, &dst);
	if (r == 0)
		dexists = 1;
	else if (r != BFS_ERR_NOTFOUND)
		goto out;
	if (dexists && (flags & RENAME_NOREPLACE)) {
		r = BFS_ERR_EXISTS;
		goto out;
	}
	if (same_bucket(rs.b, rd.b) && strcmp(skey, dkey) == 0) {
		r = 0;
		goto out;
	}
	if (S_ISDIR(sst.st_mode)) {
		if (dexists && !S_ISDIR(dst.st_mode)) {
			r = BFS_ERR_NOTDIR;
			goto out;
		}
		if (!(sdir = cat3(skey, "/", "")) || !(ddir = cat3(dkey, "/", ""))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		if (same_bucket(rs.b, rd.b) &&
		    strncmp(ddir, sdir, strlen(sdir)) == 0) {
			r = BFS_ERR_INVAL;     /* into itself */
			goto out;
		}
		if (dexists) {
			if ((r = dir_is_empty(rd.b, ddir, &empty)) != 0)
				goto out;
			if (!empty) {
				r = BFS_ERR_NOTEMPTY;
				goto out;
			}
			if ((r = rd.b->prov->ops->del(rd.b->prov->st, ddir)) != 0)
				goto out;
		}
		if ((r = rename_fence(rs.b, sdir, rd.b, ddir, 1, fence)) != 0)
			goto out;
		fenced = 1;
		if ((r = move_dir(rs.b, sdir, rd.b, ddir)) != 0)
			goto out;
		/* open files follow (their journal rows too) before any of
		 * them may upload again: under the fence */
		r = bfs_ofile_rekey(rs.b->name, sdir, rd.b, ddir, 1, 1);
		bfs_attr_drop_bucket(rs.b->name);
		bfs_attr_drop_bucket(rd.b->name);
	} else {
		if (dexists && S_ISDIR(dst.st_mode)) {
			r = BFS_ERR_ISDIR;
			goto out;
		}
		r = rename_file(rs.b, skey, rd.b, dkey);
		bfs_attr_drop(rs.b->name, skey);
		bfs_attr_drop(rd.b->name, dkey);
	}
out:
	if (fenced)
		rename_unfence(fence);
	if (r != 0 && r != BFS_ERR_NOTFOUND && r != BFS_ERR_EXISTS)
		BFS_DEBUG("rename %s -> %s: %s", from, to, bfs_strerror(r));
	free(sdir);
	free(ddir);
	free(skey);
	free(dkey);
	bfs_route_clear(&rd);
	bfs_route_clear(&rs);
	return r;
}

/* ---- the rest ---- */

static int fs_statfs(const char *path, struct statvfs *sv)
{
	struct bfs_route rt;
	uint64_t total = FS_BIG_SPACE, avail = FS_BIG_SPACE;

	if (bfs_route_resolve(bfs_fs.reg, path ? path : "/", &rt) == 0) {
		if (rt.kind == BFS_ROUTE_BUCKET && rt.b->prov &&
		    rt.b->prov->ops->statfs &&
		    rt.b->prov->ops->statfs(rt.b->prov->st, &total, &avail) != 0)
			total = avail = FS_BIG_SPACE;
		bfs_route_clear(&rt);
	}
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = total / 4096;
	sv->f_bfree = avail / 4096;
	sv->f_bavail = avail / 4096;
	sv->f_files = 1ULL << 32;
	sv->f_ffree = 1ULL << 32;
	sv->f_favail = 1ULL << 32;
	sv->f_namemax = BFS_NAME_MAX;
	return 0;
}

static int fs_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return BFS_ERR_PERM;
}

static int fs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)path;
	(void)mode;
	(void)dev;
	return BFS_ERR_PERM;
}

static const struct bfs_vfs_ops fs_ops = {
	.getattr = fs_getattr,
	.opendir = fs_opendir,
	.releasedir = fs_releasedir,
	.readdir = fs_readdir,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.truncate = fs_truncate,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.utimens = fs_utimens,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.unlink = fs_unlink,
	.symlink = fs_symlink,
	.readlink = fs_readlink,
	.rename = fs_rename,
	.statfs = fs_statfs,
	.link = fs_link,
	.mknod = fs_mknod,
	.getxattr = bfs_fs_getxattr,
	.setxattr = bfs_fs_setxattr,
	.listxattr = bfs_fs_listxattr,
	.removexattr = bfs_fs_removexattr,
};

void bfs_fs_release_all(void)
{
	struct fs_fh *fh;

	for (;;) {
		pthread_mutex_lock(&fs_fh_mu);
		fh = fs_fhs;
		pthread_mutex_unlock(&fs_fh_mu);
		if (!fh)
			break;
		bfs_ofile_put(fh->of);
		fh_free(fh);
	}
	bfs_ofile_spares_drop();
	pthread_mutex_lock(&walk_mu);
	free(walk_last);
	walk_last = NULL;
	pthread_mutex_unlock(&walk_mu);
}

const struct bfs_vfs_ops *bfs_fs_operations(void)
{
	clock_gettime(CLOCK_REALTIME, &fs_start_time);
	bfs_attr_init();
	bfs_ofile_init();
	return &fs_ops;
}
