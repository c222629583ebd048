/*
 * test_local.c - the local provider on a private mkdtemp folder: every op,
 * metadata round trips, confinement (symlinks planted in the folder are
 * never followed, ".." keys refused), big and recursive listings.
 *
 * Destructive escape attempts (overwrite, delete, rename through a planted
 * link) aim at a second private "outside" folder so that even a bug could
 * not damage the system; /etc is the target of the read-only attempts and
 * of creations with names that cannot exist there.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bfs_error.h"
#include "bfs_provider.h"
#include "unit.h"

static char root[80], outside[64], parent[64];
static struct bfs_provider *prov;
static const struct bfs_provider_ops *ops;
static void *pst;

static int rm_ent(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_ent, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	struct bfs_bucket_conf bc;
	char err[256];

	/* The bucket folder sits alone in a private parent, so checks for
	 * what a bug would create next to it ("root/../x") see only this
	 * test's files. */
	snprintf(parent, sizeof(parent), "/tmp/bfs-local-XXXXXX");
	snprintf(outside, sizeof(outside), "/tmp/bfs-outside-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(parent));
	ck_assert_ptr_nonnull(mkdtemp(outside));
	snprintf(root, sizeof(root), "%s/b", parent);
	ck_assert_int_eq(mkdir(root, 0700), 0);
	memset(&bc, 0, sizeof(bc));
	bc.name = (char *)"t";
	bc.provider = BFS_PROV_LOCAL;
	bc.path = root;
	ck_assert_int_eq(bfs_provider_open(&bc, &prov, err, sizeof(err)), 0);
	ops = prov->ops;
	pst = prov->st;
}

static void teardown(void)
{
	bfs_provider_close(prov);
	prov = NULL;
	rm_tree(parent);
	rm_tree(outside);
}

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", root, rel);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0, i;

	ck_assert(EVP_Digest(data, len, d, &dl, EVP_md5(), NULL));
	for (i = 0; i < dl; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static struct bfs_meta meta_make(uint32_t mode, int64_t mtime, long nsec)
{
	struct bfs_meta m;

	memset(&m, 0, sizeof(m));
	m.mode = mode;
	m.has_mode = 1;
	m.uid = geteuid() == 0 ? 1234 : (uint32_t)getuid();
	m.gid = geteuid() == 0 ? 5678 : (uint32_t)getgid();
	m.has_uid = m.has_gid = 1;
	m.mtime = mtime;
	m.mtime_nsec = nsec;
	m.has_mtime = 1;
	return m;
}

static int count_tmp_files(const char *dir)
{
	char cmd[256];
	int n = 0, c;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "find '%s' -name '.bfs-tmp-*' | wc -l", dir);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	c = fscanf(f, "%d", &n);
	pclose(f);
	ck_assert_int_eq(c, 1);
	return n;
}

/* Listing collector: names joined as "name:d|" / "name:f|" in a set. */
struct coll {
	char names[64][128];
	int dir[64];
	int n, total, stop_after;
};

static int coll_fn(void *arg, const char *name, int is_dir, const struct bfs_meta *m)
{
	struct coll *c = arg;

	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(!!is_dir, !!S_ISDIR(m->mode));
	if (c->n < 64) {
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
		c->dir[c->n] = is_dir;
		c->n++;
	}
	c->total++;
	return c->stop_after && c->total >= c->stop_after;
}

/* -1 when absent, else is_dir. */
static int coll_find(const struct coll *c, const char *name)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0)
			return c->dir[i];
	return -1;
}

START_TEST(test_open_errors_and_globals)
{
	struct bfs_bucket_conf bc;
	struct bfs_provider *p = NULL;
	const struct bfs_provider_globals *g;
	struct bfs_provider_globals ng;
	char err[256], path[128];

	memset(&bc, 0, sizeof(bc));
	bc.name = (char *)"x";
	bc.provider = BFS_PROV_LOCAL;
	snprintf(path, sizeof(path), "%s/missing", root);
	bc.path = path;
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), BFS_ERR_NOTFOUND);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(err, "does not exist"));

	path_of(path, sizeof(path), "file");
	write_file(path, "x", 1);
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), BFS_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(err, "is not a folder"));

	bc.path = (char *)"relative/dir";
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), BFS_ERR_CONFIG);
	bc.path = NULL;
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), BFS_ERR_CONFIG);

	bc.provider = 42;
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "provider"));

	bc.provider = BFS_PROV_LOCAL;
	bc.path = root;
	bc.read_only = 1;
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), 0);
	ck_assert_int_eq(p->read_only, 1);
	ck_assert_ptr_eq(p->ops, &bfs_provider_local);
	ck_assert_str_eq(p->ops->name, "local");
	ck_assert_ptr_null(p->ops->presign);
	bfs_provider_close(p);
	bfs_provider_close(NULL);

	g = bfs_provider_get_globals();
	ck_assert_int_eq(g->connect_timeout, 10);
	ck_assert_int_eq(g->low_speed_time, 30);
	ck_assert_ptr_null(g->ca_bundle);
	snprintf(path, sizeof(path), "/etc/ssl/certs/ca.pem");
	ng.ca_bundle = path;
	ng.connect_timeout = 3;
	ng.low_speed_time = 7;
	bfs_provider_set_globals(&ng);
	path[0] = 'X';   /* the setting is a copy */
	g = bfs_provider_get_globals();
	ck_assert_str_eq(g->ca_bundle, "/etc/ssl/certs/ca.pem");
	ck_assert_int_eq(g->connect_timeout, 3);
	ck_assert_int_eq(g->low_speed_time, 7);
	ng.ca_bundle = NULL;
	ng.connect_timeout = 0;
	ng.low_speed_time = -1;
	bfs_provider_set_globals(&ng);
	ck_assert_ptr_null(g->ca_bundle);
	ck_assert_int_eq(g->connect_timeout, 10);
	ck_assert_int_eq(g->low_speed_time, 30);
	bfs_provider_set_globals(NULL);
}
END_TEST

