/*
 * test_view.c - the context views' routing rule over plain data
 * (src/util/view.c): path parsing with ID validation, and the pick
 * assignment -> role default -> general default.
 */
#include <string.h>

#include "bfs_error.h"
#include "bfs_view.h"
#include "unit.h"

START_TEST(parse_views)
{
	struct bfs_view_path v;

	ck_assert_int_eq(bfs_view_parse("@general", &v), 0);
	ck_assert_int_eq(v.view, BFS_VIEW_GENERAL);
	ck_assert_str_eq(v.sub, "");
	ck_assert_int_eq(bfs_view_parse("@general/a/b.txt", &v), 0);
	ck_assert_str_eq(v.sub, "a/b.txt");
	ck_assert_int_eq(v.has_id, 0);

	ck_assert_int_eq(bfs_view_parse("@chat", &v), 0);
	ck_assert_int_eq(v.view, BFS_VIEW_CHAT);
	ck_assert_int_eq(v.has_id, 0);
	ck_assert_int_eq(bfs_view_parse("@chat/team42", &v), 0);
	ck_assert_int_eq(v.has_id, 1);
	ck_assert_str_eq(v.id, "team42");
	ck_assert_str_eq(v.sub, "");
	ck_assert_int_eq(bfs_view_parse("@form/F_1-x/dir/p.pdf", &v), 0);
	ck_assert_int_eq(v.view, BFS_VIEW_FORM);
	ck_assert_str_eq(v.id, "F_1-x");
	ck_assert_str_eq(v.sub, "dir/p.pdf");

	/* other @ names are reserved, not views */
	ck_assert_int_eq(bfs_view_parse("@chats", &v), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_view_parse("@", &v), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_view_parse("@gen", &v), BFS_ERR_NOTFOUND);
}
END_TEST

START_TEST(parse_bad_ids)
{
	static const char *const bad[] = {
		"@chat/a.b", "@chat/a b", "@chat/caf\xc3\xa9", "@form/x!y/f",
		"@chat/a%2f", "@form/..", "@chat/.",
	};
	struct bfs_view_path v;
	char path[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(bfs_view_parse(bad[i], &v) == BFS_ERR_INVAL,
			      "%s", bad[i]);
	memset(path, 0, sizeof(path));
	memcpy(path, "@chat/", 6);
	memset(path + 6, 'x', 128);
	ck_assert_int_eq(bfs_view_parse(path, &v), 0);
	ck_assert_uint_eq(strlen(v.id), 128);
	path[6 + 128] = 'x';                  /* 129 characters */
	ck_assert_int_eq(bfs_view_parse(path, &v), BFS_ERR_INVAL);
	memcpy(path + 6 + 128, "/f", 3);
	path[6 + 127] = '\0';
	ck_assert_int_eq(bfs_view_parse(path, &v), 0);
}
END_TEST

static const struct bfs_view_assign as[] = {
	{ 0, "a1", "alpha" },
	{ 0, "b2", "beta" },
	{ 1, "a1", "gamma" },
	{ 1, "zz", "beta" },
};

START_TEST(pick_rule)
{
	struct bfs_view_rules r;
	const char *why;

	memset(&r, 0, sizeof(r));
	r.as = as;
	r.nas = 4;
	/* assignment first, per type */
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_CHAT, "a1", &why), "alpha");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_FORM, "a1", &why), "gamma");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_FORM, "zz", &why), "beta");
	/* nothing else: no bucket, and why */
	ck_assert_ptr_null(bfs_view_pick(&r, BFS_VIEW_CHAT, "zz", &why));
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "chat default"));
	ck_assert_ptr_null(bfs_view_pick(&r, BFS_VIEW_GENERAL, NULL, &why));
	ck_assert_ptr_nonnull(strstr(why, "general"));
	/* then the general default */
	r.def[BFS_ROLE_GENERAL] = "gen";
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_CHAT, "zz", NULL), "gen");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_FORM, "other", NULL), "gen");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_GENERAL, NULL, NULL), "gen");
	/* the role default comes before the general default */
	r.def[BFS_ROLE_CHAT] = "chats";
	r.def[BFS_ROLE_FORMS] = "forms";
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_CHAT, "zz", NULL), "chats");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_CHAT, NULL, NULL), "chats");
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_FORM, "q", NULL), "forms");
	/* ...and after the assignment */
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_CHAT, "b2", NULL), "beta");
	/* the general view never uses the chat or forms default */
	r.def[BFS_ROLE_GENERAL] = NULL;
	ck_assert_ptr_null(bfs_view_pick(&r, BFS_VIEW_GENERAL, NULL, NULL));
	ck_assert_str_eq(bfs_view_pick(&r, BFS_VIEW_FORM, "q", NULL), "forms");
	/* an empty default is unset */
	r.def[BFS_ROLE_FORMS] = "";
	ck_assert_ptr_null(bfs_view_pick(&r, BFS_VIEW_FORM, "q", NULL));
}
END_TEST

START_TEST(assign_find)
{
	struct bfs_view_rules r;

	memset(&r, 0, sizeof(r));
	r.as = as;
	r.nas = 4;
	ck_assert_int_eq(bfs_view_assign_find(&r, 0, "a1"), 0);
	ck_assert_int_eq(bfs_view_assign_find(&r, 0, "b2"), 1);
	ck_assert_int_eq(bfs_view_assign_find(&r, 1, "a1"), 2);
	ck_assert_int_eq(bfs_view_assign_find(&r, 1, "zz"), 3);
	ck_assert_int_eq(bfs_view_assign_find(&r, 1, "b2"), -1);
	ck_assert_int_eq(bfs_view_assign_find(&r, 0, "zz"), -1);
	r.nas = 0;
	ck_assert_int_eq(bfs_view_assign_find(&r, 0, "a1"), -1);
}
END_TEST

Suite *view_suite(void)
{
	Suite *s = suite_create("view");
	TCase *tc = tcase_create("view");

	tcase_add_test(tc, parse_views);
	tcase_add_test(tc, parse_bad_ids);
	tcase_add_test(tc, pick_rule);
	tcase_add_test(tc, assign_find);
	suite_add_tcase(s, tc);
	return s;
}
