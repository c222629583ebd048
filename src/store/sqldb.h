/*
 * sqldb.h - the store's database layer: one handle that is either a
 * plain SQLite file or a PostgreSQL catalog with a local SQLite file.
 *
 * store.c is written against the SQLite C API.  Rather than fork it into
 * two copies of every query, store.c includes this header with
 * BFS_SQLDB_REDIRECT defined, which maps the sqlite3_* calls and types it
 * uses onto the bfs_db_* functions below.  With a SQLite database they
 * pass straight through.  With a postgresql:// database (bfs_db_open_pg)
 * each statement is routed by what it touches:
 *   - the host-local tables (upload_journal, multipart_uploads) and the
 *     connection pragmas go to the local SQLite file under cache_dir;
 *     it keeps a mirror of the storage_buckets ids and names, refreshed
 *     from PostgreSQL when the catalog version changed, so journal rows
 *     keep their bucket_id reference and name lookups;
 *   - everything else (the shared catalog: storage_buckets, files,
 *     assignments, object_meta, settings) goes to PostgreSQL, translated
 *     by bfs_pg_sql() in dialect.c, the one place that knows how the two
 *     SQL dialects differ.
 * A transaction (BEGIN IMMEDIATE / COMMIT / ROLLBACK) spans both: each
 * side is begun when its first statement runs; COMMIT commits
 * PostgreSQL first, then the local file (a crash between leaves a local
 * journal row whose index row already exists: replaying it rewrites the
 * same row).  A PostgreSQL transaction takes a transaction-level advisory
 * lock first, so writers on all hosts are serialized as SQLite's BEGIN
 * IMMEDIATE serializes them on one host.
 *
 * "PRAGMA data_version" on PostgreSQL reads bfs_catalog_version.v, which
 * triggers on storage_buckets, assignments and settings bump in the
 * writing transaction (visible exactly when it commits).
 *
 * Not thread-safe: the store's lock guards a handle and its statements.
 */
#ifndef BFS_SQLDB_H
#define BFS_SQLDB_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "bfs_store.h"

struct bfs_db;
struct bfs_db_stmt;
/* What the sqlite3 and sqlite3_stmt names stand for in store.c. */
typedef struct bfs_db bfs_db;
typedef struct bfs_db_stmt bfs_db_stmt;

/* SQLite file at path (flags as sqlite3_open_v2). */
int bfs_db_open(const char *path, struct bfs_db **out, int flags);
/*
 * The PostgreSQL catalog at uri (password may be NULL) with the local
 * SQLite file local_path.  Connects, sets up both schemas (numbered
 * migrations) and returns 0, or BFS_ERR_* with one line in err (the
 * database's reason; never the password).
 */
int bfs_db_open_pg(const char *uri, const char *password,
		   const char *local_path, struct bfs_db **out,
		   char *err, size_t errlen);
/*
 * PostgreSQL connection state.  bfs_db_pg_down: the connection is lost.
 * Once bfs_db_pg_serviced was called, statements no longer reconnect by
 * themselves (a connect may take connect_timeout): a lost connection fails
 * them at once (SQLITE_IOERR), and the store reconnects: bfs_db_pg_dial
 * (a network call: no lock held; reads only the handle's immutable
 * parameters) returns a new session or NULL, bfs_db_pg_adopt (by the
 * handle's user) swaps it in.  bfs_db_host_id: this host's random id, kept
 * in the local file.
 */
typedef struct pg_conn PGconn;
int bfs_db_pg_down(const struct bfs_db *db);
void bfs_db_pg_serviced(struct bfs_db *db);
PGconn *bfs_db_pg_dial(struct bfs_db *db);
void bfs_db_pg_adopt(struct bfs_db *db, PGconn *c);
const char *bfs_db_host_id(const struct bfs_db *db);
/* A new connection with the handle's parameters (the caller checks
 * PQstatus; a network call).  bfs_db_pg_own_pid: 1 when pid is the
 * backend of one of this process's catalog connections. */
PGconn *bfs_db_pg_connect(struct bfs_db *db);
int bfs_db_pg_own_pid(int pid);

/*
 * listen.c: the change watcher (a thread with its own connection that
 * LISTENs to bfs_changes), calling fn as bfs_store_watch describes
 * (bfs_store.h).  fn runs on the watcher's thread.
 */
typedef bfs_store_change_fn bfs_db_change_fn;
struct bfs_db_watch;
int bfs_db_watch_start(struct bfs_db *db, bfs_db_change_fn fn, void *arg,
		       struct bfs_db_watch **out);
void bfs_db_watch_stop(struct bfs_db_watch *w);
/* The local SQLite connection (the only one of a SQLite handle). */
sqlite3 *bfs_db_local(struct bfs_db *db);
int bfs_db_is_pg(const struct bfs_db *db);

