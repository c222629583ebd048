/*
 * bfs_store.h - the SQLite metadata store: buckets, defaults, assignments,
 * the file index and the upload journal.
 *
 * One database file in WAL mode with a busy timeout; the schema is built by
 * numbered migrations (PRAGMA user_version) applied at open.  Table and
 * column names follow the seed (INTERFACE.md "Database").  A store handle
 * serializes its own use with an internal mutex, so one handle may be
 * shared by FUSE worker threads.  Only src/store includes sqlite3.h.
 *
 * Secrets: config_json never holds a plain secret; secret_access_key and
 * session_token are sealed with bfs_crypto_seal() (aad = bucket id).
 * Functions that return bucket settings take the master key; with key ==
 * NULL secrets are left NULL (listing without the key).
 *
 * Ownership: every out-struct/array is owned by the caller and freed with
 * the matching *_free function; out-pointers are set to NULL first.
 */
#ifndef BFS_STORE_H
#define BFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "bfs_config.h"

struct bfs_store;

int bfs_store_open(const char *path, struct bfs_store **out,
		   char *err, size_t errlen);
void bfs_store_close(struct bfs_store *s);

/*
 * A number that changes whenever another connection (bucketctl, another
 * daemon) committed to the database: PRAGMA data_version.  The daemon polls
 * it to see outside changes within one second.
 */
int bfs_store_data_version(struct bfs_store *s, int64_t *out);

/* ---- buckets ---- */

/*
 * Makes the table match the config's buckets: inserts or updates each (as
 * managed by config), applies their `default =` roles, and removes
 * config-managed rows that left the config when no file, default or
 * assignment refers to them (else keeps them and logs a warning).
 */
int bfs_store_sync_config(struct bfs_store *s, const struct bfs_config *cfg,
			  const unsigned char *key, char *err, size_t errlen);

/* All buckets sorted by name; defaults filled from is_default* columns. */
int bfs_store_bucket_list(struct bfs_store *s, const unsigned char *key,
			  struct bfs_bucket_conf **out, size_t *n);
void bfs_bucket_conf_array_free(struct bfs_bucket_conf *a, size_t n);
/* BFS_ERR_NOTFOUND when absent. */
int bfs_store_bucket_get(struct bfs_store *s, const char *name,
			 const unsigned char *key, struct bfs_bucket_conf *out);
/* b->id ignored (a new one is made); BFS_ERR_EXISTS on duplicate name. */
int bfs_store_bucket_add(struct bfs_store *s, const struct bfs_bucket_conf *b,
			 const unsigned char *key, const char *created_by,
			 char *err, size_t errlen);
/* Replaces settings of bucket b->name; BFS_ERR_PERM when managed by config. */
int bfs_store_bucket_update(struct bfs_store *s, const struct bfs_bucket_conf *b,
			    const unsigned char *key, char *err, size_t errlen);
/*
 * BFS_ERR_BUSY (with reason) while files, defaults or assignments refer to
 * it, unless force (drops index rows and assignments, clears defaults);
 * BFS_ERR_PERM when managed by config.
 */
int bfs_store_bucket_remove(struct bfs_store *s, const char *name, int force,
			    char *err, size_t errlen);

/* ---- defaults and assignments ---- */

/* names[i]: new strings or NULL when unset; free with bfs_store_names_free. */
int bfs_store_defaults_get(struct bfs_store *s, char *names[BFS_ROLE_COUNT]);
void bfs_store_names_free(char *names[BFS_ROLE_COUNT]);
/* Sets role to bucket (NULL: unset); BFS_ERR_NOTFOUND for unknown bucket. */
int bfs_store_default_set(struct bfs_store *s, int role, const char *bucket,
			  char *err, size_t errlen);

struct bfs_defaults_change;
struct bfs_assign_change;
/* Whole change in one transaction; on any error nothing changes. */
int bfs_store_defaults_apply(struct bfs_store *s,
			     const struct bfs_defaults_change *c,
			     char *err, size_t errlen);
int bfs_store_assign_apply(struct bfs_store *s,
			   const struct bfs_assign_change *c, size_t n,
			   char *err, size_t errlen);

struct bfs_assignment {
	int context_type;        /* 0 chat, 1 form */
	char *context_id;
	char *bucket;            /* bucket name */
};
/* Sorted by "chat/ID" < "form/ID" string order. */
int bfs_store_assign_list(struct bfs_store *s, struct bfs_assignment **out,
			  size_t *n);
void bfs_assignments_free(struct bfs_assignment *a, size_t n);

/* ---- the file index ---- */

struct bfs_file_row {
	char *bucket;            /* bucket name (the row stores bucket_id) */
	char *key;               /* full remote key, prefix included */
	uint64_t size;
	char *etag;
	char *content_type;
	uint32_t mode, uid, gid;
	int64_t mtime;           /* seconds */
	int64_t created_at, updated_at; /* unix seconds (stored as text) */
};

/* Insert or update by (bucket, key); created_at kept on update. */
int bfs_store_file_put(struct bfs_store *s, const struct bfs_file_row *r);
int bfs_store_file_get(struct bfs_store *s, const char *bucket,
		       const char *key, struct bfs_file_row *out);
/* Deleting an absent row is not an error. */
int bfs_store_file_delete(struct bfs_store *s, const char *bucket,
			  const char *key);
/* Moves one row (and its bucket); replaces an existing destination row. */
int bfs_store_file_rename(struct bfs_store *s, const char *src_bucket,
			  const char *src_key, const char *dst_bucket,
			  const char *dst_key);
/* Moves every row whose key starts with src_prefix (a folder rename). */
int bfs_store_file_rename_prefix(struct bfs_store *s, const char *src_bucket,
				 const char *src_prefix, const char *dst_bucket,
				 const char *dst_prefix);
/* Updates mode/uid/gid/mtime of an indexed row (no-op when absent). */
int bfs_store_file_set_attr(struct bfs_store *s, const char *bucket,
			    const char *key, uint32_t mode, uint32_t uid,
			    uint32_t gid, int64_t mtime);
/*
 * Rows of bucket (NULL: all) whose key starts with prefix (NULL: any),
 * sorted by bucket name, key.  cb returns non-zero to stop.
 */
typedef int (*bfs_file_row_fn)(void *arg, const struct bfs_file_row *r);
int bfs_store_file_list(struct bfs_store *s, const char *bucket,
			const char *prefix, bfs_file_row_fn cb, void *arg);
void bfs_file_row_clear(struct bfs_file_row *r);

struct bfs_bucket_stats {
	char *bucket;
	uint64_t files, bytes;
};
int bfs_store_stats(struct bfs_store *s, const char *bucket,
		    struct bfs_bucket_stats **out, size_t *n);
void bfs_bucket_stats_free(struct bfs_bucket_stats *a, size_t n);

#endif
