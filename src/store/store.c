/*
 * store.c - the SQLite metadata store (see bfs_store.h).
 *
 * One connection per handle, opened SQLITE_OPEN_FULLMUTEX, in WAL mode with
 * a 5 s busy timeout, foreign keys on and synchronous=NORMAL, except for
 * upload journal writes, which run with synchronous=FULL so they are on
 * disk when the call returns (see "the upload journal" below; the one
 * exception is bfs_store_journal_put_lazy).  The schema
 * comes from the numbered migrations in migrations.c.
 *
 * The same code serves a PostgreSQL catalog: the sqlite3_* calls below
 * go through sqldb.h, which runs the catalog's statements on PostgreSQL
 * (translated by dialect.c) and the journal's on a host-local SQLite file.
 *
 * Locking: every public function runs between store_lock() and
 * store_unlock() on one session (struct store_sess: a connection and its
 * transaction state), so a multi-statement operation (BEGIN IMMEDIATE
 * ... COMMIT) is never interleaved with another thread's statements and
 * sqlite3_errmsg() still describes our own failure.  SQLite: one session,
 * held under struct bfs_store.lock for the whole call.  PostgreSQL: a
 * pool of up to STORE_POOL_MAX sessions; the lock guards only the pool,
 * and the call owns its session, so a round trip to the server never
 * makes another call wait (unless every session is busy).  Callbacks
 * (bfs_store_file_list) run with the session held and must not call back
 * into the store.
 *
 * Secrets: config_json is built with SQLite's json_object() from bound
 * values and read back with json_extract(); the secret fields only ever
 * receive "v1:..." values from bfs_crypto_seal() (aad = bucket id), so no
 * plain secret is bound to any statement and none reaches the file or its
 * WAL.
 *
 * Config sync writes only what changed: settings are compared field by
 * field and secrets by their decrypted value (a re-seal would differ every
 * time), because any commit bumps PRAGMA data_version and makes every
 * running daemon reload.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_crypto.h"
#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_perm.h"
#include "bfs_pg.h"
#include "bfs_store.h"
#include "store_int.h"
/* Last: maps the sqlite3_* calls below onto the SQLite/PostgreSQL layer. */
#define BFS_SQLDB_REDIRECT
#include "sqldb.h"

#define BUSY_TIMEOUT_MS 5000
#define ID_HEX_LEN 32
/* Caps on what one call may return. */
#define BUCKETS_MAX 100000
#define ASSIGNMENTS_MAX 10000000
#define MSG_MAX 1024

/*
 * One database session: a handle (SQLite: the connection; PostgreSQL: a
 * catalog connection with its own local SQLite connection) and the
 * transaction state of the call using it.  Only the thread that checked it
 * out (store_lock) touches db and the tx fields.
 */
struct store_sess {
	sqlite3 *db;
	int busy;               /* checked out; guarded by bfs_store.lock */
	int tx_depth;           /* open tx_begin()s (nested ones join) */
	int tx_failed;          /* a nested one failed: the outer rolls back */
};

/* Sessions of a PostgreSQL store: a daemon opens more when all are busy. */
#define STORE_POOL_MAX 4

struct bfs_store {
	/* SQLite: guards the one session for the whole of each call.
	 * PostgreSQL: guards only the pool (sess[].busy, nsess, opening),
	 * so no round trip to the server happens under it; a call holds a
	 * session of its own instead (store_lock). */
	pthread_mutex_t lock;
	pthread_cond_t free_cv;         /* a session was given back */
	sqlite3 *db;            /* sess[0].db; its immutable parts (is it
				 * PostgreSQL, the URI) are read without lock */
	char *path;
	int pooled;             /* PostgreSQL (immutable after open) */
	char *password, *local_path;    /* to open more sessions */
	struct store_sess sess[STORE_POOL_MAX];
	int nsess, opening;     /* guarded by lock */
	_Atomic int serviced;   /* bfs_store_service runs (the daemon) */
	_Atomic int reachable;  /* the service reached the server since it
				 * last found its session down */
	_Atomic int64_t iq_len; /* rows in the local index_queue */
	int64_t iq_fail_id;     /* (service) the head row that last failed */
	int64_t svc_retry_at, svc_retry_ms; /* reconnect back-off (service
				 * thread only) */
	struct bfs_db_watch *watch; /* change watcher (bfs_store_watch's
				 * caller's thread only) */
};

/* The session the calling thread checked out (between store_lock and
 * store_unlock); every statement of store.c runs on it. */
static _Thread_local struct store_sess *tl_sess;
#define SDB(s) (tl_sess->db)

static int64_t store_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Checks out a session for the calling thread: SQLite, the one session
 * under the lock for the whole call; PostgreSQL, a free one (waiting
 * when all are busy; a daemon opens another, up to STORE_POOL_MAX, with
 * no lock held while it connects).  A session whose connection is lost
 * reconnects here once the service reached the server again.
 */
static void store_lock(struct bfs_store *s)
{
	struct store_sess *x = NULL;
	struct bfs_db *db;
	char msg[MSG_MAX];
	PGconn *c;
	int i, k;

	pthread_mutex_lock(&s->lock);
	if (!s->pooled) {
		tl_sess = &s->sess[0];
		return;
	}
	for (;;) {
		for (i = 0; i < s->nsess && !x; i++)
			if (!s->sess[i].busy)
				x = &s->sess[i];
		if (x)
			break;
		if (s->nsess < STORE_POOL_MAX && !s->opening &&
		    atomic_load(&s->serviced) && atomic_load(&s->reachable)) {
			s->opening = 1;
			k = s->nsess;
			pthread_mutex_unlock(&s->lock);
			db = NULL;
			if (bfs_db_open_pg(s->path, s->password, s->local_path,
					   &db, msg, sizeof(msg)) == 0)
				bfs_db_pg_serviced(db);
			else
				BFS_DEBUG("database session: %s", msg);
			pthread_mutex_lock(&s->lock);
			s->opening = 0;
			if (db) {
				s->sess[k].db = db;
				s->nsess++;
			}
			continue;
		}
		pthread_cond_wait(&s->free_cv, &s->lock);
	}
	x->busy = 1;
	pthread_mutex_unlock(&s->lock);
	tl_sess = x;
	if (bfs_db_pg_down(x->db) && atomic_load(&s->reachable)) {
		/* Only this session waits for the connect. */
		if ((c = bfs_db_pg_dial(x->db)) != NULL)
			bfs_db_pg_adopt(x->db, c);
		else
			atomic_store(&s->reachable, 0);
	}
}

static void store_unlock(struct bfs_store *s)
{
	struct store_sess *x = tl_sess;

	tl_sess = NULL;
	if (!s->pooled) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	pthread_mutex_lock(&s->lock);
	x->busy = 0;
	pthread_cond_signal(&s->free_cv);
	pthread_mutex_unlock(&s->lock);
}

static const char *const role_col[BFS_ROLE_COUNT] = {
	"is_default", "is_default_chat", "is_default_forms"
};

static const char *const ctx_type_name[2] = { "chat", "form" };

/* ---- small helpers ---- */

/*
 * Growable-array step shared by the list functions: when cnt has reached
 * *alloc, grow *arrp (a pointer to the caller's element pointer, elements of
 * elem bytes) to `first` slots, or double it.  BFS_ERR_TOOBIG once *alloc is
 * already at or over max, BFS_ERR_NOMEM when realloc fails (the old array is
 * kept, the caller still owns and frees it).  0 otherwise.
 */
static int grow(void *arrp, size_t *alloc, size_t cnt, size_t elem,
		size_t first, size_t max)
{
	void *a, *na;
	size_t n;
	int r = BFS_ERR_TOOBIG;

	if (cnt < *alloc)
		return 0;
	if (*alloc >= max)
		goto out;
	n = *alloc ? 2 * *alloc : first;
	if (n > max)
		n = max;
	memcpy(&a, arrp, sizeof(a));
	na = realloc(a, n * elem);
	if (!na) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	memcpy(arrp, &na, sizeof(na));
	*alloc = n;
	r = 0;
out:
	return r;
}

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return BFS_ERR_TIMEOUT;
	case SQLITE_NOMEM:
		return BFS_ERR_NOMEM;
	case SQLITE_FULL:
		return BFS_ERR_NOSPC;
	default:
		return BFS_ERR_DB;
	}
}

/*
 * Reports a failed SQLite call: the message goes to err when the caller
 * gave one, else to the log.  Returns the mapped project error.
 */
static int db_fail(struct bfs_store *s, int rc, char *err, size_t errlen,
		   const char *what)
{
	if (err && errlen)
		bfs_set_err(err, errlen, "database %s: %s: %s", s->path, what,
			sqlite3_errmsg(SDB(s)));
	else if (s->pooled && bfs_db_pg_down(SDB(s)))
		/* An outage: said once by the queue and the reconnect. */
		BFS_DEBUG("database %s: %s: %s", s->path, what,
			  sqlite3_errmsg(SDB(s)));
	else
		BFS_ERROR("database %s: %s: %s", s->path, what,
			  sqlite3_errmsg(SDB(s)));
	return map_rc(rc);
}

static int prepare(struct bfs_store *s, const char *sql, sqlite3_stmt **st,
		   char *err, size_t errlen)
{
	int rc = sqlite3_prepare_v2(SDB(s), sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return db_fail(s, rc, err, errlen, "prepare");
	}
	return 0;
}

/* Binds a string or NULL; keeps the first error in *acc. */
static void bind_str(int *acc, sqlite3_stmt *st, int i, const char *v)
{
	int rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT)
		   : sqlite3_bind_null(st, i);

	if (*acc == SQLITE_OK)
		*acc = rc;
}

/* Fills one zeroed element from the current row; arg is the caller's. */
typedef int (*row_fill_fn)(sqlite3_stmt *st, void *elem, const void *arg);

/*
 * Runs sql (?1 bound to bind1 when given) under the store lock and
 * collects its rows into the array *arrp of elem-byte elements (grown by
 * grow() from `first` slots up to max), one per row, filled by fill().
 * An element is zeroed and counted in *cnt before fill() runs, so after
 * an error *arrp / *cnt hold what was collected, a half-filled element
 * included, for the caller's free function.  what names the query in
 * db_fail's message.
 */
static int list_rows(struct bfs_store *s, const char *sql, const char *bind1,
		     void *arrp, size_t *cnt, size_t elem, size_t first,
		     size_t max, row_fill_fn fill, const void *arg,
		     const char *what)
{
	sqlite3_stmt *st = NULL;
	size_t alloc = 0;
	char *a;
	int rc = SQLITE_OK, r;

	store_lock(s);
	if ((r = prepare(s, sql, &st, NULL, 0)) != 0)
		goto out;
	if (bind1)
		bind_str(&rc, st, 1, bind1);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = grow(arrp, &alloc, *cnt, elem, first, max)) != 0)
			goto out;
		memcpy(&a, arrp, sizeof(a));
		a += *cnt * elem;
		memset(a, 0, elem);
		(*cnt)++;
		if ((r = fill(st, a, arg)) != 0)
			goto out;
		rc = SQLITE_OK;
	}
	r = rc == SQLITE_DONE ? 0 : db_fail(s, rc, NULL, 0, what);
out:
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

static void bind_i64(int *acc, sqlite3_stmt *st, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(st, i, v);

	if (*acc == SQLITE_OK)
		*acc = rc;
}

/* Copies a text column (NULL stays NULL).  0 or BFS_ERR_NOMEM. */
static int col_dup(sqlite3_stmt *st, int i, char **out)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	*out = NULL;
	if (!t)
		return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ?
			BFS_ERR_NOMEM : 0;
	*out = strdup((const char *)t);
	return *out ? 0 : BFS_ERR_NOMEM;
}

/* Runs a statement that returns no row, with up to two text params. */
static int exec_sql(struct bfs_store *s, const char *sql, const char *p1,
		    const char *p2, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	r = prepare(s, sql, &st, err, errlen);
	if (r != 0)
		return r;
	if (sqlite3_bind_parameter_count(st) >= 1)
		bind_str(&rc, st, 1, p1);
	if (sqlite3_bind_parameter_count(st) >= 2)
		bind_str(&rc, st, 2, p2);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(s, rc, err, errlen, "write");
	sqlite3_finalize(st);
	return r;
}

/* One integer from a query with up to one text param. */
static int query_i64(struct bfs_store *s, const char *sql, const char *p1,
		     int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	*out = 0;
	r = prepare(s, sql, &st, err, errlen);
	if (r != 0)
		return r;
	if (sqlite3_bind_parameter_count(st) >= 1)
		bind_str(&rc, st, 1, p1);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	} else {
		r = db_fail(s, rc, err, errlen, "query");
	}
	sqlite3_finalize(st);
	return r;
}

/*
 * Transactions nest: an inner tx_begin joins the open one and its
 * tx_end only records a failure (other than BFS_ERR_NOTFOUND, which the
 * keyed renames report before changing anything), which makes the outer
 * tx_end roll back.  The queue replay wraps a rename in its transaction.
 */
