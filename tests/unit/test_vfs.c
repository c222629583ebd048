/*
 * test_vfs.c - the filesystem layer (src/vfs) driven through bfs_vfs.h
 * with no FUSE, no root and no server: a store (SQLite) and a local
 * bucket "t" in a private temporary folder, a vfs context over them.
 *
 * Faults: the bucket's provider ops table is replaced by a copy of the
 * local provider's whose put_fd can fail (fail_puts) or wait at a gate
 * (hold_puts) before it stores; everything else goes to the local
 * provider unchanged.  The multipart tests also give it multipart ops
 * (the local provider has none): parts are files below the test folder,
 * the completion concatenates them and stores the result by local put_fd;
 * a chosen part number or the completion can be made to fail.
 *
 * Each test runs in its own process (Check's fork mode).  The checked
 * fixture makes a per-test folder below a per-case base folder that the
 * unchecked fixture (run in the runner's own process) removes, so nothing
 * is left behind even when a test fails or crashes.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_mpu.h"
#include "bfs_pool.h"
#include "bfs_provider.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "bfs_vfs.h"
#include "unit.h"
#include "../../src/vfs/vfs_int.h"

#define WAIT_S 60                /* generous bound of every wait loop */

static char base[64];            /* per test case (unchecked fixture) */
static char dir[128];            /* per test: base/NNN */
static char bdir[160];           /* the bucket's folder: dir/b */
static struct bfs_config *cfg;
static struct bfs_store *store;
static struct bfs_registry *reg;
static struct bfs_vfs *vfs;
static struct bfs_vfs_caller who;

/* ---- the fault-injecting provider ---- */

static const struct bfs_provider_ops *local_ops;
static struct bfs_provider_ops fault_ops;
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fault_cv = PTHREAD_COND_INITIALIZER;
static int fail_puts;            /* fault_mu: put_fd fails (BFS_ERR_IO) */
static int hold_puts;            /* fault_mu: put_fd waits while set */
static int puts_held;            /* fault_mu: put_fd calls at the gate */
static int puts_failed;          /* fault_mu: put_fd calls failed */
static int fail_next;            /* fault_mu: so many put_fd calls fail
				  * with a retryable error, then none */

static int fault_put_fd(void *st, const char *key, int fd, uint64_t size,
			const struct bfs_meta *m, char *etag, size_t elen)
{
	int fail;

	pthread_mutex_lock(&fault_mu);
	while (hold_puts) {
		puts_held++;
		pthread_cond_broadcast(&fault_cv);
		pthread_cond_wait(&fault_cv, &fault_mu);
		puts_held--;
	}
	fail = fail_puts ? BFS_ERR_IO : fail_next > 0 ? BFS_ERR_NETWORK : 0;
	if (fail_next > 0)
		fail_next--;
	if (fail)
		puts_failed++;
	pthread_mutex_unlock(&fault_mu);
	if (fail)
		return fail;
	return local_ops->put_fd(st, key, fd, size, m, etag, elen);
}

static void set_fail(int on)
{
	pthread_mutex_lock(&fault_mu);
	fail_puts = on;
	pthread_mutex_unlock(&fault_mu);
}

static void set_hold(int on)
{
	pthread_mutex_lock(&fault_mu);
	hold_puts = on;
	pthread_cond_broadcast(&fault_cv);
	pthread_mutex_unlock(&fault_mu);
}

/* Waits until no upload job of an ended context runs (one started just
 * before its shutdown's deadline may still commit its failure). */
