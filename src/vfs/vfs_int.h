/*
 * vfs_int.h - private interface of the filesystem layer (src/vfs), used by
 * its own files only.  No FUSE header: the public API is bfs_vfs.h, which
 * the FUSE adapter (src/fuse) and the unit tests call.
 *
 * Pieces: vfs.c (the context and the bfs_vfs_* entry points),
 * attrcache.c (a short-lived stat cache filled by listings and heads),
 * the open-file module (struct bfs_ofile's fields are its own,
 * ofile_int.h): ofile.c (the table of open files with their staging
 * files, journal rows and the staging byte budget), ofile_attr.c
 * (attribute changes), ofile_io.c (stat, handles, reads, writes,
 * truncation), upload.c (upload jobs, the pending-upload queue and its
 * worker, start-up recovery from the journal) and mpu.c (streaming
 * multipart); xattr.c (extended attributes), fence.c (rename fences and
 * the objects kept for files unlinked while open) and fs.c (the
 * path-based operations).  Every function here answers 0, a count or a
 * negative BFS_ERR_*, never an errno (that is the FUSE adapter's).
 */
#ifndef BFS_VFS_INT_H
#define BFS_VFS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "bfs_provider.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "bfs_vfs.h"

/* BFS_FS_IO_SIZE (the st_blksize of files, the adapter's max_write):
 * bfs_vfs.h. */

/* ---- vfs.c: the caller of the running call ---- */

/* The caller the bfs_vfs_* entry point running on this thread was given
 * (NULL: none, or outside an entry point: the mount's own user). */
const struct bfs_vfs_caller *bfs_vfs_caller_cur(void);
/* Its supplementary groups (bfs_vfs_caller.getgroups): up to n into
 * list; how many it has, or a negative BFS_ERR_* (BFS_ERR_NOTSUP:
 * unknown). */
int bfs_vfs_caller_groups(const struct bfs_vfs_caller *who, int n,
			  gid_t *list);

/* ---- attrcache.c ---- */

#define BFS_ATTR_TTL_MS 2000
#define BFS_ATTR_MAX 100000

void bfs_attr_init(void);
void bfs_attr_destroy(void);
/* Stores st for (bucket, key) for BFS_ATTR_TTL_MS. */
void bfs_attr_put(const char *bucket, const char *key, const struct stat *st);
/* 1 and *st when a fresh entry exists. */
int bfs_attr_get(const char *bucket, const char *key, struct stat *st);
void bfs_attr_drop(const char *bucket, const char *key);
/* Drops every entry of a bucket (folder renames, rmdir). */
void bfs_attr_drop_bucket(const char *bucket);

/* ---- ofile.c: the open-file table ---- */

/*
 * One open file, shared by every fd of the same (bucket, key).  Opaque
 * here: its fields are the open-file module's (ofile.c, ofile_attr.c,
 * ofile_io.c, upload.c, mpu.c; ofile_int.h), which the rest of the layer
 * drives through the transitions and accessors below.  Its states,
 * transitions and their locks: ofile.c's opening comment and
 * docs/ARCHITECTURE.md.
 */
struct bfs_ofile;
struct bfs_gone;

struct bfs_fs_ctx {
	struct bfs_registry *reg;
	char *staging_dir;            /* cache_dir/staging */
	uid_t uid;                    /* owner of objects without metadata */
	gid_t gid;
	int upload_timeout;           /* seconds: bound of close/fsync and of
				       * the shutdown flush */
	uint64_t cache_size;          /* bytes: bound on staged data */
	_Atomic int64_t admin_gid;    /* group of .defaults and .assignments
				       * (admin_group), -1: none; SIGHUP
				       * changes it */
	_Atomic int list_metadata;    /* enum bfs_list_meta of the config's
				       * [bucketfs] section (SIGHUP changes it);
				       * a bucket's own setting wins */
	_Atomic long presign_expires; /* seconds of a user.bucketfs.url
				       * ([bucketfs], SIGHUP changes it) */
};

extern struct bfs_fs_ctx bfs_fs;

void bfs_ofile_init(void);
/*
 * +1 ref on the open file of (b, key), made when absent with the attributes
 * in st (st may be NULL for a file that will be created).  *created is 1
 * when this call made it.
 */
int bfs_ofile_get(struct bfs_rbucket *b, const char *key,
		  const struct stat *st, struct bfs_ofile **out, int *created);
