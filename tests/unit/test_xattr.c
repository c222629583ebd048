/*
 * test_xattr.c - the s3fs x-amz-meta-xattr codec (src/util/xattr_codec.c).
 * The vectors are what Debian's s3fs 1.90 (-o use_xattr) stored on the
 * test RGW for the same attributes: encode must give them byte for byte,
 * decode must read them back.
 */
#include <stdlib.h>
#include <string.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_xattr.h"
#include "unit.h"

/* setfattr user.z="hello world", user."a b*~+"=bytes 0..19 + ff / + = */
static const char S3FS_FILE[] =
	"%7B%22user.a%20b%2A~%2B%22%3A%22AAECAwQFBgcICQoLDA0ODxAREhP/Lys9%22"
	"%2C%22user.z%22%3A%22aGVsbG8gd29ybGQ%3D%22%7D";
/* setfattr user.k=v on a folder */
static const char S3FS_DIR[] = "%7B%22user.k%22%3A%22dg%3D%3D%22%7D";

static void odd_value(unsigned char *v)
{
	int i;

	for (i = 0; i < 20; i++)
		v[i] = (unsigned char)i;
	memcpy(v + 20, "\xff/+=", 4);
}

START_TEST(encode_matches_s3fs)
{
	struct bfs_xattrs x;
	struct bfs_buf out;
	unsigned char v[24];

	memset(&x, 0, sizeof(x));
	bfs_buf_init(&out, 4096);
	odd_value(v);
	/* inserted out of order: stored sorted like s3fs's std::map */
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.z", "hello world", 11), 0);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.a b*~+", v, sizeof(v)), 0);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
	ck_assert_str_eq(bfs_buf_str(&out), S3FS_FILE);
	bfs_xattrs_free(&x);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.k", "v", 1), 0);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
	ck_assert_str_eq(bfs_buf_str(&out), S3FS_DIR);
	bfs_xattrs_free(&x);
	bfs_buf_free(&out);
}
END_TEST

START_TEST(decode_s3fs_values)
{
	struct bfs_xattrs x;
	const struct bfs_xattr *a;
	unsigned char v[24];

	memset(&x, 0, sizeof(x));
	odd_value(v);
	ck_assert_int_eq(bfs_xattrs_decode(S3FS_FILE, &x), 0);
	ck_assert_uint_eq(x.n, 2);
	ck_assert_str_eq(x.v[0].name, "user.a b*~+");
	ck_assert_uint_eq(x.v[0].len, sizeof(v));
	ck_assert_mem_eq(x.v[0].value, v, sizeof(v));
	a = bfs_xattrs_find(&x, "user.z");
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->len, 11);
	ck_assert_mem_eq(a->value, "hello world", 11);
	ck_assert_ptr_null(bfs_xattrs_find(&x, "user.nope"));
	ck_assert_int_eq(bfs_xattrs_decode(S3FS_DIR, &x), 0);
	ck_assert_uint_eq(x.n, 1);
	ck_assert_mem_eq(x.v[0].value, "v", 1);
	bfs_xattrs_free(&x);
}
END_TEST

START_TEST(round_trip_every_length)
{
	struct bfs_xattrs x, y;
	struct bfs_buf out;
	unsigned char v[64];
	size_t n;

	memset(&x, 0, sizeof(x));
	memset(&y, 0, sizeof(y));
	bfs_buf_init(&out, 8192);
	for (n = 0; n < sizeof(v); n++)
		v[n] = (unsigned char)(n * 37 + 200);
	for (n = 0; n <= sizeof(v); n++) {
		ck_assert_int_eq(bfs_xattrs_set(&x, "user.v", v, n), 0);
		ck_assert_int_eq(bfs_xattrs_set(&x, "user.%41", "p", 1), 0);
		ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
		ck_assert_int_eq(bfs_xattrs_decode(bfs_buf_str(&out), &y), 0);
		ck_assert_uint_eq(y.n, 2);
		ck_assert_str_eq(y.v[0].name, "user.%41");   /* not re-decoded */
		ck_assert_uint_eq(y.v[1].len, n);
		if (n)
			ck_assert_mem_eq(y.v[1].value, v, n);
	}
	bfs_xattrs_free(&x);
	bfs_xattrs_free(&y);
	bfs_buf_free(&out);
}
END_TEST