static int tx_begin(struct bfs_store *s, char *err, size_t errlen)
{
	int rc;

	if (tl_sess->tx_depth > 0) {
		tl_sess->tx_depth++;
		return 0;
	}
	rc = sqlite3_exec(SDB(s), "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, err, errlen, "begin");
	tl_sess->tx_depth = 1;
	tl_sess->tx_failed = 0;
	return 0;
}

/* Commits when r == 0 (returning the commit's result), else rolls back. */
static int tx_end(struct bfs_store *s, int r, char *err, size_t errlen)
{
	int rc;

	if (tl_sess->tx_depth > 1) {
		tl_sess->tx_depth--;
		if (r != 0 && r != BFS_ERR_NOTFOUND)
			tl_sess->tx_failed = 1;
		return r;
	}
	tl_sess->tx_depth = 0;
	if (r == 0 && tl_sess->tx_failed)
		r = BFS_ERR_DB;
	if (r == 0) {
		rc = sqlite3_exec(SDB(s), "COMMIT", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
		r = db_fail(s, rc, err, errlen, "commit");
	}
	sqlite3_exec(SDB(s), "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int new_bucket_id(char out[ID_HEX_LEN + 1])
{
	unsigned char raw[ID_HEX_LEN / 2];

	if (bfs_random(raw, sizeof(raw)) != 0)
		return BFS_ERR_INTERNAL;
	bfs_hex_encode(raw, sizeof(raw), out);
	return 0;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Constant-time equality of two secrets (length may leak, content not). */
static int secret_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && bfs_memeq_ct(a, b, la) == 0;
}

/* ---- open / close ---- */

void bfs_store_close(struct bfs_store *s)
{
	if (!s)
		return;
	int i;

	bfs_db_watch_stop(s->watch);
	for (i = 1; i < s->nsess; i++)
		sqlite3_close_v2(s->sess[i].db);
	sqlite3_close_v2(s->db);
	pthread_cond_destroy(&s->free_cv);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s->local_path);
	if (s->password) {
		OPENSSL_cleanse(s->password, strlen(s->password));
		free(s->password);
	}
	free(s);
}

/* Switches to WAL; a file that is not a database fails here. */
static int store_pragmas(struct bfs_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int rc, r;

	rc = sqlite3_prepare_v2(SDB(s), "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		bfs_set_err(err, errlen, "database %s: %s", s->path,
			sqlite3_errmsg(SDB(s)));
		r = map_rc(rc);
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0)
		BFS_WARN("database %s: WAL mode unavailable (journal_mode=%s)",
			 s->path, mode ? (const char *)mode : "?");
	sqlite3_finalize(st);
	st = NULL;
	rc = sqlite3_exec(SDB(s), "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		bfs_set_err(err, errlen, "database %s: %s", s->path,
			sqlite3_errmsg(SDB(s)));
		r = map_rc(rc);
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/*
 * Opens the store: the SQLite file at path, or with local_path the
 * PostgreSQL catalog at the URI path (password may be NULL) with the
 * host-local SQLite file local_path (sqldb.h).
 */
static int store_open(const char *path, const char *password,
		      const char *local_path, struct bfs_store **out,
		      char *err, size_t errlen)
{
	struct bfs_store *s = NULL;
	char msg[MSG_MAX];
	int64_t n = 0;
	int rc, r = BFS_ERR_NOMEM;

	*out = NULL;
	msg[0] = '\0';
	if (!path || !*path) {
		bfs_set_err(err, errlen, "no database path");
		return BFS_ERR_INVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	if (pthread_mutex_init(&s->lock, NULL) != 0 ||
	    pthread_cond_init(&s->free_cv, NULL) != 0) {
		free(s);
		s = NULL;
		r = BFS_ERR_INTERNAL;
		goto fail;
	}
	s->path = strdup(path);
	if (!s->path)
		goto fail;
	if (local_path) {
		r = bfs_db_open_pg(path, password, local_path, &s->db, msg,
				   sizeof(msg));
		if (r != 0) {
			char m2[MSG_MAX];

			snprintf(m2, sizeof(m2), "database %s: %s", path, msg);
			snprintf(msg, sizeof(msg), "%s", m2);
			goto fail;
		}
		s->sess[0].db = s->db;
		s->nsess = 1;
		s->pooled = 1;
		if (!(s->local_path = strdup(local_path)) ||
		    (password && !(s->password = strdup(password)))) {
			r = BFS_ERR_NOMEM;
			goto fail;
		}
		store_lock(s);
		r = store_pragmas(s, msg, sizeof(msg));
		if (r == 0)
			r = query_i64(s, "SELECT count(*) FROM index_queue", NULL,
				      &n, msg, sizeof(msg));
		store_unlock(s);
		atomic_store(&s->iq_len, n);
		if (r != 0)
			goto fail;
		*out = s;
		return 0;
	}
	rc = bfs_db_open(path, &s->db, SQLITE_OPEN_READWRITE |
			 SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX);
	s->sess[0].db = s->db;
	if (rc != SQLITE_OK) {
		snprintf(msg, sizeof(msg), "database %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		r = rc == SQLITE_NOMEM ? BFS_ERR_NOMEM : BFS_ERR_DB;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	store_lock(s);
	r = store_pragmas(s, msg, sizeof(msg));
	store_unlock(s);
	if (r != 0)
		goto fail;
	r = bfs_store_migrate(bfs_db_local(s->db), path, msg, sizeof(msg));
	if (r != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (r == BFS_ERR_NOMEM && !msg[0])
		snprintf(msg, sizeof(msg), "database %s: out of memory", path);
	bfs_set_err(err, errlen, "%s", msg);
	bfs_store_close(s);
	return r;
}

/*
 * Contract: opens (creating when missing) the database at path and brings
 * its schema up to date.  *out is NULL on failure; err then holds one line
 * naming the file and SQLite's reason ("file is not a database").
 */
int bfs_store_open(const char *path, struct bfs_store **out,
		   char *err, size_t errlen)
{
	return store_open(path, NULL, NULL, out, err, errlen);
}

int bfs_store_open_config(const struct bfs_config *cfg,
			  struct bfs_store **out, char *err, size_t errlen)
{
	char *local = NULL;
	int r;

	if (!bfs_pg_is_uri(cfg->database))
		return store_open(cfg->database, NULL, NULL, out, err, errlen);
	*out = NULL;
	if (mkdir(cfg->cache_dir, 0700) != 0 && errno != EEXIST) {
		bfs_set_err(err, errlen, "cache_dir %s: %s", cfg->cache_dir,
			    strerror(errno));
		return BFS_ERR_IO;
	}
	if (asprintf(&local, "%s/" BFS_STORE_LOCAL_DB, cfg->cache_dir) < 0) {
		bfs_set_err(err, errlen, "out of memory");
		return BFS_ERR_NOMEM;
	}
	r = store_open(cfg->database, cfg->database_password, local, out, err,
		       errlen);
	free(local);
	return r;
}

int bfs_store_data_version(struct bfs_store *s, int64_t *out)
{
	int r;

	store_lock(s);
	r = query_i64(s, "PRAGMA data_version", NULL, out, NULL, 0);
	store_unlock(s);
	return r;
}

/* ---- bucket rows ---- */

enum {
	BC_ID, BC_NAME, BC_DESC, BC_PROVIDER, BC_DEF0, BC_DEF1, BC_DEF2,
	BC_MANAGED, BC_BUCKET_NAME, BC_PREFIX, BC_REGION, BC_ENDPOINT,
	BC_ACCOUNT, BC_PATH, BC_PATH_STYLE, BC_READ_ONLY, BC_AKID,
	BC_SECRET, BC_TOKEN, BC_LIST_META,
	BC_OWNER, BC_GROUP, BC_MODE, BC_FILE_MODE, BC_DIR_MODE
};

#define BUCKET_SELECT \
	"SELECT id, name, description, provider, is_default, is_default_chat," \
	" is_default_forms, managed_by," \
	" json_extract(config_json, '$.bucket_name')," \
	" json_extract(config_json, '$.prefix')," \
	" json_extract(config_json, '$.region')," \
	" json_extract(config_json, '$.endpoint')," \
	" json_extract(config_json, '$.account_id')," \
	" json_extract(config_json, '$.path')," \
	" json_extract(config_json, '$.path_style')," \
	" json_extract(config_json, '$.read_only')," \
	" json_extract(config_json, '$.access_key_id')," \
	" json_extract(config_json, '$.secret_access_key')," \
	" json_extract(config_json, '$.session_token')," \
	" json_extract(config_json, '$.list_metadata')," \
	" json_extract(config_json, '$.owner')," \
	" json_extract(config_json, '$.group')," \
	" json_extract(config_json, '$.mode')," \
	" json_extract(config_json, '$.file_mode')," \
	" json_extract(config_json, '$.dir_mode')" \
	" FROM storage_buckets"

/* Parameters ?1..?16 and ?18 of both writes: id, name, description,
 * provider, config fields ?5..?15 and ?18 (list_metadata: "head",
 * "listing" or NULL for the global setting), managed_by ?16; ?17 is
 * created_by of an insert. */
/* Who may use the bucket (named parameters, bound by bind_perms): owner
 * and group as given, modes as octal text ("0750"); NULL when unset. */
#define PERMS_JSON_SQL \
	" 'owner', :owner, 'group', :group, 'mode', :mode," \
	" 'file_mode', :file_mode, 'dir_mode', :dir_mode"

#define CONFIG_JSON_SQL \
	"json_object('bucket_name', ?5, 'prefix', ?6, 'region', ?7," \
	" 'endpoint', ?8, 'account_id', ?9, 'path', ?10," \
	" 'path_style', json(CASE WHEN ?11 THEN 'true' ELSE 'false' END)," \
	" 'read_only', json(CASE WHEN ?12 THEN 'true' ELSE 'false' END)," \
	" 'access_key_id', ?13, 'secret_access_key', ?14, 'session_token', ?15," \
	" 'list_metadata', ?18," \
	PERMS_JSON_SQL ")"

#define BUCKET_INSERT \
	"INSERT INTO storage_buckets (id, name, description, provider," \
	" config_json, managed_by, created_by) VALUES (?1, ?2, ?3, ?4, " \
	CONFIG_JSON_SQL ", ?16, ?17)"

#define BUCKET_UPDATE \
	"UPDATE storage_buckets SET description = ?3, provider = ?4," \
	" config_json = " CONFIG_JSON_SQL ", managed_by = ?16," \
	" updated_at = CURRENT_TIMESTAMP WHERE id = ?1 AND name = ?2"

/* One octal mode column: has stays 0 for NULL or a value that does not
 * parse (logged: the default then applies). */
static void mode_col(sqlite3_stmt *st, int col, uint32_t max, const char *name,
		     const char *what, int *has, uint32_t *mode)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	*has = 0;
	if (!t)
		return;
	if (bfs_perm_mode(t, max, mode, NULL, 0) == 0)
		*has = 1;
	else
		BFS_WARN("bucket %s: bad %s '%s' in the database; using the "
			 "default", name ? name : "?", what, t);
}

/* owner, group and modes of a BUCKET_SELECT row into b. */
static int perms_from_row(sqlite3_stmt *st, struct bfs_bucket_conf *b)
{
	int r;

	if ((r = col_dup(st, BC_OWNER, &b->owner)) != 0 ||
	    (r = col_dup(st, BC_GROUP, &b->group)) != 0)
		return r;
	mode_col(st, BC_MODE, BFS_PERM_DIR_MODE_MAX, b->name, "mode",
		 &b->has_mode, &b->mode);
	mode_col(st, BC_FILE_MODE, BFS_PERM_FILE_MODE_MAX, b->name, "file_mode",
		 &b->has_file_mode, &b->file_mode);
	mode_col(st, BC_DIR_MODE, BFS_PERM_DIR_MODE_MAX, b->name, "dir_mode",
		 &b->has_dir_mode, &b->dir_mode);
	return 0;
}

/* Binds PERMS_JSON_SQL's named parameters from b. */
static void bind_perms(int *acc, sqlite3_stmt *st,
		       const struct bfs_bucket_conf *b)
{
	char m[3][8];

	snprintf(m[0], sizeof(m[0]), "%04o", (unsigned)(b->mode & 07777));
	snprintf(m[1], sizeof(m[1]), "%04o", (unsigned)(b->file_mode & 07777));
	snprintf(m[2], sizeof(m[2]), "%04o", (unsigned)(b->dir_mode & 07777));
	bind_str(acc, st, sqlite3_bind_parameter_index(st, ":owner"), b->owner);
	bind_str(acc, st, sqlite3_bind_parameter_index(st, ":group"), b->group);
	bind_str(acc, st, sqlite3_bind_parameter_index(st, ":mode"),
		 b->has_mode ? m[0] : NULL);
	bind_str(acc, st, sqlite3_bind_parameter_index(st, ":file_mode"),
		 b->has_file_mode ? m[1] : NULL);
	bind_str(acc, st, sqlite3_bind_parameter_index(st, ":dir_mode"),
		 b->has_dir_mode ? m[2] : NULL);
}

/*
 * Fills b from the current row of a BUCKET_SELECT.  With key, sealed
 * secrets are opened (BFS_ERR_CRYPTO when they do not); without, they stay
 * NULL and only has_secret / has_session_token tell they exist.  When
 * sealed_secret / sealed_token are given they receive copies of the stored
 * sealed strings.  On failure b is cleared.
 */
static int bucket_from_row(sqlite3_stmt *st, const unsigned char *key,
			   struct bfs_bucket_conf *b, char **sealed_secret,
			   char **sealed_token)
{
	const char *sec, *tok, *prov, *managed;
	int r;

	memset(b, 0, sizeof(*b));
	if (sealed_secret)
		*sealed_secret = NULL;
	if (sealed_token)
		*sealed_token = NULL;
	if ((r = col_dup(st, BC_ID, &b->id)) != 0 ||
	    (r = col_dup(st, BC_NAME, &b->name)) != 0 ||
	    (r = col_dup(st, BC_DESC, &b->description)) != 0 ||
	    (r = col_dup(st, BC_BUCKET_NAME, &b->bucket_name)) != 0 ||
	    (r = col_dup(st, BC_PREFIX, &b->prefix)) != 0 ||
	    (r = col_dup(st, BC_REGION, &b->region)) != 0 ||
	    (r = col_dup(st, BC_ENDPOINT, &b->endpoint)) != 0 ||
	    (r = col_dup(st, BC_ACCOUNT, &b->account_id)) != 0 ||
	    (r = col_dup(st, BC_PATH, &b->path)) != 0 ||
	    (r = col_dup(st, BC_AKID, &b->access_key_id)) != 0)
		goto out;
	r = BFS_ERR_DB;
	if (!b->id || !b->name)
		goto out;
	prov = (const char *)sqlite3_column_text(st, BC_PROVIDER);
	b->provider = prov ? bfs_provider_kind_parse(prov) : -1;
	if (b->provider < 0) {
		BFS_ERROR("bucket %s: unknown provider '%s' in the database",
			  b->name, prov ? prov : "");
		goto out;
	}
	if (sqlite3_column_int(st, BC_DEF0))
		b->defaults |= BFS_ROLE_BIT(BFS_ROLE_GENERAL);
	if (sqlite3_column_int(st, BC_DEF1))
		b->defaults |= BFS_ROLE_BIT(BFS_ROLE_CHAT);
	if (sqlite3_column_int(st, BC_DEF2))
		b->defaults |= BFS_ROLE_BIT(BFS_ROLE_FORMS);
	managed = (const char *)sqlite3_column_text(st, BC_MANAGED);
	b->managed_by_config = managed && strcmp(managed, "config") == 0;
	b->path_style = sqlite3_column_int(st, BC_PATH_STYLE) != 0;
	b->read_only = sqlite3_column_int(st, BC_READ_ONLY) != 0;
	if ((r = perms_from_row(st, b)) != 0)
		goto out;
	{
		const char *lm = (const char *)sqlite3_column_text(st, BC_LIST_META);
		int v = lm ? bfs_list_meta_parse(lm) : BFS_LIST_META_UNSET;

		b->list_metadata = v < 0 ? BFS_LIST_META_UNSET : v;
	}
	sec = (const char *)sqlite3_column_text(st, BC_SECRET);
	tok = (const char *)sqlite3_column_text(st, BC_TOKEN);
	b->has_secret = sec != NULL;
	b->has_session_token = tok != NULL;
	if (key && sec) {
		r = bfs_crypto_open(key, b->id, sec, &b->secret_access_key);
		if (r != 0)
			goto out;
	}
	if (key && tok) {
		r = bfs_crypto_open(key, b->id, tok, &b->session_token);
		if (r != 0)
			goto out;
	}
	r = BFS_ERR_NOMEM;
	if (sealed_secret && sec && !(*sealed_secret = strdup(sec)))
		goto out;
	if (sealed_token && tok && !(*sealed_token = strdup(tok)))
		goto out;
	r = 0;
out:
	if (r != 0) {
		bfs_bucket_conf_clear(b);
		if (sealed_secret) {
			free(*sealed_secret);
			*sealed_secret = NULL;
		}
		if (sealed_token) {
			free(*sealed_token);
			*sealed_token = NULL;
		}
	}
	return r;
}

/*
 * Reads bucket `name` (with lock held).  BFS_ERR_NOTFOUND when absent.
 * See bucket_from_row() for key and the sealed copies.
 */
static int bucket_read(struct bfs_store *s, const char *name,
		       const unsigned char *key, struct bfs_bucket_conf *b,
		       char **sealed_secret, char **sealed_token,
		       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	memset(b, 0, sizeof(*b));
	if (!name) {
		bfs_set_err(err, errlen, "no bucket name");
		return BFS_ERR_INVAL;
	}
	r = prepare(s, BUCKET_SELECT " WHERE name = ?1", &st, err, errlen);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = bucket_from_row(st, key, b, sealed_secret, sealed_token);
		if (r == BFS_ERR_CRYPTO)
			bfs_set_err(err, errlen, "bucket %s: cannot decrypt its "
				"secrets: wrong master key or tampered value",
				name);
	} else if (rc == SQLITE_DONE) {
		r = BFS_ERR_NOTFOUND;
		bfs_set_err(err, errlen, "unknown bucket '%s'", name);
	} else {
		r = db_fail(s, rc, err, errlen, "read bucket");
	}
	sqlite3_finalize(st);
	return r;
}

/* id (and managed flag) of bucket name; BFS_ERR_NOTFOUND when absent. */
static int bucket_lookup(struct bfs_store *s, const char *name,
			 char id[ID_HEX_LEN + 1], int *managed_cfg,
			 char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *t;
	int rc = SQLITE_OK, r;

	id[0] = '\0';
	if (!name) {
		bfs_set_err(err, errlen, "no bucket name");
		return BFS_ERR_INVAL;
	}
	r = prepare(s, "SELECT id, managed_by = 'config' FROM storage_buckets"
		    " WHERE name = ?1", &st, err, errlen);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t = sqlite3_column_text(st, 0);
		if (t && strlen((const char *)t) <= ID_HEX_LEN) {
			strcpy(id, (const char *)t);
			if (managed_cfg)
				*managed_cfg = sqlite3_column_int(st, 1);
			r = 0;
		} else {
			r = BFS_ERR_DB;
			bfs_set_err(err, errlen, "bucket %s: bad id in the database",
				name);
		}
	} else if (rc == SQLITE_DONE) {
		r = BFS_ERR_NOTFOUND;
		bfs_set_err(err, errlen, "unknown bucket '%s'", name);
	} else {
		r = db_fail(s, rc, err, errlen, "look up bucket");
	}
	sqlite3_finalize(st);
	return r;
}

/* Seals plain for bucket id into *out (NULL stays NULL). */
static int seal_opt(const unsigned char *key, const char *id,
		    const char *bucket, const char *plain, char **out,
		    char *err, size_t errlen)
{
	int r;

	*out = NULL;
	if (!plain)
		return 0;
	if (!key) {
		bfs_set_err(err, errlen, "bucket %s: the master key is needed to "
			"store a secret", bucket);
		return BFS_ERR_INVAL;
	}
	r = bfs_crypto_seal(key, id, plain, out);
	if (r != 0)
		bfs_set_err(err, errlen, "bucket %s: cannot seal its secret: %s",
			bucket, bfs_strerror(r));
	return r;
}

/*
 * Runs BUCKET_INSERT (created_by non-NULL or insert) or BUCKET_UPDATE with
 * b's settings, the given sealed secrets and managed_by.
 */
static int bucket_write(struct bfs_store *s, int insert, const char *id,
			const struct bfs_bucket_conf *b, const char *sealed,
			const char *token, const char *managed,
			const char *created_by, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *prov = bfs_provider_kind_name(b->provider);
	int rc = SQLITE_OK, r;

	if (!prov) {
		bfs_set_err(err, errlen, "bucket %s: unknown provider", b->name);
		return BFS_ERR_INVAL;
	}
	r = prepare(s, insert ? BUCKET_INSERT : BUCKET_UPDATE, &st, err, errlen);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, id);
	bind_str(&rc, st, 2, b->name);
	bind_str(&rc, st, 3, b->description);
	bind_str(&rc, st, 4, prov);
	bind_str(&rc, st, 5, b->bucket_name);
	bind_str(&rc, st, 6, b->prefix);
	bind_str(&rc, st, 7, b->region);
	bind_str(&rc, st, 8, b->endpoint);
	bind_str(&rc, st, 9, b->account_id);
	bind_str(&rc, st, 10, b->path);
	bind_i64(&rc, st, 11, b->path_style != 0);
	bind_i64(&rc, st, 12, b->read_only != 0);
	bind_str(&rc, st, 13, b->access_key_id);
	bind_str(&rc, st, 14, sealed);
	bind_str(&rc, st, 15, token);
	bind_str(&rc, st, 16, managed);
	if (insert)
		bind_str(&rc, st, 17, created_by);
	bind_str(&rc, st, 18, bfs_list_meta_name(b->list_metadata));
	bind_perms(&rc, st, b);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = 0;
	} else if (rc == SQLITE_CONSTRAINT && insert) {
		r = BFS_ERR_EXISTS;
		bfs_set_err(err, errlen, "bucket %s already exists", b->name);
	} else {
		r = db_fail(s, rc, err, errlen, insert ? "insert bucket" :
			    "update bucket");
	}
	sqlite3_finalize(st);
	return r;
}

/*
 * Gives role to bucket id (NULL: nobody), clearing it on the previous
 * holder first so the partial unique index never sees two.  Rows already
 * right are not touched.
 */
static int role_set(struct bfs_store *s, int role, const char *id,
		    char *err, size_t errlen)
{
	char sql[160];
	int r;

	snprintf(sql, sizeof(sql), "UPDATE storage_buckets SET %s = 0 WHERE"
		 " %s = 1 AND (?1 IS NULL OR id <> ?1)", role_col[role],
		 role_col[role]);
	r = exec_sql(s, sql, id, NULL, err, errlen);
	if (r != 0 || !id)
		return r;
	snprintf(sql, sizeof(sql), "UPDATE storage_buckets SET %s = 1 WHERE"
		 " id = ?1 AND %s = 0", role_col[role], role_col[role]);
	return exec_sql(s, sql, id, NULL, err, errlen);
}

/* ---- bucket API ---- */

void bfs_bucket_conf_array_free(struct bfs_bucket_conf *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++)
		bfs_bucket_conf_clear(&a[i]);
	free(a);
}

/* row_fill_fn of the bucket list; arg is the master key (or NULL). */
static int bucket_fill(sqlite3_stmt *st, void *elem, const void *arg)
{
	return bucket_from_row(st, arg, elem, NULL, NULL);
}

int bfs_store_bucket_list(struct bfs_store *s, const unsigned char *key,
			  struct bfs_bucket_conf **out, size_t *n)
{
	struct bfs_bucket_conf *a = NULL;
	size_t cnt = 0;
	int r;

	r = list_rows(s, BUCKET_SELECT " ORDER BY name", NULL, &a, &cnt,
		      sizeof(*a), 8, BUCKETS_MAX, bucket_fill, key,
		      "list buckets");
	if (r != 0) {
		bfs_bucket_conf_array_free(a, cnt);
		a = NULL;
		cnt = 0;
	}
	*out = a;
	*n = cnt;
	return r;
}

int bfs_store_bucket_get(struct bfs_store *s, const char *name,
			 const unsigned char *key, struct bfs_bucket_conf *out)
{
	int r;

	store_lock(s);
	r = bucket_read(s, name, key, out, NULL, NULL, NULL, 0);
	store_unlock(s);
	return r;
}

/*
 * Contract: inserts b as a new bucket managed by bucketctl with a fresh
 * id; b->id, b->defaults and b->managed_by_config are ignored (defaults
 * are given with bfs_store_default_set).  Secrets are sealed with key
 * (BFS_ERR_INVAL when a secret is given without a key).
 */
int bfs_store_bucket_add(struct bfs_store *s, const struct bfs_bucket_conf *b,
			 const unsigned char *key, const char *created_by,
			 char *err, size_t errlen)
{
	char id[ID_HEX_LEN + 1], *sealed = NULL, *token = NULL;
	int r;

	if (!b->name || !bfs_bucket_name_valid(b->name)) {
		bfs_set_err(err, errlen, "bad bucket name '%s'",
			b->name ? b->name : "");
		return BFS_ERR_INVAL;
	}
	r = new_bucket_id(id);
	if (r != 0) {
		bfs_set_err(err, errlen, "no random bytes for a bucket id");
		return r;
	}
	r = seal_opt(key, id, b->name, b->secret_access_key, &sealed, err, errlen);
	if (r != 0)
		goto out;
	r = seal_opt(key, id, b->name, b->session_token, &token, err, errlen);
	if (r != 0)
		goto out;
	store_lock(s);
	r = bucket_write(s, 1, id, b, sealed, token, "bucketctl", created_by,
			 err, errlen);
	store_unlock(s);
out:
	free(token);
	free(sealed);
	return r;
}

/*
 * Contract: replaces the settings of bucket b->name (not its id, defaults,
 * created_*).  A secret given in b is re-sealed; a NULL secret with
 * has_secret (has_session_token) set keeps the stored one, and with the
 * flag clear removes it.  BFS_ERR_PERM when the config manages it.
 */
int bfs_store_bucket_update(struct bfs_store *s, const struct bfs_bucket_conf *b,
			    const unsigned char *key, char *err, size_t errlen)
{
	struct bfs_bucket_conf cur;
	char *old_sec = NULL, *old_tok = NULL, *sealed = NULL, *token = NULL;
	const char *use_sec, *use_tok;
	int r;

	memset(&cur, 0, sizeof(cur));
	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	r = bucket_read(s, b->name, NULL, &cur, &old_sec, &old_tok, err, errlen);
	if (r != 0)
		goto out;
	if (cur.managed_by_config) {
		r = BFS_ERR_PERM;
		bfs_set_err(err, errlen, "bucket %s is managed by the config file",
			b->name);
		goto out;
	}
	r = seal_opt(key, cur.id, b->name, b->secret_access_key, &sealed, err,
		     errlen);
	if (r != 0)
		goto out;
	r = seal_opt(key, cur.id, b->name, b->session_token, &token, err, errlen);
	if (r != 0)
		goto out;
	use_sec = sealed ? sealed : (b->has_secret ? old_sec : NULL);
	use_tok = token ? token : (b->has_session_token ? old_tok : NULL);
	r = bucket_write(s, 0, cur.id, b, use_sec, use_tok, "bucketctl", NULL,
			 err, errlen);
out:
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	free(token);
	free(sealed);
	free(old_tok);
	free(old_sec);
	bfs_bucket_conf_clear(&cur);
	return r;
}

/*
 * Describes what refers to bucket id into msg ("has 1 pending upload;
 * holds 3 indexed files; is the default for chat; is assigned to chat/g1
 * (and 2 more)"); *refs is the number of references.  Pending uploads come
 * first: they are the only data that exists nowhere else.
 */
static int bucket_refs(struct bfs_store *s, const char *id, unsigned defaults,
		       struct bfs_buf *msg, int64_t *refs, char *err,
		       size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int64_t npending = 0, nfiles = 0, nassign = 0;
	const char *sep = "";
	int rc = SQLITE_OK, r, i;

	*refs = 0;
	r = query_i64(s, "SELECT count(*) FROM upload_journal WHERE bucket_id = ?1",
		      id, &npending, err, errlen);
	if (r != 0)
		return r;
	if (npending > 0) {
		r = bfs_buf_addf(msg, "has %lld pending upload%s",
				 (long long)npending, npending == 1 ? "" : "s");
		sep = "; ";
	}
	if (r == 0)
		r = query_i64(s, "SELECT count(*) FROM files WHERE bucket_id = ?1",
			      id, &nfiles, err, errlen);
	if (r != 0)
		return r;
	if (nfiles > 0) {
		r = bfs_buf_addf(msg, "%sholds %lld indexed file%s", sep,
				 (long long)nfiles, nfiles == 1 ? "" : "s");
		sep = "; ";
	}
	if (r == 0 && defaults) {
		r = bfs_buf_addf(msg, "%sis the default for", sep);
		for (i = 0; r == 0 && i < BFS_ROLE_COUNT; i++)
			if (defaults & BFS_ROLE_BIT(i)) {
				r = bfs_buf_addf(msg, " %s%s", bfs_role_name(i),
						 (defaults >> (i + 1)) ? "," : "");
				(*refs)++;
			}
		sep = "; ";
	}
	if (r != 0)
		return r;
	r = prepare(s, "SELECT context_type, context_id,"
		    " (SELECT count(*) FROM assignments WHERE bucket_id = ?1)"
		    " FROM assignments WHERE bucket_id = ?1"
		    " ORDER BY context_type, context_id LIMIT 1", &st, err, errlen);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		nassign = sqlite3_column_int64(st, 2);
		r = bfs_buf_addf(msg, "%sis assigned to %s/%s", sep,
				 (const char *)sqlite3_column_text(st, 0),
				 (const char *)sqlite3_column_text(st, 1));
		if (r == 0 && nassign > 1)
			r = bfs_buf_addf(msg, " (and %lld more)",
					 (long long)(nassign - 1));
	} else if (rc != SQLITE_DONE) {
		r = db_fail(s, rc, err, errlen, "list assignments");
	}
	sqlite3_finalize(st);
	*refs += npending + nfiles + nassign;
	return r;
}