/* +1 ref on an open file the caller already holds a reference to (no
 * lock taken: callable with of->mu held). */
void bfs_ofile_ref(struct bfs_ofile *of);
/* +1 ref on an existing open file, or NULL. */
struct bfs_ofile *bfs_ofile_find(const char *bucket, const char *key);
/* -1 ref; the last one removes it, closes and (when clean) deletes its
 * staging file. */
void bfs_ofile_put(struct bfs_ofile *of);
/*
 * Makes of->fd hold the content (downloads it when needed; want_empty: an
 * empty file, never downloaded).  mu held; released across the download
 * (or HEAD), during which of->stage_busy is set and other stages wait on
 * of->cv: the caller re-checks what it read before.
 */
int bfs_ofile_stage_locked(struct bfs_ofile *of, int want_empty);
/*
 * Marks the staged content dirty (or clean); mu held.  The first time a
 * file becomes dirty its journal row is written (lazily: it survives
 * kill -9 at once, a power cut after the next durable journal write)
 * before this returns, so callers call it before acknowledging the
 * change; later calls only bump of->gen.  Returns the journal error (the
 * file is dirty all the same).
 */
int bfs_ofile_set_dirty_locked(struct bfs_ofile *of, int dirty);
/* Removes the spare staging files (at exit; none are kept after it). */
void bfs_ofile_spares_drop(void);
/* Writes the journal row of a dirty file with its current attributes;
 * durable: fsync'd (synchronous=FULL), else lazily (survives kill -9). */
int bfs_ofile_journal_put_locked(struct bfs_ofile *of, int durable);
/* The same, durably, for a file whose mu the caller does not hold: the
 * staging file is fsync'd and the row committed without mu (exit). */
int bfs_ofile_journal_sync(struct bfs_ofile *of);
/*
 * Reserves staging bytes so the staged size can become new_size (or
 * returns them when smaller).  When the budget (cache_size) is exhausted,
 * waits up to upload_timeout for uploads to free space, then returns
 * BFS_ERR_NOSPC.  mu held (released while waiting).
 */
int bfs_ofile_budget_locked(struct bfs_ofile *of, uint64_t new_size);
/* Staged bytes counted now (all files). */
uint64_t bfs_ofile_staged_bytes(void);
/* Fills st from the open file; mu held. */
void bfs_ofile_stat_locked(struct bfs_ofile *of, struct stat *st);
/* The object metadata of of as it is now (mode, owner, mtime, size,
 * content type from the name).  of->mu held. */
void bfs_ofile_meta_locked(const struct bfs_ofile *of, struct bfs_meta *m);
/*
 * Detaches from the table (unlink, overwritten by rename): no upload
 * starts any more, a job already running is waited for (so the caller's
 * delete comes after it), then its journal row goes (not under any
 * lock).  No lock held.
 */
void bfs_ofile_detach(struct bfs_ofile *of);
/* Only takes it out of the table (no lock held; a conflict copy). */
void bfs_ofile_unhook(struct bfs_ofile *of);
/*
 * Moves the entry of (src bucket, src key) or, with prefix, every entry
 * whose key starts with src to the new bucket/key (rename), and their
 * journal rows (after the table lock is released).  mark_dirty: a moved
 * file with staged content is marked dirty, so its content is uploaded
 * under the new key whatever raced with the move (by the queue when no
 * handle is left).  A file already open under a new key is detached (it
 * was replaced).  The caller fences src and dst and waited for their
 * jobs (fs.c rename_fence).  BFS_ERR_NOMEM: nothing moved.  No lock held.
 */
int bfs_ofile_rekey(const char *sbucket, const char *src,
		    struct bfs_rbucket *db, const char *dst, int prefix,
		    int mark_dirty);
/*
 * Where of is now, to use after of->mu is released: +1 ref on its bucket
 * in *b (the caller puts it) and, when key is not NULL, a copy of its key
 * in *key (the caller frees it).  A rename (bfs_ofile_rekey) swaps of->b
 * and of->key under of->mu and drops the old bucket's reference, so they
 * are read only with of->mu (or the table lock) held, and kept beyond it
 * only through this.  0, or BFS_ERR_NOMEM with *b (and *key) NULL.
 * bfs_ofile_where takes of->mu; the _locked variant runs with it held.
 */
