/*
 * sqldb.c - the store's database layer (see sqldb.h): SQLite pass-through,
 * PostgreSQL through libpq, statement routing between the shared catalog
 * and the host-local file, and the two-sided transaction.
 *
 * A PostgreSQL statement is translated once at prepare (bfs_pg_sql) and
 * run with PQexecParams at its first step.  Every value travels as text;
 * one bound as a string is typed text, one bound as a number (or NULL) is
 * left untyped so the server infers its type from the context, as SQLite
 * takes any value.  The whole result is then stepped through row by row.
 * Values come back as text: column_int64 parses them ("t"/"true" read as
 * 1, "f"/"false" as 0, as SQLite's json_extract returns booleans).
 *
 * Locking: none here; the store's lock guards a handle, its connections
 * and statements for the whole of each call (store.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "bfs_error.h"
#include "bfs_log.h"
#include "sqldb.h"
#include "store_int.h"

#define PG_PARAMS_MAX 64
#define PG_TEXT_OID 25
#define ERRMSG_MAX 512
/* Key of the advisory lock every catalog transaction takes ("bfs0"). */
#define PG_TX_LOCK 0x62667330

/* Session settings every connection gets. */
#define PG_SESSION_SQL "SET TIME ZONE 'UTC'; SET client_min_messages = warning"

struct bfs_db {
	sqlite3 *lite;          /* the SQLite file (local part for PG) */
	PGconn *pg;             /* NULL: plain SQLite */
	char *uri, *password;   /* connection parameters (immutable) */
	char host_id[40];       /* this host's id (local file; immutable) */
	int serviced;           /* a service thread reconnects (bfs_db_pg_*):
				 * statements never reconnect inline */
	int own_slot;           /* its entry in own_pids, or -1 */
	int in_tx;              /* BEGIN seen, COMMIT/ROLLBACK not yet */
	int lite_tx, pg_tx;     /* that side has begun */
	int64_t mirror_v;       /* catalog version the bucket mirror has;
				 * -1: unknown */
	int64_t seen_v;         /* catalog version last read (the daemon
				 * polls it); -1: unknown */
	int changes;            /* rows of the last statement */
	int errcode;            /* SQLite code of the last failure */
	char errmsg[ERRMSG_MAX];
};

struct bfs_db_stmt {
	struct bfs_db *db;
	sqlite3_stmt *lite;     /* a local statement, or NULL */
	/* PostgreSQL statement: */
	char *sql;
	int nparams;
	const char *names[BFS_PG_NAMES_MAX];
	size_t namelen[BFS_PG_NAMES_MAX];
	int nnames, nfirst;     /* named parameters start at nfirst */
	char *vals[PG_PARAMS_MAX];
	char numbuf[PG_PARAMS_MAX][24];
	Oid types[PG_PARAMS_MAX];  /* text binds: text; numbers: inferred */
	int unused[PG_PARAMS_MAX]; /* not in the text: sent typed text */
	PGresult *res;
	int row, nrows;         /* row: the current one (-1 before) */
	int is_version;         /* reads the catalog version */
	int writes_buckets;     /* may change storage_buckets */
};

static int fail(struct bfs_db *db, int code, const char *msg)
{
	size_t n;

	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg ? msg : "error");
	n = strcspn(db->errmsg, "\n");
	db->errmsg[n] = '\0';
	db->errcode = code;
	return code;
}

/* The SQLite code of a failed PostgreSQL result. */
static int pg_code(const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!st)
		return SQLITE_IOERR;     /* connection trouble */
	if (strncmp(st, "23", 2) == 0)
		return SQLITE_CONSTRAINT;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 ||
	    strcmp(st, "55P03") == 0)
		return SQLITE_BUSY;
	if (strcmp(st, "53100") == 0)
		return SQLITE_FULL;
	return SQLITE_ERROR;
}

/* Runs a parameterless PostgreSQL command; SQLITE_OK or a code. */
static int pg_cmd(struct bfs_db *db, const char *sql)
{
	PGresult *res = PQexec(db->pg, sql);
	int rc = SQLITE_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = fail(db, pg_code(res), PQerrorMessage(db->pg));
	PQclear(res);
	return rc;
}

static int lite_fail(struct bfs_db *db, int rc)
{
	return fail(db, rc, sqlite3_errmsg(db->lite));
}

/*
 * Before a PostgreSQL statement outside a transaction: a connection the
 * server dropped (restart, network) is re-opened once with the same
 * parameters (PQreset), so the store recovers by itself when the server
 * is back.  Inside a transaction a lost connection fails the transaction.
 */
