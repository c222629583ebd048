/*
 * test_route.c - routing (src/route): what bfs_route_resolve makes of a
 * path and what the route then allows (bfs_route_allows), checked against
 * the product contract (INTERFACE.md "The mount tree", "Context views",
 * "Who may do what", "File semantics"), and that a route owns its
 * strings.
 *
 * Each test builds a store (SQLite) and a registry over two local buckets
 * in a private temporary folder: "media" (default for general and chat)
 * and "ro" (read_only, default for forms), so @general and @chat route to
 * a writable bucket and @form to a read-only one.  No provider call is
 * made: routing only reads the registry and the (empty) file index.  The
 * checked fixture makes a per-test folder below a per-case base folder
 * that the unchecked fixture removes, so nothing is left behind.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_route.h"
#include "bfs_store.h"
#include "unit.h"

static char base[64];            /* per test case (unchecked fixture) */
static char dir[128];            /* per test: base/NNN */
static struct bfs_config *cfg;
static struct bfs_store *store;
static struct bfs_registry *reg;

static void case_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/bfs-route-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void case_teardown(void)
{
	unit_rm_tree(base);
	base[0] = '\0';
}

/* The store and config of a fresh test folder; the registry is the
 * caller's (multi- or single-bucket). */
static void setup(void)
{
	static int n;
	char path[256], sub[200], err[512] = "";
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%d-%d", base, (int)getpid(), n++);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/media", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/ro", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/bucketfs.conf", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "[bucketfs]\ndatabase = %s/bucketfs.db\n"
		"cache_dir = %s/cache\nlog_level = error\n"
		"\n[bucket media]\nprovider = local\npath = %s/media\n"
		"default = general, chat\n"
		"\n[bucket ro]\nprovider = local\npath = %s/ro\n"
		"read_only = true\ndefault = forms\n", dir, dir, dir, dir);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(bfs_config_load(path, &cfg, err, sizeof(err)) == 0,
		      "config: %s", err);
	bfs_log_set_level(BFS_LOG_ERROR);
	ck_assert_msg(bfs_store_open(cfg->database, &store, err,
				     sizeof(err)) == 0, "store: %s", err);
	ck_assert_msg(bfs_store_sync_config(store, cfg, NULL, err,
					    sizeof(err)) == 0, "sync: %s", err);
}

static void reg_up(const char *single)
{
	char err[512] = "";

	ck_assert_msg(bfs_registry_new(store, NULL, single, &reg, err,
				       sizeof(err)) == 0, "registry: %s", err);
}

static void teardown(void)
{
	bfs_registry_free(reg);
	reg = NULL;
	bfs_store_close(store);
	store = NULL;
	bfs_config_free(cfg);
	cfg = NULL;
	unit_rm_tree(dir);
}

/* ---- helpers ---- */

static const char *op_name(int op)
{
	static const char *const n[BFS_ROP_COUNT] = {
		[BFS_ROP_LOOKUP] = "lookup", [BFS_ROP_READDIR] = "readdir",
		[BFS_ROP_OPEN_READ] = "open-read",
		[BFS_ROP_OPEN_WRITE] = "open-write",
		[BFS_ROP_OPEN_TRUNC] = "open-rdonly-trunc",
		[BFS_ROP_CREATE] = "create", [BFS_ROP_MKDIR] = "mkdir",
		[BFS_ROP_RMDIR] = "rmdir", [BFS_ROP_UNLINK] = "unlink",
		[BFS_ROP_SYMLINK] = "symlink", [BFS_ROP_READLINK] = "readlink",
		[BFS_ROP_RENAME_FROM] = "rename-from",
		[BFS_ROP_RENAME_TO] = "rename-to",
		[BFS_ROP_TRUNCATE] = "truncate", [BFS_ROP_SETATTR] = "chmod",
		[BFS_ROP_SETTIMES] = "utimens", [BFS_ROP_XATTR_SET] = "setxattr",
	};

	return op >= 0 && op < BFS_ROP_COUNT && n[op] ? n[op] : "?";
}

