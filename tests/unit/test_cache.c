/*
 * test_cache.c - the caching layer (src/cache) with no FUSE, no server and
 * no vfs context: the local provider of a private temporary folder, its
 * ops table copied into a counting provider (every function counts its
 * calls, then calls local's), wrapped by the decorator (bfs_cache_wrap).
 * The tests call the wrapper as the vfs does (b->prov) and the cache API
 * (bfs_attr_*, bfs_dir_list, bfs_dir_lookup, bfs_rcache_read), and look
 * at the counts: what a cache serves never reaches the inner provider,
 * and what a change through the decorator invalidates reaches it again.
 *
 * Each test runs in its own process (Check's fork mode), so the caches'
 * module state starts empty; the unchecked fixture (in the runner's own
 * process) removes the per-case folder, also when a test failed.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_cache.h"
#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_provider.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "unit.h"
#include "../../src/cache/attrcache.h"
#include "../../src/cache/readcache.h"
#include "../../src/vfs/vfs_int.h"

static char base[64];            /* per test case (unchecked fixture) */
static char dir[128];            /* per test: base/NNN */
static char bdir[160];           /* the bucket's folder: dir/b */

/* ---- the counting provider ---- */

enum { C_HEAD, C_GET_RANGE, C_LIST, C_PUT_BUF, C_PUT_FD, C_DEL, C_COPY,
       C_SET_META, C_RENAME, C_N };
static atomic_int calls[C_N];
static const struct bfs_provider_ops *local_ops;
static struct bfs_provider_ops count_ops;
/* list of this prefix first changes another folder through the wrapper */
static const char *list_hook_prefix;
static const char *list_hook_key;

static struct bfs_provider *wrapped;      /* the decorator (owns inner) */
static struct bfs_rbucket bk;             /* a bucket "t" over it */

/* head of this key answers, then the key changes through the wrapper
 * before the answer is back (a put that passed while the HEAD was out) */
static const char *head_hook_key;

static int c_head(void *st, const char *key, struct bfs_meta *m)
{
	int r;

	atomic_fetch_add(&calls[C_HEAD], 1);
	r = local_ops->head(st, key, m);
	if (head_hook_key && !strcmp(key, head_hook_key)) {
		struct bfs_meta pm;

		head_hook_key = NULL;
		memset(&pm, 0, sizeof(pm));
		ck_assert_int_eq(wrapped->ops->put_buf(wrapped->st, key,
						       "changed!", 8, &pm,
						       NULL, 0), 0);
	}
	return r;
}

static int c_get_range(void *st, const char *key, uint64_t off, size_t len,
		       char *buf, size_t *got, const char *if_match)
{
	atomic_fetch_add(&calls[C_GET_RANGE], 1);
	return local_ops->get_range(st, key, off, len, buf, got, if_match);
}

static int c_list(void *st, const char *prefix, unsigned flags,
		  bfs_list_fn fn, void *arg)
{
	atomic_fetch_add(&calls[C_LIST], 1);
	if (list_hook_prefix && !strcmp(prefix, list_hook_prefix)) {
		struct bfs_meta m;

		memset(&m, 0, sizeof(m));
		ck_assert_int_eq(wrapped->ops->put_buf(wrapped->st,
						       list_hook_key, "x", 1,
						       &m, NULL, 0), 0);
	}
	return local_ops->list(st, prefix, flags, fn, arg);
}

static int c_put_buf(void *st, const char *key, const void *data, size_t len,
		     const struct bfs_meta *m, char *etag, size_t elen)
{
	atomic_fetch_add(&calls[C_PUT_BUF], 1);
	return local_ops->put_buf(st, key, data, len, m, etag, elen);
}

static int c_put_fd(void *st, const char *key, int fd, uint64_t size,
		    const struct bfs_meta *m, char *etag, size_t elen)
{
	atomic_fetch_add(&calls[C_PUT_FD], 1);
	return local_ops->put_fd(st, key, fd, size, m, etag, elen);
}