int bfs_ofile_where(struct bfs_ofile *of, struct bfs_rbucket **b, char **key);
int bfs_ofile_where_locked(struct bfs_ofile *of, struct bfs_rbucket **b,
			   char **key);
/* Calls fn on every open file whose bucket is `bucket` and key starts with
 * prefix (+1 ref held during the call). */
typedef int (*bfs_ofile_fn)(void *arg, struct bfs_ofile *of);
int bfs_ofile_each(const char *bucket, const char *prefix, bfs_ofile_fn fn,
		   void *arg);
/*
 * Adopts a journal row at start: a new table entry whose staged, dirty
 * content is the row's staging file (fd opened), marked recovered.  +1 ref
 * in *out.  BFS_ERR_NOTFOUND when the staging file is gone,
 * BFS_ERR_EXISTS when the key is already open.
 */
int bfs_ofile_adopt(struct bfs_rbucket *b, const struct bfs_journal_entry *e,
		    struct bfs_ofile **out);

/*
 * After bfs_ofile_detach by an unlink that keeps the object for the open
 * handles: the last reference deletes it (bfs_gone_finish).  aside: the
 * key the object was moved to (the open file reads it there from now on),
 * or NULL; etag: the version its reads are pinned to when they were not
 * yet (NULL: leave them).  Takes aside, etag and g (malloc'd).  No lock
 * held.
 */
void bfs_ofile_set_gone(struct bfs_ofile *of, char *aside, char *etag,
			struct bfs_gone *g);

/* ---- ofile_attr.c: attribute changes of an open file ---- */

/* of->mu, for the _locked calls of the module (asserted under
 * BFS_LOCK_CHECK, bfs_lock.h). */
void bfs_ofile_lock(struct bfs_ofile *of);
void bfs_ofile_unlock(struct bfs_ofile *of);
/* Waits (on of->cv, mu released meanwhile) until no metadata copy of the
 * file is on the wire (attr_busy) and no rename fences its name; mu held. */
void attr_wait_locked(struct bfs_ofile *of);
/*
 * Begins a change of of's attributes (chmod, chown, utimens, setxattr,
 * removexattr): takes mu and waits as attr_wait_locked; with bucket not
 * NULL, then checks of still is (bucket, key): BFS_ERR_NOTFOUND, mu
 * released, when a rename moved it meanwhile.  On 0 mu is held: edit
 * with the _locked calls, end with bfs_ofile_unlock.
 */
int bfs_ofile_attr_begin(struct bfs_ofile *of, const char *bucket,
			 const char *key);
/* 1 when the change must be copied onto the stored object now (clean,
 * stored, not unlinked); else the next upload carries it.  mu held. */
int bfs_ofile_attr_must_send_locked(struct bfs_ofile *of);
/*
 * The copy runs without mu: send_begin sets attr_busy and releases mu
 * (other changes and renames of the file wait on cv meanwhile); send_end
 * (mu not held) takes mu back, clears attr_busy and wakes the waiters;
 * mu is held on return.
 */
void bfs_ofile_attr_send_begin_locked(struct bfs_ofile *of);
void bfs_ofile_attr_send_end(struct bfs_ofile *of);
/* The change was made to the open file: a dirty file's generation moves
 * (a running upload carries the old attributes).  1 when the caller must
 * hand it to the pending queue (bfs_upq_add, after mu): dirty, not
 * unlinked, no handle left.  mu held. */
int bfs_ofile_attr_changed_locked(struct bfs_ofile *of);
/* 1 when its bucket (as of now: a rename may change it) is read-only;
 * mu held. */
int bfs_ofile_read_only_locked(struct bfs_ofile *of);
/* Its attributes; set changes mode, uid, gid and mtime (not size).  mu
 * held. */
struct bfs_ofile_attrs {
	uint32_t mode, uid, gid;      /* mode with type bits */
	struct timespec mtime;
	uint64_t size;
};
void bfs_ofile_attrs_locked(struct bfs_ofile *of, struct bfs_ofile_attrs *a);
void bfs_ofile_set_attrs_locked(struct bfs_ofile *of,
				const struct bfs_ofile_attrs *a);
/* Drops the attribute-cache entry of its current name; mu held. */
void bfs_ofile_attr_drop_locked(struct bfs_ofile *of);
/* Replaces its xattr set by enc (bfs_xattr.h; "" none), known from now
 * on; mu held.  BFS_ERR_NOMEM: unchanged. */
