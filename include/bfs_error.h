/*
 * bfs_error.h - the project's error codes.
 *
 * Every function below the FUSE layer, the bfs_vfs_* entry points
 * included, returns 0 (or a count) or one of these negative codes
 * (openssh ssherr.h style).  HTTP status + S3 <Code> are mapped to them in
 * ONE table (src/http/s3err.c); they are mapped to errno in ONE table in
 * the FUSE adapter (src/fuse/errno.c, bfs_errno in bfs_mount.h).
 * bfs_strerror() gives the message.
 */
#ifndef BFS_ERROR_H
#define BFS_ERROR_H

#include <stddef.h>

enum bfs_err {
	BFS_OK = 0,
	BFS_ERR_INTERNAL = -1,     /* bug or unexpected state */
	BFS_ERR_NOMEM = -2,
	BFS_ERR_INVAL = -3,        /* bad argument / bad input */
	BFS_ERR_NOTFOUND = -4,     /* no such object / bucket / row */
	BFS_ERR_EXISTS = -5,
	BFS_ERR_ACCESS = -6,       /* 403, AccessDenied, bad signature, bad key id */
	BFS_ERR_IO = -7,           /* local I/O failure */
	BFS_ERR_NETWORK = -8,      /* connect failure, reset: retryable */
	BFS_ERR_TIMEOUT = -9,      /* retryable */
	BFS_ERR_SERVER = -10,      /* 5xx: retryable */
	BFS_ERR_THROTTLED = -11,   /* 503 SlowDown, 429: retryable */
	BFS_ERR_READONLY = -12,
	BFS_ERR_NOTEMPTY = -13,
	BFS_ERR_NAMETOOLONG = -14,
	BFS_ERR_NOTSUP = -15,
	BFS_ERR_CONFIG = -16,
	BFS_ERR_CRYPTO = -17,      /* wrong master key, tampered secret */
	BFS_ERR_DB = -18,
	BFS_ERR_PRECONDITION = -19,/* 412 */
	BFS_ERR_NOSPC = -20,
	BFS_ERR_ISDIR = -21,
	BFS_ERR_NOTDIR = -22,
	BFS_ERR_PROTOCOL = -23,    /* malformed server reply */
	BFS_ERR_BUSY = -24,        /* refused: still referenced (files, defaults...) */
	BFS_ERR_RANGE = -25,       /* 416 */
	BFS_ERR_LOOP = -26,        /* symlink where none may be followed */
	BFS_ERR_NOBUCKET = -27,    /* remote bucket does not exist */
	BFS_ERR_PERM = -28,        /* operation not permitted (hard link, mknod) */
	BFS_ERR_TOOBIG = -29,      /* a capped buffer would overflow */
	BFS_ERR_NODATA = -30,      /* no such extended attribute */
	BFS_ERR_BUFTOOSMALL = -31, /* the caller's buffer cannot hold the
				    * answer (getxattr, listxattr) */
	BFS_ERR_XATTRTOOBIG = -32, /* an extended attribute, the list or the
				    * set over its limit */
	BFS_ERR_BADF = -33,        /* no usable open handle for the call */
	BFS_ERR_STALE = -34,       /* what a lookup found has changed type:
				    * look the path up again */
	BFS_ERR_LAST = -35
};

/* Static message for an error code; never NULL. */
const char *bfs_strerror(int err);

/* 1 when an operation failing with err may succeed if simply retried. */
int bfs_err_retryable(int err);

/* Map an errno value to a project error code (for local system calls). */
int bfs_err_from_errno(int e);

/*
 * Format a message into the caller's err buffer of errlen bytes (truncated,
 * always NUL-terminated).  Does nothing when err is NULL or errlen is 0, so
 * callers may pass an optional buffer straight through.
 */
void bfs_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
