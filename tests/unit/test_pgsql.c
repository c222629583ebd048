/*
 * test_pgsql.c - the PostgreSQL catalog's pure parts: the config's
 * postgresql:// URI checks (bfs_pg_uri_check and the database /
 * database_password keys) and the SQLite-to-PostgreSQL statement
 * translation of dialect.c (bfs_pg_sql).  Nothing here needs a server;
 * tests/integration/test_pg.py runs the statements against one.
 */
#include <stdlib.h>
#include <string.h>

#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_pg.h"
#include "../../src/store/sqldb.h"
#include "unit.h"

#define FAKE "/nonexistent-bfs-test/etc/bucketfs.conf"

static void uri_ok(const char *uri)
{
	char reason[256] = "";

	ck_assert_msg(bfs_pg_uri_check(uri, reason, sizeof(reason)) == 0,
		      "%s: %s", uri, reason);
}

/* Refused with a reason containing want and not the string secret. */
static void uri_bad(const char *uri, const char *want, const char *secret)
{
	char reason[256] = "";

	ck_assert_int_eq(bfs_pg_uri_check(uri, reason, sizeof(reason)),
			 BFS_ERR_CONFIG);
	ck_assert_msg(strstr(reason, want), "%s: got '%s'", uri, reason);
	if (secret)
		ck_assert_msg(!strstr(reason, secret), "%s leaked: %s", uri,
			      reason);
}

START_TEST(uri_checks)
{
	ck_assert(bfs_pg_is_uri("postgresql://h/db"));
	ck_assert(bfs_pg_is_uri("postgres://h/db"));
	ck_assert(!bfs_pg_is_uri("/var/lib/bucketfs.db"));
	ck_assert(!bfs_pg_is_uri("postgresql:/h/db"));
	uri_ok("postgresql://bfs@db.example.com:5432/bucketfs?sslmode=verify-full");
	uri_ok("postgres://bfs@127.0.0.1/bucketfs");
	uri_ok("postgresql://bfs@[::1]:5433/bucketfs?sslmode=require"
	       "&sslrootcert=/etc/ssl/ca.pem");
	uri_ok("postgresql://bfs@%2Frun%2Fpostgresql/bucketfs");
	uri_bad("postgresql://bfs:s3cr3tpw@h/db", "password in the URI",
		"s3cr3tpw");
	uri_bad("postgresql://bfs@h/db?password=s3cr3tpw",
		"password in the URI", "s3cr3tpw");
	uri_bad("postgresql://bfs@h/db?sslmode=maybe", "sslmode 'maybe'", NULL);
	uri_bad("postgresql://bfs@h/db?bogus=1", "not a valid", NULL);
	uri_bad("postgresql://bfs@h:notaport/db?x=s3cr3tpw", "not a valid",
		"s3cr3tpw");
	uri_bad("postgresql://bfs@h", "no database", NULL);
	uri_bad("postgresql:///db", "no host", NULL);
	uri_bad("mysql://h/db", "expected postgresql://", NULL);
}
END_TEST

