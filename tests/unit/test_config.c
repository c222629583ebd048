/*
 * test_config.c - the ini config parser (src/util/config.c): defaults,
 * every key, relative paths, secrets (literal, env:, file with mode
 * check), cross-field rules and the exact "FILE:LINE: key 'KEY': reason"
 * of each error.  Files are written under a mkdtemp() folder.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_config.h"
#include "bfs_perm.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "unit.h"

#define FAKE "/nonexistent-bfs-test/etc/bucketfs.conf"
#define FAKE_DIR "/nonexistent-bfs-test/etc"

static char tmpdir[64];

static void tmp_setup(void)
{
	char *d;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bfs-config-test.XXXXXX");
	d = mkdtemp(tmpdir);
	ck_assert_ptr_nonnull(d);
}

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];

	/* Only ever our own mkdtemp() folder. */
	if (strncmp(path, "/tmp/bfs-config-test.", 21) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

static void tmp_teardown(void)
{
	/* Tests chdir() into tmpdir; leave it before removing it. */
	if (chdir("/") != 0)
		fprintf(stderr, "cannot chdir /\n");
	rm_rf(tmpdir);
}

/* Writes tmpdir/name with content and mode; returns the path (static). */
static const char *write_file(const char *name, const char *content, mode_t mode)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(content, 1, strlen(content), f), strlen(content));
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static struct bfs_config *parse_ok(const char *text)
{
	struct bfs_config *c = NULL;
	char err[512] = "";
	int r = bfs_config_parse(text, FAKE, &c, err, sizeof(err));

	ck_assert_msg(r == 0, "parse failed: %d %s", r, err);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Asserts failure with exactly `want` as the message. */
static void parse_err(const char *text, const char *want)
{
	struct bfs_config *c = (void *)1;
	char err[512] = "";
	int r = bfs_config_parse(text, FAKE, &c, err, sizeof(err));

	ck_assert_msg(r == BFS_ERR_CONFIG, "want failure, got %d for:\n%s", r, text);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, want);
}

/* Asserts failure whose message starts with `prefix`. */
static void parse_err_prefix(const char *text, const char *prefix)
{
	struct bfs_config *c = (void *)1;
	char err[512] = "";
	int r = bfs_config_parse(text, FAKE, &c, err, sizeof(err));

	ck_assert_msg(r == BFS_ERR_CONFIG, "want failure, got %d for:\n%s", r, text);
	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
		      "message '%s' does not start with '%s'", err, prefix);
}

static const struct bfs_bucket_conf *find(const struct bfs_config *c,
					  const char *name)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		if (strcmp(c->buckets[i].name, name) == 0)
			return &c->buckets[i];
	ck_abort_msg("bucket %s not found", name);
	return NULL;
}

START_TEST(names)
{
	ck_assert_int_eq(bfs_role_parse("general"), BFS_ROLE_GENERAL);
	ck_assert_int_eq(bfs_role_parse("chat"), BFS_ROLE_CHAT);
	ck_assert_int_eq(bfs_role_parse("forms"), BFS_ROLE_FORMS);
	ck_assert_int_eq(bfs_role_parse("form"), -1);
	ck_assert_int_eq(bfs_role_parse("GENERAL"), -1);
	ck_assert_int_eq(bfs_role_parse(NULL), -1);
	ck_assert_str_eq(bfs_role_name(BFS_ROLE_GENERAL), "general");
	ck_assert_str_eq(bfs_role_name(BFS_ROLE_CHAT), "chat");
	ck_assert_str_eq(bfs_role_name(BFS_ROLE_FORMS), "forms");
	ck_assert_ptr_null(bfs_role_name(3));
	ck_assert_ptr_null(bfs_role_name(-1));
	ck_assert_int_eq(bfs_provider_kind_parse("s3"), BFS_PROV_S3);
	ck_assert_int_eq(bfs_provider_kind_parse("r2"), BFS_PROV_R2);
	ck_assert_int_eq(bfs_provider_kind_parse("local"), BFS_PROV_LOCAL);
	ck_assert_int_eq(bfs_provider_kind_parse("S3"), -1);
	ck_assert_int_eq(bfs_provider_kind_parse("gcs"), BFS_PROV_GCS);
	ck_assert_int_eq(bfs_provider_kind_parse("b2"), -1);
	ck_assert_int_eq(bfs_provider_kind_parse(NULL), -1);
	ck_assert_str_eq(bfs_provider_kind_name(BFS_PROV_S3), "s3");
	ck_assert_str_eq(bfs_provider_kind_name(BFS_PROV_R2), "r2");
	ck_assert_str_eq(bfs_provider_kind_name(BFS_PROV_LOCAL), "local");
	ck_assert_str_eq(bfs_provider_kind_name(BFS_PROV_AZURE), "azure");
	ck_assert_ptr_null(bfs_provider_kind_name(5));
}
END_TEST

