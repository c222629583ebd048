/*
 * config.c - the ini config file (see bfs_config.h, INTERFACE.md "Config
 * file").
 *
 * inih drives the parse through ini_parse_stream() with our own reader.
 * inih calls the reader once per line and runs the handler for that line
 * before asking for the next one, so the reader is where we know the
 * current line number and section: it counts lines, checks text hygiene
 * (no control bytes, valid UTF-8), handles "[section]" headers itself
 * (inih truncates section names, gives no callback for an empty section
 * and no header line number) and strips leading blanks (so inih's
 * continuation-line feature never turns an indented line into a repeated
 * key).  inih's line buffer is ini_max_line (200) bytes; a longer key line
 * is split by the reader with inih's rules and handed over as "name=\1",
 * the handler then takes the value from the reader's stash.
 *
 * The first error stops the parse (the reader returns EOF) and is reported
 * as "FILE:LINE: key 'KEY': reason" or "FILE:LINE: section 'NAME': reason".
 * Cross-field rules of a bucket are checked when its section ends, by the
 * same bucket_check() that bfs_bucket_conf_validate() exposes to bucketctl.
 *
 * Secrets (secret_access_key, session_token; azure's account_key and
 * sas_token, kept in the same two slots) are resolved while parsing:
 * "env:VAR" from the environment, secret_access_key_file from a file that
 * others cannot access; every copy is wiped with OPENSSL_cleanse.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_io.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_perm.h"
#include "bfs_pg.h"

#define CFG_LINE_MAX 8192          /* longest accepted config line */
#define CFG_FILE_MAX (1024 * 1024) /* largest accepted config file */
#define CFG_SECRET_MAX 4096        /* largest secret file */
#define CFG_LONG_MARK "\001"       /* value of a line the reader stashed */

/* ---- small name tables ---------------------------------------------- */

static const char *const role_names[BFS_ROLE_COUNT] = {
	"general", "chat", "forms"
};
static const char *const provider_names[] = { "local", "s3", "r2", "azure",
					      "gcs" };
#define PROVIDER_KINDS 5

int bfs_role_parse(const char *s)
{
	int i;

	for (i = 0; s && i < BFS_ROLE_COUNT; i++)
		if (strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

const char *bfs_role_name(int role)
{
	if (role < 0 || role >= BFS_ROLE_COUNT)
		return NULL;
	return role_names[role];
}

int bfs_provider_kind_parse(const char *s)
{
	int i;

	for (i = 0; s && i < PROVIDER_KINDS; i++)
		if (strcmp(s, provider_names[i]) == 0)
			return i;
	return -1;
}

const char *bfs_provider_kind_name(int kind)
{
	if (kind < 0 || kind >= PROVIDER_KINDS)
		return NULL;
	return provider_names[kind];
}

/* ---- values --------------------------------------------------------- */

int bfs_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ull << 10;
		break;
	case 'm': case 'M':
		mult = 1ull << 20;
		break;
	case 'g': case 'G':
		mult = 1ull << 30;
		break;
	case 't': case 'T':
		mult = 1ull << 40;
		break;
	default:
		return -1;
	}
	if (*p && p[1])
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int bfs_parse_duration(const char *s, int64_t *out)
{
	int64_t v = 0, mult = 1;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 10ll * 366 * 86400)
			return -1;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return -1;
	}
	if (*p && p[1])
		return -1;
	if (v * mult > 10ll * 366 * 86400)
		return -1;
	*out = v * mult;
	return 0;
}

/* true/false/yes/no/on/off/1/0 -> 1/0, -1 otherwise. */
static int parse_bool(const char *s)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static int all_chars(const char *s, const char *extra, size_t max)
{
	size_t i;

	if (!s || !s[0])
		return 0;
	for (i = 0; s[i]; i++) {
		int c = (unsigned char)s[i];

		if (i >= max)
			return 0;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (!extra || !strchr(extra, c))
			return 0;
	}
	return 1;
}

/* Remote bucket names as S3-compatible services accept them. */
static int remote_bucket_valid(const char *s)
{
	return all_chars(s, "._-", 255);
}

static int region_valid(const char *s)
{
	return all_chars(s, "_-", 64);
}

static int account_id_valid(const char *s)
{
	return all_chars(s, NULL, 64);
}

/* Azure container names: 3-63 of [a-z0-9-], starting with a letter or
 * digit, no "--". */
static int container_valid(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] == '-' && s[i + 1] != '-')))
			return 0;
	return 1;
}

/* http:// or https:// followed by a host, no blanks or control bytes. */
static int endpoint_valid(const char *s)
{
	const char *host;
	size_t i;

	if (!s)
		return 0;
	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return 0;
	if (!host[0] || host[0] == '/' || host[0] == ':')
		return 0;
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return strlen(s) <= 2048;
}

/* "" or a key with a folder marker: "a/", "a/b/". */
static int prefix_valid(const char *p)
{
	size_t n;

	if (!p || !p[0])
		return 1;
	n = strlen(p);
	return p[n - 1] == '/' && bfs_key_check(p, 1) == 0;
}

/* ---- bucket settings ------------------------------------------------ */

enum bkey {
	BK_PROVIDER, BK_DESCRIPTION, BK_BUCKET_NAME, BK_PREFIX, BK_REGION,
	BK_ENDPOINT, BK_ACCOUNT_ID, BK_PATH, BK_PATH_STYLE, BK_READ_ONLY,
	BK_ACCESS_KEY_ID, BK_SECRET, BK_SECRET_FILE, BK_SESSION_TOKEN,
	BK_DEFAULT, BK_LIST_METADATA, BK_MULTIPART_MAX_AGE,
	BK_OWNER, BK_GROUP, BK_MODE, BK_FILE_MODE, BK_DIR_MODE,
	BK_ACCOUNT_NAME, BK_ACCOUNT_KEY, BK_ACCOUNT_KEY_FILE, BK_SAS_TOKEN,
	BK_SAS_TOKEN_FILE, BK_COUNT,
	BK_NAME = BK_COUNT           /* the section name, for messages */
};

static const char *const bkey_names[BK_COUNT + 1] = {
	"provider", "description", "bucket_name", "prefix", "region",
	"endpoint", "account_id", "path", "path_style", "read_only",
	"access_key_id", "secret_access_key", "secret_access_key_file",
	"session_token", "default", "list_metadata", "multipart_max_age",
	"owner", "group", "mode", "file_mode", "dir_mode",
	"account_name", "account_key", "account_key_file", "sas_token",
	"sas_token_file", "name"
};

enum mkey {
	MK_DATABASE, MK_CACHE_DIR, MK_CACHE_SIZE, MK_MASTER_KEY_FILE,
	MK_LOG_LEVEL, MK_UPLOAD_TIMEOUT, MK_CA_BUNDLE, MK_LIST_METADATA,
	MK_MULTIPART_MAX_AGE, MK_PRESIGN_EXPIRES, MK_ADMIN_GROUP,
	MK_DATABASE_PASSWORD, MK_DATABASE_PASSWORD_FILE,
	MK_COUNT
};

