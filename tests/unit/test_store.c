/*
 * test_store.c - the SQLite metadata store against real database files in
 * a private temp folder: migrations and reopening, refusal of non-database
 * files, buckets with sealed secrets (never in the db or WAL bytes),
 * defaults and assignments applied all or nothing, the partial unique
 * indexes, removal refusals, config sync idempotence seen through
 * PRAGMA data_version of a second connection, the file index, the upload
 * journal (upserts, order, renames, durability seen from a second
 * connection, the upgrade of a version 1 database) and the pure journal
 * helpers (conflict names, ages).
 *
 * The test opens its own sqlite3 connection to inspect what the store
 * wrote; production code outside src/store never does.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bfs_config.h"
#include "../../src/store/store_int.h"

/* The latest schema (migrations.c: appended migrations raise it). */
#define SCHEMA_VERSION bfs_store_schema_version()
#include "bfs_crypto.h"
#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_journal.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_store.h"
#include "unit.h"

/* the latest schema version (src/store/store_int.h) */
int bfs_store_schema_version(void);

static char tmpdir[64];
static char dbpath[128];
static unsigned char key1[BFS_MASTER_KEY_LEN];
static unsigned char key2[BFS_MASTER_KEY_LEN];

static void setup(void)
{
	strcpy(tmpdir, "/tmp/bfs-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/bucketfs.db", tmpdir);
	memset(key1, 0x11, sizeof(key1));
	memset(key2, 0x22, sizeof(key2));
	bfs_log_set_level(BFS_LOG_ERROR);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct bfs_store *open_store(void)
{
	struct bfs_store *s = NULL;
	char err[512];

	err[0] = '\0';
	ck_assert_msg(bfs_store_open(dbpath, &s, err, sizeof(err)) == 0,
		      "open: %s", err);
	return s;
}

static char *xdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	ck_assert(!s || d);
	return d;
}

/* Fills b (strings owned; clear with bfs_bucket_conf_clear). */
static void mk_bucket(struct bfs_bucket_conf *b, const char *name, int provider,
		      const char *remote, const char *secret)
{
	memset(b, 0, sizeof(*b));
	b->name = xdup(name);
	b->provider = provider;
	if (provider == BFS_PROV_LOCAL) {
		b->path = xdup("/srv/data");
	} else {
		b->bucket_name = xdup(remote);
		b->region = xdup(provider == BFS_PROV_R2 ? "auto" : "us-east-1");
		b->prefix = xdup("");
		b->access_key_id = xdup("AKIDEXAMPLE");
		b->secret_access_key = xdup(secret);
		b->has_secret = secret != NULL;
	}
}

static void add_bucket(struct bfs_store *s, const char *name, int provider,
		       const char *secret)
{
	struct bfs_bucket_conf b;
	char err[512];

	mk_bucket(&b, name, provider, "remote-bucket", secret);
	err[0] = '\0';
	ck_assert_msg(bfs_store_bucket_add(s, &b, key1, "tester", err,
					   sizeof(err)) == 0, "add: %s", err);
	bfs_bucket_conf_clear(&b);
}

static struct bfs_config *mk_config(size_t n)
{
	struct bfs_config *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->buckets = calloc(n ? n : 1, sizeof(*c->buckets));
	ck_assert_ptr_nonnull(c->buckets);
	c->nbuckets = n;
	return c;
}

static void free_config(struct bfs_config *c)
{
	size_t i;

	for (i = 0; i < c->nbuckets; i++)
		bfs_bucket_conf_clear(&c->buckets[i]);
	free(c->buckets);
	free(c);
}

static void put_file(struct bfs_store *s, const char *bucket, const char *key,
		     uint64_t size)
{
	struct bfs_file_row r;

	memset(&r, 0, sizeof(r));
	r.bucket = (char *)bucket;
	r.key = (char *)key;
	r.size = size;
	r.etag = (char *)"\"etag\"";
	r.content_type = (char *)"text/plain";
	r.mode = 0100644;
	r.uid = 1000;
	r.gid = 1000;
	r.mtime = 1700000000;
	ck_assert_int_eq(bfs_store_file_put(s, &r), 0);
}

/* Raw inspection: first column of the first row as an integer / text. */
static sqlite3 *raw_open(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	char *v = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && (t = sqlite3_column_text(st, 0)))
		v = xdup((const char *)t);
	sqlite3_finalize(st);
	return v;
}

/* 1 when needle occurs in the bytes of file path (absent file: 0). */
static int file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 0, got, nl = strlen(needle), i;
	char *buf = NULL, chunk[65536];
	int found = 0;

	if (!f)
		return 0;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (n + got > cap) {
			cap = (n + got) * 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		memcpy(buf + n, chunk, got);
		n += got;
	}
	fclose(f);
	for (i = 0; !found && nl <= n && i <= n - nl; i++)
		found = memcmp(buf + i, needle, nl) == 0;
	free(buf);
	return found;
}

static void check_defaults(struct bfs_store *s, const char *g, const char *c,
			   const char *f)
{
	char *names[BFS_ROLE_COUNT];
	const char *want[BFS_ROLE_COUNT] = { g, c, f };
	int i;

	ck_assert_int_eq(bfs_store_defaults_get(s, names), 0);
	for (i = 0; i < BFS_ROLE_COUNT; i++) {
		if (!want[i])
			ck_assert_msg(names[i] == NULL, "role %d is %s", i, names[i]);
		else
			ck_assert_msg(names[i] && strcmp(names[i], want[i]) == 0,
				      "role %d: want %s got %s", i, want[i],
				      names[i] ? names[i] : "(unset)");
	}
	bfs_store_names_free(names);
}

/* ---- open / migrations ---- */

START_TEST(open_migrates_and_reopens)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_conf b;
	sqlite3 *db;
	char *mode;

	add_bucket(s, "media", BFS_PROV_S3, "s3cr3t");
	bfs_store_close(s);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	mode = raw_text(db, "PRAGMA journal_mode");
	ck_assert_str_eq(mode, "wal");
	free(mode);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE"
				 " name IN ('storage_buckets','files',"
				 "'assignments','settings','upload_journal')"), 5);
	sqlite3_close(db);
	/* Reopen: no migration runs again, data intact. */
	s = open_store();
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key1, &b), 0);
	ck_assert_str_eq(b.secret_access_key, "s3cr3t");
	bfs_bucket_conf_clear(&b);
	bfs_store_close(s);
	bfs_store_close(NULL);
}
END_TEST

START_TEST(open_upgrades_older_database)
{
	struct bfs_store *s;
	sqlite3 *db = NULL;

	/* A database at version 0 that already holds an unrelated table. */
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE other (x);"
				      "INSERT INTO other VALUES (42)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_store();
	bfs_store_close(s);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	ck_assert_int_eq(raw_int(db, "SELECT x FROM other"), 42);
	sqlite3_close(db);
}
END_TEST

START_TEST(open_refuses_non_database)
{
	struct bfs_store *s = (struct bfs_store *)1;
	char junk[4096], err[512];
	int fd, i;

	for (i = 0; i < (int)sizeof(junk); i++)
		junk[i] = (char)('a' + i % 26);
	fd = open(dbpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	err[0] = '\0';
	ck_assert_int_eq(bfs_store_open(dbpath, &s, err, sizeof(err)), BFS_ERR_DB);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, "not a database") != NULL, "err: %s", err);
	ck_assert_msg(strstr(err, dbpath) != NULL, "err: %s", err);
}
END_TEST

START_TEST(open_refuses_newer_schema)
{
	struct bfs_store *s = open_store();
	sqlite3 *db;
	char err[512];

	bfs_store_close(s);
	db = raw_open();
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(bfs_store_open(dbpath, &s, err, sizeof(err)), BFS_ERR_DB);
	ck_assert_ptr_nonnull(strstr(err, "newer"));
}
END_TEST

/* ---- buckets ---- */

START_TEST(bucket_add_get_list)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_conf b, *list = NULL;
	size_t n = 0;
	char err[512];
	sqlite3 *db;
	int64_t idlen;

	mk_bucket(&b, "uploads", BFS_PROV_S3, "my-s3", "secret-one");
	b.session_token = xdup("token-one");
	b.endpoint = xdup("http://127.0.0.1:9000");
	b.path_style = 1;
	b.description = xdup("Uploads");
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, "admin", err, sizeof(err)), 0);
	/* Duplicate name, bad name, secret without the key. */
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, NULL, err, sizeof(err)),
			 BFS_ERR_EXISTS);
	ck_assert_ptr_nonnull(strstr(err, "uploads"));
	bfs_bucket_conf_clear(&b);
	mk_bucket(&b, ".hidden", BFS_PROV_LOCAL, NULL, NULL);
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, NULL, err, sizeof(err)),
			 BFS_ERR_INVAL);
	bfs_bucket_conf_clear(&b);
	mk_bucket(&b, "nokey", BFS_PROV_R2, "r", "sec");
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, NULL, NULL, err, sizeof(err)),
			 BFS_ERR_INVAL);
	bfs_bucket_conf_clear(&b);
	add_bucket(s, "archive", BFS_PROV_LOCAL, NULL);

	ck_assert_int_eq(bfs_store_bucket_get(s, "uploads", key1, &b), 0);
	ck_assert_int_eq(strlen(b.id), 32);
	ck_assert_str_eq(b.name, "uploads");
	ck_assert_str_eq(b.description, "Uploads");
	ck_assert_int_eq(b.provider, BFS_PROV_S3);
	ck_assert_str_eq(b.bucket_name, "my-s3");
	ck_assert_str_eq(b.prefix, "");
	ck_assert_str_eq(b.region, "us-east-1");
	ck_assert_str_eq(b.endpoint, "http://127.0.0.1:9000");
	ck_assert_ptr_null(b.account_id);
	ck_assert_int_eq(b.path_style, 1);
	ck_assert_int_eq(b.read_only, 0);
	ck_assert_int_eq(b.list_metadata, BFS_LIST_META_UNSET);
	ck_assert_str_eq(b.access_key_id, "AKIDEXAMPLE");
	ck_assert_str_eq(b.secret_access_key, "secret-one");
	ck_assert_str_eq(b.session_token, "token-one");
	ck_assert_int_eq(b.has_secret, 1);
	ck_assert_int_eq(b.managed_by_config, 0);
	ck_assert_uint_eq(b.defaults, 0);
	bfs_bucket_conf_clear(&b);

	/* Without the key: secrets NULL, flags set. */
	ck_assert_int_eq(bfs_store_bucket_get(s, "uploads", NULL, &b), 0);
	ck_assert_ptr_null(b.secret_access_key);
	ck_assert_ptr_null(b.session_token);
	ck_assert_int_eq(b.has_secret, 1);
	ck_assert_int_eq(b.has_session_token, 1);
	bfs_bucket_conf_clear(&b);
	ck_assert_int_eq(bfs_store_bucket_get(s, "nope", key1, &b), BFS_ERR_NOTFOUND);

	ck_assert_int_eq(bfs_store_bucket_list(s, NULL, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].name, "archive");
	ck_assert_str_eq(list[0].path, "/srv/data");
	ck_assert_int_eq(list[0].has_secret, 0);
	ck_assert_str_eq(list[1].name, "uploads");
	ck_assert_int_eq(list[1].has_secret, 1);
	ck_assert_ptr_null(list[1].secret_access_key);
	bfs_bucket_conf_array_free(list, n);
	ck_assert_int_eq(bfs_store_bucket_list(s, key1, &list, &n), 0);
	ck_assert_str_eq(list[1].secret_access_key, "secret-one");
	bfs_bucket_conf_array_free(list, n);

	/* The row as apps see it: seed columns, config_json with sealed values. */
	db = raw_open();
	idlen = raw_int(db, "SELECT length(id) FROM storage_buckets WHERE"
			" name = 'uploads' AND id GLOB '[0-9a-f]*' AND"
			" id NOT GLOB '*[^0-9a-f]*'");
	ck_assert_int_eq(idlen, 32);
	ck_assert_int_eq(raw_int(db, "SELECT json_extract(config_json,"
				 " '$.secret_access_key') LIKE 'v1:%' FROM"
				 " storage_buckets WHERE name = 'uploads'"), 1);
	ck_assert_int_eq(raw_int(db, "SELECT created_by = 'admin' AND"
				 " managed_by = 'bucketctl' AND created_at IS NOT"
				 " NULL FROM storage_buckets WHERE name = 'uploads'"), 1);
	sqlite3_close(db);
	bfs_store_close(s);
}
END_TEST