static int c_del(void *st, const char *key)
{
	atomic_fetch_add(&calls[C_DEL], 1);
	return local_ops->del(st, key);
}

static int c_copy(void *st, const char *src, const char *dst,
		  const struct bfs_meta *m)
{
	atomic_fetch_add(&calls[C_COPY], 1);
	return local_ops->copy(st, src, dst, m);
}

static int c_set_meta(void *st, const char *key, const struct bfs_meta *m)
{
	atomic_fetch_add(&calls[C_SET_META], 1);
	return local_ops->set_meta(st, key, m);
}

static int c_rename(void *st, const char *src, const char *dst)
{
	atomic_fetch_add(&calls[C_RENAME], 1);
	return local_ops->rename(st, src, dst);
}

static int n_calls(int op)
{
	return atomic_load(&calls[op]);
}

/* ---- fixtures ---- */

static void case_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/bfs-cache-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void case_teardown(void)
{
	unit_rm_tree(base);
	base[0] = '\0';
}

/* The local provider of bdir with the counting table, wrapped. */
static void wrap_up(void)
{
	struct bfs_bucket_conf bc;
	struct bfs_provider *inner = NULL;
	char err[256] = "";

	memset(&bc, 0, sizeof(bc));
	bc.name = (char *)"t";
	bc.provider = BFS_PROV_LOCAL;
	bc.path = bdir;
	ck_assert_msg(bfs_provider_open(&bc, &inner, err, sizeof(err)) == 0,
		      "open: %s", err);
	local_ops = inner->ops;
	count_ops = *local_ops;
	count_ops.head = c_head;
	count_ops.get_range = c_get_range;
	count_ops.list = c_list;
	count_ops.put_buf = c_put_buf;
	count_ops.put_fd = c_put_fd;
	count_ops.del = c_del;
	count_ops.copy = c_copy;
	count_ops.set_meta = c_set_meta;
	count_ops.rename = c_rename;
	inner->ops = &count_ops;
	ck_assert_int_eq(bfs_cache_wrap(inner, "t", &wrapped), 0);
	ck_assert(bfs_cache_is_wrapped(wrapped));
	memset(&bk, 0, sizeof(bk));
	bk.name = (char *)"t";
	bk.prefix = (char *)"";
	bk.kind = BFS_PROV_LOCAL;
	bk.prov = wrapped;
	bk.uid = getuid();
	bk.gid = getgid();
	bk.mode = 0755;
	bk.file_mode = 0644;
	bk.dir_mode = 0755;
	atomic_init(&bk.refs, 1);    /* the test's: never freed */
	atomic_init(&bk.last_err, 0);
}

static void setup(void)
{
	static int n;

	snprintf(dir, sizeof(dir), "%s/%d-%d", base, (int)getpid(), n++);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(bdir, sizeof(bdir), "%s/b", dir);
	ck_assert_int_eq(mkdir(bdir, 0700), 0);
	bfs_log_set_level(BFS_LOG_ERROR);
	bfs_cache_set_enabled(1);
	bfs_attr_init();
	wrap_up();
}

static void teardown(void)
{
	bfs_attr_destroy();          /* also stops the block cache */
	bfs_provider_close(wrapped);
	wrapped = NULL;
	unit_rm_tree(dir);
}

/* ---- helpers ---- */

static struct bfs_provider_ops *W(void)
{
	return (struct bfs_provider_ops *)wrapped->ops;
}

static void put(const char *key, const char *body, uint32_t mode)
{
	struct bfs_meta m;

	memset(&m, 0, sizeof(m));
	m.mode = mode;
	m.has_mode = mode != 0;
	ck_assert_int_eq(W()->put_buf(wrapped->st, key, body, strlen(body), &m,
				      NULL, 0), 0);
}

static int head(const char *key, struct bfs_meta *m)
{
	memset(m, 0, sizeof(*m));
	return W()->head(wrapped->st, key, m);
}

