/*
 * ops.c - the fuse_operations of the mount: each maps one libfuse
 * high-level call onto its bfs_vfs_* entry point (bfs_vfs.h).
 *
 * The context is the private_data libfuse hands back (the user_data of
 * fuse_new, returned again by init); the caller comes from
 * fuse_get_context(), its supplementary groups from fuse_getgroups() (on
 * the request's thread, only when the vfs asks).  A fuse_file_info is
 * copied into a struct bfs_vfs_file for the call and what the vfs set
 * (fh, direct_io, keep_cache, cache_readdir) copied back.  The vfs answers
 * 0, a count or a negative BFS_ERR_*; each operation answers libfuse with
 * that count or -bfs_errno(code) (errno.c, the one table).
 */
#include <string.h>

#include <fuse.h>

#include "bfs_error.h"
#include "bfs_mount.h"
#include "bfs_vfs.h"

static struct bfs_vfs *op_vfs(void)
{
	return fuse_get_context()->private_data;
}

/* What an operation answers libfuse for the vfs's result r. */
static int op_ret(int r)
{
	return r < 0 ? -bfs_errno(r) : r;
}

/* fuse_getgroups answers a negative errno (-ENOSYS: not known here); the
 * vfs's callback answers BFS_ERR_*. */
static int op_getgroups(void *arg, int n, gid_t *list)
{
	int r = fuse_getgroups(n, list);

	(void)arg;
	return r < 0 ? bfs_err_from_errno(-r) : r;
}

/* The caller of the request this thread serves. */
static const struct bfs_vfs_caller *op_who(struct bfs_vfs_caller *who)
{
	struct fuse_context *fc = fuse_get_context();

	memset(who, 0, sizeof(*who));
	who->uid = fc->uid;
	who->gid = fc->gid;
	who->pid = fc->pid;
	who->getgroups = op_getgroups;
	return who;
}

/* fi -> *f for a call; NULL when libfuse gave no file info. */
static struct bfs_vfs_file *file_in(const struct fuse_file_info *fi,
				    struct bfs_vfs_file *f)
{
	if (!fi)
		return NULL;
	memset(f, 0, sizeof(*f));
	f->fh = fi->fh;
	f->flags = fi->flags;
	f->lock_owner = fi->lock_owner;
	f->direct_io = fi->direct_io;
	f->keep_cache = fi->keep_cache;
	f->cache_readdir = fi->cache_readdir;
	return f;
}

/* What the call set in *f -> fi. */
static void file_out(struct fuse_file_info *fi, const struct bfs_vfs_file *f)
{
	if (!fi || !f)
		return;
	fi->fh = f->fh;
	fi->direct_io = f->direct_io;
	fi->keep_cache = f->keep_cache;
	fi->cache_readdir = f->cache_readdir;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->entry_timeout = bfs_vfs_kernel_ttl(op_vfs());
	cfg->attr_timeout = bfs_vfs_kernel_ttl(op_vfs());
	cfg->negative_timeout = 0.5;
	cfg->use_ino = 0;
	cfg->nullpath_ok = 0;
	cfg->hard_remove = 1;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	conn->max_write = BFS_FS_IO_SIZE;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	return op_vfs();
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_getattr(op_vfs(), op_who(&who), path, st, fp));
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);
	int r = bfs_vfs_opendir(op_vfs(), op_who(&who), path, fp);

	file_out(fi, fp);
	return op_ret(r);
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_releasedir(op_vfs(), op_who(&who), path, fp));
}

/* readdir's filler behind the vfs's fill callback. */
struct op_fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int op_fill(void *arg, const char *name, const struct stat *st,
		   off_t off, unsigned flags)
{
	struct op_fill *c = arg;

	return c->filler(c->buf, name, st, off,
			 (flags & BFS_VFS_FILL_PLUS) ? FUSE_FILL_DIR_PLUS : 0);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);
	struct op_fill c = { buf, filler };

	(void)flags;
	return op_ret(bfs_vfs_readdir(op_vfs(), op_who(&who), path, &c, op_fill,
				      off, fp));
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);
	int r = bfs_vfs_open(op_vfs(), op_who(&who), path, fp);

	file_out(fi, fp);
	return op_ret(r);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);
	int r = bfs_vfs_create(op_vfs(), op_who(&who), path, mode, fp);

	file_out(fi, fp);
	return op_ret(r);
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_read(op_vfs(), op_who(&who), path, buf, size, off,
				   fp));
}

static int op_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_write(op_vfs(), op_who(&who), path, buf, size,
				    off, fp));
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_flush(op_vfs(), op_who(&who), path, fp));
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_fsync(op_vfs(), op_who(&who), path, datasync,
				    fp));
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_release(op_vfs(), op_who(&who), path, fp));
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_truncate(op_vfs(), op_who(&who), path, size,
				       fp));
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_chmod(op_vfs(), op_who(&who), path, mode, fp));
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_chown(op_vfs(), op_who(&who), path, uid, gid,
				    fp));
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct bfs_vfs_caller who;
	struct bfs_vfs_file f, *fp = file_in(fi, &f);

	return op_ret(bfs_vfs_utimens(op_vfs(), op_who(&who), path, tv, fp));
}

static int op_mkdir(const char *path, mode_t mode)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_mkdir(op_vfs(), op_who(&who), path, mode));
}

static int op_rmdir(const char *path)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_rmdir(op_vfs(), op_who(&who), path));
}

static int op_unlink(const char *path)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_unlink(op_vfs(), op_who(&who), path));
}

static int op_symlink(const char *target, const char *linkpath)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_symlink(op_vfs(), op_who(&who), target,
				      linkpath));
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_readlink(op_vfs(), op_who(&who), path, buf,
				       size));
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_rename(op_vfs(), op_who(&who), from, to, flags));
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_statfs(op_vfs(), op_who(&who), path, sv));
}

static int op_link(const char *from, const char *to)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_link(op_vfs(), op_who(&who), from, to));
}

static int op_mknod(const char *path, mode_t mode, dev_t dev)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_mknod(op_vfs(), op_who(&who), path, mode, dev));
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_getxattr(op_vfs(), op_who(&who), path, name,
				       value, size));
}

static int op_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_setxattr(op_vfs(), op_who(&who), path, name,
				       value, size, flags));
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_listxattr(op_vfs(), op_who(&who), path, list,
					size));
}

static int op_removexattr(const char *path, const char *name)
{
	struct bfs_vfs_caller who;

	return op_ret(bfs_vfs_removexattr(op_vfs(), op_who(&who), path, name));
}

static const struct fuse_operations fuse_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.releasedir = op_releasedir,
	.readdir = op_readdir,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.truncate = op_truncate,
	.chmod = op_chmod,
	.chown = op_chown,
	.utimens = op_utimens,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.unlink = op_unlink,
	.symlink = op_symlink,
	.readlink = op_readlink,
	.rename = op_rename,
	.statfs = op_statfs,
	.link = op_link,
	.mknod = op_mknod,
	.getxattr = op_getxattr,
	.setxattr = op_setxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};

const struct fuse_operations *bfs_fuse_operations(void)
{
	return &fuse_ops;
}

int bfs_fuse_version(void)
{
	return fuse_version();
}