START_TEST(sizes)
{
	uint64_t v = 77;

	ck_assert_int_eq(bfs_parse_size("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bfs_parse_size("12345", &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(bfs_parse_size("100k", &v), 0);
	ck_assert_uint_eq(v, 102400);
	ck_assert_int_eq(bfs_parse_size("100K", &v), 0);
	ck_assert_uint_eq(v, 102400);
	ck_assert_int_eq(bfs_parse_size("512M", &v), 0);
	ck_assert_uint_eq(v, 512ull << 20);
	ck_assert_int_eq(bfs_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ull << 30);
	ck_assert_int_eq(bfs_parse_size("3T", &v), 0);
	ck_assert_uint_eq(v, 3ull << 40);
	ck_assert_int_eq(bfs_parse_size("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(bfs_parse_size("16777215T", &v), 0);
	ck_assert_uint_eq(v, 16777215ull << 40);
	v = 77;
	ck_assert_int_eq(bfs_parse_size("18446744073709551616", &v), -1);
	ck_assert_int_eq(bfs_parse_size("16777216T", &v), -1);
	ck_assert_int_eq(bfs_parse_size("99999999999999999999999G", &v), -1);
	ck_assert_int_eq(bfs_parse_size("", &v), -1);
	ck_assert_int_eq(bfs_parse_size(NULL, &v), -1);
	ck_assert_int_eq(bfs_parse_size("G", &v), -1);
	ck_assert_int_eq(bfs_parse_size("-1", &v), -1);
	ck_assert_int_eq(bfs_parse_size("+1", &v), -1);
	ck_assert_int_eq(bfs_parse_size(" 1", &v), -1);
	ck_assert_int_eq(bfs_parse_size("1 ", &v), -1);
	ck_assert_int_eq(bfs_parse_size("1 G", &v), -1);
	ck_assert_int_eq(bfs_parse_size("1GB", &v), -1);
	ck_assert_int_eq(bfs_parse_size("1X", &v), -1);
	ck_assert_int_eq(bfs_parse_size("1.5G", &v), -1);
	ck_assert_int_eq(bfs_parse_size("0x10", &v), -1);
	ck_assert_uint_eq(v, 77);     /* untouched on failure */
}
END_TEST

START_TEST(defaults_for_empty_file)
{
	struct bfs_config *c = parse_ok("");

	ck_assert_str_eq(c->file, FAKE);
	ck_assert_str_eq(c->dir, FAKE_DIR);
	ck_assert_str_eq(c->database, FAKE_DIR "/bucketfs.db");
	ck_assert_str_eq(c->cache_dir, FAKE_DIR "/cache");
	ck_assert_str_eq(c->master_key_file, FAKE_DIR "/master.key");
	ck_assert_uint_eq(c->cache_size, 2ull << 30);
	ck_assert_int_eq(c->log_level, BFS_LOG_INFO);
	ck_assert_int_eq(c->upload_timeout, 60);
	ck_assert_int_eq(c->presign_expires, 3600);
	ck_assert_ptr_null(c->ca_bundle);
	ck_assert_uint_eq(c->nbuckets, 0);
	bfs_config_free(c);
	bfs_config_free(NULL);
	/* Comments and blank lines only, and a NULL text. */
	c = parse_ok("; comment\n# other\n\n   \n[bucketfs]\n");
	ck_assert_uint_eq(c->nbuckets, 0);
	bfs_config_free(c);
	{
		struct bfs_config *c2;
		char err[64];

		ck_assert_int_eq(bfs_config_parse(NULL, FAKE, &c2, err, sizeof(err)), 0);
		bfs_config_free(c2);
	}
}
END_TEST

START_TEST(main_section)
{
	struct bfs_config *c = parse_ok(
		"[bucketfs]\n"
		"database = /var/lib/bucketfs/db.sqlite\n"
		"cache_dir = ./cache2\n"
		"cache_size = 512M   ; inline comment\n"
		"master_key_file = keys/master.key\n"
		"log_level = debug\n"
		"upload_timeout = 86400\n"
		"ca_bundle = ca.pem\n");

	ck_assert_str_eq(c->database, "/var/lib/bucketfs/db.sqlite");
	ck_assert_str_eq(c->cache_dir, FAKE_DIR "/cache2");
	ck_assert_uint_eq(c->cache_size, 512ull << 20);
	ck_assert_str_eq(c->master_key_file, FAKE_DIR "/keys/master.key");
	ck_assert_int_eq(c->log_level, BFS_LOG_DEBUG);
	ck_assert_int_eq(c->upload_timeout, 86400);
	ck_assert_str_eq(c->ca_bundle, FAKE_DIR "/ca.pem");
	bfs_config_free(c);

	c = parse_ok("[bucketfs]\npresign_expires = 604800\n");
	ck_assert_int_eq(c->presign_expires, 604800);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\nlog_level = error\nupload_timeout = 1\n");
	ck_assert_int_eq(c->log_level, BFS_LOG_ERROR);
	ck_assert_int_eq(c->upload_timeout, 1);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\nlog_level = warn\n");
	ck_assert_int_eq(c->log_level, BFS_LOG_WARN);
	bfs_config_free(c);
}
END_TEST

/* [mount] cache = on|off (default on), errors with file, line and key. */
START_TEST(mount_section)
{
	struct bfs_config *c = parse_ok("[bucketfs]\n");

	ck_assert_int_eq(c->cache_off, 0);
	bfs_config_free(c);
	c = parse_ok("[mount]\ncache = off\n");
	ck_assert_int_eq(c->cache_off, 1);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\n[mount]\ncache = on\n");
	ck_assert_int_eq(c->cache_off, 0);
	bfs_config_free(c);
	parse_err("[mount]\ncache = maybe\n",
		  FAKE ":2: key 'cache': expected on or off");
	parse_err("[mount]\n\ncache =\n",
		  FAKE ":3: key 'cache': empty value");
	parse_err("[mount]\ncache = on\ncache = off\n",
		  FAKE ":3: key 'cache': duplicate key (first set on line 2)");
	parse_err("[mount]\nlog_level = info\n",
		  FAKE ":2: key 'log_level': unknown key in section 'mount'");
	parse_err("[mount]\n[mount]\n",
		  FAKE ":2: section 'mount': duplicate section");
}
END_TEST

START_TEST(main_section_errors)
{
	parse_err("[bucketfs]\ncache_size = 2X\n",
		  FAKE ":2: key 'cache_size': expected a size like 512M or 2G");
	parse_err("[bucketfs]\ncache_size = 0\n",
		  FAKE ":2: key 'cache_size': expected a size like 512M or 2G");
	parse_err("[bucketfs]\n\nlog_level = verbose\n",
		  FAKE ":3: key 'log_level': expected error, warn, info or debug");
	parse_err("[bucketfs]\npresign_expires = 0\n",
		  FAKE ":2: key 'presign_expires': expected seconds from 1 to 604800");
	parse_err("[bucketfs]\n\npresign_expires = 604801\n",
		  FAKE ":3: key 'presign_expires': expected seconds from 1 to 604800");
	parse_err("[bucketfs]\npresign_expires = 1h\n",
		  FAKE ":2: key 'presign_expires': expected seconds from 1 to 604800");
	parse_err("[bucketfs]\nupload_timeout = 0\n",
		  FAKE ":2: key 'upload_timeout': expected seconds from 1 to 86400");
	parse_err("[bucketfs]\nupload_timeout = 86401\n",
		  FAKE ":2: key 'upload_timeout': expected seconds from 1 to 86400");
	parse_err("[bucketfs]\nupload_timeout = 10s\n",
		  FAKE ":2: key 'upload_timeout': expected seconds from 1 to 86400");
	parse_err("[bucketfs]\nupload_timeout = -5\n",
		  FAKE ":2: key 'upload_timeout': expected seconds from 1 to 86400");
	parse_err("[bucketfs]\nupload_timeout = 99999999999999999999\n",
		  FAKE ":2: key 'upload_timeout': expected seconds from 1 to 86400");
	parse_err("[bucketfs]\ndatabase =\n",
		  FAKE ":2: key 'database': empty value");
	parse_err("[bucketfs]\ndatabse = x\n",
		  FAKE ":2: key 'databse': unknown key in section 'bucketfs'");
	parse_err("[bucketfs]\nprovider = s3\n",
		  FAKE ":2: key 'provider': unknown key in section 'bucketfs'");
	parse_err("[bucketfs]\ncache_dir = a\ncache_dir = b\n",
		  FAKE ":3: key 'cache_dir': duplicate key (first set on line 2)");
	parse_err("[bucketfs]\n[bucketfs]\n",
		  FAKE ":2: section 'bucketfs': duplicate section");
	parse_err("database = x\n[bucketfs]\n",
		  FAKE ":1: key 'database': outside any section");
}
END_TEST

static const char *const example =
	"[bucketfs]\n"
	"database = bucketfs.db          ; relative paths are relative to this file's folder\n"
	"cache_dir = cache\n"
	"cache_size = 2G                 ; bound on local staging + cached data\n"
	"master_key_file = master.key\n"
	"log_level = info                ; error | warn | info | debug\n"
	"\n"
	"[bucket media]                  ; NAME = directory under the mount point\n"
	"provider = r2                   ; s3 | r2 | local\n"
	"bucket_name = my-r2-bucket\n"
	"account_id = abc123             ; r2: endpoint https://ACCOUNT.r2.cloudflarestorage.com, region auto\n"
	"access_key_id = key123\n"
	"secret_access_key = env:MEDIA_SECRET   ; literal, env:VAR, or secret_access_key_file = PATH\n"
	"default = general, chat         ; any of general, chat, forms\n"
	"\n"
	"[bucket uploads]\n"
	"provider = s3\n"
	"bucket_name = my-s3-bucket\n"
	"region = us-east-1\n"
	"endpoint = http://127.0.0.1:9000   ; optional: S3-compatible services\n"
	"path_style = true\n"
	"prefix = app1/                  ; optional: scope inside a shared remote bucket\n"
	"access_key_id = AKIAEXAMPLE\n"
	"secret_access_key_file = uploads.secret\n"
	"read_only = false\n"
	"\n"
	"[bucket scratch]\n"
	"provider = local\n"
	"path = /srv/scratch\n"
	"default = forms\n";

START_TEST(interface_example)
{
	struct bfs_config *c = NULL;
	const struct bfs_bucket_conf *b;
	char err[512] = "", real[PATH_MAX], want[PATH_MAX + 64];
	const char *path;

	setenv("MEDIA_SECRET", "media-secret-value", 1);
	write_file("uploads.secret", "uploads-secret\n", 0600);
	path = write_file("bucketfs.conf", example, 0644);
	ck_assert_int_eq(bfs_config_load(path, &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(realpath(tmpdir, real));
	snprintf(want, sizeof(want), "%s/bucketfs.conf", real);
	ck_assert_str_eq(c->file, want);
	ck_assert_str_eq(c->dir, real);
	snprintf(want, sizeof(want), "%s/bucketfs.db", real);
	ck_assert_str_eq(c->database, want);
	ck_assert_uint_eq(c->nbuckets, 3);

	b = find(c, "media");
	ck_assert_int_eq(b->provider, BFS_PROV_R2);
	ck_assert_str_eq(b->bucket_name, "my-r2-bucket");
	ck_assert_str_eq(b->account_id, "abc123");
	ck_assert_str_eq(b->region, "auto");
	ck_assert_ptr_null(b->endpoint);
	ck_assert_str_eq(b->access_key_id, "key123");
	ck_assert_str_eq(b->secret_access_key, "media-secret-value");
	ck_assert_int_eq(b->has_secret, 1);
	ck_assert_ptr_null(b->session_token);
	ck_assert_int_eq(b->has_session_token, 0);
	ck_assert_uint_eq(b->defaults, BFS_ROLE_BIT(BFS_ROLE_GENERAL) |
			  BFS_ROLE_BIT(BFS_ROLE_CHAT));
	ck_assert_str_eq(b->prefix, "");
	ck_assert_int_eq(b->managed_by_config, 1);
	ck_assert_ptr_null(b->id);

	b = find(c, "uploads");
	ck_assert_int_eq(b->provider, BFS_PROV_S3);
	ck_assert_str_eq(b->region, "us-east-1");
	ck_assert_str_eq(b->endpoint, "http://127.0.0.1:9000");
	ck_assert_int_eq(b->path_style, 1);
	ck_assert_int_eq(b->read_only, 0);
	ck_assert_str_eq(b->prefix, "app1/");
	ck_assert_str_eq(b->secret_access_key, "uploads-secret");
	ck_assert_uint_eq(b->defaults, 0);

	b = find(c, "scratch");
	ck_assert_int_eq(b->provider, BFS_PROV_LOCAL);
	ck_assert_str_eq(b->path, "/srv/scratch");
	ck_assert_ptr_null(b->region);
	ck_assert_uint_eq(b->defaults, BFS_ROLE_BIT(BFS_ROLE_FORMS));
	bfs_config_free(c);
}
END_TEST

START_TEST(relative_paths_resolved)
{
	struct bfs_config *c = NULL;
	char err[512] = "", real[PATH_MAX], want[PATH_MAX + 64];
	char sub[PATH_MAX], link[PATH_MAX];

	snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	write_file("etc/bfs.conf",
		   "[bucketfs]\ndatabase = data/db\ncache_dir = ../cache\n"
		   "[bucket l]\nprovider = local\npath = files\n", 0644);
	/* Through a symlinked folder and a relative file name. */
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	ck_assert_int_eq(symlink(sub, link), 0);
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_int_eq(bfs_config_load("link/bfs.conf", &c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(realpath(sub, real));
	ck_assert_str_eq(c->dir, real);
	snprintf(want, sizeof(want), "%s/bfs.conf", real);
	ck_assert_str_eq(c->file, want);
	snprintf(want, sizeof(want), "%s/data/db", real);
	ck_assert_str_eq(c->database, want);
	snprintf(want, sizeof(want), "%s/../cache", real);
	ck_assert_str_eq(c->cache_dir, want);
	snprintf(want, sizeof(want), "%s/files", real);
	ck_assert_str_eq(c->buckets[0].path, want);
	snprintf(want, sizeof(want), "%s/master.key", real);
	ck_assert_str_eq(c->master_key_file, want);
	bfs_config_free(c);

	/* A bare file name: the current folder. */
	ck_assert_int_eq(chdir(sub), 0);
	ck_assert_int_eq(bfs_config_load("bfs.conf", &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->dir, real);
	bfs_config_free(c);
	/* Messages name the file as given. */
	write_file("etc/bad.conf", "[bucketfs]\nbogus = 1\n", 0644);
	ck_assert_int_eq(bfs_config_load("bad.conf", &c, err, sizeof(err)),
			 BFS_ERR_CONFIG);
	ck_assert_str_eq(err, "bad.conf:2: key 'bogus': unknown key in section 'bucketfs'");
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(bucket_keys)
{
	struct bfs_config *c = parse_ok(
		"[bucket a]\n"
		"provider = s3\n"
		"description = Team files; shared (ü)\n"
		"bucket_name = Remote_Bucket.1\n"
		"prefix = /deep/er\n"
		"region = eu-west-3\n"
		"endpoint = https://s3.example.com:8443/\n"
		"path_style = yes\n"
		"read_only = on\n"
		"access_key_id = AK\n"
		"secret_access_key = literal/secret+value=\n"
		"session_token = tok\n"
		"default = forms\n"
		"\n"
		"[bucket b]\n"
		"provider = r2\n"
		"bucket_name = b\n"
		"endpoint = https://acct.r2.cloudflarestorage.com\n"
		"region = wnam\n"
		"path_style = 0\n"
		"read_only = FALSE\n"
		"prefix =\n"
		"default = \n"
		"[bucket c.d_e-0]\n"
		"provider = local\n"
		"path = rel/dir\n"
		"prefix = /\n");
	const struct bfs_bucket_conf *b = find(c, "a");

	ck_assert_str_eq(b->description, "Team files; shared (ü)");
	ck_assert_str_eq(b->bucket_name, "Remote_Bucket.1");
	ck_assert_str_eq(b->prefix, "deep/er/");
	ck_assert_str_eq(b->region, "eu-west-3");
	ck_assert_str_eq(b->endpoint, "https://s3.example.com:8443");
	ck_assert_int_eq(b->path_style, 1);
	ck_assert_int_eq(b->read_only, 1);
	ck_assert_str_eq(b->secret_access_key, "literal/secret+value=");
	ck_assert_str_eq(b->session_token, "tok");
	ck_assert_int_eq(b->has_session_token, 1);
	ck_assert_uint_eq(b->defaults, BFS_ROLE_BIT(BFS_ROLE_FORMS));
	b = find(c, "b");
	ck_assert_int_eq(b->provider, BFS_PROV_R2);
	ck_assert_str_eq(b->region, "wnam");       /* r2: "auto" unless given */
	ck_assert_ptr_null(b->account_id);
	ck_assert_int_eq(b->path_style, 0);
	ck_assert_int_eq(b->read_only, 0);
	ck_assert_str_eq(b->prefix, "");
	ck_assert_uint_eq(b->defaults, 0);
	ck_assert_ptr_null(b->access_key_id);
	ck_assert_int_eq(b->has_secret, 0);
	b = find(c, "c.d_e-0");
	ck_assert_str_eq(b->path, FAKE_DIR "/rel/dir");
	ck_assert_str_eq(b->prefix, "");
	ck_assert_int_eq(b->managed_by_config, 1);
	bfs_config_free(c);
}
END_TEST

START_TEST(bools)
{
	static const char *const t[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
	static const char *const f[] = { "false", "no", "off", "0", "False", "NO" };
	char text[256];

	for (size_t i = 0; i < 6; i++) {
		struct bfs_config *c;

		snprintf(text, sizeof(text),
			 "[bucket x]\nprovider = local\npath = /x\nread_only = %s\n", t[i]);
		c = parse_ok(text);
		ck_assert_int_eq(c->buckets[0].read_only, 1);
		bfs_config_free(c);
		snprintf(text, sizeof(text),
			 "[bucket x]\nprovider = local\npath = /x\nread_only = %s\n", f[i]);
		c = parse_ok(text);
		ck_assert_int_eq(c->buckets[0].read_only, 0);
		bfs_config_free(c);
	}
	parse_err("[bucket x]\nprovider = local\npath = /x\nread_only = maybe\n",
		  FAKE ":4: key 'read_only': expected true or false");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\npath_style = 2\n",
		  FAKE ":4: key 'path_style': expected true or false");
}
END_TEST

START_TEST(syntax_variants)
{
	/* CRLF, BOM, indented keys (no continuation lines), "name: value",
	 * ';' inside a value, '#' comments, blanks around the section name. */
	struct bfs_config *c = parse_ok(
		"\xEF\xBB\xBF[bucketfs]\r\n"
		"  log_level = warn\r\n"
		"\t# indented comment\r\n"
		"[ bucket  x ]   ; trailing comment\r\n"
		"    provider: local\r\n"
		"    path = /srv/a;b\r\n"
		"description=a=b:c\r\n");

	ck_assert_int_eq(c->log_level, BFS_LOG_WARN);
	ck_assert_uint_eq(c->nbuckets, 1);
	ck_assert_str_eq(c->buckets[0].name, "x");
	ck_assert_str_eq(c->buckets[0].path, "/srv/a;b");
	ck_assert_str_eq(c->buckets[0].description, "a=b:c");
	bfs_config_free(c);
}
END_TEST

START_TEST(long_lines)
{
	size_t n = 3000;
	char *tok = malloc(n + 1), *text = malloc(n + 512);
	struct bfs_config *c;

	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++)
		tok[i] = (char)('A' + i % 26);
	tok[n] = '\0';
	/* A session token is far longer than inih's 200-byte line buffer. */
	snprintf(text, n + 512,
		 "[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		 "secret_access_key = s\nsession_token =   %s   ; comment\n"
		 "description = after\n", tok);
	c = parse_ok(text);
	ck_assert_str_eq(c->buckets[0].session_token, tok);
	ck_assert_str_eq(c->buckets[0].description, "after");
	bfs_config_free(c);
	/* An over-long line still reports the right key and line. */
	snprintf(text, n + 512, "[bucket x]\nprovider = s3\n\nbucket_name = %s\n", tok);
	parse_err(text, FAKE ":4: key 'bucket_name': invalid remote bucket name");
	snprintf(text, n + 512, "[bucket x]\nbogus_key = %s\n", tok);
	parse_err(text, FAKE ":2: key 'bogus_key': unknown key in section 'bucket x'");
	free(text);
	free(tok);

	/* Over 8192 bytes: refused as such. */
	text = malloc(10000);
	ck_assert_ptr_nonnull(text);
	memset(text, 'x', 9999);
	text[9999] = '\0';
	memcpy(text, "[bucket x]\ndescription = ", 25);
	parse_err(text, FAKE ":2: line longer than 8192 bytes");
	free(text);
}
END_TEST

START_TEST(section_errors)
{
	parse_err("[buckets]\n", FAKE ":1: section 'buckets': unknown section");
	parse_err("[x]\nprovider = s3\n", FAKE ":1: section 'x': unknown section");
	parse_err("[bucket]\n", FAKE ":1: section 'bucket': missing bucket name");
	parse_err("\n[bucket .hidden]\nprovider = local\npath = /x\n",
		  FAKE ":2: section 'bucket .hidden': invalid bucket name (expected [a-z0-9][a-z0-9._-]{0,62})");
	parse_err_prefix("[bucket @x]\n", FAKE ":1: section 'bucket @x': invalid bucket name");
	parse_err_prefix("[bucket Media]\n", FAKE ":1: section 'bucket Media': invalid bucket name");
	parse_err_prefix("[bucket a b]\n", FAKE ":1: section 'bucket a b': invalid bucket name");
	parse_err_prefix("[bucket aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
			 FAKE ":1: section 'bucket aaaa");
	parse_err("[bucket a]\nprovider = local\npath = /a\n"
		  "[bucket b]\nprovider = local\npath = /b\n"
		  "[bucket a]\nprovider = local\npath = /c\n",
		  FAKE ":7: section 'bucket a': duplicate bucket");
	parse_err("[bucketfs\n", FAKE ":1: syntax error: section header without ']'");
	parse_err("[bucketfs] x\n", FAKE ":1: syntax error: text after ']'");
	parse_err("[bucketfs]\nlog_level\n",
		  FAKE ":2: syntax error: expected 'key = value' or '[section]'");
	parse_err("[bucketfs]\nlog_level ;= x\n",
		  FAKE ":2: syntax error: expected 'key = value' or '[section]'");
	parse_err("[bucketfs]\n= x\n", FAKE ":2: syntax error: missing key name before '='");
	parse_err("[bucketfs]\nlog_level = info\x01\n", FAKE ":2: control character");
	parse_err("[bucketfs]\n\x7f\n", FAKE ":2: control character");
	parse_err("[bucketfs]\ndatabase = caf\xc3\n", FAKE ":2: invalid UTF-8");
	parse_err("[bucketfs]\ndatabase = \xed\xa0\x80\n", FAKE ":2: invalid UTF-8");
	parse_err("[bucketfs]\ndatabase = \xc0\xaf\n", FAKE ":2: invalid UTF-8");
	parse_err("[bucketfs]\ndatabase = a\rb\n", FAKE ":2: control character");
}
END_TEST

START_TEST(list_metadata_key)
{
	struct bfs_config *c = parse_ok("");

	ck_assert_int_eq(c->list_metadata, BFS_LIST_META_HEAD);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\nlist_metadata = listing\n\n"
		     "[bucket a]\nprovider = local\npath = /a\n\n"
		     "[bucket b]\nprovider = local\npath = /b\n"
		     "list_metadata = head\n\n"
		     "[bucket c]\nprovider = s3\nbucket_name = c\n"
		     "list_metadata = listing\n");
	ck_assert_int_eq(c->list_metadata, BFS_LIST_META_LISTING);
	ck_assert_uint_eq(c->nbuckets, 3);
	ck_assert_int_eq(c->buckets[0].list_metadata, BFS_LIST_META_UNSET);
	ck_assert_int_eq(c->buckets[1].list_metadata, BFS_LIST_META_HEAD);
	ck_assert_int_eq(c->buckets[2].list_metadata, BFS_LIST_META_LISTING);
	{
		struct bfs_bucket_conf cp;

		ck_assert_int_eq(bfs_bucket_conf_copy(&cp, &c->buckets[2]), 0);
		ck_assert_int_eq(cp.list_metadata, BFS_LIST_META_LISTING);
		bfs_bucket_conf_clear(&cp);
	}
	bfs_config_free(c);
	parse_err("[bucketfs]\nlist_metadata = lazy\n",
		  FAKE ":2: key 'list_metadata': expected head or listing");
	parse_err("[bucket x]\nprovider = local\npath = /x\nlist_metadata = HEAD\n",
		  FAKE ":4: key 'list_metadata': expected head or listing");
	ck_assert_int_eq(bfs_list_meta_parse("head"), BFS_LIST_META_HEAD);
	ck_assert_int_eq(bfs_list_meta_parse("listing"), BFS_LIST_META_LISTING);
	ck_assert_int_eq(bfs_list_meta_parse(""), -1);
	ck_assert_int_eq(bfs_list_meta_parse(NULL), -1);
	ck_assert_ptr_null(bfs_list_meta_name(BFS_LIST_META_UNSET));
	ck_assert_str_eq(bfs_list_meta_name(BFS_LIST_META_LISTING), "listing");
}
END_TEST

/* The kernel's rule (generic_permission), which bfs_perm_may repeats for
 * opens in list_metadata = listing: owner bits for the owner even where
 * the group or others get more, group bits for members (primary or
 * supplementary), other bits for the rest, root always. */
START_TEST(perm_may_rule)
{
	uint32_t sup[] = { 7, 42 };
	struct bfs_perm_who root = { 0, 0, NULL, 0 };
	struct bfs_perm_who owner = { 1000, 1000, NULL, 0 };
	struct bfs_perm_who member = { 2000, 2000, sup, 2 };
	struct bfs_perm_who stranger = { 3000, 3000, NULL, 0 };
	struct bfs_perm_who primary = { 4000, 42, NULL, 0 };

	ck_assert(bfs_perm_may(0600, 0, 0, &root, BFS_PERM_R | BFS_PERM_W));
	ck_assert(bfs_perm_may(0000, 0, 0, &root, BFS_PERM_R));
	ck_assert(!bfs_perm_may(0600, 0, 0, &stranger, BFS_PERM_R));
	ck_assert(bfs_perm_may(0644, 0, 0, &stranger, BFS_PERM_R));
	ck_assert(!bfs_perm_may(0644, 0, 0, &stranger, BFS_PERM_W));
	ck_assert(bfs_perm_may(0600, 1000, 5, &owner, BFS_PERM_R | BFS_PERM_W));
	/* the owner gets the owner bits only */
	ck_assert(!bfs_perm_may(0066, 1000, 5, &owner, BFS_PERM_R));
	ck_assert(bfs_perm_may(0640, 0, 42, &member, BFS_PERM_R));
	ck_assert(!bfs_perm_may(0640, 0, 42, &member, BFS_PERM_W));
	ck_assert(bfs_perm_may(0640, 0, 42, &primary, BFS_PERM_R));
	/* a member gets the group bits only, not the others' */
	ck_assert(!bfs_perm_may(0604, 0, 42, &member, BFS_PERM_R));
	ck_assert(bfs_perm_may(0604, 0, 43, &member, BFS_PERM_R));
	ck_assert(!bfs_perm_may(0640, 0, 43, &member, BFS_PERM_R));
}
END_TEST

START_TEST(perms_keys)
{
	struct bfs_config *c = parse_ok("");
	struct bfs_bucket_conf cp;
	char err[256];
	uint32_t v;

	/* nothing set: no admin group, every bucket on the defaults */
	ck_assert_ptr_null(c->admin_group);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\nadmin_group = root\n\n"
		     "[bucket a]\nprovider = local\npath = /a\n\n"
		     "[bucket b]\nprovider = local\npath = /b\n"
		     "owner = root\ngroup = 0\nmode = 0750\n"
		     "file_mode = 640\ndir_mode = 1777\n\n"
		     "[bucket c]\nprovider = local\npath = /c\nowner = 4242\n"
		     "mode = 0\n");
	ck_assert_str_eq(c->admin_group, "root");
	ck_assert_uint_eq(c->admin_gid, 0);
	ck_assert_ptr_null(c->buckets[0].owner);
	ck_assert_ptr_null(c->buckets[0].group);
	ck_assert(!c->buckets[0].has_mode && !c->buckets[0].has_file_mode &&
		  !c->buckets[0].has_dir_mode);
	ck_assert_str_eq(c->buckets[1].owner, "root");
	ck_assert_str_eq(c->buckets[1].group, "0");
	ck_assert(c->buckets[1].has_mode && c->buckets[1].has_file_mode &&
		  c->buckets[1].has_dir_mode);
	ck_assert_uint_eq(c->buckets[1].mode, 0750);
	ck_assert_uint_eq(c->buckets[1].file_mode, 0640);
	ck_assert_uint_eq(c->buckets[1].dir_mode, 01777);
	/* a number needs no user behind it (as chown takes it) */
	ck_assert_str_eq(c->buckets[2].owner, "4242");
	ck_assert(c->buckets[2].has_mode);
	ck_assert_uint_eq(c->buckets[2].mode, 0);
	ck_assert_int_eq(bfs_bucket_conf_copy(&cp, &c->buckets[1]), 0);
	ck_assert(bfs_bucket_perms_same(&cp, &c->buckets[1]));
	ck_assert(!bfs_bucket_perms_same(&cp, &c->buckets[0]));
	cp.dir_mode = 0755;
	ck_assert(!bfs_bucket_perms_same(&cp, &c->buckets[1]));
	bfs_bucket_conf_clear(&cp);
	bfs_config_free(c);

	/* errors name the file, the line and the key */
	parse_err("[bucketfs]\nlog_level = info\nadmin_group = bfs-no-such-group-x\n",
		  FAKE ":3: key 'admin_group': unknown group 'bfs-no-such-group-x'");
	parse_err("[bucketfs]\nadmin_group = a b\n",
		  FAKE ":2: key 'admin_group': expected a group name or number");
	parse_err("[bucketfs]\nadmin_group =\n",
		  FAKE ":2: key 'admin_group': empty value");
	parse_err("[bucket x]\nprovider = local\npath = /x\nowner = bfs-no-such-user-x\n",
		  FAKE ":4: key 'owner': unknown user 'bfs-no-such-user-x'");
	parse_err("[bucket x]\nprovider = local\npath = /x\n\ngroup = bfs-no-such-group-x\n",
		  FAKE ":5: key 'group': unknown group 'bfs-no-such-group-x'");
	parse_err("[bucket x]\nprovider = local\npath = /x\nowner = -1\n",
		  FAKE ":4: key 'owner': expected a user name or number");
	parse_err("[bucket x]\nprovider = local\npath = /x\nowner = 4294967295\n",
		  FAKE ":4: key 'owner': expected a user name or number");
	parse_err("[bucket x]\nprovider = local\npath = /x\nmode = 0788\n",
		  FAKE ":4: key 'mode': expected an octal mode from 0 to 1777 (no setuid/setgid bits)");
	parse_err("[bucket x]\nprovider = local\npath = /x\nmode = 4755\n",
		  FAKE ":4: key 'mode': expected an octal mode from 0 to 1777 (no setuid/setgid bits)");
	parse_err("[bucket x]\nprovider = local\npath = /x\nmode = rwx\n",
		  FAKE ":4: key 'mode': expected an octal mode from 0 to 1777 (no setuid/setgid bits)");
	parse_err("[bucket x]\nprovider = local\npath = /x\nfile_mode = 1644\n",
		  FAKE ":4: key 'file_mode': expected an octal mode from 0 to 0777");
	parse_err("[bucket x]\nprovider = local\npath = /x\ndir_mode = 017777\n",
		  FAKE ":4: key 'dir_mode': expected an octal mode from 0 to 1777 (no setuid/setgid bits)");
	parse_err("[bucket x]\nprovider = local\npath = /x\nmode = 755\nmode = 700\n",
		  FAKE ":5: key 'mode': duplicate key (first set on line 4)");

	/* the pieces bucketctl uses */
	ck_assert_int_eq(bfs_perm_mode("0644", 0777, &v, NULL, 0), 0);
	ck_assert_uint_eq(v, 0644);
	ck_assert_int_eq(bfs_perm_mode("7", 0777, &v, NULL, 0), 0);
	ck_assert_uint_eq(v, 07);
	ck_assert_int_eq(bfs_perm_mode("", 0777, &v, NULL, 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_perm_mode("0", 0777, &v, NULL, 0), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bfs_perm_user("root", &v, NULL, 0), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bfs_perm_group("root", &v, NULL, 0), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bfs_perm_user("bfs-no-such-user-x", &v, err, sizeof(err)),
			 BFS_ERR_NOTFOUND);
	ck_assert_str_eq(err, "unknown user 'bfs-no-such-user-x'");
	/* bucketctl's buckets go through the same check */
	{
		struct bfs_bucket_conf b;

		memset(&b, 0, sizeof(b));
		b.name = strdup("x");
		b.provider = BFS_PROV_LOCAL;
		b.path = strdup("/x");
		b.group = strdup("bfs-no-such-group-x");
		ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)),
				 BFS_ERR_INVAL);
		ck_assert_str_eq(err, "key 'group': unknown group 'bfs-no-such-group-x'");
		free(b.group);
		b.group = NULL;
		b.has_file_mode = 1;
		b.file_mode = 01644;
		ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)),
				 BFS_ERR_INVAL);
		ck_assert_str_eq(err, "key 'file_mode': mode out of range");
		bfs_bucket_conf_clear(&b);
	}
}
END_TEST

START_TEST(bucket_errors)
{
	parse_err("[bucket x]\nprovider = b2\n",
		  FAKE ":2: key 'provider': unknown provider 'b2' (expected s3, r2, "
		  "local, azure or gcs)");
	parse_err("[bucket x]\nbucket_name = b\n\n[bucket y]\nprovider = local\npath = /y\n",
		  FAKE ":1: key 'provider': required (s3, r2, local, azure or gcs)");
	parse_err("\n[bucket x]\n", FAKE ":2: key 'provider': required (s3, r2, local, azure or gcs)");
	parse_err("[bucket x]\nprovider = s3\n",
		  FAKE ":1: key 'bucket_name': required for provider s3");
	parse_err("[bucket x]\n\nprovider = r2\n\n[bucket y]\nprovider = local\npath = /y\n",
		  FAKE ":1: key 'bucket_name': required for provider r2");
	parse_err("[bucket x]\nprovider = r2\nbucket_name = b\n",
		  FAKE ":1: key 'account_id': required for provider r2 (or endpoint)");
	parse_err("[bucket x]\nprovider = local\n",
		  FAKE ":1: key 'path': required for provider local");
	parse_err("[bucket x]\nprovider = local\npath = /x\nbucket_name = b\n",
		  FAKE ":4: key 'bucket_name': not used by provider local");
	parse_err("[bucket x]\npath = /x\nprovider = s3\nbucket_name = b\n",
		  FAKE ":2: key 'path': not used by provider s3");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccount_id = a\n",
		  FAKE ":4: key 'account_id': not used by provider s3");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n",
		  FAKE ":1: key 'secret_access_key': required with access_key_id");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nsecret_access_key = s\n",
		  FAKE ":1: key 'access_key_id': required with secret_access_key");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nsession_token = t\n",
		  FAKE ":4: key 'session_token': needs access_key_id and secret_access_key");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nbogus = 1\n",
		  FAKE ":4: key 'bogus': unknown key in section 'bucket x'");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nbucket_name = c\n",
		  FAKE ":4: key 'bucket_name': duplicate key (first set on line 3)");
	parse_err("[bucket x]\nprovider = s3\nprovider = s3\n",
		  FAKE ":3: key 'provider': duplicate key (first set on line 2)");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b/c\n",
		  FAKE ":3: key 'bucket_name': invalid remote bucket name");
	parse_err("[bucket x]\nprovider = s3\nbucket_name =\n",
		  FAKE ":3: key 'bucket_name': empty value");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nregion = us east\n",
		  FAKE ":4: key 'region': invalid region");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nendpoint = ftp://h\n",
		  FAKE ":4: key 'endpoint': must be an http:// or https:// URL");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nendpoint = https://\n",
		  FAKE ":4: key 'endpoint': must be an http:// or https:// URL");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nendpoint = http://a b\n",
		  FAKE ":4: key 'endpoint': must be an http:// or https:// URL");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\nendpoint = 127.0.0.1:9000\n",
		  FAKE ":4: key 'endpoint': must be an http:// or https:// URL");
	parse_err("[bucket x]\nprovider = r2\nbucket_name = b\naccount_id = ab-12\n",
		  FAKE ":4: key 'account_id': must be letters and digits");
	parse_err("[bucket x]\nprovider = local\npath = /x\nprefix = a//b\n",
		  FAKE ":4: key 'prefix': not a safe key prefix");
	parse_err("[bucket x]\nprovider = local\npath = /x\nprefix = ../up\n",
		  FAKE ":4: key 'prefix': not a safe key prefix");
	parse_err("[bucket x]\nprovider = local\npath = /x\nprefix = a/./b/\n",
		  FAKE ":4: key 'prefix': not a safe key prefix");
	parse_err("[bucket x]\nprovider = local\npath = /x\ndefault = general, admin\n",
		  FAKE ":4: key 'default': unknown role 'admin' (expected general, chat or forms)");
	parse_err("[bucket x]\nprovider = local\npath = /x\ndefault = general,,chat\n",
		  FAKE ":4: key 'default': empty item in role list");
	parse_err("[bucket x]\nprovider = local\npath = /x\ndefault = chat\n"
		  "[bucket y]\nprovider = local\npath = /y\ndefault = forms, chat\n",
		  FAKE ":8: key 'default': role 'chat' is already the default of bucket 'x'");
}
END_TEST