static int pg_ready(struct bfs_db *db)
{
	PGresult *res;

	if (PQstatus(db->pg) == CONNECTION_OK || db->pg_tx)
		return SQLITE_OK;
	if (db->serviced)
		return fail(db, SQLITE_IOERR, "the PostgreSQL server is "
			    "unreachable (reconnecting)");
	PQreset(db->pg);
	if (PQstatus(db->pg) != CONNECTION_OK)
		return fail(db, SQLITE_IOERR, PQerrorMessage(db->pg));
	BFS_INFO("postgresql: reconnected");
	res = PQexec(db->pg, PG_SESSION_SQL);
	PQclear(res);
	db->mirror_v = -1;
	return SQLITE_OK;
}

/* Begins the side a statement goes to when a transaction is open. */
static int side_begin(struct bfs_db *db, int pg)
{
	char sql[96];
	int rc = SQLITE_OK;

	if (!db->in_tx)
		return pg ? pg_ready(db) : SQLITE_OK;
	if (pg && !db->pg_tx) {
		if ((rc = pg_ready(db)) != SQLITE_OK)
			return rc;
		snprintf(sql, sizeof(sql), "BEGIN; SELECT "
			 "pg_advisory_xact_lock(%d)", PG_TX_LOCK);
		rc = pg_cmd(db, sql);
		if (rc != SQLITE_OK && PQstatus(db->pg) == CONNECTION_BAD &&
		    pg_ready(db) == SQLITE_OK)
			rc = pg_cmd(db, sql);   /* the server came back */
		if (rc == SQLITE_OK)
			db->pg_tx = 1;
		else
			pg_cmd(db, "ROLLBACK");
	} else if (!pg && !db->lite_tx) {
		rc = sqlite3_exec(db->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			db->lite_tx = 1;
		else
			lite_fail(db, rc);
	}
	return rc;
}

/*
 * The backend pids of this process's catalog connections, so the change
 * watcher skips notifications of the process's own writes.  A slot is
 * claimed by a handle at its first connect and freed when it closes;
 * each entry is an atomic written by the handle's user.
 */
#define OWN_PIDS_MAX 32
static _Atomic int own_pids[OWN_PIDS_MAX];
static _Atomic int own_used[OWN_PIDS_MAX];

static void own_pid_set(struct bfs_db *db)
{
	int i, zero;

	if (db->own_slot < 0) {
		for (i = 0; i < OWN_PIDS_MAX; i++) {
			zero = 0;
			if (atomic_compare_exchange_strong(&own_used[i], &zero,
							   1)) {
				db->own_slot = i;
				break;
			}
		}
	}
	if (db->own_slot >= 0)
		atomic_store(&own_pids[db->own_slot], PQbackendPID(db->pg));
}

int bfs_db_pg_own_pid(int pid)
{
	int i;

	for (i = 0; i < OWN_PIDS_MAX; i++)
		if (atomic_load(&own_used[i]) && atomic_load(&own_pids[i]) == pid)
			return 1;
	return 0;
}

/* ---- open / close ---- */

int bfs_db_open(const char *path, struct bfs_db **out, int flags)
{
	struct bfs_db *db = calloc(1, sizeof(*db));
	int rc;

	*out = NULL;
	if (!db)
		return SQLITE_NOMEM;
	db->mirror_v = -1;
	db->seen_v = -1;
	db->own_slot = -1;
	rc = sqlite3_open_v2(path, &db->lite, flags, NULL);
	if (rc != SQLITE_OK)
		lite_fail(db, rc);
	*out = db;
	return rc;
}

sqlite3 *bfs_db_local(struct bfs_db *db)
{
	return db ? db->lite : NULL;
}

int bfs_db_is_pg(const struct bfs_db *db)
{
	return db && db->pg;
}

int bfs_db_close_v2(struct bfs_db *db)
{
	if (!db)
		return SQLITE_OK;
	if (db->pg)
		PQfinish(db->pg);
	if (db->own_slot >= 0) {
		atomic_store(&own_pids[db->own_slot], 0);
		atomic_store(&own_used[db->own_slot], 0);
	}
	sqlite3_close_v2(db->lite);
	free(db->uri);
	if (db->password) {
		memset(db->password, 0, strlen(db->password));
		free(db->password);
	}
	free(db);
	return SQLITE_OK;
}

/* Current catalog version on PostgreSQL, or -1. */
static int64_t pg_version(struct bfs_db *db)
{
	PGresult *res = PQexec(db->pg, "SELECT v FROM bfs_catalog_version");
	int64_t v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fail(db, pg_code(res), PQerrorMessage(db->pg));
	PQclear(res);
	return v;
}

/*
 * Applies the PostgreSQL migrations above bfs_catalog_version.schema, each
 * in one transaction under the advisory lock (so two hosts starting on a
 * fresh database do not both apply one).
 */
static int pg_migrate(struct bfs_db *db, char *err, size_t errlen)
{
	char sql[160];
	PGresult *res = NULL;
	int v = 0, n = bfs_pg_schema_version(), r = BFS_ERR_DB;

	if (pg_cmd(db, "CREATE TABLE IF NOT EXISTS bfs_schema (version INTEGER"
		   " NOT NULL)") != SQLITE_OK)
		goto dberr;
	/* Up to date (every start but the first, every further session):
	 * no advisory lock, so a session opens while a writer holds it. */
	res = PQexec(db->pg, "SELECT coalesce(max(version), 0) FROM bfs_schema");
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    atoi(PQgetvalue(res, 0, 0)) == n) {
		r = 0;
		goto out;
	}
	for (;;) {
		snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock"
			 "(%d)", PG_TX_LOCK);
		if (pg_cmd(db, sql) != SQLITE_OK)
			goto dberr;
		PQclear(res);
		res = PQexec(db->pg, "SELECT coalesce(max(version), 0) FROM "
			     "bfs_schema");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fail(db, pg_code(res), PQerrorMessage(db->pg));
			goto dberr;
		}
		v = atoi(PQgetvalue(res, 0, 0));
		if (v > n) {
			snprintf(err, errlen, "database schema version %d is "
				 "newer than this program's (%d)", v, n);
			pg_cmd(db, "ROLLBACK");
			goto out;
		}
		if (v == n)
			break;
		if (pg_cmd(db, bfs_pg_migration(v)) != SQLITE_OK)
			goto dberr;
		snprintf(sql, sizeof(sql), "DELETE FROM bfs_schema; INSERT INTO"
			 " bfs_schema VALUES (%d); COMMIT", v + 1);
		if (pg_cmd(db, sql) != SQLITE_OK)
			goto dberr;
	}
	pg_cmd(db, "COMMIT");
	r = 0;
	goto out;