static void wait_no_jobs(void)
{
	int i;

	for (i = 0; i < WAIT_S * 100 && bfs_upq_running() > 0; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(bfs_upq_running(), 0);
}

/* Waits until n upload jobs are held at the gate (or WAIT_S passed);
 * returns how many are. */
static int wait_held_n(int n)
{
	struct timespec dl;
	int held;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	pthread_mutex_lock(&fault_mu);
	while (puts_held < n &&
	       pthread_cond_timedwait(&fault_cv, &fault_mu, &dl) == 0)
		;
	held = puts_held;
	pthread_mutex_unlock(&fault_mu);
	return held;
}

/* Waits until an upload job is held at the gate. */
static void wait_held(void)
{
	ck_assert_msg(wait_held_n(1) > 0, "no upload reached the provider");
}

/* ---- multipart ops over local (mpu_install) ---- */

#define T_UPLOADS 8
#define T_PARTS 16
static struct t_upload {
	int used;
	char id[32];
	char key[256];
	struct bfs_meta m;
	uint64_t size[T_PARTS + 1];     /* 0: part not stored */
	char etag[T_PARTS + 1][33];
} t_up[T_UPLOADS];                  /* fault_mu */
static int t_seq;                   /* fault_mu */
static int parts_sent[T_PARTS + 1]; /* fault_mu: mpu_part calls by number */
static int parts_off_pool;          /* fault_mu: parts sent outside the I/O pool */
static unsigned fail_part;          /* fault_mu: this part fails (0: none) */
static int fail_complete;           /* fault_mu: completions fail */

static char mpu_dir[192];           /* dir/mpu: the stored parts */

/* fault_mu held. */
static struct t_upload *t_find_locked(const char *id)
{
	int i;

	for (i = 0; i < T_UPLOADS; i++)
		if (t_up[i].used && !strcmp(t_up[i].id, id))
			return &t_up[i];
	return NULL;
}

static void part_path(char *buf, size_t len, const char *id, unsigned n)
{
	snprintf(buf, len, "%s/%s-%u", mpu_dir, id, n);
}

static int t_mpu_begin(void *st, const char *key, const struct bfs_meta *m,
		       char *id, size_t idlen)
{
	int i, r = BFS_ERR_NOSPC;

	(void)st;
	pthread_mutex_lock(&fault_mu);
	for (i = 0; i < T_UPLOADS; i++) {
		if (t_up[i].used)
			continue;
		memset(&t_up[i], 0, sizeof(t_up[i]));
		t_up[i].used = 1;
		snprintf(t_up[i].id, sizeof(t_up[i].id), "up%d", ++t_seq);
		snprintf(t_up[i].key, sizeof(t_up[i].key), "%s", key);
		t_up[i].m = *m;
		snprintf(id, idlen, "%s", t_up[i].id);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&fault_mu);
	return r;
}

/* Copies fd [off, off + len) to path. */
static int copy_range(int fd, uint64_t off, uint64_t len, const char *path)
{
	char buf[65536];
	int out, r = BFS_ERR_IO;
	ssize_t n;

	if ((out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return BFS_ERR_IO;
	while (len > 0) {
		n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf),
			  (off_t)off);
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			goto out;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	r = 0;
out:
	close(out);
	return r;
}

static int t_mpu_part(void *st, const char *key, const char *id,
		      unsigned number, int fd, uint64_t off, uint64_t len,
		      char *etag, size_t elen)
{
	struct t_upload *u;
	char path[256], md5[33];
	int fail;

	(void)st; (void)key;
	pthread_mutex_lock(&fault_mu);
	if (number <= T_PARTS)
		parts_sent[number]++;
	parts_off_pool += !bfs_pool_in_worker();
	fail = number > T_PARTS || fail_part == number;
	u = t_find_locked(id);
	pthread_mutex_unlock(&fault_mu);
	if (fail)
		return BFS_ERR_IO;
	if (!u)
		return BFS_ERR_NOTFOUND;
	part_path(path, sizeof(path), id, number);
	if (copy_range(fd, off, len, path) != 0 ||
	    bfs_mpu_md5_fd(fd, off, len, md5) != 0)
		return BFS_ERR_IO;
	pthread_mutex_lock(&fault_mu);
	if ((u = t_find_locked(id)) != NULL) {
		u->size[number] = len;
		memcpy(u->etag[number], md5, sizeof(md5));
	}
	pthread_mutex_unlock(&fault_mu);
	snprintf(etag, elen, "%s", md5);
	return u ? 0 : BFS_ERR_NOTFOUND;
}

static int t_mpu_list_parts(void *st, const char *key, const char *id,
			    struct bfs_mpu_part **parts, size_t *n)
{
	struct t_upload *u;
	unsigned i;
	int r = BFS_ERR_NOTFOUND;

	(void)st; (void)key;
	*parts = NULL;
	*n = 0;
	pthread_mutex_lock(&fault_mu);
	if (!(u = t_find_locked(id)))
		goto out;
	r = BFS_ERR_NOMEM;
	if (!(*parts = calloc(T_PARTS, sizeof(**parts))))
		goto out;
	for (i = 1; i <= T_PARTS; i++) {
		if (!u->size[i])
			continue;
		(*parts)[*n].number = i;
		(*parts)[*n].size = u->size[i];
		snprintf((*parts)[*n].etag, sizeof((*parts)[*n].etag), "%s",
			 u->etag[i]);
		(*n)++;
	}
	r = 0;
out:
	pthread_mutex_unlock(&fault_mu);
	return r;
}

/* Appends len bytes of in (from its start) to out; 0 or -1. */
static int append_fd(int out, int in, off_t len)
{
	char buf[65536];
	ssize_t n;

	while (len > 0) {
		n = read(in, buf, (size_t)len < sizeof(buf) ? (size_t)len :
			 sizeof(buf));
		if (n <= 0 || write(out, buf, (size_t)n) != n)
			return -1;
		len -= n;
	}
	return 0;
}

static int t_mpu_complete(void *st, const char *key, const char *id,
			  const struct bfs_mpu_part *parts, size_t n,
			  char *etag_out, size_t etag_len)
{
	struct t_upload *u, copy;
	char path[256], all[256];
	uint64_t size = 0;
	size_t i;
	int fd = -1, pfd, k, r = BFS_ERR_IO;
	struct stat sb;

	pthread_mutex_lock(&fault_mu);
	u = t_find_locked(id);
	if (u)
		copy = *u;
	r = fail_complete ? BFS_ERR_IO : u ? 0 : BFS_ERR_NOTFOUND;
	pthread_mutex_unlock(&fault_mu);
	if (r != 0)
		return r;
	r = BFS_ERR_IO;
	snprintf(all, sizeof(all), "%s/%s.all", mpu_dir, id);
	if ((fd = open(all, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		part_path(path, sizeof(path), id, parts[i].number);
		if (parts[i].number > T_PARTS ||
		    strcmp(parts[i].etag, copy.etag[parts[i].number]) ||
		    (pfd = open(path, O_RDONLY)) < 0)
			goto out;
		k = fstat(pfd, &sb) == 0 ? append_fd(fd, pfd, sb.st_size) : -1;
		close(pfd);
		if (k != 0)
			goto out;
		size += (uint64_t)sb.st_size;
	}
	copy.m.size = size;
	if ((r = local_ops->put_fd(st, key, fd, size, &copy.m, etag_out,
				   etag_len)) != 0)
		goto out;
	pthread_mutex_lock(&fault_mu);
	if ((u = t_find_locked(id)) != NULL)
		u->used = 0;
	pthread_mutex_unlock(&fault_mu);
out:
	if (fd >= 0)
		close(fd);
	unlink(all);
	return r;
}

static int t_mpu_abort(void *st, const char *key, const char *id)
{
	struct t_upload *u;

	(void)st; (void)key;
	pthread_mutex_lock(&fault_mu);
	if ((u = t_find_locked(id)) != NULL)
		u->used = 0;
	pthread_mutex_unlock(&fault_mu);
	return 0;
}

/* Gives the test provider multipart ops (before any file is opened). */
static void mpu_install(void)
{
	snprintf(mpu_dir, sizeof(mpu_dir), "%s/mpu", dir);
	ck_assert_int_eq(mkdir(mpu_dir, 0700), 0);
	fault_ops.mpu_begin = t_mpu_begin;
	fault_ops.mpu_part = t_mpu_part;
	fault_ops.mpu_list_parts = t_mpu_list_parts;
	fault_ops.mpu_complete = t_mpu_complete;
	fault_ops.mpu_abort = t_mpu_abort;
}

static int sent(unsigned n)
{
	int v;

	pthread_mutex_lock(&fault_mu);
	v = parts_sent[n];
	pthread_mutex_unlock(&fault_mu);
	return v;
}

/* ---- fixtures ---- */

static void rm_tree(const char *p)
{
	unit_rm_tree(p);
}

static void case_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/bfs-vfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void case_teardown(void)
{
	rm_tree(base);
	base[0] = '\0';
}

/* A new context over the current config, registry and store. */
static void vfs_up(void)
{
	char err[512] = "";

	ck_assert_msg(bfs_vfs_new(cfg, reg, &vfs, err, sizeof(err)) == 0,
		      "bfs_vfs_new: %s", err);
	ck_assert_int_eq(bfs_vfs_start(vfs), 0);
}

static void setup(void)
{
	static int n;
	struct bfs_rbucket *b;
	char path[256], err[512] = "";
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%d-%d", base, (int)getpid(), n++);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(bdir, sizeof(bdir), "%s/b", dir);
	ck_assert_int_eq(mkdir(bdir, 0700), 0);
	snprintf(path, sizeof(path), "%s/bucketfs.conf", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "[bucketfs]\ndatabase = %s/bucketfs.db\n"
		"cache_dir = %s/cache\nupload_timeout = 2\nlog_level = error\n"
		"\n[bucket t]\nprovider = local\npath = %s\n", dir, dir, bdir);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(bfs_config_load(path, &cfg, err, sizeof(err)) == 0,
		      "config: %s", err);
	bfs_log_set_level(BFS_LOG_ERROR);
	ck_assert_msg(bfs_store_open(cfg->database, &store, err,
				     sizeof(err)) == 0, "store: %s", err);
	ck_assert_msg(bfs_store_sync_config(store, cfg, NULL, err,
					    sizeof(err)) == 0, "sync: %s", err);
	ck_assert_msg(bfs_registry_new(store, NULL, NULL, &reg, err,
				       sizeof(err)) == 0, "registry: %s", err);
	/* the test provider: local's table with put_fd wrapped */
	ck_assert_ptr_nonnull(b = bfs_registry_get(reg, "t"));
	ck_assert_ptr_nonnull(b->prov);
	local_ops = b->prov->ops;
	fault_ops = *local_ops;
	fault_ops.put_fd = fault_put_fd;
	b->prov->ops = &fault_ops;
	bfs_rbucket_put(b);
	memset(&who, 0, sizeof(who));
	who.uid = getuid();
	who.gid = getgid();
	who.pid = getpid();
	vfs_up();
}

static void teardown(void)
{
	set_hold(0);
	set_fail(0);
	bfs_vfs_free(vfs);
	vfs = NULL;
	bfs_registry_free(reg);
	reg = NULL;
	bfs_store_close(store);
	store = NULL;
	bfs_config_free(cfg);
	cfg = NULL;
	rm_tree(dir);
}

/* ---- helpers ---- */

static void disk_path(char *buf, size_t len, const char *key)
{
	snprintf(buf, len, "%s/%s", bdir, key);
}

/* The stored object's bytes (NULL when absent); caller frees. */
static char *disk_read(const char *key)
{
	char p[512];

	disk_path(p, sizeof(p), key);
	if (access(p, F_OK) != 0)
		return NULL;
	return unit_read_file(p, NULL);
}

static int disk_exists(const char *key)
{
	char p[512];

	disk_path(p, sizeof(p), key);
	return access(p, F_OK) == 0;
}

static size_t journal_rows(void)
{
	struct bfs_journal_entry *e = NULL;
	size_t n = 0;

	ck_assert_int_eq(bfs_store_journal_list(store, &e, &n), 0);
	bfs_journal_entries_free(e, n);
	return n;
}

/* 1 when the index has a row for key (its size in *size). */
static int index_row(const char *key, uint64_t *size)
{
	struct bfs_file_row row;
	int r;

	memset(&row, 0, sizeof(row));
	r = bfs_store_file_get(store, "t", key, &row);
	if (r == 0 && size)
		*size = row.size;
	bfs_file_row_clear(&row);
	ck_assert_msg(r == 0 || r == BFS_ERR_NOTFOUND, "file_get: %d", r);
	return r == 0;
}

/* Waits until key holds exactly want on disk and no journal row is left. */
static void wait_stored(const char *key, const char *want)
{
	time_t end = time(NULL) + WAIT_S;
	char *got = NULL;
	size_t rows = 1;

	for (;;) {
		free(got);
		got = disk_read(key);
		rows = journal_rows();
		if ((got && !strcmp(got, want) && rows == 0) ||
		    time(NULL) > end)
			break;
		usleep(20 * 1000);
	}
	ck_assert_msg(got && !strcmp(got, want), "%s holds '%s', not '%s'",
		      key, got ? got : "(absent)", want);
	ck_assert_msg(rows == 0, "%zu journal rows left", rows);
	free(got);
}

static void vcreate(const char *path, struct bfs_vfs_file *f)
{
	memset(f, 0, sizeof(*f));
	f->flags = O_CREAT | O_WRONLY | O_TRUNC;
	ck_assert_int_eq(bfs_vfs_create(vfs, &who, path, 0644, f), 0);
}

static void vopen(const char *path, int flags, struct bfs_vfs_file *f)
{
	memset(f, 0, sizeof(*f));
	f->flags = flags;
	ck_assert_int_eq(bfs_vfs_open(vfs, &who, path, f), 0);
}

static void vwrite(const char *path, struct bfs_vfs_file *f, const char *s,
		   off_t off)
{
	ck_assert_int_eq(bfs_vfs_write(vfs, &who, path, s, strlen(s), off, f),
			 (int)strlen(s));
}

/* Writes a new file and closes it (flush + release): stored. */
static void put_file(const char *path, const char *s)
{
	struct bfs_vfs_file f;

	vcreate(path, &f);
	vwrite(path, &f, s, 0);
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, path, &f), 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, path, &f), 0);
}

/* readdir's names, without . and .., sorted and joined as "|a|b|". */
struct names {
	char *v[64];
	size_t n;
	char s[4096];
};

static int collect(void *buf, const char *name, const struct stat *st,
		   off_t off, unsigned flags)
{
	struct names *n = buf;

	(void)st; (void)off; (void)flags;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	ck_assert_uint_lt(n->n, 64);
	ck_assert_ptr_nonnull(n->v[n->n++] = strdup(name));
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(const char *path, struct names *n)
{
	struct bfs_vfs_file f;
	size_t i, l;

	memset(&f, 0, sizeof(f));
	memset(n, 0, sizeof(*n));
	ck_assert_int_eq(bfs_vfs_opendir(vfs, &who, path, &f), 0);
	ck_assert_int_eq(bfs_vfs_readdir(vfs, &who, path, n, collect, 0, &f),
			 0);
	ck_assert_int_eq(bfs_vfs_releasedir(vfs, &who, path, &f), 0);
	qsort(n->v, n->n, sizeof(n->v[0]), cmp_str);
	for (i = 0; i < n->n; i++) {
		l = strlen(n->s);
		snprintf(n->s + l, sizeof(n->s) - l, "%s%s|", i ? "" : "|",
			 n->v[i]);
		free(n->v[i]);
	}
}

/* ---- tests ---- */

/* create + write + release: the object is stored and indexed, the
 * journal row (written before the write was acknowledged) is gone. */
START_TEST(test_create_write_release)
{
	struct bfs_vfs_file f;
	struct stat st;
	uint64_t size = 0;
	char *got;

	vcreate("/t/a.txt", &f);
	vwrite("/t/a.txt", &f, "hello", 0);
	ck_assert_uint_eq(journal_rows(), 1);
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, "/t/a.txt", &f), 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/a.txt", &f), 0);
	ck_assert_ptr_nonnull(got = disk_read("a.txt"));
	ck_assert_str_eq(got, "hello");
	free(got);
	ck_assert_int_eq(index_row("a.txt", &size), 1);
	ck_assert_uint_eq(size, 5);
	ck_assert_uint_eq(journal_rows(), 0);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/a.txt", &st, NULL), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_uint_eq(st.st_uid, who.uid);
}
END_TEST

/* An existing object opened read-write: a write in the middle, read
 * back through the handle, stored at close; a new open reads it. */
START_TEST(test_partial_overwrite)
{
	struct bfs_vfs_file f;
	char buf[64], *got;

	put_file("/t/x.bin", "abcdefghij");
	/* a fresh context: nothing of the first write is cached or open */
	bfs_vfs_free(vfs);
	vfs_up();
	vopen("/t/x.bin", O_RDWR, &f);
	vwrite("/t/x.bin", &f, "XY", 3);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(bfs_vfs_read(vfs, &who, "/t/x.bin", buf, sizeof(buf),
				      0, &f), 10);
	ck_assert_str_eq(buf, "abcXYfghij");
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, "/t/x.bin", &f), 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/x.bin", &f), 0);
	ck_assert_ptr_nonnull(got = disk_read("x.bin"));
	ck_assert_str_eq(got, "abcXYfghij");
	free(got);
	vopen("/t/x.bin", O_RDONLY, &f);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(bfs_vfs_read(vfs, &who, "/t/x.bin", buf, 4, 6, &f), 4);
	ck_assert_str_eq(buf, "ghij");
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/x.bin", &f), 0);
}
END_TEST

