/*
 * test_ctlfile.c - parsing of .defaults / .assignments writes and the
 * rendering of .defaults (src/util/ctlfile.c): the whole-buffer parsers
 * (tcase "core") and the write-session parser fed in pieces ("session").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "unit.h"

/* Parses a .defaults write given as a C string literal. */
static int defs(const char *s, struct bfs_defaults_change *c, char *err,
		size_t errlen)
{
	return bfs_ctl_parse_defaults(s, strlen(s), c, err, errlen);
}

/* Asserts that a .defaults write fails with exactly `want`. */
static void defs_fail(const char *buf, size_t len, const char *want)
{
	struct bfs_defaults_change c;
	char err[256];

	memset(err, 'X', sizeof(err));
	ck_assert_int_eq(bfs_ctl_parse_defaults(buf, len, &c, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_str_eq(err, want);
	for (int i = 0; i < BFS_ROLE_COUNT; i++) {
		ck_assert_int_eq(c.touched[i], 0);
		ck_assert_ptr_null(c.bucket[i]);
	}
}

static void assign_fail(const char *buf, size_t len, const char *want)
{
	struct bfs_assign_change *a = (void *)1;
	size_t n = 99;
	char err[256];

	ck_assert_int_eq(bfs_ctl_parse_assignments(buf, len, &a, &n, err,
						   sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(a);
	ck_assert_uint_eq(n, 0);
}

#define DEFS_FAIL(lit, want) defs_fail((lit), sizeof(lit) - 1, (want))
#define ASSIGN_FAIL(lit, want) assign_fail((lit), sizeof(lit) - 1, (want))

START_TEST(ctx_types)
{
	ck_assert_str_eq(bfs_ctx_type_name(0), "chat");
	ck_assert_str_eq(bfs_ctx_type_name(1), "form");
	ck_assert_ptr_null(bfs_ctx_type_name(2));
	ck_assert_ptr_null(bfs_ctx_type_name(-1));
	ck_assert_int_eq(bfs_ctx_type_parse("chat"), 0);
	ck_assert_int_eq(bfs_ctx_type_parse("form"), 1);
	ck_assert_int_eq(bfs_ctx_type_parse("forms"), -1);
	ck_assert_int_eq(bfs_ctx_type_parse("Chat"), -1);
	ck_assert_int_eq(bfs_ctx_type_parse(""), -1);
	ck_assert_int_eq(bfs_ctx_type_parse(NULL), -1);
}
END_TEST

START_TEST(defaults_basic)
{
	struct bfs_defaults_change c;
	char err[128];

	ck_assert_int_eq(defs("general = media\nchat=scratch\n  forms\t=\tx.y-z_1 \n",
			      &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.touched[BFS_ROLE_GENERAL], 1);
	ck_assert_int_eq(c.touched[BFS_ROLE_CHAT], 1);
	ck_assert_int_eq(c.touched[BFS_ROLE_FORMS], 1);
	ck_assert_str_eq(c.bucket[BFS_ROLE_GENERAL], "media");
	ck_assert_str_eq(c.bucket[BFS_ROLE_CHAT], "scratch");
	ck_assert_str_eq(c.bucket[BFS_ROLE_FORMS], "x.y-z_1");
	bfs_defaults_change_clear(&c);
	ck_assert_ptr_null(c.bucket[0]);
	ck_assert_int_eq(c.touched[0], 0);
	bfs_defaults_change_clear(&c);     /* twice is safe */
	bfs_defaults_change_clear(NULL);
}
END_TEST

START_TEST(defaults_unset_comments_last_wins)
{
	struct bfs_defaults_change c;
	char err[128];

	ck_assert_int_eq(defs("# a comment\n\n   \n\t# indented comment\n"
			      "chat =\n"
			      "general = a\r\n"
			      "general = b\n",
			      &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.touched[BFS_ROLE_CHAT], 1);
	ck_assert_ptr_null(c.bucket[BFS_ROLE_CHAT]);       /* unset */
	ck_assert_int_eq(c.touched[BFS_ROLE_GENERAL], 1);
	ck_assert_str_eq(c.bucket[BFS_ROLE_GENERAL], "b"); /* last wins */
	ck_assert_int_eq(c.touched[BFS_ROLE_FORMS], 0);    /* not wiped */
	ck_assert_ptr_null(c.bucket[BFS_ROLE_FORMS]);
	bfs_defaults_change_clear(&c);

	/* Last wins also when the later line unsets. */
	ck_assert_int_eq(defs("forms = a\nforms =\n", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.touched[BFS_ROLE_FORMS], 1);
	ck_assert_ptr_null(c.bucket[BFS_ROLE_FORMS]);
	bfs_defaults_change_clear(&c);
}
END_TEST

START_TEST(defaults_no_trailing_newline_and_empty)
{
	struct bfs_defaults_change c;
	char err[128];

	/* What `echo -n` writes: the last line has no '\n', so it may not
	 * be complete: the whole session is refused. */
	DEFS_FAIL("chat = a\ngeneral = b",
		  "line 2: incomplete last line (no newline at the end)");
	DEFS_FAIL("forms=c\r",
		  "line 1: incomplete last line (no newline at the end)");
	ck_assert_int_eq(defs("forms=c\r\n", &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.bucket[BFS_ROLE_FORMS], "c");
	bfs_defaults_change_clear(&c);
	/* An empty write or only comments changes nothing. */
	ck_assert_int_eq(bfs_ctl_parse_defaults("", 0, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.touched[0] + c.touched[1] + c.touched[2], 0);
	ck_assert_int_eq(bfs_ctl_parse_defaults(NULL, 0, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(defs("# x\n\n", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.touched[0] + c.touched[1] + c.touched[2], 0);
	/* Only len bytes count. */
	ck_assert_int_eq(bfs_ctl_parse_defaults("chat = a\nbogus", 9, &c, err,
						sizeof(err)), 0);
	ck_assert_str_eq(c.bucket[BFS_ROLE_CHAT], "a");
	bfs_defaults_change_clear(&c);
}
END_TEST

START_TEST(defaults_errors)
{
	DEFS_FAIL("bogus = media\n", "line 1: unknown role 'bogus'");
	DEFS_FAIL("general = a\nGeneral = b\n", "line 2: unknown role 'General'");
	DEFS_FAIL("chat = a\n\n# c\ngeneral media\n",
		  "line 4: missing '=' in 'general media'");
	DEFS_FAIL("general = Media\n", "line 1: bad bucket name 'Media'");
	DEFS_FAIL("general = .defaults\n", "line 1: bad bucket name '.defaults'");
	DEFS_FAIL("general = a b\n", "line 1: bad bucket name 'a b'");
	DEFS_FAIL("general = @x\n", "line 1: bad bucket name '@x'");
	DEFS_FAIL("= media\n", "line 1: unknown role ''");
	DEFS_FAIL("chat = a\ngeneral = a\0b\n", "line 2: NUL byte");
	DEFS_FAIL("general = a\x01\n", "line 1: control character");
	DEFS_FAIL("general = a\x7f\n", "line 1: control character");
	DEFS_FAIL("general = a\x1b[31m\n", "line 1: control character");
	DEFS_FAIL("general = a\rb\n", "line 1: control character");
	DEFS_FAIL("# \x02 even in comments\n", "line 1: control character");
	DEFS_FAIL("general = caf\xc3\n", "line 1: invalid UTF-8");
	DEFS_FAIL("# \xc0\xaf\n", "line 1: invalid UTF-8");
	DEFS_FAIL("general = \xed\xa0\x80\n", "line 1: invalid UTF-8");
	/* Valid UTF-8 still is not a bucket name. */
	DEFS_FAIL("general = caf\xc3\xa9\n", "line 1: bad bucket name 'caf\xc3\xa9'");
	/* The bad line fails the write even after good ones. */
	DEFS_FAIL("general = a\nchat = b\nforms = ?\n", "line 3: bad bucket name '?'");
}
END_TEST

START_TEST(defaults_line_cap)
{
	char buf[1100];
	size_t n;

	/* 512 bytes is the longest line (the '\n' not counted). */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "general = a", 11);
	buf[512] = '\n';
	{
		struct bfs_defaults_change c;
		char err[128];

		ck_assert_int_eq(bfs_ctl_parse_defaults(buf, 513, &c, err,
							sizeof(err)), 0);
		ck_assert_str_eq(c.bucket[BFS_ROLE_GENERAL], "a");
		bfs_defaults_change_clear(&c);
	}
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "chat = a\n", 9);
	memcpy(buf + 9, "general = a", 11);
	n = 9 + 513;
	buf[n] = '\n';
	defs_fail(buf, n + 1, "line 2: line longer than 512 bytes");
	/* Also without a final newline. */
	defs_fail(buf, n, "line 2: line longer than 512 bytes");
}
END_TEST

START_TEST(write_cap_and_garbage)
{
	size_t n = BFS_CTL_SESSION_MAX + 1, i;
	char *buf = malloc(n);
	struct bfs_defaults_change c;
	struct bfs_assign_change *a;
	size_t na;
	char err[128];
	unsigned v = 7;

	ck_assert_ptr_nonnull(buf);
	/* 16 MiB + 1 of valid blank/comment lines: refused on size alone. */
	for (i = 0; i < n; i++)
		buf[i] = (i % 64 == 63) ? '\n' : '#';
	ck_assert_int_eq(bfs_ctl_parse_defaults(buf, n, &c, err, sizeof(err)),
			 BFS_ERR_TOOBIG);
	ck_assert_str_eq(err, "line 1: session over 16777216 bytes");
	ck_assert_int_eq(bfs_ctl_parse_assignments(buf, n, &a, &na, err,
						   sizeof(err)), BFS_ERR_TOOBIG);
	ck_assert_str_eq(err, "line 1: session over 16777216 bytes");
	ck_assert_ptr_null(a);
	/* Exactly the cap is fine. */
	ck_assert_int_eq(bfs_ctl_parse_defaults(buf, n - 1, &c, err, sizeof(err)), 0);
	bfs_defaults_change_clear(&c);
	/* Random bytes fail cleanly. */
	n = 1024 * 1024;
	for (i = 0; i < n; i++) {
		v = v * 1103515245u + 12345u;
		buf[i] = (char)(v >> 16);
	}
	ck_assert_int_eq(bfs_ctl_parse_defaults(buf, n, &c, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_int_eq(strncmp(err, "line 1: ", 8), 0);
	ck_assert_int_eq(bfs_ctl_parse_assignments(buf, n, &a, &na, err,
						   sizeof(err)), BFS_ERR_INVAL);
	ck_assert_ptr_null(a);
	free(buf);
}
END_TEST

START_TEST(error_buffer_edge)
{
	struct bfs_defaults_change c;
	char small[8];

	/* A tiny or missing err buffer is never overrun. */
	ck_assert_int_eq(defs("bogus = x\n", &c, small, sizeof(small)), BFS_ERR_INVAL);
	ck_assert_str_eq(small, "line 1:");
	ck_assert_int_eq(defs("bogus = x\n", &c, NULL, 0), BFS_ERR_INVAL);
}
END_TEST

START_TEST(assign_basic)
{
	struct bfs_assign_change *a = NULL;
	size_t n = 0;
	char err[128];
	const char *in = "chat/g1 = media\n"
			 "# comment\n"
			 "form/F_2-x=scratch\r\n"
			 "\n"
			 "  chat/g1 =  \n"
			 "chat/g1 = other\n";

	ck_assert_int_eq(bfs_ctl_parse_assignments(in, strlen(in), &a, &n, err,
						   sizeof(err)), 0);
	ck_assert_uint_eq(n, 4);
	/* File order is kept; the applier lets later lines win. */
	ck_assert_int_eq(a[0].context_type, 0);
	ck_assert_str_eq(a[0].context_id, "g1");
	ck_assert_str_eq(a[0].bucket, "media");
	ck_assert_int_eq(a[1].context_type, 1);
	ck_assert_str_eq(a[1].context_id, "F_2-x");
	ck_assert_str_eq(a[1].bucket, "scratch");
	ck_assert_int_eq(a[2].context_type, 0);
	ck_assert_str_eq(a[2].context_id, "g1");
	ck_assert_ptr_null(a[2].bucket);      /* removal */
	ck_assert_int_eq(a[3].context_type, 0);
	ck_assert_str_eq(a[3].context_id, "g1");
	ck_assert_str_eq(a[3].bucket, "other");
	bfs_assign_changes_free(a, n);
	a = NULL;
	/* An unterminated last line fails the whole session. */
	ASSIGN_FAIL("chat/g1 = media\nchat/g1 = other",
		    "line 2: incomplete last line (no newline at the end)");
	bfs_assign_changes_free(NULL, 0);
	ck_assert_int_eq(bfs_ctl_parse_assignments("", 0, &a, &n, err,
						   sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	bfs_assign_changes_free(a, n);
}
END_TEST

START_TEST(assign_many)
{
	struct bfs_assign_change *a = NULL;
	size_t n = 0, i;
	char err[128], line[64];
	char *buf = malloc(4000 * 40);
	size_t len = 0;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < 4000; i++) {
		int k = snprintf(line, sizeof(line), "%s/id%zu = b%zu\n",
				 i % 2 ? "form" : "chat", i, i % 7);
		memcpy(buf + len, line, (size_t)k);
		len += (size_t)k;
	}
	ck_assert_int_eq(bfs_ctl_parse_assignments(buf, len, &a, &n, err,
						   sizeof(err)), 0);
	ck_assert_uint_eq(n, 4000);
	ck_assert_str_eq(a[3999].context_id, "id3999");
	ck_assert_int_eq(a[3999].context_type, 1);
	ck_assert_str_eq(a[3999].bucket, "b2");
	bfs_assign_changes_free(a, n);
	free(buf);
}
END_TEST

START_TEST(assign_errors)
{
	char id[200];
	char buf[300];

	ASSIGN_FAIL("group/1 = a\n", "line 1: unknown context type 'group'");
	ASSIGN_FAIL("forms/1 = a\n", "line 1: unknown context type 'forms'");
	ASSIGN_FAIL("chat/1 = a\nchat1 = a\n",
		    "line 2: expected chat/ID or form/ID, got 'chat1'");
	ASSIGN_FAIL("chat/ = a\n", "line 1: bad id ''");
	ASSIGN_FAIL("chat/a.b = a\n", "line 1: bad id 'a.b'");
	ASSIGN_FAIL("chat/a/b = a\n", "line 1: bad id 'a/b'");
	ASSIGN_FAIL("chat/a b = a\n", "line 1: bad id 'a b'");
	ASSIGN_FAIL("chat/x = A\n", "line 1: bad bucket name 'A'");
	ASSIGN_FAIL("chat/x media\n", "line 1: missing '=' in 'chat/x media'");
	ASSIGN_FAIL("chat/x = a\0\n", "line 1: NUL byte");
	ASSIGN_FAIL("chat/x = \xff\n", "line 1: invalid UTF-8");
	ASSIGN_FAIL("chat/x = a\x0b\n", "line 1: control character");
	/* 128-byte ids are fine, 129 are not. */
	memset(id, 'i', sizeof(id));
	id[128] = '\0';
	snprintf(buf, sizeof(buf), "form/%s = b\n", id);
	{
		struct bfs_assign_change *a;
		size_t n;
		char err[128];

		ck_assert_int_eq(bfs_ctl_parse_assignments(buf, strlen(buf), &a, &n,
							   err, sizeof(err)), 0);
		ck_assert_uint_eq(strlen(a[0].context_id), 128);
		bfs_assign_changes_free(a, n);
	}
	id[128] = 'i';
	id[129] = '\0';
	snprintf(buf, sizeof(buf), "form/%s = b\n", id);
	assign_fail(buf, strlen(buf), "line 1: bad id 'iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii'");
}
END_TEST

START_TEST(format_defaults)
{
	struct bfs_buf b;
	char media[] = "media", scratch[] = "scratch", e[] = "";
	char *names[BFS_ROLE_COUNT] = { media, NULL, scratch };
	char *empty[BFS_ROLE_COUNT] = { e, e, e };

	bfs_buf_init(&b, 4096);
	ck_assert_int_eq(bfs_ctl_format_defaults(names, &b), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "general = media\nchat =\nforms = scratch\n");
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_ctl_format_defaults(empty, &b), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "general =\nchat =\nforms =\n");
	bfs_buf_free(&b);
	/* A cap too small for the output fails. */
	bfs_buf_init(&b, 20);
	ck_assert_int_eq(bfs_ctl_format_defaults(names, &b), BFS_ERR_TOOBIG);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(format_parse_round_trip)
{
	struct bfs_buf b;
	struct bfs_defaults_change c;
	char a[] = "a", bc[] = "b.c";
	char *names[BFS_ROLE_COUNT] = { a, bc, NULL };
	char err[64];

	bfs_buf_init(&b, 4096);
	ck_assert_int_eq(bfs_ctl_format_defaults(names, &b), 0);
	ck_assert_int_eq(bfs_ctl_parse_defaults(b.p, b.len, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.bucket[0], "a");
	ck_assert_str_eq(c.bucket[1], "b.c");
	ck_assert_int_eq(c.touched[2], 1);
	ck_assert_ptr_null(c.bucket[2]);
	bfs_defaults_change_clear(&c);
	bfs_buf_free(&b);
}
END_TEST

/* ---- write sessions: the parser fed in pieces ---- */

/* exists() of the tests: buckets "a", "b" and "media" exist. */
static int known_bucket(void *arg, const char *name)
{
	(void)arg;
	return !strcmp(name, "a") || !strcmp(name, "b") || !strcmp(name, "media");
}

static struct bfs_ctl_parser *parser(int assignments)
{
	struct bfs_ctl_parser *p = NULL;

	ck_assert_int_eq(bfs_ctl_parser_new(assignments, known_bucket, NULL, &p), 0);
	return p;
}

/* The assignments of c as "chat/ID=B;" text, for comparisons. */
static void assign_text(const struct bfs_ctl_changes *c, char *out, size_t len)
{
	struct bfs_assign_change one;
	size_t pos = 0, o = 0;

	out[0] = '\0';
	while (bfs_ctl_changes_next(c, &pos, &one)) {
		int k = snprintf(out + o, len - o, "%s/%s=%s;",
				 bfs_ctx_type_name(one.context_type),
				 one.context_id, one.bucket ? one.bucket : "");

		ck_assert_int_gt(k, 0);
		ck_assert_uint_lt(o + (size_t)k, len);
		o += (size_t)k;
	}
}

START_TEST(session_split_anywhere)
{
	static const char defs_doc[] =
		"# routing\r\n\ngeneral = media\n  chat\t=  a \nforms =\nchat = b\n";
	static const char asg_doc[] =
		"chat/g1 = a\n# c\nform/F-2=b\r\n\nchat/g1 =\nform/x_y = media\n";
	char err[256], got[512];
	size_t i, j, len;

	/* Two pieces split at every byte, three pieces at every pair. */
	len = sizeof(defs_doc) - 1;
	for (i = 0; i <= len; i++) {
		for (j = i; j <= len; j++) {
			struct bfs_ctl_parser *p = parser(0);
			struct bfs_ctl_changes c;

			ck_assert_int_eq(bfs_ctl_parser_feed(p, defs_doc, i, err,
							     sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_feed(p, defs_doc + i, j - i,
							     err, sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_feed(p, defs_doc + j, len - j,
							     err, sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
			ck_assert_uint_eq(c.lines, 4);
			ck_assert_str_eq(c.defaults.bucket[BFS_ROLE_GENERAL], "media");
			ck_assert_str_eq(c.defaults.bucket[BFS_ROLE_CHAT], "b");
			ck_assert_int_eq(c.defaults.touched[BFS_ROLE_FORMS], 1);
			ck_assert_ptr_null(c.defaults.bucket[BFS_ROLE_FORMS]);
			bfs_ctl_changes_clear(&c);
			bfs_ctl_parser_free(p);
		}
	}
	len = sizeof(asg_doc) - 1;
	for (i = 0; i <= len; i++) {
		for (j = i; j <= len; j++) {
			struct bfs_ctl_parser *p = parser(1);
			struct bfs_ctl_changes c;

			ck_assert_int_eq(bfs_ctl_parser_feed(p, asg_doc, i, err,
							     sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_feed(p, asg_doc + i, j - i,
							     err, sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_feed(p, asg_doc + j, len - j,
							     err, sizeof(err)), 0);
			ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
			assign_text(&c, got, sizeof(got));
			ck_assert_str_eq(got, "chat/g1=a;form/F-2=b;chat/g1=;form/x_y=media;");
			ck_assert_uint_eq(c.lines, 4);
			bfs_ctl_changes_clear(&c);
			bfs_ctl_parser_free(p);
		}
	}
	/* One byte per feed. */
	{
		struct bfs_ctl_parser *p = parser(1);
		struct bfs_ctl_changes c;

		for (i = 0; i < len; i++)
			ck_assert_int_eq(bfs_ctl_parser_feed(p, asg_doc + i, 1, err,
							     sizeof(err)), 0);
		ck_assert_uint_eq(bfs_ctl_parser_pending(p), len);
		ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
		ck_assert_uint_eq(bfs_ctl_parser_pending(p), 0);
		assign_text(&c, got, sizeof(got));
		ck_assert_str_eq(got, "chat/g1=a;form/F-2=b;chat/g1=;form/x_y=media;");
		bfs_ctl_changes_clear(&c);
		bfs_ctl_parser_free(p);
	}
}
END_TEST

START_TEST(session_bad_line_spoils)
{
	struct bfs_ctl_parser *p = parser(0);
	struct bfs_ctl_changes c;
	char err[256];

	ck_assert_int_eq(bfs_ctl_parser_feed(p, "forms = a\nchat = no", 19, err,
					     sizeof(err)), 0);
	/* The bad line is refused by the write that ends it. */
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "such\n", 5, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 2: unknown bucket 'nosuch'");
	ck_assert_str_eq(bfs_ctl_parser_bad_line(p), "chat = nosuch");
	ck_assert_int_eq(bfs_ctl_parser_error(p), BFS_ERR_INVAL);
	/* Spoiled: good lines after it are refused too, the end hands out
	 * nothing, not even the good first line. */
	err[0] = '\0';
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "general = b\n", 12, err,
					     sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 2: unknown bucket 'nosuch'");
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 2: unknown bucket 'nosuch'");
	ck_assert_uint_eq(c.lines, 0);
	ck_assert_int_eq(c.defaults.touched[BFS_ROLE_FORMS], 0);
	bfs_ctl_changes_clear(&c);
	bfs_ctl_parser_free(p);

	/* A bad line in the middle of one write, with good lines around. */
	p = parser(1);
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat/a = a\n", 11, err,
					     sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat/b = b\nchat/bad id = a\n"
					     "chat/c = a\n", 38, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 3: bad id 'bad id'");
	ck_assert_str_eq(bfs_ctl_parser_bad_line(p), "chat/bad id = a");
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_uint_eq(c.packed.len, 0);
	bfs_ctl_changes_clear(&c);
	bfs_ctl_parser_free(p);

	/* A line over 512 bytes is refused before its '\n' arrives. */
	{
		char buf[600];

		memset(buf, ' ', sizeof(buf));
		memcpy(buf, "general = a", 11);
		p = parser(0);
		ck_assert_int_eq(bfs_ctl_parser_feed(p, buf, 300, err, sizeof(err)), 0);
		ck_assert_int_eq(bfs_ctl_parser_feed(p, buf + 300, 212, err,
						     sizeof(err)), 0);
		ck_assert_int_eq(bfs_ctl_parser_feed(p, buf + 512, 1, err,
						     sizeof(err)), BFS_ERR_INVAL);
		ck_assert_str_eq(err, "line 1: line longer than 512 bytes");
		ck_assert_uint_eq(strlen(bfs_ctl_parser_bad_line(p)), 128);
		bfs_ctl_parser_free(p);
	}
	/* The caller's own refusal (an offset out of order). */
	p = parser(0);
	bfs_ctl_parser_spoil(p, BFS_ERR_INVAL, "write at offset 9");
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat = a\n", 9, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_str_eq(err, "write at offset 9");
	ck_assert_str_eq(bfs_ctl_parser_bad_line(p), "");
	bfs_ctl_parser_free(p);
	bfs_ctl_parser_free(NULL);
}
END_TEST

START_TEST(session_incomplete_last_line)
{
	struct bfs_ctl_parser *p = parser(1);
	struct bfs_ctl_changes c;
	char err[256];

	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat/a = a\nchat/b = b", 21, err,
					     sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 2: incomplete last line (no newline at the end)");
	ck_assert_str_eq(bfs_ctl_parser_bad_line(p), "chat/b = b");
	ck_assert_uint_eq(c.lines, 0);
	ck_assert_uint_eq(c.packed.len, 0);
	bfs_ctl_changes_clear(&c);
	/* The '\n' coming late does not revive it. */
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "\n", 1, err, sizeof(err)),
			 BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), BFS_ERR_INVAL);
	bfs_ctl_changes_clear(&c);
	bfs_ctl_parser_free(p);
}
END_TEST

START_TEST(session_segments)
{
	struct bfs_ctl_parser *p = parser(1);
	struct bfs_ctl_changes c;
	char err[256], got[256];

	/* Nothing fed: an empty change (bash closes a dup before writing). */
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.lines, 0);
	bfs_ctl_changes_clear(&c);
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat/a = a\n", 11, err,
					     sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
	assign_text(&c, got, sizeof(got));
	ck_assert_str_eq(got, "chat/a=a;");
	bfs_ctl_changes_clear(&c);
	/* The next end hands out only what came after; lines count on. */
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "form/b = b\nform/c = x\n", 22,
					     err, sizeof(err)), BFS_ERR_INVAL);
	ck_assert_str_eq(err, "line 3: unknown bucket 'x'");
	bfs_ctl_parser_free(p);

	p = parser(0);
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "chat = a\n", 9, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
	bfs_ctl_changes_clear(&c);
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "forms = b\n", 10, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.defaults.touched[BFS_ROLE_CHAT], 0);
	ck_assert_str_eq(c.defaults.bucket[BFS_ROLE_FORMS], "b");
	bfs_ctl_changes_clear(&c);
	bfs_ctl_parser_free(p);
}
END_TEST

START_TEST(session_cap)
{
	struct bfs_ctl_parser *p = parser(1);
	struct bfs_ctl_changes c;
	struct bfs_assign_change one;
	char err[256], *chunk;
	size_t chunk_len = 128 * 1024, i, fed = 0, pos = 0, n = 0;
	const char *line = "chat/c0123456789 = media\n";   /* 25 bytes */
	size_t ll = strlen(line);

	/* 128 KiB chunks (what cat writes) of 25-byte lines, split across
	 * chunks, up to exactly 16 MiB: all taken. */
	chunk = malloc(chunk_len);
	ck_assert_ptr_nonnull(chunk);
	while (fed < BFS_CTL_SESSION_MAX) {
		size_t k = chunk_len;

		/* Go on with the line pattern where the last chunk stopped. */
		for (i = 0; i < chunk_len; i++)
			chunk[i] = line[(fed + i) % ll];
		if (k > BFS_CTL_SESSION_MAX - fed)
			k = BFS_CTL_SESSION_MAX - fed;
		ck_assert_int_eq(bfs_ctl_parser_feed(p, chunk, k, err, sizeof(err)), 0);
		fed += k;
	}
	/* 16 MiB is not a multiple of 25, so a line is still open; the byte
	 * that would end it passes the cap and is refused. */
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "\n", 1, err, sizeof(err)),
			 BFS_ERR_TOOBIG);
	ck_assert_str_eq(err + strcspn(err, ":"), ": session over 16777216 bytes");
	ck_assert_int_eq(bfs_ctl_parser_error(p), BFS_ERR_TOOBIG);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), BFS_ERR_TOOBIG);
	bfs_ctl_changes_clear(&c);
	bfs_ctl_parser_free(p);

	/* Exactly 16 MiB of whole lines ends fine; its packed change is
	 * smaller than the session. */
	p = parser(1);
	fed = 0;
	while (fed + ll <= BFS_CTL_SESSION_MAX - 64) {
		ck_assert_int_eq(bfs_ctl_parser_feed(p, line, ll, err, sizeof(err)), 0);
		fed += ll;
	}
	for (i = 0; fed < BFS_CTL_SESSION_MAX - 1; i++, fed++)
		chunk[i] = '#';
	chunk[i++] = '\n';
	ck_assert_int_eq(bfs_ctl_parser_feed(p, chunk, i, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_ctl_parser_end(p, &c, err, sizeof(err)), 0);
	ck_assert_uint_lt(c.packed.len, BFS_CTL_SESSION_MAX);
	while (bfs_ctl_changes_next(&c, &pos, &one)) {
		ck_assert_str_eq(one.context_id, "c0123456789");
		ck_assert_str_eq(one.bucket, "media");
		n++;
	}
	ck_assert_uint_eq(n, c.lines);
	ck_assert_uint_eq(n, (BFS_CTL_SESSION_MAX - 64) / ll);
	bfs_ctl_changes_clear(&c);
	/* The cap is the session's, not the segment's. */
	ck_assert_int_eq(bfs_ctl_parser_feed(p, "#\n", 2, err, sizeof(err)),
			 BFS_ERR_TOOBIG);
	bfs_ctl_parser_free(p);
	free(chunk);
}
END_TEST

Suite *ctlfile_suite(void)
{
	Suite *s = suite_create("ctlfile");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, ctx_types);
	tcase_add_test(tc, defaults_basic);
	tcase_add_test(tc, defaults_unset_comments_last_wins);
	tcase_add_test(tc, defaults_no_trailing_newline_and_empty);
	tcase_add_test(tc, defaults_errors);
	tcase_add_test(tc, defaults_line_cap);
	tcase_add_test(tc, write_cap_and_garbage);
	tcase_add_test(tc, error_buffer_edge);
	tcase_add_test(tc, assign_basic);
	tcase_add_test(tc, assign_many);
	tcase_add_test(tc, assign_errors);
	tcase_add_test(tc, format_defaults);
	tcase_add_test(tc, format_parse_round_trip);
	suite_add_tcase(s, tc);
	tc = tcase_create("session");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, session_split_anywhere);
	tcase_add_test(tc, session_bad_line_spoils);
	tcase_add_test(tc, session_incomplete_last_line);
	tcase_add_test(tc, session_segments);
	tcase_add_test(tc, session_cap);
	suite_add_tcase(s, tc);
	return s;
}
