/*
 * cmd_bucket.c - `bucketctl bucket list|show|add|update|remove|test`.
 *
 * add and update build a struct bfs_bucket_conf from the options (update
 * starts from the stored settings, so only the options given change),
 * check it with the same bfs_bucket_conf_validate() the config file goes
 * through and hand it to the store, which seals the secret under the
 * master key.  The secret comes from stdin or a private file only, lives
 * in the conf struct and is wiped when the struct is cleared.
 *
 * test runs put / get / list / delete of a probe object through the
 * bucket's provider and prints the latency of each step; a failed step
 * stops the run (the probe is still deleted when it was written).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_perm.h"
#include "bfs_provider.h"
#include "ctl.h"

#define SECRET_MAX 4096          /* longest secret accepted */
#define PROBE_PREFIX ".bucketfs-probe-"

/* ---- stats lookup ------------------------------------------------------- */

/* Files and bytes of bucket name in the stats array (0 when absent). */
static void stats_for(const struct bfs_bucket_stats *st, size_t n,
		      const char *name, uint64_t *files, uint64_t *bytes)
{
	size_t i;

	*files = *bytes = 0;
	for (i = 0; i < n; i++) {
		if (st[i].bucket && !strcmp(st[i].bucket, name)) {
			*files = st[i].files;
			*bytes = st[i].bytes;
			return;
		}
	}
}

static const char *managed_str(const struct bfs_bucket_conf *b)
{
	return b->managed_by_config ? "config" : "bucketctl";
}

/* ---- bucket list -------------------------------------------------------- */

/*
 * Appends `, "<key>": <value>` to o for each of the n (key, value) pairs,
 * the value as a JSON string (null for NULL).  0 or the first bfs_buf error
 * (the rest is then skipped, as JADD does).
 */
static int json_str_fields(struct bfs_buf *o, const char *const kv[][2],
			   size_t n)
{
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < n; i++) {
		r = bfs_buf_adds(o, ", \"");
		JADD(bfs_buf_adds(o, kv[i][0]));
		JADD(bfs_buf_adds(o, "\": "));
		JADD(ctl_json_str(o, kv[i][1]));
	}
	return r;
}

static int list_json(const struct bfs_bucket_conf *bs, size_t n,
		     const struct bfs_bucket_stats *st, size_t nst)
{
	struct bfs_buf o;
	char remote[PATH_MAX + 128];
	uint64_t files, bytes;
	size_t i;
	int r = 0;

	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	fputs("[", stdout);
	for (i = 0; r == 0 && i < n; i++) {
		const struct bfs_bucket_conf *b = &bs[i];

		stats_for(st, nst, b->name, &files, &bytes);
		ctl_remote_str(b, remote, sizeof(remote));
		r = bfs_buf_adds(&o, i ? ",\n {\"id\": " : "\n {\"id\": ");
		JADD(ctl_json_str(&o, b->id));
		{
			const char *const kv[][2] = {
				{ "name", b->name },
				{ "description", b->description },
				{ "provider", bfs_provider_kind_name(b->provider) },
				{ "remote", remote },
			};

			JADD(json_str_fields(&o, kv, sizeof(kv) / sizeof(kv[0])));
		}
		JADD(bfs_buf_addf(&o, ", \"is_default\": %s, \"is_default_chat\": %s,"
				      " \"is_default_forms\": %s, \"read_only\": %s,"
				      " \"files\": %" PRIu64 ", \"bytes\": %" PRIu64
				      ", \"managed_by\": \"%s\"}",
				      b->defaults & BFS_ROLE_BIT(BFS_ROLE_GENERAL) ? "true" : "false",
				      b->defaults & BFS_ROLE_BIT(BFS_ROLE_CHAT) ? "true" : "false",
				      b->defaults & BFS_ROLE_BIT(BFS_ROLE_FORMS) ? "true" : "false",
				      b->read_only ? "true" : "false", files, bytes,
				      managed_str(b)));
		if (ctl_emit(&o, r) != 0)
			return CTL_EXIT_FAIL;
	}
	fputs(n ? "\n]\n" : "]\n", stdout);
	bfs_buf_free(&o);
	return CTL_EXIT_OK;
}

