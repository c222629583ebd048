/*
 * test_sigv4.c - SigV4 signer against the AWS test suite
 * (tests/vectors/sigv4/, see its SOURCE.txt) and the S3 documentation's
 * worked examples (header auth and presigned URL, 2013-05-24).
 *
 * Each suite case's .req is parsed (request line, headers with folded
 * continuation lines, body), signed with the pinned clock, and the
 * canonical request, string to sign and Authorization are compared
 * byte for byte with .creq, .sts and .authz.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_sigv4.h"
#include "unit.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME ((time_t)1440938160)   /* 2015-08-30T12:36:00Z */
#define DOC_TIME ((time_t)1369353600)     /* 2013-05-24T00:00:00Z */
#define DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

/*
 * Cases used.  Not used: normalize-path cases (S3 does not normalize paths)
 * and post-x-www-form-urlencoded{,-parameters} (upstream .creq lists
 * content-length but .sts/.authz were computed without it; not copied).
 */
static const char *const cases[] = {
	"get-header-key-duplicate", "get-header-value-multiline",
	"get-header-value-order", "get-header-value-trim", "get-unreserved",
	"get-utf8", "get-vanilla", "get-vanilla-empty-query-key",
	"get-vanilla-query", "get-vanilla-query-order-key",
	"get-vanilla-query-order-key-case", "get-vanilla-query-order-value",
	"get-vanilla-query-unreserved", "get-vanilla-utf8-query",
	"post-header-key-case", "post-header-key-sort",
	"post-header-value-case", "post-vanilla",
	"post-vanilla-empty-query-value", "post-vanilla-query",
	"post-sts-token/post-sts-header-before",
	"post-sts-token/post-sts-header-after",
};

static char *read_vec(const char *name, const char *ext)
{
	char path[1024];
	const char *base = strrchr(name, '/');

	snprintf(path, sizeof(path), "%s/vectors/sigv4/aws-sig-v4-test-suite/%s/%s.%s",
		 unit_data_dir(), name, base ? base + 1 : name, ext);
	return unit_read_file(path, NULL);
}

#define MAXH 16
#define MAXQ 16

START_TEST(test_aws_suite)
{
	const char *name = cases[_i];
	char *req = read_vec(name, "req"), *creq_exp = read_vec(name, "creq");
	char *sts_exp = read_vec(name, "sts"), *authz_exp = read_vec(name, "authz");
	struct bfs_sigv4_kv hdr[MAXH], q[MAXQ];
	size_t nh = 0, nq = 0;
	struct bfs_sigv4_req r;
	struct bfs_sigv4_out out;
	struct bfs_buf creq, sts, uri;
	char *line, *save = NULL, *method, *target, *qs, *body, *tok, *s2;
	const char *token = NULL;
	char hash[65];

	/* split head and body at the first empty line */
	body = strstr(req, "\n\n");
	if (body) {
		*body = '\0';
		body += 2;
	} else {
		body = req + strlen(req);
	}
	line = strtok_r(req, "\n", &save);
	method = line;
	target = strchr(line, ' ');
	ck_assert_ptr_nonnull(target);
	*target++ = '\0';
	*strrchr(target, ' ') = '\0';        /* drop " HTTP/1.1" */
	qs = strchr(target, '?');
	if (qs)
		*qs++ = '\0';
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *colon;

		if (*line == ' ' || *line == '\t') {
			/* folded line: another value of the previous header */
			ck_assert_uint_gt(nh, 0);
			ck_assert_uint_lt(nh, MAXH);
			hdr[nh].name = hdr[nh - 1].name;
			hdr[nh++].value = line;
			continue;
		}
		colon = strchr(line, ':');
		ck_assert_ptr_nonnull(colon);
		*colon = '\0';
		if (!strcasecmp(line, "X-Amz-Date")) {
			ck_assert_str_eq(colon + 1, "20150830T123600Z");
			continue;
		}
		if (!strcasecmp(line, "X-Amz-Security-Token")) {
			token = colon + 1;
			continue;
		}
		ck_assert_uint_lt(nh, MAXH);
		hdr[nh].name = line;
		hdr[nh++].value = colon + 1;
	}
	for (tok = qs ? strtok_r(qs, "&", &s2) : NULL; tok;
	     tok = strtok_r(NULL, "&", &s2)) {
		char *eq = strchr(tok, '=');

		ck_assert_uint_lt(nq, MAXQ);
		if (eq)
			*eq++ = '\0';
		q[nq].name = tok;
		q[nq++].value = eq ? eq : "";
	}

	bfs_buf_init(&uri, 4096);
	ck_assert_int_eq(bfs_sigv4_uri_encode(target, 1, &uri), 0);
	ck_assert_int_eq(bfs_sigv4_sha256_hex(body, strlen(body), hash), 0);
	memset(&r, 0, sizeof(r));
	r.method = method;
	r.uri = bfs_buf_str(&uri);
	r.query = q;
	r.nquery = nq;
	r.headers = hdr;
	r.nheaders = nh;
	r.payload_hash = hash;
	r.region = "us-east-1";
	r.service = "service";
	r.access_key = "AKIDEXAMPLE";
	r.secret = SUITE_SECRET;
	r.session_token = token;
	r.now = SUITE_TIME;
	bfs_buf_init(&creq, 65536);
	bfs_buf_init(&sts, 65536);
	ck_assert_int_eq(bfs_sigv4_sign(&r, &out, &creq, &sts), 0);
	ck_assert_str_eq(bfs_buf_str(&creq), creq_exp);
	ck_assert_str_eq(bfs_buf_str(&sts), sts_exp);
	ck_assert_str_eq(out.authorization, authz_exp);
	ck_assert_str_eq(out.amz_date, "20150830T123600Z");
	ck_assert_str_eq(out.content_sha256, "");

	bfs_buf_free(&creq);
	bfs_buf_free(&sts);
	bfs_buf_free(&uri);
	free(req);
	free(creq_exp);
	free(sts_exp);
	free(authz_exp);
}
END_TEST

