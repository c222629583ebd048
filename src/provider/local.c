/*
 * local.c - the "local" provider: the objects of a bucket are files under
 * one folder (bucket setting `path`).  Key "a/b/c" is the file path/a/b/c,
 * the folder marker "a/b/" is the folder path/a/b.
 *
 * Confinement.  create() opens the folder once (O_PATH|O_DIRECTORY) and
 * keeps that fd.  Every key is split into its parent path ("a/b") and final
 * name ("c").  The parent is opened relative to the root fd with openat2()
 * and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (or, on
 * kernels without openat2, by a walk of one O_NOFOLLOW openat() per
 * component), so no key can leave the folder, not even through a symlink
 * planted in it: such a parent fails with BFS_ERR_LOOP.  The final name is
 * then only used with *at() calls that never follow a symlink
 * (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW): a symlink in the folder is an object of
 * its own whose body is its target text (that is how the FUSE layer reads
 * links).  Only regular files, folders and symlinks are visible; fifos,
 * sockets and device nodes are hidden and never opened.  Keys are checked
 * again with bfs_key_check() as defence in depth.
 *
 * Writes.  Data goes to a ".bfs-tmp-<random>" file in the target folder,
 * which gets its metadata, is fsync'ed and then renamed over the key, so a
 * reader never sees a half-written object; the temp file is removed on any
 * failure and listings never show such names.  The etag is the MD5 of the
 * content, computed while copying and kept in the xattr user.bucketfs.etag
 * together with the mtime it belongs to (user.bucketfs.etag_mtime, "S.NNN"
 * nanoseconds).  A file changed behind our back (mtime differs) or without
 * xattrs gets a synthesized etag "SIZE-MTIMENS-INODE" (hex).  Folders have
 * the etag of an empty body, symlinks the MD5 of their target.
 *
 * User xattrs (bfs_meta.xattr, s3fs's encoding on S3) are real xattrs of
 * the file or folder: head and get decode nothing, they read every user.*
 * xattr but our own user.bucketfs.* ones and encode them into m->xattr; a
 * put, and set_meta/copy with has_xattr, write them back (symlinks have
 * none: Linux refuses user.* on them).  So the folder shows them to
 * getfattr directly.
 *
 * Semantics follow the S3 provider where the file system allows: a key
 * without '/' never names a folder (head gives NOTFOUND, the caller then
 * tries "key/"), listing order is unspecified (directory order).
 *
 * Thread safety: the only shared state is the root fd, read-only between
 * create() and destroy(); every call works on fds of its own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_io.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_provider.h"
#include "bfs_xattr.h"

#define LOCAL_TMP_PREFIX ".bfs-tmp-"
#define LOCAL_XATTR_ETAG "user.bucketfs.etag"
#define LOCAL_XATTR_ETAG_MTIME "user.bucketfs.etag_mtime"
/* Set on files and folders whose mode and owner bucketfs gave them: the
 * others (copied into the folder by other means) carry no metadata, so
 * they show the bucket's owner, group, file_mode and dir_mode. */
#define LOCAL_XATTR_META "user.bucketfs.meta"
#define LOCAL_CHUNK (256 * 1024)
#define LOCAL_LINK_MAX 4096              /* PATH_MAX: longest symlink target */
#define LOCAL_LIST_MAX_PENDING (1u << 20)/* cap on folders queued by a walk */
#define LOCAL_MD5_EMPTY "d41d8cd98f00b204e9800998ecf8427e"
#define LOCAL_XATTR_OWN "user.bucketfs."     /* ours, never a user's */
#define LOCAL_XATTR_LIST_MAX 65536           /* flistxattr buffer */
#define LOCAL_XATTR_VALUE_MAX 65536          /* XATTR_SIZE_MAX */

struct local_state {
	int root_fd;             /* O_PATH|O_DIRECTORY; read-only after create */
};

/* A key split into parent folder path and final name. */
struct local_key {
	char parent[BFS_KEY_MAX + 1];    /* "" for the root folder */
	char name[BFS_NAME_MAX + 1];
	int dir;                         /* the key ended with '/' */
};

enum local_kind { LOCAL_FILE, LOCAL_DIR, LOCAL_LINK };

static int local_err(int e)
{
	/* EXDEV from a rename means a mount point inside the folder. */
	if (e == EXDEV)
		return BFS_ERR_NOTSUP;
	return bfs_err_from_errno(e);
}

/*
 * Validates key (folder marker allowed) and splits it into lk.
 * Returns 0 or BFS_ERR_INVAL / BFS_ERR_NAMETOOLONG.
 */
static int local_split(const char *key, struct local_key *lk)
{
	const char *slash;
	size_t len;
	int r;

	if (!key)
		return BFS_ERR_INVAL;
	if ((r = bfs_key_check(key, 1)) != 0)
		return r;
	len = strlen(key);
	if (len == 0 || len > BFS_KEY_MAX)
		return BFS_ERR_INVAL;
	lk->dir = key[len - 1] == '/';
	if (lk->dir)
		len--;
	if (len == 0)
		return BFS_ERR_INVAL;
	slash = memrchr(key, '/', len);
	if (slash) {
		size_t plen = (size_t)(slash - key);
		size_t nlen = len - plen - 1;

		if (nlen == 0 || nlen > BFS_NAME_MAX)
			return BFS_ERR_INVAL;
		memcpy(lk->parent, key, plen);
		lk->parent[plen] = '\0';
		memcpy(lk->name, slash + 1, nlen);
		lk->name[nlen] = '\0';
	} else {
		if (len > BFS_NAME_MAX)
			return BFS_ERR_NAMETOOLONG;
		lk->parent[0] = '\0';
		memcpy(lk->name, key, len);
		lk->name[len] = '\0';
	}
	return 0;
}

/* openat2() confined beneath dirfd with no symlink at all; -1 + errno. */
static int local_openat2(int dirfd, const char *path, int flags)
{
	struct open_how how;
	int fd, tries = 0;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(unsigned)flags;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	do {
		/* EAGAIN: a concurrent rename raced the lookup; just retry. */
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	} while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 16);
	return fd;
}

/*
 * Opens folder relpath (no leading '/', components already validated)
 * beneath root one component at a time, never following a symlink;
 * create != 0 makes missing folders 0755.  The last component is opened
 * with flags, the ones before with O_PATH.  Returns 0 and *out, or a
 * negative code (BFS_ERR_LOOP when a component is a symlink).
 */