int bfs_store_bucket_remove(struct bfs_store *s, const char *name, int force,
			    char *err, size_t errlen)
{
	struct bfs_bucket_conf cur;
	struct bfs_buf msg;
	int64_t refs = 0;
	int r;

	memset(&cur, 0, sizeof(cur));
	bfs_buf_init(&msg, MSG_MAX);
	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	r = bucket_read(s, name, NULL, &cur, NULL, NULL, err, errlen);
	if (r != 0)
		goto out;
	if (cur.managed_by_config) {
		r = BFS_ERR_PERM;
		bfs_set_err(err, errlen, "bucket %s is managed by the config file",
			name);
		goto out;
	}
	r = bucket_refs(s, cur.id, cur.defaults, &msg, &refs, err, errlen);
	if (r != 0)
		goto out;
	if (refs > 0 && !force) {
		r = BFS_ERR_BUSY;
		bfs_set_err(err, errlen, "bucket %s %s; use --force", name,
			bfs_buf_str(&msg));
		goto out;
	}
	if ((r = exec_sql(s, "DELETE FROM upload_journal WHERE bucket_id = ?1",
			  cur.id, NULL, err, errlen)) != 0 ||
	    (r = exec_sql(s, "DELETE FROM files WHERE bucket_id = ?1", cur.id,
			  NULL, err, errlen)) != 0 ||
	    (r = exec_sql(s, "DELETE FROM assignments WHERE bucket_id = ?1",
			  cur.id, NULL, err, errlen)) != 0 ||
	    (r = exec_sql(s, "DELETE FROM storage_buckets WHERE id = ?1",
			  cur.id, NULL, err, errlen)) != 0)
		goto out;
	if (refs > 0)
		BFS_INFO("bucket %s removed with --force (it %s)", name,
			 bfs_buf_str(&msg));
out:
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	bfs_buf_free(&msg);
	bfs_bucket_conf_clear(&cur);
	return r;
}

/* ---- defaults and assignments ---- */

void bfs_store_names_free(char *names[BFS_ROLE_COUNT])
{
	int i;

	for (i = 0; i < BFS_ROLE_COUNT; i++) {
		free(names[i]);
		names[i] = NULL;
	}
}

int bfs_store_defaults_get(struct bfs_store *s, char *names[BFS_ROLE_COUNT])
{
	sqlite3_stmt *st = NULL;
	int i, rc, r;

	for (i = 0; i < BFS_ROLE_COUNT; i++)
		names[i] = NULL;
	store_lock(s);
	r = prepare(s, "SELECT name, is_default, is_default_chat,"
		    " is_default_forms FROM storage_buckets WHERE is_default = 1"
		    " OR is_default_chat = 1 OR is_default_forms = 1", &st, NULL, 0);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < BFS_ROLE_COUNT; i++) {
			if (!sqlite3_column_int(st, 1 + i) || names[i])
				continue;
			r = col_dup(st, 0, &names[i]);
			if (r != 0)
				goto out;
		}
	}
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "read defaults");
out:
	sqlite3_finalize(st);
	store_unlock(s);
	if (r != 0)
		bfs_store_names_free(names);
	return r;
}

int bfs_store_default_set(struct bfs_store *s, int role, const char *bucket,
			  char *err, size_t errlen)
{
	char id[ID_HEX_LEN + 1];
	int r;

	if (role < 0 || role >= BFS_ROLE_COUNT) {
		bfs_set_err(err, errlen, "unknown role");
		return BFS_ERR_INVAL;
	}
	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	if (bucket) {
		r = bucket_lookup(s, bucket, id, NULL, err, errlen);
		if (r != 0)
			goto out;
	}
	r = role_set(s, role, bucket ? id : NULL, err, errlen);
out:
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	return r;
}

/*
 * Contract: checks that every bucket c names exists, then applies every
 * touched role, all in one BEGIN IMMEDIATE transaction: on any error
 * nothing changes and err names the role and the problem.
 */
int bfs_store_defaults_apply(struct bfs_store *s,
			     const struct bfs_defaults_change *c,
			     char *err, size_t errlen)
{
	char ids[BFS_ROLE_COUNT][ID_HEX_LEN + 1];
	char msg[MSG_MAX];
	int i, r;

	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	for (i = 0; i < BFS_ROLE_COUNT; i++) {
		if (!c->touched[i] || !c->bucket[i])
			continue;
		r = bucket_lookup(s, c->bucket[i], ids[i], NULL, msg, sizeof(msg));
		if (r != 0) {
			bfs_set_err(err, errlen, "%s = %s: %s", bfs_role_name(i),
				c->bucket[i], msg);
			if (r == BFS_ERR_NOTFOUND)
				r = BFS_ERR_INVAL;
			goto out;
		}
	}
	for (i = 0; i < BFS_ROLE_COUNT; i++) {
		if (!c->touched[i])
			continue;
		r = role_set(s, i, c->bucket[i] ? ids[i] : NULL, err, errlen);
		if (r != 0)
			goto out;
	}
out:
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	return r;
}

/* bfs_assign_next_fn over an array: arg is a struct assign_array. */
struct assign_array {
	const struct bfs_assign_change *c;
	size_t n, i;
};

static int assign_array_next(void *arg, struct bfs_assign_change *out)
{
	struct assign_array *a = arg;

	if (a->i >= a->n)
		return 0;
	*out = a->c[a->i++];
	return 1;
}

