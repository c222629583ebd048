/*
 * store_int.h - internals shared by the files of src/store (not a public
 * header: only src/store includes sqlite3.h).
 */
#ifndef BFS_STORE_INT_H
#define BFS_STORE_INT_H

#include <stddef.h>
#include <sqlite3.h>

/* The schema version the migrations in migrations.c build. */
int bfs_store_schema_version(void);

/*
 * Brings the database on db up to the latest schema: each numbered
 * migration above PRAGMA user_version runs in its own BEGIN IMMEDIATE
 * transaction together with the user_version bump, so a crash or a
 * concurrent opener never sees half a migration.  A database newer than
 * this program is refused.  0 or BFS_ERR_DB with a message in err.
 */
int bfs_store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen);

#endif
