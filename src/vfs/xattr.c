/*
 * xattr.c - extended attributes of the files and folders under a bucket
 * folder (getxattr, listxattr, setxattr, removexattr).
 *
 * Read-only attributes, made from the route and never stored:
 *   user.bucketfs.bucket     the bucket's name
 *   user.bucketfs.bucket_id  its storage_buckets.id
 *   user.bucketfs.key        the object key, prefix included; a folder's
 *                            ends with '/' (its marker key)
 *   user.bucketfs.etag       files: the etag of the stored object (an open
 *                            file being written: of the version it
 *                            replaces; never stored yet: ENODATA)
 *   user.bucketfs.url        files on s3/r2: a presigned GET URL valid
 *                            presign_expires seconds (signed locally, no
 *                            request); ENODATA elsewhere
 * setxattr/removexattr of them: EPERM.
 *
 * Other user.* attributes are stored with the object as s3fs -o use_xattr
 * stores them (bfs_meta.xattr, one x-amz-meta-xattr value, bfs_xattr.h);
 * local keeps them as real xattrs of the file.  Other namespaces
 * (security, system, trusted) answer ENOTSUP at once: the kernel asks for
 * security.capability on every write, and ls asks for ACLs and SELinux
 * labels of every file (it stops asking a file system that says ENOTSUP).
 *
 * Where the stored set comes from, cheapest first: the open file (its
 * set, when known, goes with its next upload), the set a HEAD of this
 * mount saw (noted by lookup_key, kept while the attribute cache holds the
 * same etag for the object, so getxattr after a stat costs no request),
 * else a HEAD.  A change of a clean object rewrites its metadata at once
 * (S3: a self-COPY with REPLACE, like chmod); of a dirty open file, it
 * waits for the upload.  Sets over the provider's metadata limit: E2BIG.
 *
 * Locks: xa_mu guards the noted sets (a leaf, never held across a call
 * out).  An open file's set is the open-file module's: changed between
 * bfs_ofile_attr_begin and bfs_ofile_unlock (ofile_attr.c), as chmod.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_xattr.h"
#include "attrcache.h"
#include "bfs_perm.h"
#include "vfs_int.h"

#define XA_OWN "user.bucketfs."
#define XA_SLOTS 4096
#define XA_MAX_ENTRIES 100000
/* S3 and R2 count names and values of all user metadata against 2 KB:
 * room left for "xattr" beside mode, uid, gid and mtime at their longest */
#define XA_S3_META_MAX 2048
#define XA_VALUE_MAX 65536       /* the kernel's XATTR_SIZE_MAX */
#define XA_LIST_MAX 65536        /* and XATTR_LIST_MAX */
#define XA_S3_OTHER_META (4 + 10 + 3 + 10 + 3 + 10 + 5 + 21 + 5)

/* ---- the sets HEADs of this mount saw ---- */

struct xa_entry {
	struct xa_entry *next;
	int64_t expires_ms;
	char *etag;              /* the object's etag when seen */
	char *enc;               /* its encoded set ("" none) */
	char k[];                /* "BUCKET/KEY" */
};

static pthread_mutex_t xa_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xa_entry *xa_slots[XA_SLOTS];   /* xa_mu */
static size_t xa_count;                       /* xa_mu */

static int64_t xa_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void xa_entry_free(struct xa_entry *e)
{
	free(e->etag);
	free(e->enc);
	free(e);
}

static void xa_clear_locked(void)
{
	struct xa_entry *e, *n;
	size_t i;

	bfs_lock_assert_held(&xa_mu);
	for (i = 0; i < XA_SLOTS; i++) {
		for (e = xa_slots[i]; e; e = n) {
			n = e->next;
			xa_entry_free(e);
		}
		xa_slots[i] = NULL;
	}
	xa_count = 0;
}

void bfs_xattr_destroy(void)
{
	pthread_mutex_lock(&xa_mu);
	xa_clear_locked();
	pthread_mutex_unlock(&xa_mu);
}

/* The slot of "bucket/key" and, when found, the link pointing at it. */
static struct xa_entry **xa_find_locked(const char *bucket, const char *key)
{
	struct xa_entry **pp;
	size_t bl = strlen(bucket);