int ctl_cmd_bucket_list(struct ctl_ctx *c, const struct ctl_args *a)
{
	static const char *const head[] = { "NAME", "PROVIDER", "REMOTE",
		"DEFAULTS", "FILES", "BYTES", "MANAGED_BY" };
	struct bfs_bucket_conf *bs = NULL;
	struct bfs_bucket_stats *st = NULL;
	struct ctl_table t;
	size_t n = 0, nst = 0, i;
	int r, rc = CTL_EXIT_FAIL;

	ctl_table_init(&t, 7);
	if ((r = bfs_store_bucket_list(c->store, NULL, &bs, &n)) != 0) {
		ctl_fail("bucket list: %s", bfs_strerror(r));
		goto out;
	}
	if ((r = bfs_store_stats(c->store, NULL, &st, &nst)) != 0) {
		ctl_fail("bucket list: stats: %s", bfs_strerror(r));
		goto out;
	}
	if (a->json) {
		rc = list_json(bs, n, st, nst);
		goto out;
	}
	r = ctl_table_add(&t, head);
	for (i = 0; r == 0 && i < n; i++) {
		char remote[PATH_MAX + 128], defs[64], files[32], bytes[32];
		const char *row[7];
		uint64_t f, by;

		stats_for(st, nst, bs[i].name, &f, &by);
		ctl_remote_str(&bs[i], remote, sizeof(remote));
		ctl_defaults_str(bs[i].defaults, defs, sizeof(defs));
		snprintf(files, sizeof(files), "%" PRIu64, f);
		snprintf(bytes, sizeof(bytes), "%" PRIu64, by);
		row[0] = bs[i].name;
		row[1] = bfs_provider_kind_name(bs[i].provider);
		row[2] = remote;
		row[3] = defs;
		row[4] = files;
		row[5] = bytes;
		row[6] = managed_str(&bs[i]);
		r = ctl_table_add(&t, row);
	}
	if (ctl_table_flush(&t) != 0 || r != 0) {
		ctl_fail("bucket list: %s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	ctl_table_free(&t);
	bfs_bucket_stats_free(st, nst);
	bfs_bucket_conf_array_free(bs, n);
	return rc;
}

/* ---- bucket show -------------------------------------------------------- */

static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

/* "0750", or the default with " (default)" (buf: 16 bytes). */
static const char *mode_str(int has, uint32_t mode, uint32_t def, char *buf,
			    size_t len)
{
	snprintf(buf, len, "%04o%s", (unsigned)(has ? mode : def),
		 has ? "" : " (default)");
	return buf;
}

static void print_perms(const struct bfs_bucket_conf *b)
{
	char m[24];

	printf("owner: %s\n", b->owner ? b->owner : "(mounting user)");
	printf("group: %s\n", b->group ? b->group : "(mounting user's group)");
	printf("mode: %s\n", mode_str(b->has_mode, b->mode,
				      BFS_BUCKET_MODE_DEFAULT, m, sizeof(m)));
	printf("file_mode: %s\n", mode_str(b->has_file_mode, b->file_mode,
					   BFS_FILE_MODE_DEFAULT, m, sizeof(m)));
	printf("dir_mode: %s\n", mode_str(b->has_dir_mode, b->dir_mode,
					  BFS_DIR_MODE_DEFAULT, m, sizeof(m)));
}

/* The same as JSON members: owner/group null when unset, modes always
 * (the default when unset). */
static int json_perms(struct bfs_buf *o, const struct bfs_bucket_conf *b)
{
	int r;

	if ((r = bfs_buf_adds(o, ", \"owner\": ")) != 0 ||
	    (r = b->owner ? ctl_json_str(o, b->owner)
			  : bfs_buf_adds(o, "null")) != 0 ||
	    (r = bfs_buf_adds(o, ", \"group\": ")) != 0 ||
	    (r = b->group ? ctl_json_str(o, b->group)
			  : bfs_buf_adds(o, "null")) != 0)
		return r;
	return bfs_buf_addf(o, ", \"mode\": \"%04o\", \"file_mode\": \"%04o\","
			    " \"dir_mode\": \"%04o\"",
			    (unsigned)(b->has_mode ? b->mode : BFS_BUCKET_MODE_DEFAULT),
			    (unsigned)(b->has_file_mode ? b->file_mode :
				       BFS_FILE_MODE_DEFAULT),
			    (unsigned)(b->has_dir_mode ? b->dir_mode :
				       BFS_DIR_MODE_DEFAULT));
}

int ctl_cmd_bucket_show(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_bucket_conf b;
	struct bfs_bucket_stats *st = NULL;
	struct bfs_buf o;
	char defs[64];
	uint64_t files = 0, bytes = 0;
	size_t nst = 0;
	int r, rc = CTL_EXIT_FAIL, az;

	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	if (ctl_bucket_get(c, a->pos[0], 0, &b) != 0)
		return CTL_EXIT_FAIL;
	if ((r = bfs_store_stats(c->store, b.name, &st, &nst)) != 0) {
		ctl_fail("bucket '%s': stats: %s", b.name, bfs_strerror(r));
		goto out;
	}
	stats_for(st, nst, b.name, &files, &bytes);
	ctl_defaults_str(b.defaults, defs, sizeof(defs));
	az = b.provider == BFS_PROV_AZURE;
	if (!a->json) {
		printf("name: %s\n", b.name);
		printf("id: %s\n", or_dash(b.id));
		printf("description: %s\n", or_dash(b.description));
		printf("provider: %s\n", bfs_provider_kind_name(b.provider));
		printf("bucket_name: %s\n", or_dash(b.bucket_name));
		printf("prefix: %s\n", or_dash(b.prefix));
		printf("region: %s\n", or_dash(b.region));
		printf("endpoint: %s\n", or_dash(b.endpoint));
		/* azure keeps its account, key and SAS token in these slots */
		printf("%s: %s\n", az ? "account_name" : "account_id",
		       or_dash(b.account_id));
		printf("path: %s\n", or_dash(b.path));
		printf("path_style: %s\n", b.path_style ? "true" : "false");
		printf("read_only: %s\n", b.read_only ? "true" : "false");
		printf("access_key_id: %s\n", or_dash(b.access_key_id));
		printf("%s: %s\n", az ? "account_key" : "secret_access_key",
		       b.has_secret ? "(set)" : "(not set)");
		printf("%s: %s\n", az ? "sas_token" : "session_token",
		       b.has_session_token ? "(set)" : "(not set)");
		printf("defaults: %s\n", defs);
		print_perms(&b);
		printf("managed_by: %s\n", managed_str(&b));
		printf("files: %" PRIu64 "\n", files);
		printf("bytes: %" PRIu64 "\n", bytes);
		rc = CTL_EXIT_OK;
		goto out;
	}
	r = bfs_buf_adds(&o, "{\"id\": ");
	JADD(ctl_json_str(&o, b.id));
	{
		const char *const kv[][2] = {
			{ "name", b.name },
			{ "description", b.description },
			{ "provider", bfs_provider_kind_name(b.provider) },
			{ "bucket_name", b.bucket_name },
			{ "prefix", b.prefix },
			{ "region", b.region },
			{ "endpoint", b.endpoint },
			{ az ? "account_name" : "account_id", b.account_id },
			{ "path", b.path },
			{ "access_key_id", b.access_key_id },
		};

		JADD(json_str_fields(&o, kv, sizeof(kv) / sizeof(kv[0])));
	}
	JADD(json_perms(&o, &b));
	JADD(bfs_buf_addf(&o, ", \"%s\": %s, \"%s\": %s,"
			      " \"path_style\": %s, \"read_only\": %s,"
			      " \"is_default\": %s, \"is_default_chat\": %s,"
			      " \"is_default_forms\": %s, \"managed_by\": \"%s\","
			      " \"files\": %" PRIu64 ", \"bytes\": %" PRIu64 "}\n",
			      az ? "account_key" : "secret_access_key",
			      b.has_secret ? "\"(set)\"" : "null",
			      az ? "sas_token" : "session_token",
			      b.has_session_token ? "\"(set)\"" : "null",
			      b.path_style ? "true" : "false",
			      b.read_only ? "true" : "false",
			      b.defaults & BFS_ROLE_BIT(BFS_ROLE_GENERAL) ? "true" : "false",
			      b.defaults & BFS_ROLE_BIT(BFS_ROLE_CHAT) ? "true" : "false",
			      b.defaults & BFS_ROLE_BIT(BFS_ROLE_FORMS) ? "true" : "false",
			      managed_str(&b), files, bytes));
	if (ctl_emit(&o, r) != 0)
		goto out;
	rc = CTL_EXIT_OK;
out:
	bfs_buf_free(&o);
	bfs_bucket_stats_free(st, nst);
	bfs_bucket_conf_clear(&b);
	return rc;
}

/* ---- secrets ------------------------------------------------------------ */

/*
 * Reads at most SECRET_MAX bytes from fd into a new string (*out, wiped
 * and freed by the caller with bfs_secret_free), strips one trailing
 * newline ("\n" or "\r\n") and checks that what is left is one non-empty
 * line of printable text.  what names the source for messages.
 */
static int read_secret_fd(int fd, const char *what, char **out)
{
	char *buf = NULL;
	size_t n = 0, i;
	ssize_t got;
	int rc = CTL_EXIT_FAIL;

	*out = NULL;
	if (!(buf = malloc(SECRET_MAX + 2))) {
		ctl_fail("%s: %s", what, bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	while (n < SECRET_MAX + 1) {
		got = read(fd, buf + n, SECRET_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ctl_fail("%s: %s", what, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		/* A terminal gives one line per read: stop at its end. */
		if (isatty(fd) && buf[n - 1] == '\n')
			break;
	}
	if (n > SECRET_MAX) {
		ctl_fail("%s: secret longer than %d bytes", what, SECRET_MAX);
		goto out;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (!n) {
		ctl_fail("%s: empty secret", what);
		goto out;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch < 0x20 || ch == 0x7f) {
			ctl_fail("%s: the secret must be one line of text", what);
			goto out;
		}
	}
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, SECRET_MAX + 2);
		free(buf);
	}
	return rc;
}

/* The secret from stdin; a terminal gets a prompt and no echo. */
static int read_secret_stdin(char **out)
{
	struct termios old, quiet;
	int tty = isatty(0) && tcgetattr(0, &old) == 0, rc;

	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fputs("secret access key: ", stderr);
		fflush(stderr);
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	rc = read_secret_fd(0, "stdin", out);
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputs("\n", stderr);
	}
	return rc;
}

/* The secret from a regular file nobody but its owner may access. */
static int read_secret_file(const char *path, char **out)
{
	struct stat sb;
	int fd, rc = CTL_EXIT_FAIL;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ctl_fail("secret file %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0) {
		ctl_fail("secret file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ctl_fail("secret file %s: not a regular file", path);
		goto out;
	}
	if (sb.st_mode & 077) {
		ctl_fail("secret file %s: permissions %04o are too open (readable "
			 "by others); chmod 600 it", path,
			 (unsigned)(sb.st_mode & 07777));
		goto out;
	}
	rc = read_secret_fd(fd, path, out);
out:
	close(fd);
	return rc;
}

/* ---- settings from options ---------------------------------------------- */

/* Sets *dst to a copy of v; "" clears it to NULL when empty_clears. */
static int set_str(char **dst, const char *v, int empty_clears)
{
	char *n = NULL;

	if (!(empty_clears && !v[0]) && !(n = strdup(v)))
		return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
	free(*dst);
	*dst = n;
	return 0;
}

/* Drops the settings the (new) provider does not use. */
static void drop_foreign_settings(struct bfs_bucket_conf *b,
				  const struct ctl_args *a)
{
	const struct ctl_optval *o = a->opt;

#define DROP(opt, field) do { if (!o[opt].set) { free(b->field); \
		b->field = NULL; } } while (0)
	if (b->provider == BFS_PROV_LOCAL) {
		DROP(OPT_BUCKET_NAME, bucket_name);
		DROP(OPT_REGION, region);
		DROP(OPT_ENDPOINT, endpoint);
		DROP(OPT_ACCOUNT_ID, account_id);
		if (!o[OPT_ACCESS_KEY_ID].set) {
			bfs_secret_free(b->access_key_id);
			b->access_key_id = NULL;
		}
		if (!o[OPT_SECRET_STDIN].set && !o[OPT_SECRET_FILE].set) {
			bfs_secret_free(b->secret_access_key);
			b->secret_access_key = NULL;
			b->has_secret = 0;
		}
		bfs_secret_free(b->session_token);
		b->session_token = NULL;
		b->has_session_token = 0;
		if (!o[OPT_PATH_STYLE].set)
			b->path_style = 0;
	} else {
		DROP(OPT_PATH, path);
		if (b->provider == BFS_PROV_S3 || b->provider == BFS_PROV_GCS)
			DROP(OPT_ACCOUNT_ID, account_id);
		if (b->provider == BFS_PROV_AZURE) {
			/* azure has no region, key id or path style */
			DROP(OPT_REGION, region);
			if (!o[OPT_ACCESS_KEY_ID].set) {
				bfs_secret_free(b->access_key_id);
				b->access_key_id = NULL;
			}
			if (!o[OPT_PATH_STYLE].set)
				b->path_style = 0;
		}
	}
#undef DROP
}

/*
 * --owner, --group, --mode, --file-mode, --dir-mode into b; an empty
 * value clears the setting (the default applies).  Users and groups are
 * checked by validate() (bfs_bucket_conf_validate looks them up).
 */
static int apply_perms(struct ctl_ctx *c, const struct ctl_args *a,
		       struct bfs_bucket_conf *b)
{
	static const struct {
		int opt;
		uint32_t max;
	} modes[] = {
		{ OPT_MODE, BFS_PERM_DIR_MODE_MAX },
		{ OPT_FILE_MODE, BFS_PERM_FILE_MODE_MAX },
		{ OPT_DIR_MODE, BFS_PERM_DIR_MODE_MAX },
	};
	const struct ctl_optval *o = a->opt;
	int *has[3] = { &b->has_mode, &b->has_file_mode, &b->has_dir_mode };
	uint32_t *val[3] = { &b->mode, &b->file_mode, &b->dir_mode };
	char reason[128];
	size_t i;

	if (o[OPT_OWNER].set && set_str(&b->owner, o[OPT_OWNER].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_GROUP].set && set_str(&b->group, o[OPT_GROUP].arg, 1))
		return CTL_EXIT_FAIL;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const char *v = o[modes[i].opt].arg;

		if (!o[modes[i].opt].set)
			continue;
		*has[i] = 0;
		*val[i] = 0;
		if (!v[0])
			continue;
		if (bfs_perm_mode(v, modes[i].max, val[i], reason,
				  sizeof(reason)) != 0)
			return ctl_usage(c->cmd, "--%s: %s",
					 modes[i].opt == OPT_MODE ? "mode" :
					 modes[i].opt == OPT_FILE_MODE ?
					 "file-mode" : "dir-mode", reason);
		*has[i] = 1;
	}
	return 0;
}

/*
 * Applies the options in a to b (update: empty values clear optional
 * settings).  Returns 0, CTL_EXIT_FAIL or CTL_EXIT_USAGE (printed).
 */
static int apply_settings(struct ctl_ctx *c, const struct ctl_args *a,
			  struct bfs_bucket_conf *b, int update)
{
	const struct ctl_optval *o = a->opt;
	char real[PATH_MAX];
	struct stat sb;
	int kind, r;

	if (o[OPT_SECRET_STDIN].set + o[OPT_SECRET_FILE].set +
	    o[OPT_ACCOUNT_KEY_STDIN].set + o[OPT_ACCOUNT_KEY_FILE].set > 1)
		return ctl_usage(c->cmd, "give one of --secret-access-key-stdin, "
				 "--secret-access-key-file, --account-key-stdin, "
				 "--account-key-file");
	if (o[OPT_PROVIDER].set) {
		kind = bfs_provider_kind_parse(o[OPT_PROVIDER].arg);
		if (kind < 0)
			return ctl_usage(c->cmd, "--provider: unknown provider '%.64s' "
					 "(s3, r2, local, azure or gcs)",
					 o[OPT_PROVIDER].arg);
		if (update && kind != b->provider) {
			/* to or from azure: the stored secrets mean something
			 * else (account key vs secret access key) */
			int az_change = (b->provider == BFS_PROV_AZURE) !=
					(kind == BFS_PROV_AZURE);

			b->provider = kind;
			drop_foreign_settings(b, a);
			if (az_change) {
				bfs_secret_free(b->secret_access_key);
				b->secret_access_key = NULL;
				b->has_secret = 0;
				bfs_secret_free(b->session_token);
				b->session_token = NULL;
				b->has_session_token = 0;
			}
		}
		b->provider = kind;
	}
	if (o[OPT_DESCRIPTION].set && set_str(&b->description, o[OPT_DESCRIPTION].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_BUCKET_NAME].set && set_str(&b->bucket_name, o[OPT_BUCKET_NAME].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_PREFIX].set) {
		const char *p = o[OPT_PREFIX].arg;
		size_t n = strlen(p);
		char *np;

		/* "app1" means the folder "app1/". */
		if (!(np = malloc(n + 2)))
			return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
		snprintf(np, n + 2, "%s%s", p, n && p[n - 1] != '/' ? "/" : "");
		free(b->prefix);
		b->prefix = np;
	}
	if (o[OPT_REGION].set && set_str(&b->region, o[OPT_REGION].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_ENDPOINT].set && set_str(&b->endpoint, o[OPT_ENDPOINT].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_ACCOUNT_ID].set && set_str(&b->account_id, o[OPT_ACCOUNT_ID].arg, 1))
		return CTL_EXIT_FAIL;
	/* azure: account name, key and SAS token share the r2 account and
	 * the s3 secret / session token slots (bfs_config.h) */
	if (o[OPT_ACCOUNT_NAME].set &&
	    set_str(&b->account_id, o[OPT_ACCOUNT_NAME].arg, 1))
		return CTL_EXIT_FAIL;
	if (o[OPT_ACCOUNT_KEY_STDIN].set || o[OPT_ACCOUNT_KEY_FILE].set ||
	    o[OPT_SAS_TOKEN_FILE].set) {
		char *sec = NULL;
		int rc = o[OPT_ACCOUNT_KEY_STDIN].set ? read_secret_stdin(&sec) :
			 read_secret_file(o[OPT_SAS_TOKEN_FILE].set ?
					  o[OPT_SAS_TOKEN_FILE].arg :
					  o[OPT_ACCOUNT_KEY_FILE].arg, &sec);

		if (rc != 0)
			return rc;
		if (o[OPT_SAS_TOKEN_FILE].set) {
			bfs_secret_free(b->session_token);
			b->session_token = sec;
			b->has_session_token = 1;
		} else {
			bfs_secret_free(b->secret_access_key);
			b->secret_access_key = sec;
			b->has_secret = 1;
		}
	}
	if (o[OPT_PATH_STYLE].set)
		b->path_style = o[OPT_PATH_STYLE].bval;
	if (o[OPT_READ_ONLY].set)
		b->read_only = o[OPT_READ_ONLY].bval;
	if (o[OPT_PATH].set) {
		const char *p = o[OPT_PATH].arg;

		if (!p[0])
			return ctl_fail("--path: empty folder name");
		if (!realpath(p, real))
			return ctl_fail("--path %s: %s", p, strerror(errno));
		if (stat(real, &sb) != 0 || !S_ISDIR(sb.st_mode))
			return ctl_fail("--path %s: not a folder", p);
		if (set_str(&b->path, real, 0))
			return CTL_EXIT_FAIL;
	}
	if (o[OPT_ACCESS_KEY_ID].set) {
		bfs_secret_free(b->access_key_id);
		b->access_key_id = NULL;
		if (o[OPT_ACCESS_KEY_ID].arg[0] &&
		    !(b->access_key_id = strdup(o[OPT_ACCESS_KEY_ID].arg)))
			return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
		if (!b->access_key_id && !o[OPT_SECRET_STDIN].set &&
		    !o[OPT_SECRET_FILE].set) {
			/* No key id: no credentials at all (anonymous). */
			bfs_secret_free(b->secret_access_key);
			b->secret_access_key = NULL;
			b->has_secret = 0;
			bfs_secret_free(b->session_token);
			b->session_token = NULL;
			b->has_session_token = 0;
		}
	}
	if (o[OPT_SECRET_STDIN].set || o[OPT_SECRET_FILE].set) {
		char *sec = NULL;
		int rc = o[OPT_SECRET_STDIN].set ? read_secret_stdin(&sec) :
			 read_secret_file(o[OPT_SECRET_FILE].arg, &sec);

		if (rc != 0)
			return rc;
		bfs_secret_free(b->secret_access_key);
		b->secret_access_key = sec;
		b->has_secret = 1;
	}
	if ((r = apply_perms(c, a, b)) != 0)
		return r;
	if (!b->prefix && !(b->prefix = strdup("")))
		return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
	if (!b->region && b->provider != BFS_PROV_LOCAL &&
	    b->provider != BFS_PROV_AZURE &&
	    !(b->region = strdup(b->provider == BFS_PROV_R2 ||
				 b->provider == BFS_PROV_GCS ? "auto" : "us-east-1")))
		return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
	return 0;
}

/*
 * bfs_bucket_conf_validate() names config keys ("key 'bucket_name':
 * ..."); bucketctl users typed options, so name those instead.
 */
static int validate(const struct bfs_bucket_conf *b)
{
	char err[512], opt[64];
	const char *q, *rest;
	size_t i, n;

	if (bfs_bucket_conf_validate(b, err, sizeof(err)) == 0)
		return 0;
	if (strncmp(err, "key '", 5) != 0 || !(q = strchr(err + 5, '\'')) ||
	    strncmp(q, "': ", 3) != 0)
		return ctl_fail("bucket '%s': %s", b->name, err);
	rest = q + 3;
	n = (size_t)(q - (err + 5));
	if (n == 17 && !strncmp(err + 5, "secret_access_key", 17))
		return ctl_fail("bucket '%s': --secret-access-key-stdin or "
				"--secret-access-key-file: %s", b->name, rest);
	if (n + 3 > sizeof(opt))
		n = sizeof(opt) - 3;
	opt[0] = opt[1] = '-';
	for (i = 0; i < n; i++)
		opt[2 + i] = err[5 + i] == '_' ? '-' : err[5 + i];
	opt[2 + n] = '\0';
	return ctl_fail("bucket '%s': %s: %s", b->name, opt, rest);
}

static int check_new_name(const char *name)
{
	if (name[0] == '.' || name[0] == '@')
		return ctl_fail("bucket name '%.64s' is reserved (names starting "
				"with '.' or '@' are the mount's own entries)", name);
	if (!bfs_bucket_name_valid(name))
		return ctl_fail("invalid bucket name '%.64s' (expected "
				"[a-z0-9][a-z0-9._-]{0,62})", name);
	return 0;
}

static void created_by(char *out, size_t len)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw;

	if (sudo && sudo[0]) {
		snprintf(out, len, "%s", sudo);
		return;
	}
	pw = getpwuid(getuid());
	if (pw && pw->pw_name)
		snprintf(out, len, "%s", pw->pw_name);
	else
		snprintf(out, len, "uid %u", (unsigned)getuid());
}