static const char *const mkey_names[MK_COUNT] = {
	"database", "cache_dir", "cache_size", "master_key_file",
	"log_level", "upload_timeout", "ca_bundle", "list_metadata",
	"multipart_max_age", "presign_expires", "admin_group",
	"database_password", "database_password_file"
};

static const char *const list_meta_names[] = { NULL, "head", "listing" };

int bfs_list_meta_parse(const char *s)
{
	int i;

	for (i = BFS_LIST_META_HEAD; i <= BFS_LIST_META_LISTING; i++)
		if (s && strcmp(s, list_meta_names[i]) == 0)
			return i;
	return -1;
}

const char *bfs_list_meta_name(int v)
{
	return v >= BFS_LIST_META_HEAD && v <= BFS_LIST_META_LISTING
	       ? list_meta_names[v] : NULL;
}

static void free_secret(char **p)
{
	if (*p) {
		OPENSSL_cleanse(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void bfs_bucket_conf_clear(struct bfs_bucket_conf *b)
{
	if (!b)
		return;
	free_secret(&b->secret_access_key);
	free_secret(&b->session_token);
	free_secret(&b->access_key_id);
	free(b->id);
	free(b->name);
	free(b->description);
	free(b->bucket_name);
	free(b->prefix);
	free(b->region);
	free(b->endpoint);
	free(b->account_id);
	free(b->path);
	free(b->owner);
	free(b->group);
	memset(b, 0, sizeof(*b));
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : BFS_ERR_NOMEM;
}

int bfs_bucket_conf_copy(struct bfs_bucket_conf *dst,
			 const struct bfs_bucket_conf *src)
{
	int r = BFS_ERR_NOMEM;

	memset(dst, 0, sizeof(*dst));
	dst->provider = src->provider;
	dst->path_style = src->path_style;
	dst->read_only = src->read_only;
	dst->list_metadata = src->list_metadata;
	dst->has_secret = src->has_secret;
	dst->has_session_token = src->has_session_token;
	dst->defaults = src->defaults;
	dst->managed_by_config = src->managed_by_config;
	dst->has_multipart_max_age = src->has_multipart_max_age;
	dst->multipart_max_age = src->multipart_max_age;
	dst->has_mode = src->has_mode;
	dst->has_file_mode = src->has_file_mode;
	dst->has_dir_mode = src->has_dir_mode;
	dst->mode = src->mode;
	dst->file_mode = src->file_mode;
	dst->dir_mode = src->dir_mode;
	if (dup_opt(&dst->owner, src->owner) ||
	    dup_opt(&dst->group, src->group) ||
	    dup_opt(&dst->id, src->id) ||
	    dup_opt(&dst->name, src->name) ||
	    dup_opt(&dst->description, src->description) ||
	    dup_opt(&dst->bucket_name, src->bucket_name) ||
	    dup_opt(&dst->prefix, src->prefix) ||
	    dup_opt(&dst->region, src->region) ||
	    dup_opt(&dst->endpoint, src->endpoint) ||
	    dup_opt(&dst->account_id, src->account_id) ||
	    dup_opt(&dst->path, src->path) ||
	    dup_opt(&dst->access_key_id, src->access_key_id) ||
	    dup_opt(&dst->secret_access_key, src->secret_access_key) ||
	    dup_opt(&dst->session_token, src->session_token))
		goto out;
	r = 0;
out:
	if (r)
		bfs_bucket_conf_clear(dst);
	return r;
}

static int opt_eq(const char *a, const char *b)
{
	return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

int bfs_bucket_perms_same(const struct bfs_bucket_conf *a,
			  const struct bfs_bucket_conf *b)
{
	return opt_eq(a->owner, b->owner) && opt_eq(a->group, b->group) &&
	       a->has_mode == b->has_mode &&
	       (!a->has_mode || a->mode == b->mode) &&
	       a->has_file_mode == b->has_file_mode &&
	       (!a->has_file_mode || a->file_mode == b->file_mode) &&
	       a->has_dir_mode == b->has_dir_mode &&
	       (!a->has_dir_mode || a->dir_mode == b->dir_mode);
}

/*
 * owner, group and the modes of one bucket: names must exist here (the
 * daemon resolves them again when it opens the bucket), modes in range.
 */
static int perms_check(const struct bfs_bucket_conf *b, int *key,
		       char *reason, size_t rlen)
{
	uint32_t id;

	if (b->owner && bfs_perm_user(b->owner, &id, reason, rlen) != 0) {
		*key = BK_OWNER;
		return BFS_ERR_INVAL;
	}
	if (b->group && bfs_perm_group(b->group, &id, reason, rlen) != 0) {
		*key = BK_GROUP;
		return BFS_ERR_INVAL;
	}
	if ((b->has_mode && b->mode > BFS_PERM_DIR_MODE_MAX) ||
	    (b->has_file_mode && b->file_mode > BFS_PERM_FILE_MODE_MAX) ||
	    (b->has_dir_mode && b->dir_mode > BFS_PERM_DIR_MODE_MAX)) {
		*key = b->has_mode && b->mode > BFS_PERM_DIR_MODE_MAX ? BK_MODE :
		       b->has_dir_mode && b->dir_mode > BFS_PERM_DIR_MODE_MAX ?
		       BK_DIR_MODE : BK_FILE_MODE;
		snprintf(reason, rlen, "mode out of range");
		return BFS_ERR_INVAL;
	}
	return 0;
}

/*
 * Cross-field rules of one bucket.  On failure *key is the bkey to blame
 * (BK_NAME for the name itself) and reason says why.  The value syntax
 * rules are repeated here so that buckets built by bucketctl from the
 * command line pass the same checks as config buckets.
 */
static int bucket_check(const struct bfs_bucket_conf *b, int *key,
			char *reason, size_t rlen)
{
	int remote = b->provider == BFS_PROV_S3 || b->provider == BFS_PROV_R2 ||
		     b->provider == BFS_PROV_GCS;
	int has_secret = b->secret_access_key || b->has_secret;
	int has_token = b->session_token || b->has_session_token;
	const char *pname = bfs_provider_kind_name(b->provider);

#define FAIL(k, ...) do { *key = (k); snprintf(reason, rlen, __VA_ARGS__); \
		return BFS_ERR_INVAL; } while (0)

	if (!b->name || !bfs_bucket_name_valid(b->name))
		FAIL(BK_NAME, "invalid bucket name (expected [a-z0-9][a-z0-9._-]{0,62})");
	if (!pname)
		FAIL(BK_PROVIDER, "required (s3, r2, local, azure or gcs)");
	if (b->prefix && !prefix_valid(b->prefix))
		FAIL(BK_PREFIX, "not a safe key prefix");
	if (b->defaults & ~((1u << BFS_ROLE_COUNT) - 1))
		FAIL(BK_DEFAULT, "unknown role");
	if (b->provider == BFS_PROV_LOCAL) {
		if (!b->path)
			FAIL(BK_PATH, "required for provider local");
		if (b->path[0] != '/')
			FAIL(BK_PATH, "must be an absolute path");
		if (b->bucket_name)
			FAIL(BK_BUCKET_NAME, "not used by provider local");
		if (b->region)
			FAIL(BK_REGION, "not used by provider local");
		if (b->endpoint)
			FAIL(BK_ENDPOINT, "not used by provider local");
		if (b->account_id)
			FAIL(BK_ACCOUNT_ID, "not used by provider local");
		if (b->access_key_id)
			FAIL(BK_ACCESS_KEY_ID, "not used by provider local");
		if (has_secret)
			FAIL(BK_SECRET, "not used by provider local");
		if (has_token)
			FAIL(BK_SESSION_TOKEN, "not used by provider local");
	}
	if (remote) {
		if (b->path)
			FAIL(BK_PATH, "not used by provider %s", pname);
		if (!b->bucket_name)
			FAIL(BK_BUCKET_NAME, "required for provider %s", pname);
		if (!remote_bucket_valid(b->bucket_name))
			FAIL(BK_BUCKET_NAME, "invalid remote bucket name");
		if (b->region && !region_valid(b->region))
			FAIL(BK_REGION, "invalid region");
		if (b->endpoint && !endpoint_valid(b->endpoint))
			FAIL(BK_ENDPOINT, "must be an http:// or https:// URL");
		if (b->account_id && !account_id_valid(b->account_id))
			FAIL(BK_ACCOUNT_ID, "must be letters and digits");
		if (b->provider == BFS_PROV_R2 && !b->account_id && !b->endpoint)
			FAIL(BK_ACCOUNT_ID, "required for provider r2 (or endpoint)");
		if (b->provider != BFS_PROV_R2 && b->account_id)
			FAIL(BK_ACCOUNT_ID, "not used by provider %s", pname);
		if (has_secret && !b->access_key_id)
			FAIL(BK_ACCESS_KEY_ID, "required with secret_access_key");
		if (b->access_key_id && !has_secret)
			FAIL(BK_SECRET, "required with access_key_id");
		if (has_token && !b->access_key_id)
			FAIL(BK_SESSION_TOKEN,
			     "needs access_key_id and secret_access_key");
	}
	if (perms_check(b, key, reason, rlen) != 0)
		return BFS_ERR_INVAL;
	if (b->provider == BFS_PROV_AZURE) {
		/* account_name, account_key and sas_token live in the
		 * account_id, secret_access_key and session_token slots */
		if (b->path)
			FAIL(BK_PATH, "not used by provider azure");
		if (!b->bucket_name)
			FAIL(BK_BUCKET_NAME, "required for provider azure (the container)");
		if (!container_valid(b->bucket_name))
			FAIL(BK_BUCKET_NAME, "invalid container name (3-63 of a-z, 0-9, -)");
		if (!b->account_id)
			FAIL(BK_ACCOUNT_NAME, "required for provider azure");
		if (!account_id_valid(b->account_id))
			FAIL(BK_ACCOUNT_NAME, "must be letters and digits");
		if (b->endpoint && !endpoint_valid(b->endpoint))
			FAIL(BK_ENDPOINT, "must be an http:// or https:// URL");
		if (b->region)
			FAIL(BK_REGION, "not used by provider azure");
		if (b->access_key_id)
			FAIL(BK_ACCESS_KEY_ID, "not used by provider azure "
			     "(account_key or sas_token)");
		if (has_secret && has_token)
			FAIL(BK_SAS_TOKEN, "give account_key or sas_token, not both");
		if (!has_secret && !has_token)
			FAIL(BK_ACCOUNT_KEY, "required for provider azure "
			     "(or sas_token)");
	}
#undef FAIL
	return 0;
}

int bfs_bucket_conf_validate(const struct bfs_bucket_conf *b, char *err,
			     size_t errlen)
{
	char reason[256];
	int key = BK_NAME, r;

	r = bucket_check(b, &key, reason, sizeof(reason));
	if (r && err && errlen)
		snprintf(err, errlen, "key '%s': %s", bkey_names[key], reason);
	else if (err && errlen)
		err[0] = '\0';
	return r;
}

/* ---- parse context ---------------------------------------------------- */

enum cfg_section { SEC_NONE, SEC_MAIN, SEC_BUCKET, SEC_MOUNT };

/* Keys of the [mount] section. */
enum mtkey { MT_CACHE, MT_COUNT };

static const char *const mtkey_names[MT_COUNT] = { "cache" };

struct cfg_ctx {
	/* reader */
	const char *text;
	size_t len, pos;
	size_t lineno;
	char *stash;               /* value of an over-long line (may be a secret) */
	/* result */
	struct bfs_config *cfg;
	size_t balloc;
	const char *fname;         /* as given by the caller, for messages */
	char *err;
	size_t errlen;
	size_t err_line;           /* 0: no error yet */
	int err_code;
	/* current section */
	enum cfg_section sec;
	size_t sec_line;
	char *sec_text;            /* "bucket NAME" as written */
	int main_done;
	int mount_done;
	size_t key_line[BK_COUNT]; /* 0: key not set in this section */
	size_t mkey_line[MK_COUNT];
	size_t mtkey_line[MT_COUNT];
};

static void cfg_fail(struct cfg_ctx *x, size_t line, int code,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records the first error only: "FILE:LINE: <formatted>". */
static void cfg_fail(struct cfg_ctx *x, size_t line, int code,
		     const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (x->err_line)
		return;
	x->err_line = line ? line : 1;
	x->err_code = code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->err && x->errlen)
		snprintf(x->err, x->errlen, "%s:%zu: %s", x->fname,
			 x->err_line, msg);
}

static struct bfs_bucket_conf *cur_bucket(struct cfg_ctx *x)
{
	return &x->cfg->buckets[x->cfg->nbuckets - 1];
}

/* dir + "/" + rel unless rel is absolute; *out NULL on failure. */
static int make_abs(const char *dir, const char *rel, char **out)
{
	size_t dl, rl;

	*out = NULL;
	if (rel[0] == '/') {
		*out = strdup(rel);
		return *out ? 0 : BFS_ERR_NOMEM;
	}
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	dl = strlen(dir);
	rl = strlen(rel);
	if (dl && dir[dl - 1] == '/')
		dl--;
	*out = malloc(dl + 1 + rl + 1);
	if (!*out)
		return BFS_ERR_NOMEM;
	memcpy(*out, dir, dl);
	(*out)[dl] = '/';
	memcpy(*out + dl + 1, rel, rl + 1);
	if (rl == 0)
		(*out)[dl ? dl : 1] = '\0';  /* "." alone: the folder itself */
	return 0;
}

/*
 * Absolute file and folder of the config file: realpath() of its folder
 * when that exists, else the lexical path (so the pure parser also works
 * on names of files that do not exist, as in the unit tests).
 */
static int cfg_locate(const char *filename, char **file, char **dir)
{
	const char *slash = strrchr(filename, '/');
	char *d = NULL, *real = NULL, *cwd = NULL;
	const char *base = slash ? slash + 1 : filename;
	int r = BFS_ERR_NOMEM;

	*file = NULL;
	*dir = NULL;
	if (slash == filename)
		d = strdup("/");
	else if (slash)
		d = strndup(filename, (size_t)(slash - filename));
	else
		d = strdup(".");
	if (!d)
		goto out;
	real = realpath(d, NULL);
	if (!real) {
		if (d[0] == '/') {
			real = d;
			d = NULL;
		} else {
			cwd = getcwd(NULL, 0);
			if (!cwd) {
				r = BFS_ERR_IO;
				goto out;
			}
			r = make_abs(cwd, d, &real);
			if (r)
				goto out;
			r = BFS_ERR_NOMEM;
		}
	}
	if (make_abs(real, base, file))
		goto out;
	*dir = real;
	real = NULL;
	r = 0;
out:
	free(cwd);
	free(real);
	free(d);
	return r;
}

/* ---- section handling ------------------------------------------------ */

/*
 * azure's own key names share slots with the S3 ones (account_id,
 * secret_access_key, session_token): each family only with its providers.
 * Fails the parse and returns 1 on a key of the other family.
 */
static int azure_keys_check(struct cfg_ctx *x, const struct bfs_bucket_conf *b)
{
	static const int az_only[] = { BK_ACCOUNT_NAME, BK_ACCOUNT_KEY,
		BK_ACCOUNT_KEY_FILE, BK_SAS_TOKEN, BK_SAS_TOKEN_FILE };
	static const int s3_only[] = { BK_ACCOUNT_ID, BK_ACCESS_KEY_ID,
		BK_SECRET, BK_SECRET_FILE, BK_SESSION_TOKEN, BK_PATH_STYLE };
	int az = b->provider == BFS_PROV_AZURE;
	const int *v = az ? s3_only : az_only;
	size_t i, n = az ? sizeof(s3_only) / sizeof(s3_only[0])
		      : sizeof(az_only) / sizeof(az_only[0]);

	for (i = 0; i < n; i++) {
		if (!x->key_line[v[i]])
			continue;
		cfg_fail(x, x->key_line[v[i]], BFS_ERR_CONFIG,
			 "key '%s': not used by provider %s%s", bkey_names[v[i]],
			 bfs_provider_kind_name(b->provider),
			 az ? " (account_name, account_key, sas_token)" : "");
		return 1;
	}
	return 0;
}

/* Applies defaults and checks a finished bucket section. */
static void bucket_finish(struct cfg_ctx *x)
{
	struct bfs_bucket_conf *b = cur_bucket(x);
	char reason[256];
	int key = BK_NAME;
	size_t line;

	if (!x->key_line[BK_PROVIDER]) {
		cfg_fail(x, x->sec_line, BFS_ERR_CONFIG,
			 "key 'provider': required (s3, r2, local, azure or gcs)");
		return;
	}
	if (!b->prefix && !(b->prefix = strdup(""))) {
		cfg_fail(x, x->sec_line, BFS_ERR_NOMEM, "out of memory");
		return;
	}
	if (azure_keys_check(x, b))
		return;
	if (!b->region && b->provider != BFS_PROV_LOCAL &&
	    b->provider != BFS_PROV_AZURE) {
		b->region = strdup(b->provider == BFS_PROV_R2 ||
				   b->provider == BFS_PROV_GCS ? "auto" : "us-east-1");
		if (!b->region) {
			cfg_fail(x, x->sec_line, BFS_ERR_NOMEM, "out of memory");
			return;
		}
	}
	if (bucket_check(b, &key, reason, sizeof(reason)) == 0)
		return;
	line = key < BK_COUNT && x->key_line[key] ? x->key_line[key] : x->sec_line;
	if (key == BK_NAME)
		cfg_fail(x, line, BFS_ERR_CONFIG, "section '%s': %s",
			 x->sec_text, reason);
	else
		cfg_fail(x, line, BFS_ERR_CONFIG, "key '%s': %s",
			 bkey_names[key], reason);
}

static void section_end(struct cfg_ctx *x)
{
	if (x->sec == SEC_BUCKET && !x->err_line)
		bucket_finish(x);
	x->sec = SEC_NONE;
	free(x->sec_text);
	x->sec_text = NULL;
	memset(x->key_line, 0, sizeof(x->key_line));
	memset(x->mkey_line, 0, sizeof(x->mkey_line));
	memset(x->mtkey_line, 0, sizeof(x->mtkey_line));
}

/* "[bucketfs]" or "[bucket NAME]": name is the trimmed text in brackets. */
static void section_begin(struct cfg_ctx *x, const char *name)
{
	struct bfs_config *c = x->cfg;
	struct bfs_bucket_conf *b;
	const char *bname;
	size_t i;

	section_end(x);
	if (x->err_line)
		return;
	x->sec_line = x->lineno;
	x->sec_text = strdup(name);
	if (!x->sec_text) {
		cfg_fail(x, x->lineno, BFS_ERR_NOMEM, "out of memory");
		return;
	}
	if (strcmp(name, "bucketfs") == 0) {
		if (x->main_done) {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
				 "section '%s': duplicate section", name);
			return;
		}
		x->main_done = 1;
		x->sec = SEC_MAIN;
		return;
	}
	if (strcmp(name, "mount") == 0) {
		if (x->mount_done) {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
				 "section '%s': duplicate section", name);
			return;
		}
		x->mount_done = 1;
		x->sec = SEC_MOUNT;
		return;
	}
	if (strncmp(name, "bucket", 6) != 0 ||
	    (name[6] != ' ' && name[6] != '\t' && name[6] != '\0')) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "section '%s': unknown section", name);
		return;
	}
	bname = name + 6;
	while (*bname == ' ' || *bname == '\t')
		bname++;
	if (!*bname) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "section '%s': missing bucket name", name);
		return;
	}
	if (!bfs_bucket_name_valid(bname)) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "section '%s': invalid bucket name (expected [a-z0-9][a-z0-9._-]{0,62})",
			 name);
		return;
	}
	for (i = 0; i < c->nbuckets; i++) {
		if (strcmp(c->buckets[i].name, bname) == 0) {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
				 "section '%s': duplicate bucket", name);
			return;
		}
	}
	if (c->nbuckets == x->balloc) {
		size_t na = x->balloc ? x->balloc * 2 : 4;
		struct bfs_bucket_conf *nb = realloc(c->buckets, na * sizeof(*nb));

		if (!nb) {
			cfg_fail(x, x->lineno, BFS_ERR_NOMEM, "out of memory");
			return;
		}
		c->buckets = nb;
		x->balloc = na;
	}
	b = &c->buckets[c->nbuckets++];
	memset(b, 0, sizeof(*b));
	b->provider = -1;
	b->managed_by_config = 1;
	b->name = strdup(bname);
	if (!b->name) {
		cfg_fail(x, x->lineno, BFS_ERR_NOMEM, "out of memory");
		return;
	}
	x->sec = SEC_BUCKET;
}