/* bfs_route_allows(resolve(path), op) must be want. */
static void expect(const char *path, int op, int want)
{
	struct bfs_route rt;
	int r;

	ck_assert_msg(bfs_route_resolve(reg, path, &rt) == 0,
		      "%s does not resolve", path);
	r = bfs_route_allows(&rt, op);
	bfs_route_clear(&rt);
	ck_assert_msg(r == want, "%s %s: %s (%d), want %s (%d)", op_name(op),
		      path, bfs_strerror(r), r, bfs_strerror(want), want);
}

/* The same want for every op of ops (terminated by -1). */
static void expect_all(const char *path, const int *ops, int want)
{
	size_t i;

	for (i = 0; ops[i] >= 0; i++)
		expect(path, ops[i], want);
}

/* Every operation that changes something (INTERFACE "read_only = true:
 * every write gives EROFS"), and every one that only reads. */
static const int writes[] = {
	BFS_ROP_OPEN_WRITE, BFS_ROP_OPEN_TRUNC, BFS_ROP_CREATE,
	BFS_ROP_MKDIR, BFS_ROP_RMDIR, BFS_ROP_UNLINK, BFS_ROP_SYMLINK,
	BFS_ROP_RENAME_FROM, BFS_ROP_RENAME_TO, BFS_ROP_TRUNCATE,
	BFS_ROP_SETATTR, BFS_ROP_SETTIMES, BFS_ROP_XATTR_SET, -1
};
static const int reads[] = {
	BFS_ROP_LOOKUP, BFS_ROP_READDIR, BFS_ROP_OPEN_READ,
	BFS_ROP_READLINK, -1
};
/* What makes or removes a name: never at the mount's own entries. */
static const int namespace_ops[] = {
	BFS_ROP_MKDIR, BFS_ROP_RMDIR, BFS_ROP_UNLINK, BFS_ROP_SYMLINK,
	BFS_ROP_RENAME_FROM, BFS_ROP_RENAME_TO, -1
};

/* ---- the policy ---- */

/* The mount's own entries (its root, control files, bucket and view
 * folders): their names are taken (create EEXIST), nothing is made,
 * removed or renamed there, none is a link, chmod and chown are EPERM,
 * utimens is accepted and changes nothing (cp -a, touch), and their
 * attributes are read-only (setxattr EPERM). */
static void expect_mount_own(const char *p)
{
	expect(p, BFS_ROP_CREATE, BFS_ERR_EXISTS);
	expect_all(p, namespace_ops, BFS_ERR_PERM);
	expect(p, BFS_ROP_READLINK, BFS_ERR_INVAL);
	expect(p, BFS_ROP_SETATTR, BFS_ERR_PERM);
	expect(p, BFS_ROP_SETTIMES, 0);
	expect(p, BFS_ROP_XATTR_SET, BFS_ERR_PERM);
}

/* Inside a writable bucket, through its folder or a view, everything is
 * the vfs's to do; a context folder @chat/ID is a folder like any other
 * ("needs no mkdir", "rmdir @chat/ID of an empty context removes its
 * folder marker"). */
START_TEST(test_entries_allow_everything)
{
	static const char *const paths[] = {
		"/media/a.txt", "/media/d/e/f", "/@general/a.txt",
		"/@chat/team42/a.jpg", "/@chat/team42/sub/b", "/@chat/team42",
	};
	size_t i;

	reg_up(NULL);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_all(paths[i], writes, 0);
		expect_all(paths[i], reads, 0);
	}
}
END_TEST

/* A bucket with read_only = true, and a view routed to one (@form goes to
 * "ro" by its forms default): EROFS for every write, reads work. */
START_TEST(test_read_only_bucket_and_view)
{
	static const char *const paths[] = {
		"/ro/a.txt", "/ro/d/e", "/@form/f1/a.pdf", "/@form/f1",
	};
	size_t i;

	reg_up(NULL);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_all(paths[i], writes, BFS_ERR_READONLY);
		expect_all(paths[i], reads, 0);
	}
}
END_TEST

/* .defaults and .assignments are rw, .buckets and .metrics r: a write to
 * a read-only one is EACCES; `>` (truncate, O_TRUNC) never wipes one and
 * is accepted; they are files (readdir ENOTDIR, not links), their names
 * are taken (create EEXIST), nothing else is made or removed there and
 * only their times may be set. */