dberr:
	snprintf(err, errlen, "schema migration to version %d: %s", v + 1,
		 db->errmsg);
	pg_cmd(db, "ROLLBACK");
out:
	PQclear(res);
	return r;
}

/* A new connection to the catalog (NULL only when out of memory); the
 * caller checks PQstatus.  A network call: never with a lock held. */
static PGconn *pg_connect(const char *uri, const char *password)
{
	const char *keys[10], *vals[10];
	int n = 0;

	/* A silent network partition is noticed within ~30 s (not the
	 * kernel's ~15 min of retransmits), so statements fail over to the
	 * outage queue and the watcher reconnects; set before the URI, so
	 * the URI's own values win. */
	keys[n] = "keepalives_idle";
	vals[n++] = "30";
	keys[n] = "keepalives_interval";
	vals[n++] = "10";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "tcp_user_timeout";
	vals[n++] = "30000";
	keys[n] = "dbname";
	vals[n++] = uri;           /* expand_dbname: the URI */
	if (password) {
		keys[n] = "password";
		vals[n++] = password;
	}
	keys[n] = "connect_timeout";
	vals[n++] = "10";
	keys[n] = NULL;
	vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}


/*
 * The host-local tables only a PostgreSQL setup has: index_queue (index
 * writes made while the server was unreachable, replayed in id order;
 * AUTOINCREMENT: an id is never reused, so "replayed up to id N" in
 * PostgreSQL stays exact) and local_settings (this host's random id).
 */