	bfs_lock_assert_held(&xa_mu);
	for (pp = &xa_slots[bfs_key_hash(bucket, key) % XA_SLOTS]; *pp;
	     pp = &(*pp)->next)
		if (!strncmp((*pp)->k, bucket, bl) && (*pp)->k[bl] == '/' &&
		    !strcmp((*pp)->k + bl + 1, key))
			return pp;
	return pp;
}

void bfs_xattr_note(const char *bucket, const char *key,
		    const struct bfs_meta *m)
{
	struct xa_entry *e, **pp;
	size_t bl = strlen(bucket), kl = strlen(key);

	if (!m->has_xattr)
		return;
	if (!(e = malloc(sizeof(*e) + bl + kl + 2)))
		return;
	e->etag = strdup(m->etag);
	e->enc = strdup(m->xattr);
	if (!e->etag || !e->enc) {
		xa_entry_free(e);
		return;
	}
	memcpy(e->k, bucket, bl);
	e->k[bl] = '/';
	memcpy(e->k + bl + 1, key, kl + 1);
	e->expires_ms = xa_now_ms() + BFS_ATTR_LONG_TTL_MS;
	pthread_mutex_lock(&xa_mu);
	pp = xa_find_locked(bucket, key);
	if (*pp) {
		struct xa_entry *old = *pp;

		e->next = old->next;
		*pp = e;
		xa_entry_free(old);
	} else {
		if (xa_count >= XA_MAX_ENTRIES) {
			xa_clear_locked();
			pp = xa_find_locked(bucket, key);
		}
		e->next = NULL;
		*pp = e;
		xa_count++;
	}
	pthread_mutex_unlock(&xa_mu);
}

static void xa_forget(const char *bucket, const char *key)
{
	struct xa_entry **pp, *e;

	pthread_mutex_lock(&xa_mu);
	pp = xa_find_locked(bucket, key);
	if ((e = *pp) != NULL) {
		*pp = e->next;
		xa_entry_free(e);
		xa_count--;
	}
	pthread_mutex_unlock(&xa_mu);
}

/* A copy of the noted set of (bucket, key) when it was seen with etag and
 * is fresh; NULL otherwise (or out of memory). */
static char *xa_noted(const char *bucket, const char *key, const char *etag)
{
	struct xa_entry *e;
	char *enc = NULL;

	pthread_mutex_lock(&xa_mu);
	e = *xa_find_locked(bucket, key);
	if (e && e->expires_ms > xa_now_ms() && !strcmp(e->etag, etag))
		enc = strdup(e->enc);
	pthread_mutex_unlock(&xa_mu);
	return enc;
}

/* ---- objects ---- */

enum xa_kind {
	XA_NONE = 0,             /* mount root, control file: no attributes */
	XA_BROOT,                /* a bucket's folder */
	XA_FILE,
	XA_DIR
};

struct xa_obj {
	struct bfs_route rt;
	int kind;
	char *key;               /* file or folder key without '/' */
	struct stat st;
};

static void xa_obj_clear(struct xa_obj *o)
{
	free(o->key);
	bfs_route_clear(&o->rt);
}

/* Resolves path to the object whose attributes it names. */
static int xa_resolve(const char *path, struct xa_obj *o)
{
	int r;

	memset(o, 0, sizeof(*o));
	if ((r = bfs_route_resolve(bfs_fs.reg, path, &o->rt)) != 0)
		return r;
	if ((r = bfs_route_allows(&o->rt, BFS_ROP_LOOKUP)) != 0)
		return r;
	if (o->rt.kind != BFS_ROUTE_BUCKET) {
		/* the mount root, control files (and any folder of the tree
		 * that is no bucket's) */
		o->kind = XA_NONE;
		return 0;
	}
	if (!o->rt.rel[0]) {
		o->kind = XA_BROOT;
		return 0;
	}
	if ((r = bfs_route_key(&o->rt, 0, &o->key)) != 0)
		return r;
	if (o->rt.ctx_root || o->rt.dir_elsewhere) {
		/* a context folder (@chat/ID) exists without a marker, and a
		 * folder only other buckets hold has none here: folders all
		 * the same, as getattr says */
		bfs_fs_bucket_dir_stat(o->rt.b, &o->st);
		o->kind = XA_DIR;
		return 0;
	}
	if ((r = lookup_key(o->rt.b, o->key, &o->st)) != 0)
		return r;
	o->kind = S_ISDIR(o->st.st_mode) ? XA_DIR : XA_FILE;
	return 0;
}

