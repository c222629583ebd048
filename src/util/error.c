/*
 * error.c - messages for the project's error codes and the errno -> code
 * mapping for local system calls.  (The code -> errno table for FUSE lives
 * in the FUSE layer.)  bfs_set_err() is the one helper that formats a
 * message into a caller-supplied err buffer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "bfs_error.h"

static const char *const messages[] = {
	[0] = "success",
	[-BFS_ERR_INTERNAL] = "internal error",
	[-BFS_ERR_NOMEM] = "out of memory",
	[-BFS_ERR_INVAL] = "invalid argument",
	[-BFS_ERR_NOTFOUND] = "not found",
	[-BFS_ERR_EXISTS] = "already exists",
	[-BFS_ERR_ACCESS] = "access denied",
	[-BFS_ERR_IO] = "I/O error",
	[-BFS_ERR_NETWORK] = "network error",
	[-BFS_ERR_TIMEOUT] = "timed out",
	[-BFS_ERR_SERVER] = "server error",
	[-BFS_ERR_THROTTLED] = "throttled by the server",
	[-BFS_ERR_READONLY] = "read-only bucket",
	[-BFS_ERR_NOTEMPTY] = "folder not empty",
	[-BFS_ERR_NAMETOOLONG] = "name too long",
	[-BFS_ERR_NOTSUP] = "operation not supported",
	[-BFS_ERR_CONFIG] = "configuration error",
	[-BFS_ERR_CRYPTO] = "cannot decrypt: wrong master key or tampered value",
	[-BFS_ERR_DB] = "database error",
	[-BFS_ERR_PRECONDITION] = "precondition failed",
	[-BFS_ERR_NOSPC] = "no space left",
	[-BFS_ERR_ISDIR] = "is a folder",
	[-BFS_ERR_NOTDIR] = "not a folder",
	[-BFS_ERR_PROTOCOL] = "malformed reply from the server",
	[-BFS_ERR_BUSY] = "still in use",
	[-BFS_ERR_RANGE] = "range not satisfiable",
	[-BFS_ERR_LOOP] = "symbolic link not followed",
	[-BFS_ERR_NOBUCKET] = "remote bucket does not exist",
	[-BFS_ERR_PERM] = "operation not permitted",
	[-BFS_ERR_TOOBIG] = "value too large",
	[-BFS_ERR_NODATA] = "no such attribute",
	[-BFS_ERR_BUFTOOSMALL] = "buffer too small for the answer",
	[-BFS_ERR_XATTRTOOBIG] = "extended attributes too large",
	[-BFS_ERR_BADF] = "bad file handle",
	[-BFS_ERR_STALE] = "stale lookup: look the path up again",
};

/* A new code needs its message (and BFS_ERR_LAST moved past it). */
_Static_assert(sizeof(messages) / sizeof(messages[0]) == -BFS_ERR_LAST,
	       "bfs_strerror: one message per BFS_ERR_* code");

const char *bfs_strerror(int err)
{
	if (err > 0 || err <= BFS_ERR_LAST || !messages[-err])
		return "unknown error";
	return messages[-err];
}

int bfs_err_retryable(int err)
{
	return err == BFS_ERR_NETWORK || err == BFS_ERR_TIMEOUT ||
	       err == BFS_ERR_SERVER || err == BFS_ERR_THROTTLED;
}

int bfs_err_from_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case ENOMEM: return BFS_ERR_NOMEM;
	case EINVAL: return BFS_ERR_INVAL;
	case ENOENT: return BFS_ERR_NOTFOUND;
	case EEXIST: return BFS_ERR_EXISTS;
	case EACCES: return BFS_ERR_ACCESS;
	case EPERM: return BFS_ERR_PERM;
	case EROFS: return BFS_ERR_READONLY;
	case ENOTEMPTY: return BFS_ERR_NOTEMPTY;
	case ENAMETOOLONG: return BFS_ERR_NAMETOOLONG;
	case ENOTSUP: return BFS_ERR_NOTSUP;
	case ENOSPC: case EDQUOT: return BFS_ERR_NOSPC;
	case EISDIR: return BFS_ERR_ISDIR;
	case ENOTDIR: return BFS_ERR_NOTDIR;
	case ELOOP: case EXDEV: return BFS_ERR_LOOP;
	case EBUSY: return BFS_ERR_BUSY;
	case ETIMEDOUT: return BFS_ERR_TIMEOUT;
	case EFBIG: return BFS_ERR_TOOBIG;
	default: return BFS_ERR_IO;
	}
}

void bfs_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
