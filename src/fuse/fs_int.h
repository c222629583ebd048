/*
 * fs_int.h - private interface of the FUSE layer (src/fuse) used by its own
 * files and by src/daemon/main.c.  Only this layer includes FUSE headers.
 *
 * Pieces: errno_map.c (the ONE BFS_ERR_* -> errno table), attrcache.c (a
 * short-lived stat cache filled by listings and heads), ofile.c (the table
 * of open files with their staging files and uploads) and fs.c (the
 * fuse_operations).
 */
#ifndef BFS_FS_INT_H
#define BFS_FS_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <fuse.h>

#include "bfs_provider.h"
#include "bfs_route.h"

/* ---- errno_map.c ---- */

/* Positive errno for a BFS_ERR_* code (0 for 0). */
int bfs_errno(int err);

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
 * One open file, shared by every fd of the same (bucket, key).
 * Lock order: the table lock (ofile.c) -> ofile.mu.  Fields marked (T)
 * change only with both held (so either lock suffices to read them);
 * (M) fields are guarded by mu alone.
 */
struct bfs_ofile {
	struct bfs_ofile *next;       /* (table lock) hash chain */
	int refs;                     /* (table lock) */
	int in_table;                 /* (T) */
	struct bfs_rbucket *b;        /* (T) referenced */
	char *key;                    /* (T) full remote key */

	pthread_mutex_t mu;
	int fd;                       /* (M) staging file, -1 until staged */
	char *staging_path;           /* (M) */
	int staged;                   /* (M) fd holds the whole current content */
	int exists_remote;            /* (M) an object to download exists */
	int dirty;                    /* (M) staged content not uploaded */
	int unlinked;                 /* (M) removed while open: no upload */
	uint64_t size;                /* (M) */
	uint32_t mode, uid, gid;      /* (M) mode with type bits */
	struct timespec mtime;        /* (M) */
};

struct bfs_fs_ctx {
	struct bfs_registry *reg;
	char *staging_dir;            /* cache_dir/staging */
	uid_t uid;                    /* owner of objects without metadata */
	gid_t gid;
	int upload_timeout;           /* seconds, bound on shutdown flush */
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
/* +1 ref on an open file the caller already holds a reference to. */
void bfs_ofile_ref(struct bfs_ofile *of);
/* +1 ref on an existing open file, or NULL. */
struct bfs_ofile *bfs_ofile_find(const char *bucket, const char *key);
/* -1 ref; the last one removes it, closes and (when clean) deletes its
 * staging file. */
void bfs_ofile_put(struct bfs_ofile *of);
/* Makes of->fd hold the content (downloads it when needed).  mu held. */
int bfs_ofile_stage_locked(struct bfs_ofile *of, int want_empty);
/* Uploads when dirty; mu held.  Errors are BFS_ERR_*; data stays staged. */
int bfs_ofile_upload_locked(struct bfs_ofile *of);
void bfs_ofile_set_dirty_locked(struct bfs_ofile *of, int dirty);
/* Fills st from the open file; mu held. */
void bfs_ofile_stat_locked(struct bfs_ofile *of, struct stat *st);
/* Detaches from the table (unlink, overwritten by rename). */
void bfs_ofile_detach(struct bfs_ofile *of);
/*
 * Moves the entry of (src bucket, src key) or, with prefix, every entry
 * whose key starts with src to the new bucket/key (rename).  mark_dirty:
 * a moved file with staged content is marked dirty, so its content is
 * uploaded under the new key at close whatever raced with the move.  A
 * file already open under a new key is detached (it was replaced).
 */
int bfs_ofile_rekey(const char *sbucket, const char *src,
		    struct bfs_rbucket *db, const char *dst, int prefix,
		    int mark_dirty);
/* Calls fn on every open file whose bucket is `bucket` and key starts with
 * prefix (+1 ref held during the call). */
typedef int (*bfs_ofile_fn)(void *arg, struct bfs_ofile *of);
int bfs_ofile_each(const char *bucket, const char *prefix, bfs_ofile_fn fn,
		   void *arg);
/* Uploads every dirty file (shutdown); gives up after timeout seconds. */
int bfs_ofile_flush_all(int timeout);

/* ---- fs.c ---- */

/* meta of a remote object -> st (dir: it was found as a folder). */
void bfs_fs_meta_to_stat(const struct bfs_meta *m, int dir, struct stat *st);
const struct fuse_operations *bfs_fs_operations(void);
/* After the loop ended (and bfs_ofile_flush_all): drops every handle the
 * kernel never released, closing their open files and staging files. */
void bfs_fs_release_all(void);

#endif