/* Same all-or-nothing contract as bfs_store_defaults_apply(). */
int bfs_store_assign_apply(struct bfs_store *s,
			   const struct bfs_assign_change *c, size_t n,
			   char *err, size_t errlen)
{
	struct assign_array a = { c, n, 0 };

	return bfs_store_assign_apply_each(s, assign_array_next, &a, err,
					   errlen);
}

#define ASSIGN_FOUND_MAX 8

/*
 * One pass over the changes inside one transaction: each is checked (its
 * context, its bucket: the last ASSIGN_FOUND_MAX buckets found are not
 * looked up again, bulk files name few) and written with the two
 * statements prepared once; the first bad change rolls everything back.
 */
int bfs_store_assign_apply_each(struct bfs_store *s, bfs_assign_next_fn next,
				void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *up = NULL, *del = NULL, *st;
	struct bfs_assign_change c;
	char id[ID_HEX_LEN + 1], msg[MSG_MAX];
	char found[ASSIGN_FOUND_MAX][BFS_BUCKET_NAME_MAX + 1];
	size_t nfound = 0, slot = 0, i;
	int rc, r, got;

	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	r = prepare(s, "INSERT INTO assignments (context_type,"
		    " context_id, bucket_id) SELECT ?1, ?2, id FROM"
		    " storage_buckets WHERE name = ?3"
		    " ON CONFLICT (context_type, context_id) DO UPDATE"
		    " SET bucket_id = excluded.bucket_id"
		    " WHERE assignments.bucket_id <> excluded.bucket_id",
		    &up, err, errlen);
	if (r == 0)
		r = prepare(s, "DELETE FROM assignments WHERE"
			    " context_type = ?1 AND context_id = ?2",
			    &del, err, errlen);
	if (r != 0)
		goto out;
	while ((got = next(arg, &c)) == 1) {
		if (c.context_type < 0 || c.context_type > 1 ||
		    !bfs_ctx_id_valid(c.context_id)) {
			bfs_set_err(err, errlen, "bad context '%s'", c.context_id);
			r = BFS_ERR_INVAL;
			goto out;
		}
		for (i = 0; c.bucket && i < nfound; i++)
			if (strcmp(c.bucket, found[i]) == 0)
				break;
		if (c.bucket && i == nfound) {
			r = bucket_lookup(s, c.bucket, id, NULL, msg, sizeof(msg));
			if (r != 0) {
				bfs_set_err(err, errlen, "%s/%s = %s: %s",
					ctx_type_name[c.context_type],
					c.context_id, c.bucket, msg);
				if (r == BFS_ERR_NOTFOUND)
					r = BFS_ERR_INVAL;
				goto out;
			}
			/* a name found is at most BFS_BUCKET_NAME_MAX bytes */
			snprintf(found[slot], sizeof(found[0]), "%s", c.bucket);
			slot = (slot + 1) % ASSIGN_FOUND_MAX;
			if (nfound < ASSIGN_FOUND_MAX)
				nfound++;
		}
		st = c.bucket ? up : del;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		rc = SQLITE_OK;
		bind_str(&rc, st, 1, ctx_type_name[c.context_type]);
		bind_str(&rc, st, 2, c.context_id);
		if (c.bucket)
			bind_str(&rc, st, 3, c.bucket);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			r = db_fail(s, rc, err, errlen,
				    c.bucket ? "assign" : "unassign");
			goto out;
		}
	}
	if (got < 0) {
		r = got;
		bfs_set_err(err, errlen, "%s", bfs_strerror(got));
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(up);
	sqlite3_finalize(del);
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	return r;
}

void bfs_assignments_free(struct bfs_assignment *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].context_id);
		free(a[i].bucket);
	}
	free(a);
}

/* row_fill_fn of the assignment list. */
static int assign_fill(sqlite3_stmt *st, void *elem, const void *arg)
{
	struct bfs_assignment *e = elem;
	const unsigned char *t = sqlite3_column_text(st, 0);
	int r;

	(void)arg;
	e->context_type = t && strcmp((const char *)t, "form") == 0;
	if ((r = col_dup(st, 1, &e->context_id)) != 0)
		return r;
	return col_dup(st, 2, &e->bucket);
}

int bfs_store_assign_list(struct bfs_store *s, struct bfs_assignment **out,
			  size_t *n)
{
	struct bfs_assignment *a = NULL;
	size_t cnt = 0;
	int r;

	r = list_rows(s, "SELECT a.context_type, a.context_id, b.name FROM"
		      " assignments a JOIN storage_buckets b"
		      " ON b.id = a.bucket_id"
		      " ORDER BY a.context_type, a.context_id", NULL, &a, &cnt,
		      sizeof(*a), 16, ASSIGNMENTS_MAX, assign_fill, NULL,
		      "list assignments");
	if (r != 0) {
		bfs_assignments_free(a, cnt);
		a = NULL;
		cnt = 0;
	}
	*out = a;
	*n = cnt;
	return r;
}

/* ---- config sync ---- */

#define SETTING_CONFIG_DEFAULTS "config_defaults"

static int setting_get(struct bfs_store *s, const char *k, char **out,
		       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	*out = NULL;
	r = prepare(s, "SELECT value FROM settings WHERE key = ?1", &st, err,
		    errlen);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, k);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = col_dup(st, 0, out);
	else if (rc != SQLITE_DONE)
		r = db_fail(s, rc, err, errlen, "read setting");
	sqlite3_finalize(st);
	return r;
}

/*
 * The recorded claim of role in a "general=NAME;chat=;forms=NAME" string
 * into out (empty when none).
 */
static void claim_of(const char *rec, int role, char out[BFS_BUCKET_NAME_MAX + 1])
{
	const char *p = rec, *end;
	size_t rl = strlen(bfs_role_name(role)), len;

	out[0] = '\0';
	while (p && *p) {
		end = strchr(p, ';');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len > rl && strncmp(p, bfs_role_name(role), rl) == 0 &&
		    p[rl] == '=') {
			len -= rl + 1;
			if (len <= BFS_BUCKET_NAME_MAX) {
				memcpy(out, p + rl + 1, len);
				out[len] = '\0';
			}
			return;
		}
		p = end ? end + 1 : NULL;
	}
}

/*
 * Brings one config bucket into the table as managed by config, writing
 * only when something differs.  Secrets are compared by value; a stored
 * secret that does not open with key (new master key) is re-sealed.
 */
static int sync_one(struct bfs_store *s, const struct bfs_bucket_conf *b,
		    const unsigned char *key, char *err, size_t errlen)
{
	struct bfs_bucket_conf cur;
	char id[ID_HEX_LEN + 1];
	char *old_sec = NULL, *old_tok = NULL, *new_sec = NULL, *new_tok = NULL;
	char *plain = NULL;
	const char *use_sec = NULL, *use_tok = NULL;
	const char *want[2], *have[2], *what[2] = { "secret", "session token" };
	const char **use[2];
	char **fresh[2];
	int changed = 0, i, r;

	memset(&cur, 0, sizeof(cur));
	r = bucket_read(s, b->name, NULL, &cur, &old_sec, &old_tok, err, errlen);
	if (r == BFS_ERR_NOTFOUND) {
		r = new_bucket_id(id);
		if (r != 0) {
			bfs_set_err(err, errlen, "no random bytes for a bucket id");
			goto out;
		}
		if ((r = seal_opt(key, id, b->name, b->secret_access_key,
				  &new_sec, err, errlen)) != 0 ||
		    (r = seal_opt(key, id, b->name, b->session_token, &new_tok,
				  err, errlen)) != 0)
			goto out;
		r = bucket_write(s, 1, id, b, new_sec, new_tok, "config", NULL,
				 err, errlen);
		if (r == 0)
			BFS_INFO("bucket %s added from the config file", b->name);
		goto out;
	}
	if (r != 0)
		goto out;
	if (!cur.managed_by_config) {
		BFS_WARN("bucket %s was added with bucketctl; the config file "
			 "now manages it", b->name);
		changed = 1;
	}
	if (!str_eq(cur.description, b->description) ||
	    cur.provider != b->provider ||
	    !str_eq(cur.bucket_name, b->bucket_name) ||
	    !str_eq(cur.prefix, b->prefix) ||
	    !str_eq(cur.region, b->region) ||
	    !str_eq(cur.endpoint, b->endpoint) ||
	    !str_eq(cur.account_id, b->account_id) ||
	    !str_eq(cur.path, b->path) ||
	    (cur.path_style != 0) != (b->path_style != 0) ||
	    (cur.read_only != 0) != (b->read_only != 0) ||
	    cur.list_metadata != b->list_metadata ||
	    !bfs_bucket_perms_same(&cur, b) ||
	    !str_eq(cur.access_key_id, b->access_key_id))
		changed = 1;
	want[0] = b->secret_access_key;
	want[1] = b->session_token;
	have[0] = old_sec;
	have[1] = old_tok;
	use[0] = &use_sec;
	use[1] = &use_tok;
	fresh[0] = &new_sec;
	fresh[1] = &new_tok;
	for (i = 0; i < 2; i++) {
		if (!want[i]) {
			if (have[i])
				changed = 1;
			continue;
		}
		if (have[i] && !key) {
			/* Cannot compare without the key: keep what is stored. */
			*use[i] = have[i];
			continue;
		}
		if (have[i]) {
			r = bfs_crypto_open(key, cur.id, have[i], &plain);
			if (r == 0 && secret_eq(plain, want[i])) {
				*use[i] = have[i];
				bfs_secret_free(plain);
				plain = NULL;
				continue;
			}
			if (r != 0)
				BFS_WARN("bucket %s: stored %s does not open with "
					 "this master key; sealing it again",
					 b->name, what[i]);
			bfs_secret_free(plain);
			plain = NULL;
		}
		r = seal_opt(key, cur.id, b->name, want[i], fresh[i], err, errlen);
		if (r != 0)
			goto out;
		*use[i] = *fresh[i];
		changed = 1;
	}
	r = 0;
	if (changed) {
		r = bucket_write(s, 0, cur.id, b, use_sec, use_tok, "config",
				 NULL, err, errlen);
		if (r == 0)
			BFS_INFO("bucket %s updated from the config file", b->name);
	}
out:
	free(new_tok);
	free(new_sec);
	free(old_tok);
	free(old_sec);
	bfs_bucket_conf_clear(&cur);
	return r;
}

/*
 * Applies the config's `default =` claims when they differ from the set
 * recorded at the previous sync: claimed roles go to their bucket; a role
 * whose claim was dropped is unset if it still points at the bucket that
 * claimed it.  A runtime change therefore sticks until the config's
 * default lines change.
 */
static int sync_defaults(struct bfs_store *s, const struct bfs_config *cfg,
			 char *err, size_t errlen)
{
	const char *claim[BFS_ROLE_COUNT] = { NULL, NULL, NULL };
	char rec[BFS_ROLE_COUNT * (BFS_BUCKET_NAME_MAX + 16)];
	char old[BFS_BUCKET_NAME_MAX + 1], id[ID_HEX_LEN + 1];
	char *prev = NULL;
	size_t i, off = 0;
	int role, r;

	for (i = 0; i < cfg->nbuckets; i++)
		for (role = 0; role < BFS_ROLE_COUNT; role++) {
			if (!(cfg->buckets[i].defaults & BFS_ROLE_BIT(role)))
				continue;
			if (claim[role]) {
				bfs_set_err(err, errlen, "buckets %s and %s both "
					"claim default %s", claim[role],
					cfg->buckets[i].name, bfs_role_name(role));
				return BFS_ERR_CONFIG;
			}
			claim[role] = cfg->buckets[i].name;
		}
	for (role = 0; role < BFS_ROLE_COUNT; role++)
		off += (size_t)snprintf(rec + off, sizeof(rec) - off, "%s%s=%s",
					role ? ";" : "", bfs_role_name(role),
					claim[role] ? claim[role] : "");
	r = setting_get(s, SETTING_CONFIG_DEFAULTS, &prev, err, errlen);
	if (r != 0)
		goto out;
	if (prev && strcmp(prev, rec) == 0)
		goto out;
	for (role = 0; role < BFS_ROLE_COUNT; role++) {
		if (claim[role]) {
			r = bucket_lookup(s, claim[role], id, NULL, err, errlen);
			if (r == 0)
				r = role_set(s, role, id, err, errlen);
		} else if (prev) {
			claim_of(prev, role, old);
			if (!old[0])
				continue;
			r = bucket_lookup(s, old, id, NULL, NULL, 0);
			if (r == BFS_ERR_NOTFOUND) {
				r = 0;
				continue;
			}
			if (r == 0) {
				char sql[128];

				snprintf(sql, sizeof(sql), "UPDATE storage_buckets"
					 " SET %s = 0 WHERE id = ?1 AND %s = 1",
					 role_col[role], role_col[role]);
				r = exec_sql(s, sql, id, NULL, err, errlen);
			}
		}
		if (r != 0)
			goto out;
	}
	r = exec_sql(s, "INSERT INTO settings (key, value) VALUES (?1, ?2)"
		     " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		     SETTING_CONFIG_DEFAULTS, rec, err, errlen);
	if (r == 0)
		BFS_INFO("config defaults applied: %s", rec);
out:
	free(prev);
	return r;
}

/*
 * Removes config-managed rows whose bucket left the config; a row still
 * referred to (files, defaults, assignments) is kept and handed over to
 * bucketctl so the admin can remove it.
 */
static int sync_removed(struct bfs_store *s, const struct bfs_config *cfg,
			char *err, size_t errlen)
{
	struct bfs_bucket_conf *gone = NULL;
	struct bfs_buf msg;
	sqlite3_stmt *st = NULL;
	size_t ngone = 0, alloc = 0, i, j;
	int64_t refs;
	int rc, r, keep;

	bfs_buf_init(&msg, MSG_MAX);
	r = prepare(s, BUCKET_SELECT " WHERE managed_by = 'config' ORDER BY name",
		    &st, err, errlen);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, BC_NAME);

		for (j = 0, keep = 0; j < cfg->nbuckets && !keep; j++)
			keep = name && str_eq(name, cfg->buckets[j].name);
		if (keep)
			continue;
		r = grow(&gone, &alloc, ngone, sizeof(*gone), 4, BUCKETS_MAX);
		if (r != 0)
			goto out;
		r = bucket_from_row(st, NULL, &gone[ngone], NULL, NULL);
		if (r != 0)
			goto out;
		ngone++;
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(s, rc, err, errlen, "list config buckets");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < ngone; i++) {
		bfs_buf_reset(&msg);
		r = bucket_refs(s, gone[i].id, gone[i].defaults, &msg, &refs,
				err, errlen);
		if (r != 0)
			goto out;
		if (refs == 0) {
			r = exec_sql(s, "DELETE FROM storage_buckets WHERE id = ?1",
				     gone[i].id, NULL, err, errlen);
			if (r != 0)
				goto out;
			BFS_INFO("bucket %s left the config file: removed",
				 gone[i].name);
			continue;
		}
		r = exec_sql(s, "UPDATE storage_buckets SET managed_by ="
			     " 'bucketctl', updated_at = CURRENT_TIMESTAMP"
			     " WHERE id = ?1", gone[i].id, NULL, err, errlen);
		if (r != 0)
			goto out;
		BFS_WARN("bucket %s left the config file but %s; kept, now "
			 "managed by bucketctl (remove it with bucketctl bucket "
			 "remove)", gone[i].name, bfs_buf_str(&msg));
	}
	r = 0;
out:
	sqlite3_finalize(st);
	bfs_bucket_conf_array_free(gone, ngone);
	bfs_buf_free(&msg);
	return r;
}

int bfs_store_sync_config(struct bfs_store *s, const struct bfs_config *cfg,
			  const unsigned char *key, char *err, size_t errlen)
{
	size_t i, j;
	int r;

	for (i = 0; i < cfg->nbuckets; i++) {
		const char *name = cfg->buckets[i].name;

		if (!name || !bfs_bucket_name_valid(name)) {
			bfs_set_err(err, errlen, "bad bucket name '%s'",
				name ? name : "");
			return BFS_ERR_CONFIG;
		}
		for (j = 0; j < i; j++)
			if (strcmp(cfg->buckets[j].name, name) == 0) {
				bfs_set_err(err, errlen, "bucket %s declared twice",
					name);
				return BFS_ERR_CONFIG;
			}
	}
	store_lock(s);
	r = tx_begin(s, err, errlen);
	if (r != 0)
		goto unlock;
	for (i = 0; i < cfg->nbuckets; i++) {
		r = sync_one(s, &cfg->buckets[i], key, err, errlen);
		if (r != 0)
			goto out;
	}
	r = sync_defaults(s, cfg, err, errlen);
	if (r != 0)
		goto out;
	r = sync_removed(s, cfg, err, errlen);
out:
	r = tx_end(s, r, err, errlen);
unlock:
	store_unlock(s);
	if (r == 0 && err && errlen)
		err[0] = '\0';
	return r;
}