/* Released without a flush: the staged, journaled file goes to the
 * pending queue, whose worker stores it and ends the journal row. */
START_TEST(test_release_goes_to_queue)
{
	struct bfs_vfs_file f;
	struct bfs_journal_entry *e = NULL;
	size_t n = 0;

	vcreate("/t/q.txt", &f);
	vwrite("/t/q.txt", &f, "queued", 0);
	ck_assert_int_eq(bfs_store_journal_list(store, &e, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(e[0].key, "q.txt");
	ck_assert_int_eq(access(e[0].staging_path, F_OK), 0);
	bfs_journal_entries_free(e, n);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/q.txt", &f), 0);
	wait_stored("q.txt", "queued");
	ck_assert_int_eq(index_row("q.txt", NULL), 1);
}
END_TEST

/* A failing provider: fsync and flush report EIO after upload_timeout,
 * the data stays staged and journaled with the error; once the provider
 * works again the queue stores it. */
START_TEST(test_failed_upload_kept_then_resumed)
{
	struct bfs_vfs_file f;
	struct bfs_journal_entry *e = NULL;
	size_t n = 0;
	char *staged;

	set_fail(1);
	vcreate("/t/f.txt", &f);
	vwrite("/t/f.txt", &f, "keep me", 0);
	ck_assert_int_eq(bfs_vfs_fsync(vfs, &who, "/t/f.txt", 0, &f),
			 BFS_ERR_IO);
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, "/t/f.txt", &f),
			 BFS_ERR_IO);
	pthread_mutex_lock(&fault_mu);
	n = (size_t)puts_failed;
	pthread_mutex_unlock(&fault_mu);
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(disk_exists("f.txt"), 0);
	ck_assert_int_eq(bfs_store_journal_list(store, &e, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_gt(e[0].attempts, 0);
	ck_assert_ptr_nonnull(e[0].last_error);
	ck_assert_ptr_nonnull(staged = unit_read_file(e[0].staging_path, NULL));
	ck_assert_str_eq(staged, "keep me");
	free(staged);
	bfs_journal_entries_free(e, n);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/f.txt", &f), 0);
	set_fail(0);
	wait_stored("f.txt", "keep me");
}
END_TEST

/* fsync after a transient failure of the upload it started sends the
 * file again after a short backoff, within upload_timeout, and returns
 * 0 (it used to wait out the whole bound for a job nobody started, then
 * return EIO). */
static int disk_same(const char *key, const char *want, size_t len);

START_TEST(test_fsync_retries_after_transient_failure)
{
	struct bfs_vfs_file f;
	int failed;

	bfs_vfs_free(vfs);              /* a bound far above the retry */
	vfs = NULL;
	cfg->upload_timeout = 60;
	vfs_up();
	pthread_mutex_lock(&fault_mu);
	fail_next = 2;
	pthread_mutex_unlock(&fault_mu);
	vcreate("/t/r.txt", &f);
	vwrite("/t/r.txt", &f, "second try", 0);
	ck_assert_int_eq(bfs_vfs_fsync(vfs, &who, "/t/r.txt", 0, &f), 0);
	pthread_mutex_lock(&fault_mu);
	failed = puts_failed;
	fail_next = 0;
	pthread_mutex_unlock(&fault_mu);
	ck_assert_int_eq(failed, 2);
	ck_assert_int_eq(disk_same("r.txt", "second try", 10), 1);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/r.txt", &f), 0);
}
END_TEST

/* What a context could not store stays journaled; the next context
 * adopts the row at start and stores it. */
START_TEST(test_journal_resumed_by_next_context)
{
	struct bfs_vfs_file f;

	set_fail(1);
	vcreate("/t/j.txt", &f);
	vwrite("/t/j.txt", &f, "after restart", 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/j.txt", &f), 0);
	ck_assert_int_eq(bfs_vfs_shutdown(vfs), BFS_ERR_IO);
	bfs_vfs_free(vfs);
	vfs = NULL;
	wait_no_jobs();
	ck_assert_int_eq(disk_exists("j.txt"), 0);
	ck_assert_uint_eq(journal_rows(), 1);
	set_fail(0);
	vfs_up();
	wait_stored("j.txt", "after restart");
}
END_TEST

/* Forty journaled files after a restart: the queue runs at most 16
 * uploads at once (UPQ_JOBS_MAX in upload.c; it started all forty, one
 * thread each), starts the next as one ends, and stores every file. */
START_TEST(test_queue_bounds_running_uploads)
{
	struct bfs_vfs_file f;
	char path[64], key[64], want[64];
	int i, held;

	set_fail(1);
	for (i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/t/q%02d.txt", i);
		snprintf(want, sizeof(want), "queued file %d", i);
		vcreate(path, &f);
		vwrite(path, &f, want, 0);
		ck_assert_int_eq(bfs_vfs_release(vfs, &who, path, &f), 0);
	}
	ck_assert_int_eq(bfs_vfs_shutdown(vfs), BFS_ERR_IO);
	bfs_vfs_free(vfs);
	vfs = NULL;
	wait_no_jobs();
	ck_assert_uint_eq(journal_rows(), 40);
	set_fail(0);
	set_hold(1);
	vfs_up();
	ck_assert_int_eq(wait_held_n(16), 16);
	usleep(2500 * 1000);            /* two more ticks of the queue */
	pthread_mutex_lock(&fault_mu);
	held = puts_held;
	pthread_mutex_unlock(&fault_mu);
	ck_assert_int_eq(held, 16);
	set_hold(0);
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "q%02d.txt", i);
		snprintf(want, sizeof(want), "queued file %d", i);
		wait_stored(key, want);
	}
	ck_assert_uint_eq(journal_rows(), 0);
}
END_TEST

/* A file renamed while its upload waits in the queue (failing): it is
 * stored under the new name only, the old one never comes back. */
START_TEST(test_rename_file_while_queued)
{
	struct bfs_vfs_file f;
	struct stat st;

	set_fail(1);
	vcreate("/t/r1", &f);
	vwrite("/t/r1", &f, "moved", 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/r1", &f), 0);
	ck_assert_int_eq(bfs_vfs_rename(vfs, &who, "/t/r1", "/t/r2", 0), 0);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/r1", &st, NULL),
			 BFS_ERR_NOTFOUND);
	set_fail(0);
	wait_stored("r2", "moved");
	/* drained: nothing is left that could store the old name */
	ck_assert_int_eq(bfs_vfs_shutdown(vfs), 0);
	ck_assert_int_eq(disk_exists("r1"), 0);
	ck_assert_int_eq(index_row("r1", NULL), 0);
	ck_assert_int_eq(index_row("r2", NULL), 1);
}
END_TEST

struct rename_arg {
	const char *from, *to;
	int r;
	int done;                   /* fault_mu */
};

static void *rename_thread(void *p)
{
	struct rename_arg *a = p;
	int r = bfs_vfs_rename(vfs, &who, a->from, a->to, 0);

	pthread_mutex_lock(&fault_mu);
	a->r = r;
	a->done = 1;
	pthread_cond_broadcast(&fault_cv);
	pthread_mutex_unlock(&fault_mu);
	return NULL;
}

/* A folder renamed while the upload of a file in it is on the wire: the
 * rename waits for it (fence) or the job sees the new name; either way
 * the file ends under the new folder and the old folder stays gone. */
START_TEST(test_rename_folder_while_uploading)
{
	struct rename_arg a = { "/t/d", "/t/e", -1, 0 };
	struct bfs_vfs_file f;
	struct timespec dl;
	struct names n;
	struct stat st;
	pthread_t t;

	ck_assert_int_eq(bfs_vfs_mkdir(vfs, &who, "/t/d", 0755), 0);
	set_hold(1);
	vcreate("/t/d/f", &f);
	vwrite("/t/d/f", &f, "in flight", 0);
	/* release without flush: a job starts and is held in put_fd */
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/d/f", &f), 0);
	wait_held();
	ck_assert_int_eq(pthread_create(&t, NULL, rename_thread, &a), 0);
	/* let the rename run as far as it goes while the PUT is held (a
	 * rename that does not wait for the job finishes here) */
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 1;
	pthread_mutex_lock(&fault_mu);
	while (!a.done &&
	       pthread_cond_timedwait(&fault_cv, &fault_mu, &dl) == 0)
		;
	pthread_mutex_unlock(&fault_mu);
	set_hold(0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(a.r, 0);
	wait_stored("e/f", "in flight");
	ck_assert_int_eq(bfs_vfs_shutdown(vfs), 0);
	ck_assert_int_eq(disk_exists("d/f"), 0);
	ck_assert_int_eq(disk_exists("d"), 0);
	ck_assert_int_eq(index_row("d/f", NULL), 0);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/d", &st, NULL),
			 BFS_ERR_NOTFOUND);
	list_dir("/t", &n);
	ck_assert_str_eq(n.s, "|e|");
}
END_TEST

/* unlink of an open file: the name is gone at once (lookup, listing),
 * the handle still reads what it opened, the object goes with the last
 * handle. */
START_TEST(test_unlink_open_file)
{
	struct bfs_vfs_file f;
	struct names n;
	struct stat st;
	char buf[64];
	time_t end;

	put_file("/t/u", "original bytes");
	vopen("/t/u", O_RDONLY, &f);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(bfs_vfs_read(vfs, &who, "/t/u", buf, 4, 0, &f), 4);
	ck_assert_int_eq(bfs_vfs_unlink(vfs, &who, "/t/u"), 0);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/u", &st, NULL),
			 BFS_ERR_NOTFOUND);
	list_dir("/t", &n);
	ck_assert_str_eq(n.s, "");
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(bfs_vfs_read(vfs, &who, NULL, buf, sizeof(buf), 0,
				      &f), 14);
	ck_assert_str_eq(buf, "original bytes");
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, NULL, &f), 0);
	end = time(NULL) + WAIT_S;
	while (disk_exists("u") && time(NULL) <= end)
		usleep(20 * 1000);
	ck_assert_int_eq(disk_exists("u"), 0);
	ck_assert_int_eq(index_row("u", NULL), 0);
}
END_TEST