START_TEST(wrong_master_key)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_conf b, *list = NULL;
	size_t n = 0;

	add_bucket(s, "media", BFS_PROV_R2, "r2-secret");
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key2, &b), BFS_ERR_CRYPTO);
	ck_assert_ptr_null(b.name);
	ck_assert_int_eq(bfs_store_bucket_list(s, key2, &list, &n), BFS_ERR_CRYPTO);
	ck_assert_ptr_null(list);
	ck_assert_int_eq(bfs_store_bucket_list(s, NULL, &list, &n), 0);
	ck_assert_uint_eq(n, 1);
	bfs_bucket_conf_array_free(list, n);
	bfs_store_close(s);
}
END_TEST

START_TEST(secret_never_in_db_or_wal)
{
	static const char *const secret = "PlainSecretValue-9f8e7d6c5b4a";
	static const char *const cfg_secret = "ConfigSecretValue-1a2b3c4d5e6f";
	static const char *const token = "SessionTokenValue-0011223344";
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(1);
	struct bfs_bucket_conf b;
	char err[512], wal[160];

	mk_bucket(&b, "uploads", BFS_PROV_S3, "bkt", secret);
	b.session_token = xdup(token);
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, NULL, err, sizeof(err)), 0);
	/* Update re-seals the secret; the old sealed value is not plain either. */
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)), 0);
	bfs_bucket_conf_clear(&b);
	mk_bucket(&cfg->buckets[0], "media", BFS_PROV_R2, "r2", cfg_secret);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	/* While open, recent pages live in the WAL. */
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	ck_assert_int_eq(access(wal, F_OK), 0);
	ck_assert(file_contains(wal, "uploads"));   /* the check can see data */
	ck_assert(!file_contains(wal, secret));
	ck_assert(!file_contains(wal, cfg_secret));
	ck_assert(!file_contains(wal, token));
	ck_assert(!file_contains(dbpath, secret));
	ck_assert(!file_contains(dbpath, cfg_secret));
	ck_assert(!file_contains(dbpath, token));
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key1, &b), 0);
	ck_assert_str_eq(b.secret_access_key, cfg_secret);
	bfs_bucket_conf_clear(&b);
	bfs_store_close(s);
	/* After the checkpoint at close, the main file. */
	ck_assert(file_contains(dbpath, "uploads"));
	ck_assert(!file_contains(dbpath, secret));
	ck_assert(!file_contains(dbpath, cfg_secret));
	ck_assert(!file_contains(dbpath, token));
	free_config(cfg);
}
END_TEST

/* owner, group and modes travel through config_json and count as changes
 * for the config sync. */
START_TEST(bucket_perms_roundtrip)
{
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(1);
	struct bfs_bucket_conf b, got;
	char err[512];

	mk_bucket(&b, "app", BFS_PROV_LOCAL, NULL, NULL);
	b.owner = xdup("nobody");
	b.group = xdup("4242");
	b.has_mode = b.has_file_mode = 1;
	b.mode = 0750;
	b.file_mode = 0;
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, "t", err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "app", key1, &got), 0);
	ck_assert_str_eq(got.owner, "nobody");
	ck_assert_str_eq(got.group, "4242");
	ck_assert(got.has_mode && got.has_file_mode && !got.has_dir_mode);
	ck_assert_uint_eq(got.mode, 0750);
	ck_assert_uint_eq(got.file_mode, 0);
	bfs_bucket_conf_clear(&got);
	/* back to the defaults */
	free(b.owner);
	b.owner = NULL;
	b.has_mode = 0;
	b.has_dir_mode = 1;
	b.dir_mode = 01777;
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "app", key1, &got), 0);
	ck_assert_ptr_null(got.owner);
	ck_assert(!got.has_mode && got.has_dir_mode);
	ck_assert_uint_eq(got.dir_mode, 01777);
	bfs_bucket_conf_clear(&got);
	bfs_bucket_conf_clear(&b);

	/* config sync: a mode change is written, the same settings are not */
	mk_bucket(&cfg->buckets[0], "cfgb", BFS_PROV_LOCAL, NULL, NULL);
	cfg->buckets[0].managed_by_config = 1;
	cfg->buckets[0].prefix = xdup("");
	cfg->buckets[0].has_mode = 1;
	cfg->buckets[0].mode = 0700;
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "cfgb", key1, &got), 0);
	ck_assert_uint_eq(got.mode, 0700);
	ck_assert(bfs_bucket_perms_same(&got, &cfg->buckets[0]));
	bfs_bucket_conf_clear(&got);
	cfg->buckets[0].mode = 0711;
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "cfgb", key1, &got), 0);
	ck_assert_uint_eq(got.mode, 0711);
	bfs_bucket_conf_clear(&got);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

START_TEST(bucket_update)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_conf b, got;
	struct bfs_config *cfg = mk_config(1);
	char err[512];

	add_bucket(s, "uploads", BFS_PROV_S3, "first");
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_CHAT, "uploads", err,
					       sizeof(err)), 0);
	/* New settings, secret kept by flag (no plain value given). */
	mk_bucket(&b, "uploads", BFS_PROV_S3, "other-remote", NULL);
	b.has_secret = 1;
	b.read_only = 1;
	b.list_metadata = BFS_LIST_META_LISTING;
	b.region = (free(b.region), xdup("eu-west-1"));
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "uploads", key1, &got), 0);
	ck_assert_str_eq(got.bucket_name, "other-remote");
	ck_assert_str_eq(got.region, "eu-west-1");
	ck_assert_int_eq(got.read_only, 1);
	ck_assert_int_eq(got.list_metadata, BFS_LIST_META_LISTING);
	ck_assert_str_eq(got.secret_access_key, "first");
	ck_assert_uint_eq(got.defaults, BFS_ROLE_BIT(BFS_ROLE_CHAT));
	bfs_bucket_conf_clear(&got);
	/* A new secret. */
	b.secret_access_key = xdup("second");
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "uploads", key1, &got), 0);
	ck_assert_str_eq(got.secret_access_key, "second");
	bfs_bucket_conf_clear(&got);
	/* Flag clear, no secret: removed. */
	bfs_secret_free(b.secret_access_key);
	b.secret_access_key = NULL;
	b.has_secret = 0;
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "uploads", key1, &got), 0);
	ck_assert_ptr_null(got.secret_access_key);
	ck_assert_int_eq(got.has_secret, 0);
	bfs_bucket_conf_clear(&got);
	bfs_bucket_conf_clear(&b);
	/* Unknown and config-managed buckets. */
	mk_bucket(&b, "ghost", BFS_PROV_LOCAL, NULL, NULL);
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)),
			 BFS_ERR_NOTFOUND);
	bfs_bucket_conf_clear(&b);
	mk_bucket(&cfg->buckets[0], "media", BFS_PROV_LOCAL, NULL, NULL);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	mk_bucket(&b, "media", BFS_PROV_LOCAL, NULL, NULL);
	ck_assert_int_eq(bfs_store_bucket_update(s, &b, key1, err, sizeof(err)),
			 BFS_ERR_PERM);
	ck_assert_str_eq(err, "bucket media is managed by the config file");
	bfs_bucket_conf_clear(&b);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

