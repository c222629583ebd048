/*
 * vfs.c - the vfs context and the bfs_vfs_* entry points (bfs_vfs.h).
 *
 * An entry point checks that it was given the live context, records the
 * caller for the thread for the length of the call (bfs_vfs_caller_cur:
 * permission checks, the owner of new objects and a handle's opener are
 * read from it deep inside fs.c), and calls fs.c's operation through
 * the bfs_vfs_ops table.
 *
 * One context per process (bfs_vfs_new refuses a second live one); what
 * it reaches is process-wide, each piece owned by its module under the
 * lock named there (docs/ARCHITECTURE.md, "Layers"): the settings in
 * `bfs_fs` (vfs_int.h: registry, staging folder, mount owner, timeouts,
 * cache size, list_metadata, presign_expires, admin gid), which
 * bfs_vfs_new writes; and
 * the module state of the layer: the open-file table (ofile.c), the
 * upload queue and job runners (upload.c), the multipart reaper (mpu.c),
 * the attribute and listing caches (src/cache/attrcache.c), the block
 * cache (src/cache/readcache.c, started once per process on the first
 * read unless [mount] cache = off), the fences
 * and kept objects (fence.c), the noted xattr sets (xattr.c), and fs.c's
 * handle list, control-file sizes and walk prefetch.  The context is the
 * handle through which all of that is reached; bfs_vfs_shutdown ends the
 * queue and releases every handle, bfs_vfs_free drops the attribute,
 * listing, xattr and block caches and the settings' registry and staging
 * folder, so the next context (the unit tests make one per test) starts
 * without them.  The I/O pool
 * lives for the process (bfs_pool_io_shutdown at exit, main.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_error.h"
#include "bfs_pg.h"
#include "vfs_int.h"

struct bfs_vfs {
	struct bfs_fs_ctx *fs;          /* &bfs_fs, filled by bfs_vfs_new */
	const struct bfs_vfs_ops *ops;
	int started;                    /* bfs_vfs_start ran, no shutdown yet */
	double kernel_ttl;              /* bfs_vfs_kernel_ttl; set once */
};

/* The live context (at most one); vfs_live_mu guards the pointer. */
static pthread_mutex_t vfs_live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_vfs *vfs_live;

/* The caller of the entry point running on this thread. */
static _Thread_local const struct bfs_vfs_caller *vfs_who;

const struct bfs_vfs_caller *bfs_vfs_caller_cur(void)
{
	return vfs_who;
}

int bfs_vfs_caller_groups(const struct bfs_vfs_caller *who, int n,
			  gid_t *list)
{
	if (!who || !who->getgroups)
		return BFS_ERR_NOTSUP;
	return who->getgroups(who->arg, n, list);
}

/* mkdir -p with mode 0700 for the parts it creates. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path), *s;
	int r = 0;

	if (!p)
		return BFS_ERR_NOMEM;
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST) {
				r = bfs_err_from_errno(errno);
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return r;
}

/* The gid owning the writable control files, -1 without admin_group. */
static int64_t admin_gid_of(const struct bfs_config *cfg)
{
	return cfg->admin_group ? (int64_t)cfg->admin_gid : -1;
}

int bfs_vfs_new(const struct bfs_config *cfg, struct bfs_registry *reg,
		struct bfs_vfs **out, char *err, size_t errlen)
{
	struct bfs_vfs *v = NULL;
	char *staging = NULL;
	int r = BFS_ERR_NOMEM;

	*out = NULL;
	/* held across the set-up: a second constructor waits, then fails */
	pthread_mutex_lock(&vfs_live_mu);
	if (vfs_live) {
		snprintf(err, errlen, "a filesystem context is live already");
		r = BFS_ERR_EXISTS;
		goto out;
	}
	if (!(v = calloc(1, sizeof(*v))) ||
	    !(staging = malloc(strlen(cfg->cache_dir) + 16))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	sprintf(staging, "%s/staging", cfg->cache_dir);
	if ((r = mkdir_p(staging)) != 0) {
		snprintf(err, errlen, "cache folder %s: %s", staging,
			 bfs_strerror(r));
		goto out;
	}
	v->fs = &bfs_fs;
	bfs_fs.reg = reg;
	bfs_fs.staging_dir = staging;
	staging = NULL;
	/* the mounting user: owner of the root, the control files and (by
	 * default) every bucket folder */
	bfs_fs.uid = geteuid();
	bfs_fs.gid = getegid();
	atomic_store(&bfs_fs.admin_gid, admin_gid_of(cfg));
	bfs_registry_set_changed_fn(reg, bfs_attr_drop_bucket);
	bfs_fs.upload_timeout = cfg->upload_timeout;
	atomic_store(&bfs_fs.list_metadata, cfg->list_metadata);
	atomic_store(&bfs_fs.presign_expires, cfg->presign_expires);
	bfs_mp_set_max_age(cfg);
	bfs_fs.cache_size = cfg->cache_size;
	v->ops = bfs_fs_operations();
	/* other hosts' changes: not held back by the kernel's caches long */
	v->kernel_ttl = bfs_pg_is_uri(cfg->database) ? 0.3 : 1.0;
	vfs_live = v;
	*out = v;
	v = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&vfs_live_mu);
	free(staging);
	free(v);
	return r;
}