static int local_setup(struct bfs_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_exec(db->lite, "CREATE TABLE IF NOT EXISTS index_queue ("
			  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
			  " op TEXT NOT NULL, bucket TEXT NOT NULL,"
			  " key TEXT NOT NULL, bucket2 TEXT, key2 TEXT,"
			  " size INTEGER, etag TEXT, content_type TEXT,"
			  " mode INTEGER, uid INTEGER, gid INTEGER,"
			  " mtime INTEGER, created_at INTEGER,"
			  " updated_at INTEGER);"
			  "CREATE TABLE IF NOT EXISTS local_settings ("
			  " key TEXT PRIMARY KEY, value TEXT NOT NULL);"
			  "INSERT OR IGNORE INTO local_settings VALUES"
			  " ('host_id', lower(hex(randomblob(16))))",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db->lite, "SELECT value FROM "
					"local_settings WHERE key = 'host_id'",
					-1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		snprintf(db->host_id, sizeof(db->host_id), "%s",
			 (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_OK || !db->host_id[0]) {
		snprintf(err, errlen, "local database: %s",
			 sqlite3_errmsg(db->lite));
		return BFS_ERR_DB;
	}
	return 0;
}

int bfs_db_open_pg(const char *uri, const char *password,
		   const char *local_path, struct bfs_db **out,
		   char *err, size_t errlen)
{
	struct bfs_db *db = NULL;
	char msg[ERRMSG_MAX];
	int r = BFS_ERR_DB, rc;

	*out = NULL;
	rc = bfs_db_open(local_path, &db, SQLITE_OPEN_READWRITE |
			 SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX);
	if (!db) {
		r = BFS_ERR_NOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "local database %s: %s", local_path,
			 db->errmsg);
		goto out;
	}
	sqlite3_busy_timeout(db->lite, 5000);
	if (sqlite3_exec(db->lite, "PRAGMA journal_mode=WAL; PRAGMA "
			 "foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "local database %s: %s", local_path,
			 sqlite3_errmsg(db->lite));
		goto out;
	}
	if (bfs_store_migrate(db->lite, local_path, err, errlen) != 0 ||
	    local_setup(db, err, errlen) != 0)
		goto out;
	db->uri = strdup(uri);
	db->password = password ? strdup(password) : NULL;
	if (!db->uri || (password && !db->password)) {
		r = BFS_ERR_NOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	db->pg = pg_connect(uri, password);
	if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
		/* libpq's reason names host, port and cause, not the
		 * password. */
		snprintf(msg, sizeof(msg), "%s",
			 db->pg ? PQerrorMessage(db->pg) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "cannot connect: %s", msg);
		goto out;
	}
	own_pid_set(db);
	if (pg_cmd(db, PG_SESSION_SQL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", db->errmsg);
		goto out;
	}
	if (pg_migrate(db, err, errlen) != 0)
		goto out;
	*out = db;
	db = NULL;
	r = 0;
out:
	bfs_db_close_v2(db);
	return r;
}

int bfs_db_busy_timeout(struct bfs_db *db, int ms)
{
	return sqlite3_busy_timeout(db->lite, ms);
}

const char *bfs_db_errmsg(struct bfs_db *db)
{
	if (!db->pg)
		return sqlite3_errmsg(db->lite);
	return db->errmsg;
}

int bfs_db_errcode(struct bfs_db *db)
{
	if (!db->pg)
		return sqlite3_errcode(db->lite);
	return db->errcode;
}

int bfs_db_changes(struct bfs_db *db)
{
	if (!db->pg)
		return sqlite3_changes(db->lite);
	return db->changes;
}

/* ---- routing ---- */

/* Statements for the host-local file: the journal, upload ids, pragmas
 * other than data_version. */
static int is_local(const char *sql)
{
	if (strncmp(sql, "PRAGMA", 6) == 0)
		return strstr(sql, "data_version") == NULL;
	return strstr(sql, "upload_journal") || strstr(sql, "multipart_uploads") ||
	       strstr(sql, "index_queue") || strstr(sql, "local_settings");
}

/*
 * Before a local statement that looks buckets up: makes the local
 * storage_buckets mirror hold every PostgreSQL bucket (id, name,
 * provider), when the catalog version moved since the last refresh.
 * Rows still referenced by local journal rows stay.
 */
static int mirror_refresh(struct bfs_db *db)
{
	PGresult *res = NULL;
	sqlite3_stmt *ins = NULL;
	int64_t v;
	int i, rc;

	/* The server unreachable: the mirror as it is (journal rows keep
	 * being written; the buckets cannot have changed for this host). */
	if (db->serviced && PQstatus(db->pg) != CONNECTION_OK)
		return SQLITE_OK;
	if ((rc = side_begin(db, 1)) != SQLITE_OK)
		return rc;
	/* Up to date with the last version read: no round trip.  The
	 * daemon reads it every 250 ms and routes to a new bucket only after
	 * the reload that read brought; this process's own bucket writes
	 * reset mirror_v. */
	if (db->mirror_v >= 0 && db->mirror_v == db->seen_v)
		return SQLITE_OK;
	v = pg_version(db);
	if (v < 0)
		return db->errcode ? db->errcode : SQLITE_ERROR;
	db->seen_v = v;
	if (v == db->mirror_v)
		return SQLITE_OK;
	res = PQexec(db->pg, "SELECT id, name, provider FROM storage_buckets");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = fail(db, pg_code(res), PQerrorMessage(db->pg));
		goto out;
	}
	if ((rc = side_begin(db, 0)) != SQLITE_OK)
		goto out;
	rc = sqlite3_exec(db->lite, "DELETE FROM storage_buckets WHERE NOT"
			  " EXISTS (SELECT 1 FROM upload_journal j WHERE"
			  " j.bucket_id = storage_buckets.id)", NULL, NULL,
			  NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db->lite, "INSERT INTO storage_buckets"
					" (id, name, provider, config_json)"
					" VALUES (?1, ?2, ?3, '{}')"
					" ON CONFLICT DO NOTHING", -1, &ins,
					NULL);
	for (i = 0; rc == SQLITE_OK && i < PQntuples(res); i++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, PQgetvalue(res, i, 0), -1,
				  SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 2, PQgetvalue(res, i, 1), -1,
				  SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 3, PQgetvalue(res, i, 2), -1,
				  SQLITE_TRANSIENT);
		rc = sqlite3_step(ins);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		lite_fail(db, rc);
		goto out;
	}
	db->mirror_v = v;
out:
	sqlite3_finalize(ins);
	PQclear(res);
	return rc;
}