/* Names of one bfs_dir_list, joined by ',' in listing order. */
struct names {
	char s[512];
};

static int name_cb(void *arg, const char *name, const struct stat *st,
		   int plus)
{
	struct names *n = arg;

	(void)st; (void)plus;
	if (n->s[0])
		strncat(n->s, ",", sizeof(n->s) - strlen(n->s) - 1);
	strncat(n->s, name, sizeof(n->s) - strlen(n->s) - 1);
	return 0;
}

static int has_name(const struct names *n, const char *name)
{
	char want[128], all[520];

	snprintf(want, sizeof(want), ",%s,", name);
	snprintf(all, sizeof(all), ",%s,", n->s);
	return strstr(all, want) != NULL;
}

static void list(const char *prefix, struct names *n)
{
	memset(n, 0, sizeof(*n));
	ck_assert_int_eq(bfs_dir_list(&bk, prefix, name_cb, n), 0);
}

/* list(prefix), with key put through the wrapper while the LIST is out. */
static void list_while_put(const char *prefix, const char *key,
			   struct names *n)
{
	list_hook_prefix = prefix;
	list_hook_key = key;
	list(prefix, n);
	list_hook_prefix = NULL;
}

/* ---- tests ---- */

/* A HEAD through the decorator is kept: the second costs nothing, with
 * the same metadata and etag. */