/* key + "/" (caller frees), or NULL. */
static char *xa_dir_key(const char *key)
{
	size_t n = strlen(key);
	char *d = malloc(n + 2);

	if (d) {
		memcpy(d, key, n);
		memcpy(d + n, "/", 2);
	}
	return d;
}

/*
 * The stored set (*enc, caller frees) and etag (etag[96], "" unknown) of
 * a file or folder, by HEAD (folder: of its marker; none: an implicit
 * folder, no set).  Refreshes the attribute cache and the noted set.
 */
static int xa_head(struct xa_obj *o, char **enc, char *etag)
{
	struct bfs_provider *p = o->rt.b->prov;
	struct bfs_meta m;
	struct stat st;
	char *dkey = NULL;
	int r;

	*enc = NULL;
	etag[0] = '\0';
	if (!p)
		return BFS_ERR_IO;
	memset(&m, 0, sizeof(m));
	if (o->kind == XA_DIR) {
		if (!(dkey = xa_dir_key(o->key)))
			return BFS_ERR_NOMEM;
		r = p->ops->head(p->st, dkey, &m);
		free(dkey);
		if (r == BFS_ERR_NOTFOUND) {
			*enc = strdup("");
			return *enc ? 0 : BFS_ERR_NOMEM;
		}
	} else {
		r = p->ops->head(p->st, o->key, &m);
	}
	bfs_rbucket_note(o->rt.b, r == BFS_ERR_NOTFOUND ? 0 : r);
	if (r != 0)
		return r;
	bfs_fs_meta_to_stat(o->rt.b, &m, o->kind == XA_DIR, &st);
	bfs_attr_put_meta(o->rt.b->name, o->key, &st, m.etag[0] ? m.etag : NULL);
	bfs_xattr_note(o->rt.b->name, o->key, &m);
	snprintf(etag, 96, "%s", m.etag);
	*enc = strdup(m.has_xattr ? m.xattr : "");
	return *enc ? 0 : BFS_ERR_NOMEM;
}

/* The stored set of a file or folder (*enc, caller frees; "" none). */
static int xa_stored(struct xa_obj *o, char **enc)
{
	struct bfs_ofile *of;
	char etag[96];

	*enc = NULL;
	if (o->kind == XA_FILE &&
	    (of = bfs_ofile_find(o->rt.b->name, o->key)) != NULL) {
		*enc = bfs_ofile_xattr_dup(of);
		bfs_ofile_put(of);
		if (*enc)
			return 0;
	}
	if (bfs_attr_etag(o->rt.b->name, o->key, etag, sizeof(etag)) == 1 &&
	    (*enc = xa_noted(o->rt.b->name, o->key, etag)) != NULL)
		return 0;
	return xa_head(o, enc, etag);
}

/* The etag of a stored file into etag[96]: 0, or BFS_ERR_NOTFOUND when
 * none was stored yet.  An open file knows the version its staged copy
 * replaces (or its own upload stored). */
static int xa_etag(struct xa_obj *o, char *etag)
{
	struct bfs_ofile *of;
	char *enc = NULL;
	int r = 1;

	etag[0] = '\0';
	if ((of = bfs_ofile_find(o->rt.b->name, o->key)) != NULL) {
		r = bfs_ofile_base_etag(of, etag, 96);
		bfs_ofile_put(of);
		if (r != 1)
			return r;     /* else: ask the cache, then the server */
	}
	if (bfs_attr_etag(o->rt.b->name, o->key, etag, 96) == 1)
		return 0;
	r = xa_head(o, &enc, etag);
	free(enc);
	if (r == 0 && !etag[0])
		r = BFS_ERR_NOTFOUND;
	return r;
}

/* ---- the read-only attributes ---- */

enum { XA_BUCKET, XA_BUCKET_ID, XA_KEY, XA_ETAG, XA_URL, XA_NOWN };
static const char *const xa_own_names[XA_NOWN] = {
	XA_OWN "bucket", XA_OWN "bucket_id", XA_OWN "key", XA_OWN "etag",
	XA_OWN "url"
};

static int xa_own_index(const char *name)
{
	int i;

	for (i = 0; i < XA_NOWN; i++)
		if (!strcmp(name, xa_own_names[i]))
			return i;
	return -1;
}

/*
 * Value of read-only attribute i of o (*val, caller frees).  0,
 * BFS_ERR_NODATA (not there for this object), or another BFS_ERR_*.
 */