/* ---- exec and transactions ---- */

static int tx_finish(struct bfs_db *db, int commit)
{
	int rc = SQLITE_OK, lrc;

	if (db->pg_tx) {
		rc = pg_cmd(db, commit ? "COMMIT" : "ROLLBACK");
		db->pg_tx = 0;
		if (rc != SQLITE_OK)
			commit = 0;
	}
	if (db->lite_tx) {
		lrc = sqlite3_exec(db->lite, commit ? "COMMIT" : "ROLLBACK",
				   NULL, NULL, NULL);
		if (lrc != SQLITE_OK && commit) {
			/* SQLite keeps the transaction open on a failed
			 * COMMIT (busy): the caller's ROLLBACK ends it. */
			return lite_fail(db, lrc);
		}
		db->lite_tx = 0;
	}
	if (!commit)
		db->mirror_v = -1;  /* a refresh may have been undone */
	db->in_tx = 0;
	return rc;
}

int bfs_db_exec(struct bfs_db *db, const char *sql, void *cb, void *arg,
		char **errmsg)
{
	int rc;

	if (!db->pg)
		return sqlite3_exec(db->lite, sql, (sqlite3_callback)cb, arg,
				    errmsg);
	if (strcmp(sql, "BEGIN IMMEDIATE") == 0) {
		if (db->in_tx)
			return fail(db, SQLITE_ERROR, "transaction already open");
		db->in_tx = 1;
		return SQLITE_OK;
	}
	if (strcmp(sql, "COMMIT") == 0)
		return tx_finish(db, 1);
	if (strcmp(sql, "ROLLBACK") == 0)
		return tx_finish(db, 0);
	if (is_local(sql)) {
		if (strncmp(sql, "PRAGMA", 6) != 0 &&
		    (rc = side_begin(db, 0)) != SQLITE_OK)
			return rc;
		rc = sqlite3_exec(db->lite, sql, (sqlite3_callback)cb, arg,
				  errmsg);
		return rc == SQLITE_OK ? rc : lite_fail(db, rc);
	}
	return fail(db, SQLITE_ERROR, "statement not supported on PostgreSQL");
}

/* ---- statements ---- */

/*
 * A parameter the PostgreSQL text never uses (SQLite allows gaps: ?16,
 * ?18) has nothing to infer its type from: it is typed text.
 */
static void mark_unused(struct bfs_db_stmt *st)
{
	const char *p;
	int i, used;

	for (i = 1; i <= st->nparams; i++) {
		used = 0;
		for (p = st->sql; (p = strchr(p, '$')) != NULL; p++)
			if (atoi(p + 1) == i) {
				used = 1;
				break;
			}
		st->unused[i - 1] = !used;
	}
}

int bfs_db_prepare_v2(struct bfs_db *db, const char *sql, int n,
		      struct bfs_db_stmt **out, const char **tail)
{
	struct bfs_db_stmt *st;
	int rc;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return fail(db, SQLITE_NOMEM, "out of memory");
	st->db = db;
	st->row = -1;
	if (!db->pg || is_local(sql)) {
		if (db->pg && strstr(sql, "storage_buckets") &&
		    (rc = mirror_refresh(db)) != SQLITE_OK)
			goto fail;
		rc = sqlite3_prepare_v2(db->lite, sql, n, &st->lite, tail);
		if (rc != SQLITE_OK) {
			if (db->pg)
				lite_fail(db, rc);
			goto fail;
		}
		*out = st;
		return SQLITE_OK;
	}
	if (strcmp(sql, "PRAGMA data_version") == 0) {
		sql = "SELECT v FROM bfs_catalog_version";
		st->is_version = 1;
	} else if (strncmp(sql, "INSERT INTO storage_buckets", 27) == 0 ||
		   strncmp(sql, "UPDATE storage_buckets", 22) == 0 ||
		   strncmp(sql, "DELETE FROM storage_buckets", 27) == 0) {
		st->writes_buckets = 1;
	}
	st->sql = bfs_pg_sql(sql, st->names, st->namelen, &st->nnames,
			     &st->nparams);
	if (!st->sql) {
		rc = fail(db, SQLITE_NOMEM, "out of memory");
		goto fail;
	}
	if (st->nparams > PG_PARAMS_MAX) {
		rc = fail(db, SQLITE_ERROR, "too many parameters");
		goto fail;
	}
	st->nfirst = st->nparams - st->nnames + 1;
	mark_unused(st);
	*out = st;
	return SQLITE_OK;
fail:
	sqlite3_finalize(st->lite);
	free(st->sql);
	free(st);
	return rc;
}

static void pg_clear_params(struct bfs_db_stmt *st)
{
	int i;

	for (i = 0; i < PG_PARAMS_MAX; i++) {
		if (st->vals[i] != st->numbuf[i])
			free(st->vals[i]);
		st->vals[i] = NULL;
		st->types[i] = 0;
	}
}