START_TEST(env_secrets)
{
	struct bfs_config *c;

	setenv("BFS_T_SECRET", "from-env", 1);
	setenv("BFS_T_TOKEN", "tok-env", 1);
	setenv("BFS_T_KEYID", "keyid-env", 1);
	setenv("BFS_T_EMPTY", "", 1);
	unsetenv("BFS_T_UNSET");
	c = parse_ok("[bucket x]\nprovider = s3\nbucket_name = b\n"
		     "access_key_id = env:BFS_T_KEYID\n"
		     "secret_access_key = env:BFS_T_SECRET\n"
		     "session_token = env:BFS_T_TOKEN\n");
	ck_assert_str_eq(c->buckets[0].access_key_id, "keyid-env");
	ck_assert_str_eq(c->buckets[0].secret_access_key, "from-env");
	ck_assert_str_eq(c->buckets[0].session_token, "tok-env");
	ck_assert_int_eq(c->buckets[0].has_secret, 1);
	ck_assert_int_eq(c->buckets[0].has_session_token, 1);
	bfs_config_free(c);
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		  "secret_access_key = env:BFS_T_UNSET\n",
		  FAKE ":5: key 'secret_access_key': environment variable BFS_T_UNSET is not set");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		  "secret_access_key = env:BFS_T_EMPTY\n",
		  FAKE ":5: key 'secret_access_key': environment variable BFS_T_EMPTY is empty");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		  "secret_access_key = s\nsession_token = env:BFS_T_UNSET\n",
		  FAKE ":6: key 'session_token': environment variable BFS_T_UNSET is not set");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		  "secret_access_key = env:1BAD\n",
		  FAKE ":5: key 'secret_access_key': bad environment variable name '1BAD'");
	parse_err("[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n"
		  "secret_access_key = env:\n",
		  FAKE ":5: key 'secret_access_key': bad environment variable name ''");
}
END_TEST