START_TEST(bucket_remove_refusals_and_force)
{
	struct bfs_store *s = open_store();
	struct bfs_assign_change ch[3];
	struct bfs_config *cfg = mk_config(1);
	struct bfs_bucket_conf b;
	struct bfs_file_row row;
	char err[512];
	sqlite3 *db;

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "spare", BFS_PROV_LOCAL, NULL);
	put_file(s, "media", "a.txt", 1);
	put_file(s, "media", "b.txt", 2);
	put_file(s, "media", "c.txt", 3);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media holds 3 indexed files; use --force");
	ck_assert_int_eq(bfs_store_file_delete(s, "media", "a.txt"), 0);
	ck_assert_int_eq(bfs_store_file_delete(s, "media", "b.txt"), 0);
	ck_assert_int_eq(bfs_store_file_delete(s, "media", "c.txt"), 0);

	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_CHAT, "media", err,
					       sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media is the default for chat; use --force");
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_CHAT, NULL, err,
					       sizeof(err)), 0);

	memset(ch, 0, sizeof(ch));
	ch[0].context_type = 0;
	strcpy(ch[0].context_id, "g1");
	ch[0].bucket = (char *)"media";
	ck_assert_int_eq(bfs_store_assign_apply(s, ch, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media is assigned to chat/g1; use --force");

	/* Everything at once, then --force. */
	put_file(s, "media", "x", 10);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_GENERAL, "media", err,
					       sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_FORMS, "media", err,
					       sizeof(err)), 0);
	ch[1].context_type = 1;
	strcpy(ch[1].context_id, "f9");
	ch[1].bucket = (char *)"media";
	ck_assert_int_eq(bfs_store_assign_apply(s, ch, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media holds 1 indexed file; is the default "
			 "for general, forms; is assigned to chat/g1 (and 1 more);"
			 " use --force");
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", NULL, &b), 0);
	bfs_bucket_conf_clear(&b);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", NULL, &b), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_file_get(s, "media", "x", &row), BFS_ERR_NOTFOUND);
	check_defaults(s, NULL, NULL, NULL);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM files"), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM assignments"), 0);
	sqlite3_close(db);
	/* Unreferenced: plain remove works; unknown: NOTFOUND. */
	ck_assert_int_eq(bfs_store_bucket_remove(s, "spare", 0, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "spare", 0, err, sizeof(err)),
			 BFS_ERR_NOTFOUND);
	/* Config-managed: refused even with force. */
	mk_bucket(&cfg->buckets[0], "cfgb", BFS_PROV_LOCAL, NULL, NULL);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "cfgb", 1, err, sizeof(err)),
			 BFS_ERR_PERM);
	ck_assert_str_eq(err, "bucket cfgb is managed by the config file");
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

/* ---- defaults and assignments ---- */

START_TEST(defaults_set_get_and_index)
{
	struct bfs_store *s = open_store();
	char err[512];
	sqlite3 *db;

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	check_defaults(s, NULL, NULL, NULL);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_GENERAL, "a", err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_CHAT, "a", err, sizeof(err)), 0);
	check_defaults(s, "a", "a", NULL);
	/* Moving a role clears it on the previous holder. */
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_GENERAL, "b", err, sizeof(err)), 0);
	check_defaults(s, "b", "a", NULL);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_FORMS, "zz", err, sizeof(err)),
			 BFS_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(err, "unknown bucket 'zz'"));
	ck_assert_int_eq(bfs_store_default_set(s, 7, "a", err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_CHAT, NULL, err, sizeof(err)), 0);
	check_defaults(s, "b", NULL, NULL);
	/* The database itself refuses a second holder. */
	db = raw_open();
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE storage_buckets SET is_default = 1"
				      " WHERE name = 'a'", NULL, NULL, NULL),
			 SQLITE_CONSTRAINT);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE storage_buckets SET is_default_chat"
				      " = 1", NULL, NULL, NULL), SQLITE_CONSTRAINT);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE storage_buckets SET"
				      " is_default_forms = 1", NULL, NULL, NULL),
			 SQLITE_CONSTRAINT);
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO storage_buckets (id, name,"
				      " provider, config_json) VALUES ('x', 'x',"
				      " 'ftp', '{}')", NULL, NULL, NULL),
			 SQLITE_CONSTRAINT);
	sqlite3_close(db);
	check_defaults(s, "b", NULL, NULL);
	bfs_store_close(s);
}
END_TEST

START_TEST(defaults_apply_all_or_nothing)
{
	struct bfs_store *s = open_store();
	struct bfs_defaults_change c;
	char err[512];

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_FORMS, "b", err, sizeof(err)), 0);
	memset(&c, 0, sizeof(c));
	c.touched[BFS_ROLE_GENERAL] = 1;
	c.bucket[BFS_ROLE_GENERAL] = (char *)"a";
	c.touched[BFS_ROLE_CHAT] = 1;
	c.bucket[BFS_ROLE_CHAT] = (char *)"x";
	c.touched[BFS_ROLE_FORMS] = 1;       /* unset forms */
	ck_assert_int_eq(bfs_store_defaults_apply(s, &c, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_msg(strstr(err, "unknown bucket 'x'") != NULL, "err: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "chat"));
	check_defaults(s, NULL, NULL, "b");
	c.bucket[BFS_ROLE_CHAT] = (char *)"a";
	ck_assert_int_eq(bfs_store_defaults_apply(s, &c, err, sizeof(err)), 0);
	check_defaults(s, "a", "a", NULL);
	/* Untouched roles stay. */
	memset(&c, 0, sizeof(c));
	c.touched[BFS_ROLE_CHAT] = 1;
	c.bucket[BFS_ROLE_CHAT] = (char *)"b";
	ck_assert_int_eq(bfs_store_defaults_apply(s, &c, err, sizeof(err)), 0);
	check_defaults(s, "a", "b", NULL);
	bfs_store_close(s);
}
END_TEST

START_TEST(assign_apply_and_list)
{
	struct bfs_store *s = open_store();
	struct bfs_assign_change c[4];
	struct bfs_assignment *a = NULL;
	size_t n = 0;
	char err[512];

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	memset(c, 0, sizeof(c));
	c[0].context_type = 1;
	strcpy(c[0].context_id, "f1");
	c[0].bucket = (char *)"a";
	c[1].context_type = 0;
	strcpy(c[1].context_id, "g2");
	c[1].bucket = (char *)"b";
	c[2].context_type = 0;
	strcpy(c[2].context_id, "g1");
	c[2].bucket = (char *)"a";
	c[3].context_type = 0;
	strcpy(c[3].context_id, "g3");
	c[3].bucket = (char *)"missing";
	/* One bad line: nothing applied. */
	ck_assert_int_eq(bfs_store_assign_apply(s, c, 4, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_msg(strstr(err, "chat/g3") && strstr(err, "unknown bucket 'missing'"),
		      "err: %s", err);
	ck_assert_int_eq(bfs_store_assign_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	bfs_assignments_free(a, n);
	ck_assert_int_eq(bfs_store_assign_apply(s, c, 3, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_assign_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(a[0].context_type, 0);
	ck_assert_str_eq(a[0].context_id, "g1");
	ck_assert_str_eq(a[0].bucket, "a");
	ck_assert_str_eq(a[1].context_id, "g2");
	ck_assert_str_eq(a[1].bucket, "b");
	ck_assert_int_eq(a[2].context_type, 1);
	ck_assert_str_eq(a[2].context_id, "f1");
	bfs_assignments_free(a, n);
	/* Upsert one, remove another. */
	c[0].context_type = 0;
	strcpy(c[0].context_id, "g1");
	c[0].bucket = (char *)"b";
	c[1].context_type = 1;
	strcpy(c[1].context_id, "f1");
	c[1].bucket = NULL;
	ck_assert_int_eq(bfs_store_assign_apply(s, c, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_assign_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].context_id, "g1");
	ck_assert_str_eq(a[0].bucket, "b");
	ck_assert_str_eq(a[1].context_id, "g2");
	bfs_assignments_free(a, n);
	/* Bad id. */
	strcpy(c[0].context_id, "bad id");
	ck_assert_int_eq(bfs_store_assign_apply(s, c, 1, err, sizeof(err)), BFS_ERR_INVAL);
	bfs_store_close(s);
}
END_TEST

/* bfs_assign_next_fn of assign_apply_each: n changes over 10 buckets
 * ("k0".."k9", so the store's 8-name memory keeps missing), then the
 * bucket named by last (NULL: none). */
struct many_changes {
	size_t i, n;
	const char *last;
	char bucket[16];
};

static int many_next(void *arg, struct bfs_assign_change *out)
{
	struct many_changes *m = arg;

	memset(out, 0, sizeof(*out));
	if (m->i > m->n || (m->i == m->n && !m->last))
		return 0;
	out->context_type = (int)(m->i % 2);
	snprintf(out->context_id, sizeof(out->context_id), "id%zu", m->i);
	if (m->i == m->n)
		snprintf(m->bucket, sizeof(m->bucket), "%s", m->last);
	else
		snprintf(m->bucket, sizeof(m->bucket), "k%zu", m->i % 10);
	out->bucket = m->bucket;
	m->i++;
	return 1;
}

START_TEST(assign_apply_each)
{
	struct bfs_store *s = open_store();
	struct many_changes m;
	struct bfs_assignment *a = NULL;
	size_t n = 0, i;
	char err[512], name[8];

	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "k%zu", i);
		add_bucket(s, name, BFS_PROV_LOCAL, NULL);
	}
	/* A missing bucket after 1000 good changes: none applied. */
	memset(&m, 0, sizeof(m));
	m.n = 1000;
	m.last = "gone";
	ck_assert_int_eq(bfs_store_assign_apply_each(s, many_next, &m, err,
						     sizeof(err)), BFS_ERR_INVAL);
	ck_assert_msg(strstr(err, "unknown bucket 'gone'"), "err: %s", err);
	ck_assert_int_eq(bfs_store_assign_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	bfs_assignments_free(a, n);
	/* Without it all 1000 go in, each to its bucket. */
	memset(&m, 0, sizeof(m));
	m.n = 1000;
	ck_assert_int_eq(bfs_store_assign_apply_each(s, many_next, &m, err,
						     sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_assign_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 1000);
	for (i = 0; i < n; i++) {
		size_t id = (size_t)strtoul(a[i].context_id + 2, NULL, 10);

		snprintf(name, sizeof(name), "k%zu", id % 10);
		ck_assert_str_eq(a[i].bucket, name);
		ck_assert_int_eq(a[i].context_type, (int)(id % 2));
	}
	bfs_assignments_free(a, n);
	bfs_store_close(s);
}
END_TEST

/* ---- config sync ---- */

static void sync_ok(struct bfs_store *s, const struct bfs_config *cfg)
{
	char err[512];

	err[0] = '\0';
	ck_assert_msg(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)) == 0,
		      "sync: %s", err);
}

static int64_t dv(struct bfs_store *s)
{
	int64_t v = -1;

	ck_assert_int_eq(bfs_store_data_version(s, &v), 0);
	return v;
}

START_TEST(sync_config_idempotent)
{
	struct bfs_store *s = open_store(), *other = open_store();
	struct bfs_config *cfg = mk_config(2);
	struct bfs_bucket_conf b;
	sqlite3 *db;
	char *sealed1, *sealed2;
	int64_t v0, v1;

	mk_bucket(&cfg->buckets[0], "media", BFS_PROV_R2, "r2b", "r2-secret");
	cfg->buckets[0].account_id = xdup("acc123");
	cfg->buckets[0].defaults = BFS_ROLE_BIT(BFS_ROLE_GENERAL) |
				   BFS_ROLE_BIT(BFS_ROLE_CHAT);
	mk_bucket(&cfg->buckets[1], "scratch", BFS_PROV_LOCAL, NULL, NULL);
	cfg->buckets[1].defaults = BFS_ROLE_BIT(BFS_ROLE_FORMS);
	v0 = dv(other);
	sync_ok(s, cfg);
	v1 = dv(other);
	ck_assert_int_ne(v0, v1);     /* a real change is seen */
	check_defaults(s, "media", "media", "scratch");
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key1, &b), 0);
	ck_assert_int_eq(b.managed_by_config, 1);
	ck_assert_str_eq(b.account_id, "acc123");
	ck_assert_str_eq(b.secret_access_key, "r2-secret");
	bfs_bucket_conf_clear(&b);
	db = raw_open();
	sealed1 = raw_text(db, "SELECT config_json FROM storage_buckets WHERE"
			   " name = 'media'");
	sqlite3_close(db);

	/*
	 * Same config again: no write at all (secret compared decrypted).
	 * updated_at is backdated first: SQLite skips rewriting identical
	 * rows, so a needless UPDATE shows only through that column.
	 */
	db = raw_open();
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE storage_buckets SET updated_at ="
				      " '2000-01-01 00:00:00'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	v1 = dv(other);
	sync_ok(s, cfg);
	sync_ok(s, cfg);
	ck_assert_int_eq(dv(other), v1);
	/* Also from a fresh handle (bucketctl's every run). */
	bfs_store_close(s);
	s = open_store();
	sync_ok(s, cfg);
	ck_assert_int_eq(dv(other), v1);
	db = raw_open();
	sealed2 = raw_text(db, "SELECT config_json FROM storage_buckets WHERE"
			   " name = 'media'");
	sqlite3_close(db);
	ck_assert_str_eq(sealed1, sealed2);
	free(sealed2);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM storage_buckets WHERE"
				 " updated_at = '2000-01-01 00:00:00'"), 2);
	sqlite3_close(db);

	/* A changed secret is re-sealed and seen. */
	bfs_secret_free(cfg->buckets[0].secret_access_key);
	cfg->buckets[0].secret_access_key = xdup("r2-secret-2");
	sync_ok(s, cfg);
	ck_assert_int_ne(dv(other), v1);
	v1 = dv(other);
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key1, &b), 0);
	ck_assert_str_eq(b.secret_access_key, "r2-secret-2");
	bfs_bucket_conf_clear(&b);
	sync_ok(s, cfg);
	ck_assert_int_eq(dv(other), v1);

	/* A changed setting is written. */
	free(cfg->buckets[1].path);
	cfg->buckets[1].path = xdup("/srv/other");
	sync_ok(s, cfg);
	ck_assert_int_ne(dv(other), v1);
	ck_assert_int_eq(bfs_store_bucket_get(s, "scratch", NULL, &b), 0);
	ck_assert_str_eq(b.path, "/srv/other");
	bfs_bucket_conf_clear(&b);
	free(sealed1);
	free_config(cfg);
	bfs_store_close(other);
	bfs_store_close(s);
}
END_TEST