START_TEST(test_head_twice_one_inner_call)
{
	struct bfs_meta a, b;

	put("f", "hello", S_IFREG | 0640);
	ck_assert_int_eq(head("f", &a), 0);
	ck_assert_int_eq(head("f", &b), 0);
	ck_assert_int_eq(n_calls(C_HEAD), 1);
	ck_assert_uint_eq(b.size, 5);
	ck_assert_str_eq(b.etag, a.etag);
	ck_assert(b.etag[0]);
	ck_assert_uint_eq(b.mode & 07777, 0640);
	/* an absent key is asked each time (its folder's record answers) */
	ck_assert_int_eq(head("nope", &a), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(head("nope", &a), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(n_calls(C_HEAD), 3);
	/* a HEAD that must see the server goes through, and refreshes */
	ck_assert_int_eq(bfs_cache_head_fresh(wrapped, "f", &a), 0);
	ck_assert_int_eq(n_calls(C_HEAD), 4);
	ck_assert_str_eq(a.etag, b.etag);
}
END_TEST

/* Each change through the decorator drops the key's cached HEAD: the next
 * head asks again and sees the new values. */
START_TEST(test_changes_drop_cached_head)
{
	struct bfs_meta m, nm;
	int before;

	put("a", "one", S_IFREG | 0644);
	ck_assert_int_eq(head("a", &m), 0);
	ck_assert_uint_eq(m.size, 3);

	/* put */
	put("a", "three", S_IFREG | 0644);
	before = n_calls(C_HEAD);
	ck_assert_int_eq(head("a", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), before + 1);
	ck_assert_uint_eq(m.size, 5);

	/* set_meta */
	memset(&nm, 0, sizeof(nm));
	nm.mode = S_IFREG | 0600;
	nm.has_mode = 1;
	nm.mtime = 1000000;
	nm.has_mtime = 1;
	ck_assert_int_eq(W()->set_meta(wrapped->st, "a", &nm), 0);
	before = n_calls(C_HEAD);
	ck_assert_int_eq(head("a", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), before + 1);
	ck_assert_uint_eq(m.mode & 07777, 0600);
	ck_assert_int_eq(m.mtime, 1000000);

	/* copy onto a cached key */
	put("c", "x", S_IFREG | 0644);
	ck_assert_int_eq(head("c", &m), 0);
	ck_assert_int_eq(W()->copy(wrapped->st, "a", "c", NULL), 0);
	before = n_calls(C_HEAD);
	ck_assert_int_eq(head("c", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), before + 1);
	ck_assert_uint_eq(m.size, 5);

	/* rename: the source is gone, the destination new */
	put("d", "dd", S_IFREG | 0644);
	ck_assert_int_eq(head("d", &m), 0);
	ck_assert_int_eq(head("a", &m), 0);
	ck_assert_int_eq(W()->rename(wrapped->st, "a", "d"), 0);
	ck_assert_int_eq(head("a", &m), BFS_ERR_NOTFOUND);
	before = n_calls(C_HEAD);
	ck_assert_int_eq(head("d", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), before + 1);
	ck_assert_uint_eq(m.size, 5);

	/* del */
	ck_assert_int_eq(head("c", &m), 0);
	ck_assert_int_eq(W()->del(wrapped->st, "c"), 0);
	ck_assert_int_eq(head("c", &m), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(n_calls(C_DEL), 1);
	ck_assert_int_eq(n_calls(C_COPY), 1);
	ck_assert_int_eq(n_calls(C_RENAME), 1);
	ck_assert_int_eq(n_calls(C_SET_META), 1);
}
END_TEST

/* A HEAD answer older than a change that passed while it was on its way
 * is not kept: the next head asks again and sees the change. */
START_TEST(test_head_overlapping_change_not_kept)
{
	struct bfs_meta m;

	put("h", "old", 0);
	head_hook_key = "h";
	ck_assert_int_eq(head("h", &m), 0);
	ck_assert_uint_eq(m.size, 3);            /* the answer of its time */
	ck_assert_int_eq(head("h", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), 2);
	ck_assert_uint_eq(m.size, 8);
}
END_TEST

/* The vfs's stat entries (bfs_attr_put_meta) go with a change too. */
START_TEST(test_put_drops_attributes)
{
	struct stat st, got;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_size = 3;
	put("s", "abc", 0);
	bfs_attr_put_meta("t", "s", &st, "e1");
	ck_assert(bfs_attr_get("t", "s", &got));
	put("s", "abcd", 0);
	ck_assert(!bfs_attr_get("t", "s", &got));
}
END_TEST

/* A change in one folder drops that folder's listing and keeps another's,
 * also one being made while the change passes (per-folder generations). */
START_TEST(test_change_keeps_other_folder_listing)
{
	struct names n;
	int before;

	put("a/1", "1", 0);
	put("b/1", "1", 0);
	list("a/", &n);
	list("b/", &n);
	ck_assert_int_eq(n_calls(C_LIST), 2);
	put("a/2", "2", 0);
	list("b/", &n);
	ck_assert_int_eq(n_calls(C_LIST), 2);   /* b/ still cached */
	list("a/", &n);
	ck_assert_int_eq(n_calls(C_LIST), 3);   /* a/ asked again */
	ck_assert(has_name(&n, "2"));

	/* c/ is listed while a/ changes: c/'s listing is still kept, and
	 * a/'s (made earlier) is dropped */
	put("c/1", "1", 0);
	list_while_put("c/", "a/3", &n);
	before = n_calls(C_LIST);
	list("c/", &n);
	ck_assert_int_eq(n_calls(C_LIST), before);
	list("a/", &n);
	ck_assert_int_eq(n_calls(C_LIST), before + 1);
	ck_assert(has_name(&n, "3"));
}
END_TEST

/* A listing of a folder changed while it was made is not kept: it may
 * predate the change. */
START_TEST(test_listing_during_own_change_not_kept)
{
	struct names n;
	int before;

	put("a/1", "1", 0);
	list_while_put("a/", "a/2", &n);
	before = n_calls(C_LIST);
	list("a/", &n);
	ck_assert_int_eq(n_calls(C_LIST), before + 1);
	ck_assert(has_name(&n, "2"));
}
END_TEST

/* A name the folder's record knows absent is answered with no request
 * until a create of that name passes the decorator. */
START_TEST(test_known_absent_dropped_by_create)
{
	struct names n;

	put("d/x", "1", 0);
	list("d/", &n);
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/new"), BFS_DIR_ABSENT);
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/x"), BFS_DIR_FILE);
	put("d/new", "n", 0);
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/new"), BFS_DIR_UNKNOWN);
	/* other names of the folder are still known absent */
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/other"), BFS_DIR_ABSENT);
	/* a folder made as key d/sub/ is a change of name "sub" as well */
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/sub"), BFS_DIR_ABSENT);
	put("d/sub/", "", S_IFDIR | 0755);
	ck_assert_int_eq(bfs_dir_lookup(&bk, "d/sub"), BFS_DIR_UNKNOWN);
}
END_TEST

/* The block cache serves a second read without a GET and loses the
 * key's blocks when a put passes the decorator. */
START_TEST(test_block_cache_dropped_by_put)
{
	struct bfs_rc_file *h1 = NULL, *h2 = NULL, *h3 = NULL;
	struct bfs_meta m;
	struct timespec mt;
	char buf[64], cdir[192];

	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
	ck_assert_int_eq(mkdir(cdir, 0700), 0);
	ck_assert_int_eq(bfs_rcache_init(cdir, 64ull << 20), 0);
	put("r", "0123456789", 0);
	ck_assert_int_eq(head("r", &m), 0);
	mt.tv_sec = m.mtime;
	mt.tv_nsec = m.mtime_nsec;
	ck_assert_int_eq(bfs_rcache_read(&h1, &bk, "r", m.size, &mt, m.etag,
					 buf, sizeof(buf), 0), 10);
	ck_assert_int_eq(n_calls(C_GET_RANGE), 1);
	ck_assert_int_eq(bfs_rcache_read(&h2, &bk, "r", m.size, &mt, m.etag,
					 buf, sizeof(buf), 0), 10);
	ck_assert_int_eq(n_calls(C_GET_RANGE), 1);     /* from the block */
	ck_assert(bfs_rcache_used() > 0);
	/* same bytes again: same etag, so only the drop can make it ask */
	put("r", "0123456789", 0);
	ck_assert_int_eq(bfs_rcache_read(&h3, &bk, "r", m.size, &mt, m.etag,
					 buf, sizeof(buf), 0), 10);
	ck_assert_int_eq(n_calls(C_GET_RANGE), 2);
	ck_assert(!memcmp(buf, "0123456789", 10));
	bfs_rcache_close(h1);
	bfs_rcache_close(h2);
	bfs_rcache_close(h3);
}
END_TEST

/* cache = off: nothing is kept, every call reaches the inner provider. */
START_TEST(test_cache_off_every_call_reaches_provider)
{
	struct bfs_meta m;
	struct stat st, got;
	struct names n;
	struct bfs_rc_file *h = NULL;
	struct timespec mt;
	char buf[16], sdir[192];

	bfs_cache_set_enabled(0);
	/* what the block cache would start in on the first read */
	snprintf(sdir, sizeof(sdir), "%s/staging", dir);
	ck_assert_int_eq(mkdir(sdir, 0700), 0);
	bfs_fs.staging_dir = sdir;
	bfs_fs.cache_size = 64ull << 20;
	/* a remote kind: a cache that is on would probe the folder */
	bk.kind = BFS_PROV_S3;
	put("o/f", "abc", 0);
	ck_assert_int_eq(head("o/f", &m), 0);
	ck_assert_int_eq(head("o/f", &m), 0);
	ck_assert_int_eq(n_calls(C_HEAD), 2);
	list("o/", &n);
	list("o/", &n);
	ck_assert_int_eq(n_calls(C_LIST), 2);
	ck_assert(has_name(&n, "f"));
	ck_assert_int_eq(bfs_dir_lookup(&bk, "o/absent"), BFS_DIR_UNKNOWN);
	ck_assert_int_eq(n_calls(C_LIST), 2);
	bfs_dir_note_empty("t", "o/e/");
	ck_assert_int_eq(bfs_dir_lookup(&bk, "o/e/x"), BFS_DIR_UNKNOWN);
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	bfs_attr_put_meta("t", "o/f", &st, m.etag);
	ck_assert(!bfs_attr_get("t", "o/f", &got));
	ck_assert(!bfs_attr_etag("t", "o/f", buf, sizeof(buf)));
	/* reads: no block cache (never started), each read a GET */
	mt.tv_sec = m.mtime;
	mt.tv_nsec = m.mtime_nsec;
	ck_assert_int_eq(bfs_rcache_read(&h, &bk, "o/f", m.size, &mt, m.etag,
					 buf, sizeof(buf), 0), 3);
	ck_assert_int_eq(bfs_rcache_read(&h, &bk, "o/f", m.size, &mt, m.etag,
					 buf, sizeof(buf), 0), 3);
	ck_assert_int_eq(n_calls(C_GET_RANGE), 2);
	ck_assert_uint_eq(bfs_rcache_used(), 0);
	bfs_rcache_close(h);
	bfs_fs.staging_dir = NULL;
}
END_TEST

/* The registry wraps each bucket's provider, unless the caches are off. */
static void registry_wraps(int on)
{
	struct bfs_config *cfg = NULL;
	struct bfs_store *store = NULL;
	struct bfs_registry *reg = NULL;
	struct bfs_rbucket *b;
	char path[256], err[512] = "";
	FILE *f;

	bfs_cache_set_enabled(on);
	snprintf(path, sizeof(path), "%s/bucketfs.conf", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "[bucketfs]\ndatabase = %s/bucketfs.db\ncache_dir = %s\n"
		"log_level = error\n\n[mount]\ncache = %s\n\n[bucket t]\n"
		"provider = local\npath = %s\n", dir, dir, on ? "on" : "off",
		bdir);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(bfs_config_load(path, &cfg, err, sizeof(err)) == 0,
		      "config: %s", err);
	ck_assert_int_eq(cfg->cache_off, !on);
	ck_assert_msg(bfs_store_open(cfg->database, &store, err,
				     sizeof(err)) == 0, "store: %s", err);
	ck_assert_msg(bfs_store_sync_config(store, cfg, NULL, err,
					    sizeof(err)) == 0, "sync: %s", err);
	ck_assert_msg(bfs_registry_new(store, NULL, NULL, &reg, err,
				       sizeof(err)) == 0, "registry: %s", err);
	ck_assert_ptr_nonnull(b = bfs_registry_get(reg, "t"));
	ck_assert_ptr_nonnull(b->prov);
	ck_assert_int_eq(bfs_cache_is_wrapped(b->prov), on);
	ck_assert_str_eq(b->prov->ops->name, "local");
	/* no rename where the inner has none: same NULLs as local's */
	ck_assert_int_eq(b->prov->ops->mpu_begin == NULL, 1);
	ck_assert_int_eq(b->prov->ops->rename != NULL, 1);
	bfs_rbucket_put(b);
	bfs_registry_free(reg);
	bfs_store_close(store);
	bfs_config_free(cfg);
}

START_TEST(test_registry_wraps_unless_off)
{
	registry_wraps(1);
	registry_wraps(0);
}
END_TEST

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");

	tcase_add_unchecked_fixture(tc, case_setup, case_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_head_twice_one_inner_call);
	tcase_add_test(tc, test_changes_drop_cached_head);
	tcase_add_test(tc, test_head_overlapping_change_not_kept);
	tcase_add_test(tc, test_put_drops_attributes);
	tcase_add_test(tc, test_change_keeps_other_folder_listing);
	tcase_add_test(tc, test_listing_during_own_change_not_kept);
	tcase_add_test(tc, test_known_absent_dropped_by_create);
	tcase_add_test(tc, test_block_cache_dropped_by_put);
	tcase_add_test(tc, test_cache_off_every_call_reaches_provider);
	tcase_add_test(tc, test_registry_wraps_unless_off);
	suite_add_tcase(s, tc);
	return s;
}