START_TEST(test_put_buf_head_get)
{
	struct bfs_meta m;
	char etag[64], buf[16], path[128], md5[33];
	size_t got = 7;
	struct stat st;
	int fd;

	ck_assert_int_eq(ops->put_buf(pst, "a.txt", "hello", 5, NULL, etag, sizeof(etag)), 0);
	md5_hex("hello", 5, md5);
	ck_assert_str_eq(etag, md5);
	path_of(path, sizeof(path), "a.txt");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	ck_assert_int_eq(st.st_size, 5);

	ck_assert_int_eq(ops->head(pst, "a.txt", &m), 0);
	ck_assert_uint_eq(m.size, 5);
	ck_assert(S_ISREG(m.mode));
	ck_assert_uint_eq(m.mode & 07777, 0644);
	ck_assert(m.has_mode && m.has_uid && m.has_gid && m.has_mtime);
	ck_assert_int_eq(m.mtime, st.st_mtim.tv_sec);
	ck_assert_int_eq(m.mtime_nsec, st.st_mtim.tv_nsec);
	ck_assert_uint_eq(m.uid, st.st_uid);
	ck_assert_str_eq(m.etag, md5);
	ck_assert_str_eq(m.content_type, "text/plain");

	ck_assert_int_eq(ops->get_range(pst, "a.txt", 1, 3, buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert(memcmp(buf, "ell", 3) == 0);
	ck_assert_int_eq(ops->get_range(pst, "a.txt", 3, 10, buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 2);
	ck_assert(memcmp(buf, "lo", 2) == 0);
	ck_assert_int_eq(ops->get_range(pst, "a.txt", 10, 4, buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 0);

	snprintf(path, sizeof(path), "%s/out.bin", outside);
	ck_assert_int_ge(fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(ops->get_fd(pst, "a.txt", fd, &m), 0);
	ck_assert_uint_eq(m.size, 5);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	close(fd);

	/* Overwrite; empty object. */
	ck_assert_int_eq(ops->put_buf(pst, "a.txt", "bye", 3, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->get_range(pst, "a.txt", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert_int_eq(ops->put_buf(pst, "empty", NULL, 0, NULL, etag, sizeof(etag)), 0);
	ck_assert_str_eq(etag, "d41d8cd98f00b204e9800998ecf8427e");
	ck_assert_int_eq(ops->head(pst, "empty", &m), 0);
	ck_assert_uint_eq(m.size, 0);

	ck_assert_int_eq(ops->head(pst, "nope", &m), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->head(pst, "nope/deeper", &m), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->get_range(pst, "nope", 0, 4, buf, &got, NULL), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(count_tmp_files(root), 0);
}
END_TEST

/* If-Match on a range read: the etag of the file opened, whatever wrote it. */
START_TEST(test_get_range_if_match)
{
	struct bfs_meta m, m2;
	char buf[16], path[128];
	size_t got = 7;

	ck_assert_int_eq(ops->put_buf(pst, "v.txt", "first", 5, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->head(pst, "v.txt", &m), 0);
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 1, 3, buf, &got, m.etag), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert(memcmp(buf, "irs", 3) == 0);
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 0, 3, buf, &got, ""), 0);
	got = 7;
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 0, 3, buf, &got,
					"0123456789abcdef0123456789abcdef"),
			 BFS_ERR_PRECONDITION);
	ck_assert_uint_eq(got, 0);

	/* replaced by another program (no stored etag: synthesized) */
	path_of(path, sizeof(path), "v.txt");
	ck_assert_int_eq(unlink(path), 0);
	write_file(path, "other", 5);
	set_mtime(path, 1000000001);
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 0, 5, buf, &got, m.etag),
			 BFS_ERR_PRECONDITION);
	ck_assert_int_eq(ops->head(pst, "v.txt", &m2), 0);
	ck_assert_str_ne(m2.etag, m.etag);
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 0, 5, buf, &got, m2.etag), 0);
	ck_assert_uint_eq(got, 5);
	ck_assert(memcmp(buf, "other", 5) == 0);
	/* changed in place: a new mtime, a new etag */
	write_file(path, "again", 5);
	set_mtime(path, 1000000002);
	ck_assert_int_eq(ops->get_range(pst, "v.txt", 0, 5, buf, &got, m2.etag),
			 BFS_ERR_PRECONDITION);
}
END_TEST

START_TEST(test_put_fd_metadata)
{
	enum { N = 700001 };
	struct bfs_meta m = meta_make(S_IFREG | 0640, 1600000000, 123456789), h;
	char *data, *back, etag[64], md5[33], src[128], path[128];
	struct stat st;
	int fd, i;

	ck_assert_ptr_nonnull(data = malloc(N));
	ck_assert_ptr_nonnull(back = malloc(N + 10));
	for (i = 0; i < N; i++)
		data[i] = (char)(i * 7 + i / 251);
	snprintf(src, sizeof(src), "%s/src.bin", outside);
	write_file(src, data, N);
	ck_assert_int_ge(fd = open(src, O_RDONLY), 0);
	ck_assert_int_eq(ops->put_fd(pst, "d1/d2/f.bin", fd, N, &m, etag, sizeof(etag)), 0);
	md5_hex(data, N, md5);
	ck_assert_str_eq(etag, md5);

	path_of(path, sizeof(path), "d1/d2/f.bin");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_int_eq(st.st_size, N);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_uid, m.uid);
	ck_assert_int_eq(st.st_gid, m.gid);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1600000000);
	ck_assert_int_eq(st.st_mtim.tv_nsec, 123456789);
	path_of(path, sizeof(path), "d1/d2");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));

	ck_assert_int_eq(ops->head(pst, "d1/d2/f.bin", &h), 0);
	ck_assert_uint_eq(h.size, N);
	ck_assert_uint_eq(h.mode, S_IFREG | 0640);
	ck_assert_uint_eq(h.uid, m.uid);
	ck_assert_uint_eq(h.gid, m.gid);
	ck_assert_int_eq(h.mtime, 1600000000);
	ck_assert_int_eq(h.mtime_nsec, 123456789);
	ck_assert_str_eq(h.etag, md5);   /* stored etag, valid for this mtime */
	ck_assert_str_eq(h.content_type, "application/octet-stream");
	close(fd);

	/* get_fd into a file holding longer junk: written from offset 0. */
	snprintf(path, sizeof(path), "%s/back.bin", outside);
	ck_assert_int_ge(fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(ops->get_fd(pst, "d1/d2/f.bin", fd, NULL), 0);
	ck_assert_int_eq(pread(fd, back, N + 10, 0), N);
	ck_assert(memcmp(back, data, N) == 0);
	close(fd);

	/* A source shorter than announced fails and leaves no temp file. */
	ck_assert_int_ge(fd = open(src, O_RDONLY), 0);
	ck_assert_int_eq(ops->put_fd(pst, "d1/short", fd, N + 5, NULL, NULL, 0), BFS_ERR_IO);
	close(fd);
	ck_assert_int_eq(ops->head(pst, "d1/short", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(count_tmp_files(root), 0);

	/* A file key over an existing folder fails, temp removed. */
	ck_assert_int_eq(ops->put_buf(pst, "d1", "x", 1, NULL, NULL, 0), BFS_ERR_ISDIR);
	ck_assert_int_eq(count_tmp_files(root), 0);
	free(back);
	free(data);
}
END_TEST

START_TEST(test_symlink_objects)
{
	struct bfs_meta m = meta_make(S_IFLNK | 0777, 1500000000, 5), h;
	char etag[64], md5[33], buf[64], path[128], out[128];
	size_t got;
	ssize_t n;
	int fd;

	ck_assert_int_eq(ops->put_buf(pst, "sub/ln", "../target/x", 11, &m, etag,
				      sizeof(etag)), 0);
	md5_hex("../target/x", 11, md5);
	ck_assert_str_eq(etag, md5);
	path_of(path, sizeof(path), "sub/ln");
	n = readlink(path, buf, sizeof(buf));
	ck_assert_int_eq(n, 11);
	ck_assert(memcmp(buf, "../target/x", 11) == 0);

	ck_assert_int_eq(ops->head(pst, "sub/ln", &h), 0);
	ck_assert(S_ISLNK(h.mode));
	ck_assert_uint_eq(h.size, 11);
	ck_assert_uint_eq(h.uid, m.uid);
	ck_assert_uint_eq(h.gid, m.gid);
	ck_assert_int_eq(h.mtime, 1500000000);
	ck_assert_int_eq(h.mtime_nsec, 5);
	ck_assert_str_eq(h.etag, md5);

	ck_assert_int_eq(ops->get_range(pst, "sub/ln", 3, 6, buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 6);
	ck_assert(memcmp(buf, "target", 6) == 0);
	snprintf(out, sizeof(out), "%s/ln.out", outside);
	ck_assert_int_ge(fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
	ck_assert_int_eq(ops->get_fd(pst, "sub/ln", fd, &h), 0);
	ck_assert(S_ISLNK(h.mode));
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 11);
	close(fd);

	/* Body from an fd; copy keeps it a symlink. */
	snprintf(out, sizeof(out), "%s/target.txt", outside);
	write_file(out, "t2", 2);
	ck_assert_int_ge(fd = open(out, O_RDONLY), 0);
	ck_assert_int_eq(ops->put_fd(pst, "ln2", fd, 2, &m, NULL, 0), 0);
	close(fd);
	path_of(path, sizeof(path), "ln2");
	n = readlink(path, buf, sizeof(buf));
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(ops->copy(pst, "sub/ln", "ln3", NULL), 0);
	path_of(path, sizeof(path), "ln3");
	n = readlink(path, buf, sizeof(buf));
	ck_assert_int_eq(n, 11);
	ck_assert_int_eq(ops->head(pst, "ln3", &h), 0);
	ck_assert_int_eq(h.mtime, 1500000000);

	/* chmod on a symlink is ignored; chown/utimens apply to the link. */
	m = meta_make(0600, 1400000000, 0);
	ck_assert_int_eq(ops->set_meta(pst, "ln3", &m), 0);
	ck_assert_int_eq(ops->head(pst, "ln3", &h), 0);
	ck_assert(S_ISLNK(h.mode));
	ck_assert_int_eq(h.mtime, 1400000000);

	/* Empty or NUL-holding targets are refused. */
	m = meta_make(S_IFLNK | 0777, 1, 0);
	ck_assert_int_eq(ops->put_buf(pst, "bad", "", 0, &m, NULL, 0), BFS_ERR_INVAL);
	ck_assert_int_eq(ops->put_buf(pst, "bad", "a\0b", 3, &m, NULL, 0), BFS_ERR_INVAL);
	ck_assert_int_eq(count_tmp_files(root), 0);
}
END_TEST

START_TEST(test_folders_and_del)
{
	struct bfs_meta m = meta_make(S_IFDIR | 0750, 1300000000, 0), h;
	char path[128], etag[64];
	struct stat st;
	size_t got = 9;

	ck_assert_int_eq(ops->put_buf(pst, "dir/", NULL, 0, &m, etag, sizeof(etag)), 0);
	ck_assert_str_eq(etag, "d41d8cd98f00b204e9800998ecf8427e");
	path_of(path, sizeof(path), "dir");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(st.st_uid, m.uid);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1300000000);
	/* Again: an existing folder is fine. */
	ck_assert_int_eq(ops->put_buf(pst, "dir/", NULL, 0, NULL, NULL, 0), 0);
	/* S_IFDIR without the trailing slash makes a folder too. */
	ck_assert_int_eq(ops->put_buf(pst, "dir2", NULL, 0, &m, NULL, 0), 0);
	path_of(path, sizeof(path), "dir2");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));

	ck_assert_int_eq(ops->head(pst, "dir/", &h), 0);
	ck_assert(S_ISDIR(h.mode));
	ck_assert_uint_eq(h.size, 0);
	ck_assert_int_eq(ops->head(pst, "dir", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->get_range(pst, "dir/", 0, 4, path, &got, NULL), 0);
	ck_assert_uint_eq(got, 0);

	ck_assert_int_eq(ops->put_buf(pst, "dir/f", "1", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->head(pst, "dir/f/", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->put_buf(pst, "dir/f/", NULL, 0, NULL, NULL, 0), BFS_ERR_EXISTS);
	ck_assert_int_eq(ops->del(pst, "dir/"), BFS_ERR_NOTEMPTY);
	ck_assert_int_eq(ops->del(pst, "dir"), BFS_ERR_ISDIR);
	ck_assert_int_eq(ops->del(pst, "dir/f"), 0);
	ck_assert_int_eq(ops->head(pst, "dir/f", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->del(pst, "dir/f"), 0);
	ck_assert_int_eq(ops->del(pst, "dir/"), 0);
	path_of(path, sizeof(path), "dir");
	ck_assert_int_eq(lstat(path, &st), -1);
	ck_assert_int_eq(ops->del(pst, "dir/"), 0);
	ck_assert_int_eq(ops->del(pst, "nope"), 0);
	ck_assert_int_eq(ops->del(pst, "nope/deeper/x"), 0);
	ck_assert_int_eq(ops->del(pst, "nope/"), 0);
}
END_TEST

START_TEST(test_set_meta_and_etag)
{
	struct bfs_meta m = meta_make(0600, 1234567890, 42), h;
	char etag[64], path[128];
	struct stat st;
	int fd;

	ck_assert_int_eq(ops->put_buf(pst, "f", "content", 7, NULL, etag, sizeof(etag)), 0);
	ck_assert_int_eq(ops->set_meta(pst, "f", &m), 0);
	path_of(path, sizeof(path), "f");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_uid, m.uid);
	ck_assert_int_eq(st.st_gid, m.gid);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1234567890);
	ck_assert_int_eq(st.st_mtim.tv_nsec, 42);
	ck_assert_int_eq(ops->head(pst, "f", &h), 0);
	ck_assert_str_eq(h.etag, etag);   /* utimens keeps the content etag */

	/* Only the fields with has_* change. */
	memset(&m, 0, sizeof(m));
	m.mode = 0604;
	m.has_mode = 1;
	ck_assert_int_eq(ops->set_meta(pst, "f", &m), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0604);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1234567890);

	/* Changed behind our back: the stored etag no longer applies. */
	ck_assert_int_ge(fd = open(path, O_WRONLY), 0);
	ck_assert_int_eq(pwrite(fd, "CONTENT", 7, 0), 7);
	close(fd);
	ck_assert_int_eq(ops->head(pst, "f", &h), 0);
	ck_assert_str_ne(h.etag, etag);
	ck_assert_str_ne(h.etag, "");

	ck_assert_int_eq(ops->set_meta(pst, "nope", &m), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->put_buf(pst, "d/", NULL, 0, NULL, NULL, 0), 0);
	m.mode = 0711;
	ck_assert_int_eq(ops->set_meta(pst, "d/", &m), 0);
	path_of(path, sizeof(path), "d");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0711);
}
END_TEST