/* ---- key handling ---------------------------------------------------- */

/*
 * Resolves a secret value: "env:VAR" from the environment, else the
 * literal.  *out is a new string; reason filled on failure.
 */
static int secret_value(const char *v, char **out, char *reason, size_t rlen)
{
	const char *e;

	*out = NULL;
	if (strncmp(v, "env:", 4) == 0) {
		if (!all_chars(v + 4, "_", 255) || (v[4] >= '0' && v[4] <= '9')) {
			snprintf(reason, rlen, "bad environment variable name '%s'", v + 4);
			return BFS_ERR_CONFIG;
		}
		e = getenv(v + 4);
		if (!e) {
			snprintf(reason, rlen, "environment variable %s is not set", v + 4);
			return BFS_ERR_CONFIG;
		}
		if (!e[0]) {
			snprintf(reason, rlen, "environment variable %s is empty", v + 4);
			return BFS_ERR_CONFIG;
		}
		v = e;
	}
	*out = strdup(v);
	if (!*out) {
		snprintf(reason, rlen, "out of memory");
		return BFS_ERR_NOMEM;
	}
	return 0;
}

/*
 * Reads a secret file: a regular file no one but owner and group can
 * access (openssh sshkey_perm_ok spirit), one line, trailing newline
 * stripped.
 */