static int xa_own_value(struct xa_obj *o, int i, char **val)
{
	struct bfs_provider *p = o->rt.b->prov;
	const char *prefix = o->rt.b->prefix ? o->rt.b->prefix : "";
	char etag[96];
	long exp;
	int r;

	*val = NULL;
	switch (i) {
	case XA_BUCKET:
		*val = strdup(o->rt.b->name);
		break;
	case XA_BUCKET_ID:
		if (!o->rt.b->id)
			return BFS_ERR_NODATA;
		*val = strdup(o->rt.b->id);
		break;
	case XA_KEY:
		if (o->kind == XA_BROOT)
			*val = strdup(prefix);
		else if (o->kind == XA_DIR)
			*val = xa_dir_key(o->key);
		else
			*val = strdup(o->key);
		break;
	case XA_ETAG:
		if (o->kind != XA_FILE)
			return BFS_ERR_NODATA;
		if ((r = xa_etag(o, etag)) == BFS_ERR_NOTFOUND)
			return BFS_ERR_NODATA;
		if (r != 0)
			return r;
		*val = strdup(etag);
		break;
	case XA_URL:
		if (o->kind != XA_FILE || !p || !p->ops->presign)
			return BFS_ERR_NODATA;
		exp = atomic_load(&bfs_fs.presign_expires);
		if ((r = p->ops->presign(p->st, o->key, exp > 0 ? exp : 3600,
					 val)) != 0)
			return r;
		break;
	default:
		return BFS_ERR_NODATA;
	}
	return *val ? 0 : BFS_ERR_NOMEM;
}

/* Copies len bytes of v out as getxattr/listxattr answer them: the
 * count, BFS_ERR_XATTRTOOBIG (E2BIG) or BFS_ERR_BUFTOOSMALL (ERANGE). */
static int xa_answer(const void *v, size_t len, char *out, size_t size)
{
	if (len > XA_VALUE_MAX)
		return BFS_ERR_XATTRTOOBIG;
	if (size == 0)
		return (int)len;
	if (size < len)
		return BFS_ERR_BUFTOOSMALL;
	memcpy(out, v, len);
	return (int)len;
}

int bfs_fs_getxattr(const char *path, const char *name, char *value,
		    size_t size)
{
	struct bfs_xattrs x;
	const struct bfs_xattr *a;
	struct xa_obj o;
	char *enc = NULL, *val = NULL;
	int r, i;

	memset(&x, 0, sizeof(x));
	if (strncmp(name, "user.", 5))
		return BFS_ERR_NOTSUP;   /* no lookup, no request */
	if ((r = xa_resolve(path, &o)) != 0)
		goto out;
	if (o.kind == XA_NONE) {
		r = BFS_ERR_NODATA;
		goto out;
	}
	/* the kernel's read check may have used a listing's attributes */
	if (o.kind == XA_FILE &&
	    (r = bfs_fs_listing_access(o.rt.b, &o.st, BFS_PERM_R)) != 0)
		goto out;
	if ((i = xa_own_index(name)) >= 0) {
		r = xa_own_value(&o, i, &val);
		if (r == 0)
			r = xa_answer(val, strlen(val), value, size);
		goto out;
	}
	if (o.kind == XA_BROOT || !strncmp(name, XA_OWN, strlen(XA_OWN))) {
		r = BFS_ERR_NODATA;
		goto out;
	}
	if ((r = xa_stored(&o, &enc)) != 0 ||
	    (r = bfs_xattrs_decode(enc, &x)) != 0)
		goto out;
	a = bfs_xattrs_find(&x, name);
	r = a ? xa_answer(a->value, a->len, value, size) : BFS_ERR_NODATA;
out:
	bfs_xattrs_free(&x);
	free(val);
	free(enc);
	xa_obj_clear(&o);
	return r;
}

