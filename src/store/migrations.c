/*
 * migrations.c - the numbered schema migrations of the metadata store.
 *
 * migrations[i] builds schema version i + 1 from version i.  A migration is
 * never edited once released: schema changes append a new entry.  The
 * version lives in PRAGMA user_version; each step runs in one transaction
 * that re-reads the version after taking the write lock, so two processes
 * opening a fresh database at once do not both apply it.
 *
 * Names follow the seed (storage_buckets, files, assignments); managed_by
 * and settings are ours.  Timestamps of version 1 are 'YYYY-MM-DD HH:MM:SS'
 * UTC text as CURRENT_TIMESTAMP writes them; the upload journal (version
 * 2) keeps unix seconds as INTEGER, since its rows are read back by age.
 */
#include <stdio.h>

#include "bfs_error.h"
#include "store_int.h"

static const char *const migrations[] = {
	/* 1: buckets, defaults (partial unique indexes), file index,
	 *    assignments, internal settings. */
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
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);",
	/* 2: the durable upload journal: one row per file whose data was
	 *    acknowledged but is not yet stored by its provider. */
	"CREATE TABLE upload_journal ("
	" id INTEGER PRIMARY KEY,"
	" bucket_id TEXT NOT NULL REFERENCES storage_buckets(id),"
	" key TEXT NOT NULL,"
	" staging_path TEXT NOT NULL,"
	" base_etag TEXT,"
	" size INTEGER,"
	" mode INTEGER,"
	" uid INTEGER,"
	" gid INTEGER,"
	" mtime INTEGER,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" UNIQUE (bucket_id, key));",
	/* 3: resumable multipart uploads: the upload id a journal row's data
	 *    is being sent to with its part plan, and every upload id the
	 *    daemon created (bucket by name, no reference: a row outlives
	 *    its bucket until the id is aborted), so none is ever lost. */
	"ALTER TABLE upload_journal ADD COLUMN upload_id TEXT;"
	"ALTER TABLE upload_journal ADD COLUMN part_size INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE upload_journal ADD COLUMN part_grow INTEGER NOT NULL"
	" DEFAULT 0;"
	"CREATE TABLE multipart_uploads ("
	" upload_id TEXT PRIMARY KEY,"
	" bucket TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" created_at INTEGER NOT NULL);",
	/* 4: what listings may take without
	 *    a HEAD.  files.last_modified: the LastModified a listing showed
	 *    with the row's etag (NULL until a listing shows it; cleared by
	 *    every write of the row).  object_meta: the metadata a HEAD
	 *    returned, valid while a listing shows the same etag, size and
	 *    LastModified (unix seconds). */
	"ALTER TABLE files ADD COLUMN last_modified INTEGER;"
	"CREATE TABLE object_meta ("
	" bucket_id TEXT NOT NULL REFERENCES storage_buckets(id)"
	"  ON DELETE CASCADE,"
	" key TEXT NOT NULL,"
	" etag TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" last_modified INTEGER NOT NULL,"
	" mode INTEGER,"
	" uid INTEGER,"
	" gid INTEGER,"
	" mtime INTEGER,"
	" mtime_nsec INTEGER,"
	" PRIMARY KEY (bucket_id, key));",
	/* 5: providers azure and gcs.  SQLite cannot ALTER a CHECK; widening
	 *    one is the "other schema change" sqlite.org documents
	 *    (lang_altertable.html#otheralter): edit the table's SQL in the
	 *    schema table.  Every stored row satisfies the wider check. */
	"PRAGMA writable_schema=ON;"
	"UPDATE sqlite_master SET sql = replace(sql,"
	" 'CHECK (provider IN (''r2'',''s3'',''local''))',"
	" 'CHECK (provider IN (''r2'',''s3'',''local'',''azure'',''gcs''))')"
	" WHERE type = 'table' AND name = 'storage_buckets';"
	"PRAGMA writable_schema=RESET;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int bfs_store_schema_version(void)
{
	return NMIGRATIONS;
}

static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int bfs_store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int v = 0, in_tx = 0, r = BFS_ERR_DB, rc;

	rc = user_version(db, &v);
	if (rc != SQLITE_OK)
		goto dberr;
	if (v > NMIGRATIONS) {
		snprintf(err, errlen, "%s: database schema version %d is newer "
			 "than this program's (%d)", path, v, NMIGRATIONS);
		goto out;
	}
	while (v < NMIGRATIONS) {
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto dberr;
		in_tx = 1;
		rc = user_version(db, &v);
		if (rc != SQLITE_OK)
			goto dberr;
		if (v < NMIGRATIONS) {
			rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
			if (rc != SQLITE_OK)
				goto dberr;
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
			if (rc != SQLITE_OK)
				goto dberr;
		}
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto dberr;
		in_tx = 0;
		rc = user_version(db, &v);
		if (rc != SQLITE_OK)
			goto dberr;
	}
	r = 0;
	goto out;
dberr:
	snprintf(err, errlen, "%s: schema migration to version %d: %s", path,
		 v + 1, sqlite3_errmsg(db));
out:
	if (in_tx)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}