static int secret_file(const char *path, char **out, char *reason, size_t rlen)
{
	char buf[CFG_SECRET_MAX + 1];
	struct stat st;
	size_t n = 0, i;
	ssize_t got;
	int fd = -1, r = BFS_ERR_CONFIG;

	*out = NULL;
	/* O_NONBLOCK: a FIFO must not hang the parse; it is refused below. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(reason, rlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(reason, rlen, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, rlen, "%s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 0007) {
		snprintf(reason, rlen,
			 "%s is accessible by others (mode %04o); chmod o-rwx it",
			 path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((got = bfs_read_full(fd, buf, sizeof(buf))) < 0) {
		snprintf(reason, rlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	n = (size_t)got;
	if (n > CFG_SECRET_MAX) {
		snprintf(reason, rlen, "%s is larger than %d bytes", path, CFG_SECRET_MAX);
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {
		snprintf(reason, rlen, "%s is empty", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(reason, rlen, "%s must hold one line of text", path);
			goto out;
		}
	}
	*out = strndup(buf, n);
	if (!*out) {
		snprintf(reason, rlen, "out of memory");
		r = BFS_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return r;
}

/* "general, chat" -> role mask; -1 with reason on a bad item. */
static int parse_roles(const char *v, unsigned *mask, char *reason, size_t rlen)
{
	const char *p = v;

	*mask = 0;
	if (!*v)
		return 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *s = p, *e = comma ? comma : p + strlen(p);
		char item[32];
		int role;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (s == e) {
			snprintf(reason, rlen, "empty item in role list");
			return -1;
		}
		if ((size_t)(e - s) >= sizeof(item)) {
			snprintf(reason, rlen, "unknown role (expected general, chat or forms)");
			return -1;
		}
		memcpy(item, s, (size_t)(e - s));
		item[e - s] = '\0';
		role = bfs_role_parse(item);
		if (role < 0) {
			snprintf(reason, rlen,
				 "unknown role '%s' (expected general, chat or forms)", item);
			return -1;
		}
		*mask |= BFS_ROLE_BIT(role);
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* owner, group, mode, file_mode, dir_mode of a [bucket NAME] section. */
static int bucket_perm_key(struct bfs_bucket_conf *b, int k, const char *v,
			   char *reason, size_t rlen)
{
	uint32_t id;
	int r;

	switch (k) {
	case BK_OWNER:
	case BK_GROUP:
		r = k == BK_OWNER ? bfs_perm_user(v, &id, reason, rlen)
				  : bfs_perm_group(v, &id, reason, rlen);
		if (r == BFS_ERR_NOMEM)
			return r;
		if (r)
			return BFS_ERR_CONFIG;
		if (dup_opt(k == BK_OWNER ? &b->owner : &b->group, v)) {
			snprintf(reason, rlen, "out of memory");
			return BFS_ERR_NOMEM;
		}
		return 0;
	case BK_MODE:
		b->has_mode = 1;
		return bfs_perm_mode(v, BFS_PERM_DIR_MODE_MAX, &b->mode, reason,
				     rlen) ? BFS_ERR_CONFIG : 0;
	case BK_FILE_MODE:
		b->has_file_mode = 1;
		return bfs_perm_mode(v, BFS_PERM_FILE_MODE_MAX, &b->file_mode,
				     reason, rlen) ? BFS_ERR_CONFIG : 0;
	default:
		b->has_dir_mode = 1;
		return bfs_perm_mode(v, BFS_PERM_DIR_MODE_MAX, &b->dir_mode,
				     reason, rlen) ? BFS_ERR_CONFIG : 0;
	}
}

/* Sets one key of a [bucket NAME] section; reason filled on failure. */
static int bucket_key(struct cfg_ctx *x, int k, const char *v, char *reason,
		      size_t rlen)
{
	struct bfs_bucket_conf *b = cur_bucket(x);
	size_t i, n;
	int r = BFS_ERR_CONFIG, t;

	switch (k) {
	case BK_PROVIDER:
		b->provider = bfs_provider_kind_parse(v);
		if (b->provider < 0) {
			snprintf(reason, rlen, "unknown provider '%s' (expected "
				 "s3, r2, local, azure or gcs)", v);
			goto out;
		}
		break;
	case BK_DESCRIPTION:
		if (dup_opt(&b->description, v))
			goto nomem;
		break;
	case BK_BUCKET_NAME:
		if (!remote_bucket_valid(v)) {
			snprintf(reason, rlen, "invalid remote bucket name");
			goto out;
		}
		if (dup_opt(&b->bucket_name, v))
			goto nomem;
		break;
	case BK_PREFIX:
		while (*v == '/')
			v++;
		n = strlen(v);
		if (n == 0) {
			if (dup_opt(&b->prefix, ""))
				goto nomem;
			break;
		}
		b->prefix = malloc(n + 2);
		if (!b->prefix)
			goto nomem;
		memcpy(b->prefix, v, n + 1);
		if (v[n - 1] != '/') {
			b->prefix[n] = '/';
			b->prefix[n + 1] = '\0';
		}
		if (!prefix_valid(b->prefix)) {
			snprintf(reason, rlen, "not a safe key prefix");
			goto out;
		}
		break;
	case BK_REGION:
		if (!region_valid(v)) {
			snprintf(reason, rlen, "invalid region");
			goto out;
		}
		if (dup_opt(&b->region, v))
			goto nomem;
		break;
	case BK_ENDPOINT:
		if (!endpoint_valid(v)) {
			snprintf(reason, rlen, "must be an http:// or https:// URL");
			goto out;
		}
		if (dup_opt(&b->endpoint, v))
			goto nomem;
		/* "https://host/" and "https://host" are the same endpoint. */
		n = strlen(b->endpoint);
		while (n > 0 && b->endpoint[n - 1] == '/')
			b->endpoint[--n] = '\0';
		break;
	case BK_ACCOUNT_ID:
	case BK_ACCOUNT_NAME:
		if (b->account_id) {
			snprintf(reason, rlen, "the account is already given");
			goto out;
		}
		if (!account_id_valid(v)) {
			snprintf(reason, rlen, "must be letters and digits");
			goto out;
		}
		if (dup_opt(&b->account_id, v))
			goto nomem;
		break;
	case BK_PATH:
		if (make_abs(x->cfg->dir, v, &b->path))
			goto nomem;
		break;
	case BK_PATH_STYLE:
	case BK_READ_ONLY:
		t = parse_bool(v);
		if (t < 0) {
			snprintf(reason, rlen, "expected true or false");
			goto out;
		}
		if (k == BK_PATH_STYLE)
			b->path_style = t;
		else
			b->read_only = t;
		break;
	case BK_LIST_METADATA:
		if ((t = bfs_list_meta_parse(v)) < 0) {
			snprintf(reason, rlen, "expected head or listing");
			goto out;
		}
		b->list_metadata = t;
		break;
	case BK_ACCESS_KEY_ID:
		r = secret_value(v, &b->access_key_id, reason, rlen);
		if (r)
			goto out;
		break;
	case BK_SECRET:
	case BK_SECRET_FILE:
	case BK_ACCOUNT_KEY:
	case BK_ACCOUNT_KEY_FILE:
		if (b->secret_access_key) {
			snprintf(reason, rlen, "the secret is already given by '%s'",
				 k == BK_SECRET || k == BK_SECRET_FILE ?
				 bkey_names[k == BK_SECRET ? BK_SECRET_FILE : BK_SECRET] :
				 bkey_names[k == BK_ACCOUNT_KEY ? BK_ACCOUNT_KEY_FILE
					    : BK_ACCOUNT_KEY]);
			goto out;
		}
		if (k == BK_SECRET || k == BK_ACCOUNT_KEY) {
			r = secret_value(v, &b->secret_access_key, reason, rlen);
		} else {
			char *path = NULL;

			if (make_abs(x->cfg->dir, v, &path))
				goto nomem;
			r = secret_file(path, &b->secret_access_key, reason, rlen);
			free(path);
		}
		if (r)
			goto out;
		b->has_secret = 1;
		break;
	case BK_SESSION_TOKEN:
		r = secret_value(v, &b->session_token, reason, rlen);
		if (r)
			goto out;
		b->has_session_token = 1;
		break;
	case BK_SAS_TOKEN:
	case BK_SAS_TOKEN_FILE:
		if (b->session_token) {
			snprintf(reason, rlen, "the SAS token is already given by '%s'",
				 bkey_names[k == BK_SAS_TOKEN ? BK_SAS_TOKEN_FILE
					    : BK_SAS_TOKEN]);
			goto out;
		}
		if (k == BK_SAS_TOKEN) {
			r = secret_value(v, &b->session_token, reason, rlen);
		} else {
			char *path = NULL;

			if (make_abs(x->cfg->dir, v, &path))
				goto nomem;
			r = secret_file(path, &b->session_token, reason, rlen);
			free(path);
		}
		if (r)
			goto out;
		b->has_session_token = 1;
		break;
	case BK_DEFAULT:
		if (parse_roles(v, &b->defaults, reason, rlen))
			goto out;
		for (t = 0; t < BFS_ROLE_COUNT; t++) {
			if (!(b->defaults & BFS_ROLE_BIT(t)))
				continue;
			for (i = 0; i + 1 < x->cfg->nbuckets; i++) {
				if (x->cfg->buckets[i].defaults & BFS_ROLE_BIT(t)) {
					snprintf(reason, rlen,
						 "role '%s' is already the default of bucket '%s'",
						 role_names[t], x->cfg->buckets[i].name);
					goto out;
				}
			}
		}
		break;
	case BK_MULTIPART_MAX_AGE:
		if (bfs_parse_duration(v, &b->multipart_max_age)) {
			snprintf(reason, rlen, "expected a duration like 3600, "
				 "90m, 24h or 7d (0 disables)");
			goto out;
		}
		b->has_multipart_max_age = 1;
		break;
	case BK_OWNER:
	case BK_GROUP:
	case BK_MODE:
	case BK_FILE_MODE:
	case BK_DIR_MODE:
		if ((r = bucket_perm_key(b, k, v, reason, rlen)) != 0)
			goto out;
		break;
	default:
		snprintf(reason, rlen, "unknown key");
		goto out;
	}
	r = 0;
	goto out;
nomem:
	snprintf(reason, rlen, "out of memory");
	r = BFS_ERR_NOMEM;
out:
	return r;
}

/*
 * Takes the resolved database password pw (r: the resolver's result);
 * a second password key is refused.  pw is wiped on every path not kept.
 */
static int db_password_set(struct bfs_config *c, int r, char *pw,
			   char *reason, size_t rlen)
{
	if (r != 0)
		goto out;
	if (c->database_password) {
		snprintf(reason, rlen, "database_password and "
			 "database_password_file both given");
		r = BFS_ERR_CONFIG;
		goto out;
	}
	c->database_password = pw;
	pw = NULL;
out:
	if (pw) {
		OPENSSL_cleanse(pw, strlen(pw));
		free(pw);
	}
	return r;
}

/* Sets one key of [bucketfs]; reason filled on failure. */
static int main_key(struct cfg_ctx *x, int k, const char *v, char *reason,
		    size_t rlen)
{
	struct bfs_config *c = x->cfg;
	char **path = NULL;
	char *end, *pw = NULL, *file = NULL;
	long t;

	switch (k) {
	case MK_DATABASE:
		if (bfs_pg_is_uri(v)) {
			if (bfs_pg_uri_check(v, reason, rlen) != 0)
				return BFS_ERR_CONFIG;
			free(c->database);
			if (!(c->database = strdup(v))) {
				snprintf(reason, rlen, "out of memory");
				return BFS_ERR_NOMEM;
			}
			return 0;
		}
		path = &c->database;
		break;
	case MK_DATABASE_PASSWORD:
		/* Only from the environment: a password never sits in the
		 * config file (database_password_file is the other way). */
		if (strncmp(v, "env:", 4) != 0) {
			snprintf(reason, rlen, "expected env:VAR (or use "
				 "database_password_file)");
			return BFS_ERR_CONFIG;
		}
		k = secret_value(v, &pw, reason, rlen);
		return db_password_set(c, k, pw, reason, rlen);
	case MK_DATABASE_PASSWORD_FILE:
		if (make_abs(c->dir, v, &file)) {
			snprintf(reason, rlen, "out of memory");
			return BFS_ERR_NOMEM;
		}
		k = secret_file(file, &pw, reason, rlen);
		free(file);
		return db_password_set(c, k, pw, reason, rlen);
	case MK_CACHE_DIR:
		path = &c->cache_dir;
		break;
	case MK_MASTER_KEY_FILE:
		path = &c->master_key_file;
		break;
	case MK_CA_BUNDLE:
		path = &c->ca_bundle;
		break;
	case MK_CACHE_SIZE:
		if (bfs_parse_size(v, &c->cache_size) || c->cache_size == 0) {
			snprintf(reason, rlen, "expected a size like 512M or 2G");
			return BFS_ERR_CONFIG;
		}
		return 0;
	case MK_LOG_LEVEL:
		c->log_level = bfs_log_level_parse(v);
		if (c->log_level < 0) {
			snprintf(reason, rlen, "expected error, warn, info or debug");
			return BFS_ERR_CONFIG;
		}
		return 0;
	case MK_UPLOAD_TIMEOUT:
		errno = 0;
		t = strtol(v, &end, 10);
		if (v[0] < '0' || v[0] > '9' || *end || errno || t < 1 || t > 86400) {
			snprintf(reason, rlen, "expected seconds from 1 to 86400");
			return BFS_ERR_CONFIG;
		}
		c->upload_timeout = (int)t;
		return 0;
	case MK_PRESIGN_EXPIRES:
		errno = 0;
		t = strtol(v, &end, 10);
		if (v[0] < '0' || v[0] > '9' || *end || errno || t < 1 ||
		    t > 604800) {
			snprintf(reason, rlen, "expected seconds from 1 to 604800");
			return BFS_ERR_CONFIG;
		}
		c->presign_expires = t;
		return 0;
	case MK_LIST_METADATA:
		if ((c->list_metadata = bfs_list_meta_parse(v)) < 0) {
			snprintf(reason, rlen, "expected head or listing");
			return BFS_ERR_CONFIG;
		}
		return 0;
	case MK_MULTIPART_MAX_AGE:
		if (bfs_parse_duration(v, &c->multipart_max_age)) {
			snprintf(reason, rlen, "expected a duration like 3600, "
				 "90m, 24h or 7d (0 disables)");
			return BFS_ERR_CONFIG;
		}
		return 0;
	case MK_ADMIN_GROUP: {
		int gr = bfs_perm_group(v, &c->admin_gid, reason, rlen);

		if (gr)
			return gr == BFS_ERR_NOMEM ? gr : BFS_ERR_CONFIG;
		free(c->admin_group);
		if (!(c->admin_group = strdup(v))) {
			snprintf(reason, rlen, "out of memory");
			return BFS_ERR_NOMEM;
		}
		return 0;
	}
	default:
		snprintf(reason, rlen, "unknown key");
		return BFS_ERR_CONFIG;
	}
	free(*path);
	if (make_abs(c->dir, v, path)) {
		snprintf(reason, rlen, "out of memory");
		return BFS_ERR_NOMEM;
	}
	return 0;
}

/* Sets one key of the [mount] section; reason filled on failure. */
static int mount_key(struct bfs_config *c, int k, const char *v,
		     char *reason, size_t rlen)
{
	int t;

	switch (k) {
	case MT_CACHE:
		if ((t = parse_bool(v)) < 0) {
			snprintf(reason, rlen, "expected on or off");
			return BFS_ERR_CONFIG;
		}
		c->cache_off = !t;
		return 0;
	default:
		snprintf(reason, rlen, "unknown key");
		return BFS_ERR_CONFIG;
	}
}

static int key_index(const char *const *names, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* Keys whose value may be empty. */
static int empty_ok(enum cfg_section sec, int k)
{
	return sec == SEC_BUCKET &&
	       (k == BK_DESCRIPTION || k == BK_PREFIX || k == BK_DEFAULT);
}

/* inih handler: returns 1 to go on, 0 on error (message in the context). */
static int cfg_handler(void *user, const char *section, const char *name,
		       const char *value)
{
	struct cfg_ctx *x = user;
	const char *const *names;
	size_t *lines;
	char reason[512];
	int k, n, r;

	(void)section;  /* inih truncates it; the reader tracks the real one */
	if (x->err_line)
		return 0;
	if (strcmp(value, CFG_LONG_MARK) == 0 && x->stash)
		value = x->stash;
	if (x->sec == SEC_NONE) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "key '%s': outside any section", name);
		return 0;
	}
	if (x->sec == SEC_MAIN) {
		names = mkey_names;
		n = MK_COUNT;
		lines = x->mkey_line;
	} else if (x->sec == SEC_MOUNT) {
		names = mtkey_names;
		n = MT_COUNT;
		lines = x->mtkey_line;
	} else {
		names = bkey_names;
		n = BK_COUNT;
		lines = x->key_line;
	}
	k = key_index(names, n, name);
	if (k < 0) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "key '%s': unknown key in section '%s'", name, x->sec_text);
		return 0;
	}
	if (lines[k]) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "key '%s': duplicate key (first set on line %zu)",
			 name, lines[k]);
		return 0;
	}
	lines[k] = x->lineno;
	if (!value[0] && !empty_ok(x->sec, k)) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG, "key '%s': empty value", name);
		return 0;
	}
	reason[0] = '\0';
	if (x->sec == SEC_MAIN)
		r = main_key(x, k, value, reason, sizeof(reason));
	else if (x->sec == SEC_MOUNT)
		r = mount_key(x->cfg, k, value, reason, sizeof(reason));
	else
		r = bucket_key(x, k, value, reason, sizeof(reason));
	if (r) {
		cfg_fail(x, x->lineno, r == BFS_ERR_NOMEM ? r : BFS_ERR_CONFIG,
			 "key '%s': %s", name, reason);
		return 0;
	}
	return 1;
}