static int local_walk(int root, const char *relpath, int flags, int create,
		      int *out)
{
	char comp[BFS_NAME_MAX + 1];
	const char *p = relpath, *end;
	int cur, nfd, r = BFS_ERR_INTERNAL;
	struct stat st;

	*out = -1;
	if ((cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return local_err(errno);
	while (*p) {
		size_t n;
		int last, fl;

		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || n > BFS_NAME_MAX) {
			r = BFS_ERR_INVAL;
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		last = !end || !end[1];
		fl = (last ? flags : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
		nfd = openat(cur, comp, fl);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				r = local_err(errno);
				goto out;
			}
			nfd = openat(cur, comp, fl);
		}
		if (nfd < 0) {
			int e = errno;

			if ((e == ENOTDIR || e == ELOOP) &&
			    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				e = ELOOP;
			r = local_err(e);
			goto out;
		}
		close(cur);
		cur = nfd;
		p = end ? end + 1 : p + n;
	}
	*out = cur;
	cur = -1;
	r = 0;
out:
	if (cur >= 0)
		close(cur);
	return r;
}

/*
 * Opens the folder relpath ("" = the root) confined beneath the root with
 * flags (O_PATH or O_RDONLY; O_DIRECTORY|O_CLOEXEC added).  create != 0
 * makes missing folders.  Returns 0 and *out (caller closes) or a negative
 * code: NOTFOUND, NOTDIR, LOOP (a symlink on the way)...
 */
static int local_open_dir(const struct local_state *ls, const char *relpath,
			  int flags, int create, int *out)
{
	int fd, e;

	*out = -1;
	flags |= O_DIRECTORY | O_CLOEXEC;
	if (relpath[0] == '\0') {
		fd = openat(ls->root_fd, ".", flags);
		if (fd < 0)
			return local_err(errno);
		*out = fd;
		return 0;
	}
	fd = local_openat2(ls->root_fd, relpath, flags);
	if (fd >= 0) {
		*out = fd;
		return 0;
	}
	e = errno;
	if (e == ENOSYS || (e == ENOENT && create))
		return local_walk(ls->root_fd, relpath, flags & ~(O_DIRECTORY | O_CLOEXEC),
				  create, out);
	return local_err(e);
}

/* MD5 of a memory block as 32 hex digits into out[33]. */
static int local_md5(const void *data, size_t len, char *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	if (!EVP_Digest(data, len, d, &dl, EVP_md5(), NULL) || dl != 16)
		return BFS_ERR_CRYPTO;
	bfs_hex_encode(d, dl, out);
	return 0;
}

static void local_mtime_str(const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "%lld.%09ld", (long long)st->st_mtim.tv_sec,
		 (long)st->st_mtim.tv_nsec);
}

static void local_synth_etag(const struct stat *st, char *etag, size_t len)
{
	uint64_t ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
		      (uint64_t)st->st_mtim.tv_nsec;

	snprintf(etag, len, "%" PRIx64 "-%" PRIx64 "-%" PRIx64,
		 (uint64_t)st->st_size, ns, (uint64_t)st->st_ino);
}

/*
 * Reads the stored etag of the open regular file fd (stat st) into
 * etag[len]; 1 when it is present and belongs to the current mtime, else 0
 * (etag untouched).
 */
static int local_stored_etag(int fd, const struct stat *st, char *etag, size_t len)
{
	char val[96], mt[64], want[64];
	ssize_t n, k;

	n = fgetxattr(fd, LOCAL_XATTR_ETAG, val, sizeof(val) - 1);
	if (n != 32)
		return 0;
	val[n] = '\0';
	if (strspn(val, "0123456789abcdef") != 32)
		return 0;
	k = fgetxattr(fd, LOCAL_XATTR_ETAG_MTIME, mt, sizeof(mt) - 1);
	if (k <= 0)
		return 0;
	mt[k] = '\0';
	local_mtime_str(st, want, sizeof(want));
	if (strcmp(mt, want) != 0)
		return 0;
	snprintf(etag, len, "%s", val);
	return 1;
}

/* The etag of the open regular file fd (stat st): stored or synthesized. */
static void local_fd_etag(int fd, const struct stat *st, char *etag, size_t len)
{
	if (!local_stored_etag(fd, st, etag, len))
		local_synth_etag(st, etag, len);
}

/* Stores etag (32 hex) and the file's mtime as xattrs; best effort. */
static void local_store_etag(int fd, const char *etag)
{
	struct stat st;
	char mt[64];

	if (fstat(fd, &st) < 0)
		return;
	local_mtime_str(&st, mt, sizeof(mt));
	if (fsetxattr(fd, LOCAL_XATTR_ETAG, etag, strlen(etag), 0) < 0 ||
	    fsetxattr(fd, LOCAL_XATTR_ETAG_MTIME, mt, strlen(mt), 0) < 0)
		BFS_DEBUG("local: cannot store etag xattr: %s", strerror(errno));
}

/* Opens regular file name under dirfd for reading, never a link or device. */
static int local_open_file(int dirfd, const char *name, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return local_err(errno);
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return BFS_ERR_NOTFOUND;
	}
	return fd;
}

/*
 * 1 when the open file or folder fd has mode and owner from bucketfs:
 * the marker, or an etag xattr (files written before the marker
 * existed), or a file system without user xattrs (nothing can tell).
 */
static int local_fd_has_meta(int fd)
{
	char v[64];

	if (fgetxattr(fd, LOCAL_XATTR_META, v, sizeof(v)) >= 0 ||
	    fgetxattr(fd, LOCAL_XATTR_ETAG, v, sizeof(v)) >= 0)
		return 1;
	return errno == ENOTSUP || errno == EOPNOTSUPP;
}

/* Marks fd as having metadata from bucketfs; best effort. */
static void local_fd_mark_meta(int fd)
{
	if (fsetxattr(fd, LOCAL_XATTR_META, "1", 1, 0) < 0 &&
	    errno != ENOTSUP && errno != EOPNOTSUPP)
		BFS_DEBUG("local: cannot store the metadata marker: %s",
			  strerror(errno));
}

