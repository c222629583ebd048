/*
 * test_strset.c - the string set (src/util/strset.c): add and find with
 * values, duplicates, growth across many resizes with every string still
 * found, strings that differ only at the end, the empty string, and free
 * leaving a reusable empty set.
 */
#include <stdio.h>
#include <string.h>

#include "bfs_strset.h"
#include "unit.h"

START_TEST(empty_set)
{
	struct bfs_strset ss = BFS_STRSET_INIT;
	size_t v = 7;

	ck_assert_int_eq(bfs_strset_find(&ss, "a", &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_uint_eq(bfs_strset_count(&ss), 0);
	bfs_strset_free(&ss);
	bfs_strset_free(&ss);       /* twice is safe */
}
END_TEST

START_TEST(add_find_duplicate)
{
	struct bfs_strset ss = BFS_STRSET_INIT;
	char name[8];
	size_t v = 0;

	ck_assert_int_eq(bfs_strset_add(&ss, "a", 1), 1);
	ck_assert_int_eq(bfs_strset_add(&ss, "a/", 2), 1);
	ck_assert_int_eq(bfs_strset_add(&ss, "", 3), 1);
	ck_assert_int_eq(bfs_strset_add(&ss, "a", 9), 0);   /* value stays */
	ck_assert_uint_eq(bfs_strset_count(&ss), 3);
	ck_assert_int_eq(bfs_strset_find(&ss, "a", &v), 1);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(bfs_strset_find(&ss, "a/", &v), 1);
	ck_assert_uint_eq(v, 2);
	ck_assert_int_eq(bfs_strset_find(&ss, "", NULL), 1);
	ck_assert_int_eq(bfs_strset_find(&ss, "b", NULL), 0);
	/* the set holds copies: the caller's buffer may change */
	snprintf(name, sizeof(name), "tmp");
	ck_assert_int_eq(bfs_strset_add(&ss, name, 4), 1);
	name[0] = 'x';
	ck_assert_int_eq(bfs_strset_find(&ss, "tmp", &v), 1);
	ck_assert_uint_eq(v, 4);
	ck_assert_int_eq(bfs_strset_find(&ss, "xmp", NULL), 0);
	bfs_strset_free(&ss);
	ck_assert_uint_eq(bfs_strset_count(&ss), 0);
	ck_assert_int_eq(bfs_strset_find(&ss, "a", NULL), 0);
	ck_assert_int_eq(bfs_strset_add(&ss, "a", 5), 1);   /* reusable */
	bfs_strset_free(&ss);
}
END_TEST

START_TEST(many_grow)
{
	struct bfs_strset ss = BFS_STRSET_INIT;
	char name[32];
	size_t i, v;

	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "file-%zu", i);
		ck_assert_int_eq(bfs_strset_add(&ss, name, i), 1);
	}
	ck_assert_uint_eq(bfs_strset_count(&ss), 20000);
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "file-%zu", i);
		ck_assert_int_eq(bfs_strset_find(&ss, name, &v), 1);
		ck_assert_uint_eq(v, i);
		ck_assert_int_eq(bfs_strset_add(&ss, name, 0), 0);
	}
	for (i = 20000; i < 20100; i++) {
		snprintf(name, sizeof(name), "file-%zu", i);
		ck_assert_int_eq(bfs_strset_find(&ss, name, NULL), 0);
	}
	ck_assert_uint_eq(bfs_strset_count(&ss), 20000);
	bfs_strset_free(&ss);
}
END_TEST

Suite *strset_suite(void)
{
	Suite *s = suite_create("strset");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, empty_set);
	tcase_add_test(tc, add_find_duplicate);
	tcase_add_test(tc, many_grow);
	suite_add_tcase(s, tc);
	return s;
}