int bfs_ofile_xattr_set_locked(struct bfs_ofile *of, const char *enc);
/* 1 when its own set is the one that counts (known, or dirty, unlinked
 * or not stored: its next upload stores it), *enc pointing at it ("":
 * none; valid while mu is held); else 0.  mu held. */
int bfs_ofile_xattr_own_locked(struct bfs_ofile *of, const char **enc);
/* Its set when known: a copy (the caller frees it), else NULL (also when
 * out of memory).  Takes mu. */
char *bfs_ofile_xattr_dup(struct bfs_ofile *of);
/* The stored object now has set enc: of takes it unless it knows its
 * own.  Takes mu. */
void bfs_ofile_xattr_learn(struct bfs_ofile *of, const char *enc);
/* Staging learned the stored object's metadata m: of takes its xattrs
 * unless it knows them already; mu held. */
void bfs_ofile_learn_xattr_locked(struct bfs_ofile *of,
				  const struct bfs_meta *m);
/* Puts of's xattrs into m for an upload (has_xattr when known); mu held. */
void bfs_ofile_xattr_meta_locked(const struct bfs_ofile *of,
				 struct bfs_meta *m);
/* The etag of the stored version its staged copy replaces (or its own
 * upload stored) into etag[len]: 0; BFS_ERR_NOTFOUND when none was stored
 * yet; 1 when unknown.  Takes mu. */
int bfs_ofile_base_etag(struct bfs_ofile *of, char *etag, size_t len);

/* ---- ofile_io.c: the content of an open file for fs.c ---- */

struct bfs_rc_file;
/* Its stat (bfs_ofile_stat_locked); takes mu. */
void bfs_ofile_stat(struct bfs_ofile *of, struct stat *st);
/* What the path operations decide on, copied under mu (stale once it is
 * released: decide, do not keep). */
struct bfs_ofile_snap {
	int dirty;           /* staged content not uploaded (journal row) */
	int exists_remote;   /* an object of its name is stored */
	int staged;          /* the staging file holds its content */
	int unlinked;        /* detached: removed or replaced */
	int handles;         /* open file handles */
};
void bfs_ofile_snap(struct bfs_ofile *of, struct bfs_ofile_snap *sn);
/* readdir of folder prefix (plen bytes) of bucket: 0 with its stat and
 * its name in the folder (*name, the caller frees) when of is a live
 * entry directly in it now; 1 when not; BFS_ERR_NOMEM.  Takes mu (a
 * rename may rekey it meanwhile). */
int bfs_ofile_child(struct bfs_ofile *of, const char *bucket,
		    const char *prefix, size_t plen, struct stat *st,
		    char **name);
/* A file handle opens / closes on of.  handle_close starts an upload of
 * what is still dirty and returns 1 when the caller must hand of to the
 * pending queue (bfs_upq_add).  Take mu. */
void bfs_ofile_handle_open(struct bfs_ofile *of);
int bfs_ofile_handle_close(struct bfs_ofile *of);
/* bfs_ofile_sync_locked, taking mu. */
int bfs_ofile_sync(struct bfs_ofile *of, int timeout);
/* Waits until no upload job and no attribute change runs on of (a
 * rename under its fences); takes mu (released while waiting on cv). */
void bfs_ofile_wait_quiet(struct bfs_ofile *of);
/* unlink/rename over an open file: may its object be kept for its
 * handles (clean, unstaged, stored, not unlinked, and can_keep: the
 * provider can move or hide it)?  1 (with *etag: the version its reads
 * are pinned to, a copy, or NULL), 0, or BFS_ERR_NOMEM.  Takes mu. */
int bfs_ofile_keepable(struct bfs_ofile *of, int can_keep, char **etag);
/* Sets the size (staging first: a cut to 0 stages an empty file, never
 * downloads), marks it dirty and tells the multipart state which sent
 * parts no longer hold its bytes.  The one way to cut a file.  mu held. */
int bfs_ofile_truncate_locked(struct bfs_ofile *of, uint64_t size);
/* ftruncate: BFS_ERR_READONLY when its bucket (as of now) is read-only,
 * else bfs_ofile_truncate_locked.  Takes mu. */
int bfs_ofile_truncate(struct bfs_ofile *of, uint64_t size);
/* truncate(path): cuts and, when no handle is open (*ours = 1: nobody
 * else uploads it), uploads at once within timeout.  Takes mu. */