int bfs_db_finalize(struct bfs_db_stmt *st)
{
	if (!st)
		return SQLITE_OK;
	sqlite3_finalize(st->lite);
	PQclear(st->res);
	pg_clear_params(st);
	free(st->sql);
	free(st);
	return SQLITE_OK;
}

int bfs_db_reset(struct bfs_db_stmt *st)
{
	if (st->lite)
		return sqlite3_reset(st->lite);
	PQclear(st->res);
	st->res = NULL;
	st->row = -1;
	st->nrows = 0;
	return SQLITE_OK;
}

int bfs_db_clear_bindings(struct bfs_db_stmt *st)
{
	if (st->lite)
		return sqlite3_clear_bindings(st->lite);
	pg_clear_params(st);
	return SQLITE_OK;
}

static int param_slot(struct bfs_db_stmt *st, int i)
{
	if (i < 1 || i > st->nparams)
		return -1;
	if (st->vals[i - 1] != st->numbuf[i - 1])
		free(st->vals[i - 1]);
	st->vals[i - 1] = NULL;
	return i - 1;
}

int bfs_db_bind_text(struct bfs_db_stmt *st, int i, const char *v, int n,
		     void (*destructor)(void *))
{
	int k;

	if (st->lite)
		return sqlite3_bind_text(st->lite, i, v, n, destructor);
	if ((k = param_slot(st, i)) < 0)
		return SQLITE_RANGE;
	st->vals[k] = n < 0 ? strdup(v) : strndup(v, (size_t)n);
	st->types[k] = PG_TEXT_OID;
	return st->vals[k] ? SQLITE_OK : SQLITE_NOMEM;
}

int bfs_db_bind_int64(struct bfs_db_stmt *st, int i, sqlite3_int64 v)
{
	int k;

	if (st->lite)
		return sqlite3_bind_int64(st->lite, i, v);
	if ((k = param_slot(st, i)) < 0)
		return SQLITE_RANGE;
	snprintf(st->numbuf[k], sizeof(st->numbuf[k]), "%lld", (long long)v);
	st->vals[k] = st->numbuf[k];
	st->types[k] = 0;
	return SQLITE_OK;
}

int bfs_db_bind_null(struct bfs_db_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_bind_null(st->lite, i);
	int k = param_slot(st, i);

	if (k < 0)
		return SQLITE_RANGE;
	st->types[k] = 0;
	return SQLITE_OK;
}

int bfs_db_bind_parameter_count(struct bfs_db_stmt *st)
{
	if (st->lite)
		return sqlite3_bind_parameter_count(st->lite);
	return st->nparams;
}

int bfs_db_bind_parameter_index(struct bfs_db_stmt *st, const char *name)
{
	int i;

	if (st->lite)
		return sqlite3_bind_parameter_index(st->lite, name);
	for (i = 0; i < st->nnames; i++)
		if (strlen(name) == st->namelen[i] &&
		    strncmp(name, st->names[i], st->namelen[i]) == 0)
			return st->nfirst + i;
	return 0;
}

int bfs_db_step(struct bfs_db_stmt *st)
{
	struct bfs_db *db = st->db;
	const char *vals[PG_PARAMS_MAX];
	ExecStatusType es;
	const char *t;
	int i, rc;

	if (st->lite) {
		if (db->pg && (rc = side_begin(db, 0)) != SQLITE_OK)
			return rc;
		rc = sqlite3_step(st->lite);
		if (db->pg) {
			if (rc == SQLITE_DONE)
				db->changes = sqlite3_changes(db->lite);
			else if (rc != SQLITE_ROW)
				lite_fail(db, rc);
		}
		return rc;
	}
	if (!st->res) {
		if ((rc = side_begin(db, 1)) != SQLITE_OK)
			return rc;
		for (i = 0; i < st->nparams; i++) {
			vals[i] = st->vals[i];
			if (st->unused[i])
				st->types[i] = PG_TEXT_OID;
		}
		st->res = PQexecParams(db->pg, st->sql, st->nparams,
				       st->types, vals, NULL, NULL, 0);
		es = PQresultStatus(st->res);
		if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK &&
		    !db->pg_tx && PQstatus(db->pg) == CONNECTION_BAD &&
		    pg_ready(db) == SQLITE_OK) {
			/* Lost before it ran (the server restarted): once
			 * more on the new connection.  Outside a transaction
			 * every statement is one idempotent write or a read. */
			PQclear(st->res);
			st->res = PQexecParams(db->pg, st->sql, st->nparams,
					       st->types, vals, NULL, NULL, 0);
			es = PQresultStatus(st->res);
		}
		if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
			rc = fail(db, pg_code(st->res), PQerrorMessage(db->pg));
			BFS_DEBUG("postgresql: %s: %s", db->errmsg, st->sql);
			PQclear(st->res);
			st->res = NULL;
			return rc;
		}
		st->nrows = PQntuples(st->res);
		if (st->is_version && st->nrows == 1)
			db->seen_v = strtoll(PQgetvalue(st->res, 0, 0), NULL,
					     10);
		if (st->writes_buckets)
			db->mirror_v = -1;
		t = PQcmdTuples(st->res);
		db->changes = t && *t ? atoi(t) : 0;
		st->row = -1;
	}
	if (st->row + 1 < st->nrows) {
		st->row++;
		return SQLITE_ROW;
	}
	st->row = st->nrows;
	return SQLITE_DONE;
}