/* The same for entry name under dirfd, a folder or regular file (never
 * followed); symlinks carry no user xattrs and are left alone. */
static void local_mark_meta_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			O_NOCTTY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
		local_fd_mark_meta(fd);
	close(fd);
}

/* Drops mode and owner from m unless the entry (fd, or folder name under
 * dirfd) has them from bucketfs; the type bits stay. */
static void local_meta_check_origin(int dirfd, const char *name, int fd,
				    struct bfs_meta *m)
{
	int own = fd < 0, has;

	if (own && (fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY |
				O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	has = local_fd_has_meta(fd);
	if (own)
		close(fd);
	if (!has) {
		m->mode &= S_IFMT;
		m->has_mode = m->has_uid = m->has_gid = 0;
	}
}

static void local_meta_from_stat(const struct stat *st, struct bfs_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size;
	m->mtime = (int64_t)st->st_mtim.tv_sec;
	m->mtime_nsec = st->st_mtim.tv_nsec;
	m->mode = (uint32_t)st->st_mode;
	m->uid = (uint32_t)st->st_uid;
	m->gid = (uint32_t)st->st_gid;
	m->has_mode = m->has_uid = m->has_gid = m->has_mtime = 1;
}

/*
 * Metadata of entry name under dirfd, never following it.  want_dir: the
 * entry must be a folder (folder marker key), else it must be a regular
 * file or a symlink.  Returns 0 or BFS_ERR_NOTFOUND (also for fifos,
 * devices and sockets, which are hidden).
 */
static int local_meta_at(int dirfd, const char *name, int want_dir,
			 struct bfs_meta *m)
{
	char target[LOCAL_LINK_MAX];
	struct stat st, fst;
	ssize_t n;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return local_err(errno);
	if (want_dir != !!S_ISDIR(st.st_mode))
		return BFS_ERR_NOTFOUND;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return BFS_ERR_NOTFOUND;
	local_meta_from_stat(&st, m);
	if (S_ISDIR(st.st_mode)) {
		snprintf(m->etag, sizeof(m->etag), "%s", LOCAL_MD5_EMPTY);
		local_meta_check_origin(dirfd, name, -1, m);
	} else if (S_ISLNK(st.st_mode)) {
		n = readlinkat(dirfd, name, target, sizeof(target));
		if (n < 0 || (size_t)n >= sizeof(target) ||
		    local_md5(target, (size_t)n, m->etag) != 0)
			local_synth_etag(&st, m->etag, sizeof(m->etag));
		else
			m->size = (uint64_t)n;
	} else {
		fd = local_open_file(dirfd, name, &fst);
		if (fd >= 0 && fst.st_ino == st.st_ino) {
			local_meta_from_stat(&fst, m);
			local_fd_etag(fd, &fst, m->etag, sizeof(m->etag));
			local_meta_check_origin(dirfd, name, fd, m);
		} else {
			local_synth_etag(&st, m->etag, sizeof(m->etag));
		}
		if (fd >= 0)
			close(fd);
		snprintf(m->content_type, sizeof(m->content_type), "%s",
			 bfs_content_type(name));
	}
	return 0;
}

/* 1 for a user xattr that belongs to the user (not ours, not another
 * namespace). */
static int local_user_xattr(const char *name)
{
	return !strncmp(name, "user.", 5) &&
	       strncmp(name, LOCAL_XATTR_OWN, strlen(LOCAL_XATTR_OWN));
}

/*
 * Reads the user xattrs of the open file or folder fd into m->xattr
 * (encoded) and sets has_xattr.  A set that does not fit m->xattr, or
 * one that cannot be read, leaves has_xattr 0 (unknown).
 */
static void local_xattr_load(int fd, struct bfs_meta *m)
{
	struct bfs_xattrs x;
	struct bfs_buf enc;
	char *names = NULL, *val = NULL, *p;
	ssize_t n, k;

	memset(&x, 0, sizeof(x));
	bfs_buf_init(&enc, BFS_META_XATTR_MAX);
	m->has_xattr = 0;
	m->xattr[0] = '\0';
	if (!(names = malloc(LOCAL_XATTR_LIST_MAX)) ||
	    !(val = malloc(LOCAL_XATTR_VALUE_MAX)))
		goto out;
	if ((n = flistxattr(fd, names, LOCAL_XATTR_LIST_MAX)) < 0) {
		if (errno != ENOTSUP && errno != EOPNOTSUPP)
			goto out;
		n = 0;
	}
	for (p = names; p < names + n; p += strlen(p) + 1) {
		if (!local_user_xattr(p))
			continue;
		if ((k = fgetxattr(fd, p, val, LOCAL_XATTR_VALUE_MAX)) < 0) {
			if (errno == ENODATA)
				continue;     /* removed meanwhile */
			goto out;
		}
		if (bfs_xattrs_set(&x, p, val, (size_t)k) != 0)
			goto out;
	}
	if (bfs_xattrs_encode(&x, &enc) != 0) {
		BFS_DEBUG("local: user xattrs too large to serve");
		goto out;
	}
	memcpy(m->xattr, bfs_buf_str(&enc), enc.len + 1);
	m->has_xattr = 1;
out:
	bfs_buf_free(&enc);
	bfs_xattrs_free(&x);
	free(val);
	free(names);
}

/* local_xattr_load of entry name under dirfd (file or folder, never
 * followed; a symlink has none). */
static void local_xattr_load_at(int dirfd, const char *name, struct bfs_meta *m)
{
	int fd;

	if (S_ISLNK(m->mode)) {
		m->has_xattr = 1;
		m->xattr[0] = '\0';
		return;
	}
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY | O_CLOEXEC | (S_ISDIR(m->mode) ? O_DIRECTORY : 0));
	if (fd < 0) {
		m->has_xattr = 0;
		return;
	}
	local_xattr_load(fd, m);
	close(fd);
}

/*
 * Makes the user xattrs of the open file or folder fd the set encoded in
 * enc: each is set, and with replace every other user xattr is removed.
 * BFS_ERR_TOOBIG when the file system has no room for them.
 */
static int local_xattr_store(int fd, const char *enc, int replace)
{
	struct bfs_xattrs x;
	char *names = NULL, *p;
	ssize_t n;
	size_t i;
	int r;

	memset(&x, 0, sizeof(x));
	if ((r = bfs_xattrs_decode(enc, &x)) != 0)
		goto out;
	if (replace) {
		r = BFS_ERR_NOMEM;
		if (!(names = malloc(LOCAL_XATTR_LIST_MAX)))
			goto out;
		if ((n = flistxattr(fd, names, LOCAL_XATTR_LIST_MAX)) < 0) {
			r = local_err(errno);
			goto out;
		}
		for (p = names; p < names + n; p += strlen(p) + 1)
			if (local_user_xattr(p) && !bfs_xattrs_find(&x, p) &&
			    fremovexattr(fd, p) < 0 && errno != ENODATA) {
				r = local_err(errno);
				goto out;
			}
	}
	for (i = 0; i < x.n; i++) {
		if (!local_user_xattr(x.v[i].name))
			continue;
		if (fsetxattr(fd, x.v[i].name, x.v[i].value, x.v[i].len, 0) < 0) {
			r = (errno == ENOSPC || errno == E2BIG || errno == ERANGE) ?
			    BFS_ERR_TOOBIG : local_err(errno);
			goto out;
		}
	}
	r = 0;
out:
	free(names);
	bfs_xattrs_free(&x);
	return r;
}

/* local_xattr_store(replace) on entry name under dirfd (file or folder). */
static int local_xattr_store_at(int dirfd, const char *name, const char *enc)
{
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? BFS_ERR_NOTSUP : local_err(errno);
	r = local_xattr_store(fd, enc, 1);
	close(fd);
	return r;
}

/* pwrite()s all of buf at off (plain write() on pipes). */
static int local_write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == ESPIPE)
			n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return local_err(errno);
		}
		if (n == 0)
			return BFS_ERR_IO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* A fresh ".bfs-tmp-<16 hex>" name into buf[32]. */