static int store_fail(const char *what, const char *name, int r,
		      const char *err)
{
	return ctl_fail("%s '%s': %s%s", what, name,
			err && err[0] ? err : bfs_strerror(r),
			r == BFS_ERR_CRYPTO ? " (wrong master key?)" : "");
}

/* ---- bucket add / update ------------------------------------------------ */

int ctl_cmd_bucket_add(struct ctl_ctx *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	struct bfs_bucket_conf b, old;
	char err[CTL_ERR_LEN] = "", who[128];
	int r, rc;

	memset(&b, 0, sizeof(b));
	memset(&old, 0, sizeof(old));
	if (!a->opt[OPT_PROVIDER].set)
		return ctl_usage(c->cmd, "bucket add: --provider is required");
	if ((rc = check_new_name(name)) != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	r = bfs_store_bucket_get(c->store, name, NULL, &old);
	if (r == 0) {
		ctl_fail("bucket '%s' already exists", name);
		goto out;
	}
	if (r != BFS_ERR_NOTFOUND) {
		store_fail("bucket", name, r, NULL);
		goto out;
	}
	if (!(b.name = strdup(name))) {
		ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	if ((rc = apply_settings(c, a, &b, 0)) != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	if (validate(&b) != 0)
		goto out;
	if ((b.secret_access_key || b.session_token) && ctl_need_key(c) != 0)
		goto out;
	created_by(who, sizeof(who));
	r = bfs_store_bucket_add(c->store, &b, ctl_key(c), who, err, sizeof(err));
	if (r == BFS_ERR_EXISTS) {
		ctl_fail("bucket '%s' already exists", name);
		goto out;
	}
	if (r != 0) {
		store_fail("bucket", name, r, err);
		goto out;
	}
	printf("added bucket %s (%s)\n", name, bfs_provider_kind_name(b.provider));
	rc = CTL_EXIT_OK;
out:
	bfs_bucket_conf_clear(&old);
	bfs_bucket_conf_clear(&b);
	return rc;
}

static int any_setting_given(const struct ctl_args *a)
{
	int i;

	for (i = 0; i < OPT_COUNT; i++)
		if (a->opt[i].set)
			return 1;
	return 0;
}

static int refuse_managed(const struct ctl_ctx *c,
			  const struct bfs_bucket_conf *b, const char *verb)
{
	return ctl_fail("bucket '%s' is managed by config (%s): %s it there",
			b->name, c->cfg->file, verb);
}

int ctl_cmd_bucket_update(struct ctl_ctx *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	const struct ctl_optval *o = a->opt;
	struct bfs_bucket_conf b;
	char err[CTL_ERR_LEN] = "";
	int r, rc;

	memset(&b, 0, sizeof(b));
	if (!any_setting_given(a))
		return ctl_usage(c->cmd, "bucket update: nothing to change");
	if (ctl_bucket_get(c, name, 0, &b) != 0)
		return CTL_EXIT_FAIL;
	rc = CTL_EXIT_FAIL;
	if (b.managed_by_config) {
		refuse_managed(c, &b, "change");
		goto out;
	}
	/*
	 * Stored secrets stay sealed as they are: the store keeps them when
	 * has_secret is set and no new value is given, so no key is needed
	 * unless a new secret comes in.
	 */
	if ((rc = apply_settings(c, a, &b, 1)) != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	if (validate(&b) != 0)
		goto out;
	if ((o[OPT_SECRET_STDIN].set || o[OPT_SECRET_FILE].set) &&
	    ctl_need_key(c) != 0)
		goto out;
	r = bfs_store_bucket_update(c->store, &b, ctl_key(c), err, sizeof(err));
	if (r == BFS_ERR_PERM) {
		refuse_managed(c, &b, "change");
		goto out;
	}
	if (r != 0) {
		store_fail("bucket", name, r, err);
		goto out;
	}
	printf("updated bucket %s\n", name);
	rc = CTL_EXIT_OK;
out:
	bfs_bucket_conf_clear(&b);
	return rc;
}

/* ---- bucket remove ------------------------------------------------------ */

int ctl_cmd_bucket_remove(struct ctl_ctx *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	int force = a->opt[OPT_FORCE].set;
	struct bfs_bucket_conf b;
	struct bfs_bucket_stats *st = NULL;
	struct bfs_assignment *as = NULL;
	struct bfs_journal_entry *je = NULL;
	char err[CTL_ERR_LEN] = "", dropped[96] = "";
	uint64_t files = 0, bytes = 0;
	size_t nst = 0, nas = 0, nje = 0, nmine = 0, npend = 0, i;
	int r, rc = CTL_EXIT_FAIL;

	if (ctl_bucket_get(c, name, 0, &b) != 0)
		return CTL_EXIT_FAIL;
	if (b.managed_by_config) {
		refuse_managed(c, &b, "remove");
		goto out;
	}
	if (force) {
		/* Counted only to tell the admin what --force dropped. */
		if ((r = bfs_store_stats(c->store, name, &st, &nst)) != 0 ||
		    (r = bfs_store_assign_list(c->store, &as, &nas)) != 0 ||
		    (r = bfs_store_journal_list(c->store, &je, &nje)) != 0) {
			store_fail("bucket", name, r, NULL);
			goto out;
		}
		stats_for(st, nst, name, &files, &bytes);
		for (i = 0; i < nas; i++)
			nmine += as[i].bucket && !strcmp(as[i].bucket, name);
		for (i = 0; i < nje; i++)
			npend += je[i].bucket && !strcmp(je[i].bucket, name);
		/* Pending data is lost for good: say it first. */
		if (npend)
			snprintf(dropped, sizeof(dropped), "%zu pending upload%s "
				 "(never uploaded), ", npend, npend == 1 ? "" : "s");
	}
	r = bfs_store_bucket_remove(c->store, name, force, err, sizeof(err));
	if (r == BFS_ERR_BUSY) {
		ctl_fail("cannot remove: %s", err[0] ? err :
			 "the bucket is still referenced; use --force");
		goto out;
	}
	if (r == BFS_ERR_PERM) {
		refuse_managed(c, &b, "remove");
		goto out;
	}
	if (r != 0) {
		store_fail("bucket", name, r, err);
		goto out;
	}
	if (force)
		printf("removed bucket %s (dropped %s%" PRIu64 " index row%s, %zu "
		       "assignment%s%s; remote objects untouched)\n", name,
		       dropped, files, files == 1 ? "" : "s", nmine,
		       nmine == 1 ? "" : "s",
		       b.defaults ? ", cleared its defaults" : "");
	else
		printf("removed bucket %s\n", name);
	rc = CTL_EXIT_OK;
out:
	bfs_journal_entries_free(je, nje);
	bfs_assignments_free(as, nas);
	bfs_bucket_stats_free(st, nst);
	bfs_bucket_conf_clear(&b);
	return rc;
}

/* ---- bucket test -------------------------------------------------------- */

struct probe_find {
	const char *name;
	int found;
};

static int probe_list_cb(void *arg, const char *name, int is_dir,
			 const struct bfs_meta *m)
{
	struct probe_find *f = arg;

	(void)m;
	if (!is_dir && !strcmp(name, f->name)) {
		f->found = 1;
		return 1;
	}
	return 0;
}

static int count_list_cb(void *arg, const char *name, int is_dir,
			 const struct bfs_meta *m)
{
	(void)name;
	(void)is_dir;
	(void)m;
	++*(size_t *)arg;
	return 0;
}

/* "bucket 'B': put failed: network error" (+ ": detail"). */
static int step_fail(const char *bucket, const char *step, int r,
		     const char *detail)
{
	return ctl_fail("bucket '%s': %s failed: %s%s%s", bucket, step,
			r ? bfs_strerror(r) : "", r && detail ? ": " : "",
			detail ? detail : "");
}

int ctl_cmd_bucket_test(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_bucket_conf b;
	struct bfs_provider *p = NULL;
	const struct bfs_provider_ops *ops;
	struct probe_find find;
	struct bfs_meta m;
	unsigned char rnd[8];
	char err[CTL_ERR_LEN] = "", probe[64], *key = NULL, body[128];
	char back[sizeof(body) + 1], etag[128];
	size_t blen, got = 0, entries = 0;
	double t0;
	int r, rc = CTL_EXIT_FAIL, written = 0;

	if (ctl_bucket_get(c, a->pos[0], 1, &b) != 0)
		return CTL_EXIT_FAIL;
	t0 = ctl_now_ms();
	if ((r = bfs_provider_open(&b, &p, err, sizeof(err))) != 0) {
		step_fail(b.name, "open", r, err[0] ? err : NULL);
		goto out;
	}
	ops = p->ops;
	printf("open ok %.1f ms\n", ctl_now_ms() - t0);
	if (b.read_only) {
		/* Nothing may be written: the listing is the whole test. */
		t0 = ctl_now_ms();
		if ((r = ops->list(p->st, b.prefix ? b.prefix : "", 0,
				   count_list_cb, &entries)) != 0) {
			step_fail(b.name, "list", r, b.endpoint);
			goto out;
		}
		printf("list ok %.1f ms (%zu entries; read-only bucket: put, get "
		       "and delete skipped)\n", ctl_now_ms() - t0, entries);
		rc = CTL_EXIT_OK;
		goto out;
	}
	if ((r = bfs_random(rnd, sizeof(rnd))) != 0) {
		step_fail(b.name, "probe name", r, NULL);
		goto out;
	}
	snprintf(probe, sizeof(probe), PROBE_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if ((r = bfs_key_from_path(b.prefix ? b.prefix : "", probe, 0, &key)) != 0) {
		step_fail(b.name, "probe key", r, NULL);
		goto out;
	}
	blen = (size_t)snprintf(body, sizeof(body), "bucketfs probe %s\n", probe);
	memset(&m, 0, sizeof(m));
	m.size = blen;
	m.mode = S_IFREG | 0600;
	m.mtime = (int64_t)time(NULL);
	m.uid = (uint32_t)getuid();
	m.gid = (uint32_t)getgid();
	m.has_mode = m.has_mtime = m.has_uid = m.has_gid = 1;
	snprintf(m.content_type, sizeof(m.content_type), "text/plain");

	t0 = ctl_now_ms();
	if ((r = ops->put_buf(p->st, key, body, blen, &m, etag, sizeof(etag))) != 0) {
		step_fail(b.name, "put", r, b.endpoint);
		goto out;
	}
	written = 1;
	printf("put ok %.1f ms\n", ctl_now_ms() - t0);

	t0 = ctl_now_ms();
	if ((r = ops->get_range(p->st, key, 0, sizeof(back), back, &got, NULL)) != 0) {
		step_fail(b.name, "get", r, b.endpoint);
		goto out;
	}
	if (got != blen || memcmp(back, body, blen) != 0) {
		step_fail(b.name, "get", 0, "the object read back differs from "
			  "what was put");
		goto out;
	}
	printf("get ok %.1f ms\n", ctl_now_ms() - t0);

	t0 = ctl_now_ms();
	find.name = probe;
	find.found = 0;
	if ((r = ops->list(p->st, b.prefix ? b.prefix : "", 0, probe_list_cb,
			   &find)) != 0) {
		step_fail(b.name, "list", r, b.endpoint);
		goto out;
	}
	if (!find.found) {
		step_fail(b.name, "list", 0, "the probe object is missing from "
			  "the listing");
		goto out;
	}
	printf("list ok %.1f ms\n", ctl_now_ms() - t0);

	t0 = ctl_now_ms();
	written = 0;
	if ((r = ops->del(p->st, key)) != 0) {
		step_fail(b.name, "delete", r, b.endpoint);
		goto out;
	}
	printf("delete ok %.1f ms\n", ctl_now_ms() - t0);
	printf("bucket %s ok\n", b.name);
	rc = CTL_EXIT_OK;
out:
	if (written)
		ops->del(p->st, key);   /* best effort after a failed step */
	free(key);
	bfs_provider_close(p);
	bfs_bucket_conf_clear(&b);
	return rc;
}
