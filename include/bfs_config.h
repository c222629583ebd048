/*
 * bfs_config.h - the ini config file (INTERFACE.md "Config file").
 *
 * Parsing is pure: bfs_config_parse() takes the text and the file name it
 * came from; errors name "FILE:LINE: key 'KEY': reason".  Relative paths are
 * made absolute against the config file's folder.  Secret values
 * ("literal", "env:VAR", secret_access_key_file = PATH) are resolved at
 * load time and wiped with OPENSSL_cleanse when freed.
 */
#ifndef BFS_CONFIG_H
#define BFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum bfs_provider_kind { BFS_PROV_LOCAL = 0, BFS_PROV_S3 = 1, BFS_PROV_R2 = 2,
			 BFS_PROV_AZURE = 3, BFS_PROV_GCS = 4 };

enum bfs_role { BFS_ROLE_GENERAL = 0, BFS_ROLE_CHAT = 1, BFS_ROLE_FORMS = 2,
		BFS_ROLE_COUNT = 3 };
#define BFS_ROLE_BIT(r) (1u << (r))

/* "general" | "chat" | "forms" <-> role; -1 / NULL when unknown. */
int bfs_role_parse(const char *s);
const char *bfs_role_name(int role);
/* "s3" | "r2" | "local" | "azure" | "gcs" <-> kind. */
int bfs_provider_kind_parse(const char *s);
const char *bfs_provider_kind_name(int kind);

/* One bucket's settings; every string owned by the struct (may be NULL). */
/*
 * Where `ls -l` takes the attributes of objects that carry no
 * x-amz-meta-mode (written by other tools): HEAD each one (right modes,
 * symlinks, owners in the first listing) or take them from the listing
 * alone (regular file, the bucket's file_mode and owner, LastModified; one
 * ListObjectsV2 per 1,000 entries, HEADs only on open, readlink and stat).
 */
enum bfs_list_meta {
	BFS_LIST_META_UNSET = 0, BFS_LIST_META_HEAD, BFS_LIST_META_LISTING
};
/* "head" / "listing" -> enum value, else -1. */
int bfs_list_meta_parse(const char *s);
/* enum value -> "head" / "listing" (NULL for UNSET). */
const char *bfs_list_meta_name(int v);

struct bfs_bucket_conf {
	char *id;                /* storage_buckets.id; NULL until stored */
	char *name;              /* directory under the mount point */
	char *description;
	int provider;            /* enum bfs_provider_kind */
	char *bucket_name;       /* remote bucket (s3, r2) */
	char *prefix;            /* "" or ends with '/' */
	char *region;            /* s3: default us-east-1; r2: "auto" */
	char *endpoint;          /* NULL: AWS / R2 default */
	char *account_id;        /* r2; azure: account_name */
	char *path;              /* local: absolute folder */
	int path_style;          /* 1: https://host/bucket/key */
	int read_only;
	int list_metadata;       /* enum bfs_list_meta; UNSET: the global one */
	char *access_key_id;
	char *secret_access_key; /* plain text, memory only; wiped on free;
				  * azure: the base64 account_key */
	char *session_token;     /* optional, memory only; wiped on free;
				  * azure: the sas_token */
	int has_secret;          /* a secret_access_key is stored (set even when
				  * listed without the master key) */
	int has_session_token;
	unsigned defaults;       /* BFS_ROLE_BIT() mask */
	int managed_by_config;   /* declared in the config file */
	int has_multipart_max_age;   /* set in the bucket's config section */
	int64_t multipart_max_age;   /* seconds; 0 disables (config only,
				      * not stored in the database) */
	/* Who may use the bucket (INTERFACE.md "Who may do what"): the
	 * bucket folder's owner and group as given (a name or a number,
	 * bfs_perm.h; NULL: the mounting user / its group) and mode, and
	 * the modes of objects and folders without s3fs metadata. */
	char *owner;
	char *group;
	int has_mode, has_file_mode, has_dir_mode;
	uint32_t mode;           /* bucket folder; default 0755 */
	uint32_t file_mode;      /* default 0644 */
	uint32_t dir_mode;       /* default 0755 */
};

/* 1 when a and b have the same owner, group and modes. */
int bfs_bucket_perms_same(const struct bfs_bucket_conf *a,
			  const struct bfs_bucket_conf *b);

/* The modes a bucket without those settings has. */
#define BFS_BUCKET_MODE_DEFAULT 0755u
#define BFS_FILE_MODE_DEFAULT 0644u
#define BFS_DIR_MODE_DEFAULT 0755u

struct bfs_config {
	char *file;              /* absolute path of the config file */
	char *dir;               /* its folder */
	char *database;          /* absolute path of the SQLite file, or a
				  * postgresql:// URI (bfs_pg.h; no password) */
	char *database_password; /* PostgreSQL password (database_password =
				   * env:VAR or database_password_file), or
				   * NULL; a secret: never logged */
	char *cache_dir;         /* absolute */
	uint64_t cache_size;     /* bytes; default 2 GiB */
	char *master_key_file;   /* absolute; may be NULL when from systemd */
	int log_level;           /* enum bfs_log_level; default info */
	int upload_timeout;      /* seconds; default 60 */
	int64_t multipart_max_age; /* seconds; default 86400; 0 disables the
				    * start-up abort of old foreign uploads */
	char *ca_bundle;         /* NULL: system default */
	int list_metadata;       /* enum bfs_list_meta; default HEAD */
	long presign_expires;    /* seconds a user.bucketfs.url is valid;
				  * default 3600, 1..604800 (SigV4's max) */
	char *admin_group;       /* group of .defaults/.assignments (as given,
				  * checked to exist); NULL: none */
	uint32_t admin_gid;      /* its gid when admin_group is set */
	int cache_off;           /* [mount] cache = off: no attribute, listing,
				  * known-absent or block cache (debugging) */
	struct bfs_bucket_conf *buckets;
	size_t nbuckets;
};

/*
 * Parses text (the content of file `filename`, used for relative paths and
 * messages).  On failure returns BFS_ERR_CONFIG with a one-line message
 * "FILE:LINE: key 'KEY': reason" in err.  *out is NULL on failure.
 */
int bfs_config_parse(const char *text, const char *filename,
		     struct bfs_config **out, char *err, size_t errlen);
/* Reads the file and parses it (also fails on unreadable file). */
int bfs_config_load(const char *filename, struct bfs_config **out,
		    char *err, size_t errlen);
void bfs_config_free(struct bfs_config *c);

/*
 * Resolves the master key path: $CREDENTIALS_DIRECTORY/bucketfs.key when
 * that variable is set and the file exists, else cfg->master_key_file.
 * Returns a new string (caller frees) or NULL.
 */
char *bfs_config_master_key_path(const struct bfs_config *cfg);

/* Frees the members (wiping secrets) and zeroes the struct. */
void bfs_bucket_conf_clear(struct bfs_bucket_conf *b);
/* Deep copy; dst is overwritten. */
int bfs_bucket_conf_copy(struct bfs_bucket_conf *dst,
			 const struct bfs_bucket_conf *src);
/* Checks cross-field rules (s3 needs bucket_name, local needs path...). */
int bfs_bucket_conf_validate(const struct bfs_bucket_conf *b, char *err,
			     size_t errlen);

/* "2G", "512M", "100k", "12345" -> bytes; -1 on bad input. */
int bfs_parse_size(const char *s, uint64_t *out);
/* "90", "90s", "15m", "24h", "7d" -> seconds (at most 10 years); -1 on
 * bad input. */
int bfs_parse_duration(const char *s, int64_t *out);

#endif