int bfs_fs_listxattr(const char *path, char *list, size_t size)
{
	struct bfs_xattrs x;
	struct bfs_buf names;
	struct xa_obj o;
	char *enc = NULL, *val = NULL;
	size_t k;
	int r, i;

	memset(&x, 0, sizeof(x));
	bfs_buf_init(&names, XA_LIST_MAX);
	if ((r = xa_resolve(path, &o)) != 0)
		goto out;
	if (o.kind == XA_NONE) {
		r = 0;
		goto out;
	}
	for (i = 0; i < XA_NOWN; i++) {
		/* only what getxattr answers (getfattr -d reads them all) */
		if (i == XA_ETAG || i == XA_URL || i == XA_BUCKET_ID) {
			r = xa_own_value(&o, i, &val);
			free(val);
			val = NULL;
			if (r == BFS_ERR_NODATA)
				continue;
			if (r != 0)
				goto out;
		}
		if ((r = bfs_buf_add(&names, xa_own_names[i],
				     strlen(xa_own_names[i]) + 1)) < 0)
			goto out;
	}
	if (o.kind != XA_BROOT) {
		if ((r = xa_stored(&o, &enc)) != 0 ||
		    (r = bfs_xattrs_decode(enc, &x)) != 0)
			goto out;
		for (k = 0; k < x.n; k++)
			if ((r = bfs_buf_add(&names, x.v[k].name,
					     strlen(x.v[k].name) + 1)) < 0) {
				r = BFS_ERR_XATTRTOOBIG;
				goto out;
			}
	}
	r = xa_answer(names.p, names.len, list, size);
out:
	bfs_xattrs_free(&x);
	bfs_buf_free(&names);
	free(enc);
	xa_obj_clear(&o);
	return r;
}

/* ---- changes ---- */

/* Bytes the encoded set may take in bucket b. */
static size_t xa_limit(const struct bfs_rbucket *b)
{
	if (b->kind == BFS_PROV_LOCAL)
		return BFS_META_XATTR_MAX;
	return XA_S3_META_MAX - XA_S3_OTHER_META;
}

/*
 * Applies one change to the encoded set enc into out (set name to
 * value[size] with flags, or del): 0, BFS_ERR_EXISTS, BFS_ERR_NODATA,
 * BFS_ERR_XATTRTOOBIG (over limit) or BFS_ERR_NOMEM.
 */
static int xa_change(const char *enc, const char *name, const char *value,
		     size_t size, int flags, int del, size_t limit,
		     struct bfs_buf *out)
{
	struct bfs_xattrs x;
	int r, have;

	memset(&x, 0, sizeof(x));
	if (bfs_xattrs_decode(enc, &x) != 0) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	have = bfs_xattrs_find(&x, name) != NULL;
	if (del || (flags & XATTR_REPLACE)) {
		if (!have) {
			r = BFS_ERR_NODATA;
			goto out;
		}
	} else if ((flags & XATTR_CREATE) && have) {
		r = BFS_ERR_EXISTS;
		goto out;
	}
	r = del ? bfs_xattrs_del(&x, name) : bfs_xattrs_set(&x, name, value, size);
	if (r != 0) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	bfs_buf_free(out);
	bfs_buf_init(out, limit);
	r = bfs_xattrs_encode(&x, out);
	r = r == BFS_ERR_TOOBIG ? BFS_ERR_XATTRTOOBIG : r ? BFS_ERR_NOMEM : 0;
out:
	bfs_xattrs_free(&x);
	return r;
}

/*
 * Stores the set enc for a file or folder nobody has open (or whose open
 * file is clean): rewrites the object's metadata; an implicit folder gets
 * a marker.  0 or BFS_ERR_*.
 */
static int xa_store(struct xa_obj *o, const char *key, const char *enc)
{
	struct bfs_provider *p = o->rt.b->prov;
	struct bfs_meta m;
	char *dkey = NULL;
	int r;

	if (!p)
		return BFS_ERR_IO;
	memset(&m, 0, sizeof(m));
	m.has_xattr = 1;
	snprintf(m.xattr, sizeof(m.xattr), "%s", enc);
	if (o->kind != XA_DIR) {
		r = p->ops->set_meta(p->st, key, &m);
		goto out;
	}
	r = BFS_ERR_NOMEM;
	if (!(dkey = xa_dir_key(key)))
		goto out;
	r = p->ops->set_meta(p->st, dkey, &m);
	if (r == BFS_ERR_NOTFOUND) {
		m.mode = o->st.st_mode;
		m.uid = o->st.st_uid;
		m.gid = o->st.st_gid;
		m.mtime = o->st.st_mtim.tv_sec;
		m.mtime_nsec = o->st.st_mtim.tv_nsec;
		m.has_mode = m.has_uid = m.has_gid = m.has_mtime = 1;
		r = p->ops->put_buf(p->st, dkey, "", 0, &m, NULL, 0);
	}
out:
	bfs_rbucket_note(o->rt.b, r);
	free(dkey);
	return r;
}

