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
 * With a postgresql:// database (bfs_store_open_config) the same API
 * keeps the shared catalog (buckets, defaults, assignments, the file
 * index) in PostgreSQL and the host-local tables (upload journal,
 * multipart ids) in a SQLite file under cache_dir (src/store/sqldb.h).
 * Its calls run on a pool of connections (up to 4 in a daemon), so one
 * call waiting on the server does not serialize the others.
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
/*
 * Opens the store a config names: bfs_store_open(cfg->database), or for a
 * postgresql:// database the shared PostgreSQL catalog (password
 * cfg->database_password) with the host-local tables (upload journal,
 * multipart ids) in CACHE_DIR/local.db (created, with cache_dir, when
 * missing).  err: one line naming the database and the reason (an
 * unreachable server: libpq's reason).
 */
#define BFS_STORE_LOCAL_DB "local.db"
int bfs_store_open_config(const struct bfs_config *cfg,
			  struct bfs_store **out, char *err, size_t errlen);
void bfs_store_close(struct bfs_store *s);
/*
 * The daemon's periodic upkeep of a PostgreSQL catalog (a no-op on SQLite),
 * called from one thread (the registry's poll, every 250 ms).  The first
 * call turns on the outage queue: from then on an index write (file put,
 * delete, rename, folder rename, attributes, upload done) that finds the
 * server unreachable is kept in the host-local index_queue and reported
 * done; later ones queue behind it.  Each call reconnects a lost
 * connection (back-off 250 ms doubling to 5 s; the connect holds no lock)
 * and replays queued rows in order, each exactly once (the replayed id is
 * recorded in PostgreSQL in the same transaction).  0 or the error that
 * stopped the replay (the rows stay queued).
 */
int bfs_store_service(struct bfs_store *s);
/*
 * Cross-host changes (PostgreSQL catalog; a no-op returning 0 on SQLite):
 * starts a thread with its own connection that LISTENs for the changes
 * other hosts (and bucketctl) commit and calls fn(arg, what, bucket, key):
 *   BFS_CHANGE_FILE: the file index row bucket/key changed (another
 *     session's commit);
 *   BFS_CHANGE_CATALOG: storage_buckets, assignments or settings changed
 *     (any session, this process's too; bucket and key NULL): the catalog
 *     version moved, a reload is due;
 *   BFS_CHANGE_LOST: its connection was lost and is back (bucket and key
 *     NULL): changes may have been missed, drop everything cached.
 * fn runs on that thread.  fn == NULL stops the thread (before whatever fn
 * touches goes away; bfs_store_close also stops it).
 */
enum bfs_store_change {
	BFS_CHANGE_FILE,
	BFS_CHANGE_CATALOG,
	BFS_CHANGE_LOST,
};
typedef void (*bfs_store_change_fn)(void *arg, enum bfs_store_change what,
				    const char *bucket, const char *key);
int bfs_store_watch(struct bfs_store *s, bfs_store_change_fn fn, void *arg);
/* PostgreSQL catalog: 1 with *connected and *queued (index_queue rows);
 * SQLite: 0. */
int bfs_store_db_state(struct bfs_store *s, int *connected, int64_t *queued);
/*
 * bucketctl migrate-db: copies the catalog of the SQLite store src into
 * the empty PostgreSQL store dst (one transaction, row counts verified;
 * sealed secrets copied as they are: the bucket id, their AAD, is kept).
 * counts: buckets, settings, files, assignments copied.  BFS_ERR_EXISTS
 * when dst is not empty, BFS_ERR_BUSY while src has pending uploads;
 * err says why.  Lock order: src, then dst.
 */
int bfs_store_migrate_db(struct bfs_store *src, struct bfs_store *dst,
			 int64_t counts[4], char *err, size_t errlen);

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
 * BFS_ERR_BUSY (with reason) while upload journal rows, files, defaults or
 * assignments refer to it ("bucket X has N pending uploads; ..."), unless
 * force (drops journal rows, index rows and assignments, clears defaults;
 * logs what it dropped); BFS_ERR_PERM when managed by config.
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
/*
 * The same with the changes handed out one at a time by next(): 1 and
 * *out filled (its strings valid until the next call), 0 at the end, or a
 * BFS_ERR_* that rolls everything back.  What a control-file session
 * applies (its changes are packed, not an array).
 */