/* ---- reader ---------------------------------------------------------- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * inih's inline comment rule: ';' preceded by a blank.  Returns the
 * position of the comment, or e.
 */
static const char *find_comment(const char *s, const char *e)
{
	int was_space = 0;

	for (; s < e; s++) {
		if (*s == ';' && was_space)
			return s;
		was_space = is_blank(*s);
	}
	return e;
}

/* Copies [s, e) into the inih buffer with the '\n' inih expects. */
static char *feed(char *str, int num, const char *s, size_t n)
{
	if ((size_t)num < n + 2)
		return NULL;
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/*
 * ini_reader: hands inih the next line, see the file comment.  Returns
 * NULL at the end of the text or once an error has been recorded.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_ctx *x = stream;
	const char *s, *e, *nl, *p, *sep;
	size_t i, n;
	char *name;

	if (x->err_line || x->pos >= x->len)
		return NULL;
	if (num < 16) {
		/* Never silently take a config as shorter than it is. */
		cfg_fail(x, x->lineno + 1, BFS_ERR_INTERNAL,
			 "inih line buffer too small (%d bytes)", num);
		return NULL;
	}
	s = x->text + x->pos;
	nl = memchr(s, '\n', x->len - x->pos);
	e = nl ? nl : x->text + x->len;
	x->pos = (size_t)(e - x->text) + (nl ? 1 : 0);
	x->lineno++;
	if (e > s && e[-1] == '\r')
		e--;
	if (x->lineno == 1 && e - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	if ((size_t)(e - s) > CFG_LINE_MAX) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "line longer than %d bytes", CFG_LINE_MAX);
		return NULL;
	}
	for (i = 0; i < (size_t)(e - s); i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG, "control character");
			return NULL;
		}
	}
	if (!bfs_utf8_valid(s, (size_t)(e - s))) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG, "invalid UTF-8");
		return NULL;
	}
	while (s < e && is_blank(*s))
		s++;
	if (s == e || *s == ';' || *s == '#')
		return feed(str, num, "", 0);
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(e - s));
		const char *a, *b;

		if (!close) {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
				 "syntax error: section header without ']'");
			return NULL;
		}
		for (p = close + 1; p < e && is_blank(*p); p++)
			;
		if (p < e && *p != ';' && *p != '#') {
			cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
				 "syntax error: text after ']'");
			return NULL;
		}
		for (a = s + 1; a < close && is_blank(*a); a++)
			;
		for (b = close; b > a && is_blank(b[-1]); b--)
			;
		name = strndup(a, (size_t)(b - a));
		if (!name) {
			cfg_fail(x, x->lineno, BFS_ERR_NOMEM, "out of memory");
			return NULL;
		}
		section_begin(x, name);
		free(name);
		if (x->err_line)
			return NULL;
		return feed(str, num, "[s]", 3);
	}
	/* A key line: must have '=' or ':' before any inline comment. */
	e = find_comment(s, e);
	for (sep = s; sep < e && *sep != '=' && *sep != ':'; sep++)
		;
	if (sep == e) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "syntax error: expected 'key = value' or '[section]'");
		return NULL;
	}
	for (p = sep; p > s && is_blank(p[-1]); p--)
		;
	if (p == s) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG,
			 "syntax error: missing key name before '%c'", *sep);
		return NULL;
	}
	if (x->stash) {
		OPENSSL_cleanse(x->stash, strlen(x->stash));
		free(x->stash);
		x->stash = NULL;
	}
	if ((size_t)(e - s) + 2 <= (size_t)num)
		return feed(str, num, s, (size_t)(e - s));
	/* Too long for inih: pass "name=\1" and keep the value here. */
	n = (size_t)(p - s);
	if (n + 2 + sizeof(CFG_LONG_MARK) > (size_t)num) {
		cfg_fail(x, x->lineno, BFS_ERR_CONFIG, "syntax error: key name too long");
		return NULL;
	}
	for (s = sep + 1; s < e && is_blank(*s); s++)
		;
	while (e > s && is_blank(e[-1]))
		e--;
	x->stash = strndup(s, (size_t)(e - s));
	if (!x->stash) {
		cfg_fail(x, x->lineno, BFS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(str, p - n, n);
	memcpy(str + n, "=" CFG_LONG_MARK "\n", sizeof("=" CFG_LONG_MARK "\n"));
	return str;
}

/* ---- public API ------------------------------------------------------ */

void bfs_config_free(struct bfs_config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nbuckets; i++)
		bfs_bucket_conf_clear(&c->buckets[i]);
	free(c->buckets);
	free(c->ca_bundle);
	free(c->admin_group);
	free(c->master_key_file);
	free(c->cache_dir);
	free(c->database);
	if (c->database_password) {
		OPENSSL_cleanse(c->database_password,
				strlen(c->database_password));
		free(c->database_password);
	}
	free(c->dir);
	free(c->file);
	free(c);
}