/* The error of a failed store: a provider out of metadata room answers
 * BFS_ERR_TOOBIG, which for an xattr is BFS_ERR_XATTRTOOBIG (E2BIG). */
static int xa_store_err(int r)
{
	return r == BFS_ERR_TOOBIG ? BFS_ERR_XATTRTOOBIG : r;
}

/* setxattr (del 0) and removexattr (del 1). */
static int xa_modify(const char *path, const char *name, const char *value,
		     size_t size, int flags, int del)
{
	struct bfs_buf nenc;
	struct bfs_ofile *of = NULL;
	struct xa_obj o;
	const char *own;
	char *enc = NULL;
	int r, queue = 0, repin = 0;

	bfs_buf_init(&nenc, BFS_META_XATTR_MAX);
	memset(&o, 0, sizeof(o));
	if (strncmp(name, "user.", 5))
		return BFS_ERR_NOTSUP;
	if (!strncmp(name, XA_OWN, strlen(XA_OWN)))
		return BFS_ERR_PERM;
	if (!bfs_xattr_name_ok(name))
		return BFS_ERR_INVAL;
	if (!del && size > BFS_META_XATTR_MAX)
		return BFS_ERR_XATTRTOOBIG;
	if ((r = xa_resolve(path, &o)) != 0)
		goto out;
	if ((r = bfs_route_allows(&o.rt, BFS_ROP_XATTR_SET)) != 0)
		goto out;
	if (o.kind == XA_FILE)
		of = bfs_ofile_find(o.rt.b->name, o.key);
	if (of) {
		/* one change of its metadata at a time, none while a rename
		 * of it runs (chmod's copy, fs.c); then still this name? */
		if (bfs_ofile_attr_begin(of, o.rt.b->name, o.key) != 0) {
			r = BFS_ERR_NOTFOUND;    /* renamed meanwhile */
			goto out;
		}
		if (bfs_ofile_xattr_own_locked(of, &own)) {
			/* the open file's own set, changed under its lock */
			r = xa_change(own, name, value, size, flags, del,
				      xa_limit(o.rt.b), &nenc);
			if (r == 0 && bfs_ofile_attr_must_send_locked(of)) {
				/* the clean object's metadata copy runs
				 * without mu, as chmod's (attr_busy keeps
				 * other changes and renames waiting) */
				bfs_ofile_attr_send_begin_locked(of);
				r = xa_store(&o, o.key, bfs_buf_str(&nenc));
				bfs_ofile_attr_send_end(of);
				repin = r == 0;  /* after mu: it HEADs */
				r = r ? xa_store_err(r) : 0;
			} else if (r == 0) {
				queue = bfs_ofile_attr_changed_locked(of);
			}
			if (r == 0)
				r = bfs_ofile_xattr_set_locked(of,
				    bfs_buf_str(&nenc)) ? BFS_ERR_NOMEM : 0;
			bfs_ofile_unlock(of);
			if (queue)
				bfs_upq_add(of);
			if (repin)
				repin_read_version(of, o.rt.b, o.key);
			goto dropped;
		}
		bfs_ofile_unlock(of);
	}
	if ((r = xa_stored(&o, &enc)) != 0)
		goto out;
	if ((r = xa_change(enc, name, value, size, flags, del,
			   xa_limit(o.rt.b), &nenc)) != 0)
		goto out;
	if ((r = xa_store(&o, o.key, bfs_buf_str(&nenc))) != 0) {
		r = xa_store_err(r);
		goto dropped;
	}
	if (of)
		bfs_ofile_xattr_learn(of, bfs_buf_str(&nenc));
dropped:
	bfs_attr_drop(o.rt.b->name, o.key);
	xa_forget(o.rt.b->name, o.key);
out:
	bfs_ofile_put(of);
	bfs_buf_free(&nenc);
	free(enc);
	xa_obj_clear(&o);
	return r;
}

int bfs_fs_setxattr(const char *path, const char *name, const char *value,
		    size_t size, int flags)
{
	return xa_modify(path, name, value, size, flags, 0);
}

int bfs_fs_removexattr(const char *path, const char *name)
{
	return xa_modify(path, name, NULL, 0, 0, 1);
}
