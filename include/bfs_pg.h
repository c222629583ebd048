/*
 * bfs_pg.h - the PostgreSQL catalog's connection string (INTERFACE.md
 * "Config file": database = postgresql://USER@HOST:PORT/DB?sslmode=...).
 *
 * The URI is parsed by libpq itself (PQconninfoParse), so what is accepted
 * here is exactly what the connection will use; on top of that it must
 * name a database and a host (or a socket folder), must not carry a
 * password (it goes in database_password_file or database_password =
 * env:VAR, never in a string that may be shown or logged), and any
 * sslmode must be one libpq knows.
 */
#ifndef BFS_PG_H
#define BFS_PG_H

#include <stddef.h>

/* Non-zero when s starts with postgresql:// or postgres://. */
int bfs_pg_is_uri(const char *s);

/*
 * 0 when uri is a usable catalog URI; else BFS_ERR_CONFIG with a one-line
 * reason (never quoting a password) in reason.
 */
int bfs_pg_uri_check(const char *uri, char *reason, size_t rlen);

#endif