/* Files and folders put into the folder by other means carry no mode or
 * owner (the mount shows the bucket's); what bucketfs wrote or changed
 * does, also in listings. */
static int origin_fn(void *arg, const char *name, int is_dir,
		     const struct bfs_meta *m)
{
	int *seen = arg;

	(void)is_dir;
	if (!strcmp(name, "plain"))
		seen[0] = m && !m->has_mode && !m->has_uid && !m->has_gid &&
			  S_ISREG(m->mode) && !(m->mode & 07777);
	if (!strcmp(name, "pdir"))
		seen[1] = m && !m->has_mode && S_ISDIR(m->mode);
	if (!strcmp(name, "ours"))
		seen[2] = m && m->has_mode && (m->mode & 07777) == 0640;
	return 0;
}

START_TEST(test_meta_origin)
{
	struct bfs_meta m = meta_make(0640, 1234567890, 0), h;
	char path[128];
	int fd, seen[3] = { 0, 0, 0 };

	path_of(path, sizeof(path), "plain");
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT, 0600), 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	path_of(path, sizeof(path), "pdir");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(ops->head(pst, "plain", &h), 0);
	ck_assert(!h.has_mode && !h.has_uid && !h.has_gid);
	ck_assert(S_ISREG(h.mode) && !(h.mode & 07777));
	ck_assert_uint_eq(h.size, 1);
	ck_assert_int_eq(ops->head(pst, "pdir/", &h), 0);
	ck_assert(!h.has_mode && S_ISDIR(h.mode));
	ck_assert_int_eq(ops->put_buf(pst, "ours", "y", 1, &m, NULL, 0), 0);
	ck_assert_int_eq(ops->list(pst, "", 0, origin_fn, seen), 0);
	ck_assert(seen[0] && seen[1] && seen[2]);
	/* a chmod through the mount gives them metadata */
	ck_assert_int_eq(ops->set_meta(pst, "plain", &m), 0);
	ck_assert_int_eq(ops->head(pst, "plain", &h), 0);
	ck_assert(h.has_mode && h.has_uid && (h.mode & 07777) == 0640);
	ck_assert_int_eq(ops->set_meta(pst, "pdir/", &m), 0);
	ck_assert_int_eq(ops->head(pst, "pdir/", &h), 0);
	ck_assert(h.has_mode && S_ISDIR(h.mode) && (h.mode & 07777) == 0640);
	/* a folder made through the mount has them from the start */
	m.mode = S_IFDIR | 0750;
	ck_assert_int_eq(ops->put_buf(pst, "made/", NULL, 0, &m, NULL, 0), 0);
	ck_assert_int_eq(ops->head(pst, "made/", &h), 0);
	ck_assert(h.has_mode && (h.mode & 07777) == 0750);
}
END_TEST