/* Defaults for [bucketfs] keys the file did not set. */
static int main_defaults(struct bfs_config *c)
{
	if (!c->database && make_abs(c->dir, "bucketfs.db", &c->database))
		return BFS_ERR_NOMEM;
	if (!c->cache_dir && make_abs(c->dir, "cache", &c->cache_dir))
		return BFS_ERR_NOMEM;
	if (!c->master_key_file &&
	    make_abs(c->dir, "master.key", &c->master_key_file))
		return BFS_ERR_NOMEM;
	return 0;
}

int bfs_config_parse(const char *text, const char *filename,
		     struct bfs_config **out, char *err, size_t errlen)
{
	struct cfg_ctx x;
	struct bfs_config *c = NULL;
	int r = BFS_ERR_NOMEM, ir;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	memset(&x, 0, sizeof(x));
	x.fname = filename ? filename : "(config)";
	x.err = err;
	x.errlen = errlen;
	x.text = text ? text : "";
	x.len = strlen(x.text);
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	x.cfg = c;
	c->cache_size = 2ull << 30;
	c->log_level = BFS_LOG_INFO;
	c->upload_timeout = 60;
	c->presign_expires = 3600;
	c->list_metadata = BFS_LIST_META_HEAD;
	c->multipart_max_age = 86400;
	r = cfg_locate(x.fname, &c->file, &c->dir);
	if (r) {
		cfg_fail(&x, 0, r, "cannot locate the config file's folder");
		goto fail;
	}
	ir = ini_parse_stream(cfg_reader, &x, cfg_handler, &x);
	if (ir > 0 && (!x.err_line || (size_t)ir < x.err_line)) {
		x.err_line = 0;  /* inih saw a syntax error first */
		cfg_fail(&x, (size_t)ir, BFS_ERR_CONFIG,
			 "syntax error: expected 'key = value' or '[section]'");
	} else if (ir < 0 && !x.err_line) {
		cfg_fail(&x, x.lineno, BFS_ERR_NOMEM, "out of memory");
	}
	if (!x.err_line)
		section_end(&x);
	if (!x.err_line && main_defaults(c))
		cfg_fail(&x, x.lineno, BFS_ERR_NOMEM, "out of memory");
	if (x.err_line) {
		r = x.err_code;
		goto fail;
	}
	*out = c;
	c = NULL;
	r = 0;
fail:
	if (r == BFS_ERR_NOMEM && !x.err_line && err && errlen)
		snprintf(err, errlen, "%s: out of memory", x.fname);
	if (x.stash) {
		OPENSSL_cleanse(x.stash, strlen(x.stash));
		free(x.stash);
	}
	free(x.sec_text);
	bfs_config_free(c);
	/* Every failure of the config itself is a config error. */
	return r == BFS_ERR_NOMEM ? r : (r ? BFS_ERR_CONFIG : 0);
}