static int local_tmp_name(char *buf, size_t len)
{
	unsigned char rnd[8];
	char hex[17];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(rnd)) {
		n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return local_err(errno);
		}
		got += (size_t)n;
	}
	bfs_hex_encode(rnd, sizeof(rnd), hex);
	snprintf(buf, len, "%s%s", LOCAL_TMP_PREFIX, hex);
	return 0;
}

/*
 * chown as requested by m (fields without has_* left alone).  strict == 0
 * (writes of new objects): EPERM as non-root is ignored with a debug log,
 * since an unprivileged daemon cannot give files away.
 */
static int local_chown_at(int dirfd, const char *name, int fd,
			  const struct bfs_meta *m, int strict)
{
	uid_t uid = m->has_uid ? (uid_t)m->uid : (uid_t)-1;
	gid_t gid = m->has_gid ? (gid_t)m->gid : (gid_t)-1;
	int rc;

	if (!m->has_uid && !m->has_gid)
		return 0;
	if (fd >= 0)
		rc = fchown(fd, uid, gid);
	else
		rc = fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
	if (rc == 0)
		return 0;
	if (errno == EPERM && !strict && geteuid() != 0) {
		BFS_DEBUG("local: cannot chown %s to %d:%d as non-root, ignored",
			  name, (int)uid, (int)gid);
		return 0;
	}
	return local_err(errno);
}

static void local_times(const struct bfs_meta *m, struct timespec ts[2])
{
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)m->mtime;
	ts[1].tv_nsec = m->mtime_nsec;
	if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
		ts[1].tv_nsec = 0;
}

/*
 * Sets mtime, owner and mode (in that order: the etag xattr needs write
 * access, chown clears set-id bits) of the existing entry name under
 * dirfd, never following it.  A regular file keeps a valid stored etag
 * valid across the mtime change.  Mode is ignored on symlinks.
 */
static int local_apply_meta(int dirfd, const char *name,
			    const struct bfs_meta *m, int strict)
{
	struct timespec ts[2];
	struct stat st;
	char etag[40];
	int fd = -1, r = BFS_ERR_INTERNAL, valid = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = local_err(errno);
		goto out;
	}
	if (m->has_mtime) {
		local_times(m, ts);
		if (S_ISREG(st.st_mode) && (fd = local_open_file(dirfd, name, &st)) >= 0) {
			valid = local_stored_etag(fd, &st, etag, sizeof(etag));
			if (futimens(fd, ts) < 0) {
				r = local_err(errno);
				goto out;
			}
			if (valid)
				local_store_etag(fd, etag);
		} else if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) {
			r = local_err(errno);
			goto out;
		}
	}
	if ((m->has_uid && m->uid != (uint32_t)st.st_uid) ||
	    (m->has_gid && m->gid != (uint32_t)st.st_gid)) {
		if ((r = local_chown_at(dirfd, name, -1, m, strict)) != 0)
			goto out;
	}
	if (m->has_mode && !S_ISLNK(st.st_mode) &&
	    fchmodat(dirfd, name, m->mode & 07777, AT_SYMLINK_NOFOLLOW) < 0) {
		/* EOPNOTSUPP: replaced by a symlink meanwhile; not followed. */
		if (errno != EOPNOTSUPP && errno != ENOTSUP) {
			r = local_err(errno);
			goto out;
		}
	}
	if (m->has_mode || m->has_uid || m->has_gid)
		local_mark_meta_at(dirfd, name);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static void local_set_etag(char *etag_out, size_t etag_len, const char *etag)
{
	if (etag_out && etag_len > 0)
		snprintf(etag_out, etag_len, "%s", etag);
}

/* Makes folder name under pfd (existing folder fine) and applies m. */
static int local_put_dir(int pfd, const char *name, const struct bfs_meta *m)
{
	struct stat st;

	if (mkdirat(pfd, name, 0755) < 0) {
		if (errno != EEXIST)
			return local_err(errno);
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return local_err(errno);
		if (!S_ISDIR(st.st_mode))
			return BFS_ERR_EXISTS;
	}
	if (m && m->has_xattr) {
		int r = local_xattr_store_at(pfd, name, m->xattr);

		if (r != 0)
			return r;
	}
	return m ? local_apply_meta(pfd, name, m, 0) : 0;
}

