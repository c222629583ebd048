/*
 * bfs_route.h - the routing layer between FUSE and the providers: the live
 * bucket registry, path -> (bucket, key) resolution, what each route allows
 * (bfs_route_allows: one table, allow.c) and the control files
 * (.defaults, .assignments, .buckets, .metrics).  No FUSE headers here: the
 * FUSE layer (src/fuse) turns these results into errno and struct stat.
 *
 * Registry.  The set of buckets comes from the store (bfs_store_bucket_list
 * with the master key); each bucket owns an opened provider.  A bucket is
 * refcounted: bfs_registry_get() hands out a reference that keeps the
 * bucket and its provider alive across a reload until bfs_rbucket_put().
 * A reload (the poll thread sees bfs_store_data_version change, a control
 * file write, SIGHUP) swaps the whole set; unchanged buckets keep their
 * provider.  A bucket whose provider failed to open stays listed with
 * status error.
 */
#ifndef BFS_ROUTE_H
#define BFS_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_provider.h"
#include "bfs_store.h"

/* One live bucket.  Fields are read-only after the registry published it,
 * except refs (atomic) and the status (atomics). */
struct bfs_rbucket {
	char *name;
	char *id;                /* storage_buckets.id (may be NULL) */
	char *prefix;            /* "" or ends with '/' */
	char *remote;            /* for .buckets: bucket_name[/prefix] or folder */
	int kind;                /* enum bfs_provider_kind */
	int read_only;
	struct bfs_provider *prov;   /* NULL when the provider failed to open */
	char open_err[256];      /* why prov is NULL */
	struct bfs_bucket_conf conf; /* the settings it was opened with */
	/* conf's owner, group and modes resolved when it was opened: the
	 * bucket folder (uid, gid, mode) and objects and folders without
	 * s3fs metadata (uid, gid, file_mode, dir_mode).  Unset settings and
	 * names this host does not know (logged) give the mounting user
	 * (the daemon's euid and egid), 0755, 0644, 0755. */
	uint32_t uid, gid;
	uint32_t mode, file_mode, dir_mode;
	_Atomic int refs;
	_Atomic int last_err;    /* 0 or the last BFS_ERR_* of a remote op */
};

struct bfs_registry;

/*
 * Builds the registry from the store's buckets.  key: master key or NULL
 * (then buckets with a secret get status error).  single: bucket name for
 * single-bucket mode or NULL.  Fails with a one-line reason in err when the
 * bucket list cannot be read (wrong master key, tampered secret, DB error)
 * or, in single-bucket mode, the bucket does not exist.
 */
int bfs_registry_new(struct bfs_store *s, const unsigned char *key,
		     const char *single, struct bfs_registry **out,
		     char *err, size_t errlen);
/* Stops the poll thread and drops every bucket (waits for nothing: callers
 * must have released their references). */
void bfs_registry_free(struct bfs_registry *r);

/*
 * Called by a reload for every bucket whose settings changed or that went
 * away (by name), after the new set serves, so caches holding attributes
 * made from the old settings can drop them.  Runs on the reloading thread
 * with no registry lock held except the reload serialization.  Set it
 * before bfs_registry_start (NULL: none).
 */
typedef void (*bfs_registry_changed_fn)(const char *bucket);
void bfs_registry_set_changed_fn(struct bfs_registry *r,
				 bfs_registry_changed_fn fn);

/* Re-reads the bucket list now; on failure the old set keeps serving. */
int bfs_registry_reload(struct bfs_registry *r, char *err, size_t errlen);
/* Replaces the master key used by later reloads (NULL: none). */
void bfs_registry_set_key(struct bfs_registry *r, const unsigned char *key);

/*
 * Starts the thread that polls bfs_store_data_version every 250 ms and
 * reloads on change; it also runs hook (when set) whenever
 * bfs_registry_request_hook() was called, e.g. from a SIGHUP handler
 * (async-signal-safe).
 */
typedef void (*bfs_registry_hook_fn)(void *arg);
int bfs_registry_start(struct bfs_registry *r, bfs_registry_hook_fn hook,
		       void *arg);
void bfs_registry_stop(struct bfs_registry *r);
void bfs_registry_request_hook(struct bfs_registry *r);
/* Ends the poll thread's current wait at once (any thread; not from a
 * signal handler): the catalog may have changed. */
void bfs_registry_wake(struct bfs_registry *r);

/* +1 reference on bucket name, or NULL when absent. */
struct bfs_rbucket *bfs_registry_get(struct bfs_registry *r, const char *name);
void bfs_rbucket_ref(struct bfs_rbucket *b);
void bfs_rbucket_put(struct bfs_rbucket *b);
/* Records the result of a remote operation for the bucket's status. */
void bfs_rbucket_note(struct bfs_rbucket *b, int err);