START_TEST(sync_config_defaults_stick)
{
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(2);
	char err[512];

	mk_bucket(&cfg->buckets[0], "media", BFS_PROV_LOCAL, NULL, NULL);
	cfg->buckets[0].defaults = BFS_ROLE_BIT(BFS_ROLE_GENERAL);
	mk_bucket(&cfg->buckets[1], "scratch", BFS_PROV_LOCAL, NULL, NULL);
	sync_ok(s, cfg);
	check_defaults(s, "media", NULL, NULL);
	/* A runtime change survives re-syncs of an unchanged config. */
	ck_assert_int_eq(bfs_store_default_set(s, BFS_ROLE_GENERAL, "scratch", err,
					       sizeof(err)), 0);
	sync_ok(s, cfg);
	check_defaults(s, "scratch", NULL, NULL);
	/* The config's default lines change: they apply again. */
	cfg->buckets[1].defaults = BFS_ROLE_BIT(BFS_ROLE_CHAT);
	sync_ok(s, cfg);
	check_defaults(s, "media", "scratch", NULL);
	/* A dropped claim unsets the role it gave. */
	cfg->buckets[1].defaults = 0;
	sync_ok(s, cfg);
	check_defaults(s, "media", NULL, NULL);
	/* Two buckets claiming one role: refused, nothing changes. */
	cfg->buckets[0].defaults = BFS_ROLE_BIT(BFS_ROLE_FORMS);
	cfg->buckets[1].defaults = BFS_ROLE_BIT(BFS_ROLE_FORMS);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key1, err, sizeof(err)),
			 BFS_ERR_CONFIG);
	check_defaults(s, "media", NULL, NULL);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

START_TEST(sync_config_removed_buckets)
{
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(3), *cfg2 = mk_config(1);
	struct bfs_bucket_conf b;
	char err[512];

	/* A bucketctl bucket named in the config is taken over. */
	add_bucket(s, "old", BFS_PROV_LOCAL, NULL);
	mk_bucket(&cfg->buckets[0], "keep", BFS_PROV_LOCAL, NULL, NULL);
	mk_bucket(&cfg->buckets[1], "used", BFS_PROV_LOCAL, NULL, NULL);
	mk_bucket(&cfg->buckets[2], "old", BFS_PROV_S3, "bkt", "sec");
	sync_ok(s, cfg);
	ck_assert_int_eq(bfs_store_bucket_get(s, "old", key1, &b), 0);
	ck_assert_int_eq(b.managed_by_config, 1);
	ck_assert_int_eq(b.provider, BFS_PROV_S3);
	ck_assert_str_eq(b.secret_access_key, "sec");
	bfs_bucket_conf_clear(&b);
	put_file(s, "used", "f", 5);
	/* "used" and "old" leave the config: "old" has no references. */
	mk_bucket(&cfg2->buckets[0], "keep", BFS_PROV_LOCAL, NULL, NULL);
	sync_ok(s, cfg2);
	ck_assert_int_eq(bfs_store_bucket_get(s, "old", NULL, &b), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_bucket_get(s, "used", NULL, &b), 0);
	ck_assert_int_eq(b.managed_by_config, 0);
	bfs_bucket_conf_clear(&b);
	ck_assert_int_eq(bfs_store_bucket_get(s, "keep", NULL, &b), 0);
	ck_assert_int_eq(b.managed_by_config, 1);
	bfs_bucket_conf_clear(&b);
	/* Handed over to bucketctl: the admin can now remove it. */
	ck_assert_int_eq(bfs_store_bucket_remove(s, "used", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "used", 1, err, sizeof(err)), 0);
	/* Without the key a secret cannot be stored. */
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, NULL, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "master key"));
	free_config(cfg2);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