/* Makes symlink name -> target[len] under pfd via a temp name. */
static int local_put_link(int pfd, const char *name, const char *data,
			  size_t len, const struct bfs_meta *m, char *etag)
{
	char target[LOCAL_LINK_MAX], tmp[32];
	struct timespec ts[2];
	int r = BFS_ERR_INTERNAL, made = 0, tries = 0;

	if (len == 0 || memchr(data, '\0', len)) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	if (len >= sizeof(target)) {
		r = BFS_ERR_NAMETOOLONG;
		goto out;
	}
	memcpy(target, data, len);
	target[len] = '\0';
	if ((r = local_md5(target, len, etag)) != 0)
		goto out;
	for (;;) {
		if ((r = local_tmp_name(tmp, sizeof(tmp))) != 0)
			goto out;
		if (symlinkat(target, pfd, tmp) == 0)
			break;
		if (errno != EEXIST || ++tries >= 4) {
			r = local_err(errno);
			goto out;
		}
	}
	made = 1;
	if ((r = local_chown_at(pfd, tmp, -1, m, 0)) != 0)
		goto out;
	if (m->has_mtime) {
		local_times(m, ts);
		if (utimensat(pfd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0) {
			r = local_err(errno);
			goto out;
		}
	}
	if (renameat(pfd, tmp, pfd, name) < 0) {
		r = local_err(errno);
		goto out;
	}
	made = 0;
	r = 0;
out:
	if (made)
		unlinkat(pfd, tmp, 0);
	return r;
}

/*
 * Writes a regular file name under pfd from data[size] or, when data is
 * NULL, size bytes pread from src_fd; MD5 into etag[33].  Temp file,
 * metadata, fsync, rename.
 */
static int local_put_file(int pfd, const char *name, int src_fd,
			  const void *data, uint64_t size,
			  const struct bfs_meta *m, char *etag)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	EVP_MD_CTX *md = NULL;
	struct timespec ts[2];
	char tmp[32], *buf = NULL;
	uint64_t off = 0;
	ssize_t n;
	int tfd = -1, r = BFS_ERR_INTERNAL, made = 0, tries = 0;

	if (!(md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(md, EVP_md5(), NULL)) {
		r = BFS_ERR_CRYPTO;
		goto out;
	}
	for (;;) {
		if ((r = local_tmp_name(tmp, sizeof(tmp))) != 0)
			goto out;
		tfd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			     O_CLOEXEC, 0600);
		if (tfd >= 0)
			break;
		if (errno != EEXIST || ++tries >= 4) {
			r = local_err(errno);
			goto out;
		}
	}
	made = 1;
	if (data) {
		if ((r = local_write_all(tfd, data, (size_t)size, 0)) != 0)
			goto out;
		if (!EVP_DigestUpdate(md, data, (size_t)size)) {
			r = BFS_ERR_CRYPTO;
			goto out;
		}
	} else if (size > 0) {
		if (!(buf = malloc(LOCAL_CHUNK))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		while (off < size) {
			size_t want = size - off < LOCAL_CHUNK ?
				      (size_t)(size - off) : LOCAL_CHUNK;

			n = pread(src_fd, buf, want, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = local_err(errno);
				goto out;
			}
			if (n == 0) {   /* source shorter than announced */
				r = BFS_ERR_IO;
				goto out;
			}
			if ((r = local_write_all(tfd, buf, (size_t)n, off)) != 0)
				goto out;
			if (!EVP_DigestUpdate(md, buf, (size_t)n)) {
				r = BFS_ERR_CRYPTO;
				goto out;
			}
			off += (uint64_t)n;
		}
	}
	if (!EVP_DigestFinal_ex(md, d, &dl) || dl != 16) {
		r = BFS_ERR_CRYPTO;
		goto out;
	}
	bfs_hex_encode(d, dl, etag);
	if (m && m->has_mtime) {
		local_times(m, ts);
		if (futimens(tfd, ts) < 0) {
			r = local_err(errno);
			goto out;
		}
	}
	local_store_etag(tfd, etag);
	if (m && m->xattr[0] && (r = local_xattr_store(tfd, m->xattr, 0)) != 0)
		goto out;
	if (m && m->has_mode)
		local_fd_mark_meta(tfd);
	if (m && (r = local_chown_at(pfd, tmp, tfd, m, 0)) != 0)
		goto out;
	if (fchmod(tfd, (m && m->has_mode) ? (m->mode & 07777) : 0644) < 0 ||
	    fsync(tfd) < 0) {
		r = local_err(errno);
		goto out;
	}
	n = close(tfd);
	tfd = -1;
	if (n < 0 || renameat(pfd, tmp, pfd, name) < 0) {
		r = local_err(errno);
		goto out;
	}
	made = 0;
	r = 0;
out:
	if (tfd >= 0)
		close(tfd);
	if (made)
		unlinkat(pfd, tmp, 0);
	free(buf);
	EVP_MD_CTX_free(md);
	return r;
}

/* Reads up to cap bytes of src_fd from offset 0 into buf; exact size. */
static int local_read_small(int src_fd, uint64_t size, char *buf, size_t cap)
{
	ssize_t n;

	if (size >= cap)
		return BFS_ERR_NAMETOOLONG;
	if ((n = bfs_pread_full(src_fd, buf, (size_t)size, 0)) < 0)
		return local_err(errno);
	return (uint64_t)n == size ? 0 : BFS_ERR_IO;
}

/*
 * put_fd / put_buf: the kind comes from the key (trailing '/': folder)
 * and m->mode's type bits (S_IFDIR folder, S_IFLNK symlink whose target
 * is the body, 0 or S_IFREG regular file; others NOTSUP).  Missing parent
 * folders are made (0755) beneath the root.
 */
static int local_put(struct local_state *ls, const char *key, int src_fd,
		     const void *data, uint64_t size, const struct bfs_meta *m,
		     char *etag_out, size_t etag_len)
{
	static const struct bfs_meta none;
	char etag[40] = "", *body = NULL;
	enum local_kind kind = LOCAL_FILE;
	struct local_key lk;
	int pfd = -1, r;

	local_set_etag(etag_out, etag_len, "");
	if (!m)
		m = &none;
	if ((r = local_split(key, &lk)) != 0)
		goto out;
	if (lk.dir || (m->has_mode && S_ISDIR(m->mode)))
		kind = LOCAL_DIR;
	else if (m->has_mode && S_ISLNK(m->mode))
		kind = LOCAL_LINK;
	else if (m->has_mode && (m->mode & S_IFMT) && !S_ISREG(m->mode)) {
		r = BFS_ERR_NOTSUP;
		goto out;
	}
	if (!data && src_fd < 0 && size > 0) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	if ((r = local_open_dir(ls, lk.parent, O_PATH, 1, &pfd)) != 0)
		goto out;
	switch (kind) {
	case LOCAL_DIR:
		if ((r = local_put_dir(pfd, lk.name, m)) != 0)
			goto out;
		snprintf(etag, sizeof(etag), "%s", LOCAL_MD5_EMPTY);
		break;
	case LOCAL_LINK:
		if (!data) {
			if (!(body = malloc(LOCAL_LINK_MAX))) {
				r = BFS_ERR_NOMEM;
				goto out;
			}
			if ((r = local_read_small(src_fd, size, body, LOCAL_LINK_MAX)) != 0)
				goto out;
		}
		if ((r = local_put_link(pfd, lk.name, data ? data : body,
					(size_t)size, m, etag)) != 0)
			goto out;
		break;
	case LOCAL_FILE:
		if ((r = local_put_file(pfd, lk.name, src_fd, data, size, m, etag)) != 0)
			goto out;
		break;
	}
	local_set_etag(etag_out, etag_len, etag);
	r = 0;
out:
	free(body);
	if (pfd >= 0)
		close(pfd);
	return r;
}

static int local_put_fd(void *st, const char *key, int fd, uint64_t size,
			const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	if (fd < 0)
		return BFS_ERR_INVAL;
	return local_put(st, key, fd, NULL, size, m, etag_out, etag_len);
}

static int local_put_buf(void *st, const char *key, const void *data, size_t len,
			 const struct bfs_meta *m, char *etag_out, size_t etag_len)
{
	static const char empty[1];

	if (!data && len > 0)
		return BFS_ERR_INVAL;
	return local_put(st, key, -1, data ? data : empty, len, m, etag_out, etag_len);
}

static int local_create(const struct bfs_bucket_conf *bc, void **state,
			char *err, size_t errlen)
{
	struct local_state *ls = NULL;
	const char *bname = bc && bc->name ? bc->name : "?";
	int fd = -1, r = BFS_ERR_INTERNAL, e;

	*state = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!bc || !bc->path || bc->path[0] != '/') {
		if (err && errlen)
			snprintf(err, errlen, "local bucket '%s': path must be an "
				 "absolute folder", bname);
		r = BFS_ERR_CONFIG;
		goto out;
	}
	fd = open(bc->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		r = (e == ENOENT || e == ENOTDIR) ? BFS_ERR_NOTFOUND : local_err(e);
		if (err && errlen)
			snprintf(err, errlen, "local bucket '%s': path '%s' %s",
				 bname, bc->path,
				 e == ENOENT ? "does not exist" :
				 e == ENOTDIR ? "is not a folder" : strerror(e));
		goto out;
	}
	if (!(ls = calloc(1, sizeof(*ls)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	ls->root_fd = fd;
	fd = -1;
	*state = ls;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static void local_destroy(void *st)
{
	struct local_state *ls = st;

	if (!ls)
		return;
	if (ls->root_fd >= 0)
		close(ls->root_fd);
	free(ls);
}

/*
 * Folders are heads only as "a/"; "a" on a folder is NOTFOUND (as on S3,
 * where the caller then tries the marker).  A symlink reports S_IFLNK and
 * the target length as size.
 */
static int local_head(void *st, const char *key, struct bfs_meta *m)
{
	struct local_state *ls = st;
	struct local_key lk;
	int pfd = -1, r;

	if ((r = local_split(key, &lk)) != 0)
		goto out;
	if ((r = local_open_dir(ls, lk.parent, O_PATH, 0, &pfd)) != 0)
		goto out;
	if ((r = local_meta_at(pfd, lk.name, lk.dir, m)) == 0)
		local_xattr_load_at(pfd, lk.name, m);
out:
	if (pfd >= 0)
		close(pfd);
	return r;
}

/*
 * Opens the object for reading: *fd an open regular file, or (symlink)
 * its target in link[LOCAL_LINK_MAX] with *linklen, or (folder marker)
 * neither.  m filled when non-NULL.
 */
static int local_open_obj(struct local_state *ls, const char *key, int *fd,
			  char *link, size_t *linklen, struct bfs_meta *m)
{
	struct local_key lk;
	struct bfs_meta tmp;
	struct stat st;
	ssize_t n;
	int pfd = -1, r;

	*fd = -1;
	*linklen = 0;
	if (!m)
		m = &tmp;
	if ((r = local_split(key, &lk)) != 0)
		goto out;
	if ((r = local_open_dir(ls, lk.parent, O_PATH, 0, &pfd)) != 0)
		goto out;
	if ((r = local_meta_at(pfd, lk.name, lk.dir, m)) != 0)
		goto out;
	local_xattr_load_at(pfd, lk.name, m);
	if (S_ISLNK(m->mode)) {
		n = readlinkat(pfd, lk.name, link, LOCAL_LINK_MAX);
		if (n < 0) {
			r = local_err(errno);
			goto out;
		}
		if ((size_t)n >= LOCAL_LINK_MAX) {
			r = BFS_ERR_NAMETOOLONG;
			goto out;
		}
		*linklen = (size_t)n;
	} else if (S_ISREG(m->mode)) {
		if ((r = local_open_file(pfd, lk.name, &st)) < 0)
			goto out;
		*fd = r;
	}
	r = 0;
out:
	if (pfd >= 0)
		close(pfd);
	return r;
}

static int local_get_range(void *st, const char *key, uint64_t off, size_t len,
			   char *buf, size_t *got, const char *if_match)
{
	char *link = NULL, etag[96];
	size_t linklen = 0, done = 0;
	struct stat fst;
	ssize_t n;
	int fd = -1, r;

	*got = 0;
	if (!(link = malloc(LOCAL_LINK_MAX))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = local_open_obj(st, key, &fd, link, &linklen, NULL)) != 0)
		goto out;
	if (fd < 0) {   /* symlink (or folder: linklen 0) */
		if (off < linklen) {
			done = linklen - (size_t)off < len ? linklen - (size_t)off : len;
			memcpy(buf, link + off, done);
		}
	} else {
		if (if_match && if_match[0]) {
			/* the version of the file opened, not of a name */
			if (fstat(fd, &fst) < 0) {
				r = local_err(errno);
				goto out;
			}
			local_fd_etag(fd, &fst, etag, sizeof(etag));
			if (strcmp(etag, if_match) != 0) {
				r = BFS_ERR_PRECONDITION;
				goto out;
			}
		}
		if ((n = bfs_pread_full(fd, buf, len, off)) < 0) {
			r = local_err(errno);
			goto out;
		}
		done = (size_t)n;
	}
	*got = done;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(link);
	return r;
}

/* Whole object into fd from offset 0 (copy_file_range when possible). */
static int local_get_fd(void *st, const char *key, int out_fd, struct bfs_meta *m)
{
	char *link = NULL, *buf = NULL;
	size_t linklen = 0;
	loff_t in_off = 0, out_off = 0;
	uint64_t off = 0;
	ssize_t n;
	int fd = -1, r, use_cfr = 1;

	if (!(link = malloc(LOCAL_LINK_MAX))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = local_open_obj(st, key, &fd, link, &linklen, m)) != 0)
		goto out;
	if (fd < 0) {
		r = local_write_all(out_fd, link, linklen, 0);
		goto out;
	}
	for (;;) {
		if (use_cfr) {
			n = copy_file_range(fd, &in_off, out_fd, &out_off, LOCAL_CHUNK * 4, 0);
			if (n >= 0) {
				if (n == 0)
					break;
				off += (uint64_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
			    errno != EOPNOTSUPP && errno != EBADF && errno != ESPIPE) {
				r = local_err(errno);
				goto out;
			}
			use_cfr = 0;
			if (!(buf = malloc(LOCAL_CHUNK))) {
				r = BFS_ERR_NOMEM;
				goto out;
			}
		}
		n = pread(fd, buf, LOCAL_CHUNK, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = local_err(errno);
			goto out;
		}
		if (n == 0)
			break;
		if ((r = local_write_all(out_fd, buf, (size_t)n, off)) != 0)
			goto out;
		off += (uint64_t)n;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(link);
	return r;
}

/* Absent -> 0; "a/" removes an empty folder (NOTEMPTY otherwise). */
static int local_del(void *st, const char *key)
{
	struct local_key lk;
	int pfd = -1, r;

	if ((r = local_split(key, &lk)) != 0)
		goto out;
	if ((r = local_open_dir(st, lk.parent, O_PATH, 0, &pfd)) != 0) {
		if (r == BFS_ERR_NOTFOUND)
			r = 0;
		goto out;
	}
	if (unlinkat(pfd, lk.name, lk.dir ? AT_REMOVEDIR : 0) < 0) {
		if (errno == ENOENT)
			r = 0;
		else if (errno == EEXIST)
			r = BFS_ERR_NOTEMPTY;
		else
			r = local_err(errno);
		goto out;
	}
	r = 0;
out:
	if (pfd >= 0)
		close(pfd);
	return r;
}

/* Folders still to list in a recursive walk (a capped stack). */
struct local_pending {
	char **v;
	size_t n, cap;
};

static int local_pending_push(struct local_pending *p, const char *rel)
{
	char **nv, *s;
	size_t ncap;

	if (p->n >= LOCAL_LIST_MAX_PENDING)
		return BFS_ERR_TOOBIG;
	if (p->n == p->cap) {
		ncap = p->cap ? p->cap * 2 : 64;
		if (!(nv = realloc(p->v, ncap * sizeof(*nv))))
			return BFS_ERR_NOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	if (!(s = strdup(rel)))
		return BFS_ERR_NOMEM;
	p->v[p->n++] = s;
	return 0;
}

static void local_pending_free(struct local_pending *p)
{
	while (p->n > 0)
		free(p->v[--p->n]);
	free(p->v);
	p->v = NULL;
	p->cap = 0;
}

/*
 * Lists folder prefix/rel: every visible entry goes to fn with its name
 * relative to the prefix; subfolders are pushed on pending when given.
 * *stop set when fn asked to stop.  A folder that vanished (or became a
 * symlink) since it was queued is skipped.
 */
static int local_list_dir(struct local_state *ls, const char *prefix,
			  const char *rel, struct local_pending *pending,
			  bfs_list_fn fn, void *arg, int *stop)
{
	char path[2 * BFS_KEY_MAX + 2], child[2 * BFS_KEY_MAX + 2];
	size_t plen = strlen(prefix), rlen = strlen(rel), nlen;
	struct bfs_meta m;
	struct dirent *de;
	DIR *d = NULL;
	int fd = -1, r;

	/* prefix is "" or "a/b/": the folder is "a/b" + "/" + rel. */
	snprintf(path, sizeof(path), "%.*s%s%s", plen ? (int)plen - 1 : 0, prefix,
		 plen && rlen ? "/" : "", rel);
	if ((r = local_open_dir(ls, path, O_RDONLY, 0, &fd)) != 0) {
		if (r == BFS_ERR_NOTFOUND || r == BFS_ERR_NOTDIR ||
		    (rlen && r == BFS_ERR_LOOP))
			r = 0;
		goto out;
	}
	if (!(d = fdopendir(fd))) {
		r = local_err(errno);
		goto out;
	}
	fd = -1;
	for (;;) {
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno) {
				r = local_err(errno);
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strncmp(de->d_name, LOCAL_TMP_PREFIX, strlen(LOCAL_TMP_PREFIX)) == 0)
			continue;
		nlen = strlen(de->d_name);
		if (bfs_key_segment_check(de->d_name, nlen) != 0)
			continue;
		if (de->d_type == DT_DIR)
			r = local_meta_at(dirfd(d), de->d_name, 1, &m);
		else
			r = local_meta_at(dirfd(d), de->d_name, 0, &m);
		if (r == BFS_ERR_NOTFOUND && de->d_type == DT_UNKNOWN)
			r = local_meta_at(dirfd(d), de->d_name, 1, &m);
		if (r != 0)
			continue;   /* vanished, or a fifo/device/socket */
		/* The full key (a folder with its '/') must stay a safe key. */
		if (plen + (rlen ? rlen + 1 : 0) + nlen + !!S_ISDIR(m.mode) > BFS_KEY_MAX)
			continue;
		snprintf(child, sizeof(child), "%s%s%s", rel, rlen ? "/" : "", de->d_name);
		if (fn(arg, child, S_ISDIR(m.mode) ? 1 : 0, &m) != 0) {
			*stop = 1;
			break;
		}
		if (pending && S_ISDIR(m.mode) &&
		    (r = local_pending_push(pending, child)) != 0)
			goto out;
	}
	r = 0;
out:
	if (d)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * One level below prefix ("" or "a/b/"), or with BFS_LIST_RECURSIVE every
 * file, symlink and folder below it as "x/y/z".  Absent prefix folder:
 * 0 with no entries.  Order unspecified.
 */
static int local_list(void *st, const char *prefix, unsigned flags,
		      bfs_list_fn fn, void *arg)
{
	struct local_pending pending = { NULL, 0, 0 };
	size_t plen;
	char *rel = NULL;
	int r, stop = 0;

	if (!prefix || !fn)
		return BFS_ERR_INVAL;
	plen = strlen(prefix);
	if (plen && prefix[plen - 1] != '/')
		return BFS_ERR_INVAL;
	if (plen && (r = bfs_key_check(prefix, 1)) != 0)
		return r;
	if (!(flags & BFS_LIST_RECURSIVE))
		return local_list_dir(st, prefix, "", NULL, fn, arg, &stop);
	if ((r = local_pending_push(&pending, "")) != 0)
		goto out;
	while (pending.n > 0 && !stop) {
		rel = pending.v[--pending.n];
		if ((r = local_list_dir(st, prefix, rel, &pending, fn, arg, &stop)) != 0)
			goto out;
		free(rel);
		rel = NULL;
	}
	r = 0;
out:
	free(rel);
	local_pending_free(&pending);
	return r;
}

/*
 * Copies src to dst: a regular file through a temp file (data, etag), a
 * symlink as a symlink, a folder marker "a/" as an empty folder.  The
 * metadata is src's, each field m has set replacing it (mode: permission
 * bits only; the type stays src's).
 */
static int local_copy(void *st, const char *src, const char *dst,
		      const struct bfs_meta *m)
{
	struct local_state *ls = st;
	char *link = NULL;
	size_t linklen = 0;
	struct bfs_meta meta;
	int fd = -1, r;

	if (!(link = malloc(LOCAL_LINK_MAX))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if ((r = local_open_obj(ls, src, &fd, link, &linklen, &meta)) != 0)
		goto out;
	if (m) {
		if (m->has_mode)
			meta.mode = (meta.mode & S_IFMT) | (m->mode & 07777);
		if (m->has_uid)
			meta.uid = m->uid;
		if (m->has_gid)
			meta.gid = m->gid;
		if (m->has_mtime) {
			meta.mtime = m->mtime;
			meta.mtime_nsec = m->mtime_nsec;
		}
		if (m->has_xattr)
			memcpy(meta.xattr, m->xattr, sizeof(meta.xattr));
	}
	if (S_ISREG(meta.mode))
		r = local_put(ls, dst, fd, NULL, meta.size, &meta, NULL, 0);
	else if (S_ISLNK(meta.mode))
		r = local_put(ls, dst, -1, link, linklen, &meta, NULL, 0);
	else
		r = local_put(ls, dst, -1, "", 0, &meta, NULL, 0);
out:
	if (fd >= 0)
		close(fd);
	free(link);
	return r;
}

static int local_set_meta(void *st, const char *key, const struct bfs_meta *m)
{
	struct local_key lk;
	struct bfs_meta cur;
	int pfd = -1, r;

	if (!m)
		return BFS_ERR_INVAL;
	if ((r = local_split(key, &lk)) != 0)
		goto out;
	if ((r = local_open_dir(st, lk.parent, O_PATH, 0, &pfd)) != 0)
		goto out;
	if ((r = local_meta_at(pfd, lk.name, lk.dir, &cur)) != 0)
		goto out;
	if (m->has_xattr && !S_ISLNK(cur.mode) &&
	    (r = local_xattr_store_at(pfd, lk.name, m->xattr)) != 0)
		goto out;
	r = local_apply_meta(pfd, lk.name, m, 1);
out:
	if (pfd >= 0)
		close(pfd);
	return r;
}

/*
 * rename(2) of one key, or of a folder with "a/" -> "b/", both beneath
 * the root; dst's parent folders are made.  Overwrites dst like rename(2)
 * (a non-empty folder dst: NOTEMPTY).
 */
static int local_rename(void *st, const char *src, const char *dst)
{
	struct local_key ls_key, ld_key;
	struct bfs_meta m;
	int spfd = -1, dpfd = -1, r;

	if ((r = local_split(src, &ls_key)) != 0 || (r = local_split(dst, &ld_key)) != 0)
		goto out;
	if (ls_key.dir != ld_key.dir) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	if ((r = local_open_dir(st, ls_key.parent, O_PATH, 0, &spfd)) != 0)
		goto out;
	if ((r = local_meta_at(spfd, ls_key.name, ls_key.dir, &m)) != 0)
		goto out;
	if ((r = local_open_dir(st, ld_key.parent, O_PATH, 1, &dpfd)) != 0)
		goto out;
	if (renameat(spfd, ls_key.name, dpfd, ld_key.name) < 0) {
		r = errno == EEXIST ? BFS_ERR_NOTEMPTY : local_err(errno);
		goto out;
	}
	r = 0;
out:
	if (dpfd >= 0)
		close(dpfd);
	if (spfd >= 0)
		close(spfd);
	return r;
}

static int local_statfs(void *st, uint64_t *total, uint64_t *avail)
{
	struct local_state *ls = st;
	struct statvfs sv;

	if (fstatvfs(ls->root_fd, &sv) < 0)
		return local_err(errno);
	*total = (uint64_t)sv.f_blocks * (uint64_t)sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return 0;
}

const struct bfs_provider_ops bfs_provider_local = {
	.name = "local",
	.create = local_create,
	.destroy = local_destroy,
	.head = local_head,
	.get_range = local_get_range,
	.get_fd = local_get_fd,
	.put_fd = local_put_fd,
	.put_buf = local_put_buf,
	.del = local_del,
	.list = local_list,
	.copy = local_copy,
	.set_meta = local_set_meta,
	.rename = local_rename,
	.presign = NULL,
	.statfs = local_statfs,
};
