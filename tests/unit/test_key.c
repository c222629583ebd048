/*
 * test_key.c - key safety rules, path -> key mapping, name validators,
 * UTF-8 edge cases and content types (src/util/key.c).
 */
#include <stdlib.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_key.h"
#include "unit.h"

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

#define U8(s) bfs_utf8_valid((s), sizeof(s) - 1)

START_TEST(utf8_valid_sequences)
{
	ck_assert_int_eq(U8(""), 1);
	ck_assert_int_eq(U8("plain ascii"), 1);
	ck_assert_int_eq(U8("\xc2\x80"), 1);              /* U+0080 */
	ck_assert_int_eq(U8("\xdf\xbf"), 1);              /* U+07FF */
	ck_assert_int_eq(U8("\xe0\xa0\x80"), 1);          /* U+0800 */
	ck_assert_int_eq(U8("\xed\x9f\xbf"), 1);          /* U+D7FF */
	ck_assert_int_eq(U8("\xee\x80\x80"), 1);          /* U+E000 */
	ck_assert_int_eq(U8("\xef\xbf\xbf"), 1);          /* U+FFFF */
	ck_assert_int_eq(U8("\xf0\x90\x80\x80"), 1);      /* U+10000 */
	ck_assert_int_eq(U8("\xf4\x8f\xbf\xbf"), 1);      /* U+10FFFF */
	ck_assert_int_eq(U8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 1);
	/* Control characters are UTF-8; keys reject them separately. */
	ck_assert_int_eq(bfs_utf8_valid("a\0b", 3), 1);
}
END_TEST

START_TEST(utf8_invalid_sequences)
{
	ck_assert_int_eq(U8("\x80"), 0);                  /* lone continuation */
	ck_assert_int_eq(U8("\xbf"), 0);
	ck_assert_int_eq(U8("\xc0\x80"), 0);              /* overlong NUL */
	ck_assert_int_eq(U8("\xc1\xbf"), 0);              /* overlong */
	ck_assert_int_eq(U8("\xc0\xaf"), 0);              /* overlong '/' */
	ck_assert_int_eq(U8("\xe0\x80\xaf"), 0);          /* overlong '/' */
	ck_assert_int_eq(U8("\xe0\x9f\xbf"), 0);          /* overlong U+07FF */
	ck_assert_int_eq(U8("\xf0\x80\x80\xaf"), 0);      /* overlong '/' */
	ck_assert_int_eq(U8("\xf0\x8f\xbf\xbf"), 0);      /* overlong U+FFFF */
	ck_assert_int_eq(U8("\xed\xa0\x80"), 0);          /* U+D800 */
	ck_assert_int_eq(U8("\xed\xbf\xbf"), 0);          /* U+DFFF */
	ck_assert_int_eq(U8("\xf4\x90\x80\x80"), 0);      /* U+110000 */
	ck_assert_int_eq(U8("\xf5\x80\x80\x80"), 0);
	ck_assert_int_eq(U8("\xf8\x88\x80\x80\x80"), 0);  /* 5-byte form */
	ck_assert_int_eq(U8("\xfe"), 0);
	ck_assert_int_eq(U8("\xff"), 0);
	ck_assert_int_eq(U8("\xc3"), 0);                  /* truncated */
	ck_assert_int_eq(U8("\xe2\x82"), 0);
	ck_assert_int_eq(U8("\xf0\x9f\x98"), 0);
	ck_assert_int_eq(U8("\xc3("), 0);                 /* bad continuation */
	ck_assert_int_eq(U8("\xe2\x28\xa1"), 0);
	ck_assert_int_eq(U8("\xe2\x82\x28"), 0);
	ck_assert_int_eq(U8("\xf0\x9f\x28\x80"), 0);
	ck_assert_int_eq(U8("ok\xc3\xa9then\x80"), 0);
	/* The length is honoured: a valid prefix of a longer buffer. */
	ck_assert_int_eq(bfs_utf8_valid("\xc3\xa9\xc3", 2), 1);
	ck_assert_int_eq(bfs_utf8_valid("\xc3\xa9\xc3", 3), 0);
}
END_TEST