START_TEST(config_keys)
{
	struct bfs_config *c = NULL;
	char err[512] = "";

	setenv("BFS_UNIT_PGPW", "pw-from-env", 1);
	ck_assert_int_eq(bfs_config_parse(
		"[bucketfs]\ndatabase = postgresql://bfs@h:5432/db"
		"?sslmode=verify-full\ndatabase_password = env:BFS_UNIT_PGPW\n",
		FAKE, &c, err, sizeof(err)), 0);
	/* The URI is kept as written (not made a path), the password
	 * resolved. */
	ck_assert_str_eq(c->database,
			 "postgresql://bfs@h:5432/db?sslmode=verify-full");
	ck_assert_str_eq(c->database_password, "pw-from-env");
	bfs_config_free(c);
	c = NULL;
	ck_assert_int_eq(bfs_config_parse(
		"[bucketfs]\ndatabase = postgresql://bfs:pw@h/db\n", FAKE, &c,
		err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, FAKE ":2: key 'database': a password in the URI "
			 "is refused; use database_password_file or "
			 "database_password = env:VAR");
	ck_assert_int_eq(bfs_config_parse(
		"[bucketfs]\ndatabase_password = literal\n", FAKE, &c, err,
		sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_str_eq(err, FAKE ":2: key 'database_password': expected "
			 "env:VAR (or use database_password_file)");
	unsetenv("BFS_UNIT_PGPW");
	ck_assert_int_eq(bfs_config_parse(
		"[bucketfs]\ndatabase_password = env:BFS_UNIT_PGPW\n", FAKE, &c,
		err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_str_eq(err, FAKE ":2: key 'database_password': environment "
			 "variable BFS_UNIT_PGPW is not set");
	ck_assert_int_eq(bfs_config_parse(
		"[bucketfs]\ndatabase_password_file = /nonexistent-bfs/pw\n",
		FAKE, &c, err, sizeof(err)), BFS_ERR_CONFIG);
	ck_assert_msg(strstr(err, "key 'database_password_file': cannot open"),
		      "%s", err);
}
END_TEST

/* Translates sql and compares with want; names checked when given. */
static void tr(const char *sql, const char *want, int want_params)
{
	const char *names[BFS_PG_NAMES_MAX];
	size_t namelen[BFS_PG_NAMES_MAX];
	int nn = 0, np = 0;
	char *got = bfs_pg_sql(sql, names, namelen, &nn, &np);

	ck_assert_ptr_nonnull(got);
	ck_assert_msg(strcmp(got, want) == 0, "\n  sql:  %s\n  got:  %s\n"
		      "  want: %s", sql, got, want);
	ck_assert_int_eq(np, want_params);
	free(got);
}

START_TEST(dialect)
{
	const char *names[BFS_PG_NAMES_MAX];
	size_t namelen[BFS_PG_NAMES_MAX];
	int nn = 0, np = 0;
	char *got;

	tr("SELECT id FROM storage_buckets WHERE name = ?1",
	   "SELECT id FROM storage_buckets WHERE name = $1", 1);
	/* Literals are left alone, ? and : inside them too. */
	tr("SELECT '?1 :x ''q''' FROM t WHERE a = ?2",
	   "SELECT '?1 :x ''q''' FROM t WHERE a = $2", 2);
	tr("WHERE ?1 IS NULL OR b.name = ?1",
	   "WHERE $1::text IS NULL OR b.name = $1", 1);
	tr("SELECT json_extract(config_json, '$.bucket_name') FROM s",
	   "SELECT (config_json::jsonb ->> 'bucket_name') FROM s", 0);
	tr("json_object('a', ?5, 'b', json(CASE WHEN ?11 THEN 'true' ELSE"
	   " 'false' END))",
	   "json_build_object('a', $5::text, 'b', ((CASE WHEN $11 THEN"
	   " 'true' ELSE 'false' END)::json))", 11);
	tr("CAST(strftime('%s', f.created_at) AS INTEGER)",
	   "CAST(floor(extract(epoch from CAST(f.created_at AS timestamp)))"
	   " AS BIGINT)", 0);
	tr("CASE WHEN ?10 > 0 THEN datetime(?10, 'unixepoch') ELSE"
	   " CURRENT_TIMESTAMP END",
	   "CASE WHEN $10 > 0 THEN to_char(to_timestamp($10) AT TIME ZONE"
	   " 'UTC', 'YYYY-MM-DD HH24:MI:SS') ELSE to_char(now() AT TIME ZONE"
	   " 'UTC', 'YYYY-MM-DD HH24:MI:SS') END", 10);
	tr("substr(CAST(key AS BLOB), 1, ?3) = CAST(?2 AS BLOB) AND"
	   " instr(substr(CAST(x.key AS BLOB), ?3 + 1), CAST('/' AS BLOB)) = 0",
	   "substr(convert_to(key, 'UTF8'), 1, $3) = convert_to($2, 'UTF8') AND"
	   " position(convert_to('/', 'UTF8') in substr(convert_to(x.key,"
	   " 'UTF8'), $3 + 1)) = 0", 3);
	tr("?3 || CAST(substr(CAST(key AS BLOB), ?2 + 1) AS TEXT)",
	   "$3 || convert_from(substr(convert_to(key, 'UTF8'), $2 + 1), 'UTF8')",
	   3);
	tr("INSERT OR REPLACE INTO object_meta (bucket_id, key, etag, size)"
	   " SELECT id, ?2, ?3, ?4 FROM storage_buckets WHERE name = ?1",
	   "INSERT INTO object_meta (bucket_id, key, etag, size)"
	   " SELECT id, $2, $3, $4 FROM storage_buckets WHERE name = $1"
	   " ON CONFLICT (bucket_id, key) DO UPDATE SET etag = excluded.etag,"
	   " size = excluded.size", 4);
	/* SQLite's CROSS JOIN ... ON (a fixed join order) is a JOIN. */
	tr("FROM b CROSS JOIN files f ON f.bucket_id = b.id",
	   "FROM b JOIN files f ON f.bucket_id = b.id", 0);
	/* A word merely containing a rewritten name is not touched. */
	tr("SELECT my_json(x), json_extractor FROM t",
	   "SELECT my_json(x), json_extractor FROM t", 0);
	/* Named parameters follow the highest ?N, in order of appearance. */
	got = bfs_pg_sql("VALUES (?2, :owner, :mode, :owner)", names, namelen,
			 &nn, &np);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "VALUES ($2, $3, $4, $3)");
	ck_assert_int_eq(nn, 2);
	ck_assert_int_eq(np, 4);
	ck_assert_int_eq((int)namelen[0], 6);
	ck_assert(strncmp(names[0], ":owner", 6) == 0);
	ck_assert(strncmp(names[1], ":mode", 5) == 0);
	free(got);
	ck_assert_int_ge(bfs_pg_schema_version(), 1);
	ck_assert_ptr_nonnull(strstr(bfs_pg_migration(0),
				     "CREATE TABLE storage_buckets"));
	ck_assert_ptr_null(bfs_pg_migration(bfs_pg_schema_version()));
}
END_TEST

Suite *pgsql_suite(void)
{
	Suite *s = suite_create("pgsql");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, uri_checks);
	tcase_add_test(tc, config_keys);
	tcase_add_test(tc, dialect);
	suite_add_tcase(s, tc);
	return s;
}