int bfs_ofile_truncate_sync(struct bfs_ofile *of, uint64_t size, int timeout,
			    int *ours);
/* open(O_TRUNC): cuts to 0 unless it already is an empty unstaged
 * nothing.  Takes mu. */
int bfs_ofile_open_trunc(struct bfs_ofile *of);
/* create: the new file's mode (with type bits) and owner, content cut
 * to 0.  Takes mu. */
int bfs_ofile_create_reset(struct bfs_ofile *of, uint32_t mode, uint32_t uid,
			   uint32_t gid);
/* open: pins the version a clean file's reads serve to the etag the
 * attribute cache holds now.  Takes mu. */
void bfs_ofile_pin_read_version(struct bfs_ofile *of);
/* The metadata or name of the clean open file of (now key in b) changed
 * on the server: its reads move to the etag the server gives now (one
 * HEAD, made without of->mu; no lock held). */
void repin_read_version(struct bfs_ofile *of, struct bfs_rbucket *b,
			const char *key);
/* read(2): from the staging file when staged (under mu), else the pinned
 * remote version through the read cache *rc (the handle's), without mu.
 * The count, or a negative BFS_ERR_*.  No lock held. */
int bfs_ofile_read(struct bfs_ofile *of, struct bfs_rc_file **rc, char *buf,
		   size_t size, off_t off);
/* write(2): stages, reserves budget, writes, marks dirty (journaled
 * before it returns).  0 or BFS_ERR_* (READONLY, NOSPC, IO).  Takes mu. */
int bfs_ofile_write(struct bfs_ofile *of, const char *buf, size_t size,
		    off_t off);

/* ---- fence.c: fences and the names unlinked while open ---- */

struct bfs_fence;
struct bfs_gone;
/* While a fence is up no upload job starts on (bucket, key) or, with
 * prefix, on any key below it.  No lock held (fence.c's lock is a leaf). */
int bfs_fence_add(const char *bucket, const char *key, int prefix,
		  struct bfs_fence **out);
void bfs_fence_del(struct bfs_fence *f);
int bfs_fence_covers(const char *bucket, const char *key);
/*
 * Records an object kept for the open handles of an unlinked file: key is
 * deleted at bfs_gone_finish.  hide: the object still has the name (no
 * provider rename), lookups and listings must not show it; etag: the
 * version kept (NULL: unknown).
 */
int bfs_gone_add(const char *bucket, const char *key, const char *etag,
		 int hide, struct bfs_gone **out);
/* 1 when a kept object hides (bucket, key) from listings. */
int bfs_gone_hidden(const char *bucket, const char *key);
/* 1 when the object (bucket, key) with etag (a HEAD's) is a kept one. */
int bfs_gone_hides_etag(const char *bucket, const char *key,
			const char *etag);
/* This mount stored a new object at key (or below the folder key, with
 * prefix): kept objects of that name are not hidden nor deleted any more. */
void bfs_gone_supersede(const char *bucket, const char *key, int prefix);
/* Forgets g without deleting anything (the unlink failed). */
void bfs_gone_drop(struct bfs_gone *g);
/* The last reference of the open file went: deletes the kept object when
 * it is still ours (see fence.c), frees g.  Network; no lock held. */
void bfs_gone_finish(struct bfs_gone *g, struct bfs_rbucket *b);

/* ---- upload.c: upload jobs, the pending queue, recovery ---- */

/*
 * Uploads a dirty file and waits: 0 once the provider stored the current
 * content (or nothing was dirty); jobs that fail are retried with backoff
 * until timeout seconds have passed, then the last error is journaled and
 * BFS_ERR_IO (or the final error) returned; the data stays staged and
 * journaled.  mu held (released while waiting).
 */
int bfs_ofile_sync_locked(struct bfs_ofile *of, int timeout);
/*
 * The index row of a stored object (bucket, key) with metadata m and etag
 * (NULL: none; an empty content type comes from the name) and, when
 * done_key is not NULL, the end of journal row done_key, in one
 * transaction (synchronous=FULL with a done_key).  If that fails the journal row is still
 * ended on its own (the object is stored; a left-over row would make
 * recovery see our own upload as a change by someone else), and the
 * failure logged.  0 or the store's error.  The one builder of index rows
 * for what the mount stores (uploads, symlinks, copies).
 */