int bfs_config_load(const char *filename, struct bfs_config **out,
		    char *err, size_t errlen)
{
	char *text = NULL;
	size_t n = 0, alloc = 0;
	ssize_t got;
	int fd = -1, r = BFS_ERR_CONFIG;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	fd = open(filename, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", filename, strerror(errno));
		goto out;
	}
	for (;;) {
		if (n + 1 >= alloc) {
			size_t na = alloc ? alloc * 2 : 4096;
			char *nt;

			if (na > CFG_FILE_MAX + 1)
				na = CFG_FILE_MAX + 1;
			if (n + 1 >= na) {
				if (err && errlen)
					snprintf(err, errlen, "%s: file too large (limit %d bytes)",
						 filename, CFG_FILE_MAX);
				goto out;
			}
			nt = malloc(na);
			if (!nt) {
				r = BFS_ERR_NOMEM;
				goto out;
			}
			/* Copy by hand so the old buffer can be wiped: a config
			 * file may hold literal secrets. */
			if (text) {
				memcpy(nt, text, n);
				OPENSSL_cleanse(text, alloc);
				free(text);
			}
			text = nt;
			alloc = na;
		}
		got = read(fd, text + n, alloc - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			if (err && errlen)
				snprintf(err, errlen, "%s: %s", filename, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (!text) {
		text = calloc(1, 1);
		if (!text) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		alloc = 1;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		size_t line = 1, i, at = strlen(text);

		for (i = 0; i < at; i++)
			line += text[i] == '\n';
		if (err && errlen)
			snprintf(err, errlen, "%s:%zu: NUL byte", filename, line);
		goto out;
	}
	r = bfs_config_parse(text, filename, out, err, errlen);
out:
	if (text) {
		OPENSSL_cleanse(text, alloc);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

char *bfs_config_master_key_path(const struct bfs_config *cfg)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char *p = NULL;

	if (creds && creds[0]) {
		if (make_abs(creds, "bucketfs.key", &p) == 0 &&
		    access(p, F_OK) == 0)
			return p;
		free(p);
		p = NULL;
	}
	if (cfg && cfg->master_key_file)
		p = strdup(cfg->master_key_file);
	return p;
}