static const char *pg_value(struct bfs_db_stmt *st, int i)
{
	if (!st->res || st->row < 0 || st->row >= st->nrows ||
	    i < 0 || i >= PQnfields(st->res) ||
	    PQgetisnull(st->res, st->row, i))
		return NULL;
	return PQgetvalue(st->res, st->row, i);
}

const unsigned char *bfs_db_column_text(struct bfs_db_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_text(st->lite, i);
	return (const unsigned char *)pg_value(st, i);
}

sqlite3_int64 bfs_db_column_int64(struct bfs_db_stmt *st, int i)
{
	const char *v;

	if (st->lite)
		return sqlite3_column_int64(st->lite, i);
	v = pg_value(st, i);
	if (!v)
		return 0;
	if (strcmp(v, "t") == 0 || strcmp(v, "true") == 0)
		return 1;
	return strtoll(v, NULL, 10);
}

int bfs_db_column_int(struct bfs_db_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_int(st->lite, i);
	return (int)bfs_db_column_int64(st, i);
}

int bfs_db_column_type(struct bfs_db_stmt *st, int i)
{
	if (st->lite)
		return sqlite3_column_type(st->lite, i);
	return pg_value(st, i) ? SQLITE_TEXT : SQLITE_NULL;
}

/* Columns of the result; a PostgreSQL statement knows them once it ran. */
int bfs_db_column_count(struct bfs_db_stmt *st)
{
	if (st->lite)
		return sqlite3_column_count(st->lite);
	return st->res ? PQnfields(st->res) : 0;
}

struct bfs_db *bfs_db_db_handle(struct bfs_db_stmt *st)
{
	return st->db;
}

/* ---- connection state and reconnecting (the daemon's service thread) ---- */

PGconn *bfs_db_pg_connect(struct bfs_db *db)
{
	return pg_connect(db->uri, db->password);
}


int bfs_db_pg_down(const struct bfs_db *db)
{
	return db && db->pg && PQstatus(db->pg) != CONNECTION_OK;
}

const char *bfs_db_host_id(const struct bfs_db *db)
{
	return db->host_id;
}

void bfs_db_pg_serviced(struct bfs_db *db)
{
	if (db)
		db->serviced = 1;
}

PGconn *bfs_db_pg_dial(struct bfs_db *db)
{
	char msg[ERRMSG_MAX];
	PGresult *res;
	PGconn *c = pg_connect(db->uri, db->password);

	if (c && PQstatus(c) == CONNECTION_OK) {
		res = PQexec(c, PG_SESSION_SQL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			PQclear(res);
			return c;
		}
		PQclear(res);
	}
	if (c) {
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		BFS_DEBUG("postgresql: reconnect failed: %s", msg);
		PQfinish(c);
	}
	return NULL;
}

void bfs_db_pg_adopt(struct bfs_db *db, PGconn *c)
{
	if (!c)
		return;
	if (db->pg_tx || !bfs_db_pg_down(db)) {
		PQfinish(c);    /* cannot happen between transactions */
		return;
	}
	PQfinish(db->pg);
	db->pg = c;
	own_pid_set(db);
	db->mirror_v = -1;
	db->seen_v = -1;
	BFS_INFO("postgresql: reconnected");
}

/* ---- copying a SQLite catalog into PostgreSQL (migrate-db) ---- */

/* The catalog tables in reference order, with the columns both have. */
static const char *const copy_tables[][2] = {
	{ "storage_buckets", "id, name, description, provider, is_default,"
	  " is_default_chat, is_default_forms, config_json, managed_by,"
	  " created_by, created_at, updated_at" },
	{ "settings", "key, value" },
	{ "files", "id, bucket_id, key, size, etag, content_type, mode, uid,"
	  " gid, mtime, created_at, updated_at, last_modified" },
	{ "assignments", "context_type, context_id, bucket_id" },
	{ "object_meta", "bucket_id, key, etag, size, last_modified, mode, uid,"
	  " gid, mtime, mtime_nsec" },
};

#define COPY_NTABLES (sizeof(copy_tables) / sizeof(copy_tables[0]))