/* A listing made before changes of this mount never shows the old
 * state afterwards: creates, unlinks and renames drop it. */
START_TEST(test_readdir_after_writes)
{
	struct names n;

	ck_assert_int_eq(bfs_vfs_mkdir(vfs, &who, "/t/l", 0755), 0);
	put_file("/t/l/a", "1");
	put_file("/t/l/b", "2");
	list_dir("/t/l", &n);
	ck_assert_str_eq(n.s, "|a|b|");
	put_file("/t/l/c", "3");
	list_dir("/t/l", &n);
	ck_assert_str_eq(n.s, "|a|b|c|");
	ck_assert_int_eq(bfs_vfs_unlink(vfs, &who, "/t/l/a"), 0);
	list_dir("/t/l", &n);
	ck_assert_str_eq(n.s, "|b|c|");
	ck_assert_int_eq(bfs_vfs_rename(vfs, &who, "/t/l/b", "/t/l/z", 0), 0);
	list_dir("/t/l", &n);
	ck_assert_str_eq(n.s, "|c|z|");
}
END_TEST

#define BIG_LEN (BFS_MPU_SINGLE_MAX + 12345)   /* two parts */

static char *big_pattern(void)
{
	char *b = malloc(BIG_LEN);
	size_t i;

	ck_assert_ptr_nonnull(b);
	for (i = 0; i < BIG_LEN; i++)
		b[i] = (char)((i * 2654435761u) >> 24);
	return b;
}