/* ---- the file index ---- */

#define FILE_SELECT \
	"SELECT b.name, f.key, f.size, f.etag, f.content_type, f.mode, f.uid," \
	" f.gid, f.mtime, CAST(strftime('%s', f.created_at) AS INTEGER)," \
	" CAST(strftime('%s', f.updated_at) AS INTEGER)" \
	" FROM files f JOIN storage_buckets b ON b.id = f.bucket_id"

/* Byte-wise "key starts with ?P" with the prefix length bound as ?L. */
#define KEY_HAS_PREFIX(P, L) \
	"substr(CAST(key AS BLOB), 1, " L ") = CAST(" P " AS BLOB)"

void bfs_file_row_clear(struct bfs_file_row *r)
{
	if (!r)
		return;
	free(r->bucket);
	free(r->key);
	free(r->etag);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

static int file_from_row(sqlite3_stmt *st, struct bfs_file_row *r)
{
	int e;

	memset(r, 0, sizeof(*r));
	if ((e = col_dup(st, 0, &r->bucket)) != 0 ||
	    (e = col_dup(st, 1, &r->key)) != 0 ||
	    (e = col_dup(st, 3, &r->etag)) != 0 ||
	    (e = col_dup(st, 4, &r->content_type)) != 0) {
		bfs_file_row_clear(r);
		return e;
	}
	r->size = (uint64_t)sqlite3_column_int64(st, 2);
	r->mode = (uint32_t)sqlite3_column_int64(st, 5);
	r->uid = (uint32_t)sqlite3_column_int64(st, 6);
	r->gid = (uint32_t)sqlite3_column_int64(st, 7);
	r->no_uid = sqlite3_column_type(st, 6) == SQLITE_NULL;
	r->no_gid = sqlite3_column_type(st, 7) == SQLITE_NULL;
	r->mtime = sqlite3_column_int64(st, 8);
	r->created_at = sqlite3_column_int64(st, 9);
	r->updated_at = sqlite3_column_int64(st, 10);
	return 0;
}

/*
 * An index write (file put, delete, rename, folder rename, attributes) as
 * the queue stores it.  rename / rename_prefix: bucket/key the source,
 * bucket2/key2 the destination (folder prefixes for rename_prefix).  put:
 * row; attr: row.mode, uid, gid, mtime.
 */
enum { IQ_PUT, IQ_DELETE, IQ_RENAME, IQ_RENAME_PREFIX, IQ_ATTR, IQ_NOPS };
static const char *const iq_names[IQ_NOPS] = {
	"put", "delete", "rename", "rename_prefix", "attr"
};

struct iq_entry {
	int op;
	const char *bucket, *key, *bucket2, *key2;
	struct bfs_file_row row;
};

static int index_write(struct bfs_store *s, const struct iq_entry *e);

/*
 * Contract: upserts the row (bucket, key).  created_at / updated_at of 0
 * mean "now"; created_at of an existing row is kept.  BFS_ERR_NOTFOUND for
 * an unknown bucket.
 */
/* bfs_store_file_put with s->lock held, inside or outside a transaction. */
static int file_put_locked(struct bfs_store *s, const struct bfs_file_row *row)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	r = prepare(s, "INSERT INTO files (bucket_id, key, size, etag,"
		    " content_type, mode, uid, gid, mtime, created_at, updated_at)"
		    " SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
		    " CASE WHEN ?10 > 0 THEN datetime(?10, 'unixepoch')"
		    "  ELSE CURRENT_TIMESTAMP END,"
		    " CASE WHEN ?11 > 0 THEN datetime(?11, 'unixepoch')"
		    "  ELSE CURRENT_TIMESTAMP END"
		    " FROM storage_buckets WHERE name = ?1"
		    " ON CONFLICT (bucket_id, key) DO UPDATE SET"
		    " size = excluded.size, etag = excluded.etag,"
		    " content_type = excluded.content_type, mode = excluded.mode,"
		    " uid = excluded.uid, gid = excluded.gid,"
		    " mtime = excluded.mtime, updated_at = excluded.updated_at,"
		    " last_modified = NULL",
		    &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, row->bucket);
	bind_str(&rc, st, 2, row->key);
	bind_i64(&rc, st, 3, (int64_t)row->size);
	bind_str(&rc, st, 4, row->etag);
	bind_str(&rc, st, 5, row->content_type);
	bind_i64(&rc, st, 6, row->mode);
	if (row->no_uid)
		bind_str(&rc, st, 7, NULL);
	else
		bind_i64(&rc, st, 7, row->uid);
	if (row->no_gid)
		bind_str(&rc, st, 8, NULL);
	else
		bind_i64(&rc, st, 8, row->gid);
	bind_i64(&rc, st, 9, row->mtime);
	bind_i64(&rc, st, 10, row->created_at);
	bind_i64(&rc, st, 11, row->updated_at);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "index file");
	else if (sqlite3_changes(SDB(s)) == 0)
		r = BFS_ERR_NOTFOUND;
out:
	sqlite3_finalize(st);
	return r;
}

int bfs_store_file_put(struct bfs_store *s, const struct bfs_file_row *row)
{
	struct iq_entry e = { .op = IQ_PUT };
	int r;

	if (!row->bucket || !row->key)
		return BFS_ERR_INVAL;
	e.bucket = row->bucket;
	e.key = row->key;
	e.row = *row;
	store_lock(s);
	r = index_write(s, &e);
	store_unlock(s);
	return r;
}

/*
 * Contract (lock held): 1 when the local index_queue's last entry naming
 * (bucket, key) leaves a row there once replayed (a put or attr of it, a
 * rename or folder rename onto it), else 0 (none, a delete, a rename away,
 * or the queue unreadable).
 */
static int iq_holds(struct bfs_store *s, const char *bucket, const char *key)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *op;
	int rc = SQLITE_OK, held = 0;

	if (prepare(s, "SELECT op, bucket = ?1 AND key = ?2 FROM index_queue"
		    " WHERE (bucket = ?1 AND key = ?2) OR (bucket2 = ?1 AND"
		    " (key2 = ?2 OR (op = 'rename_prefix' AND"
		    " substr(?2, 1, length(key2)) = key2)))"
		    " ORDER BY id DESC LIMIT 1", &st, NULL, 0) != 0)
		return 0;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, key);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    (op = sqlite3_column_text(st, 0)) != NULL) {
		if (sqlite3_column_int(st, 1))
			held = strcmp((const char *)op, "put") == 0 ||
			       strcmp((const char *)op, "attr") == 0;
		else
			held = 1;       /* the destination of a rename */
	}
	sqlite3_finalize(st);
	return held;
}

int bfs_store_file_get(struct bfs_store *s, const char *bucket,
		       const char *key, struct bfs_file_row *out)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	memset(out, 0, sizeof(*out));
	store_lock(s);
	r = prepare(s, FILE_SELECT " WHERE b.name = ?1 AND f.key = ?2", &st,
		    NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = file_from_row(st, out);
	else if (rc == SQLITE_DONE)
		r = s->iq_len > 0 && iq_holds(s, bucket, key) ? BFS_ERR_BUSY :
		    BFS_ERR_NOTFOUND;
	else
		r = db_fail(s, rc, NULL, 0, "read file row");
out:
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

static int file_delete_locked(struct bfs_store *s, const char *bucket,
			      const char *key)
{
	return exec_sql(s, "DELETE FROM files WHERE key = ?2 AND bucket_id ="
			" (SELECT id FROM storage_buckets WHERE name = ?1)",
			bucket, key, NULL, 0);
}

int bfs_store_file_delete(struct bfs_store *s, const char *bucket,
			  const char *key)
{
	struct iq_entry e = { .op = IQ_DELETE, .bucket = bucket, .key = key };
	int r;

	store_lock(s);
	r = index_write(s, &e);
	store_unlock(s);
	return r;
}

/*
 * The two tables keyed by (bucket_id, key) that follow renames: the file
 * index and the upload journal.  `now` is the SQL for "now" in the
 * table's timestamp format.
 */
struct keyed_table {
	const char *name;
	const char *now;
};

static const struct keyed_table files_table = {
	"files", "CURRENT_TIMESTAMP"
};

#define JOURNAL_NOW "CAST(strftime('%s', 'now') AS INTEGER)"

static const struct keyed_table journal_table = {
	"upload_journal", JOURNAL_NOW
};

/*
 * Contract (lock held): moves row (src_bucket, src_key) of t to
 * (dst_bucket, dst_key), replacing a row already there, in one
 * transaction.  BFS_ERR_NOTFOUND (nothing changed) when either bucket or
 * the source row is absent.
 */
static int keyed_rename(struct bfs_store *s, const struct keyed_table *t,
			const char *src_bucket, const char *src_key,
			const char *dst_bucket, const char *dst_key)
{
	char sid[ID_HEX_LEN + 1], did[ID_HEX_LEN + 1], sql[256];
	sqlite3_stmt *st = NULL;
	int64_t rowid = 0;
	int rc = SQLITE_OK, r;

	if (!src_key || !dst_key)
		return BFS_ERR_INVAL;
	r = tx_begin(s, NULL, 0);
	if (r != 0)
		return r;
	if ((r = bucket_lookup(s, src_bucket, sid, NULL, NULL, 0)) != 0 ||
	    (r = bucket_lookup(s, dst_bucket, did, NULL, NULL, 0)) != 0)
		goto out;
	if (strcmp(sid, did) == 0 && strcmp(src_key, dst_key) == 0)
		goto out;
	snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE bucket_id = ?1"
		 " AND key = ?2", t->name);
	r = prepare(s, sql, &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, sid);
	bind_str(&rc, st, 2, src_key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rowid = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		r = BFS_ERR_NOTFOUND;
	else
		r = db_fail(s, rc, NULL, 0, "find row to rename");
	sqlite3_finalize(st);
	st = NULL;
	if (r != 0)
		goto out;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE bucket_id = ?1 AND"
		 " key = ?2", t->name);
	r = exec_sql(s, sql, did, dst_key, NULL, 0);
	if (r != 0)
		goto out;
	snprintf(sql, sizeof(sql), "UPDATE %s SET bucket_id = ?1, key = ?2,"
		 " updated_at = %s WHERE id = ?3", t->name, t->now);
	r = prepare(s, sql, &st, NULL, 0);
	if (r != 0)
		goto out;
	rc = SQLITE_OK;
	bind_str(&rc, st, 1, did);
	bind_str(&rc, st, 2, dst_key);
	bind_i64(&rc, st, 3, rowid);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "rename row");
	sqlite3_finalize(st);
out:
	return tx_end(s, r, NULL, 0);
}

/*
 * Contract (lock held): every row of t in src_bucket whose key starts
 * (byte-wise; LIKE wildcards are ordinary characters) with src_prefix
 * moves to dst_bucket with src_prefix replaced by dst_prefix; destination
 * rows in the way are replaced.  One transaction.  Within one bucket,
 * nested prefixes (a folder into itself) are BFS_ERR_INVAL; an unknown
 * bucket is BFS_ERR_NOTFOUND.
 */
static int keyed_rename_prefix(struct bfs_store *s, const struct keyed_table *t,
			       const char *src_bucket, const char *src_prefix,
			       const char *dst_bucket, const char *dst_prefix)
{
	char sid[ID_HEX_LEN + 1], did[ID_HEX_LEN + 1], sql[512];
	sqlite3_stmt *st = NULL;
	size_t sl, dl;
	int rc, r, pass;

	if (!src_prefix || !dst_prefix)
		return BFS_ERR_INVAL;
	sl = strlen(src_prefix);
	dl = strlen(dst_prefix);
	r = tx_begin(s, NULL, 0);
	if (r != 0)
		return r;
	if ((r = bucket_lookup(s, src_bucket, sid, NULL, NULL, 0)) != 0 ||
	    (r = bucket_lookup(s, dst_bucket, did, NULL, NULL, 0)) != 0)
		goto out;
	if (strcmp(sid, did) == 0) {
		if (strcmp(src_prefix, dst_prefix) == 0)
			goto out;
		if (strncmp(src_prefix, dst_prefix, sl < dl ? sl : dl) == 0) {
			r = BFS_ERR_INVAL;
			goto out;
		}
	}
	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE"
				 " bucket_id = ?4 AND key IN (SELECT ?3 ||"
				 " CAST(substr(CAST(key AS BLOB), ?2 + 1) AS TEXT)"
				 " FROM %s WHERE bucket_id = ?5 AND "
				 KEY_HAS_PREFIX("?1", "?2") ")", t->name, t->name);
		else
			snprintf(sql, sizeof(sql), "UPDATE %s SET bucket_id = ?4,"
				 " key = ?3 || CAST(substr(CAST(key AS BLOB),"
				 " ?2 + 1) AS TEXT), updated_at = %s"
				 " WHERE bucket_id = ?5 AND "
				 KEY_HAS_PREFIX("?1", "?2"), t->name, t->now);
		r = prepare(s, sql, &st, NULL, 0);
		if (r != 0)
			goto out;
		rc = SQLITE_OK;
		bind_str(&rc, st, 1, src_prefix);
		bind_i64(&rc, st, 2, (int64_t)sl);
		bind_str(&rc, st, 3, dst_prefix);
		bind_str(&rc, st, 4, did);
		bind_str(&rc, st, 5, sid);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			r = db_fail(s, rc, NULL, 0, "rename folder rows");
		sqlite3_finalize(st);
		st = NULL;
		if (r != 0)
			goto out;
	}
out:
	return tx_end(s, r, NULL, 0);
}

/*
 * Contract: moves the index row (src_bucket, src_key) to (dst_bucket,
 * dst_key), replacing a row already there, in one transaction.
 * BFS_ERR_NOTFOUND (nothing changed) when either bucket or the source row
 * is absent, so the caller can index the destination itself.
 */
int bfs_store_file_rename(struct bfs_store *s, const char *src_bucket,
			  const char *src_key, const char *dst_bucket,
			  const char *dst_key)
{
	struct iq_entry e = { .op = IQ_RENAME, .bucket = src_bucket,
			      .key = src_key, .bucket2 = dst_bucket,
			      .key2 = dst_key };
	int r;

	if (!src_key || !dst_key)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = index_write(s, &e);
	store_unlock(s);
	return r;
}

/* See keyed_rename_prefix(). */
int bfs_store_file_rename_prefix(struct bfs_store *s, const char *src_bucket,
				 const char *src_prefix, const char *dst_bucket,
				 const char *dst_prefix)
{
	struct iq_entry e = { .op = IQ_RENAME_PREFIX, .bucket = src_bucket,
			      .key = src_prefix, .bucket2 = dst_bucket,
			      .key2 = dst_prefix };
	int r;

	if (!src_prefix || !dst_prefix)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = index_write(s, &e);
	store_unlock(s);
	return r;
}

int bfs_store_file_set_attr(struct bfs_store *s, const char *bucket,
			    const char *key, uint32_t mode, uint32_t uid,
			    uint32_t gid, int64_t mtime)
{
	struct iq_entry e = { .op = IQ_ATTR, .bucket = bucket, .key = key };
	int r;

	e.row.mode = mode;
	e.row.uid = uid;
	e.row.gid = gid;
	e.row.mtime = mtime;
	store_lock(s);
	r = index_write(s, &e);
	store_unlock(s);
	return r;
}

static int file_attr_locked(struct bfs_store *s, const char *bucket,
			    const char *key, uint32_t mode, uint32_t uid,
			    uint32_t gid, int64_t mtime)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	r = prepare(s, "UPDATE files SET mode = ?3, uid = ?4, gid = ?5,"
		    " mtime = ?6, updated_at = CURRENT_TIMESTAMP,"
		    " last_modified = NULL WHERE key = ?2"
		    " AND bucket_id = (SELECT id FROM storage_buckets WHERE"
		    " name = ?1)", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, key);
	bind_i64(&rc, st, 3, mode);
	bind_i64(&rc, st, 4, uid);
	bind_i64(&rc, st, 5, gid);
	bind_i64(&rc, st, 6, mtime);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "set file attributes");