int bfs_index_put(const char *bucket, const char *key,
		  const struct bfs_meta *m, const char *etag,
		  const char *done_key);
/* Starts an upload job when dirty and none runs; mu held. */
void bfs_ofile_kick_locked(struct bfs_ofile *of);
/* Waits until no upload job runs on of; mu held. */
void bfs_ofile_wait_idle_locked(struct bfs_ofile *of);
/* Hands a dirty file to the pending queue (takes its own reference); the
 * worker retries it until it is stored. */
void bfs_upq_add(struct bfs_ofile *of);
/*
 * Start (after daemonizing, before the FUSE loop): adopts every journal
 * row (store), removes staging files no row names, starts the worker,
 * which first finishes the adopted rows (conflict copies when the remote
 * changed), then retries the queue every second.
 */
int bfs_upq_start(void);
/*
 * Shutdown: uploads every dirty file and drains the queue, bounded by
 * timeout seconds, logging counts; stops the worker.  BFS_ERR_IO when
 * something stays journaled for the next start.
 */
int bfs_upq_shutdown(int timeout);
/* Upload jobs running now (a job that outlived its shutdown's bound
 * counts until it ends: tests wait for 0 before the next context). */
int bfs_upq_running(void);

/* ---- mpu.c: resumable and streaming multipart uploads ---- */
struct bfs_mp;
/* 1 when a file of size bytes in bucket b (the upload job's referenced
 * bucket: of->b may change under a rename) is stored as a multipart
 * upload. */
int bfs_mp_wanted(const struct bfs_rbucket *b, uint64_t size);
/*
 * The staged bytes [off, off + len) changed (write; truncate: off = the
 * smaller size, len = UINT64_MAX - off); mu held, after the change and
 * after bfs_ofile_set_dirty_locked.  Marks parts already sent for
 * re-sending, starts or feeds the stream of a sequentially written file.
 */
void bfs_mp_wrote_locked(struct bfs_ofile *of, uint64_t off, uint64_t len);
/* Gives an adopted file its journaled upload id and plan; mu held. */
void bfs_mp_adopt_locked(struct bfs_ofile *of, const char *upload_id,
			 uint64_t base, int grow);
/* Forgets of's upload (its id is aborted by the next reap); mu held. */
void bfs_mp_drop_locked(struct bfs_ofile *of);
/* Frees an mp no part thread uses (ofile_free). */
void bfs_mp_free(struct bfs_mp *mp);
/*
 * An upload job's multipart store of key with metadata m (m->size: the
 * job's snapshot); no lock held.  Resumes, sends what is missing,
 * completes.  0 and the etag, or the error (the id and the stored parts
 * are kept for the next try).
 */
int bfs_mp_store(struct bfs_ofile *of, const char *key,
		 const struct bfs_meta *m, char *etag_out, size_t etag_len);
/* Aborts recorded ids no journal row uses: when asked (reap_soon), every
 * 30th call, or always with force.  The queue worker calls it. */
void bfs_mp_reap(int force);
void bfs_mp_reap_soon(void);
/* Start-up: reap, then abort uploads older than multipart_max_age under
 * each s3/r2 bucket's prefix that no journal row uses. */
void bfs_mp_sweep(void);
/* Takes multipart_max_age (global and per bucket) from the config. */
void bfs_mp_set_max_age(const struct bfs_config *cfg);

/* ---- xattr.c: extended attributes (the operations) ---- */

int bfs_fs_getxattr(const char *path, const char *name, char *value,
		    size_t size);
int bfs_fs_listxattr(const char *path, char *list, size_t size);
int bfs_fs_setxattr(const char *path, const char *name, const char *value,
		    size_t size, int flags);
int bfs_fs_removexattr(const char *path, const char *name);
/* A HEAD (or get) of (bucket, key) told m: remembers its user xattrs for
 * getxattr while the attribute cache holds the same etag for it. */
void bfs_xattr_note(const char *bucket, const char *key,
		    const struct bfs_meta *m);
void bfs_xattr_destroy(void);

/* ---- fs.c ---- */

/*
 * Attributes of key in bucket b (not a bucket root): open file, attribute
 * cache, head(key), head(key/), a one-entry listing of key/.  0,
 * BFS_ERR_NOTFOUND or the provider's error.
 */
