/*
 * bfs_mount.h - the FUSE adapter (src/fuse): what the daemon asks of
 * libfuse, without including FUSE headers itself.  ops.c maps the
 * fuse_operations onto the bfs_vfs_* calls (bfs_vfs.h) and their
 * BFS_ERR_* results onto errno (errno.c); mount.c parses the command
 * line, mounts, daemonizes, installs the signal handlers and runs the
 * multi-threaded loop.
 */
#ifndef BFS_MOUNT_H
#define BFS_MOUNT_H

#include "bfs_vfs.h"

struct fuse_operations;
struct bfs_mount;

/* The command line as the daemon sees it. */
struct bfs_mount_opts {
	char *bucket;            /* -o bucket=NAME */
	char *config;
	char *mountpoint;
	int help, version, foreground, debug;
};

/* The fuse_operations over the context handed to bfs_mount_new (ops.c). */
const struct fuse_operations *bfs_fuse_operations(void);

/*
 * The positive errno a FUSE operation answers for a BFS_ERR_* code (0 for
 * 0; EIO for transient failures and for anything not a code): the one
 * BFS_ERR_* -> errno table (errno.c).
 */
int bfs_errno(int err);

/* libfuse's version number (fuse_version()). */
int bfs_fuse_version(void);

/*
 * Parses argv into *o (CONFIG MOUNTPOINT positionals, -h, -V, -f, -d,
 * -o bucket=NAME; other options are kept for libfuse) and returns the
 * mount state holding the FUSE arguments in *out.  0, or -1 for a bad
 * command line (a message was printed; *out NULL).  Free *o's strings
 * with bfs_mount_opts_free.
 */
int bfs_mount_parse(int argc, char **argv, struct bfs_mount_opts *o,
		    struct bfs_mount **out);
void bfs_mount_opts_free(struct bfs_mount_opts *o);
/*
 * Adds subtype/fsname and default_permissions (the kernel checks every
 * access against the modes and owners, whatever options the caller gave)
 * and mounts the filesystem of v on mountpoint (fuse_new, fuse_mount).
 * 0, or -1 with a one-line reason in err.
 */
int bfs_mount_start(struct bfs_mount *m, struct bfs_vfs *v,
		    const char *mountpoint, char *err, size_t errlen);
/* fuse_daemonize: in the background the parent exits 0 here (the mount
 * is live); foreground only changes to "/".  0 or -1. */
int bfs_mount_daemonize(struct bfs_mount *m, int foreground);
/* libfuse's SIGTERM/SIGINT/SIGHUP... handlers that end the loop.  0 or -1. */
int bfs_mount_signals(struct bfs_mount *m);
/* Serves requests on worker threads until unmounted or signalled: 0, or
 * the signal that ended the loop, or another positive error. */
int bfs_mount_loop(struct bfs_mount *m);
/* Removes the signal handlers, unmounts, frees (NULL is ignored). */
void bfs_mount_free(struct bfs_mount *m);

#endif
