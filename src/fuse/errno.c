/*
 * errno.c - the ONE table from project error codes to errno (sshfs
 * sftp_error_to_errno style), the FUSE adapter's: everything below it,
 * the bfs_vfs_* entry points included, speaks BFS_ERR_*, and ops.c
 * answers each fuse_operation with -bfs_errno(r) for r < 0.  Transient
 * and unknown failures (network, server, timeouts, protocol) become EIO,
 * so an upload failure is never mistaken for a missing file.
 *
 * No FUSE header: the unit tests link this file alone to check the table.
 */
#include <errno.h>

#include "bfs_error.h"
#include "bfs_mount.h"

/* Indexed by -code; every code from BFS_ERR_INTERNAL to BFS_ERR_LAST + 1
 * has its entry (the assertion below catches a code added at the end). */
static const int errno_of[] = {
	[0] = 0,
	[-BFS_ERR_INTERNAL] = EIO,
	[-BFS_ERR_NOMEM] = ENOMEM,
	[-BFS_ERR_INVAL] = EINVAL,
	[-BFS_ERR_NOTFOUND] = ENOENT,
	[-BFS_ERR_EXISTS] = EEXIST,
	[-BFS_ERR_ACCESS] = EACCES,
	[-BFS_ERR_IO] = EIO,
	[-BFS_ERR_NETWORK] = EIO,
	[-BFS_ERR_TIMEOUT] = EIO,
	[-BFS_ERR_SERVER] = EIO,
	[-BFS_ERR_THROTTLED] = EIO,
	[-BFS_ERR_READONLY] = EROFS,
	[-BFS_ERR_NOTEMPTY] = ENOTEMPTY,
	[-BFS_ERR_NAMETOOLONG] = ENAMETOOLONG,
	[-BFS_ERR_NOTSUP] = ENOTSUP,
	[-BFS_ERR_CONFIG] = EIO,
	[-BFS_ERR_CRYPTO] = EIO,
	[-BFS_ERR_DB] = EIO,
	[-BFS_ERR_PRECONDITION] = EIO,
	[-BFS_ERR_NOSPC] = ENOSPC,
	[-BFS_ERR_ISDIR] = EISDIR,
	[-BFS_ERR_NOTDIR] = ENOTDIR,
	[-BFS_ERR_PROTOCOL] = EIO,
	[-BFS_ERR_BUSY] = EBUSY,
	[-BFS_ERR_RANGE] = EIO,
	[-BFS_ERR_LOOP] = ELOOP,
	[-BFS_ERR_NOBUCKET] = EIO,
	[-BFS_ERR_PERM] = EPERM,
	[-BFS_ERR_TOOBIG] = EFBIG,
	[-BFS_ERR_NODATA] = ENODATA,
	[-BFS_ERR_BUFTOOSMALL] = ERANGE,
	[-BFS_ERR_XATTRTOOBIG] = E2BIG,
	[-BFS_ERR_BADF] = EBADF,
	[-BFS_ERR_STALE] = ESTALE,
};

_Static_assert(sizeof(errno_of) / sizeof(errno_of[0]) == -BFS_ERR_LAST,
	       "bfs_errno: one errno per BFS_ERR_* code");

int bfs_errno(int err)
{
	if (err == 0)
		return 0;
	if (err > 0 || err <= BFS_ERR_LAST || !errno_of[-err])
		return EIO;
	return errno_of[-err];
}