START_TEST(sync_config_new_master_key_reseals)
{
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(1);
	struct bfs_bucket_conf b;
	char err[512];

	mk_bucket(&cfg->buckets[0], "media", BFS_PROV_S3, "bkt", "sec");
	sync_ok(s, cfg);
	ck_assert_int_eq(bfs_store_sync_config(s, cfg, key2, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key2, &b), 0);
	ck_assert_str_eq(b.secret_access_key, "sec");
	bfs_bucket_conf_clear(&b);
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", key1, &b), BFS_ERR_CRYPTO);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

/* ---- file index ---- */

struct collect {
	char keys[16][64];
	int n, stop_after;
};

static int collect_cb(void *arg, const struct bfs_file_row *r)
{
	struct collect *c = arg;

	if (c->n < 16)
		snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s:%s", r->bucket, r->key);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

struct meta_seen {
	char keys[8][64];
	int64_t lm[8];
	unsigned indexed[8], has_mode[8];
	uint32_t mode[8];
	int n;
};

static int meta_collect(void *arg, const struct bfs_meta_rec *r)
{
	struct meta_seen *m = arg;

	ck_assert_int_lt(m->n, 8);
	snprintf(m->keys[m->n], sizeof(m->keys[0]), "%s", r->key);
	m->lm[m->n] = r->last_modified;
	m->indexed[m->n] = r->indexed;
	m->has_mode[m->n] = r->has_mode;
	m->mode[m->n] = r->mode;
	m->n++;
	return 0;
}

/* Known metadata: index rows and HEAD results of one folder's children;
 * last_modified recorded once per etag, cleared by a write. */
START_TEST(known_metadata)
{
	struct bfs_store *s = open_store();
	struct bfs_file_row r;
	struct bfs_meta_rec rec[3];
	struct meta_seen m;
	static const char *const keys[] = {
		"d/a", "d/sub/deeper", "d0", "dx/a", "e/a"
	};
	size_t i;

	add_bucket(s, "a", BFS_PROV_S3, NULL);
	memset(&r, 0, sizeof(r));
	r.bucket = (char *)"a";
	r.etag = (char *)"e1";
	r.size = 5;
	r.mode = 0100640;
	for (i = 0; i < 5; i++) {
		r.key = (char *)keys[i];
		ck_assert_int_eq(bfs_store_file_put(s, &r), 0);
	}
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(bfs_store_meta_folder(s, "a", "d/", meta_collect, &m), 0);
	ck_assert_int_eq(m.n, 1);
	ck_assert_str_eq(m.keys[0], "d/a");
	ck_assert_int_eq(m.lm[0], 0);
	ck_assert_uint_eq(m.indexed[0], 1);
	ck_assert_uint_eq(m.mode[0], 0100640);
	memset(rec, 0, sizeof(rec));
	rec[0].key = "d/a";                 /* index: first LastModified */
	rec[0].etag = "e1";
	rec[0].last_modified = 1700000000;
	rec[0].indexed = 1;
	rec[1].key = "d/foreign";           /* a HEAD result, no mode */
	rec[1].etag = "e2";
	rec[1].size = 9;
	rec[1].last_modified = 1700000001;
	rec[2].key = "d/wrong-etag";        /* not indexed: a HEAD result */
	rec[2].etag = "e3";
	rec[2].has_mode = 1;
	rec[2].mode = 0120777;
	rec[2].last_modified = 1700000002;
	ck_assert_int_eq(bfs_store_meta_record(s, "a", rec, 3), 0);
	/* a second record of the index row does not move its LastModified */
	rec[0].last_modified = 1800000000;
	ck_assert_int_eq(bfs_store_meta_record(s, "a", rec, 1), 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(bfs_store_meta_folder(s, "a", "d/", meta_collect, &m), 0);
	ck_assert_int_eq(m.n, 3);
	ck_assert_str_eq(m.keys[0], "d/a");
	ck_assert_int_eq(m.lm[0], 1700000000);
	ck_assert_str_eq(m.keys[1], "d/foreign");
	ck_assert_uint_eq(m.indexed[1], 0);
	ck_assert_uint_eq(m.has_mode[1], 0);
	ck_assert_str_eq(m.keys[2], "d/wrong-etag");
	ck_assert_uint_eq(m.mode[2], 0120777);
	/* a write through the mount clears it */
	r.key = (char *)"d/a";
	r.etag = (char *)"e9";
	ck_assert_int_eq(bfs_store_file_put(s, &r), 0);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(bfs_store_meta_folder(s, "a", "d/", meta_collect, &m), 0);
	ck_assert_int_eq(m.lm[0], 0);
	/* the bucket root: only "d0" among the index rows */
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(bfs_store_meta_folder(s, "a", "", meta_collect, &m), 0);
	ck_assert_int_eq(m.n, 1);
	ck_assert_str_eq(m.keys[0], "d0");
	ck_assert_int_eq(bfs_store_meta_record(s, "a", rec, 0), 0);
	bfs_store_close(s);
}
END_TEST

START_TEST(file_index_rows)
{
	struct bfs_store *s = open_store();
	struct bfs_file_row r, got;

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	memset(&r, 0, sizeof(r));
	r.bucket = (char *)"a";
	r.key = (char *)"docs/x.txt";
	r.size = 5000000000ULL;
	r.etag = (char *)"\"abc\"";
	r.content_type = (char *)"text/plain";
	r.mode = 0100640;
	r.uid = 1001;
	r.gid = 1002;
	r.mtime = 1700000123;
	r.created_at = 1600000000;
	r.updated_at = 1600000500;
	ck_assert_int_eq(bfs_store_file_put(s, &r), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "docs/x.txt", &got), 0);
	ck_assert_str_eq(got.bucket, "a");
	ck_assert_str_eq(got.key, "docs/x.txt");
	ck_assert_uint_eq(got.size, 5000000000ULL);
	ck_assert_str_eq(got.etag, "\"abc\"");
	ck_assert_str_eq(got.content_type, "text/plain");
	ck_assert_uint_eq(got.mode, 0100640);
	ck_assert_uint_eq(got.uid, 1001);
	ck_assert_uint_eq(got.gid, 1002);
	ck_assert_int_eq(got.mtime, 1700000123);
	ck_assert_int_eq(got.created_at, 1600000000);
	ck_assert_int_eq(got.updated_at, 1600000500);
	bfs_file_row_clear(&got);
	/* Update keeps created_at; 0 timestamps mean now. */
	r.size = 7;
	r.created_at = 0;
	r.updated_at = 0;
	ck_assert_int_eq(bfs_store_file_put(s, &r), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "docs/x.txt", &got), 0);
	ck_assert_uint_eq(got.size, 7);
	ck_assert_int_eq(got.created_at, 1600000000);
	ck_assert_int_gt(got.updated_at, 1700000000);
	bfs_file_row_clear(&got);
	/* Attributes. */
	ck_assert_int_eq(bfs_store_file_set_attr(s, "a", "docs/x.txt", 0100600,
						 5, 6, 42), 0);
	ck_assert_int_eq(bfs_store_file_set_attr(s, "a", "absent", 0, 0, 0, 0), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "docs/x.txt", &got), 0);
	ck_assert_uint_eq(got.mode, 0100600);
	ck_assert_uint_eq(got.uid, 5);
	ck_assert_uint_eq(got.gid, 6);
	ck_assert_int_eq(got.mtime, 42);
	bfs_file_row_clear(&got);
	/* Unknown bucket; absent rows. */
	r.bucket = (char *)"nope";
	ck_assert_int_eq(bfs_store_file_put(s, &r), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "other", &got), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_file_delete(s, "a", "other"), 0);
	ck_assert_int_eq(bfs_store_file_delete(s, "a", "docs/x.txt"), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "docs/x.txt", &got), BFS_ERR_NOTFOUND);
	bfs_store_close(s);
}
END_TEST

START_TEST(file_rename_and_list)
{
	struct bfs_store *s = open_store();
	struct bfs_file_row got;
	struct collect c;

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	put_file(s, "a", "one", 1);
	put_file(s, "a", "two", 2);
	put_file(s, "b", "dst", 99);
	/* Replaces the destination row. */
	ck_assert_int_eq(bfs_store_file_rename(s, "a", "one", "b", "dst"), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "b", "dst", &got), 0);
	ck_assert_uint_eq(got.size, 1);
	bfs_file_row_clear(&got);
	ck_assert_int_eq(bfs_store_file_get(s, "a", "one", &got), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_file_rename(s, "a", "two", "a", "three"), 0);
	ck_assert_int_eq(bfs_store_file_rename(s, "a", "three", "a", "three"), 0);
	/* Absent source: NOTFOUND and the destination stays. */
	ck_assert_int_eq(bfs_store_file_rename(s, "a", "ghost", "b", "dst"),
			 BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_file_get(s, "b", "dst", &got), 0);
	bfs_file_row_clear(&got);
	ck_assert_int_eq(bfs_store_file_rename(s, "a", "three", "zz", "x"),
			 BFS_ERR_NOTFOUND);

	put_file(s, "a", "p/1", 1);
	put_file(s, "a", "p/2", 1);
	put_file(s, "a", "q/1", 1);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_file_list(s, NULL, NULL, collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 5);
	ck_assert_str_eq(c.keys[0], "a:p/1");
	ck_assert_str_eq(c.keys[1], "a:p/2");
	ck_assert_str_eq(c.keys[2], "a:q/1");
	ck_assert_str_eq(c.keys[3], "a:three");
	ck_assert_str_eq(c.keys[4], "b:dst");
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_file_list(s, "a", "p/", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 2);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_file_list(s, "b", NULL, collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 1);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	ck_assert_int_eq(bfs_store_file_list(s, NULL, NULL, collect_cb, &c), 7);
	ck_assert_int_eq(c.n, 2);
	bfs_store_close(s);
}
END_TEST

START_TEST(file_rename_prefix_special_chars)
{
	struct bfs_store *s = open_store();
	struct bfs_file_row got;
	struct collect c;

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	/* LIKE wildcards and multibyte text in the folder name. */
	put_file(s, "a", "d%_\xc3\xa9/x", 1);
	put_file(s, "a", "d%_\xc3\xa9/sub/y", 2);
	put_file(s, "a", "dXY\xc3\xa9/x", 3);      /* would match LIKE 'd%_é/%' */
	put_file(s, "a", "d%_\xc3\xa9", 4);        /* the name without '/' */
	put_file(s, "b", "new/x", 99);          /* in the way: replaced */
	put_file(s, "b", "new/keep", 98);
	ck_assert_int_eq(bfs_store_file_rename_prefix(s, "a", "d%_\xc3\xa9/", "b",
						      "new/"), 0);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_file_list(s, NULL, NULL, collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 5);
	ck_assert_str_eq(c.keys[0], "a:d%_\xc3\xa9");
	ck_assert_str_eq(c.keys[1], "a:dXY\xc3\xa9/x");
	ck_assert_str_eq(c.keys[2], "b:new/keep");
	ck_assert_str_eq(c.keys[3], "b:new/sub/y");
	ck_assert_str_eq(c.keys[4], "b:new/x");
	ck_assert_int_eq(bfs_store_file_get(s, "b", "new/x", &got), 0);
	ck_assert_uint_eq(got.size, 1);
	bfs_file_row_clear(&got);
	/* Within one bucket; nested prefixes refused; same prefix no-op. */
	ck_assert_int_eq(bfs_store_file_rename_prefix(s, "b", "new/", "b", "n2/"), 0);
	ck_assert_int_eq(bfs_store_file_get(s, "b", "n2/sub/y", &got), 0);
	bfs_file_row_clear(&got);
	ck_assert_int_eq(bfs_store_file_rename_prefix(s, "b", "n2/", "b", "n2/sub/"),
			 BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_store_file_rename_prefix(s, "b", "n2/", "b", "n2/"), 0);
	ck_assert_int_eq(bfs_store_file_rename_prefix(s, "b", "n2/", "q", "n2/"),
			 BFS_ERR_NOTFOUND);
	/* Prefix listing is byte-exact too. */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_file_list(s, "a", "d%_", collect_cb, &c), 0);
	ck_assert_int_eq(c.n, 1);
	bfs_store_close(s);
}
END_TEST