/* S3 docs, "Signature Calculations for the Authorization Header":
 * GET /test.txt with Range, x-amz-content-sha256 of the empty body. */
START_TEST(test_s3_doc_get_object)
{
	const struct bfs_sigv4_kv hdr[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	struct bfs_sigv4_req r;
	struct bfs_sigv4_out out;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.uri = "/test.txt";
	r.headers = hdr;
	r.nheaders = 2;
	r.payload_hash = BFS_SIGV4_EMPTY_SHA256;
	r.region = "us-east-1";
	r.service = "s3";
	r.access_key = "AKIAIOSFODNN7EXAMPLE";
	r.secret = DOC_SECRET;
	r.add_content_sha256 = 1;
	r.now = DOC_TIME;
	ck_assert_int_eq(bfs_sigv4_sign(&r, &out, NULL, NULL), 0);
	ck_assert_str_eq(out.amz_date, "20130524T000000Z");
	ck_assert_str_eq(out.content_sha256, BFS_SIGV4_EMPTY_SHA256);
	ck_assert_str_eq(out.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

/* The signing key cache: the same signature again, and other secrets,
 * days and regions (more than the cache holds) are never confused. */
START_TEST(test_signing_key_cache)
{
	const struct bfs_sigv4_kv hdr[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	static const char *const secrets[] = {
		DOC_SECRET, "other-secret-1", "other-secret-2", "other-secret-3",
		"other-secret-4", "other-secret-5"
	};
	static char first[6][3][1024];
	struct bfs_sigv4_req r;
	struct bfs_sigv4_out out;
	size_t i, j, round;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.uri = "/test.txt";
	r.headers = hdr;
	r.nheaders = 2;
	r.payload_hash = BFS_SIGV4_EMPTY_SHA256;
	r.service = "s3";
	r.access_key = "AKIAIOSFODNN7EXAMPLE";
	r.add_content_sha256 = 1;
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 6; i++) {
			for (j = 0; j < 3; j++) {
				r.secret = secrets[i];
				r.region = j == 2 ? "eu-west-1" : "us-east-1";
				r.now = DOC_TIME + (time_t)j * 86400;
				ck_assert_int_eq(bfs_sigv4_sign(&r, &out, NULL, NULL), 0);
				if (round == 0)
					snprintf(first[i][j], sizeof(first[i][j]), "%s",
						 out.authorization);
				else
					ck_assert_str_eq(out.authorization, first[i][j]);
			}
		}
	}
	ck_assert_str_eq(first[0][0],
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	for (i = 0; i < 6; i++)
		for (j = 0; j < 3; j++)
			if (i || j)
				ck_assert_str_ne(first[i][j], first[0][0]);
	ck_assert_str_ne(first[1][0], first[2][0]);
}
END_TEST

/* S3 docs, "Authenticating Requests: Using Query Parameters" example. */
START_TEST(test_s3_doc_presign)
{
	const struct bfs_sigv4_kv hdr[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
	};
	struct bfs_sigv4_req r;
	struct bfs_buf q;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.uri = "/test.txt";
	r.headers = hdr;
	r.nheaders = 1;
	r.region = "us-east-1";
	r.service = "s3";
	r.access_key = "AKIAIOSFODNN7EXAMPLE";
	r.secret = DOC_SECRET;
	r.now = DOC_TIME;
	bfs_buf_init(&q, 8192);
	ck_assert_int_eq(bfs_sigv4_presign(&r, 86400, &q), 0);
	ck_assert_str_eq(bfs_buf_str(&q),
		"X-Amz-Algorithm=AWS4-HMAC-SHA256"
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	/* bounds: 0 and more than 7 days are refused */
	ck_assert_int_eq(bfs_sigv4_presign(&r, 0, &q), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_sigv4_presign(&r, BFS_SIGV4_PRESIGN_MAX + 1, &q),
			 BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_sigv4_presign(&r, BFS_SIGV4_PRESIGN_MAX, &q), 0);
	bfs_buf_free(&q);
}
END_TEST

START_TEST(test_uri_encode)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 1024);
	ck_assert_int_eq(bfs_sigv4_uri_encode("a b/c+d~e_f.g-h%é*", 1, &b), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "a%20b/c%2Bd~e_f.g-h%25%C3%A9%2A");
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_sigv4_uri_encode("x/y=z&", 0, &b), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "x%2Fy%3Dz%26");
	bfs_buf_free(&b);
	/* the cap is honoured */
	bfs_buf_init(&b, 4);
	ck_assert_int_eq(bfs_sigv4_uri_encode("abc def", 1, &b), BFS_ERR_TOOBIG);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(test_missing_host_and_token)
{
	const struct bfs_sigv4_kv nohost[] = { { "Range", "bytes=0-1" } };
	const struct bfs_sigv4_kv host[] = { { "host", "h" } };
	struct bfs_sigv4_req r;
	struct bfs_sigv4_out out;
	struct bfs_buf creq, q;

	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.uri = "/";
	r.headers = nohost;
	r.nheaders = 1;
	r.region = "auto";
	r.service = "s3";
	r.access_key = "k";
	r.secret = "s";
	r.now = DOC_TIME;
	ck_assert_int_eq(bfs_sigv4_sign(&r, &out, NULL, NULL), BFS_ERR_INVAL);
	ck_assert_str_eq(out.authorization, "");
	r.headers = host;
	r.session_token = "TOK";
	r.add_content_sha256 = 1;
	r.payload_hash = BFS_SIGV4_UNSIGNED;
	bfs_buf_init(&creq, 4096);
	ck_assert_int_eq(bfs_sigv4_sign(&r, &out, &creq, NULL), 0);
	ck_assert_ptr_nonnull(strstr(bfs_buf_str(&creq),
		"x-amz-security-token:TOK\n\nhost;x-amz-content-sha256;x-amz-date;"
		"x-amz-security-token\nUNSIGNED-PAYLOAD"));
	ck_assert_ptr_nonnull(strstr(out.authorization, "/auto/s3/aws4_request"));
	ck_assert_str_eq(out.content_sha256, "UNSIGNED-PAYLOAD");
	bfs_buf_free(&creq);
	/* presign carries the token in the query */
	bfs_buf_init(&q, 4096);
	ck_assert_int_eq(bfs_sigv4_presign(&r, 60, &q), 0);
	ck_assert_ptr_nonnull(strstr(bfs_buf_str(&q), "&X-Amz-Security-Token=TOK&"));
	bfs_buf_free(&q);
}
END_TEST

/* The payload hash of a file range is
 * the hash of those bytes, for a big unaligned range and a small one. */
START_TEST(test_sha256_fd_range)
{
	char path[] = "/var/tmp/bfs-sha-XXXXXX", a[65], b[65];
	size_t size = 2 * 1024 * 1024 + 999, i;
	char *buf = malloc(size);
	int fd = mkstemp(path);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	for (i = 0; i < size; i++)
		buf[i] = (char)(i * 13 + i / 511);
	ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
	ck_assert_int_eq(bfs_sigv4_sha256_fd(fd, 4097, size - 4097 - 3, a), 0);
	ck_assert_int_eq(bfs_sigv4_sha256_hex(buf + 4097, size - 4097 - 3, b), 0);
	ck_assert_str_eq(a, b);
	ck_assert_int_eq(bfs_sigv4_sha256_fd(fd, 10, 100, a), 0);
	ck_assert_int_eq(bfs_sigv4_sha256_hex(buf + 10, 100, b), 0);
	ck_assert_str_eq(a, b);
	/* a range past the end of the file is an error, not a short hash */
	ck_assert_int_ne(bfs_sigv4_sha256_fd(fd, size - 10, 2 * 1024 * 1024, a), 0);
	close(fd);
	free(buf);
}
END_TEST

Suite *sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("sigv4");

	tcase_add_loop_test(tc, test_aws_suite, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_s3_doc_get_object);
	tcase_add_test(tc, test_s3_doc_presign);
	tcase_add_test(tc, test_signing_key_cache);
	tcase_add_test(tc, test_uri_encode);
	tcase_add_test(tc, test_missing_host_and_token);
	tcase_add_test(tc, test_sha256_fd_range);
	suite_add_tcase(s, tc);
	return s;
}