typedef int (*bfs_assign_next_fn)(void *arg, struct bfs_assign_change *out);
int bfs_store_assign_apply_each(struct bfs_store *s, bfs_assign_next_fn next,
				void *arg, char *err, size_t errlen);

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
	int no_uid, no_gid;      /* uid / gid unknown (an imported object
				  * without s3fs metadata): stored as NULL, so
				  * the mount shows the bucket's owner */
	int64_t mtime;           /* seconds */
	int64_t created_at, updated_at; /* unix seconds (stored as text) */
};

/* Insert or update by (bucket, key); created_at kept on update. */
int bfs_store_file_put(struct bfs_store *s, const struct bfs_file_row *r);
/*
 * The row (bucket, key), or BFS_ERR_NOTFOUND; BFS_ERR_BUSY (PostgreSQL
 * catalog) when the catalog has none but the host's outage queue holds a
 * write that makes one once replayed: the row exists, its fields are not
 * known yet (a rename or delete of it queues behind that write).
 */
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

/*
 * Metadata a listing may use without a HEAD (the listing's etag, size and
 * LastModified must match): rows of the file index (indexed; mode, uid,
 * gid, mtime as written; last_modified 0 until a listing recorded it) and
 * what earlier HEADs returned (object_meta).
 */
struct bfs_meta_rec {
	const char *key;         /* full key */
	const char *etag;
	uint64_t size;
	int64_t last_modified;   /* unix s; 0: not recorded yet (indexed) */
	uint32_t mode, uid, gid;
	int64_t mtime;
	long mtime_nsec;
	unsigned has_mode : 1, has_uid : 1, has_gid : 1, indexed : 1;
};
typedef int (*bfs_meta_rec_fn)(void *arg, const struct bfs_meta_rec *r);
/*
 * Index rows, then object_meta rows, of the keys directly below prefix
 * ("" or ending in '/') in bucket: two queries.  cb runs with the store
 * lock held (must not call the store); r is valid during the call only;
 * non-zero stops.  0 or an error.
 */
int bfs_store_meta_folder(struct bfs_store *s, const char *bucket,
			  const char *prefix, bfs_meta_rec_fn cb, void *arg);
/*
 * Records n entries in one transaction: indexed ones set the row's
 * last_modified when its etag still matches and none is recorded yet;
 * the others replace the key's object_meta row.
 */
int bfs_store_meta_record(struct bfs_store *s, const char *bucket,
			  const struct bfs_meta_rec *r, size_t n);

/* ---- context views ---- */

/*
 * One index row of a context file as the view queries see it: bucket
 * name and rel, the key without the bucket's prefix ("chat/ID/a.jpg").
 * Strings are valid during the callback only; callbacks run with the
 * store lock held and must not call the store; non-zero stops.
 */
struct bfs_ctx_row {
	const char *bucket;
	const char *rel;
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t mtime;
	const char *etag;        /* may be NULL */
	int exact;               /* where: 1 the file itself, 0 files below */
	uint64_t files;          /* ctx_stats: the number of files */
};
typedef int (*bfs_ctx_row_fn)(void *arg, const struct bfs_ctx_row *r);
/*
 * Which buckets hold rel ("chat/ID/P"): a row (exact 1) per bucket whose
 * prefix + rel is indexed, and a row (exact 0) per bucket with indexed
 * keys below prefix + rel + "/".  One query.
 */
int bfs_store_ctx_where(struct bfs_store *s, const char *rel,
			bfs_ctx_row_fn cb, void *arg);
/*
 * Every indexed row at or below rel_prefix ("chat/ID/" or deeper, ending
 * in '/') in every bucket but skip_bucket (NULL: all), sorted by bucket,
 * rel.  One query: a context listing's files in other buckets.
 */