START_TEST(stats_per_bucket)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_stats *st = NULL;
	size_t n = 0;

	add_bucket(s, "b", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "empty", BFS_PROV_LOCAL, NULL);
	put_file(s, "a", "1", 10);
	put_file(s, "a", "2", 20);
	put_file(s, "b", "1", 5);
	ck_assert_int_eq(bfs_store_stats(s, NULL, &st, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(st[0].bucket, "a");
	ck_assert_uint_eq(st[0].files, 2);
	ck_assert_uint_eq(st[0].bytes, 30);
	ck_assert_str_eq(st[1].bucket, "b");
	ck_assert_uint_eq(st[1].files, 1);
	ck_assert_uint_eq(st[1].bytes, 5);
	ck_assert_str_eq(st[2].bucket, "empty");
	ck_assert_uint_eq(st[2].files, 0);
	ck_assert_uint_eq(st[2].bytes, 0);
	bfs_bucket_stats_free(st, n);
	ck_assert_int_eq(bfs_store_stats(s, "b", &st, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(st[0].bytes, 5);
	bfs_bucket_stats_free(st, n);
	ck_assert_int_eq(bfs_store_stats(s, "nope", &st, &n), BFS_ERR_NOTFOUND);
	ck_assert_ptr_null(st);
	bfs_store_close(s);
}
END_TEST

struct worker_arg {
	struct bfs_store *s;
	int id;
};

static void *put_worker(void *p)
{
	struct worker_arg *w = p;
	struct bfs_file_row r;
	char key[32];
	int i;

	memset(&r, 0, sizeof(r));
	r.bucket = (char *)"a";
	r.key = key;
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "t%d/%d", w->id, i);
		r.size = (uint64_t)i;
		if (bfs_store_file_put(w->s, &r) != 0)
			return (void *)1;
		if (i % 10 == 0 && bfs_store_file_rename(w->s, "a", key, "a",
							 "tmp") != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(threads_share_one_handle)
{
	struct bfs_store *s = open_store();
	struct worker_arg w[4];
	struct bfs_bucket_stats *st = NULL;
	pthread_t t[4];
	void *ret;
	size_t n;
	int i;

	add_bucket(s, "a", BFS_PROV_LOCAL, NULL);
	for (i = 0; i < 4; i++) {
		w[i].s = s;
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, put_worker, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(bfs_store_stats(s, "a", &st, &n), 0);
	/* 400 puts, 40 of them renamed onto the one "tmp" row. */
	ck_assert_uint_eq(st[0].files, 400 - 40 + 1);
	bfs_bucket_stats_free(st, n);
	bfs_store_close(s);
}
END_TEST

/* ---- upload journal ---- */

/* Fills e with borrowed strings (nothing to free). */
static void mk_entry(struct bfs_journal_entry *e, const char *bucket,
		     const char *key, const char *staging, const char *etag,
		     int64_t created_at)
{
	memset(e, 0, sizeof(*e));
	e->bucket = (char *)bucket;
	e->key = (char *)key;
	e->staging_path = (char *)staging;
	e->base_etag = (char *)etag;
	e->size = 1234;
	e->mode = 0100640;
	e->uid = 1001;
	e->gid = 1002;
	e->mtime = 1700000000;
	e->created_at = created_at;
}

/* The journal as "bucket:key" strings joined by spaces, oldest first. */
static void journal_keys(struct bfs_store *s, char *out, size_t len)
{
	struct bfs_journal_entry *a = NULL;
	size_t n = 0, i, at = 0;

	out[0] = '\0';
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert(n == 0 || a != NULL);
	for (i = 0; i < n; i++) {
		snprintf(out + at, len - at, "%s%s:%s", i ? " " : "", a[i].bucket,
			 a[i].key);
		at = strlen(out);
	}
	bfs_journal_entries_free(a, n);
}

START_TEST(journal_put_fail_done)
{
	struct bfs_store *s = open_store();
	struct bfs_journal_entry e, *a = NULL;
	size_t n = 7;
	time_t before = time(NULL);

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_ptr_null(a);
	ck_assert_uint_eq(n, 0);

	mk_entry(&e, "media", "docs/a.txt", "/var/stage/1", "\"e1\"", 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_gt(a[0].id, 0);
	ck_assert_str_eq(a[0].bucket, "media");
	ck_assert_str_eq(a[0].key, "docs/a.txt");
	ck_assert_str_eq(a[0].staging_path, "/var/stage/1");
	ck_assert_str_eq(a[0].base_etag, "\"e1\"");
	ck_assert_uint_eq(a[0].size, 1234);
	ck_assert_uint_eq(a[0].mode, 0100640);
	ck_assert_uint_eq(a[0].uid, 1001);
	ck_assert_uint_eq(a[0].gid, 1002);
	ck_assert_int_eq(a[0].mtime, 1700000000);
	ck_assert_int_ge(a[0].created_at, before);
	ck_assert_int_le(a[0].created_at, time(NULL));
	ck_assert_int_ge(a[0].updated_at, a[0].created_at);
	ck_assert_int_eq(a[0].attempts, 0);
	ck_assert_ptr_null(a[0].last_error);
	bfs_journal_entries_free(a, n);

	/* Failures count up and keep the last reason. */
	ck_assert_int_eq(bfs_store_journal_fail(s, "media", "docs/a.txt",
						"connection refused"), 0);
	ck_assert_int_eq(bfs_store_journal_fail(s, "media", "docs/a.txt",
						"503 SlowDown"), 0);
	/* New data for the same file: upsert keeps created_at, attempts and
	 * the last error, takes the new staging file, etag and attributes. */
	mk_entry(&e, "media", "docs/a.txt", "/var/stage/2", NULL, 42);
	e.size = 99;
	e.attempts = 17;
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].staging_path, "/var/stage/2");
	ck_assert_ptr_null(a[0].base_etag);
	ck_assert_uint_eq(a[0].size, 99);
	ck_assert_int_ge(a[0].created_at, before);
	ck_assert_int_eq(a[0].attempts, 2);
	ck_assert_str_eq(a[0].last_error, "503 SlowDown");
	bfs_journal_entries_free(a, n);

	/* Refusals. */
	mk_entry(&e, "nosuch", "x", "/var/stage/3", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), BFS_ERR_NOTFOUND);
	mk_entry(&e, "media", "x", NULL, NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_store_journal_fail(s, "media", "absent", "e"),
			 BFS_ERR_NOTFOUND);

	/* done deletes; absent rows and buckets are fine. */
	ck_assert_int_eq(bfs_store_journal_done(s, "media", "docs/a.txt"), 0);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(bfs_store_journal_done(s, "media", "docs/a.txt"), 0);
	ck_assert_int_eq(bfs_store_journal_done(s, "nosuch", "k"), 0);
	bfs_store_close(s);
}
END_TEST

/* The bookkeeping after an upload: index row and journal end together. */
START_TEST(upload_done_one_transaction)
{
	struct bfs_store *s = open_store();
	struct bfs_journal_entry e, *a = NULL;
	struct bfs_file_row r, got;
	size_t n = 0;

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	mk_entry(&e, "media", "k", "/var/stage/1", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	memset(&r, 0, sizeof(r));
	r.bucket = (char *)"media";
	r.key = (char *)"k";
	r.size = 7;
	r.etag = (char *)"\"e2\"";
	r.mode = 0100644;

	/* An index row alone: the journal row stays. */
	ck_assert_int_eq(bfs_store_upload_done(s, &r, NULL), 0);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	bfs_journal_entries_free(a, n);

	/* Both: the row is indexed and the journal row gone. */
	ck_assert_int_eq(bfs_store_upload_done(s, &r, "k"), 0);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	memset(&got, 0, sizeof(got));
	ck_assert_int_eq(bfs_store_file_get(s, "media", "k", &got), 0);
	ck_assert_uint_eq(got.size, 7);
	ck_assert_str_eq(got.etag, "\"e2\"");
	bfs_file_row_clear(&got);

	/* All or nothing: an unknown bucket keeps the other bucket's row. */
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	r.bucket = (char *)"nosuch";
	ck_assert_int_eq(bfs_store_upload_done(s, &r, "k"), BFS_ERR_NOTFOUND);
	r.bucket = NULL;
	ck_assert_int_eq(bfs_store_upload_done(s, &r, "k"), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	bfs_journal_entries_free(a, n);
	bfs_store_close(s);
}
END_TEST

START_TEST(journal_order_and_renames)
{
	struct bfs_store *s = open_store();
	struct bfs_journal_entry e, *a = NULL;
	size_t n = 0;
	char keys[512];

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "spare", BFS_PROV_LOCAL, NULL);
	mk_entry(&e, "media", "c", "/s/c", NULL, 300);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	mk_entry(&e, "spare", "a", "/s/a", NULL, 100);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	mk_entry(&e, "media", "b", "/s/b", NULL, 200);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	/* Same created_at: insertion order (id) decides. */
	mk_entry(&e, "media", "a2", "/s/a2", NULL, 100);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "spare:a media:a2 media:b media:c");

	/* A file moved to another bucket keeps its row and age. */
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "c", "spare", "d/c"), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "spare:a media:a2 media:b spare:d/c");
	/* Onto an existing row: replaced (rename(2) replaced that file). */
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "b", "spare", "a"), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "media:a2 spare:a spare:d/c");
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(a[1].staging_path, "/s/b");
	ck_assert_int_eq(a[1].created_at, 200);
	bfs_journal_entries_free(a, n);
	/* Absent source or bucket: nothing changes. */
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "zz", "media", "y"),
			 BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "a2", "nosuch", "y"),
			 BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "a2", "media", "a2"), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "media:a2 spare:a spare:d/c");

	/* A folder rename moves the rows under it, and only those. */
	mk_entry(&e, "spare", "d/sub/e", "/s/e", NULL, 400);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	mk_entry(&e, "spare", "dx", "/s/dx", NULL, 500);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_journal_rename_prefix(s, "spare", "d/", "media",
							 "new%/"), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "media:a2 spare:a media:new%/c media:new%/sub/e"
			 " spare:dx");
	ck_assert_int_eq(bfs_store_journal_rename_prefix(s, "media", "new%/",
							 "media", "new%/in/"),
			 BFS_ERR_INVAL);
	bfs_store_close(s);
}
END_TEST

/*
 * The durability contract as far as a test can see it: the row is
 * committed (another connection reads it) when put returns, and stays
 * after the handle is closed.  That the WAL is also fsync'd at that commit
 * (synchronous=FULL) cannot be seen from here: under strace, each journal
 * write shows one fdatasync of the -wal file and an index write none.
 */
START_TEST(journal_durable_for_other_connections)
{
	struct bfs_store *s = open_store();
	struct bfs_journal_entry e;
	sqlite3 *db;
	char *txt;

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	db = raw_open();
	mk_entry(&e, "media", "k", "/s/k", "\"e\"", 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM upload_journal"), 1);
	txt = raw_text(db, "SELECT staging_path FROM upload_journal");
	ck_assert_str_eq(txt, "/s/k");
	free(txt);
	ck_assert_int_eq(bfs_store_journal_fail(s, "media", "k", "boom"), 0);
	ck_assert_int_eq(raw_int(db, "SELECT attempts FROM upload_journal"), 1);
	ck_assert_int_eq(bfs_store_journal_done(s, "media", "k"), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM upload_journal"), 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	bfs_store_close(s);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM upload_journal"), 1);
	sqlite3_close(db);
	s = open_store();
	ck_assert_int_eq(bfs_store_journal_done(s, "media", "k"), 0);
	bfs_store_close(s);
}
END_TEST