/* Writes buf[0..BIG_LEN) sequentially in 1 MiB requests (streams). */
static void write_big(const char *path, struct bfs_vfs_file *f,
		      const char *buf)
{
	size_t off, n;

	for (off = 0; off < BIG_LEN; off += n) {
		n = BIG_LEN - off < (1u << 20) ? BIG_LEN - off : (1u << 20);
		ck_assert_int_eq(bfs_vfs_write(vfs, &who, path, buf + off, n,
					       (off_t)off, f), (int)n);
	}
}

/* 1 when the stored object key holds exactly want[0..len). */
static int disk_same(const char *key, const char *want, size_t len)
{
	char p[512], *got;
	size_t n = 0;
	int same;

	disk_path(p, sizeof(p), key);
	if (access(p, F_OK) != 0)
		return 0;
	got = unit_read_file(p, &n);
	same = n == len && memcmp(got, want, len) == 0;
	free(got);
	return same;
}

/* The upload id of the one journal row (NULL when none; caller frees). */
static char *journal_upload_id(void)
{
	struct bfs_journal_entry *e = NULL;
	size_t n = 0;
	char *id = NULL;

	ck_assert_int_eq(bfs_store_journal_list(store, &e, &n), 0);
	if (n == 1 && e[0].upload_id)
		id = strdup(e[0].upload_id);
	bfs_journal_entries_free(e, n);
	return id;
}