double bfs_vfs_kernel_ttl(const struct bfs_vfs *v)
{
	return v->kernel_ttl;
}

int bfs_vfs_start(struct bfs_vfs *v)
{
	int r;

	if ((r = bfs_upq_start()) == 0)
		v->started = 1;
	return r;
}

void bfs_vfs_reconfigure(struct bfs_vfs *v, const struct bfs_config *cfg)
{
	atomic_store(&v->fs->list_metadata, cfg->list_metadata);
	atomic_store(&v->fs->presign_expires, cfg->presign_expires);
	atomic_store(&v->fs->admin_gid, admin_gid_of(cfg));
}

int bfs_vfs_shutdown(struct bfs_vfs *v)
{
	int r = 0;

	if (v->started) {
		r = bfs_upq_shutdown(v->fs->upload_timeout);
		v->started = 0;
	}
	bfs_fs_release_all();
	return r;
}

void bfs_vfs_free(struct bfs_vfs *v)
{
	if (!v)
		return;
	if (v->started)
		bfs_vfs_shutdown(v);
	bfs_attr_destroy();
	bfs_xattr_destroy();
	bfs_registry_set_changed_fn(v->fs->reg, NULL);
	free(v->fs->staging_dir);
	v->fs->staging_dir = NULL;
	v->fs->reg = NULL;
	pthread_mutex_lock(&vfs_live_mu);
	if (vfs_live == v)
		vfs_live = NULL;
	pthread_mutex_unlock(&vfs_live_mu);
	free(v);
}

void bfs_vfs_forget(struct bfs_vfs *v, const char *bucket, const char *key)
{
	char **names = NULL;
	size_t n = 0, i;

	if (bucket) {
		bfs_attr_drop(bucket, key);
		return;
	}
	if (bfs_registry_names(v->fs->reg, &names, &n) != 0)
		return;
	for (i = 0; i < n; i++)
		bfs_attr_drop_bucket(names[i]);
	bfs_registry_names_free(names, n);
}

/* ---- entry points ---- */

/* Sets who as the thread's caller for one call; returns the one to put
 * back (calls do not nest today, but a callback may re-enter). */
static const struct bfs_vfs_caller *
vfs_enter(const struct bfs_vfs_caller *who)
{
	const struct bfs_vfs_caller *prev = vfs_who;

	vfs_who = who;
	return prev;
}

static void vfs_leave(const struct bfs_vfs_caller *prev)
{
	vfs_who = prev;
}

int bfs_vfs_getattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct stat *st, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->getattr(path, st, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_opendir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->opendir(path, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_readdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, void *buf, bfs_vfs_fill_t fill,
		    off_t off, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->readdir(path, buf, fill, off, f, 0);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_releasedir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		       const char *path, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->releasedir(path, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_open(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *path, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->open(path, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_create(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path, mode_t mode, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->create(path, mode, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_read(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *path, char *buf, size_t size, off_t off,
		 struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->read(path, buf, size, off, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_write(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, const char *buf, size_t size, off_t off,
		  struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->write(path, buf, size, off, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_flush(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->flush(path, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_fsync(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, int datasync, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->fsync(path, datasync, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_release(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->release(path, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_truncate(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, off_t size, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->truncate(path, size, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_chmod(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode, struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->chmod(path, mode, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_chown(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, uid_t uid, gid_t gid,
		  struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->chown(path, uid, gid, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_utimens(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *path, const struct timespec tv[2],
		    struct bfs_vfs_file *f)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->utimens(path, tv, f);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_mkdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->mkdir(path, mode);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_rmdir(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->rmdir(path);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_unlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->unlink(path);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_symlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		    const char *target, const char *path)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->symlink(target, path);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_readlink(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, char *buf, size_t size)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->readlink(path, buf, size);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_rename(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *from, const char *to, unsigned flags)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->rename(from, to, flags);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_statfs(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		   const char *path, struct statvfs *sv)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->statfs(path, sv);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_link(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		 const char *from, const char *to)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->link(from, to);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_mknod(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		  const char *path, mode_t mode, dev_t dev)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->mknod(path, mode, dev);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_getxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, const char *name, char *value,
		     size_t size)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->getxattr(path, name, value, size);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_listxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		      const char *path, char *list, size_t size)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->listxattr(path, list, size);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_setxattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
		     const char *path, const char *name, const char *value,
		     size_t size, int flags)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->setxattr(path, name, value, size, flags);

	vfs_leave(prev);
	return r;
}

int bfs_vfs_removexattr(struct bfs_vfs *v, const struct bfs_vfs_caller *who,
			const char *path, const char *name)
{
	const struct bfs_vfs_caller *prev = vfs_enter(who);
	int r = v->ops->removexattr(path, name);

	vfs_leave(prev);
	return r;
}