/* Names of the current buckets (sorted); free with bfs_registry_names_free. */
int bfs_registry_names(struct bfs_registry *r, char ***names, size_t *n);
void bfs_registry_names_free(char **names, size_t n);

struct bfs_store *bfs_registry_store(struct bfs_registry *r);
/*
 * Replaces the store handle (not owned).  Only before bfs_registry_start:
 * the daemon closes its SQLite connection before fuse_daemonize() forks
 * and opens a new one in the child, since a connection must never cross
 * a fork (the child would hold none of the parent's file locks).
 */
void bfs_registry_set_store(struct bfs_registry *r, struct bfs_store *s);
/* NULL in multi-bucket mode. */
const char *bfs_registry_single(struct bfs_registry *r);

/* ---- routing ---- */

enum bfs_route_kind {
	BFS_ROUTE_ROOT = 0,      /* the mount root (multi-bucket mode) */
	BFS_ROUTE_CTL,           /* a control file; ctl says which */
	BFS_ROUTE_BUCKET,        /* inside a bucket (rel "" = its root) */
	BFS_ROUTE_RESERVED,      /* a root name starting with '.' or '@' */
	BFS_ROUTE_VIEW           /* @chat or @form: the folder of context IDs
				  * (view says which) */
};

/*
 * A resolved path.  Bucket folders and context views both resolve to
 * kind BUCKET with the bucket b and the path rel inside it, so that a view
 * path and its bucket path are one (bucket, key) to every cache, staging
 * file, upload and open-file entry: @chat/team42/a.jpg is bucket b, rel
 * "chat/team42/a.jpg", exactly as b/chat/team42/a.jpg.
 */
struct bfs_route {
	int kind;
	int ctl;                 /* enum bfs_ctl_kind */
	struct bfs_rbucket *b;   /* referenced when kind == BUCKET */
	const char *rel;         /* path inside b ("" its root; "" for other
				  * kinds), in own */
	const char *name;        /* last path component, in own */
	/* context views (view != BFS_VIEW_NONE) */
	int view;                /* enum bfs_view (bfs_view.h) */
	int ctx_type;            /* 0 chat, 1 form; -1 for no context */
	char ctx_id[129];        /* the context ID (BFS_CTX_ID_MAX + 1) */
	unsigned ctx_root : 1;   /* @chat/ID itself: a folder that exists
				  * for every valid ID with a bucket */
	unsigned elsewhere : 1;  /* b is not the context's current bucket:
				  * it holds the context's indexed file */
	unsigned dir_elsewhere : 1; /* no file here; other buckets hold
				  * indexed files below it (a folder) */
	unsigned indexed : 1;    /* the index holds rel in b (a file) */
	char *own;               /* rel and name (one allocation, owned) */
};

/*
 * Resolves an absolute FUSE path.  BFS_ERR_NOTFOUND for an unknown bucket
 * or control file name at the root, and for a view no bucket serves (no
 * assignment, no default: logged once per routing snapshot); BFS_ERR_INVAL
 * for a context ID that is not [A-Za-z0-9_-]{1,128}.  A RESERVED route
 * names a root entry that never exists.  Views (multi-bucket mode only):
 * "@general[/P]" routes to the general default, "@chat/ID[/P]" and
 * "@form/ID[/P]" by bfs_view_pick over the routing snapshot, then, for a
 * path below the context, the file index: a file indexed only in another
 * bucket (stored before a re-routing) is served from there (elsewhere).
 * The route owns its strings: rel and name point into memory it owns, not
 * into path, so it may outlive the path buffer; release it with
 * bfs_route_clear() (also after a failed resolve; a struct copy moves the
 * ownership).
 */
int bfs_route_resolve(struct bfs_registry *r, const char *path,
		      struct bfs_route *out);
void bfs_route_clear(struct bfs_route *rt);
/* Which view folders exist at the root now (present[BFS_VIEW_*] 1 when a
 * bucket can serve it); all 0 in single-bucket mode. */
void bfs_registry_views(struct bfs_registry *r, int *present, size_t n);
/*
 * The IDs of contexts of type (0 chat, 1 form) that have an assignment or
 * indexed files, sorted, valid IDs only; free with bfs_registry_names_free.
 */
int bfs_route_ctx_ids(struct bfs_registry *r, int type, char ***ids,
		      size_t *n);
/*
 * The indexed files of a context folder route (view chat/form, kind
 * BUCKET) at or below rt->rel + "/", in every bucket (the caller lets the
 * current bucket's live listing win): one index query.  cb as
 * bfs_store_ctx_folder's (store lock held).
 */
int bfs_route_ctx_elsewhere(struct bfs_registry *r, const struct bfs_route *rt,
			    bfs_ctx_row_fn cb, void *arg);
/*
 * What a route lets the vfs do.  One operation per decision the vfs makes
 * from the route alone, before it looks at any object; the table in
 * src/route/allow.c is the whole policy.
 */