/* A streamed multipart upload whose second part fails: flush reports
 * EIO and keeps the journaled id; the next flush sends only what is
 * missing (part 1, streamed while writing, never again) and completes. */
START_TEST(test_multipart_resumes_after_failed_part)
{
	struct bfs_vfs_file f;
	char *big = big_pattern(), *id;

	mpu_install();
	pthread_mutex_lock(&fault_mu);
	fail_part = 2;
	pthread_mutex_unlock(&fault_mu);
	vcreate("/t/big", &f);
	write_big("/t/big", &f, big);
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, "/t/big", &f), BFS_ERR_IO);
	ck_assert_ptr_nonnull(id = journal_upload_id());
	free(id);
	ck_assert_int_eq(disk_exists("big"), 0);
	ck_assert_int_eq(sent(1), 1);
	ck_assert_int_ge(sent(2), 1);
	pthread_mutex_lock(&fault_mu);
	fail_part = 0;
	pthread_mutex_unlock(&fault_mu);
	ck_assert_int_eq(bfs_vfs_flush(vfs, &who, "/t/big", &f), 0);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/big", &f), 0);
	ck_assert(disk_same("big", big, BIG_LEN));
	ck_assert_uint_eq(journal_rows(), 0);
	ck_assert_int_eq(sent(1), 1);
	/* every part went out as a job of the I/O pool */
	pthread_mutex_lock(&fault_mu);
	ck_assert_int_eq(parts_off_pool, 0);
	pthread_mutex_unlock(&fault_mu);
	free(big);
}
END_TEST

/* Every part stored, the completion failing until the context stops:
 * the next context adopts the journal row with its upload id, finds
 * both parts stored with the staged bytes' MD5 and completes without
 * sending any part again. */
START_TEST(test_multipart_resumed_by_next_context)
{
	struct bfs_vfs_file f;
	char *big = big_pattern();
	time_t end;

	mpu_install();
	pthread_mutex_lock(&fault_mu);
	fail_complete = 1;
	pthread_mutex_unlock(&fault_mu);
	vcreate("/t/big", &f);
	write_big("/t/big", &f, big);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/big", &f), 0);
	end = time(NULL) + WAIT_S;
	while ((sent(1) < 1 || sent(2) < 1) && time(NULL) <= end)
		usleep(20 * 1000);
	ck_assert_int_eq(sent(1), 1);
	ck_assert_int_eq(sent(2), 1);
	ck_assert_int_eq(bfs_vfs_shutdown(vfs), BFS_ERR_IO);
	bfs_vfs_free(vfs);
	vfs = NULL;
	wait_no_jobs();
	ck_assert_int_eq(disk_exists("big"), 0);
	pthread_mutex_lock(&fault_mu);
	fail_complete = 0;
	pthread_mutex_unlock(&fault_mu);
	vfs_up();
	end = time(NULL) + WAIT_S;
	while ((!disk_same("big", big, BIG_LEN) || journal_rows() != 0) &&
	       time(NULL) <= end)
		usleep(50 * 1000);
	ck_assert(disk_same("big", big, BIG_LEN));
	ck_assert_uint_eq(journal_rows(), 0);
	ck_assert_int_eq(sent(1), 1);
	ck_assert_int_eq(sent(2), 1);
	free(big);
}
END_TEST

