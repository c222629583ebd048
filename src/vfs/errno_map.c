/*
 * errno_map.c - the ONE table from project error codes to errno (sshfs
 * sftp_error_to_errno style).  Everything below the vfs entry points
 * speaks BFS_ERR_*; every bfs_vfs_* call (and so every FUSE operation of
 * the adapter) returns -bfs_errno(r).  Transient and
 * unknown failures (network, server, timeouts, protocol) become EIO, so an
 * upload failure is never mistaken for a missing file.
 */
#include <errno.h>

#include "bfs_error.h"
#include "vfs_int.h"

static const struct {
	int err;
	int eno;
} errno_map[] = {
	{ BFS_ERR_INTERNAL, EIO },
	{ BFS_ERR_NOMEM, ENOMEM },
	{ BFS_ERR_INVAL, EINVAL },
	{ BFS_ERR_NOTFOUND, ENOENT },
	{ BFS_ERR_EXISTS, EEXIST },
	{ BFS_ERR_ACCESS, EACCES },
	{ BFS_ERR_IO, EIO },
	{ BFS_ERR_NETWORK, EIO },
	{ BFS_ERR_TIMEOUT, EIO },
	{ BFS_ERR_SERVER, EIO },
	{ BFS_ERR_THROTTLED, EIO },
	{ BFS_ERR_READONLY, EROFS },
	{ BFS_ERR_NOTEMPTY, ENOTEMPTY },
	{ BFS_ERR_NAMETOOLONG, ENAMETOOLONG },
	{ BFS_ERR_NOTSUP, ENOTSUP },
	{ BFS_ERR_CONFIG, EIO },
	{ BFS_ERR_CRYPTO, EIO },
	{ BFS_ERR_DB, EIO },
	{ BFS_ERR_PRECONDITION, EIO },
	{ BFS_ERR_NOSPC, ENOSPC },
	{ BFS_ERR_ISDIR, EISDIR },
	{ BFS_ERR_NOTDIR, ENOTDIR },
	{ BFS_ERR_PROTOCOL, EIO },
	{ BFS_ERR_BUSY, EBUSY },
	{ BFS_ERR_RANGE, EIO },
	{ BFS_ERR_LOOP, ELOOP },
	{ BFS_ERR_NOBUCKET, EIO },
	{ BFS_ERR_PERM, EPERM },
	{ BFS_ERR_TOOBIG, EFBIG },
};

int bfs_errno(int err)
{
	size_t i;

	if (err == 0)
		return 0;
	for (i = 0; i < sizeof(errno_map) / sizeof(errno_map[0]); i++)
		if (errno_map[i].err == err)
			return errno_map[i].eno;
	return EIO;
}