out:
	sqlite3_finalize(st);
	return r;
}

/* ---- index writes while PostgreSQL is unreachable (the index queue) ---- */

static int journal_sync_full(struct bfs_store *s);
static void journal_sync_normal(struct bfs_store *s);

/* Applies e to the catalog (lock held). */
static int iq_apply(struct bfs_store *s, const struct iq_entry *e)
{
	switch (e->op) {
	case IQ_PUT:
		return file_put_locked(s, &e->row);
	case IQ_DELETE:
		return file_delete_locked(s, e->bucket, e->key);
	case IQ_RENAME:
		return keyed_rename(s, &files_table, e->bucket, e->key,
				    e->bucket2, e->key2);
	case IQ_RENAME_PREFIX:
		return keyed_rename_prefix(s, &files_table, e->bucket, e->key,
					   e->bucket2, e->key2);
	case IQ_ATTR:
		return file_attr_locked(s, e->bucket, e->key, e->row.mode,
					e->row.uid, e->row.gid, e->row.mtime);
	default:
		return BFS_ERR_INVAL;
	}
}

static void iq_metrics(struct bfs_store *s)
{
	bfs_metrics_database(bfs_db_pg_down(SDB(s)) ? 0 : 1, s->iq_len);
}

/* Appends e to the local index_queue (lock held; the caller counts it in
 * iq_len once its transaction committed). */
static int iq_push(struct bfs_store *s, const struct iq_entry *e)
{
	sqlite3_stmt *st = NULL;
	const struct bfs_file_row *w = &e->row;
	int rc = SQLITE_OK, r;

	r = prepare(s, "INSERT INTO index_queue (op, bucket, key, bucket2, key2,"
		    " size, etag, content_type, mode, uid, gid, mtime,"
		    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
		    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)", &st, NULL, 0);
	if (r != 0)
		return r;
	bind_str(&rc, st, 1, iq_names[e->op]);
	bind_str(&rc, st, 2, e->bucket);
	bind_str(&rc, st, 3, e->key);
	bind_str(&rc, st, 4, e->bucket2);
	bind_str(&rc, st, 5, e->key2);
	bind_i64(&rc, st, 6, (int64_t)w->size);
	bind_str(&rc, st, 7, w->etag);
	bind_str(&rc, st, 8, w->content_type);
	bind_i64(&rc, st, 9, w->mode);
	if (w->no_uid)
		bind_str(&rc, st, 10, NULL);
	else
		bind_i64(&rc, st, 10, w->uid);
	if (w->no_gid)
		bind_str(&rc, st, 11, NULL);
	else
		bind_i64(&rc, st, 11, w->gid);
	bind_i64(&rc, st, 12, w->mtime);
	bind_i64(&rc, st, 13, w->created_at ? w->created_at : time(NULL));
	bind_i64(&rc, st, 14, w->updated_at ? w->updated_at : time(NULL));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : db_fail(s, rc, NULL, 0, "queue index row");
	sqlite3_finalize(st);
	return r;
}

/*
 * Queues e, and when done_key is given deletes the journal row
 * (e->bucket, done_key) in the same local transaction; synchronous=FULL
 * like every journal write (the queue row is all that is left of an
 * acknowledged index write).  Lock held.
 */
static int iq_enqueue(struct bfs_store *s, const struct iq_entry *e,
		      const char *done_key)
{
	int r;

	if ((r = journal_sync_full(s)) != 0)
		return r;
	if ((r = tx_begin(s, NULL, 0)) == 0) {
		r = iq_push(s, e);
		if (r == 0 && done_key)
			r = exec_sql(s, "DELETE FROM upload_journal WHERE key = ?2"
				     " AND bucket_id = (SELECT id FROM"
				     " storage_buckets WHERE name = ?1)",
				     e->bucket, done_key, NULL, 0);
		r = tx_end(s, r, NULL, 0);
	}
	journal_sync_normal(s);
	if (r == 0) {
		if (s->iq_len++ == 0)
			BFS_WARN("postgresql unreachable: index writes are "
				 "queued locally until it is back");
		iq_metrics(s);
	}
	return r;
}

/* Index writes go to the queue: the daemon's service replays it, and
 * while it holds rows every later write queues behind them (order). */
static int iq_active(struct bfs_store *s)
{
	return s->pooled && (atomic_load(&s->serviced) || s->iq_len > 0);
}

/*
 * Contract (lock held): applies e; with a PostgreSQL catalog that cannot
 * be reached (or a queue not yet replayed) in a daemon, queues it instead
 * and returns 0: the write is then acknowledged and happens when the
 * server is back, in order.
 */
static int index_write(struct bfs_store *s, const struct iq_entry *e)
{
	int r;

	if (!iq_active(s))
		return iq_apply(s, e);
	if (s->iq_len == 0 && !bfs_db_pg_down(SDB(s))) {
		r = iq_apply(s, e);
		if (r == 0 || !bfs_db_pg_down(SDB(s)))
			return r;
	}
	return iq_enqueue(s, e, NULL);
}

static int iq_col(sqlite3_stmt *st, int i, char **out)
{
	return col_dup(st, i, out);
}

/*
 * Replays the oldest queue row (lock held): in one transaction on both
 * sides, unless PostgreSQL's bfs_index_replay says this host already
 * applied it (a crash between the two commits), applies it, records its
 * id there, and deletes it locally.  1: the queue is empty; 0: one row
 * done; else the error (the row stays).  A row that fails for a reason
 * other than the connection (its bucket removed meanwhile) is logged and
 * dropped: it can never apply.
 */
static int iq_replay_one(struct bfs_store *s)
{
	sqlite3_stmt *st = NULL;
	struct iq_entry e;
	char *b = NULL, *k = NULL, *b2 = NULL, *k2 = NULL, *op = NULL;
	char *etag = NULL, *ct = NULL, idbuf[24];
	int64_t id, seq = 0;
	int rc = SQLITE_OK, r, i, skip, permanent = 0;
	/* read before the SELECT: a row another session queues after it
	 * raised the count, and an empty answer must not zero that */
	int64_t len0 = atomic_load(&s->iq_len);

	memset(&e, 0, sizeof(e));
	r = prepare(s, "SELECT id, op, bucket, key, bucket2, key2, size, etag,"
		    " content_type, mode, uid, gid, mtime, created_at,"
		    " updated_at FROM index_queue ORDER BY id LIMIT 1", &st,
		    NULL, 0);
	if (r != 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		atomic_compare_exchange_strong(&s->iq_len, &len0, 0);
		return 1;
	}
	if (rc != SQLITE_ROW) {
		r = db_fail(s, rc, NULL, 0, "read index queue");
		sqlite3_finalize(st);
		return r;
	}
	id = sqlite3_column_int64(st, 0);
	if ((r = iq_col(st, 1, &op)) != 0 || (r = iq_col(st, 2, &b)) != 0 ||
	    (r = iq_col(st, 3, &k)) != 0 || (r = iq_col(st, 4, &b2)) != 0 ||
	    (r = iq_col(st, 5, &k2)) != 0 || (r = iq_col(st, 7, &etag)) != 0 ||
	    (r = iq_col(st, 8, &ct)) != 0)
		goto out;
	e.op = -1;
	for (i = 0; op && i < IQ_NOPS; i++)
		if (strcmp(op, iq_names[i]) == 0)
			e.op = i;
	e.bucket = e.row.bucket = b;
	e.key = e.row.key = k;
	e.bucket2 = b2;
	e.key2 = k2;
	e.row.size = (uint64_t)sqlite3_column_int64(st, 6);
	e.row.etag = etag;
	e.row.content_type = ct;
	e.row.mode = (uint32_t)sqlite3_column_int64(st, 9);
	e.row.no_uid = sqlite3_column_type(st, 10) == SQLITE_NULL;
	e.row.uid = (uint32_t)sqlite3_column_int64(st, 10);
	e.row.no_gid = sqlite3_column_type(st, 11) == SQLITE_NULL;
	e.row.gid = (uint32_t)sqlite3_column_int64(st, 11);
	e.row.mtime = sqlite3_column_int64(st, 12);
	e.row.created_at = sqlite3_column_int64(st, 13);
	e.row.updated_at = sqlite3_column_int64(st, 14);
	sqlite3_finalize(st);
	st = NULL;
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
	for (skip = 0; skip < 2; skip++) {
		if ((r = tx_begin(s, NULL, 0)) != 0)
			goto out;
		r = query_i64(s, "SELECT coalesce(max(seq), 0) FROM"
			      " bfs_index_replay WHERE host = ?1",
			      bfs_db_host_id(SDB(s)), &seq, NULL, 0);
		if (r == 0 && seq < id && !skip) {
			r = e.op < 0 ? BFS_ERR_INVAL : iq_apply(s, &e);
			if (r == BFS_ERR_NOTFOUND) {
				/* Nothing to move or update any more. */
				r = 0;
				tl_sess->tx_failed = 0;
			}
			/* Only a row the catalog refuses for good (a bad op,
			 * a constraint: its bucket was removed) is dropped;
			 * a read-only standby, a timeout or a full disk
			 * keeps it queued for the next try. */
			permanent = r == BFS_ERR_INVAL ||
				    (r != 0 && (sqlite3_errcode(SDB(s)) & 0xff) ==
				     SQLITE_CONSTRAINT);
		}
		if (r == 0 && seq < id)
			r = exec_sql(s, "INSERT INTO bfs_index_replay (host, seq)"
				     " VALUES (?1, CAST(?2 AS INTEGER))"
				     " ON CONFLICT (host) DO UPDATE SET"
				     " seq = excluded.seq",
				     bfs_db_host_id(SDB(s)), idbuf, NULL, 0);
		if (r == 0)
			r = exec_sql(s, "DELETE FROM index_queue WHERE id ="
				     " CAST(?1 AS INTEGER)", idbuf, NULL, NULL,
				     0);
		r = tx_end(s, r, NULL, 0);
		if (r == 0 || bfs_db_pg_down(SDB(s)) || skip)
			break;
		if (!permanent) {
			if (s->iq_fail_id != id)
				BFS_ERROR("queued index %s of %s/%s not applied "
					  "yet (kept, retried): %s",
					  op ? op : "?", b ? b : "?",
					  k ? k : "?", bfs_strerror(r));
			s->iq_fail_id = id;
			break;
		}
		BFS_ERROR("queued index %s of %s/%s cannot be applied "
			  "(dropped): %s", op ? op : "?", b ? b : "?",
			  k ? k : "?", bfs_strerror(r));
	}
	r = tx_end(s, r, NULL, 0);
	if (r == 0 && s->iq_len > 0)
		s->iq_len--;
out:
	sqlite3_finalize(st);
	free(op);
	free(b);
	free(k);
	free(b2);
	free(k2);
	free(etag);
	free(ct);
	return r;
}

#define IQ_REPLAY_BATCH 256     /* rows per service call */

int bfs_store_service(struct bfs_store *s)
{
	PGconn *c;
	int down, r = 0, n;

	if (!s->pooled)
		return 0;
	if (!atomic_load(&s->serviced)) {
		/* The first call comes before the mount serves anything:
		 * the pool has its first session only, and nobody uses it. */
		bfs_db_pg_serviced(s->db);
		atomic_store(&s->reachable, 1);
		atomic_store(&s->serviced, 1);
	}
	store_lock(s);
	down = bfs_db_pg_down(SDB(s));
	store_unlock(s);
	if (down) {
		if (atomic_exchange(&s->reachable, 0))
			BFS_WARN("postgresql: connection lost; reconnecting "
				 "(index writes are queued meanwhile)");
		if (store_mono_ms() < s->svc_retry_at)
			goto out;
		/* The connect is a network call: no session, no lock held. */
		if (!(c = bfs_db_pg_dial(s->db))) {
			s->svc_retry_ms = s->svc_retry_ms ?
					  s->svc_retry_ms * 2 : 250;
			if (s->svc_retry_ms > 5000)
				s->svc_retry_ms = 5000;
			s->svc_retry_at = store_mono_ms() + s->svc_retry_ms;
			goto out;
		}
		s->svc_retry_ms = 0;
		store_lock(s);
		if (bfs_db_pg_down(SDB(s)))
			bfs_db_pg_adopt(SDB(s), c);
		else
			PQfinish(c);
		store_unlock(s);
		atomic_store(&s->reachable, 1);
	}
	/* One row per session hold: writers queue behind, in order. */
	for (n = 0; n < IQ_REPLAY_BATCH; n++) {
		store_lock(s);
		r = atomic_load(&s->iq_len) > 0 || n == 0 ? iq_replay_one(s) : 1;
		store_unlock(s);
		if (r != 0)
			break;
	}
	if (r == 1)
		r = 0;
out:
	store_lock(s);
	iq_metrics(s);
	store_unlock(s);
	return r;
}

int bfs_store_watch(struct bfs_store *s, bfs_store_change_fn fn, void *arg)
{
	bfs_db_watch_stop(s->watch);
	s->watch = NULL;
	if (!fn || !s->pooled)
		return 0;
	return bfs_db_watch_start(s->db, fn, arg, &s->watch);
}

int bfs_store_db_state(struct bfs_store *s, int *connected, int64_t *queued)
{
	if (!s->pooled)
		return 0;
	store_lock(s);
	*connected = !bfs_db_pg_down(SDB(s));
	*queued = s->iq_len;
	store_unlock(s);
	return 1;
}

/*
 * Contract: calls cb for each matching row in (bucket name, key) order,
 * with the store lock held (cb must not call the store).  The row passed
 * to cb is valid only during the call.  Returns cb's non-zero value when it
 * stops the walk, else 0 or an error.
 */