/* The context is one per process: a second one is refused. */
START_TEST(test_one_context)
{
	struct bfs_vfs *v2 = NULL;
	char err[256] = "";

	ck_assert_int_eq(bfs_vfs_new(cfg, reg, &v2, err, sizeof(err)),
			 BFS_ERR_EXISTS);
	ck_assert_ptr_null(v2);
	ck_assert_str_ne(err, "");
}
END_TEST

/* chmod of path to mode, or with to set a rename of path to it, in a
 * thread (attr_thread); its result once done. */
struct attr_job {
	const char *path;
	mode_t mode;
	const char *to;
	atomic_int done;
	int r;
};

static void *attr_thread(void *arg)
{
	struct attr_job *j = arg;

	j->r = j->to ? bfs_vfs_rename(vfs, &who, j->path, j->to, 0) :
		       bfs_vfs_chmod(vfs, &who, j->path, j->mode, NULL);
	atomic_store(&j->done, 1);
	return NULL;
}

/* j must not finish while an attribute change is on the wire (on a slow
 * machine this checks less, it never fails wrongly). */
static void assert_waits(struct attr_job *j)
{
	int i;

	for (i = 0; i < 30 && !atomic_load(&j->done); i++)
		usleep(10 * 1000);
	ck_assert_msg(!atomic_load(&j->done),
		      "%s ran during an attribute change",
		      j->to ? "rename" : "chmod");
}

/* A stored file t/a.txt ("hello") opened read-only in *f: clean, not
 * staged; its open file (+1 ref, the caller puts it). */
static struct bfs_ofile *open_stored(struct bfs_vfs_file *f)
{
	struct bfs_ofile *of;

	put_file("/t/a.txt", "hello");
	vopen("/t/a.txt", O_RDONLY, f);
	ck_assert_ptr_nonnull(of = bfs_ofile_find("t", "a.txt"));
	return of;
}

/*
 * An attribute change of an open file (ofile_attr.c) excludes every other
 * one: a chmod begun while a change copies the object without mu
 * (between send_begin and send_end) waits for its end, then applies.  A
 * begin against a name the file no longer has fails with mu released.
 */
START_TEST(test_attr_change_excludes_another)
{
	struct bfs_vfs_file f;
	struct bfs_ofile *of;
	struct attr_job j;
	struct stat st;
	pthread_t t;

	of = open_stored(&f);

	ck_assert_int_eq(bfs_ofile_attr_begin(of, "t", "b.txt"),
			 BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_ofile_attr_begin(of, "t", "a.txt"), 0);
	ck_assert_int_eq(bfs_ofile_attr_must_send_locked(of), 1);
	bfs_ofile_attr_send_begin_locked(of);     /* mu released, busy */

	memset(&j, 0, sizeof(j));
	j.path = "/t/a.txt";
	j.mode = 0600;
	ck_assert_int_eq(pthread_create(&t, NULL, attr_thread, &j), 0);
	assert_waits(&j);

	bfs_ofile_attr_send_end(of);              /* mu held again */
	bfs_ofile_unlock(of);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(j.r, 0);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/a.txt", &st, NULL), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);

	bfs_ofile_put(of);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/a.txt", &f), 0);
}
END_TEST

/* A rename of an open file waits for its attribute change (the rename
 * fences the names, then waits until no upload and no change runs:
 * bfs_ofile_wait_quiet), then moves it: the file and its open state are
 * under the new name. */
START_TEST(test_rename_waits_for_attr_change)
{
	struct bfs_vfs_file f;
	struct bfs_ofile *of, *moved;
	struct attr_job j;
	struct stat st;
	pthread_t t;

	of = open_stored(&f);
	ck_assert_int_eq(bfs_ofile_attr_begin(of, "t", "a.txt"), 0);
	bfs_ofile_attr_send_begin_locked(of);

	memset(&j, 0, sizeof(j));
	j.path = "/t/a.txt";
	j.to = "/t/c.txt";
	ck_assert_int_eq(pthread_create(&t, NULL, attr_thread, &j), 0);
	assert_waits(&j);
	ck_assert_ptr_null(bfs_ofile_find("t", "c.txt"));

	bfs_ofile_attr_send_end(of);
	bfs_ofile_unlock(of);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(j.r, 0);
	ck_assert_ptr_eq(moved = bfs_ofile_find("t", "c.txt"), of);
	bfs_ofile_put(moved);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/c.txt", &st, NULL), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(bfs_vfs_getattr(vfs, &who, "/t/a.txt", &st, NULL),
			 BFS_ERR_NOTFOUND);

	bfs_ofile_put(of);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/t/c.txt", &f), 0);
}
END_TEST

#ifdef BFS_LOCK_CHECK
/* A _locked transition of the open file called without its lock aborts
 * (bfs_lock.h; this build has the checks): expects SIGABRT. */
START_TEST(test_locked_call_without_lock_aborts)
{
	struct bfs_vfs_file f;
	struct bfs_ofile *of;
	struct stat st;

	vcreate("/t/l.txt", &f);
	ck_assert_ptr_nonnull(of = bfs_ofile_find("t", "l.txt"));
	bfs_ofile_stat_locked(of, &st);      /* of->mu not held: aborts */
	bfs_ofile_put(of);
}
END_TEST
#endif

/* What the entry points answer is a BFS_ERR_* code, never an errno (the
 * FUSE adapter maps it: test_errno.c): the answers the vfs makes itself,
 * without a provider's error (xattrs, handles, refused calls). */