enum bfs_route_op {
	BFS_ROP_LOOKUP = 0,       /* getattr, and resolving a path for xattrs */
	BFS_ROP_READDIR,
	BFS_ROP_OPEN_READ,        /* open(O_RDONLY) */
	BFS_ROP_OPEN_WRITE,       /* open(O_WRONLY or O_RDWR), O_TRUNC or not */
	BFS_ROP_OPEN_TRUNC,       /* open(O_RDONLY | O_TRUNC) */
	BFS_ROP_CREATE,
	BFS_ROP_MKDIR,
	BFS_ROP_RMDIR,
	BFS_ROP_UNLINK,
	BFS_ROP_SYMLINK,          /* the new link's path */
	BFS_ROP_READLINK,
	BFS_ROP_RENAME_FROM,
	BFS_ROP_RENAME_TO,
	BFS_ROP_TRUNCATE,         /* truncate(2) by path */
	BFS_ROP_SETATTR,          /* chmod, chown by path */
	BFS_ROP_SETTIMES,         /* utimens by path */
	BFS_ROP_XATTR_SET,        /* setxattr, removexattr */
	BFS_ROP_COUNT
};

/*
 * Whether the route allows op: 0, or the BFS_ERR_* the vfs returns for
 * it (the table in allow.c, by the route's class: mount root, read-only
 * control file, writable control file, reserved name, view folder,
 * bucket root, context folder @chat/ID, an entry inside a bucket, an
 * entry of a read-only bucket).  0 for the root and control files means
 * "accepted", not "has an object": bfs_route_has_key says whether there
 * is a bucket entry to work on.  BFS_ERR_INVAL for an unknown op.
 */
int bfs_route_allows(const struct bfs_route *rt, int op);
/* 1 when rt names an entry inside a bucket (kind BUCKET, rel not ""):
 * one that has a remote key (bfs_route_key). */
int bfs_route_has_key(const struct bfs_route *rt);

/* Remote key of a bucket route (dir: with '/'); caller frees *key.
 * BFS_ERR_INVAL / BFS_ERR_NAMETOOLONG for a path that makes an unsafe key. */
int bfs_route_key(const struct bfs_route *rt, int dir, char **key);

/* ---- control files ---- */

enum bfs_ctl_kind {
	BFS_CTL_DEFAULTS = 0, BFS_CTL_ASSIGNMENTS, BFS_CTL_BUCKETS,
	BFS_CTL_METRICS, BFS_CTL_COUNT
};
#define BFS_CTL_RENDER_MAX (16u * 1024 * 1024)

/* ".defaults" -> BFS_CTL_DEFAULTS ...; -1 when not a control file. */
int bfs_ctl_lookup(const char *name);
const char *bfs_ctl_name(int kind);
/* 1 for .defaults and .assignments. */
int bfs_ctl_writable(int kind);
/* The current content of a control file into out (initialized by caller). */
int bfs_ctl_render(struct bfs_registry *r, int kind, struct bfs_buf *out);
/*
 * A write session: one open() of .defaults or .assignments for writing
 * (INTERFACE.md "Control-file write sessions"; how offsets are read:
 * control.c).  append: the open had O_APPEND.  BFS_ERR_ACCESS for a
 * read-only control file.  Free with bfs_ctl_session_end().
 */
struct bfs_ctl_session;
int bfs_ctl_session_new(struct bfs_registry *r, int kind, int append,
			struct bfs_ctl_session **out);
/*
 * One write() of len bytes at offset off by lock owner `owner` (the
 * writer's fd table as the kernel names it; 0: unknown).  Every line it
 * completes is
 * checked at once (syntax, and its bucket against the registry).  0;
 * BFS_ERR_INVAL for a bad line or an out-of-order offset, BFS_ERR_TOOBIG
 * past 16 MiB in the session (both logged with the reason and the line;
 * the session is spoiled: later writes and commits fail alike).
 */
int bfs_ctl_session_write(struct bfs_ctl_session *s, const char *data,
			  size_t len, uint64_t off, uint64_t owner);
/*
 * A close() by lock owner `owner`.  When owner wrote to the session (a
 * flush from a forked child's inherited copy changes nothing, 0): applies
 * what was written since the previous commit in one store transaction
 * (nothing written: nothing to do, 0).  BFS_ERR_INVAL when the
 * session is spoiled, its last line is incomplete or the store refuses
 * (a bucket removed meanwhile): then nothing of it is applied.  Reloads
 * the registry after a change.
 */
int bfs_ctl_session_commit(struct bfs_ctl_session *s, uint64_t owner);
/*
 * Ends and frees s (NULL is fine).  apply: commit what is still pending
 * first (writes no commit saw; logged), else drop it (shutdown).  Returns
 * the commit's result.
 */
int bfs_ctl_session_end(struct bfs_ctl_session *s, int apply);

#endif