int bfs_store_ctx_folder(struct bfs_store *s, const char *rel_prefix,
			 const char *skip_bucket, bfs_ctx_row_fn cb, void *arg);
/* The distinct IDs (in r->rel) of contexts of type (0 chat, 1 form) with
 * indexed files, sorted; not validated. */
int bfs_store_ctx_ids(struct bfs_store *s, int type, bfs_ctx_row_fn cb,
		      void *arg);
/* Per context ("chat/ID" in r->rel) and bucket: r->files files of
 * r->size bytes, sorted by context, bucket. */
int bfs_store_ctx_stats(struct bfs_store *s, bfs_ctx_row_fn cb, void *arg);

/*
 * Moves in progress (bucketctl context move): a durable note per file
 * whose index row moved to its new bucket before the old object was
 * deleted, so a run after an interruption finishes the delete.  Kept in
 * the settings table under keys starting with "move:".  value NULL
 * deletes the note.  The list callback runs with the store lock held.
 */
typedef int (*bfs_setting_fn)(void *arg, const char *key, const char *value);
int bfs_store_move_note(struct bfs_store *s, const char *key,
			const char *value);
int bfs_store_move_list(struct bfs_store *s, const char *prefix,
			bfs_setting_fn cb, void *arg);

struct bfs_bucket_stats {
	char *bucket;
	uint64_t files, bytes;
};
int bfs_store_stats(struct bfs_store *s, const char *bucket,
		    struct bfs_bucket_stats **out, size_t *n);
void bfs_bucket_stats_free(struct bfs_bucket_stats *a, size_t n);

/* ---- the upload journal ---- */

/*
 * One file whose data was acknowledged (write/flush/fsync/release
 * returned) but is not yet stored by its provider.  Recorded before the
 * acknowledgement, deleted once the upload succeeded: a row that survives
 * a crash or kill -9 is finished by the next daemon start.  Every journal
 * write is durable (fsync'd, PRAGMA synchronous=FULL) when the function
 * returns.  Timestamps are unix seconds.
 */
struct bfs_journal_entry {
	int64_t id;              /* row id (out only) */
	char *bucket;            /* bucket name (the row stores bucket_id) */
	char *key;               /* full remote key, prefix included */
	char *staging_path;      /* the local file holding the data (fsync'd) */
	char *base_etag;         /* etag of the remote object the data was
				  * based on; NULL: the file was new */
	uint64_t size;
	uint32_t mode, uid, gid;
	int64_t mtime;           /* seconds */
	int64_t created_at, updated_at;
	int attempts;            /* failed upload attempts so far */
	char *last_error;        /* message of the last failure, or NULL */
	char *upload_id;         /* multipart upload the data is being sent
				  * to (out only; set with
				  * bfs_store_mpu_begin), or NULL */
	uint64_t part_size;      /* its part plan (bfs_mpu.h): base */
	int part_grow;           /* and plan kind (BFS_MPU_PLAN_*) */
};

/*
 * Upsert by (bucket, key).  A new row takes created_at from e (0: now),
 * attempts and last_error from e (normally 0 / NULL); an existing row
 * keeps its created_at, attempts and last_error and gets e's staging_path,
 * base_etag, size, mode, uid, gid, mtime.  updated_at is now.  e->id and
 * e->updated_at are ignored.  BFS_ERR_NOTFOUND for an unknown bucket,
 * BFS_ERR_INVAL without bucket, key or staging_path.
 */
int bfs_store_journal_put(struct bfs_store *s, const struct bfs_journal_entry *e);
/*
 * The same upsert without an fsync (synchronous=NORMAL): the row survives
 * a crash of the process (kill -9) at once, a power cut only after the
 * next durable journal write of this store (any row: it syncs the WAL, and
 * with it every earlier commit).  For rows whose data is not promised to
 * survive a power cut yet (docs/RELIABILITY.md "The upload journal").
 */