int lookup_key(struct bfs_rbucket *b, const char *key, struct stat *st);
/* meta of a remote object of bucket b -> st (dir: it was found as a
 * folder); what the metadata lacks comes from b (owner, group, file_mode,
 * dir_mode) or, with b NULL, the mount's defaults. */
void bfs_fs_meta_to_stat(const struct bfs_rbucket *b, const struct bfs_meta *m,
			 int dir, struct stat *st);
/* The stat of bucket b's folder (its owner, group and mode; INTERFACE.md
 * "Who may do what"); b NULL: the mount's defaults. */
void bfs_fs_bucket_dir_stat(const struct bfs_rbucket *b, struct stat *st);
/* list_metadata = listing: may the caller of this call access
 * (BFS_PERM_R/W) an object whose lookup found st?  0 or BFS_ERR_ACCESS;
 * always 0 in head mode, where the kernel saw the true attributes. */
int bfs_fs_listing_access(const struct bfs_rbucket *b, const struct stat *st,
			  unsigned want);
/* The path-based operations (fs.c; FUSE-style signatures, the results of
 * bfs_vfs.h: 0, a count or a negative BFS_ERR_*), which vfs.c's entry
 * points call with the
 * caller set.  The first call starts the attribute cache and the open-file
 * table. */
struct bfs_vfs_ops {
	int (*getattr)(const char *path, struct stat *st,
		       struct bfs_vfs_file *fi);
	int (*opendir)(const char *path, struct bfs_vfs_file *fi);
	int (*releasedir)(const char *path, struct bfs_vfs_file *fi);
	int (*readdir)(const char *path, void *buf, bfs_vfs_fill_t filler,
		       off_t off, struct bfs_vfs_file *fi, unsigned flags);
	int (*open)(const char *path, struct bfs_vfs_file *fi);
	int (*create)(const char *path, mode_t mode, struct bfs_vfs_file *fi);
	int (*read)(const char *path, char *buf, size_t size, off_t off,
		    struct bfs_vfs_file *fi);
	int (*write)(const char *path, const char *buf, size_t size, off_t off,
		     struct bfs_vfs_file *fi);
	int (*flush)(const char *path, struct bfs_vfs_file *fi);
	int (*fsync)(const char *path, int datasync, struct bfs_vfs_file *fi);
	int (*release)(const char *path, struct bfs_vfs_file *fi);
	int (*truncate)(const char *path, off_t size, struct bfs_vfs_file *fi);
	int (*chmod)(const char *path, mode_t mode, struct bfs_vfs_file *fi);
	int (*chown)(const char *path, uid_t uid, gid_t gid,
		     struct bfs_vfs_file *fi);
	int (*utimens)(const char *path, const struct timespec tv[2],
		       struct bfs_vfs_file *fi);
	int (*mkdir)(const char *path, mode_t mode);
	int (*rmdir)(const char *path);
	int (*unlink)(const char *path);
	int (*symlink)(const char *target, const char *linkpath);
	int (*readlink)(const char *path, char *buf, size_t size);
	int (*rename)(const char *from, const char *to, unsigned int flags);
	int (*statfs)(const char *path, struct statvfs *sv);
	int (*link)(const char *from, const char *to);
	int (*mknod)(const char *path, mode_t mode, dev_t dev);
	int (*getxattr)(const char *path, const char *name, char *value,
			size_t size);
	int (*setxattr)(const char *path, const char *name, const char *value,
			size_t size, int flags);
	int (*listxattr)(const char *path, char *list, size_t size);
	int (*removexattr)(const char *path, const char *name);
};
const struct bfs_vfs_ops *bfs_fs_operations(void);
/* After the loop ended (and bfs_upq_shutdown): drops every handle the
 * kernel never released, closing their open files and staging files, and
 * what the walk prefetch remembers. */
void bfs_fs_release_all(void);

/*
 * FNV-1a, the one string hash of the vfs layer's tables (open files,
 * attributes, listing generations, cached blocks).  bfs_fnv1a continues from
 * h (start with BFS_FNV_INIT); bfs_key_hash hashes "bucket/key".
 */
#define BFS_FNV_INIT 2166136261u

static inline uint32_t bfs_fnv1a(uint32_t h, const char *s)
{
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static inline uint32_t bfs_key_hash(const char *bucket, const char *key)
{
	return bfs_fnv1a((bfs_fnv1a(BFS_FNV_INIT, bucket) ^ '/') * 16777619u,
			 key);
}

#endif