int bfs_store_file_list(struct bfs_store *s, const char *bucket,
			const char *prefix, bfs_file_row_fn cb, void *arg)
{
	struct bfs_file_row row;
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	store_lock(s);
	r = prepare(s, FILE_SELECT " WHERE (?1 IS NULL OR b.name = ?1) AND"
		    " (?2 IS NULL OR substr(CAST(f.key AS BLOB), 1, ?3) ="
		    " CAST(?2 AS BLOB)) ORDER BY b.name, f.key", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, prefix);
	bind_i64(&rc, st, 3, prefix ? (int64_t)strlen(prefix) : 0);
	if (rc != SQLITE_OK) {
		r = db_fail(s, rc, NULL, 0, "list files");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = file_from_row(st, &row);
		if (r != 0)
			goto out;
		r = cb(arg, &row);
		bfs_file_row_clear(&row);
		if (r != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "list files");
out:
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

/* ---- metadata known without a HEAD ---- */

/* Keys directly below ?2 (byte length ?3; upper bound ?4 or NULL). */
#define META_CHILD \
	" AND x.key >= ?2 AND (?4 IS NULL OR x.key < ?4)" \
	" AND substr(CAST(x.key AS BLOB), 1, ?3) = CAST(?2 AS BLOB)" \
	" AND length(CAST(x.key AS BLOB)) > ?3" \
	" AND instr(substr(CAST(x.key AS BLOB), ?3 + 1), CAST('/' AS BLOB)) = 0"

static int meta_query(struct bfs_store *s, const char *sql, const char *bucket,
		      const char *prefix, const char *upper, int indexed,
		      bfs_meta_rec_fn cb, void *arg)
{
	struct bfs_meta_rec m;
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	if ((r = prepare(s, sql, &st, NULL, 0)) != 0)
		return r;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, prefix);
	bind_i64(&rc, st, 3, (int64_t)strlen(prefix));
	bind_str(&rc, st, 4, upper);
	if (rc != SQLITE_OK) {
		r = db_fail(s, rc, NULL, 0, "read known metadata");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&m, 0, sizeof(m));
		m.key = (const char *)sqlite3_column_text(st, 0);
		m.etag = (const char *)sqlite3_column_text(st, 1);
		if (!m.key || !m.etag || !m.etag[0])
			continue;
		m.size = (uint64_t)sqlite3_column_int64(st, 2);
		m.last_modified = sqlite3_column_int64(st, 3);
		m.has_mode = sqlite3_column_type(st, 4) != SQLITE_NULL;
		m.mode = (uint32_t)sqlite3_column_int64(st, 4);
		m.has_uid = sqlite3_column_type(st, 5) != SQLITE_NULL;
		m.uid = (uint32_t)sqlite3_column_int64(st, 5);
		m.has_gid = sqlite3_column_type(st, 6) != SQLITE_NULL;
		m.gid = (uint32_t)sqlite3_column_int64(st, 6);
		m.mtime = sqlite3_column_int64(st, 7);
		m.mtime_nsec = (long)sqlite3_column_int64(st, 8);
		m.indexed = indexed != 0;
		if ((r = cb(arg, &m)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : db_fail(s, rc, NULL, 0, "read known metadata");
out:
	sqlite3_finalize(st);
	return r;
}

int bfs_store_meta_folder(struct bfs_store *s, const char *bucket,
			  const char *prefix, bfs_meta_rec_fn cb, void *arg)
{
	size_t pl = strlen(prefix);
	char *upper = NULL;
	int r;

	/* "a/" -> "a0": every key starting with "a/" sorts below it */
	if (pl) {
		if (!(upper = strdup(prefix)))
			return BFS_ERR_NOMEM;
		if ((unsigned char)upper[pl - 1] == 0xff) {
			free(upper);
			upper = NULL;
		} else {
			upper[pl - 1]++;
		}
	}
	store_lock(s);
	r = meta_query(s, "SELECT x.key, x.etag, x.size,"
		       " coalesce(x.last_modified, 0), x.mode, x.uid, x.gid,"
		       " x.mtime, 0 FROM files x JOIN storage_buckets b"
		       " ON b.id = x.bucket_id WHERE b.name = ?1"
		       " AND x.mode IS NOT NULL AND x.mode <> 0" META_CHILD,
		       bucket, prefix, upper, 1, cb, arg);
	if (r == 0)
		r = meta_query(s, "SELECT x.key, x.etag, x.size,"
			       " x.last_modified, x.mode, x.uid, x.gid, x.mtime,"
			       " x.mtime_nsec FROM object_meta x JOIN"
			       " storage_buckets b ON b.id = x.bucket_id"
			       " WHERE b.name = ?1" META_CHILD,
			       bucket, prefix, upper, 0, cb, arg);
	store_unlock(s);
	free(upper);
	return r;
}

int bfs_store_meta_record(struct bfs_store *s, const char *bucket,
			  const struct bfs_meta_rec *rec, size_t n)
{
	sqlite3_stmt *up = NULL, *ins = NULL;
	size_t i;
	int rc = SQLITE_OK, r;

	if (!n)
		return 0;
	store_lock(s);
	if ((r = tx_begin(s, NULL, 0)) != 0)
		goto unlock;
	if ((r = prepare(s, "UPDATE files SET last_modified = ?4 WHERE"
			 " key = ?2 AND etag = ?3 AND last_modified IS NULL AND"
			 " bucket_id = (SELECT id FROM storage_buckets WHERE"
			 " name = ?1)", &up, NULL, 0)) != 0 ||
	    (r = prepare(s, "INSERT OR REPLACE INTO object_meta (bucket_id,"
			 " key, etag, size, last_modified, mode, uid, gid, mtime,"
			 " mtime_nsec) SELECT id, ?2, ?3, ?5, ?4, ?6, ?7, ?8, ?9,"
			 " ?10 FROM storage_buckets WHERE name = ?1", &ins,
			 NULL, 0)) != 0)
		goto out;
	for (i = 0; i < n && r == 0; i++) {
		const struct bfs_meta_rec *m = &rec[i];
		sqlite3_stmt *st = m->indexed ? up : ins;

		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		bind_str(&rc, st, 1, bucket);
		bind_str(&rc, st, 2, m->key);
		bind_str(&rc, st, 3, m->etag);
		bind_i64(&rc, st, 4, m->last_modified);
		if (!m->indexed) {
			bind_i64(&rc, st, 5, (int64_t)m->size);
			if (m->has_mode)
				bind_i64(&rc, st, 6, m->mode);
			if (m->has_uid)
				bind_i64(&rc, st, 7, m->uid);
			if (m->has_gid)
				bind_i64(&rc, st, 8, m->gid);
			bind_i64(&rc, st, 9, m->mtime);
			bind_i64(&rc, st, 10, m->mtime_nsec);
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			r = db_fail(s, rc, NULL, 0, "record known metadata");
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(up);
	sqlite3_finalize(ins);
	r = tx_end(s, r, NULL, 0);
unlock:
	store_unlock(s);
	return r;
}

void bfs_bucket_stats_free(struct bfs_bucket_stats *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++)
		free(a[i].bucket);
	free(a);
}

/*
 * Contract: files and bytes per bucket (every bucket when bucket is NULL,
 * zero for an empty one), sorted by name.  BFS_ERR_NOTFOUND when a named
 * bucket does not exist.
 */
/* row_fill_fn of the per-bucket statistics. */
static int stats_fill(sqlite3_stmt *st, void *elem, const void *arg)
{
	struct bfs_bucket_stats *e = elem;

	(void)arg;
	e->files = (uint64_t)sqlite3_column_int64(st, 1);
	e->bytes = (uint64_t)sqlite3_column_int64(st, 2);
	return col_dup(st, 0, &e->bucket);
}

int bfs_store_stats(struct bfs_store *s, const char *bucket,
		    struct bfs_bucket_stats **out, size_t *n)
{
	struct bfs_bucket_stats *a = NULL;
	size_t cnt = 0;
	int r;

	r = list_rows(s, "SELECT b.name, count(f.id), coalesce(sum(f.size), 0)"
		      " FROM storage_buckets b LEFT JOIN files f"
		      " ON f.bucket_id = b.id WHERE ?1 IS NULL OR b.name = ?1"
		      " GROUP BY b.id ORDER BY b.name", bucket, &a, &cnt,
		      sizeof(*a), 8, BUCKETS_MAX, stats_fill, NULL, "stats");
	if (r == 0 && bucket && cnt == 0)
		r = BFS_ERR_NOTFOUND;
	if (r != 0) {
		bfs_bucket_stats_free(a, cnt);
		a = NULL;
		cnt = 0;
	}
	*out = a;
	*n = cnt;
	return r;
}

/* ---- the upload journal ---- */

/*
 * Durability: the connection runs with synchronous=NORMAL, under which a
 * WAL commit reaches the disk only at the next checkpoint.  A journal
 * write must survive a power cut once the function returns (the data it
 * records was, or is about to be, acknowledged), so it is done with
 * synchronous=FULL, which fsyncs the WAL at commit; the setting goes back
 * to NORMAL afterwards.  Both happen under s->lock, so no other write of
 * this handle runs in between.  If NORMAL cannot be restored the handle
 * just stays FULL: slower, never less safe.
 */
static int journal_sync_full(struct bfs_store *s)
{
	int rc = sqlite3_exec(SDB(s), "PRAGMA synchronous=FULL", NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, NULL, 0, "synchronous=FULL");
}

static void journal_sync_normal(struct bfs_store *s)
{
	int rc = sqlite3_exec(SDB(s), "PRAGMA synchronous=NORMAL", NULL, NULL,
			      NULL);

	if (rc != SQLITE_OK)
		db_fail(s, rc, NULL, 0, "synchronous=NORMAL");
}

void bfs_journal_entries_free(struct bfs_journal_entry *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].bucket);
		free(a[i].key);
		free(a[i].staging_path);
		free(a[i].base_etag);
		free(a[i].last_error);
		free(a[i].upload_id);
	}
	free(a);
}

/*
 * The upsert of bfs_store_journal_put; `durable` selects synchronous=FULL.
 * Without it the commit is in the WAL file (the kernel's page cache) when
 * this returns: it survives the death of the process, not a power cut,
 * until the next FULL commit or checkpoint of this database (both sync
 * every earlier commit of the WAL with it).
 */
static int journal_put(struct bfs_store *s, const struct bfs_journal_entry *e,
		       int durable)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	if (!e->bucket || !e->key || !e->staging_path)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = durable ? journal_sync_full(s) : 0;
	if (r != 0)
		goto unlock;
	r = prepare(s, "INSERT INTO upload_journal (bucket_id, key, staging_path,"
		    " base_etag, size, mode, uid, gid, mtime, created_at,"
		    " updated_at, attempts, last_error)"
		    " SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
		    " CASE WHEN ?10 > 0 THEN ?10 ELSE " JOURNAL_NOW " END,"
		    " " JOURNAL_NOW ", ?11, ?12"
		    " FROM storage_buckets WHERE name = ?1"
		    " ON CONFLICT (bucket_id, key) DO UPDATE SET"
		    " staging_path = excluded.staging_path,"
		    " base_etag = excluded.base_etag, size = excluded.size,"
		    " mode = excluded.mode, uid = excluded.uid, gid = excluded.gid,"
		    " mtime = excluded.mtime, updated_at = excluded.updated_at",
		    &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, e->bucket);
	bind_str(&rc, st, 2, e->key);
	bind_str(&rc, st, 3, e->staging_path);
	bind_str(&rc, st, 4, e->base_etag);
	bind_i64(&rc, st, 5, (int64_t)e->size);
	bind_i64(&rc, st, 6, e->mode);
	bind_i64(&rc, st, 7, e->uid);
	bind_i64(&rc, st, 8, e->gid);
	bind_i64(&rc, st, 9, e->mtime);
	bind_i64(&rc, st, 10, e->created_at);
	bind_i64(&rc, st, 11, e->attempts > 0 ? e->attempts : 0);
	bind_str(&rc, st, 12, e->last_error);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "journal upload");
	else if (sqlite3_changes(SDB(s)) == 0)
		r = BFS_ERR_NOTFOUND;
out:
	sqlite3_finalize(st);
	if (durable)
		journal_sync_normal(s);
unlock:
	store_unlock(s);
	return r;
}

int bfs_store_journal_put(struct bfs_store *s, const struct bfs_journal_entry *e)
{
	return journal_put(s, e, 1);
}

int bfs_store_journal_put_lazy(struct bfs_store *s,
			       const struct bfs_journal_entry *e)
{
	return journal_put(s, e, 0);
}

int bfs_store_journal_done(struct bfs_store *s, const char *bucket,
			   const char *key)
{
	int r;

	if (!bucket || !key)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = journal_sync_full(s);
	if (r == 0) {
		r = exec_sql(s, "DELETE FROM upload_journal WHERE key = ?2 AND"
			     " bucket_id = (SELECT id FROM storage_buckets WHERE"
			     " name = ?1)", bucket, key, NULL, 0);
		journal_sync_normal(s);
	}
	store_unlock(s);
	return r;
}

/*
 * The bookkeeping after a successful upload in one transaction (one WAL
 * fsync instead of two commits): upsert the index row `row` and, when
 * `done_key` is not NULL, delete the journal row (row->bucket, done_key).
 * synchronous=FULL like every journal write: if the deletion were lost to
 * a power cut, recovery would find the row again with the base etag from
 * before this upload, see our own object as a change by someone else and
 * store a spurious conflict copy (see docs/RELIABILITY.md).  All or
 * nothing on SQLite: on an error neither change is made.  PostgreSQL:
 * the index row first (one statement), then the journal row.  In a daemon
 * with the server unreachable, the index row is queued instead (the
 * journal row deleted in the same local transaction).
 */
int bfs_store_upload_done(struct bfs_store *s, const struct bfs_file_row *row,
			  const char *done_key)
{
	struct iq_entry e = { .op = IQ_PUT };
	int r;

	if (!row->bucket || !row->key)
		return BFS_ERR_INVAL;
	e.bucket = row->bucket;
	e.key = row->key;
	e.row = *row;
	store_lock(s);
	if (iq_active(s) && (s->iq_len > 0 || bfs_db_pg_down(SDB(s)))) {
		r = iq_enqueue(s, &e, done_key);
		goto unlock;
	}
	if (done_key && (r = journal_sync_full(s)) != 0)
		goto unlock;
	/* PostgreSQL: the upsert alone, one round trip (no transaction, no
	 * advisory lock: one statement is atomic), then the local journal
	 * row; a crash between leaves a journal row whose recovery rewrites
	 * the same index row. */
	if (!s->pooled && (r = tx_begin(s, NULL, 0)) != 0)
		goto out;
	r = file_put_locked(s, row);
	if (r == 0 && done_key)
		r = exec_sql(s, "DELETE FROM upload_journal WHERE key = ?2 AND"
			     " bucket_id = (SELECT id FROM storage_buckets WHERE"
			     " name = ?1)", row->bucket, done_key, NULL, 0);
	if (!s->pooled)
		r = tx_end(s, r, NULL, 0);
out:
	if (done_key)
		journal_sync_normal(s);
	/* The connection was lost on the way: nothing was written; queue. */
	if (r != 0 && iq_active(s) && bfs_db_pg_down(SDB(s)))
		r = iq_enqueue(s, &e, done_key);
unlock:
	store_unlock(s);
	return r;
}

int bfs_store_journal_fail(struct bfs_store *s, const char *bucket,
			   const char *key, const char *error)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	if (!bucket || !key)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = journal_sync_full(s);
	if (r != 0)
		goto unlock;
	r = prepare(s, "UPDATE upload_journal SET attempts = attempts + 1,"
		    " last_error = ?3, updated_at = " JOURNAL_NOW
		    " WHERE key = ?2 AND bucket_id ="
		    " (SELECT id FROM storage_buckets WHERE name = ?1)",
		    &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, key);
	bind_str(&rc, st, 3, error);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "journal failed upload");
	else if (sqlite3_changes(SDB(s)) == 0)
		r = BFS_ERR_NOTFOUND;
out:
	sqlite3_finalize(st);
	journal_sync_normal(s);
unlock:
	store_unlock(s);
	return r;
}

/*
 * After a rename: a row whose upload id was created for another bucket or
 * key loses it (an id belongs to its key); the id becomes an orphan that
 * the sweep aborts.
 */
#define MPU_CLEAR_MOVED \
	"UPDATE upload_journal SET upload_id = NULL WHERE upload_id IS NOT" \
	" NULL AND NOT EXISTS (SELECT 1 FROM multipart_uploads m WHERE" \
	" m.upload_id = upload_journal.upload_id AND m.key =" \
	" upload_journal.key AND m.bucket = (SELECT name FROM" \
	" storage_buckets b WHERE b.id = upload_journal.bucket_id))"

int bfs_store_journal_rename(struct bfs_store *s, const char *sb,
			     const char *sk, const char *dbk, const char *dk)
{
	int r;

	store_lock(s);
	r = journal_sync_full(s);
	if (r == 0) {
		r = keyed_rename(s, &journal_table, sb, sk, dbk, dk);
		if (r == 0)
			r = exec_sql(s, MPU_CLEAR_MOVED, NULL, NULL, NULL, 0);
		journal_sync_normal(s);
	}
	store_unlock(s);
	return r;
}

int bfs_store_journal_rename_prefix(struct bfs_store *s, const char *sb,
				    const char *src_prefix, const char *dbk,
				    const char *dst_prefix)
{
	int r;

	store_lock(s);
	r = journal_sync_full(s);
	if (r == 0) {
		r = keyed_rename_prefix(s, &journal_table, sb, src_prefix, dbk,
					dst_prefix);
		/* an upload id belongs to its old key: the moved rows start
		 * new uploads, the old ids become orphans to abort */
		if (r == 0)
			r = exec_sql(s, MPU_CLEAR_MOVED, NULL, NULL, NULL, 0);
		journal_sync_normal(s);
	}
	store_unlock(s);
	return r;
}

enum {
	JC_ID, JC_BUCKET, JC_KEY, JC_STAGING, JC_ETAG, JC_SIZE, JC_MODE, JC_UID,
	JC_GID, JC_MTIME, JC_CREATED, JC_UPDATED, JC_ATTEMPTS, JC_ERROR,
	JC_UPLOAD_ID, JC_PART_SIZE, JC_PART_GROW
};