START_TEST(test_copy)
{
	struct bfs_meta m = meta_make(0640, 1111111111, 0), r, h;
	char buf[16], path[128];
	struct stat st;
	size_t got;

	ck_assert_int_eq(ops->put_buf(pst, "src.txt", "payload", 7, &m, NULL, 0), 0);
	ck_assert_int_eq(ops->head(pst, "src.txt", &h), 0);
	ck_assert_int_eq(ops->copy(pst, "src.txt", "x/y/dst.txt", NULL), 0);
	ck_assert_int_eq(ops->head(pst, "x/y/dst.txt", &r), 0);
	ck_assert_uint_eq(r.mode, S_IFREG | 0640);
	ck_assert_uint_eq(r.uid, m.uid);
	ck_assert_int_eq(r.mtime, 1111111111);
	ck_assert_str_eq(r.etag, h.etag);
	ck_assert_int_eq(ops->get_range(pst, "x/y/dst.txt", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 7);
	ck_assert(memcmp(buf, "payload", 7) == 0);

	/* m replaces only what it sets. */
	memset(&m, 0, sizeof(m));
	m.mode = S_IFREG | 0600;
	m.has_mode = 1;
	ck_assert_int_eq(ops->copy(pst, "src.txt", "c2.txt", &m), 0);
	ck_assert_int_eq(ops->head(pst, "c2.txt", &r), 0);
	ck_assert_uint_eq(r.mode, S_IFREG | 0600);
	ck_assert_int_eq(r.mtime, 1111111111);
	/* Copy onto itself keeps the data. */
	ck_assert_int_eq(ops->copy(pst, "c2.txt", "c2.txt", NULL), 0);
	ck_assert_int_eq(ops->get_range(pst, "c2.txt", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 7);
	/* A folder marker copies as an empty folder. */
	ck_assert_int_eq(ops->put_buf(pst, "fold/", NULL, 0, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "fold/in", "z", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->copy(pst, "fold/", "fold2/", NULL), 0);
	path_of(path, sizeof(path), "fold2");
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(ops->copy(pst, "nope", "z", NULL), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(count_tmp_files(root), 0);
}
END_TEST

START_TEST(test_rename)
{
	struct bfs_meta h;
	char buf[16], path[128];
	struct stat st;
	size_t got;

	ck_assert_int_eq(ops->put_buf(pst, "a", "AAA", 3, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->rename(pst, "a", "n1/n2/b"), 0);
	ck_assert_int_eq(ops->head(pst, "a", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->get_range(pst, "n1/n2/b", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 3);

	/* Overwrites like rename(2). */
	ck_assert_int_eq(ops->put_buf(pst, "c", "C", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->rename(pst, "c", "n1/n2/b"), 0);
	ck_assert_int_eq(ops->get_range(pst, "n1/n2/b", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, 1);
	ck_assert_int_eq(ops->head(pst, "c", &h), BFS_ERR_NOTFOUND);

	/* Folder rename moves the contents. */
	ck_assert_int_eq(ops->rename(pst, "n1/", "m1/"), 0);
	ck_assert_int_eq(ops->head(pst, "m1/n2/b", &h), 0);
	ck_assert_int_eq(ops->head(pst, "n1/", &h), BFS_ERR_NOTFOUND);
	path_of(path, sizeof(path), "n1");
	ck_assert_int_eq(lstat(path, &st), -1);
	ck_assert_int_eq(ops->rename(pst, "m1/", "deep/er/m2/"), 0);
	ck_assert_int_eq(ops->head(pst, "deep/er/m2/n2/b", &h), 0);

	/* Onto a non-empty folder: NOTEMPTY; onto an empty one: fine. */
	ck_assert_int_eq(ops->put_buf(pst, "full/x", "x", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "src/y", "y", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->rename(pst, "src/", "full/"), BFS_ERR_NOTEMPTY);
	ck_assert_int_eq(ops->put_buf(pst, "emptyd/", NULL, 0, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->rename(pst, "src/", "emptyd/"), 0);
	ck_assert_int_eq(ops->head(pst, "emptyd/y", &h), 0);

	/* Mismatched kinds, absent source, folder into itself. */
	ck_assert_int_eq(ops->rename(pst, "full/x", "q/"), BFS_ERR_INVAL);
	ck_assert_int_eq(ops->rename(pst, "nope", "q"), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->rename(pst, "full", "q"), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(ops->rename(pst, "full/", "full/sub/"), BFS_ERR_INVAL);
}
END_TEST

START_TEST(test_list_flat)
{
	struct coll c;
	char path[128];

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->put_buf(pst, "l/f1", "1", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "l/f2.txt", "22", 2, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "l/sub/deep", "3", 1, NULL, NULL, 0), 0);
	path_of(path, sizeof(path), "l/ln");
	ck_assert_int_eq(symlink("f1", path), 0);
	path_of(path, sizeof(path), "l/.bfs-tmp-0123456789abcdef");
	write_file(path, "t", 1);
	path_of(path, sizeof(path), "l/bad\001name");
	write_file(path, "b", 1);
	path_of(path, sizeof(path), "l/fifo");
	ck_assert_int_eq(mkfifo(path, 0600), 0);

	ck_assert_int_eq(ops->list(pst, "l/", 0, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 4);
	ck_assert_int_eq(coll_find(&c, "f1"), 0);
	ck_assert_int_eq(coll_find(&c, "f2.txt"), 0);
	ck_assert_int_eq(coll_find(&c, "sub"), 1);
	ck_assert_int_eq(coll_find(&c, "ln"), 0);
	ck_assert_int_eq(coll_find(&c, "fifo"), -1);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->list(pst, "", 0, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 1);
	ck_assert_int_eq(coll_find(&c, "l"), 1);

	/* The callback stops the listing. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	ck_assert_int_eq(ops->list(pst, "l/", 0, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 2);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->list(pst, "absent/", 0, coll_fn, &c), 0);
	ck_assert_int_eq(ops->list(pst, "l/f1/", 0, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 0);
	ck_assert_int_eq(ops->list(pst, "l", 0, coll_fn, &c), BFS_ERR_INVAL);
	ck_assert_int_eq(ops->list(pst, "../", 0, coll_fn, &c), BFS_ERR_INVAL);
	ck_assert_int_eq(c.total, 0);
}
END_TEST

START_TEST(test_list_recursive)
{
	struct coll c;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->put_buf(pst, "a/b/c/f", "1", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "a/g", "1", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "a/e/", NULL, 0, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "h", "1", 1, NULL, NULL, 0), 0);

	ck_assert_int_eq(ops->list(pst, "", BFS_LIST_RECURSIVE, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 7);
	ck_assert_int_eq(coll_find(&c, "a"), 1);
	ck_assert_int_eq(coll_find(&c, "a/b"), 1);
	ck_assert_int_eq(coll_find(&c, "a/b/c"), 1);
	ck_assert_int_eq(coll_find(&c, "a/b/c/f"), 0);
	ck_assert_int_eq(coll_find(&c, "a/g"), 0);
	ck_assert_int_eq(coll_find(&c, "a/e"), 1);
	ck_assert_int_eq(coll_find(&c, "h"), 0);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->list(pst, "a/", BFS_LIST_RECURSIVE, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 5);
	ck_assert_int_eq(coll_find(&c, "b/c/f"), 0);
	ck_assert_int_eq(coll_find(&c, "e"), 1);

	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	ck_assert_int_eq(ops->list(pst, "", BFS_LIST_RECURSIVE, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 3);
}
END_TEST

static int count_fn(void *arg, const char *name, int is_dir, const struct bfs_meta *m)
{
	const char *base = strrchr(name, '/');
	long *n = arg;

	base = base ? base + 1 : name;
	ck_assert_int_eq(is_dir, strcmp(name, "big") == 0);
	if (base[0] == 'n' && m && S_ISREG(m->mode) && m->size == 1)
		(*n)++;
	return 0;
}

START_TEST(test_list_10000)
{
	char path[160];
	struct timespec t0, t1;
	long n = 0;
	int i;

	path_of(path, sizeof(path), "big");
	ck_assert_int_eq(mkdir(path, 0755), 0);
	for (i = 0; i < 10000; i++) {
		snprintf(path, sizeof(path), "%s/big/n%05d", root, i);
		write_file(path, "x", 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(ops->list(pst, "big/", 0, count_fn, &n), 0);
	ck_assert_int_eq(n, 10000);
	n = 0;
	ck_assert_int_eq(ops->list(pst, "", BFS_LIST_RECURSIVE, count_fn, &n), 0);
	ck_assert_int_eq(n, 10000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 10);
}
END_TEST

START_TEST(test_symlink_escape)
{
	struct bfs_meta h, m = meta_make(0700, 1000, 0);
	char path[160], buf[64], secret[160];
	struct stat etc0, etc1, sec0, sec1;
	struct coll c;
	size_t got;

	ck_assert_int_eq(stat("/etc", &etc0), 0);
	snprintf(secret, sizeof(secret), "%s/secret", outside);
	write_file(secret, "SECRET", 6);
	ck_assert_int_eq(stat(secret, &sec0), 0);
	path_of(path, sizeof(path), "evil");
	ck_assert_int_eq(symlink("/etc", path), 0);
	path_of(path, sizeof(path), "out");
	ck_assert_int_eq(symlink(outside, path), 0);
	path_of(path, sizeof(path), "rel");
	ck_assert_int_eq(symlink("..", path), 0);
	path_of(path, sizeof(path), "sec");
	ck_assert_int_eq(symlink(secret, path), 0);

	/* head: the link itself. */
	ck_assert_int_eq(ops->head(pst, "evil", &h), 0);
	ck_assert(S_ISLNK(h.mode));
	ck_assert_uint_eq(h.size, 4);
	ck_assert_int_eq(ops->head(pst, "evil/", &h), BFS_ERR_NOTFOUND);
	ck_assert_int_ne(ops->head(pst, "evil/passwd", &h), 0);
	ck_assert_int_ne(ops->head(pst, "out/secret", &h), 0);
	ck_assert_int_ne(ops->head(pst, "rel/", &h), 0);
	ck_assert_int_eq(ops->head(pst, "evil/passwd", &h), BFS_ERR_LOOP);

	/* get: the target text, never the target's content. */
	ck_assert_int_eq(ops->get_range(pst, "sec", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_uint_eq(got, strlen(secret));
	ck_assert(memcmp(buf, secret, got) == 0);
	ck_assert_int_ne(ops->get_range(pst, "out/secret", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_int_ne(ops->get_range(pst, "evil/hostname", 0, sizeof(buf), buf, &got, NULL), 0);
	ck_assert_int_ne(ops->get_range(pst, "rel/bfs-nothing", 0, sizeof(buf), buf, &got, NULL), 0);

	/* put through a link fails; put over a link replaces the link. */
	ck_assert_int_ne(ops->put_buf(pst, "evil/bfs-local-unit-probe", "x", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(access("/etc/bfs-local-unit-probe", F_OK), -1);
	ck_assert_int_ne(ops->put_buf(pst, "evil/bfs-local-unit-dir/x", "x", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(access("/etc/bfs-local-unit-dir", F_OK), -1);
	ck_assert_int_ne(ops->put_buf(pst, "out/secret", "PWNED", 5, NULL, NULL, 0), 0);
	ck_assert_int_ne(ops->put_buf(pst, "out/newdir/", NULL, 0, NULL, NULL, 0), 0);
	ck_assert_int_ne(ops->put_buf(pst, "rel/escaped", "x", 1, NULL, NULL, 0), 0);
	ck_assert_int_eq(ops->put_buf(pst, "sec", "data", 4, NULL, NULL, 0), 0);
	path_of(path, sizeof(path), "sec");
	ck_assert_int_eq(lstat(path, &sec1), 0);
	ck_assert(S_ISREG(sec1.st_mode));

	/* set_meta on a link never reaches its target. */
	path_of(path, sizeof(path), "out2");
	ck_assert_int_eq(symlink(secret, path), 0);
	ck_assert_int_eq(ops->set_meta(pst, "out2", &m), 0);
	ck_assert_int_ne(ops->set_meta(pst, "out/secret", &m), 0);
	ck_assert_int_ne(ops->set_meta(pst, "evil/", &m), 0);

	/* copy from a link copies the link. */
	ck_assert_int_ne(ops->copy(pst, "out/secret", "stolen", NULL), 0);
	ck_assert_int_eq(ops->copy(pst, "out2", "c", NULL), 0);
	path_of(path, sizeof(path), "c");
	ck_assert_int_eq(lstat(path, &sec1), 0);
	ck_assert(S_ISLNK(sec1.st_mode));

	/* list: no entries from behind a link. */
	memset(&c, 0, sizeof(c));
	ck_assert_int_ne(ops->list(pst, "evil/", 0, coll_fn, &c), 0);
	ck_assert_int_ne(ops->list(pst, "out/", BFS_LIST_RECURSIVE, coll_fn, &c), 0);
	ck_assert_int_eq(c.total, 0);
	ck_assert_int_eq(ops->list(pst, "", BFS_LIST_RECURSIVE, coll_fn, &c), 0);
	ck_assert_int_eq(coll_find(&c, "evil"), 0);
	ck_assert_int_eq(coll_find(&c, "out"), 0);
	ck_assert_int_eq(coll_find(&c, "out/secret"), -1);
	ck_assert_int_eq(coll_find(&c, "rel"), 0);

	/* del / rename through a link fail; on the link they act on it. */
	ck_assert_int_ne(ops->del(pst, "out/secret"), 0);
	ck_assert_int_ne(ops->del(pst, "evil/"), 0);
	ck_assert_int_ne(ops->rename(pst, "out/secret", "stolen"), 0);
	ck_assert_int_eq(ops->put_buf(pst, "mine", "m", 1, NULL, NULL, 0), 0);
	ck_assert_int_ne(ops->rename(pst, "mine", "out/secret"), 0);
	ck_assert_int_ne(ops->rename(pst, "mine", "evil/bfs-local-unit-probe"), 0);
	ck_assert_int_eq(access("/etc/bfs-local-unit-probe", F_OK), -1);
	ck_assert_int_eq(ops->rename(pst, "evil", "evil2"), 0);
	ck_assert_int_eq(ops->del(pst, "out"), 0);
	path_of(path, sizeof(path), "out");
	ck_assert_int_eq(lstat(path, &sec1), -1);

	/* Outside untouched. */
	ck_assert_int_eq(stat(secret, &sec1), 0);
	ck_assert_int_eq(sec1.st_size, 6);
	ck_assert_int_eq(sec1.st_mode, sec0.st_mode);
	ck_assert_int_eq(sec1.st_uid, sec0.st_uid);
	ck_assert_int_eq(sec1.st_mtim.tv_sec, sec0.st_mtim.tv_sec);
	ck_assert_int_eq(sec1.st_mtim.tv_nsec, sec0.st_mtim.tv_nsec);
	ck_assert_int_eq(access(outside, F_OK), 0);
	snprintf(path, sizeof(path), "%s/newdir", outside);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/escaped", root);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(stat("/etc", &etc1), 0);
	ck_assert(S_ISDIR(etc1.st_mode));
	ck_assert_int_eq(etc1.st_mode, etc0.st_mode);
	ck_assert_int_eq(etc1.st_mtim.tv_sec, etc0.st_mtim.tv_sec);
	ck_assert_int_eq(etc1.st_mtim.tv_nsec, etc0.st_mtim.tv_nsec);
}
END_TEST

START_TEST(test_bad_keys)
{
	static const char *const bad[] = {
		"../x", "a/../b", "..", ".", "a/./b", "a//b", "/abs", "",
		"a\nb", "x/..", "../", "a/../",
	};
	struct bfs_meta h, m = meta_make(0644, 1, 0);
	char buf[8], longkey[1100], seg[300];
	struct coll c;
	size_t i, got;

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ops->put_buf(pst, "ok", "1", 1, NULL, NULL, 0), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *k = bad[i];

		ck_assert_int_eq(ops->head(pst, k, &h), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->put_buf(pst, k, "x", 1, NULL, NULL, 0), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->get_range(pst, k, 0, 1, buf, &got, NULL), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->del(pst, k), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->set_meta(pst, k, &m), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->copy(pst, "ok", k, NULL), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->copy(pst, k, "ok2", NULL), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->rename(pst, "ok", k), BFS_ERR_INVAL);
		ck_assert_int_eq(ops->rename(pst, k, "ok2"), BFS_ERR_INVAL);
	}
	ck_assert_int_eq(ops->list(pst, "../", BFS_LIST_RECURSIVE, coll_fn, &c), BFS_ERR_INVAL);
	ck_assert_int_eq(c.total, 0);
	ck_assert_int_eq(ops->head(pst, "ok", &h), 0);
	memset(longkey, 'k', sizeof(longkey) - 1);
	for (i = 100; i < sizeof(longkey) - 1; i += 100)
		longkey[i] = '/';
	longkey[sizeof(longkey) - 1] = '\0';
	ck_assert_int_eq(ops->put_buf(pst, longkey, "x", 1, NULL, NULL, 0), BFS_ERR_NAMETOOLONG);
	memset(seg, 's', sizeof(seg) - 1);
	seg[sizeof(seg) - 1] = '\0';
	ck_assert_int_eq(ops->put_buf(pst, seg, "x", 1, NULL, NULL, 0), BFS_ERR_NAMETOOLONG);
	/* Nothing appeared next to the folder. */
	snprintf(longkey, sizeof(longkey), "%s/../x", root);
	ck_assert_int_eq(access(longkey, F_OK), -1);
}
END_TEST

START_TEST(test_statfs)
{
	uint64_t total = 0, avail = 0;

	ck_assert_ptr_nonnull(ops->statfs);
	ck_assert_int_eq(ops->statfs(pst, &total, &avail), 0);
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_le(avail, total);
}
END_TEST

Suite *local_suite(void)
{
	Suite *s = suite_create("local");
	TCase *tc = tcase_create("local");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_errors_and_globals);
	tcase_add_test(tc, test_put_buf_head_get);
	tcase_add_test(tc, test_meta_origin);
	tcase_add_test(tc, test_get_range_if_match);
	tcase_add_test(tc, test_put_fd_metadata);
	tcase_add_test(tc, test_symlink_objects);
	tcase_add_test(tc, test_folders_and_del);
	tcase_add_test(tc, test_set_meta_and_etag);
	tcase_add_test(tc, test_copy);
	tcase_add_test(tc, test_rename);
	tcase_add_test(tc, test_list_flat);
	tcase_add_test(tc, test_list_recursive);
	tcase_add_test(tc, test_list_10000);
	tcase_add_test(tc, test_symlink_escape);
	tcase_add_test(tc, test_bad_keys);
	tcase_add_test(tc, test_statfs);
	suite_add_tcase(s, tc);
	return s;
}