START_TEST(test_results_are_bfs_codes)
{
	struct bfs_vfs_file f, c;
	char buf[8], big[BFS_META_XATTR_MAX + 2];

	put_file("/t/a.txt", "hello");
	/* extended attributes */
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt",
					  "security.capability", buf,
					  sizeof(buf)), BFS_ERR_NOTSUP);
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt", "user.none",
					  buf, sizeof(buf)), BFS_ERR_NODATA);
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt",
					  "user.bucketfs.url", buf,
					  sizeof(buf)), BFS_ERR_NODATA);
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt",
					  "user.bucketfs.key", NULL, 0), 5);
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt",
					  "user.bucketfs.key", buf, 2),
			 BFS_ERR_BUFTOOSMALL);
	ck_assert_int_eq(bfs_vfs_listxattr(vfs, &who, "/t/a.txt", buf, 2),
			 BFS_ERR_BUFTOOSMALL);
	ck_assert_int_eq(bfs_vfs_setxattr(vfs, &who, "/t/a.txt", "user.c",
					  "v", 1, 0), 0);
	ck_assert_int_eq(bfs_vfs_setxattr(vfs, &who, "/t/a.txt", "user.c",
					  "w", 1, XATTR_CREATE),
			 BFS_ERR_EXISTS);
	ck_assert_int_eq(bfs_vfs_setxattr(vfs, &who, "/t/a.txt", "user.n",
					  "w", 1, XATTR_REPLACE),
			 BFS_ERR_NODATA);
	ck_assert_int_eq(bfs_vfs_removexattr(vfs, &who, "/t/a.txt",
					     "user.n"), BFS_ERR_NODATA);
	ck_assert_int_eq(bfs_vfs_setxattr(vfs, &who, "/t/a.txt",
					  "user.bucketfs.key", "k", 1, 0),
			 BFS_ERR_PERM);
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(bfs_vfs_setxattr(vfs, &who, "/t/a.txt", "user.b",
					  big, sizeof(big), 0),
			 BFS_ERR_XATTRTOOBIG);
	ck_assert_int_eq(bfs_vfs_getxattr(vfs, &who, "/t/a.txt", "user.c",
					  buf, sizeof(buf)), 1);
	/* handles */
	ck_assert_int_eq(bfs_vfs_read(vfs, &who, "/t/a.txt", buf, 1, 0, NULL),
			 BFS_ERR_BADF);
	ck_assert_int_eq(bfs_vfs_write(vfs, &who, "/t/a.txt", "x", 1, 0,
				       NULL), BFS_ERR_BADF);
	memset(&c, 0, sizeof(c));
	c.flags = O_RDONLY;
	ck_assert_int_eq(bfs_vfs_open(vfs, &who, "/.buckets", &c), 0);
	ck_assert_int_eq(bfs_vfs_write(vfs, &who, "/.buckets", "x", 1, 0, &c),
			 BFS_ERR_BADF);
	ck_assert_int_eq(bfs_vfs_chmod(vfs, &who, "/.buckets", 0600, &c),
			 BFS_ERR_PERM);
	ck_assert_int_eq(bfs_vfs_release(vfs, &who, "/.buckets", &c), 0);
	memset(&c, 0, sizeof(c));
	c.flags = O_WRONLY;
	ck_assert_int_eq(bfs_vfs_open(vfs, &who, "/.buckets", &c),
			 BFS_ERR_ACCESS);
	/* refused calls */
	ck_assert_int_eq(bfs_vfs_link(vfs, &who, "/t/a.txt", "/t/l"),
			 BFS_ERR_PERM);
	ck_assert_int_eq(bfs_vfs_mknod(vfs, &who, "/t/n", S_IFIFO | 0644, 0),
			 BFS_ERR_PERM);
	ck_assert_int_eq(bfs_vfs_rename(vfs, &who, "/t/a.txt", "/t/b.txt",
					RENAME_EXCHANGE), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_vfs_readlink(vfs, &who, "/t/a.txt", buf, 0),
			 BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_vfs_truncate(vfs, &who, "/t/a.txt", -1, NULL),
			 BFS_ERR_INVAL);
	memset(&f, 0, sizeof(f));
	f.flags = O_CREAT | O_WRONLY;
	ck_assert_int_eq(bfs_vfs_create(vfs, &who, "/nobucket", 0644, &f),
			 BFS_ERR_PERM);
	ck_assert_int_eq(bfs_vfs_mkdir(vfs, &who, "/.hidden", 0755),
			 BFS_ERR_INVAL);
}
END_TEST

/* The kernel's entry and attribute timeout: 1 s on a SQLite catalog,
 * 0.3 s on a PostgreSQL one (other hosts' changes show sooner). */
START_TEST(test_kernel_ttl)
{
	ck_assert(bfs_vfs_kernel_ttl(vfs) == 1.0);
	bfs_vfs_free(vfs);
	vfs = NULL;
	free(cfg->database);
	ck_assert_ptr_nonnull(cfg->database =
			      strdup("postgresql://u@127.0.0.1:5432/db"));
	vfs_up();
	ck_assert(bfs_vfs_kernel_ttl(vfs) == 0.3);
}
END_TEST

Suite *vfs_suite(void)
{
	Suite *s = suite_create("vfs");
	TCase *tc = tcase_create("vfs");

	tcase_add_unchecked_fixture(tc, case_setup, case_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_create_write_release);
	tcase_add_test(tc, test_partial_overwrite);
	tcase_add_test(tc, test_release_goes_to_queue);
	tcase_add_test(tc, test_failed_upload_kept_then_resumed);
	tcase_add_test(tc, test_journal_resumed_by_next_context);
	tcase_add_test(tc, test_fsync_retries_after_transient_failure);
	tcase_add_test(tc, test_queue_bounds_running_uploads);
	tcase_add_test(tc, test_rename_file_while_queued);
	tcase_add_test(tc, test_rename_folder_while_uploading);
	tcase_add_test(tc, test_unlink_open_file);
	tcase_add_test(tc, test_readdir_after_writes);
	tcase_add_test(tc, test_multipart_resumes_after_failed_part);
	tcase_add_test(tc, test_multipart_resumed_by_next_context);
	tcase_add_test(tc, test_one_context);
	tcase_add_test(tc, test_attr_change_excludes_another);
	tcase_add_test(tc, test_rename_waits_for_attr_change);
#ifdef BFS_LOCK_CHECK
	tcase_add_test_raise_signal(tc, test_locked_call_without_lock_aborts,
				    SIGABRT);
#endif
	tcase_add_test(tc, test_kernel_ttl);
	tcase_add_test(tc, test_results_are_bfs_codes);
	suite_add_tcase(s, tc);
	return s;
}
