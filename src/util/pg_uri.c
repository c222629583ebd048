/*
 * pg_uri.c - checks a postgresql:// catalog URI (see bfs_pg.h).
 *
 * libpq's own parser (PQconninfoParse) splits the URI into its keywords;
 * we then refuse what the catalog must not get: a password, no database,
 * no host, an unknown sslmode.  Parse messages from libpq are not passed
 * on verbatim (they may quote the URI, and a URI may hold a password).
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "bfs_error.h"
#include "bfs_pg.h"

int bfs_pg_is_uri(const char *s)
{
	return s && (strncmp(s, "postgresql://", 13) == 0 ||
		     strncmp(s, "postgres://", 11) == 0);
}

static int sslmode_ok(const char *v)
{
	static const char *const modes[] = {
		"disable", "allow", "prefer", "require", "verify-ca",
		"verify-full"
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(v, modes[i]) == 0)
			return 1;
	return 0;
}

int bfs_pg_uri_check(const char *uri, char *reason, size_t rlen)
{
	PQconninfoOption *opts = NULL, *o;
	char *perr = NULL;
	const char *host = NULL, *db = NULL;
	int r = BFS_ERR_CONFIG;

	if (!bfs_pg_is_uri(uri)) {
		snprintf(reason, rlen, "expected postgresql://USER@HOST:PORT/DB");
		goto out;
	}
	opts = PQconninfoParse(uri, &perr);
	if (!opts) {
		snprintf(reason, rlen, "not a valid postgresql:// URI "
			 "(expected postgresql://USER@HOST:PORT/DB?sslmode=...)");
		goto out;
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			snprintf(reason, rlen, "a password in the URI is refused; "
				 "use database_password_file or "
				 "database_password = env:VAR");
			goto out;
		}
		if (strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "sslmode") == 0 &&
			 !sslmode_ok(o->val)) {
			snprintf(reason, rlen, "sslmode '%.32s' is not one of "
				 "disable, allow, prefer, require, verify-ca, "
				 "verify-full", o->val);
			goto out;
		}
	}
	if (!host) {
		snprintf(reason, rlen, "the URI names no host");
		goto out;
	}
	if (!db) {
		snprintf(reason, rlen, "the URI names no database "
			 "(postgresql://USER@HOST:PORT/DB)");
		goto out;
	}
	r = 0;
out:
	PQfreemem(perr);
	PQconninfoFree(opts);
	return r;
}