/* The schema of version 1 exactly as migration 1 built it. */
static const char v1_schema[] =
	"CREATE TABLE storage_buckets ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" description TEXT,"
	" provider TEXT NOT NULL CHECK (provider IN ('r2','s3','local')),"
	" is_default BOOLEAN NOT NULL DEFAULT 0,"
	" is_default_chat BOOLEAN NOT NULL DEFAULT 0,"
	" is_default_forms BOOLEAN NOT NULL DEFAULT 0,"
	" config_json TEXT NOT NULL,"
	" managed_by TEXT NOT NULL DEFAULT 'bucketctl'"
	"  CHECK (managed_by IN ('bucketctl','config')),"
	" created_by TEXT,"
	" created_at DATETIME DEFAULT CURRENT_TIMESTAMP,"
	" updated_at DATETIME DEFAULT CURRENT_TIMESTAMP);"
	"CREATE UNIQUE INDEX storage_buckets_one_default"
	" ON storage_buckets (is_default) WHERE is_default = 1;"
	"CREATE UNIQUE INDEX storage_buckets_one_default_chat"
	" ON storage_buckets (is_default_chat) WHERE is_default_chat = 1;"
	"CREATE UNIQUE INDEX storage_buckets_one_default_forms"
	" ON storage_buckets (is_default_forms) WHERE is_default_forms = 1;"
	"CREATE TABLE files ("
	" id INTEGER PRIMARY KEY,"
	" bucket_id TEXT NOT NULL REFERENCES storage_buckets(id),"
	" key TEXT NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0,"
	" etag TEXT,"
	" content_type TEXT,"
	" mode INTEGER,"
	" uid INTEGER,"
	" gid INTEGER,"
	" mtime INTEGER,"
	" created_at DATETIME DEFAULT CURRENT_TIMESTAMP,"
	" updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,"
	" UNIQUE (bucket_id, key));"
	"CREATE TABLE assignments ("
	" context_type TEXT NOT NULL CHECK (context_type IN ('chat','form')),"
	" context_id TEXT NOT NULL,"
	" bucket_id TEXT NOT NULL REFERENCES storage_buckets(id),"
	" PRIMARY KEY (context_type, context_id));"
	"CREATE INDEX assignments_bucket ON assignments (bucket_id);"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);"
	"INSERT INTO storage_buckets (id, name, provider, is_default,"
	" config_json) VALUES ('0123456789abcdef0123456789abcdef', 'media',"
	" 'local', 1, json_object('path', '/srv/media', 'path_style', json('false'),"
	" 'read_only', json('false')));"
	"INSERT INTO files (bucket_id, key, size, etag) VALUES"
	" ('0123456789abcdef0123456789abcdef', 'docs/old.txt', 77, '\"old\"');"
	"INSERT INTO assignments VALUES ('chat', 'g1',"
	" '0123456789abcdef0123456789abcdef');"
	"PRAGMA user_version = 1;";

START_TEST(journal_upgrade_from_version_1)
{
	struct bfs_store *s;
	struct bfs_bucket_conf b;
	struct bfs_file_row row;
	struct bfs_journal_entry e;
	sqlite3 *db = NULL;
	char keys[128], err[512];

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL,
				      NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	s = open_store();
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE"
				 " type = 'table' AND name = 'upload_journal'"), 1);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM assignments"), 1);
	sqlite3_close(db);
	/* Old data reads as before. */
	ck_assert_int_eq(bfs_store_bucket_get(s, "media", NULL, &b), 0);
	ck_assert_str_eq(b.path, "/srv/media");
	ck_assert_uint_eq(b.defaults, BFS_ROLE_BIT(BFS_ROLE_GENERAL));
	bfs_bucket_conf_clear(&b);
	ck_assert_int_eq(bfs_store_file_get(s, "media", "docs/old.txt", &row), 0);
	ck_assert_uint_eq(row.size, 77);
	ck_assert_str_eq(row.etag, "\"old\"");
	bfs_file_row_clear(&row);
	/* The new table works with the old bucket, which it now holds. */
	mk_entry(&e, "media", "docs/new.txt", "/s/new", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "media:docs/new.txt");
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	bfs_store_close(s);
	/* Reopening at version 2 runs nothing again. */
	s = open_store();
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "media:docs/new.txt");
	bfs_store_close(s);
}
END_TEST