START_TEST(test_control_files)
{
	static const char *const rw[] = { "/.defaults", "/.assignments" };
	static const char *const ro[] = { "/.buckets", "/.metrics" };
	const char *p;
	size_t i;

	reg_up(NULL);
	for (i = 0; i < 4; i++) {
		p = i < 2 ? rw[i] : ro[i - 2];
		expect(p, BFS_ROP_LOOKUP, 0);
		expect(p, BFS_ROP_OPEN_READ, 0);
		expect(p, BFS_ROP_OPEN_WRITE, i < 2 ? 0 : BFS_ERR_ACCESS);
		expect(p, BFS_ROP_OPEN_TRUNC, 0);
		expect(p, BFS_ROP_TRUNCATE, 0);
		expect(p, BFS_ROP_READDIR, BFS_ERR_NOTDIR);
		expect_mount_own(p);
	}
}
END_TEST

/* Names starting with '.' or '@' are reserved: such a root name never
 * exists (ENOENT), and making one is EINVAL. */
START_TEST(test_reserved_names)
{
	static const int make[] = {
		BFS_ROP_CREATE, BFS_ROP_MKDIR, BFS_ROP_SYMLINK,
		BFS_ROP_RENAME_TO, -1
	};
	static const int seen[] = {
		BFS_ROP_LOOKUP, BFS_ROP_READDIR, BFS_ROP_OPEN_READ,
		BFS_ROP_OPEN_WRITE, BFS_ROP_TRUNCATE, BFS_ROP_SETATTR,
		BFS_ROP_SETTIMES, BFS_ROP_XATTR_SET, -1
	};
	static const char *const paths[] = { "/.hidden", "/@other" };
	size_t i;

	reg_up(NULL);
	for (i = 0; i < 2; i++) {
		expect_all(paths[i], make, BFS_ERR_INVAL);
		expect_all(paths[i], seen, BFS_ERR_NOTFOUND);
	}
}
END_TEST

/* The mount root, a bucket's folder, @general (the general default's
 * folder) and the view folders @chat and @form are the mount's own
 * folders: listed and looked up, never made, removed or renamed, chmod
 * and chown EPERM, utimens accepted (cp -a, touch), xattrs not settable.
 * Opening one as a file is EISDIR (the view folders are opened as
 * folders only: ENOENT as files). */
START_TEST(test_mount_folders)
{
	static const char *const dirs[] = {
		"/", "/media", "/ro", "/@general", "/@chat", "/@form",
	};
	size_t i;
	int view;

	reg_up(NULL);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		const char *p = dirs[i];

		view = i >= 4;
		expect(p, BFS_ROP_LOOKUP, 0);
		expect(p, BFS_ROP_READDIR, 0);
		expect(p, BFS_ROP_OPEN_READ, view ? BFS_ERR_NOTFOUND :
						    BFS_ERR_ISDIR);
		expect(p, BFS_ROP_OPEN_WRITE, view ? BFS_ERR_NOTFOUND :
						     BFS_ERR_ISDIR);
		expect(p, BFS_ROP_TRUNCATE, BFS_ERR_ISDIR);
		expect_mount_own(p);
	}
}
END_TEST

/* Single-bucket mode: the root is the bucket's folder, and there are no
 * control files and no views: ".defaults" and "@chat" are entries. */
START_TEST(test_single_bucket)
{
	reg_up("media");
	expect("/", BFS_ROP_READDIR, 0);
	expect("/", BFS_ROP_OPEN_READ, BFS_ERR_ISDIR);
	expect_all("/", namespace_ops, BFS_ERR_PERM);
	expect_all("/.defaults", writes, 0);
	expect_all("/@chat", writes, 0);
	expect_all("/a/b", writes, 0);
}
END_TEST

