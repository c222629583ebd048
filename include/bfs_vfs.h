/*
 * bfs_vfs.h - the filesystem without FUSE (src/vfs): path-based POSIX
 * operations over the routing layer, the open-file table, staging, the
 * upload queue and the caches.  The FUSE adapter (src/fuse/ops.c) maps
 * fuse_operations onto these calls; unit tests (tests/unit/test_vfs.c)
 * call them directly, with no FUSE, no root and no mount.
 *
 * Every entry point takes the context and the caller explicitly.
 * Results are 0 (or a byte count for read, write, getxattr and
 * listxattr) or a negative BFS_ERR_* (bfs_error.h), never an errno: the
 * FUSE adapter turns a code into the errno it answers with the one table
 * (bfs_errno, src/fuse/errno.c).  Codes that exist for what FUSE
 * answers: BFS_ERR_NODATA (no such xattr), BFS_ERR_BUFTOOSMALL (a
 * get/listxattr buffer too small), BFS_ERR_XATTRTOOBIG, BFS_ERR_BADF,
 * BFS_ERR_STALE (look the path up again).
 *
 * One context per process at a time: most of the layer's state (the
 * open-file table, the upload queue, the attribute, listing and block
 * caches, the fences, the handles) is still module-global inside
 * src/vfs, reached through the context; bfs_vfs_new refuses a second
 * live context (see src/vfs/vfs.c).
 *
 * Lifecycle: bfs_vfs_new (checks and folders; no thread) ->
 * bfs_vfs_start (adopts the upload journal, starts the queue worker;
 * after a daemon forked) -> entry points -> bfs_vfs_shutdown (uploads
 * what is dirty, bounded by upload_timeout; drops the handles) ->
 * bfs_vfs_free.
 */
#ifndef BFS_VFS_H
#define BFS_VFS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "bfs_config.h"
#include "bfs_route.h"

/*
 * The I/O size files report in st_blksize and the adapter's max_write:
 * tools that size their buffers by it (cp, Python's open) then write
 * whole 1 MiB requests instead of 128 KiB ones (8x fewer round trips
 * through the kernel; folders and control files keep 4096).
 */
#define BFS_FS_IO_SIZE (1024 * 1024)

struct bfs_vfs;

/* Who makes a call: the ids checks and new objects use, the process a
 * handle remembers as its opener. */
struct bfs_vfs_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/* The caller's supplementary groups: fills up to n of them into
	 * list and returns how many it has, or a negative BFS_ERR_*; called
	 * on the calling thread during the call, only when the primary ids
	 * refuse an access.  NULL: none. */
	int (*getgroups)(void *arg, int n, gid_t *list);
	void *arg;
};

/* One open file handle as the vfs sees it (the fields of FUSE's
 * fuse_file_info it uses).  in: set by the caller; out: set by the call. */
struct bfs_vfs_file {
	uint64_t fh;                /* out of open/create/opendir, in after */
	int flags;                  /* in: open(2) flags */
	uint64_t lock_owner;        /* in (flush): owner of the closing
				     * descriptor's POSIX locks */
	unsigned direct_io : 1;     /* out: bypass the kernel page cache */
	unsigned keep_cache : 1;    /* out: the kernel's cached pages or
				     * listing are still valid */
	unsigned cache_readdir : 1; /* out (opendir): the kernel may cache
				     * the listing */
};

/* readdir: one entry.  off: its offset for the next call (0: the whole
 * listing in one call); flags BFS_VFS_FILL_PLUS: st holds its full
 * attributes (else only the type, or NULL).  Non-zero: the buffer is
 * full, stop. */
#define BFS_VFS_FILL_PLUS 1u
typedef int (*bfs_vfs_fill_t)(void *buf, const char *name,
			      const struct stat *st, off_t off,
			      unsigned flags);

/*
 * Makes the context over reg (which owns the store: bfs_registry_store)
 * with cfg's cache_dir (staging folder cache_dir/staging, made 0700),
 * cache_size, upload_timeout, list_metadata, presign_expires,
 * admin_group and multipart_max_age.  The mounting user (euid, egid)
 * owns the root and the control files.  cfg and reg must outlive the
 * context.  0, or an error with a one-line reason in err (BFS_ERR_EXISTS:
 * a context is live already).
 */