/* Upload ids: recorded with the row, cleared by renames, orphans listed. */
START_TEST(mpu_ids_follow_the_journal)
{
	struct bfs_store *s = open_store();
	struct bfs_journal_entry e, *a = NULL;
	struct bfs_mpu_rec *o = NULL;
	size_t n = 0;

	ck_assert_int_ge(bfs_store_schema_version(), 3);
	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	mk_entry(&e, "media", "big", "/s/1", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	mk_entry(&e, "media", "other", "/s/2", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_mpu_begin(s, "media", "big", "id-1",
					     8 << 20, 1), 0);
	/* a row that is gone: the id stays recorded, as an orphan */
	ck_assert_int_eq(bfs_store_mpu_begin(s, "media", "gone", "id-0",
					     8 << 20, 0), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].key, "big");
	ck_assert_str_eq(a[0].upload_id, "id-1");
	ck_assert_uint_eq(a[0].part_size, 8 << 20);
	ck_assert_int_eq(a[0].part_grow, 1);
	ck_assert_ptr_null(a[1].upload_id);
	bfs_journal_entries_free(a, n);
	/* a later put of the row's attributes keeps the id */
	mk_entry(&e, "media", "big", "/s/1", NULL, 0);
	e.size = 99;
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_mpu_orphans(s, &o, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(o[0].upload_id, "id-0");
	ck_assert_str_eq(o[0].key, "gone");
	ck_assert_str_eq(o[0].bucket, "media");
	bfs_mpu_recs_free(o, n);
	ck_assert_int_eq(bfs_store_mpu_forget(s, "id-0"), 0);
	/* clear only with the matching id */
	ck_assert_int_eq(bfs_store_mpu_clear(s, "media", "big", "id-x"), 0);
	ck_assert_int_eq(bfs_store_mpu_orphans(s, &o, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* a rename drops the id from the row: it belongs to the old key */
	ck_assert_int_eq(bfs_store_journal_rename(s, "media", "big", "media",
						  "big2"), 0);
	ck_assert_int_eq(bfs_store_mpu_orphans(s, &o, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(o[0].upload_id, "id-1");
	ck_assert_str_eq(o[0].key, "big");
	bfs_mpu_recs_free(o, n);
	ck_assert_int_eq(bfs_store_journal_list(s, &a, &n), 0);
	ck_assert_str_eq(a[0].key, "big2");
	ck_assert_ptr_null(a[0].upload_id);
	bfs_journal_entries_free(a, n);
	/* a prefix rename does the same; done rows free their ids */
	ck_assert_int_eq(bfs_store_mpu_begin(s, "media", "big2", "id-2",
					     8 << 20, 0), 0);
	ck_assert_int_eq(bfs_store_mpu_begin(s, "media", "other", "id-3",
					     8 << 20, 0), 0);
	ck_assert_int_eq(bfs_store_journal_rename_prefix(s, "media", "big",
							 "media", "d/big"), 0);
	ck_assert_int_eq(bfs_store_journal_done(s, "media", "other"), 0);
	ck_assert_int_eq(bfs_store_mpu_orphans(s, &o, &n), 0);
	ck_assert_uint_eq(n, 3);
	bfs_mpu_recs_free(o, n);
	bfs_store_close(s);
}
END_TEST

START_TEST(journal_holds_bucket)
{
	struct bfs_store *s = open_store();
	struct bfs_config *cfg = mk_config(1), *cfg0 = mk_config(0);
	struct bfs_journal_entry e;
	struct bfs_bucket_conf b;
	char err[512], keys[256];
	sqlite3 *db;

	add_bucket(s, "media", BFS_PROV_LOCAL, NULL);
	add_bucket(s, "spare", BFS_PROV_LOCAL, NULL);
	mk_entry(&e, "media", "a", "/s/a", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media has 1 pending upload; use --force");
	mk_entry(&e, "media", "b", "/s/b", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	mk_entry(&e, "spare", "c", "/s/c", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	put_file(s, "media", "x", 1);
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 0, err, sizeof(err)),
			 BFS_ERR_BUSY);
	ck_assert_str_eq(err, "bucket media has 2 pending uploads; holds 1 "
			 "indexed file; use --force");
	/* --force drops its journal rows (only its own). */
	ck_assert_int_eq(bfs_store_bucket_remove(s, "media", 1, err, sizeof(err)), 0);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "spare:c");
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM upload_journal"), 1);
	sqlite3_close(db);

	/* A config bucket with pending uploads that leaves the config is
	 * kept (handed to bucketctl), never dropped with its data. */
	mk_bucket(&cfg->buckets[0], "cfgb", BFS_PROV_LOCAL, NULL, NULL);
	sync_ok(s, cfg);
	mk_entry(&e, "cfgb", "p", "/s/p", NULL, 0);
	ck_assert_int_eq(bfs_store_journal_put(s, &e), 0);
	sync_ok(s, cfg0);
	ck_assert_int_eq(bfs_store_bucket_get(s, "cfgb", NULL, &b), 0);
	ck_assert_int_eq(b.managed_by_config, 0);
	bfs_bucket_conf_clear(&b);
	journal_keys(s, keys, sizeof(keys));
	ck_assert_str_eq(keys, "spare:c cfgb:p");
	free_config(cfg0);
	free_config(cfg);
	bfs_store_close(s);
}
END_TEST

/* ---- pure journal helpers ---- */

static void conflict_ok(const char *key, time_t when, const char *want)
{
	char *out = (char *)1;

	ck_assert_int_eq(bfs_conflict_key(key, when, &out), 0);
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(bfs_key_check(out, 0), 0);
	free(out);
}

START_TEST(journal_conflict_names)
{
	char key[BFS_KEY_MAX + 1], want[BFS_KEY_MAX + 1], *out = (char *)1;
	const char *seg;
	size_t i;

	/* 1700000000 is 2023-11-14 22:13:20 UTC, whatever TZ says. */
	setenv("TZ", "Pacific/Auckland", 1);
	tzset();
	conflict_ok("docs/report.pdf", 1700000000,
		    "docs/report.pdf.conflict-20231114T221320");
	conflict_ok("a", 0, "a.conflict-19700101T000000");
	conflict_ok("chat/g1/.hidden", 1700000000,
		    "chat/g1/.hidden.conflict-20231114T221320");
	unsetenv("TZ");
	tzset();

	/* A 255-byte name: the stem shrinks, ".pdf" and the suffix stay. */
	memset(key, 'x', 251);
	strcpy(key + 251, ".pdf");
	memset(want, 'x', 226);
	strcpy(want + 226, ".pdf.conflict-20231114T221320");
	ck_assert_uint_eq(strlen(want), BFS_NAME_MAX);
	conflict_ok(key, 1700000000, want);
	/* Cut at a character boundary: "a" then 127 two-byte "é". */
	key[0] = 'a';
	for (i = 0; i < 127; i++)
		memcpy(key + 1 + 2 * i, "\xc3\xa9", 2);
	key[255] = '\0';
	ck_assert_int_eq(bfs_conflict_key(key, 1700000000, &out), 0);
	ck_assert_uint_eq(strlen(out), 229 + 25);
	ck_assert_int_eq(memcmp(out, key, 229), 0);
	ck_assert_str_eq(out + 229, ".conflict-20231114T221320");
	free(out);
	/* A long extension is not kept whole: plain cut. */
	memset(key, 'y', 220);
	strcpy(key + 220, ".averyveryverylongextension");
	ck_assert_int_eq(bfs_conflict_key(key, 1700000000, &out), 0);
	ck_assert_uint_eq(strlen(out), BFS_NAME_MAX);
	ck_assert_int_eq(memcmp(out, key, 230), 0);
	free(out);

	/* The whole-key limit: 990 bytes of folders leave 9 for NAME. */
	key[0] = '\0';
	for (i = 0; i < 4; i++) {
		memset(key + strlen(key), 'd', 246);
		strcpy(key + 246 * (i + 1) + i, "/");
	}
	ck_assert_uint_eq(strlen(key), 988);
	strcat(key, "ee/abcdefghijklmnop.txt");
	seg = strrchr(key, '/') + 1;
	ck_assert_uint_eq((size_t)(seg - key), 991);
	ck_assert_int_eq(bfs_key_check(key, 0), 0);
	ck_assert_int_eq(bfs_conflict_key(key, 1700000000, &out), 0);
	ck_assert_uint_eq(strlen(out), BFS_KEY_MAX);
	ck_assert_str_eq(out + 991, "abcd.txt.conflict-20231114T221320");
	free(out);
	/* No room for even one byte of NAME. */
	key[1000] = '\0';
	key[999] = 'n';
	key[998] = '/';
	ck_assert_int_eq(bfs_key_check(key, 0), 0);
	out = (char *)1;
	ck_assert_int_eq(bfs_conflict_key(key, 1700000000, &out),
			 BFS_ERR_NAMETOOLONG);
	ck_assert_ptr_null(out);

	/* Unsafe input is refused, not repaired. */
	ck_assert_int_eq(bfs_conflict_key("a//b", 0, &out), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_conflict_key("", 0, &out), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_conflict_key("dir/", 0, &out), BFS_ERR_INVAL);
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(journal_age_strings)
{
	static const struct { int64_t s; const char *want; } v[] = {
		{ -5, "0s" }, { 0, "0s" }, { 5, "5s" }, { 59, "59s" },
		{ 60, "1m" }, { 3599, "59m" }, { 3600, "1h" },
		{ 48 * 3600 - 1, "47h" }, { 48 * 3600, "2d" },
		{ 400 * 86400 + 5, "400d" },
	};
	char out[16];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bfs_journal_age_str(v[i].s, out, sizeof(out));
		ck_assert_str_eq(out, v[i].want);
	}
	bfs_journal_age_str(123456, out, 2);      /* 34h, capped */
	ck_assert_str_eq(out, "3");
}
END_TEST

/* ---- context views: the index queries ---- */

struct ctx_seen {
	char rows[16][160];
	size_t n;
};

static int ctx_collect(void *arg, const struct bfs_ctx_row *r)
{
	struct ctx_seen *c = arg;

	ck_assert_uint_lt(c->n, 16);
	snprintf(c->rows[c->n++], sizeof(c->rows[0]), "%s %s %d %llu %llu",
		 r->bucket, r->rel, r->exact, (unsigned long long)r->size,
		 (unsigned long long)r->files);
	return 0;
}

static int note_collect(void *arg, const char *k, const char *v)
{
	struct ctx_seen *c = arg;

	snprintf(c->rows[c->n++], sizeof(c->rows[0]), "%s=%s", k, v);
	return 0;
}

START_TEST(ctx_queries)
{
	struct bfs_store *s = open_store();
	struct bfs_bucket_conf b;
	struct ctx_seen c;
	char err[512];

	mk_bucket(&b, "aa", BFS_PROV_S3, "remote-a", NULL);
	free(b.prefix);
	b.prefix = xdup("app/");
	ck_assert_int_eq(bfs_store_bucket_add(s, &b, key1, NULL, err,
					      sizeof(err)), 0);
	bfs_bucket_conf_clear(&b);
	add_bucket(s, "bb", BFS_PROV_LOCAL, NULL);
	put_file(s, "aa", "app/chat/g1/x", 3);
	put_file(s, "aa", "app/chat/g1/sub/y", 4);
	put_file(s, "aa", "app/chat/g10/z", 1);
	put_file(s, "aa", "app/other", 1);
	put_file(s, "aa", "chat/g1/not-under-the-prefix", 1);
	put_file(s, "bb", "chat/g1/x", 5);
	put_file(s, "bb", "chat/g1/w", 6);
	put_file(s, "bb", "form/f1/q", 2);

	/* where: the file itself in both, a folder in aa only, nothing */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_where(s, "chat/g1/x", ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.rows[0], "aa chat/g1/x 1 3 0");
	ck_assert_str_eq(c.rows[1], "bb chat/g1/x 1 5 0");
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_where(s, "chat/g1/sub", ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_str_eq(c.rows[0], "aa chat/g1/sub 0 0 0");
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_where(s, "chat/g1/nope", ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 0);

	/* folder: every bucket's rows below, prefixes stripped; g10 is not
	 * below g1 */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_folder(s, "chat/g1/", NULL, ctx_collect,
					      &c), 0);
	ck_assert_uint_eq(c.n, 4);
	ck_assert_str_eq(c.rows[0], "aa chat/g1/sub/y 1 4 0");
	ck_assert_str_eq(c.rows[1], "aa chat/g1/x 1 3 0");
	ck_assert_str_eq(c.rows[2], "bb chat/g1/w 1 6 0");
	ck_assert_str_eq(c.rows[3], "bb chat/g1/x 1 5 0");
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_folder(s, "chat/g1/", "aa", ctx_collect,
					      &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_int_eq(bfs_store_ctx_folder(s, "chat/g1", NULL, ctx_collect,
					      &c), BFS_ERR_INVAL);

	/* ids */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_ids(s, 0, ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.rows[0], " g1 0 0 0");
	ck_assert_str_eq(c.rows[1], " g10 0 0 0");
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_ids(s, 1, ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_str_eq(c.rows[0], " f1 0 0 0");

	/* stats per context and bucket */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_ctx_stats(s, ctx_collect, &c), 0);
	ck_assert_uint_eq(c.n, 4);
	ck_assert_str_eq(c.rows[0], "aa chat/g1 0 7 2");
	ck_assert_str_eq(c.rows[1], "bb chat/g1 0 11 2");
	ck_assert_str_eq(c.rows[2], "aa chat/g10 0 1 1");
	ck_assert_str_eq(c.rows[3], "bb form/f1 0 2 1");

	/* move notes */
	ck_assert_int_eq(bfs_store_move_note(s, "move:bb\nchat/g1/x", "aa\nx"), 0);
	ck_assert_int_eq(bfs_store_move_note(s, "move:bb\nchat/g1/y", "aa\ny"), 0);
	ck_assert_int_eq(bfs_store_move_note(s, "move:bb\nchat/g1/y", NULL), 0);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bfs_store_move_list(s, "move:", note_collect, &c), 0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_str_eq(c.rows[0], "move:bb\nchat/g1/x=aa\nx");
	bfs_store_close(s);
}
END_TEST

Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, open_migrates_and_reopens);
	tcase_add_test(tc, open_upgrades_older_database);
	tcase_add_test(tc, open_refuses_non_database);
	tcase_add_test(tc, open_refuses_newer_schema);
	tcase_add_test(tc, bucket_add_get_list);
	tcase_add_test(tc, wrong_master_key);
	tcase_add_test(tc, secret_never_in_db_or_wal);
	tcase_add_test(tc, bucket_update);
	tcase_add_test(tc, bucket_perms_roundtrip);
	tcase_add_test(tc, bucket_remove_refusals_and_force);
	tcase_add_test(tc, defaults_set_get_and_index);
	tcase_add_test(tc, defaults_apply_all_or_nothing);
	tcase_add_test(tc, assign_apply_and_list);
	tcase_add_test(tc, assign_apply_each);
	tcase_add_test(tc, sync_config_idempotent);
	tcase_add_test(tc, sync_config_defaults_stick);
	tcase_add_test(tc, sync_config_removed_buckets);
	tcase_add_test(tc, sync_config_new_master_key_reseals);
	tcase_add_test(tc, file_index_rows);
	tcase_add_test(tc, file_rename_and_list);
	tcase_add_test(tc, file_rename_prefix_special_chars);
	tcase_add_test(tc, stats_per_bucket);
	tcase_add_test(tc, threads_share_one_handle);
	tcase_add_test(tc, journal_put_fail_done);
	tcase_add_test(tc, journal_order_and_renames);
	tcase_add_test(tc, upload_done_one_transaction);
	tcase_add_test(tc, journal_durable_for_other_connections);
	tcase_add_test(tc, journal_upgrade_from_version_1);
	tcase_add_test(tc, journal_holds_bucket);
	tcase_add_test(tc, mpu_ids_follow_the_journal);
	tcase_add_test(tc, journal_conflict_names);
	tcase_add_test(tc, journal_age_strings);
	tcase_add_test(tc, known_metadata);
	tcase_add_test(tc, ctx_queries);
	suite_add_tcase(s, tc);
	return s;
}