START_TEST(test_unknown_op)
{
	struct bfs_route rt;

	reg_up(NULL);
	ck_assert_int_eq(bfs_route_resolve(reg, "/media/a", &rt), 0);
	ck_assert_int_eq(bfs_route_allows(&rt, -1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_route_allows(&rt, BFS_ROP_COUNT), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_route_has_key(&rt), 1);
	bfs_route_clear(&rt);
	ck_assert_int_eq(bfs_route_resolve(reg, "/media", &rt), 0);
	ck_assert_int_eq(bfs_route_has_key(&rt), 0);
	bfs_route_clear(&rt);
	ck_assert_int_eq(bfs_route_resolve(reg, "/.metrics", &rt), 0);
	ck_assert_int_eq(bfs_route_has_key(&rt), 0);
	bfs_route_clear(&rt);
}
END_TEST

/* ---- the route owns its key ---- */

/*
 * Resolves a heap copy of path, overwrites and frees the copy, then
 * checks what the route says: it must not point into the caller's
 * buffer (a borrowed rel reads "XXXX", or freed memory under ASan).
 */
static void check_owned(const char *path, const char *rel, const char *name,
			const char *key)
{
	struct bfs_route rt;
	size_t l = strlen(path);
	char *buf, *k = NULL;

	ck_assert_ptr_nonnull(buf = strdup(path));
	ck_assert_msg(bfs_route_resolve(reg, buf, &rt) == 0, "%s", path);
	memset(buf, 'X', l);
	ck_assert_msg(strcmp(rt.rel, rel) == 0, "%s: rel '%s', want '%s'",
		      path, rt.rel, rel);
	ck_assert_msg(strcmp(rt.name, name) == 0, "%s: name '%s', want '%s'",
		      path, rt.name, name);
	free(buf);
	ck_assert_str_eq(rt.rel, rel);
	ck_assert_str_eq(rt.name, name);
	if (key) {
		ck_assert_int_eq(bfs_route_key(&rt, 0, &k), 0);
		ck_assert_str_eq(k, key);
		free(k);
	}
	bfs_route_clear(&rt);
	ck_assert_str_eq(rt.rel, "");
	ck_assert_str_eq(rt.name, "");
	ck_assert_ptr_null(rt.b);
}

START_TEST(test_route_owns_strings)
{
	reg_up(NULL);
	check_owned("/media/a/b.txt", "a/b.txt", "b.txt", "a/b.txt");
	check_owned("/media", "", "media", NULL);
	check_owned("/@general/d/f", "d/f", "f", "d/f");
	check_owned("/@chat/team42/x.jpg", "chat/team42/x.jpg", "x.jpg",
		    "chat/team42/x.jpg");
	check_owned("/@chat/team42", "chat/team42", "team42", "chat/team42");
	check_owned("/@chat", "", "@chat", NULL);
	check_owned("/.defaults", "", ".defaults", NULL);
	check_owned("/.hidden", "", ".hidden", NULL);
	check_owned("/", "", "", NULL);
}
END_TEST

START_TEST(test_route_owns_strings_single)
{
	reg_up("media");
	check_owned("/a/b.txt", "a/b.txt", "b.txt", "a/b.txt");
	check_owned("/", "", "", NULL);
}
END_TEST

/* A failed resolve leaves a route that bfs_route_clear takes (and that
 * says nothing). */
START_TEST(test_failed_resolve_clears)
{
	struct bfs_route rt;

	reg_up(NULL);
	ck_assert_int_eq(bfs_route_resolve(reg, "/nosuch/a", &rt),
			 BFS_ERR_NOTFOUND);
	bfs_route_clear(&rt);
	ck_assert_int_eq(bfs_route_resolve(reg, "/@chat/bad id/a", &rt),
			 BFS_ERR_INVAL);
	bfs_route_clear(&rt);
	ck_assert_int_eq(bfs_route_resolve(reg, "relative", &rt),
			 BFS_ERR_INVAL);
	ck_assert_str_eq(rt.rel, "");
	bfs_route_clear(&rt);
}
END_TEST

Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("route");

	tcase_add_unchecked_fixture(tc, case_setup, case_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_entries_allow_everything);
	tcase_add_test(tc, test_read_only_bucket_and_view);
	tcase_add_test(tc, test_control_files);
	tcase_add_test(tc, test_reserved_names);
	tcase_add_test(tc, test_mount_folders);
	tcase_add_test(tc, test_single_bucket);
	tcase_add_test(tc, test_unknown_op);
	tcase_add_test(tc, test_route_owns_strings);
	tcase_add_test(tc, test_route_owns_strings_single);
	tcase_add_test(tc, test_failed_resolve_clears);
	suite_add_tcase(s, tc);
	return s;
}