int bfs_vfs_new(const struct bfs_config *cfg, struct bfs_registry *reg,
		struct bfs_vfs **out, char *err, size_t errlen);
/*
 * Seconds the kernel may cache an entry or attributes (the adapter's
 * entry_timeout and attr_timeout): 0.3 with a postgresql:// database
 * (another host's change, dropped here at once by its notification, is
 * not held back by the kernel's cache for long), 1.0 on SQLite.
 */
double bfs_vfs_kernel_ttl(const struct bfs_vfs *v);
/* Adopts the upload journal and starts the queue worker (threads start
 * here: call it after a daemon forked). */
int bfs_vfs_start(struct bfs_vfs *v);
/* A reloaded config: takes its list_metadata, presign_expires and
 * admin_group (other settings take effect at the next context). */
void bfs_vfs_reconfigure(struct bfs_vfs *v, const struct bfs_config *cfg);
/*
 * Uploads every dirty file and drains the queue (bounded by
 * upload_timeout), stops the worker, then drops every handle still open.
 * BFS_ERR_IO when something stays journaled for the next start.
 */
int bfs_vfs_shutdown(struct bfs_vfs *v);
/* Frees the context (shuts it down first when it was started and not
 * shut down); NULL is ignored. */
void bfs_vfs_free(struct bfs_vfs *v);
/*
 * Another host changed (bucket, key) (a shared catalog's notification):
 * drops this mount's cached attributes, the folder's listing and its
 * known-absent names, and the data blocks of the key; bucket NULL drops
 * every bucket's (notifications may have been missed).  Any thread.
 */
void bfs_vfs_forget(struct bfs_vfs *v, const char *bucket, const char *key);

/* ---- entry points (path: absolute, "/" is the mount root) ---- */

int bfs_vfs_getattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct stat *st,
		    struct bfs_vfs_file *f);
int bfs_vfs_opendir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct bfs_vfs_file *f);
int bfs_vfs_readdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, void *buf, bfs_vfs_fill_t fill,
		    off_t off, struct bfs_vfs_file *f);
int bfs_vfs_releasedir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		       const char *path, struct bfs_vfs_file *f);
int bfs_vfs_open(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *path, struct bfs_vfs_file *f);
int bfs_vfs_create(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path, mode_t mode, struct bfs_vfs_file *f);
int bfs_vfs_read(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *path, char *buf, size_t size, off_t off,
		 struct bfs_vfs_file *f);
int bfs_vfs_write(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, const char *buf, size_t size, off_t off,
		  struct bfs_vfs_file *f);
int bfs_vfs_flush(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, struct bfs_vfs_file *f);
int bfs_vfs_fsync(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, int datasync, struct bfs_vfs_file *f);
int bfs_vfs_release(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct bfs_vfs_file *f);
int bfs_vfs_truncate(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, off_t size, struct bfs_vfs_file *f);
int bfs_vfs_chmod(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode, struct bfs_vfs_file *f);
int bfs_vfs_chown(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, uid_t uid, gid_t gid,
		  struct bfs_vfs_file *f);
int bfs_vfs_utimens(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, const struct timespec tv[2],
		    struct bfs_vfs_file *f);
int bfs_vfs_mkdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode);
int bfs_vfs_rmdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path);
int bfs_vfs_unlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path);
int bfs_vfs_symlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *target, const char *path);
int bfs_vfs_readlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, char *buf, size_t size);
/* flags: RENAME_NOREPLACE / RENAME_EXCHANGE as renameat2(2). */
int bfs_vfs_rename(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *from, const char *to, unsigned flags);
int bfs_vfs_statfs(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path, struct statvfs *sv);
int bfs_vfs_link(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *from, const char *to);
int bfs_vfs_mknod(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode, dev_t dev);
int bfs_vfs_getxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, const char *name, char *value,
		     size_t size);
int bfs_vfs_listxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		      const char *path, char *list, size_t size);
int bfs_vfs_setxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, const char *name, const char *value,
		     size_t size, int flags);
int bfs_vfs_removexattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
			const char *path, const char *name);

#endif