int bfs_db_close_v2(struct bfs_db *db);
int bfs_db_busy_timeout(struct bfs_db *db, int ms);
const char *bfs_db_errmsg(struct bfs_db *db);
int bfs_db_errcode(struct bfs_db *db);
int bfs_db_changes(struct bfs_db *db);
int bfs_db_exec(struct bfs_db *db, const char *sql, void *cb, void *arg,
		char **errmsg);
int bfs_db_prepare_v2(struct bfs_db *db, const char *sql, int n,
		      struct bfs_db_stmt **st, const char **tail);
int bfs_db_finalize(struct bfs_db_stmt *st);
int bfs_db_reset(struct bfs_db_stmt *st);
int bfs_db_clear_bindings(struct bfs_db_stmt *st);
int bfs_db_bind_text(struct bfs_db_stmt *st, int i, const char *v, int n,
		     void (*destructor)(void *));
int bfs_db_bind_int64(struct bfs_db_stmt *st, int i, sqlite3_int64 v);
int bfs_db_bind_null(struct bfs_db_stmt *st, int i);
int bfs_db_bind_parameter_count(struct bfs_db_stmt *st);
int bfs_db_bind_parameter_index(struct bfs_db_stmt *st, const char *name);
int bfs_db_step(struct bfs_db_stmt *st);
const unsigned char *bfs_db_column_text(struct bfs_db_stmt *st, int i);
sqlite3_int64 bfs_db_column_int64(struct bfs_db_stmt *st, int i);
int bfs_db_column_int(struct bfs_db_stmt *st, int i);
int bfs_db_column_type(struct bfs_db_stmt *st, int i);
int bfs_db_column_count(struct bfs_db_stmt *st);
struct bfs_db *bfs_db_db_handle(struct bfs_db_stmt *st);

/*
 * dialect.c: the PostgreSQL text of a statement written for SQLite, as a
 * new string (NULL: out of memory).  ?N stays parameter N; :name
 * parameters get the numbers after the highest ?N, in order of first
 * appearance, written to names[] (up to 16; *nnames set).
 */
#define BFS_PG_NAMES_MAX 16
char *bfs_pg_sql(const char *sql, const char *names[BFS_PG_NAMES_MAX],
		 size_t namelen[BFS_PG_NAMES_MAX], int *nnames, int *nparams);
/* The PostgreSQL migrations (dialect.c): count and text of step i. */
int bfs_pg_schema_version(void);
const char *bfs_pg_migration(int i);

/*
 * migrate-db: copies the catalog tables of the SQLite file src
 * (storage_buckets with their sealed secrets as they are, settings,
 * files, assignments, object_meta) into the empty PostgreSQL catalog dst
 * in one transaction, verifying each table's row count.  counts[]: rows
 * of storage_buckets, settings, files, assignments.  BFS_ERR_EXISTS when
 * dst holds catalog rows, BFS_ERR_BUSY while src has pending uploads.
 */
#define BFS_DB_COPY_COUNTS 4
int bfs_db_copy_catalog(sqlite3 *src, struct bfs_db *dst,
			int64_t counts[BFS_DB_COPY_COUNTS], char *err,
			size_t errlen);

#ifdef BFS_SQLDB_REDIRECT
#define sqlite3 bfs_db
#define sqlite3_stmt bfs_db_stmt
#define sqlite3_close_v2 bfs_db_close_v2
#define sqlite3_busy_timeout bfs_db_busy_timeout
#define sqlite3_errmsg bfs_db_errmsg
#define sqlite3_errcode bfs_db_errcode
#define sqlite3_changes bfs_db_changes
#define sqlite3_exec(db, sql, cb, arg, em) \
	bfs_db_exec(db, sql, (void *)(cb), arg, em)
#define sqlite3_prepare_v2 bfs_db_prepare_v2
#define sqlite3_finalize bfs_db_finalize
#define sqlite3_reset bfs_db_reset
#define sqlite3_clear_bindings bfs_db_clear_bindings
#define sqlite3_bind_text bfs_db_bind_text
#define sqlite3_bind_int64 bfs_db_bind_int64
#define sqlite3_bind_null bfs_db_bind_null
#define sqlite3_bind_parameter_count bfs_db_bind_parameter_count
#define sqlite3_bind_parameter_index bfs_db_bind_parameter_index
#define sqlite3_step bfs_db_step
#define sqlite3_column_text bfs_db_column_text
#define sqlite3_column_int64 bfs_db_column_int64
#define sqlite3_column_int bfs_db_column_int
#define sqlite3_column_type bfs_db_column_type
#define sqlite3_column_count bfs_db_column_count
#define sqlite3_db_handle bfs_db_db_handle
#endif

#endif
