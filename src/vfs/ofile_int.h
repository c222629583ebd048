/*
 * ofile_int.h - the fields of the open file (struct bfs_ofile), private to
 * the open-file module: ofile.c (the table, staging, the journal row, the
 * staging budget), ofile_attr.c (attribute changes), ofile_io.c (stat,
 * handles, reads, writes, truncation), upload.c (upload jobs and the
 * pending queue) and mpu.c (streaming multipart).  Everyone
 * else holds a struct bfs_ofile * and calls the transitions and accessors
 * of vfs_int.h; the states and which lock each transition needs are in
 * ofile.c's opening comment.
 */
#ifndef BFS_OFILE_INT_H
#define BFS_OFILE_INT_H

/* Each file of the module defines BFS_OFILE_MODULE before including this;
 * anywhere else the include is an error, so the fields stay the module's. */
#ifndef BFS_OFILE_MODULE
#error "ofile_int.h belongs to the open-file module: include vfs_int.h"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "vfs_int.h"

/*
 * One open file, shared by every fd of the same (bucket, key); its states
 * and what may run under which lock: ofile.c's opening comment.
 * Lock order: the table lock (ofile.c) -> ofile.mu.  Fields marked (T)
 * change only with both held (so either lock suffices to read them);
 * (M) fields are guarded by mu alone.
 */
struct bfs_ofile {
	struct bfs_ofile *next;       /* (table lock) hash chain */
	atomic_int refs;              /* changes to and from 0 under the table
				       * lock; +1 by a holder of a ref is free */
	int in_table;                 /* (T) */
	struct bfs_rbucket *b;        /* (T) referenced */
	char *key;                    /* (T) full remote key */

	int queued;                   /* (queue lock, upload.c) the pending
				       * queue holds a reference */
	struct bfs_ofile *qnext;      /* (queue lock) */

	pthread_mutex_t mu;
	pthread_cond_t cv;            /* (M) an upload job or a stage ended;
				       * monotonic */
	int fd;                       /* (M) staging file, -1 until staged */
	char *staging_path;           /* (M) */
	int staged;                   /* (M) fd holds the whole current content */
	int stage_busy;               /* (M) a stage runs its download or HEAD
				       * without mu; other stages wait on cv */
	int attr_busy;                /* (M) an attribute change of the clean
				       * file is copying the object without
				       * mu (ofile_attr.c); others and
				       * renames wait on cv */
	int exists_remote;            /* (M) an object to download exists */
	int dirty;                    /* (M) staged content not uploaded */
	int handles;                  /* (M) open file handles (fs.c fh): a
				       * dirty file without one is the
				       * pending queue's to upload */
	int unlinked;                 /* (M) removed while open: no upload */
	uint64_t size;                /* (M) */
	uint32_t mode, uid, gid;      /* (M) mode with type bits */
	struct timespec mtime;        /* (M) */
	uint64_t gen;                 /* (M) bumped by every change of content,
				       * attributes or name */
	char *base_etag;              /* (M) etag of the remote object the
				       * staged copy is based on; NULL: none */
	int base_known;               /* (M) base_etag was looked up */
	int uploading;                /* (M) an upload job runs */
	int committing;               /* (M) that job writes its index and
				       * journal rows without mu: content
				       * changes wait (bfs_ofile_commit_wait) */
	int last_err;                 /* (M) result of the last job */
	int recovered;                /* (M) adopted from the journal at start:
				       * the next upload checks for conflicts */
	struct timespec next_try;     /* (M) queue backoff (monotonic) */
	int backoff_s;                /* (M) */
	uint64_t acct;                /* (M) bytes counted in the staging budget */
	struct bfs_mp *mp;            /* (M) its multipart upload (mpu.c) */
	int keep_path;                /* (M) a journal row may still name
				       * staging_path: never reuse it */
	/* The remote version clean (unstaged) reads serve (ofile_io.c): */
	char *read_etag;              /* (M) its etag, sent as If-Match;
				       * NULL: unknown, reads unconditional */
	unsigned read_gen;            /* (M) bumped when reads move to the
				       * version the server has now */
	atomic_int read_served;       /* bytes of it were returned */
	int read_gone;                /* (M) replaced on the server after
				       * bytes were returned: reads fail */
	/* User xattrs (xattr.c), stored with the next upload: */
	char *xattr;                  /* (M) encoded set (bfs_xattr.h);
				       * NULL: none */
	int xattr_known;              /* (M) xattr is the object's set (new
				       * file, learned at staging, or set) */
	struct bfs_gone *gone;        /* (T) set once, after the detach of an
				       * unlink that kept the object for the
				       * open handles (fence.c): deleted by
				       * the last reference */
};

#endif