START_TEST(set_del_empty)
{
	struct bfs_xattrs x;
	struct bfs_buf out;

	memset(&x, 0, sizeof(x));
	bfs_buf_init(&out, 4096);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
	ck_assert_str_eq(bfs_buf_str(&out), "");      /* no header at all */
	ck_assert_int_eq(bfs_xattrs_del(&x, "user.a"), BFS_ERR_NOTFOUND);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.b", "", 0), 0);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.a", "1", 1), 0);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.a", "22", 2), 0);
	ck_assert_uint_eq(x.n, 2);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
	ck_assert_str_eq(bfs_buf_str(&out),
			 "%7B%22user.a%22%3A%22MjI%3D%22%2C%22user.b%22%3A%22%22%7D");
	ck_assert_int_eq(bfs_xattrs_del(&x, "user.a"), 0);
	ck_assert_int_eq(bfs_xattrs_del(&x, "user.b"), 0);
	ck_assert_uint_eq(x.n, 0);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), 0);
	ck_assert_str_eq(bfs_buf_str(&out), "");
	bfs_xattrs_free(&x);
	bfs_buf_free(&out);
}
END_TEST

START_TEST(decode_is_lenient)
{
	struct bfs_xattrs x;

	memset(&x, 0, sizeof(x));
	ck_assert_int_eq(bfs_xattrs_decode(NULL, &x), 0);
	ck_assert_uint_eq(x.n, 0);
	ck_assert_int_eq(bfs_xattrs_decode("not json", &x), 0);
	ck_assert_uint_eq(x.n, 0);
	ck_assert_int_eq(bfs_xattrs_decode("{}", &x), 0);
	ck_assert_uint_eq(x.n, 0);
	/* bad pairs skipped, good ones kept; plain (not URL-encoded) JSON,
	 * lower-case escapes, no padding, a truncated escape at the end */
	ck_assert_int_eq(bfs_xattrs_decode(
		"{\"user.ok\":\"b2s\",nocolon,\"user.bad\":\"!!!\","
		"\"user.q\"x\":\"YQ==\",%22user.l%22%3a%22eA%3d%3d%22}%4", &x), 0);
	ck_assert_uint_eq(x.n, 2);
	ck_assert_str_eq(x.v[0].name, "user.l");
	ck_assert_mem_eq(x.v[0].value, "x", 1);
	ck_assert_str_eq(x.v[1].name, "user.ok");
	ck_assert_uint_eq(x.v[1].len, 2);
	ck_assert_mem_eq(x.v[1].value, "ok", 2);
	/* the same name twice: the later wins (std::map assignment) */
	ck_assert_int_eq(bfs_xattrs_decode("{\"user.d\":\"YQ==\",\"user.d\":\"Yg==\"}",
					   &x), 0);
	ck_assert_uint_eq(x.n, 1);
	ck_assert_mem_eq(x.v[0].value, "b", 1);
	bfs_xattrs_free(&x);
}
END_TEST

START_TEST(encode_cap)
{
	struct bfs_xattrs x;
	struct bfs_buf out;
	char big[300];

	memset(&x, 0, sizeof(x));
	memset(big, 'v', sizeof(big));
	bfs_buf_init(&out, 100);
	ck_assert_int_eq(bfs_xattrs_set(&x, "user.big", big, sizeof(big)), 0);
	ck_assert_int_eq(bfs_xattrs_encode(&x, &out), BFS_ERR_TOOBIG);
	bfs_xattrs_free(&x);
	bfs_buf_free(&out);
}
END_TEST

START_TEST(names)
{
	char longname[300];

	ck_assert_int_eq(bfs_xattr_name_ok("user.a b*~+%"), 1);
	ck_assert_int_eq(bfs_xattr_name_ok(""), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.a,b"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.a:b"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.a\"b"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.{"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.}"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.\\"), 0);
	ck_assert_int_eq(bfs_xattr_name_ok("user.\n"), 0);
	memset(longname, 'n', sizeof(longname));
	longname[255] = '\0';
	ck_assert_int_eq(bfs_xattr_name_ok(longname), 1);
	longname[255] = 'n';
	longname[256] = '\0';
	ck_assert_int_eq(bfs_xattr_name_ok(longname), 0);
}
END_TEST

Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, encode_matches_s3fs);
	tcase_add_test(tc, decode_s3fs_values);
	tcase_add_test(tc, round_trip_every_length);
	tcase_add_test(tc, set_del_empty);
	tcase_add_test(tc, decode_is_lenient);
	tcase_add_test(tc, encode_cap);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);
	return s;
}