int bfs_store_journal_put_lazy(struct bfs_store *s,
			       const struct bfs_journal_entry *e);
/* Deletes the row (bucket, key); an absent row or bucket is not an error. */
int bfs_store_journal_done(struct bfs_store *s, const char *bucket,
			   const char *key);
/*
 * After a successful upload, in one transaction: upserts the index row
 * `row` (as bfs_store_file_put) and, when done_key is not NULL, deletes
 * the journal row (row->bucket, done_key) durably (as
 * bfs_store_journal_done).  On an error neither change is made.
 */
int bfs_store_upload_done(struct bfs_store *s, const struct bfs_file_row *row,
			  const char *done_key);
/*
 * Records a failed attempt: attempts + 1, last_error = error (NULL
 * clears it), updated_at = now.  BFS_ERR_NOTFOUND when there is no such
 * row (it was done or renamed meanwhile).
 */
int bfs_store_journal_fail(struct bfs_store *s, const char *bucket,
			   const char *key, const char *error);
/*
 * Moves the row (sb, sk) to (db, dk), keeping everything else, in one
 * transaction; a row already at (db, dk) is replaced (rename(2) replaced
 * that file; its staging file is the caller's to delete).
 * BFS_ERR_NOTFOUND (nothing changed) when either bucket or the source row
 * is absent.
 */
int bfs_store_journal_rename(struct bfs_store *s, const char *sb,
			     const char *sk, const char *db, const char *dk);
/*
 * A folder rename: every row of sb whose key starts (byte-wise) with
 * src_prefix moves to db with src_prefix replaced by dst_prefix; rows in
 * the way are replaced.  One transaction.  Same errors as
 * bfs_store_file_rename_prefix().
 */
int bfs_store_journal_rename_prefix(struct bfs_store *s, const char *sb,
				    const char *src_prefix, const char *db,
				    const char *dst_prefix);
/*
 * Every row, oldest first (created_at, then id), into a new array *out of
 * *n entries (NULL / 0 when empty); free with bfs_journal_entries_free.
 * BFS_ERR_TOOBIG beyond BFS_JOURNAL_LIST_MAX rows.
 */
#define BFS_JOURNAL_LIST_MAX 1000000
int bfs_store_journal_list(struct bfs_store *s, struct bfs_journal_entry **out,
			   size_t *n);
/* Frees the strings of a[0..n) and a; NULL is fine. */
void bfs_journal_entries_free(struct bfs_journal_entry *a, size_t n);

/* ---- multipart upload ids ---- */

/*
 * Every upload id the daemon creates is recorded here before its first
 * part is sent, so none is ever forgotten on the server: an id no journal
 * row uses any more is aborted (bfs_store_mpu_orphans) and then forgotten.
 * Journal renames clear the row's upload id (an id belongs to its key).
 * All writes durable as for the journal.
 */
/*
 * Records upload_id of (bucket, key) and, in the same transaction, sets
 * it with its part plan on the journal row of (bucket, key).
 * BFS_ERR_NOTFOUND when that row is gone (the id stays recorded: an
 * orphan for the next sweep).
 */
int bfs_store_mpu_begin(struct bfs_store *s, const char *bucket,
			const char *key, const char *upload_id,
			uint64_t part_size, int part_grow);
/* Clears the journal row's upload id when it is upload_id. */
int bfs_store_mpu_clear(struct bfs_store *s, const char *bucket,
			const char *key, const char *upload_id);
/* Forgets a recorded id (completed or aborted); absent is fine. */
int bfs_store_mpu_forget(struct bfs_store *s, const char *upload_id);
struct bfs_mpu_rec {
	char *bucket, *key, *upload_id;
	int64_t created_at;
};
/* Recorded ids no journal row uses, oldest first (caller frees with
 * bfs_mpu_recs_free). */
int bfs_store_mpu_orphans(struct bfs_store *s, struct bfs_mpu_rec **out,
			  size_t *n);
void bfs_mpu_recs_free(struct bfs_mpu_rec *a, size_t n);

#endif