/* Parses text as tmpdir/test.conf; returns rc, message in err. */
static int load_text(const char *text, struct bfs_config **c, char *err,
		     size_t errlen)
{
	const char *p = write_file("test.conf", text, 0600);

	return bfs_config_load(p, c, err, errlen);
}

START_TEST(secret_files)
{
	struct bfs_config *c = NULL;
	char err[1024], want[PATH_MAX * 2];
	static const char head[] =
		"[bucket x]\nprovider = s3\nbucket_name = b\naccess_key_id = k\n";
	char text[1024];
	const char *p;
	int fd;

	/* 0600 and 0640 are fine; trailing CRLF / LF stripped. */
	write_file("s1", "secret-one\r\n", 0600);
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s1\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->buckets[0].secret_access_key, "secret-one");
	ck_assert_int_eq(c->buckets[0].has_secret, 1);
	bfs_config_free(c);
	write_file("s2", "secret-two", 0640);
	p = write_file("s2", "secret-two", 0640);
	snprintf(text, sizeof(text), "%ssecret_access_key_file = %s\n", head, p);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->buckets[0].secret_access_key, "secret-two");
	bfs_config_free(c);

	/* 0644 (readable by others) is refused, naming file, line, key. */
	write_file("s3", "secret-three\n", 0644);
	snprintf(text, sizeof(text), "%s\nsecret_access_key_file = s3\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want), "%s/test.conf:6: key 'secret_access_key_file': ",
		 tmpdir);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(err, "accessible by others (mode 0644)"));
	ck_assert_ptr_null(strstr(err, "secret-three"));
	/* Even only writable or executable by others. */
	write_file("s4", "x\n", 0602);
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s4\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "accessible by others (mode 0602)"));
	write_file("s4", "x\n", 0601);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);

	/* Missing, empty, multi-line, a folder. */
	snprintf(text, sizeof(text), "%ssecret_access_key_file = nope\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, ":5: key 'secret_access_key_file': cannot open "));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	write_file("s5", "\n\n", 0600);
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s5\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "is empty"));
	write_file("s6", "line1\nline2\n", 0600);
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s6\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "must hold one line"));
	snprintf(text, sizeof(text), "%ssecret_access_key_file = .\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	/* A FIFO is refused at once, not waited on. */
	{
		char fifo[PATH_MAX];

		snprintf(fifo, sizeof(fifo), "%s/s9", tmpdir);
		ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	}
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s9\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	/* Over 4 KiB. */
	{
		char big[5000];

		memset(big, 'b', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		write_file("s7", big, 0600);
	}
	snprintf(text, sizeof(text), "%ssecret_access_key_file = s7\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "larger than 4096"));

	/* Both literal and file: refused whichever comes second. */
	snprintf(text, sizeof(text),
		 "%ssecret_access_key = lit\nsecret_access_key_file = s1\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err,
		":6: key 'secret_access_key_file': the secret is already given by 'secret_access_key'"));
	snprintf(text, sizeof(text),
		 "%ssecret_access_key_file = s1\nsecret_access_key = lit\n", head);
	ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err,
		":6: key 'secret_access_key': the secret is already given by 'secret_access_key_file'"));

	/* An unreadable file (mode 0) fails with the reason (not as root). */
	if (geteuid() != 0) {
		fd = open(write_file("s8", "x", 0000), O_RDONLY);
		ck_assert_int_lt(fd, 0);
		snprintf(text, sizeof(text), "%ssecret_access_key_file = s8\n", head);
		ck_assert_int_eq(load_text(text, &c, err, sizeof(err)), BFS_ERR_CONFIG);
		ck_assert_ptr_nonnull(strstr(err, "Permission denied"));
	}
}
END_TEST