START_TEST(segment_rules)
{
	char *s;

	ck_assert_int_eq(bfs_key_segment_check("a", 1), 0);
	ck_assert_int_eq(bfs_key_segment_check("...", 3), 0);
	ck_assert_int_eq(bfs_key_segment_check(".hidden", 7), 0);
	ck_assert_int_eq(bfs_key_segment_check("a b", 3), 0);
	ck_assert_int_eq(bfs_key_segment_check("caf\xc3\xa9", 5), 0);
	ck_assert_int_eq(bfs_key_segment_check("", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check(".", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("..", 2), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("a/b", 3), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("a\0b", 3), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("a\nb", 3), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("a\x1f", 2), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("a\x7f", 2), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("\t", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_segment_check("\xc0\xaf", 2), BFS_ERR_INVAL);
	/* Only len bytes are looked at. */
	ck_assert_int_eq(bfs_key_segment_check("ab/", 2), 0);
	s = repeat('x', 255);
	ck_assert_int_eq(bfs_key_segment_check(s, 255), 0);
	free(s);
	s = repeat('x', 256);
	ck_assert_int_eq(bfs_key_segment_check(s, 256), BFS_ERR_NAMETOOLONG);
	s[100] = '\n';   /* a long bad name is bad first */
	ck_assert_int_eq(bfs_key_segment_check(s, 256), BFS_ERR_INVAL);
	free(s);
}
END_TEST

START_TEST(key_rules)
{
	char *s;

	ck_assert_int_eq(bfs_key_check("a", 0), 0);
	ck_assert_int_eq(bfs_key_check("a/b/c.txt", 0), 0);
	ck_assert_int_eq(bfs_key_check("a/b/", 1), 0);
	ck_assert_int_eq(bfs_key_check("a/b/", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/b//", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("/", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check(NULL, 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("/a", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a//b", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/./b", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/../b", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("..", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("../", 1), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/..", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/\x01", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a\rb", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/\xed\xa0\x80", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("a/\xff", 0), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_check("..a/b..", 0), 0);

	/* Total length: 1024 is fine, 1025 is too long. */
	s = repeat('a', 1024);
	for (size_t i = 200; i < 1024; i += 201)
		s[i] = '/';
	ck_assert_int_eq(bfs_key_check(s, 0), 0);
	free(s);
	s = repeat('a', 1025);
	for (size_t i = 200; i < 1025; i += 201)
		s[i] = '/';
	ck_assert_int_eq(bfs_key_check(s, 0), BFS_ERR_NAMETOOLONG);
	free(s);
	s = repeat('a', 300);      /* one segment over 255 */
	ck_assert_int_eq(bfs_key_check(s, 0), BFS_ERR_NAMETOOLONG);
	s[299] = '\x7f';
	ck_assert_int_eq(bfs_key_check(s, 0), BFS_ERR_INVAL);
	free(s);
}
END_TEST

START_TEST(key_huge_garbage)
{
	size_t n = (1u << 20) + 17, i;
	char *s = malloc(n + 1);
	unsigned v = 12345;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < n; i++) {
		v = v * 1103515245u + 12345u;
		s[i] = (char)((v >> 16) | 1);   /* never NUL */
	}
	s[n] = '\0';
	ck_assert_int_eq(bfs_key_check(s, 1), BFS_ERR_INVAL);
	memset(s, 'a', n);
	for (i = 100; i < n; i += 101)
		s[i] = '/';
	ck_assert_int_eq(bfs_key_check(s, 0), BFS_ERR_NAMETOOLONG);
	ck_assert_ptr_null(bfs_key_strip_prefix("", s));
	free(s);
}
END_TEST

START_TEST(from_path)
{
	char *k = (char *)1, *long_rel;

	ck_assert_int_eq(bfs_key_from_path("", "a/b.txt", 0, &k), 0);
	ck_assert_str_eq(k, "a/b.txt");
	free(k);
	ck_assert_int_eq(bfs_key_from_path("app1/", "a/b.txt", 0, &k), 0);
	ck_assert_str_eq(k, "app1/a/b.txt");
	free(k);
	ck_assert_int_eq(bfs_key_from_path(NULL, "x", 0, &k), 0);
	ck_assert_str_eq(k, "x");
	free(k);
	ck_assert_int_eq(bfs_key_from_path("app1/", "dir", 1, &k), 0);
	ck_assert_str_eq(k, "app1/dir/");
	free(k);
	/* The bucket root is the prefix itself. */
	ck_assert_int_eq(bfs_key_from_path("app1/", "", 0, &k), 0);
	ck_assert_str_eq(k, "app1/");
	free(k);
	ck_assert_int_eq(bfs_key_from_path("app1/", "", 1, &k), 0);
	ck_assert_str_eq(k, "app1/");
	free(k);
	ck_assert_int_eq(bfs_key_from_path("", "", 1, &k), 0);
	ck_assert_str_eq(k, "");
	free(k);

	k = (char *)1;
	ck_assert_int_eq(bfs_key_from_path("app1/", "/abs", 0, &k), BFS_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(bfs_key_from_path("", "/abs", 0, &k), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_from_path("", "a/../b", 0, &k), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_from_path("", "a/", 0, &k), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_from_path("", "a\nb", 0, &k), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_key_from_path("", NULL, 0, &k), BFS_ERR_INVAL);
	ck_assert_ptr_null(k);

	/* The prefix counts toward the 1024-byte limit. */
	long_rel = repeat('r', 1000);
	for (size_t i = 200; i < 1000; i += 201)
		long_rel[i] = '/';
	ck_assert_int_eq(bfs_key_from_path("", long_rel, 0, &k), 0);
	free(k);
	ck_assert_int_eq(bfs_key_from_path("0123456789abcdefghijklmn/", long_rel,
					   0, &k), BFS_ERR_NAMETOOLONG);
	ck_assert_ptr_null(k);
	/* dir adds the trailing '/', also counted. */
	long_rel[999] = 'r';
	{
		char *rel = repeat('r', 1024);

		for (size_t i = 200; i < 1024; i += 201)
			rel[i] = '/';
		ck_assert_int_eq(bfs_key_from_path("", rel, 0, &k), 0);
		free(k);
		ck_assert_int_eq(bfs_key_from_path("", rel, 1, &k), BFS_ERR_NAMETOOLONG);
		rel[1] = '\x01';
		ck_assert_int_eq(bfs_key_from_path("p/", rel, 1, &k), BFS_ERR_INVAL);
		free(rel);
	}
	free(long_rel);
}
END_TEST

START_TEST(strip_prefix)
{
	const char *k = "app1/a/b.txt";

	ck_assert_ptr_eq(bfs_key_strip_prefix("app1/", k), k + 5);
	ck_assert_ptr_eq(bfs_key_strip_prefix("", k), k);
	ck_assert_ptr_eq(bfs_key_strip_prefix(NULL, k), k);
	ck_assert_str_eq(bfs_key_strip_prefix("app1/", "app1/dir/"), "dir/");
	ck_assert_ptr_null(bfs_key_strip_prefix("app2/", k));
	ck_assert_ptr_null(bfs_key_strip_prefix("app1/", "app1/"));
	ck_assert_ptr_null(bfs_key_strip_prefix("app1/", "app1//x"));
	ck_assert_ptr_null(bfs_key_strip_prefix("app1/", "app1/../x"));
	ck_assert_ptr_null(bfs_key_strip_prefix("app1/", "app1/a/./x"));
	ck_assert_ptr_null(bfs_key_strip_prefix("", "x\ty"));
	ck_assert_ptr_null(bfs_key_strip_prefix("", "x\xc0\x80"));
	ck_assert_ptr_null(bfs_key_strip_prefix("", ""));
	ck_assert_ptr_null(bfs_key_strip_prefix("", NULL));
	{
		/* 1020 bytes after a 10-byte prefix: over the total cap. */
		char *key = repeat('k', 1030);

		memcpy(key, "prefix123/", 10);
		for (size_t i = 210; i < 1030; i += 201)
			key[i] = '/';
		ck_assert_ptr_null(bfs_key_strip_prefix("prefix123/", key));
		key[1024] = '\0';
		ck_assert_ptr_eq(bfs_key_strip_prefix("prefix123/", key), key + 10);
		free(key);
	}
}
END_TEST

START_TEST(bucket_names)
{
	char *s;

	ck_assert_int_eq(bfs_bucket_name_valid("media"), 1);
	ck_assert_int_eq(bfs_bucket_name_valid("a"), 1);
	ck_assert_int_eq(bfs_bucket_name_valid("0a.b_c-d"), 1);
	ck_assert_int_eq(bfs_bucket_name_valid(""), 0);
	ck_assert_int_eq(bfs_bucket_name_valid(NULL), 0);
	ck_assert_int_eq(bfs_bucket_name_valid(".defaults"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("@x"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("-x"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("_x"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("Media"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("a b"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("a/b"), 0);
	ck_assert_int_eq(bfs_bucket_name_valid("caf\xc3\xa9"), 0);
	s = repeat('a', 63);
	ck_assert_int_eq(bfs_bucket_name_valid(s), 1);
	free(s);
	s = repeat('a', 64);
	ck_assert_int_eq(bfs_bucket_name_valid(s), 0);
	free(s);
}
END_TEST

START_TEST(ctx_ids)
{
	char *s;

	ck_assert_int_eq(bfs_ctx_id_valid("abc"), 1);
	ck_assert_int_eq(bfs_ctx_id_valid("A-Z_09"), 1);
	ck_assert_int_eq(bfs_ctx_id_valid("-"), 1);
	ck_assert_int_eq(bfs_ctx_id_valid(""), 0);
	ck_assert_int_eq(bfs_ctx_id_valid(NULL), 0);
	ck_assert_int_eq(bfs_ctx_id_valid("a.b"), 0);
	ck_assert_int_eq(bfs_ctx_id_valid("a/b"), 0);
	ck_assert_int_eq(bfs_ctx_id_valid("a b"), 0);
	s = repeat('x', 128);
	ck_assert_int_eq(bfs_ctx_id_valid(s), 1);
	free(s);
	s = repeat('x', 129);
	ck_assert_int_eq(bfs_ctx_id_valid(s), 0);
	free(s);
}
END_TEST

START_TEST(content_types)
{
	static const struct { const char *name, *type; } t[] = {
		{ "a.txt", "text/plain" }, { "a.html", "text/html" },
		{ "a.htm", "text/html" }, { "a.css", "text/css" },
		{ "a.js", "text/javascript" }, { "a.json", "application/json" },
		{ "a.xml", "application/xml" }, { "a.pdf", "application/pdf" },
		{ "a.png", "image/png" }, { "a.jpg", "image/jpeg" },
		{ "a.jpeg", "image/jpeg" }, { "a.gif", "image/gif" },
		{ "a.webp", "image/webp" }, { "a.svg", "image/svg+xml" },
		{ "a.ico", "image/x-icon" }, { "a.mp3", "audio/mpeg" },
		{ "a.mp4", "video/mp4" }, { "a.webm", "video/webm" },
		{ "a.ogg", "audio/ogg" }, { "a.wav", "audio/wav" },
		{ "a.zip", "application/zip" }, { "a.gz", "application/gzip" },
		{ "a.tgz", "application/gzip" }, { "a.tar", "application/x-tar" },
		{ "a.bz2", "application/x-bzip2" }, { "a.xz", "application/x-xz" },
		{ "a.7z", "application/x-7z-compressed" }, { "a.csv", "text/csv" },
		{ "a.md", "text/markdown" }, { "a.doc", "application/msword" },
		{ "a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
		{ "a.xls", "application/vnd.ms-excel" },
		{ "a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
		{ "a.ppt", "application/vnd.ms-powerpoint" },
		{ "a.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
		{ "a.odt", "application/vnd.oasis.opendocument.text" },
		{ "a.wasm", "application/wasm" }, { "a.bin", "application/octet-stream" },
		/* case, paths, multiple dots */
		{ "PHOTO.JPG", "image/jpeg" }, { "x/y/Page.HtMl", "text/html" },
		{ "backup.tar.gz", "application/gzip" }, { "a.b/c", "application/octet-stream" },
		/* defaults */
		{ "README", "application/octet-stream" }, { ".bashrc", "application/octet-stream" },
		{ "dir/.png", "application/octet-stream" }, { "a.", "application/octet-stream" },
		{ "a.unknownext", "application/octet-stream" }, { "", "application/octet-stream" },
		{ "a.txtx", "application/octet-stream" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(strcmp(bfs_content_type(t[i].name), t[i].type) == 0,
			      "%s -> %s, want %s", t[i].name,
			      bfs_content_type(t[i].name), t[i].type);
	ck_assert_str_eq(bfs_content_type(NULL), "application/octet-stream");
}
END_TEST

Suite *key_suite(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, utf8_valid_sequences);
	tcase_add_test(tc, utf8_invalid_sequences);
	tcase_add_test(tc, segment_rules);
	tcase_add_test(tc, key_rules);
	tcase_add_test(tc, key_huge_garbage);
	tcase_add_test(tc, from_path);
	tcase_add_test(tc, strip_prefix);
	tcase_add_test(tc, bucket_names);
	tcase_add_test(tc, ctx_ids);
	tcase_add_test(tc, content_types);
	suite_add_tcase(s, tc);
	return s;
}
