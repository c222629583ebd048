/*
 * allow.c - what a route lets the vfs do: the one table of the mount's
 * policy by route and operation (bfs_route_allows, include/bfs_route.h).
 *
 * A route falls into one class (route_class): the mount root, a
 * read-only control file (.buckets, .metrics), a writable one
 * (.defaults, .assignments), a reserved root name (".x", "@x": never
 * exists), a view folder (@chat, @form), a bucket's root folder, a
 * context folder (@chat/ID), an entry inside a bucket, or an entry of a
 * read-only bucket (a context folder of one included).  The table gives,
 * per operation and class, 0 or the BFS_ERR_* the vfs returns before it
 * looks at any object.  What comes after (whether the object exists, its
 * type, the kernel's mode checks) is the vfs's and the kernel's.
 * Nothing here locks: a route is the caller's.
 */
#include <stddef.h>

#include "bfs_error.h"
#include "bfs_route.h"

enum route_class {
	RC_ROOT = 0,             /* the mount root (multi-bucket mode) */
	RC_CTL_RO,               /* .buckets, .metrics */
	RC_CTL_RW,               /* .defaults, .assignments */
	RC_RESERVED,             /* a root name starting with '.' or '@' */
	RC_VIEW,                 /* @chat, @form */
	RC_BROOT,                /* a bucket's root (also the single-bucket
				  * mount root); never read-only's column */
	RC_CTXROOT,              /* @chat/ID, @form/ID */
	RC_ENTRY,                /* a file or folder inside a bucket */
	RC_ENTRY_RO,             /* an entry (or context folder) of a
				  * read-only bucket */
	RC_COUNT
};

#define OK      0
#define NOENT   BFS_ERR_NOTFOUND
#define EXIST   BFS_ERR_EXISTS
#define INVAL   BFS_ERR_INVAL
#define PERM    BFS_ERR_PERM
#define ACCES   BFS_ERR_ACCESS
#define ROFS    BFS_ERR_READONLY
#define ISDIR   BFS_ERR_ISDIR
#define NODIR   BFS_ERR_NOTDIR

/*
 * The policy.  Why the less obvious cells are what they are:
 * - roots, control files and view folders are the mount's own: nothing
 *   is made, removed or renamed there (PERM; create EXIST: the name is
 *   taken by the mount); a reserved name makes EINVAL for what would make
 *   it and ENOENT for everything else (it never exists);
 * - chmod and chown of the mount's own entries are EPERM, utimens is
 *   accepted and changes nothing (cp -a, touch);
 * - truncate(2) and O_TRUNC of a control file are accepted and never wipe
 *   it (its write session decides); opening a read-only one for writing
 *   is EACCES, as its 0444 mode says;
 * - readlink of anything that is not a bucket entry is EINVAL (not a link);
 * - open of a folder of the mount (root, bucket root) is EISDIR; the view
 *   folders have no open here (ENOENT), the kernel opens them as folders;
 * - a read-only bucket: EROFS for every write, reads as usual.
 */
static const int policy[BFS_ROP_COUNT][RC_COUNT] = {
	/*                        ROOT   CTL_RO CTL_RW RESERV VIEW   BROOT  CTXRT  ENTRY  ENTRY_RO */
	[BFS_ROP_LOOKUP]       = { OK,    OK,    OK,    NOENT, OK,    OK,    OK,    OK,    OK },
	[BFS_ROP_READDIR]      = { OK,    NODIR, NODIR, NOENT, OK,    OK,    OK,    OK,    OK },
	[BFS_ROP_OPEN_READ]    = { ISDIR, OK,    OK,    NOENT, NOENT, ISDIR, OK,    OK,    OK },
	[BFS_ROP_OPEN_WRITE]   = { ISDIR, ACCES, OK,    NOENT, NOENT, ISDIR, OK,    OK,    ROFS },
	[BFS_ROP_OPEN_TRUNC]   = { ISDIR, OK,    OK,    NOENT, NOENT, ISDIR, OK,    OK,    ROFS },
	[BFS_ROP_CREATE]       = { EXIST, EXIST, EXIST, INVAL, EXIST, EXIST, OK,    OK,    ROFS },
	[BFS_ROP_MKDIR]        = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_RMDIR]        = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_UNLINK]       = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_SYMLINK]      = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_READLINK]     = { INVAL, INVAL, INVAL, INVAL, INVAL, INVAL, OK,    OK,    OK },
	[BFS_ROP_RENAME_FROM]  = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_RENAME_TO]    = { PERM,  PERM,  PERM,  INVAL, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_TRUNCATE]     = { ISDIR, OK,    OK,    NOENT, ISDIR, ISDIR, OK,    OK,    ROFS },
	[BFS_ROP_SETATTR]      = { PERM,  PERM,  PERM,  NOENT, PERM,  PERM,  OK,    OK,    ROFS },
	[BFS_ROP_SETTIMES]     = { OK,    OK,    OK,    NOENT, OK,    OK,    OK,    OK,    ROFS },
	[BFS_ROP_XATTR_SET]    = { PERM,  PERM,  PERM,  NOENT, PERM,  PERM,  OK,    OK,    ROFS },
};

static int route_class(const struct bfs_route *rt)
{
	switch (rt->kind) {
	case BFS_ROUTE_ROOT:
		return RC_ROOT;
	case BFS_ROUTE_CTL:
		return bfs_ctl_writable(rt->ctl) ? RC_CTL_RW : RC_CTL_RO;
	case BFS_ROUTE_RESERVED:
		return RC_RESERVED;
	case BFS_ROUTE_VIEW:
		return RC_VIEW;
	case BFS_ROUTE_BUCKET:
		if (!rt->b)
			return -1;
		if (!rt->rel || !rt->rel[0])
			return RC_BROOT;
		if (rt->b->read_only)
			return RC_ENTRY_RO;
		return rt->ctx_root ? RC_CTXROOT : RC_ENTRY;
	default:
		return -1;
	}
}

int bfs_route_allows(const struct bfs_route *rt, int op)
{
	int c;

	if (!rt || op < 0 || op >= BFS_ROP_COUNT ||
	    (c = route_class(rt)) < 0)
		return BFS_ERR_INVAL;
	return policy[op][c];
}

int bfs_route_has_key(const struct bfs_route *rt)
{
	return rt && rt->kind == BFS_ROUTE_BUCKET && rt->b && rt->rel &&
	       rt->rel[0] != '\0';
}
