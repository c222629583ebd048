/* unit.h - suites of the unit test runner (weak: see run.c). */
#ifndef BFS_UNIT_H
#define BFS_UNIT_H

#include <check.h>

#define UNIT_SUITE(name) Suite *name(void) __attribute__((weak))
UNIT_SUITE(buf_suite);
UNIT_SUITE(key_suite);
UNIT_SUITE(config_suite);
UNIT_SUITE(ctlfile_suite);
UNIT_SUITE(crypto_suite);
UNIT_SUITE(store_suite);
UNIT_SUITE(sigv4_suite);
UNIT_SUITE(s3xml_suite);
UNIT_SUITE(local_suite);
UNIT_SUITE(xattr_suite);
UNIT_SUITE(pgsql_suite);
UNIT_SUITE(strset_suite);
UNIT_SUITE(view_suite);
UNIT_SUITE(azure_suite);
UNIT_SUITE(vfs_suite);
UNIT_SUITE(rest_suite);
UNIT_SUITE(pool_suite);
UNIT_SUITE(route_suite);
UNIT_SUITE(errno_suite);
UNIT_SUITE(cache_suite);

/* Directory holding test data (tests/), from $BUCKETFS_TESTS or ./tests. */
const char *unit_data_dir(void);

/*
 * Read the whole file at path into a NUL-terminated heap buffer (caller
 * frees); *len (when len is not NULL) gets its size.  Fails the running
 * test when the file cannot be opened or read.
 */
char *unit_read_file(const char *path, size_t *len);

/* Removes path and everything below it (symlinks not followed); "" and
 * NULL are nothing.  For fixtures: never fails the test. */
void unit_rm_tree(const char *path);

#endif