static int64_t lite_count(sqlite3 *db, const char *table)
{
	sqlite3_stmt *st = NULL;
	char sql[96];
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int64_t pg_count(struct bfs_db *db, const char *table)
{
	char sql[96];
	PGresult *res;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	res = PQexec(db->pg, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

/* Copies every row of table i from src to dst; *n rows copied. */
static int copy_table(sqlite3 *src, struct bfs_db *dst, size_t i,
		      int64_t *n, char *err, size_t errlen)
{
	const char *vals[PG_PARAMS_MAX];
	char sel[512], ins[1024];
	sqlite3_stmt *st = NULL;
	PGresult *res;
	size_t off;
	int ncol, c, rc, r = BFS_ERR_DB;

	*n = 0;
	snprintf(sel, sizeof(sel), "SELECT %s FROM %s", copy_tables[i][1],
		 copy_tables[i][0]);
	if (sqlite3_prepare_v2(src, sel, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "reading %s: %s", copy_tables[i][0],
			 sqlite3_errmsg(src));
		goto out;
	}
	ncol = sqlite3_column_count(st);
	off = (size_t)snprintf(ins, sizeof(ins), "INSERT INTO %s (%s) VALUES (",
			       copy_tables[i][0], copy_tables[i][1]);
	for (c = 0; c < ncol && off < sizeof(ins); c++)
		off += (size_t)snprintf(ins + off, sizeof(ins) - off, "%s$%d",
					c ? ", " : "", c + 1);
	if (off + 2 > sizeof(ins) || ncol > PG_PARAMS_MAX) {
		snprintf(err, errlen, "internal: statement too long");
		goto out;
	}
	memcpy(ins + off, ")", 2);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (c = 0; c < ncol; c++)
			vals[c] = (const char *)sqlite3_column_text(st, c);
		res = PQexecParams(dst->pg, ins, ncol, NULL, vals, NULL, NULL,
				   0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fail(dst, pg_code(res), PQerrorMessage(dst->pg));
			PQclear(res);
			snprintf(err, errlen, "writing %s: %s",
				 copy_tables[i][0], dst->errmsg);
			goto out;
		}
		PQclear(res);
		(*n)++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "reading %s: %s", copy_tables[i][0],
			 sqlite3_errmsg(src));
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

int bfs_db_copy_catalog(sqlite3 *src, struct bfs_db *dst,
			int64_t counts[BFS_DB_COPY_COUNTS], char *err,
			size_t errlen)
{
	char sql[96];
	int64_t n, have = 0, pending;
	size_t i;
	int r = BFS_ERR_DB;

	if (!dst->pg || dst->in_tx) {
		snprintf(err, errlen, "the target is not a PostgreSQL catalog");
		return BFS_ERR_INVAL;
	}
	pending = lite_count(src, "upload_journal");
	if (pending != 0) {
		snprintf(err, errlen, "%lld upload(s) still pending in the "
			 "SQLite journal; let the daemon store them first "
			 "(bucketctl pending)", (long long)pending);
		return BFS_ERR_BUSY;
	}
	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d)",
		 PG_TX_LOCK);
	if (pg_ready(dst) != SQLITE_OK || pg_cmd(dst, sql) != SQLITE_OK) {
		snprintf(err, errlen, "%s", dst->errmsg);
		return BFS_ERR_DB;
	}
	for (i = 0; i < COPY_NTABLES; i++)
		have += pg_count(dst, copy_tables[i][0]);
	if (have != 0) {
		snprintf(err, errlen, "the target database is not empty (%lld "
			 "catalog rows); migrate-db only fills an empty one",
			 (long long)have);
		r = BFS_ERR_EXISTS;
		goto out;
	}
	for (i = 0; i < COPY_NTABLES; i++) {
		if ((r = copy_table(src, dst, i, &n, err, errlen)) != 0)
			goto out;
		/* Verified: what PostgreSQL now holds is what SQLite has. */
		if (pg_count(dst, copy_tables[i][0]) != n ||
		    lite_count(src, copy_tables[i][0]) != n) {
			snprintf(err, errlen, "%s: row counts differ after the "
				 "copy", copy_tables[i][0]);
			r = BFS_ERR_DB;
			goto out;
		}
		if (i < BFS_DB_COPY_COUNTS)
			counts[i] = n;
	}
	if (pg_cmd(dst, "SELECT setval(pg_get_serial_sequence('files', 'id'),"
		   " coalesce(max(id), 0) + 1, false) FROM files") != SQLITE_OK ||
	    pg_cmd(dst, "COMMIT") != SQLITE_OK) {
		snprintf(err, errlen, "%s", dst->errmsg);
		r = BFS_ERR_DB;
		goto out;
	}
	dst->mirror_v = -1;
	return 0;
out:
	pg_cmd(dst, "ROLLBACK");
	return r;
}