START_TEST(load_errors)
{
	struct bfs_config *c = (void *)1;
	char err[512], path[PATH_MAX];
	FILE *f;

	ck_assert_int_eq(bfs_config_load("/nonexistent-bfs-test/x.conf", &c, err,
					  sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, "/nonexistent-bfs-test/x.conf: No such file or directory");
	/* A NUL byte inside the file. */
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fwrite("[bucketfs]\nlog_level = info\0x\n", 1, 30, f);
	fclose(f);
	ck_assert_int_eq(bfs_config_load(path, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "nul.conf:2: NUL byte"));
	/* A folder. */
	ck_assert_int_eq(bfs_config_load(tmpdir, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(huge_and_garbage)
{
	size_t n = (1u << 20) + 100, i;
	char *text = malloc(n + 1), path[PATH_MAX];
	struct bfs_config *c = (void *)1;
	char err[512];
	unsigned v = 99;
	FILE *f;

	ck_assert_ptr_nonnull(text);
	/* Random bytes (no NUL): a clean error, no crash. */
	for (i = 0; i < n; i++) {
		v = v * 1103515245u + 12345u;
		text[i] = (char)((v >> 16) | 1);
	}
	text[n] = '\0';
	ck_assert_int_eq(bfs_config_parse(text, FAKE, &c, err, sizeof(err)),
			 BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(strncmp(err, FAKE ":1: ", strlen(FAKE) + 4), 0);

	/* A 1 MiB+ file of comments parses; over the file cap it is refused. */
	for (i = 0; i < n; i++)
		text[i] = (i % 80 == 79) ? '\n' : ';';
	c = NULL;
	ck_assert_int_eq(bfs_config_parse(text, FAKE, &c, err, sizeof(err)), 0);
	bfs_config_free(c);
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, n, f), n);
	fclose(f);
	c = (void *)1;
	ck_assert_int_eq(bfs_config_load(path, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(err, "file too large"));
	/* Many buckets. */
	{
		size_t len = 0;

		for (i = 0; i < 500; i++)
			len += (size_t)sprintf(text + len,
					       "[bucket b%zu]\nprovider = local\npath = /d/%zu\n",
					       i, i);
		c = parse_ok(text);
		ck_assert_uint_eq(c->nbuckets, 500);
		ck_assert_str_eq(c->buckets[499].name, "b499");
		ck_assert_str_eq(c->buckets[499].path, "/d/499");
		bfs_config_free(c);
	}
	free(text);
}
END_TEST

START_TEST(conf_copy_clear_validate)
{
	struct bfs_config *c;
	struct bfs_bucket_conf cp, b;
	char err[256];
	char s0[] = ".x", s1[] = "x", s2[] = "relative", s3[] = "/srv/x", s4[] = "noslash", s5[] = "ok/", s6[] = "rb", s7[] = "https://x.r2.cloudflarestorage.com", s8[] = "x.r2.cloudflarestorage.com", s9[] = "acc0";

	setenv("BFS_T_SECRET", "sek", 1);
	c = parse_ok("[bucket x]\nprovider = s3\nbucket_name = b\nprefix = p\n"
		     "access_key_id = k\nsecret_access_key = env:BFS_T_SECRET\n"
		     "session_token = t\ndefault = chat\n");
	ck_assert_int_eq(bfs_bucket_conf_copy(&cp, &c->buckets[0]), 0);
	ck_assert_ptr_ne(cp.name, c->buckets[0].name);
	ck_assert_str_eq(cp.name, "x");
	ck_assert_str_eq(cp.prefix, "p/");
	ck_assert_str_eq(cp.region, "us-east-1");
	ck_assert_str_eq(cp.secret_access_key, "sek");
	ck_assert_str_eq(cp.session_token, "t");
	ck_assert_uint_eq(cp.defaults, BFS_ROLE_BIT(BFS_ROLE_CHAT));
	ck_assert_int_eq(cp.managed_by_config, 1);
	ck_assert_int_eq(cp.has_secret, 1);
	ck_assert_ptr_null(cp.description);
	bfs_config_free(c);
	ck_assert_int_eq(bfs_bucket_conf_validate(&cp, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");

	/* Listed without the master key: has_secret stands for the secret. */
	free(cp.secret_access_key);
	cp.secret_access_key = NULL;
	ck_assert_int_eq(bfs_bucket_conf_validate(&cp, err, sizeof(err)), 0);
	cp.has_secret = 0;
	ck_assert_int_eq(bfs_bucket_conf_validate(&cp, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'secret_access_key': required with access_key_id");
	bfs_bucket_conf_clear(&cp);
	ck_assert_ptr_null(cp.name);
	ck_assert_ptr_null(cp.session_token);
	ck_assert_int_eq(cp.provider, 0);
	bfs_bucket_conf_clear(&cp);       /* twice is safe */
	bfs_bucket_conf_clear(NULL);

	/* Buckets built by hand (bucketctl). */
	memset(&b, 0, sizeof(b));
	b.provider = BFS_PROV_LOCAL;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'name': invalid bucket name (expected [a-z0-9][a-z0-9._-]{0,62})");
	b.name = s0;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	b.name = s1;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'path': required for provider local");
	b.path = s2;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'path': must be an absolute path");
	b.path = s3;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), 0);
	b.prefix = s4;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'prefix': not a safe key prefix");
	b.prefix = s5;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), 0);
	b.provider = 7;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'provider': required (s3, r2, local, azure or gcs)");
	b.provider = BFS_PROV_R2;
	b.path = NULL;
	b.bucket_name = s6;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'account_id': required for provider r2 (or endpoint)");
	b.endpoint = s7;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), 0);
	b.endpoint = s8;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'endpoint': must be an http:// or https:// URL");
	b.endpoint = NULL;
	b.account_id = s9;
	b.defaults = 8;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "key 'default': unknown role");
	b.defaults = 7;
	ck_assert_int_eq(bfs_bucket_conf_validate(&b, NULL, 0), 0);
}
END_TEST

START_TEST(multipart_max_age)
{
	struct bfs_config *c;
	struct bfs_bucket_conf cp;
	int64_t d;

	ck_assert_int_eq(bfs_parse_duration("0", &d), 0);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(bfs_parse_duration("90", &d), 0);
	ck_assert_int_eq(d, 90);
	ck_assert_int_eq(bfs_parse_duration("2s", &d), 0);
	ck_assert_int_eq(d, 2);
	ck_assert_int_eq(bfs_parse_duration("15m", &d), 0);
	ck_assert_int_eq(d, 900);
	ck_assert_int_eq(bfs_parse_duration("24h", &d), 0);
	ck_assert_int_eq(d, 86400);
	ck_assert_int_eq(bfs_parse_duration("7d", &d), 0);
	ck_assert_int_eq(d, 7 * 86400);
	ck_assert_int_eq(bfs_parse_duration("", &d), -1);
	ck_assert_int_eq(bfs_parse_duration("-1", &d), -1);
	ck_assert_int_eq(bfs_parse_duration("1w", &d), -1);
	ck_assert_int_eq(bfs_parse_duration("1hh", &d), -1);
	ck_assert_int_eq(bfs_parse_duration("99999999999999999999", &d), -1);
	ck_assert_int_eq(bfs_parse_duration("4000d", &d), -1);

	c = parse_ok("");
	ck_assert_int_eq(c->multipart_max_age, 86400);
	bfs_config_free(c);
	c = parse_ok("[bucketfs]\nmultipart_max_age = 2s\n"
		     "[bucket a]\nprovider = s3\nbucket_name = x\nregion = r\n"
		     "multipart_max_age = 0\n"
		     "[bucket b]\nprovider = s3\nbucket_name = y\nregion = r\n");
	ck_assert_int_eq(c->multipart_max_age, 2);
	ck_assert_uint_eq(c->nbuckets, 2);
	ck_assert_int_eq(c->buckets[0].has_multipart_max_age, 1);
	ck_assert_int_eq(c->buckets[0].multipart_max_age, 0);
	ck_assert_int_eq(c->buckets[1].has_multipart_max_age, 0);
	ck_assert_int_eq(bfs_bucket_conf_copy(&cp, &c->buckets[0]), 0);
	ck_assert_int_eq(cp.has_multipart_max_age, 1);
	bfs_bucket_conf_clear(&cp);
	bfs_config_free(c);
	parse_err("[bucketfs]\nmultipart_max_age = 1w\n",
		  FAKE ":2: key 'multipart_max_age': expected a duration like "
		  "3600, 90m, 24h or 7d (0 disables)");
	parse_err("[bucketfs]\nmultipart_max_age = -3\n",
		  FAKE ":2: key 'multipart_max_age': expected a duration like "
		  "3600, 90m, 24h or 7d (0 disables)");
}
END_TEST

START_TEST(master_key_path)
{
	struct bfs_config *c = parse_ok("[bucketfs]\nmaster_key_file = /etc/bfs/mk\n");
	char *p, want[PATH_MAX + 32];

	unsetenv("CREDENTIALS_DIRECTORY");
	p = bfs_config_master_key_path(c);
	ck_assert_str_eq(p, "/etc/bfs/mk");
	free(p);
	/* Set, but no bucketfs.key there: the config's file. */
	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	p = bfs_config_master_key_path(c);
	ck_assert_str_eq(p, "/etc/bfs/mk");
	free(p);
	write_file("bucketfs.key", "k", 0600);
	p = bfs_config_master_key_path(c);
	snprintf(want, sizeof(want), "%s/bucketfs.key", tmpdir);
	ck_assert_str_eq(p, want);
	free(p);
	setenv("CREDENTIALS_DIRECTORY", "", 1);
	p = bfs_config_master_key_path(c);
	ck_assert_str_eq(p, "/etc/bfs/mk");
	free(p);
	free(c->master_key_file);
	c->master_key_file = NULL;
	ck_assert_ptr_null(bfs_config_master_key_path(c));
	bfs_config_free(c);
	unsetenv("CREDENTIALS_DIRECTORY");
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, names);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, defaults_for_empty_file);
	tcase_add_test(tc, main_section);
	tcase_add_test(tc, main_section_errors);
	tcase_add_test(tc, mount_section);
	tcase_add_test(tc, interface_example);
	tcase_add_test(tc, relative_paths_resolved);
	tcase_add_test(tc, bucket_keys);
	tcase_add_test(tc, bools);
	tcase_add_test(tc, syntax_variants);
	tcase_add_test(tc, long_lines);
	tcase_add_test(tc, section_errors);
	tcase_add_test(tc, bucket_errors);
	tcase_add_test(tc, list_metadata_key);
	tcase_add_test(tc, perms_keys);
	tcase_add_test(tc, perm_may_rule);
	tcase_add_test(tc, env_secrets);
	tcase_add_test(tc, secret_files);
	tcase_add_test(tc, load_errors);
	tcase_add_test(tc, huge_and_garbage);
	tcase_add_test(tc, conf_copy_clear_validate);
	tcase_add_test(tc, master_key_path);
	tcase_add_test(tc, multipart_max_age);
	suite_add_tcase(s, tc);
	return s;
}