static int journal_from_row(sqlite3_stmt *st, struct bfs_journal_entry *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	if ((r = col_dup(st, JC_BUCKET, &e->bucket)) != 0 ||
	    (r = col_dup(st, JC_KEY, &e->key)) != 0 ||
	    (r = col_dup(st, JC_STAGING, &e->staging_path)) != 0 ||
	    (r = col_dup(st, JC_ETAG, &e->base_etag)) != 0 ||
	    (r = col_dup(st, JC_ERROR, &e->last_error)) != 0 ||
	    (r = col_dup(st, JC_UPLOAD_ID, &e->upload_id)) != 0)
		return r;
	e->part_size = (uint64_t)sqlite3_column_int64(st, JC_PART_SIZE);
	e->part_grow = sqlite3_column_int(st, JC_PART_GROW);
	e->id = sqlite3_column_int64(st, JC_ID);
	e->size = (uint64_t)sqlite3_column_int64(st, JC_SIZE);
	e->mode = (uint32_t)sqlite3_column_int64(st, JC_MODE);
	e->uid = (uint32_t)sqlite3_column_int64(st, JC_UID);
	e->gid = (uint32_t)sqlite3_column_int64(st, JC_GID);
	e->mtime = sqlite3_column_int64(st, JC_MTIME);
	e->created_at = sqlite3_column_int64(st, JC_CREATED);
	e->updated_at = sqlite3_column_int64(st, JC_UPDATED);
	e->attempts = sqlite3_column_int(st, JC_ATTEMPTS);
	return 0;
}

/* row_fill_fn of the journal list. */
static int journal_fill(sqlite3_stmt *st, void *elem, const void *arg)
{
	(void)arg;
	return journal_from_row(st, elem);
}

int bfs_store_journal_list(struct bfs_store *s, struct bfs_journal_entry **out,
			   size_t *n)
{
	struct bfs_journal_entry *a = NULL;
	size_t cnt = 0;
	int r;

	r = list_rows(s, "SELECT j.id, b.name, j.key, j.staging_path,"
		      " j.base_etag, j.size, j.mode, j.uid, j.gid, j.mtime,"
		      " j.created_at, j.updated_at, j.attempts, j.last_error,"
		      " j.upload_id, j.part_size, j.part_grow"
		      " FROM upload_journal j JOIN storage_buckets b"
		      " ON b.id = j.bucket_id ORDER BY j.created_at, j.id", NULL,
		      &a, &cnt, sizeof(*a), 16, BFS_JOURNAL_LIST_MAX,
		      journal_fill, NULL, "list upload journal");
	if (r != 0) {
		bfs_journal_entries_free(a, cnt);
		a = NULL;
		cnt = 0;
	}
	*out = a;
	*n = cnt;
	return r;
}

/* ---- multipart upload ids ---- */

int bfs_store_mpu_begin(struct bfs_store *s, const char *bucket,
			const char *key, const char *upload_id,
			uint64_t part_size, int part_grow)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r, changed = 0;

	if (!bucket || !key || !upload_id)
		return BFS_ERR_INVAL;
	store_lock(s);
	if ((r = journal_sync_full(s)) != 0)
		goto unlock;
	if ((r = tx_begin(s, NULL, 0)) != 0)
		goto normal;
	r = prepare(s, "INSERT OR REPLACE INTO multipart_uploads (upload_id,"
		    " bucket, key, created_at) VALUES (?1, ?2, ?3, " JOURNAL_NOW
		    ")", &st, NULL, 0);
	if (r != 0)
		goto end;
	bind_str(&rc, st, 1, upload_id);
	bind_str(&rc, st, 2, bucket);
	bind_str(&rc, st, 3, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE) {
		r = db_fail(s, rc, NULL, 0, "record upload id");
		goto end;
	}
	rc = SQLITE_OK;
	r = prepare(s, "UPDATE upload_journal SET upload_id = ?3, part_size = ?4,"
		    " part_grow = ?5 WHERE key = ?2 AND bucket_id = (SELECT id"
		    " FROM storage_buckets WHERE name = ?1)", &st, NULL, 0);
	if (r != 0)
		goto end;
	bind_str(&rc, st, 1, bucket);
	bind_str(&rc, st, 2, key);
	bind_str(&rc, st, 3, upload_id);
	bind_i64(&rc, st, 4, (int64_t)part_size);
	bind_i64(&rc, st, 5, part_grow);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = db_fail(s, rc, NULL, 0, "journal upload id");
	else
		changed = sqlite3_changes(SDB(s));
	sqlite3_finalize(st);
end:
	/* the id is recorded even when the row is gone: committed */
	r = tx_end(s, r, NULL, 0);
	if (r == 0 && !changed)
		r = BFS_ERR_NOTFOUND;
normal:
	journal_sync_normal(s);
unlock:
	store_unlock(s);
	return r;
}

int bfs_store_mpu_clear(struct bfs_store *s, const char *bucket,
			const char *key, const char *upload_id)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	if (!bucket || !key || !upload_id)
		return BFS_ERR_INVAL;
	store_lock(s);
	if ((r = journal_sync_full(s)) != 0)
		goto unlock;
	r = prepare(s, "UPDATE upload_journal SET upload_id = NULL WHERE"
		    " upload_id = ?3 AND key = ?2 AND bucket_id = (SELECT id"
		    " FROM storage_buckets WHERE name = ?1)", &st, NULL, 0);
	if (r == 0) {
		bind_str(&rc, st, 1, bucket);
		bind_str(&rc, st, 2, key);
		bind_str(&rc, st, 3, upload_id);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			r = db_fail(s, rc, NULL, 0, "clear upload id");
	}
	sqlite3_finalize(st);
	journal_sync_normal(s);
unlock:
	store_unlock(s);
	return r;
}

int bfs_store_mpu_forget(struct bfs_store *s, const char *upload_id)
{
	int r;

	if (!upload_id)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = exec_sql(s, "DELETE FROM multipart_uploads WHERE upload_id = ?1",
		     upload_id, NULL, NULL, 0);
	store_unlock(s);
	return r;
}

void bfs_mpu_recs_free(struct bfs_mpu_rec *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].bucket);
		free(a[i].key);
		free(a[i].upload_id);
	}
	free(a);
}

#define MPU_ORPHANS_MAX 100000

int bfs_store_mpu_orphans(struct bfs_store *s, struct bfs_mpu_rec **out,
			  size_t *n)
{
	struct bfs_mpu_rec *a = NULL, *na;
	sqlite3_stmt *st = NULL;
	size_t cnt = 0, alloc = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	store_lock(s);
	r = prepare(s, "SELECT m.bucket, m.key, m.upload_id, m.created_at"
		    " FROM multipart_uploads m WHERE NOT EXISTS (SELECT 1 FROM"
		    " upload_journal j WHERE j.upload_id = m.upload_id)"
		    " ORDER BY m.created_at", &st, NULL, 0);
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && cnt < MPU_ORPHANS_MAX) {
		if (cnt == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			if (!(na = realloc(a, alloc * sizeof(*a)))) {
				r = BFS_ERR_NOMEM;
				goto out;
			}
			a = na;
		}
		memset(&a[cnt], 0, sizeof(a[cnt]));
		cnt++;
		if ((r = col_dup(st, 0, &a[cnt - 1].bucket)) != 0 ||
		    (r = col_dup(st, 1, &a[cnt - 1].key)) != 0 ||
		    (r = col_dup(st, 2, &a[cnt - 1].upload_id)) != 0)
			goto out;
		a[cnt - 1].created_at = sqlite3_column_int64(st, 3);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = db_fail(s, rc, NULL, 0, "list upload ids");
		goto out;
	}
	*out = a;
	*n = cnt;
	a = NULL;
	r = 0;
out:
	sqlite3_finalize(st);
	store_unlock(s);
	bfs_mpu_recs_free(a, cnt);
	return r;
}

/* ---- migrate-db ---- */

int bfs_store_migrate_db(struct bfs_store *src, struct bfs_store *dst,
			 int64_t counts[4], char *err, size_t errlen)
{
	int r;

	if (bfs_db_is_pg(src->db)) {
		bfs_set_err(err, errlen, "the source is not a SQLite database");
		return BFS_ERR_INVAL;
	}
	pthread_mutex_lock(&src->lock);
	store_lock(dst);
	r = bfs_db_copy_catalog(bfs_db_local(src->db), SDB(dst), counts, err,
				errlen);
	store_unlock(dst);
	pthread_mutex_unlock(&src->lock);
	return r;
}

/* ---- context views ---- */

/*
 * The buckets with their prefixes, for the queries that find a context's
 * files in every bucket: a file of context chat/ID is the row whose key is
 * the bucket's prefix + "chat/ID/...".  Each query walks the few buckets
 * and looks up (bucket_id, key) ranges in the unique index, so its cost
 * does not grow with the files of other contexts (CROSS JOIN keeps the
 * buckets the outer loop: SQLite never reorders it).
 */
#define CTX_BUCKETS \
	"WITH b AS (SELECT id, name, coalesce(json_extract(config_json," \
	" '$.prefix'), '') AS p FROM storage_buckets) "

/*
 * A context query while the PostgreSQL catalog cannot be reached (session
 * held): the mount keeps serving with what it has, so the view shows the
 * routed bucket alone rather than failing.  r otherwise.
 */
static int ctx_outage(struct bfs_store *s, int r)
{
	if (r == BFS_ERR_DB && s->pooled && bfs_db_pg_down(SDB(s))) {
		BFS_DEBUG("context view without the index: database unreachable");
		return 0;
	}
	return r;
}

/* Runs st (bound by the caller) and hands each row to cb as a ctx row:
 * columns bucket, rel, size, mode, uid, gid, mtime, etag. */
static int ctx_rows(struct bfs_store *s, sqlite3_stmt *st, bfs_ctx_row_fn cb,
		    void *arg, const char *what)
{
	struct bfs_ctx_row row;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		row.bucket = (const char *)sqlite3_column_text(st, 0);
		row.rel = (const char *)sqlite3_column_text(st, 1);
		if (!row.bucket || !row.rel)
			continue;
		row.size = (uint64_t)sqlite3_column_int64(st, 2);
		row.mode = (uint32_t)sqlite3_column_int64(st, 3);
		row.uid = (uint32_t)sqlite3_column_int64(st, 4);
		row.gid = (uint32_t)sqlite3_column_int64(st, 5);
		row.mtime = sqlite3_column_int64(st, 6);
		row.etag = (const char *)sqlite3_column_text(st, 7);
		row.exact = sqlite3_column_int(st, 8);
		if (sqlite3_column_count(st) > 9)
			row.files = (uint64_t)sqlite3_column_int64(st, 9);
		if ((r = cb(arg, &row)) != 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : db_fail(s, rc, NULL, 0, what);
}

int bfs_store_ctx_where(struct bfs_store *s, const char *rel,
			bfs_ctx_row_fn cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	store_lock(s);
	r = prepare(s, CTX_BUCKETS
		    "SELECT b.name, ?1, f.size, f.mode, f.uid, f.gid, f.mtime,"
		    " f.etag, 1 FROM b CROSS JOIN files f ON f.bucket_id = b.id"
		    " AND f.key = b.p || ?1"
		    " UNION ALL SELECT b.name, ?1, 0, 0, 0, 0, 0, NULL, 0 FROM b"
		    " WHERE EXISTS (SELECT 1 FROM files f WHERE f.bucket_id ="
		    " b.id AND f.key > b.p || ?1 || '/' AND f.key < b.p || ?1"
		    " || '0')", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, rel);
	r = rc == SQLITE_OK ? ctx_rows(s, st, cb, arg, "find a context file") :
			      db_fail(s, rc, NULL, 0, "find a context file");
out:
	r = ctx_outage(s, r);
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

/* "a/b/" -> "a/b0": every key below "a/b/" sorts in [a/b/, a/b0). */
static int upper_of(const char *prefix, char **out)
{
	size_t pl = strlen(prefix);

	*out = NULL;
	if (!pl || prefix[pl - 1] != '/')
		return BFS_ERR_INVAL;
	if (!(*out = strdup(prefix)))
		return BFS_ERR_NOMEM;
	(*out)[pl - 1] = '0';
	return 0;
}

int bfs_store_ctx_folder(struct bfs_store *s, const char *rel_prefix,
			 const char *skip_bucket, bfs_ctx_row_fn cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	char *upper = NULL;
	int rc = SQLITE_OK, r;

	if ((r = upper_of(rel_prefix, &upper)) != 0)
		return r;
	store_lock(s);
	r = prepare(s, CTX_BUCKETS
		    "SELECT b.name, substr(f.key, length(b.p) + 1), f.size,"
		    " f.mode, f.uid, f.gid, f.mtime, f.etag, 1 FROM b CROSS JOIN files f"
		    " ON f.bucket_id = b.id AND f.key >= b.p || ?1"
		    " AND f.key < b.p || ?2 WHERE ?3 IS NULL OR b.name <> ?3"
		    " ORDER BY 1, 2", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, rel_prefix);
	bind_str(&rc, st, 2, upper);
	bind_str(&rc, st, 3, skip_bucket);
	r = rc == SQLITE_OK ? ctx_rows(s, st, cb, arg, "list a context folder") :
			      db_fail(s, rc, NULL, 0, "list a context folder");
out:
	r = ctx_outage(s, r);
	sqlite3_finalize(st);
	store_unlock(s);
	free(upper);
	return r;
}

int bfs_store_ctx_ids(struct bfs_store *s, int type, bfs_ctx_row_fn cb,
		      void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	if (type != 0 && type != 1)
		return BFS_ERR_INVAL;
	store_lock(s);
	r = prepare(s, CTX_BUCKETS
		    "SELECT DISTINCT '', substr(r, 1, instr(r, '/') - 1),"
		    " 0, 0, 0, 0, 0, NULL, 0 FROM (SELECT substr(f.key,"
		    " length(b.p) + 6) AS r FROM b CROSS JOIN files f"
		    " ON f.bucket_id = b.id AND f.key >= b.p || ?1"
		    " AND f.key < b.p || ?2) AS x WHERE instr(r, '/') > 1"
		    " ORDER BY 2", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, type == 0 ? "chat/" : "form/");
	bind_str(&rc, st, 2, type == 0 ? "chat0" : "form0");
	r = rc == SQLITE_OK ? ctx_rows(s, st, cb, arg, "list context ids") :
			      db_fail(s, rc, NULL, 0, "list context ids");
out:
	r = ctx_outage(s, r);
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

int bfs_store_ctx_stats(struct bfs_store *s, bfs_ctx_row_fn cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	int r;

	store_lock(s);
	r = prepare(s, CTX_BUCKETS
		    ", x AS (SELECT b.name AS bn, substr(f.key, length(b.p) + 1)"
		    " AS r, f.size AS sz FROM b CROSS JOIN files f ON f.bucket_id = b.id)"
		    " SELECT bn, substr(r, 1, 5 + instr(substr(r, 6), '/') - 1),"
		    " coalesce(sum(sz), 0), 0, 0, 0, 0, NULL, 0, count(*) FROM x"
		    " WHERE substr(r, 1, 5) IN ('chat/', 'form/')"
		    " AND instr(substr(r, 6), '/') > 1"
		    " GROUP BY 2, 1 ORDER BY 2, 1", &st, NULL, 0);
	if (r == 0)
		r = ctx_rows(s, st, cb, arg, "count context files");
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}

/* ---- moves in progress (bucketctl context move) ---- */

int bfs_store_move_note(struct bfs_store *s, const char *key,
			const char *value)
{
	int r;

	store_lock(s);
	if (value)
		r = exec_sql(s, "INSERT INTO settings (key, value) VALUES (?1, ?2)"
			     " ON CONFLICT (key) DO UPDATE SET value ="
			     " excluded.value", key, value, NULL, 0);
	else
		r = exec_sql(s, "DELETE FROM settings WHERE key = ?1", key, NULL,
			     NULL, 0);
	store_unlock(s);
	return r;
}

int bfs_store_move_list(struct bfs_store *s, const char *prefix,
			bfs_setting_fn cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, r;

	store_lock(s);
	r = prepare(s, "SELECT key, value FROM settings WHERE"
		    " substr(CAST(key AS BLOB), 1, ?2) = CAST(?1 AS BLOB)"
		    " ORDER BY key", &st, NULL, 0);
	if (r != 0)
		goto out;
	bind_str(&rc, st, 1, prefix);
	bind_i64(&rc, st, 2, (int64_t)strlen(prefix));
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);

		if (k && v && (r = cb(arg, k, v)) != 0)
			goto out;
		rc = SQLITE_OK;
	}
	r = rc == SQLITE_DONE ? 0 : db_fail(s, rc, NULL, 0, "list moves");
out:
	sqlite3_finalize(st);
	store_unlock(s);
	return r;
}
