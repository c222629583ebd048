/*
 * test_s3xml.c - the expat S3 response parsers on real bodies
 * (tests/vectors/s3xml/: captured from Ceph RGW and transcribed from the
 * S3 API reference, see its README.txt), plus the two small policies that
 * decide what a reply means: the S3 error table (s3err.c) and the retry
 * policy (retry.c).  Also the multipart part plan and MD5 helpers
 * (bfs_mpu.h) that resume uploads from ListParts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfs_error.h"
#include "bfs_http.h"
#include "bfs_mpu.h"
#include "bfs_s3xml.h"
#include "unit.h"

static char *read_vec(const char *name, size_t *len)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/vectors/s3xml/%s", unit_data_dir(), name);
	return unit_read_file(path, len);
}

/* What the listing callbacks saw. */
struct seen {
	int nobj, npfx, nup;
	char keys[8][256];
	char etags[8][96];
	uint64_t sizes[8];
	int64_t mtimes[8];
	char pfx[8][256];
	char up_id[128];
	int64_t up_time;
	int stop_after;          /* > 0: return 1 at that object */
	int fail_with;           /* < 0: return it at the first object */
};

static int on_obj(void *arg, const struct bfs_s3xml_object *o)
{
	struct seen *s = arg;

	if (s->fail_with)
		return s->fail_with;
	if (s->nobj < 8) {
		snprintf(s->keys[s->nobj], 256, "%s", o->key);
		snprintf(s->etags[s->nobj], 96, "%s", o->etag);
		s->sizes[s->nobj] = o->size;
		s->mtimes[s->nobj] = o->mtime;
	}
	s->nobj++;
	return s->stop_after && s->nobj >= s->stop_after;
}

static int on_pfx(void *arg, const char *p)
{
	struct seen *s = arg;

	if (s->npfx < 8)
		snprintf(s->pfx[s->npfx], 256, "%s", p);
	s->npfx++;
	return 0;
}

static int on_up(void *arg, const struct bfs_s3xml_upload *u)
{
	struct seen *s = arg;

	snprintf(s->keys[0], 256, "%s", u->key);
	snprintf(s->up_id, sizeof(s->up_id), "%s", u->upload_id);
	s->up_time = u->initiated;
	s->nup++;
	return 0;
}

static int parse_file(const char *name, int url, struct seen *s,
		      struct bfs_s3xml_page *page)
{
	struct bfs_s3xml_list_cb cb = { on_obj, on_pfx, on_up, s, NULL };
	size_t len;
	char *xml = read_vec(name, &len);
	int r = bfs_s3xml_parse_list(xml, len, &cb, url, page);

	free(xml);
	return r;
}

START_TEST(test_rgw_list_delimiter)
{
	struct seen s;
	struct bfs_s3xml_page page;
	int64_t t;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-delimiter.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 4);
	ck_assert_int_eq(s.npfx, 3);
	ck_assert_str_eq(s.pfx[0], "d/bad/");
	ck_assert_str_eq(s.pfx[2], "d/sub2/");
	ck_assert_str_eq(s.keys[0], "d/");
	ck_assert_str_eq(s.keys[1], "d/..");
	ck_assert_str_eq(s.keys[3], "d/link");
	ck_assert_uint_eq(s.sizes[3], 14);
	ck_assert_str_eq(s.etags[3], "d478effd03224d945e73d47778f03dfd");
	ck_assert_int_eq(bfs_s3xml_parse_time("2026-11-28T04:03:34.953Z", &t), 0);
	ck_assert_int_eq(s.mtimes[0], t);
	ck_assert_int_eq(page.is_truncated, 0);
	ck_assert_int_eq(page.key_count, 7);
	ck_assert_ptr_null(page.next_token);
	ck_assert_int_eq(page.is_error, 0);
	bfs_s3xml_page_clear(&page);
}
END_TEST

START_TEST(test_rgw_list_truncated_and_continued)
{
	struct seen s;
	struct bfs_s3xml_page page;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-truncated.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 3);
	ck_assert_str_eq(s.keys[2], "many/f0002.txt");
	ck_assert_int_eq(page.is_truncated, 1);
	ck_assert_int_eq(page.key_count, 3);
	ck_assert_str_eq(page.next_token, "many/f0002.txt");
	bfs_s3xml_page_clear(&page);

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-continued.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 3);
	ck_assert_str_eq(s.keys[0], "many/f0003.txt");
	ck_assert_str_eq(page.next_token, "many/f0005.txt");
	bfs_s3xml_page_clear(&page);

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-empty.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nobj + s.npfx, 0);
	ck_assert_int_eq(page.key_count, 0);
	bfs_s3xml_page_clear(&page);
}
END_TEST

START_TEST(test_url_encoded_keys)
{
	struct seen s;
	struct bfs_s3xml_page page;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-encoded.xml", 1, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 1);
	ck_assert_str_eq(s.keys[0], "sp/a b+c%d&e=f~\xc3\xa9'(x).txt");
	bfs_s3xml_page_clear(&page);

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("aws-list-v2-truncated.xml", 1, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 2);
	ck_assert_str_eq(s.keys[0], "happy face.jpg");
	ck_assert_str_eq(s.keys[1], "plus+sign/and space");
	ck_assert_str_eq(s.etags[1], "becf17f89c30367a9a44495d62ed521a-1");
	ck_assert_uint_eq(s.sizes[1], 4192256);
	ck_assert_int_eq(page.is_truncated, 1);
	/* the token is opaque: never url-decoded */
	ck_assert_str_eq(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	bfs_s3xml_page_clear(&page);
}
END_TEST

START_TEST(test_aws_list_delimiter)
{
	struct seen s;
	struct bfs_s3xml_page page;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("aws-list-v2-delimiter.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nobj, 1);
	ck_assert_int_eq(s.npfx, 2);
	ck_assert_str_eq(s.keys[0], "photos/2006/index.html");
	ck_assert_str_eq(s.etags[0], "fba9dede5f27731c9771645a39863328");
	ck_assert_int_eq(s.mtimes[0], 1255369830);  /* 2009-10-12T17:50:30Z */
	ck_assert_str_eq(s.pfx[1], "photos/2006/January/");
	ck_assert_int_eq(page.is_truncated, 0);
	bfs_s3xml_page_clear(&page);
}
END_TEST

/* Fed one byte at a time, the stream parser gives the same result. */
START_TEST(test_streaming_bytewise)
{
	struct seen s;
	struct bfs_s3xml_list_cb cb = { on_obj, on_pfx, on_up, &s, NULL };
	struct bfs_s3xml_page page;
	struct bfs_s3xml_list *p;
	size_t len, i;
	char *xml = read_vec("rgw-list-delimiter.xml", &len);

	memset(&s, 0, sizeof(s));
	p = bfs_s3xml_list_new(&cb, 0, 0);
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < len; i++)
		ck_assert_int_eq(bfs_s3xml_list_feed(p, xml + i, 1), 0);
	ck_assert_int_eq(bfs_s3xml_list_finish(p, &page), 0);
	ck_assert_int_eq(s.nobj, 4);
	ck_assert_int_eq(s.npfx, 3);
	ck_assert_str_eq(s.keys[2], "d/file");
	ck_assert_int_eq(page.key_count, 7);
	bfs_s3xml_page_clear(&page);
	bfs_s3xml_list_free(p);
	free(xml);
}
END_TEST

START_TEST(test_callback_stop_and_error)
{
	struct seen s;
	struct bfs_s3xml_page page;

	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	ck_assert_int_eq(parse_file("rgw-list-truncated.xml", 0, &s, &page),
			 BFS_S3XML_STOPPED);
	ck_assert_int_eq(s.nobj, 2);
	ck_assert_ptr_null(page.next_token);

	memset(&s, 0, sizeof(s));
	s.fail_with = BFS_ERR_NOMEM;
	ck_assert_int_eq(parse_file("rgw-list-truncated.xml", 0, &s, &page),
			 BFS_ERR_NOMEM);
}
END_TEST

START_TEST(test_list_uploads)
{
	struct seen s;
	struct bfs_s3xml_page page;
	int64_t t;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-list-uploads.xml", 0, &s, &page), 0);
	ck_assert_int_eq(s.nup, 1);
	ck_assert_int_eq(s.nobj, 0);
	ck_assert_str_eq(s.keys[0], "mp/obj");
	ck_assert_str_eq(s.up_id, "2~buBH6cZAOChvbM90fzIZX91soIiDE0k");
	ck_assert_int_eq(bfs_s3xml_parse_time("2026-11-28T04:03:58.690Z", &t), 0);
	ck_assert_int_eq(s.up_time, t);
	ck_assert_int_eq(page.is_truncated, 0);
	ck_assert_str_eq(page.next_key_marker, "mp/obj");
	ck_assert_str_eq(page.next_upload_id_marker, "2~buBH6cZAOChvbM90fzIZX91soIiDE0k");
	bfs_s3xml_page_clear(&page);
}
END_TEST

/* An <Error> body where a listing was expected. */
START_TEST(test_list_error_document)
{
	struct seen s;
	struct bfs_s3xml_page page;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("rgw-error-nosuchbucket.xml", 0, &s, &page), 0);
	ck_assert_int_eq(page.is_error, 1);
	ck_assert_str_eq(page.error_code, "NoSuchBucket");
	ck_assert_int_eq(bfs_s3err_map(404, page.error_code), BFS_ERR_NOBUCKET);
	bfs_s3xml_page_clear(&page);
}
END_TEST

static void reply_file(const char *name, struct bfs_s3xml_reply *r)
{
	size_t len;
	char *xml = read_vec(name, &len);

	ck_assert_int_eq(bfs_s3xml_parse_reply(xml, len, r), 0);
	free(xml);
}

START_TEST(test_replies)
{
	struct bfs_s3xml_reply r;
	int64_t t;

	reply_file("rgw-initiate.xml", &r);
	ck_assert_str_eq(r.root, "InitiateMultipartUploadResult");
	ck_assert_str_eq(r.upload_id, "2~buBH6cZAOChvbM90fzIZX91soIiDE0k");
	ck_assert(!bfs_s3xml_is_error(&r));
	reply_file("aws-initiate.xml", &r);
	ck_assert_str_eq(r.upload_id,
			 "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");

	reply_file("aws-complete.xml", &r);
	ck_assert_str_eq(r.root, "CompleteMultipartUploadResult");
	ck_assert_str_eq(r.etag, "3858f62230ac3c915f300c664312c11f-9");
	reply_file("rgw-complete.xml", &r);
	ck_assert_str_eq(r.root, "CompleteMultipartUploadResult");
	ck_assert_str_eq(r.etag, "");         /* RGW quirk, see README */

	/* a 200 OK whose body is an error: must not pass as success */
	reply_file("aws-complete-200-error.xml", &r);
	ck_assert(bfs_s3xml_is_error(&r));
	ck_assert_str_eq(r.code, "InternalError");
	ck_assert_int_eq(bfs_s3err_map(200, r.code), BFS_ERR_SERVER);
	ck_assert(bfs_err_retryable(bfs_s3err_map(200, r.code)));

	reply_file("aws-copy-object.xml", &r);
	ck_assert_str_eq(r.root, "CopyObjectResult");
	ck_assert_str_eq(r.etag, "9b2cf535f27731c974343645a3985328");
	ck_assert_int_eq(r.last_modified, 1256769120); /* 2009-10-28T22:32:00Z */
	reply_file("rgw-copy-object.xml", &r);
	ck_assert_str_eq(r.etag, "5d41402abc4b2a76b9719d911017c592");
	reply_file("rgw-copy-part.xml", &r);
	ck_assert_str_eq(r.root, "CopyPartResult");
	ck_assert_str_eq(r.etag, "5d41402abc4b2a76b9719d911017c592");
	ck_assert_int_eq(bfs_s3xml_parse_time("2026-11-28T04:04:11.000Z", &t), 0);
	ck_assert_int_eq(r.last_modified, t);
}
END_TEST

START_TEST(test_error_documents)
{
	struct bfs_s3xml_reply r;

	reply_file("rgw-error-nosuchkey.xml", &r);
	ck_assert(bfs_s3xml_is_error(&r));
	ck_assert_str_eq(r.code, "NoSuchKey");
	ck_assert_str_eq(r.request_id, "tx00000daa588bc68d56cc0-006b0a50af-1008-default");
	ck_assert_int_eq(bfs_s3err_map(404, r.code), BFS_ERR_NOTFOUND);

	reply_file("rgw-error-nosuchbucket.xml", &r);
	ck_assert_int_eq(bfs_s3err_map(404, r.code), BFS_ERR_NOBUCKET);

	reply_file("rgw-error-internal.xml", &r);
	ck_assert_str_eq(r.message, "This multipart completion is already in progress");
	ck_assert_int_eq(bfs_s3err_map(500, r.code), BFS_ERR_SERVER);

	reply_file("aws-error-accessdenied.xml", &r);
	ck_assert_str_eq(r.code, "AccessDenied");
	ck_assert_str_eq(r.message, "Access Denied");
	ck_assert_str_eq(r.request_id, "656c76696e6727732072657175657374");
	ck_assert_int_eq(bfs_s3err_map(403, r.code), BFS_ERR_ACCESS);
}
END_TEST

START_TEST(test_hostile_and_broken)
{
	struct seen s;
	struct bfs_s3xml_page page;
	struct bfs_s3xml_reply r;
	struct bfs_s3xml_list_cb cb = { on_obj, on_pfx, on_up, &s, NULL };
	struct bfs_s3xml_list *p;
	char *big;
	size_t n;
	const char *cut = "<ListBucketResult><Contents><Key>a</Key>";
	const char *nokey = "<ListBucketResult><Contents><Size>1</Size></Contents>"
			    "</ListBucketResult>";
	const char *badsize = "<ListBucketResult><Contents><Key>a</Key>"
			      "<Size>12x</Size></Contents></ListBucketResult>";

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(parse_file("bad-doctype.xml", 0, &s, &page), BFS_ERR_PROTOCOL);
	ck_assert_int_eq(s.nobj, 0);
	ck_assert_int_eq(bfs_s3xml_parse_list(cut, strlen(cut), &cb, 0, &page),
			 BFS_ERR_PROTOCOL);
	ck_assert_int_eq(bfs_s3xml_parse_list(nokey, strlen(nokey), &cb, 0, &page),
			 BFS_ERR_PROTOCOL);
	ck_assert_int_eq(bfs_s3xml_parse_list(badsize, strlen(badsize), &cb, 0, &page),
			 BFS_ERR_PROTOCOL);
	ck_assert_int_eq(bfs_s3xml_parse_reply("not xml", 7, &r), BFS_ERR_PROTOCOL);
	ck_assert_str_eq(r.root, "");

	/* one element's text over the cap */
	n = BFS_S3XML_TEXT_MAX + 100;
	big = malloc(n + 200);
	ck_assert_ptr_nonnull(big);
	strcpy(big, "<ListBucketResult><Contents><Key>");
	memset(big + strlen(big), 'k', n);
	strcpy(big + 33 + n, "</Key></Contents></ListBucketResult>");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bfs_s3xml_parse_list(big, strlen(big), &cb, 0, &page),
			 BFS_ERR_TOOBIG);
	ck_assert_int_eq(s.nobj, 0);
	free(big);

	/* the whole body over the caller's cap */
	p = bfs_s3xml_list_new(&cb, 0, 64);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(bfs_s3xml_list_feed(p, "<ListBucketResult>", 18), 0);
	ck_assert_int_eq(bfs_s3xml_list_feed(p, nokey, strlen(nokey)), BFS_ERR_TOOBIG);
	ck_assert_int_eq(bfs_s3xml_list_finish(p, &page), BFS_ERR_TOOBIG);
	bfs_s3xml_list_free(p);

	/* an upload id longer than the reply field */
	n = 1100;
	big = malloc(n + 200);
	ck_assert_ptr_nonnull(big);
	strcpy(big, "<InitiateMultipartUploadResult><UploadId>");
	memset(big + strlen(big), 'u', n);
	strcpy(big + 41 + n, "</UploadId></InitiateMultipartUploadResult>");
	ck_assert_int_eq(bfs_s3xml_parse_reply(big, strlen(big), &r), BFS_ERR_TOOBIG);
	free(big);
}
END_TEST

START_TEST(test_parse_time)
{
	int64_t t;

	ck_assert_int_eq(bfs_s3xml_parse_time("1970-01-01T00:00:00.000Z", &t), 0);
	ck_assert_int_eq(t, 0);
	ck_assert_int_eq(bfs_s3xml_parse_time("2015-08-30T12:36:00Z", &t), 0);
	ck_assert_int_eq(t, 1440938160);
	ck_assert_int_eq(bfs_s3xml_parse_time("2015-13-30T12:36:00Z", &t), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_s3xml_parse_time("yesterday", &t), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_s3xml_parse_time("", &t), BFS_ERR_INVAL);
}
END_TEST

START_TEST(test_s3err_table)
{
	ck_assert_int_eq(bfs_s3err_map(200, NULL), 0);
	ck_assert_int_eq(bfs_s3err_map(204, ""), 0);
	ck_assert_int_eq(bfs_s3err_map(206, NULL), 0);
	ck_assert_int_eq(bfs_s3err_map(404, NULL), BFS_ERR_NOTFOUND);   /* HEAD */
	ck_assert_int_eq(bfs_s3err_map(403, NULL), BFS_ERR_ACCESS);
	ck_assert_int_eq(bfs_s3err_map(403, "SignatureDoesNotMatch"), BFS_ERR_ACCESS);
	ck_assert_int_eq(bfs_s3err_map(403, "InvalidAccessKeyId"), BFS_ERR_ACCESS);
	ck_assert_int_eq(bfs_s3err_map(503, "SlowDown"), BFS_ERR_THROTTLED);
	ck_assert_int_eq(bfs_s3err_map(503, NULL), BFS_ERR_THROTTLED);
	ck_assert_int_eq(bfs_s3err_map(429, NULL), BFS_ERR_THROTTLED);
	ck_assert_int_eq(bfs_s3err_map(400, "RequestTimeout"), BFS_ERR_TIMEOUT);
	ck_assert_int_eq(bfs_s3err_map(400, "InvalidArgument"), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_s3err_map(400, "SomethingNew"), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_s3err_map(500, NULL), BFS_ERR_SERVER);
	ck_assert_int_eq(bfs_s3err_map(502, NULL), BFS_ERR_SERVER);
	ck_assert_int_eq(bfs_s3err_map(416, "InvalidRange"), BFS_ERR_RANGE);
	ck_assert_int_eq(bfs_s3err_map(412, NULL), BFS_ERR_PRECONDITION);
	ck_assert_int_eq(bfs_s3err_map(301, "PermanentRedirect"), BFS_ERR_CONFIG);
	ck_assert_int_eq(bfs_s3err_map(400, "AuthorizationHeaderMalformed"),
			 BFS_ERR_CONFIG);
	ck_assert_int_eq(bfs_s3err_map(409, "BucketNotEmpty"), BFS_ERR_NOTEMPTY);
}
END_TEST

START_TEST(test_retry_policy)
{
	struct bfs_retry_policy p;
	int a;

	bfs_retry_policy_default(&p);
	ck_assert_int_ge(p.max_attempts, 2);
	/* transient failures retried while attempts remain */
	ck_assert(bfs_retry_should(&p, 1, BFS_ERR_SERVER));
	ck_assert(bfs_retry_should(&p, 1, BFS_ERR_THROTTLED));
	ck_assert(bfs_retry_should(&p, 1, BFS_ERR_TIMEOUT));
	ck_assert(bfs_retry_should(&p, 1, BFS_ERR_NETWORK));
	ck_assert(!bfs_retry_should(&p, p.max_attempts, BFS_ERR_SERVER));
	/* other 4xx and local errors are final */
	ck_assert(!bfs_retry_should(&p, 1, BFS_ERR_ACCESS));
	ck_assert(!bfs_retry_should(&p, 1, BFS_ERR_NOTFOUND));
	ck_assert(!bfs_retry_should(&p, 1, BFS_ERR_INVAL));
	ck_assert(!bfs_retry_should(&p, 1, BFS_ERR_NOBUCKET));
	ck_assert(!bfs_retry_should(&p, 1, 0));
	ck_assert(!bfs_retry_next(&p, 1, BFS_ERR_ACCESS));

	/* full jitter: [0, min(cap, base * 2^(n-1))] */
	p.max_attempts = 20;
	p.base_ms = 100;
	p.cap_ms = 1000;
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 1, 0), 0);
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 1, 100), 100);
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 1, 101), 0);
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 3, 400), 400);
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 3, 401), 0);
	for (a = 1; a < 40; a++)
		ck_assert_uint_le(bfs_retry_delay_ms(&p, a, 0xffffffffu), 1000);
	ck_assert_uint_eq(bfs_retry_delay_ms(&p, 30, 1000), 1000);
	/* a retry actually sleeps at most the ceiling: base 1 ms */
	p.base_ms = 1;
	p.cap_ms = 2;
	ck_assert(bfs_retry_next(&p, 1, BFS_ERR_SERVER));
}
END_TEST

/* What a ListParts walk saw. */
struct parts_seen {
	int n;
	unsigned num[4];
	uint64_t size[4];
	char etag[4][96];
};

static int on_part(void *arg, const struct bfs_s3xml_part *p)
{
	struct parts_seen *s = arg;

	if (s->n < 4) {
		s->num[s->n] = p->number;
		s->size[s->n] = p->size;
		snprintf(s->etag[s->n], 96, "%s", p->etag);
	}
	s->n++;
	return 0;
}

START_TEST(test_list_parts)
{
	struct bfs_s3xml_list_cb cb;
	struct bfs_s3xml_page page;
	struct parts_seen s;
	char *xml;
	size_t len;

	memset(&cb, 0, sizeof(cb));
	cb.part = on_part;
	cb.arg = &s;
	memset(&s, 0, sizeof(s));
	xml = read_vec("rgw-list-parts.xml", &len);
	ck_assert_ptr_nonnull(xml);
	ck_assert_int_eq(bfs_s3xml_parse_list(xml, len, &cb, 0, &page), 0);
	free(xml);
	ck_assert_int_eq(s.n, 2);
	ck_assert_uint_eq(s.num[0], 1);
	ck_assert_uint_eq(s.size[0], 5242880);
	ck_assert_str_eq(s.etag[0], "4f08eef4096726bff1125e1b1b734644");
	ck_assert_uint_eq(s.num[1], 2);
	ck_assert_uint_eq(s.size[1], 4);
	/* md5("tail") */
	ck_assert_str_eq(s.etag[1], "7aea2552dfe7eb84b9443b6fc9ba6e01");
	ck_assert_int_eq(page.is_truncated, 0);
	bfs_s3xml_page_clear(&page);

	memset(&s, 0, sizeof(s));
	xml = read_vec("rgw-list-parts-truncated.xml", &len);
	ck_assert_ptr_nonnull(xml);
	ck_assert_int_eq(bfs_s3xml_parse_list(xml, len, &cb, 0, &page), 0);
	free(xml);
	ck_assert_int_eq(s.n, 1);
	ck_assert_int_eq(page.is_truncated, 1);
	ck_assert_uint_eq(page.next_part_marker, 1);
	bfs_s3xml_page_clear(&page);

	/* a part without a number, or number 0, is refused */
	memset(&s, 0, sizeof(s));
	{
		static const char nonum[] = "<ListPartsResult><Part><ETag>\"x\""
			"</ETag><Size>1</Size></Part></ListPartsResult>";

		ck_assert_int_eq(bfs_s3xml_parse_list(nonum, sizeof(nonum) - 1,
						      &cb, 0, &page),
				 BFS_ERR_PROTOCOL);
		bfs_s3xml_page_clear(&page);
	}
	{
		static const char bad[] = "<ListPartsResult><Part><PartNumber>"
			"10001</PartNumber><Size>1</Size></Part></ListPartsResult>";

		ck_assert_int_eq(bfs_s3xml_parse_list(bad, sizeof(bad) - 1, &cb,
						      0, &page), BFS_ERR_PROTOCOL);
		bfs_s3xml_page_clear(&page);
	}
	ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_part_plan)
{
	const uint64_t M = 1ull << 20;
	uint64_t end;
	unsigned n;

	/* growing plan: 8 MiB, doubling every 1,000 parts */
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 1), 8 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 1000), 8 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 1001), 16 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 10000), 4096 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 0), 0);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 1, 10001), 0);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 1, 1), 0);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 1, 2), 8 * M);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 1, 1001), 8000 * M);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 1, 1002), 8016 * M);
	/* offsets are the running sum of sizes */
	for (n = 1, end = 0; n <= 10000; n++) {
		ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 1, n), end);
		ck_assert_uint_ge(bfs_mpu_part_size(BFS_MPU_BASE, 1, n), 5 * M);
		ck_assert_uint_le(bfs_mpu_part_size(BFS_MPU_BASE, 1, n), 5ull << 30);
		end += bfs_mpu_part_size(BFS_MPU_BASE, 1, n);
	}
	/* any object up to 5 TiB fits in 10,000 parts */
	ck_assert_uint_ge(end, BFS_MPU_MAX_OBJECT);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1,
					     BFS_MPU_MAX_OBJECT) <= 10000, 1);
	ck_assert_uint_ne(bfs_mpu_part_count(BFS_MPU_BASE, 1,
					     BFS_MPU_MAX_OBJECT), 0);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, end + 1), 0);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, 0), 1);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, 8 * M), 1);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, 8 * M + 1), 2);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, 1024 * M), 128);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 1, 8000 * M + 1),
			  1001);
	/* equal plan for a known size (R2 rule) */
	ck_assert_uint_eq(bfs_mpu_base_for(1024 * M), 8 * M);
	ck_assert_uint_eq(bfs_mpu_base_for(80000 * M), 8 * M);
	ck_assert_uint_eq(bfs_mpu_base_for(80000 * M + 1), 16 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(16 * M, 0, 9999), 16 * M);
	ck_assert_uint_eq(bfs_mpu_part_off(16 * M, 0, 3), 32 * M);
	ck_assert_uint_eq(bfs_mpu_part_count(16 * M, 0, 80000 * M + 1), 5001);
	/* ramp plan of streams: 4 parts of 8 MiB, then 32 MiB doubling
	 * every 1,000 parts */
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 1), 8 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 4), 8 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 5), 32 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 1004), 32 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 1005), 64 * M);
	ck_assert_uint_eq(bfs_mpu_part_size(BFS_MPU_BASE, 2, 10001), 0);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 2, 5), 32 * M);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 2, 6), 64 * M);
	ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 2, 1005),
			  32 * M + 32000 * M);
	for (n = 1, end = 0; n <= 10000; n++) {
		ck_assert_uint_eq(bfs_mpu_part_off(BFS_MPU_BASE, 2, n), end);
		if (end < BFS_MPU_MAX_OBJECT)   /* S3: 5 MiB..5 GiB */
			ck_assert_uint_le(bfs_mpu_part_size(BFS_MPU_BASE, 2, n),
					  5ull << 30);
		end += bfs_mpu_part_size(BFS_MPU_BASE, 2, n);
	}
	ck_assert_uint_ge(end, BFS_MPU_MAX_OBJECT);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 2, 32 * M), 4);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 2, 32 * M + 1), 5);
	/* 1 GiB: 4 parts of 8 MiB, 31 of 32 MiB */
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 2, 1024 * M), 35);
	ck_assert_uint_eq(bfs_mpu_part_count(BFS_MPU_BASE, 2, end + 1), 0);
}
END_TEST

/* The whole-object plan the s3 and azure providers upload by. */
START_TEST(test_whole_object_plan)
{
	const uint64_t M = 1ull << 20, G = 1ull << 30;
	uint64_t base, sum = 0;
	unsigned n, i;

	/* just above one PUT: two parts of the streaming base, short tail */
	ck_assert_int_eq(bfs_mpu_plan(BFS_MPU_SINGLE_MAX + 1, BFS_MPU_BASE,
				      BFS_MPU_S3_PART_MAX, &base, &n), 0);
	ck_assert_uint_eq(base, BFS_MPU_BASE);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(bfs_mpu_part_len(base, BFS_MPU_SINGLE_MAX + 1, 1),
			  8 * M);
	ck_assert_uint_eq(bfs_mpu_part_len(base, BFS_MPU_SINGLE_MAX + 1, 2), 1);
	ck_assert_uint_eq(bfs_mpu_part_len(base, BFS_MPU_SINGLE_MAX + 1, 3), 0);
	ck_assert_uint_eq(bfs_mpu_part_len(base, BFS_MPU_SINGLE_MAX + 1, 0), 0);
	/* the same base as the streaming engine's equal plan */
	ck_assert_int_eq(bfs_mpu_plan(100 * G, BFS_MPU_BASE, BFS_MPU_S3_PART_MAX,
				      &base, &n), 0);
	ck_assert_uint_eq(base, bfs_mpu_base_for(100 * G));
	ck_assert_uint_eq(base, 16 * M);
	ck_assert_uint_le(n, BFS_MPU_MAX_PARTS);
	ck_assert_uint_eq(n, bfs_mpu_part_count(base, BFS_MPU_PLAN_EQUAL,
						100 * G));
	for (i = 1; i <= n; i++) {
		uint64_t l = bfs_mpu_part_len(base, 100 * G, i);

		/* every part but the last at least the S3 minimum */
		if (i < n)
			ck_assert_uint_ge(l, BFS_MPU_PART_MIN);
		ck_assert_uint_eq(bfs_mpu_part_off(base, 0, i), sum);
		sum += l;
	}
	ck_assert_uint_eq(sum, 100 * G);
	/* an exact multiple: the last part is whole */
	ck_assert_int_eq(bfs_mpu_plan(24 * M, BFS_MPU_BASE, BFS_MPU_S3_PART_MAX,
				      &base, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(bfs_mpu_part_len(base, 24 * M, 3), 8 * M);
	/* 10,000 parts exactly, then the base doubles */
	ck_assert_int_eq(bfs_mpu_plan(80000 * M, BFS_MPU_BASE,
				      BFS_MPU_S3_PART_MAX, &base, &n), 0);
	ck_assert_uint_eq(n, 10000);
	ck_assert_int_eq(bfs_mpu_plan(80000 * M + 1, BFS_MPU_BASE,
				      BFS_MPU_S3_PART_MAX, &base, &n), 0);
	ck_assert_uint_eq(base, 16 * M);
	ck_assert_uint_eq(n, 5001);
	/* copies: parts of at least 512 MiB */
	ck_assert_int_eq(bfs_mpu_plan(6 * G, BFS_MPU_COPY_BASE,
				      BFS_MPU_S3_PART_MAX, &base, &n), 0);
	ck_assert_uint_eq(base, 512 * M);
	ck_assert_uint_eq(n, 12);
	/* 5 TiB (S3's largest object) fits S3 and Azure part limits */
	ck_assert_int_eq(bfs_mpu_plan(BFS_MPU_MAX_OBJECT, BFS_MPU_BASE,
				      BFS_MPU_S3_PART_MAX, &base, &n), 0);
	ck_assert_uint_le(base, BFS_MPU_S3_PART_MAX);
	ck_assert_uint_le(n, BFS_MPU_MAX_PARTS);
	ck_assert_uint_ge((uint64_t)n * base, BFS_MPU_MAX_OBJECT);
	ck_assert_int_eq(bfs_mpu_plan(BFS_MPU_MAX_OBJECT, BFS_MPU_BASE,
				      BFS_MPU_AZ_BLOCK_MAX, &base, &n), 0);
	ck_assert_uint_le(base, BFS_MPU_AZ_BLOCK_MAX);
	/* beyond: a part would exceed the service's part limit */
	ck_assert_int_eq(bfs_mpu_plan(10000 * BFS_MPU_S3_PART_MAX + 1,
				      BFS_MPU_BASE, BFS_MPU_S3_PART_MAX,
				      &base, &n), BFS_ERR_TOOBIG);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(bfs_mpu_plan(50000 * G, BFS_MPU_BASE,
				      BFS_MPU_AZ_BLOCK_MAX, &base, &n),
			 BFS_ERR_TOOBIG);
	/* an empty object: one empty part; bad minimums refused */
	ck_assert_int_eq(bfs_mpu_plan(0, BFS_MPU_BASE, BFS_MPU_S3_PART_MAX,
				      &base, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(bfs_mpu_plan(20 * M, 1 * M, BFS_MPU_S3_PART_MAX,
				      &base, &n), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_mpu_plan(20 * M, 8 * G, BFS_MPU_S3_PART_MAX,
				      &base, &n), BFS_ERR_INVAL);
}
END_TEST

START_TEST(test_md5_and_multipart_etag)
{
	char path[] = "/tmp/bfs-unit-md5-XXXXXX", hex[33], et[64];
	char md5s[2][33];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, "xxtailxx", 8), 8);
	ck_assert_int_eq(bfs_mpu_md5_fd(fd, 2, 4, hex), 0);
	ck_assert_str_eq(hex, "7aea2552dfe7eb84b9443b6fc9ba6e01");
	ck_assert_int_eq(bfs_mpu_md5_fd(fd, 0, 0, hex), 0);
	ck_assert_str_eq(hex, "d41d8cd98f00b204e9800998ecf8427e");
	/* a range past the end never matches */
	ck_assert_int_ne(bfs_mpu_md5_fd(fd, 6, 4, hex), 0);
	close(fd);
	/* S3's multipart etag: md5 of the binary part md5s, "-N"
	 * (python: md5(bytes.fromhex(a) + bytes.fromhex(b)).hexdigest()) */
	snprintf(md5s[0], 33, "%s", "4f08eef4096726bff1125e1b1b734644");
	snprintf(md5s[1], 33, "%s", "7aea2552dfe7eb84b9443b6fc9ba6e01");
	ck_assert_int_eq(bfs_mpu_etag((const char (*)[33])md5s, 2, et,
				      sizeof(et)), 0);
	ck_assert_str_eq(et, "a45f1422f2dbe3d2890829dd76adba1b-2");
	md5s[1][0] = 'z';
	ck_assert_int_eq(bfs_mpu_etag((const char (*)[33])md5s, 2, et,
				      sizeof(et)), BFS_ERR_INVAL);
}
END_TEST

Suite *s3xml_suite(void)
{
	Suite *s = suite_create("s3xml");
	TCase *tc = tcase_create("s3xml");
	TCase *te = tcase_create("s3err");

	tcase_add_test(tc, test_rgw_list_delimiter);
	tcase_add_test(tc, test_rgw_list_truncated_and_continued);
	tcase_add_test(tc, test_url_encoded_keys);
	tcase_add_test(tc, test_aws_list_delimiter);
	tcase_add_test(tc, test_streaming_bytewise);
	tcase_add_test(tc, test_callback_stop_and_error);
	tcase_add_test(tc, test_list_uploads);
	tcase_add_test(tc, test_list_parts);
	tcase_add_test(tc, test_part_plan);
	tcase_add_test(tc, test_whole_object_plan);
	tcase_add_test(tc, test_md5_and_multipart_etag);
	tcase_add_test(tc, test_list_error_document);
	tcase_add_test(tc, test_replies);
	tcase_add_test(tc, test_error_documents);
	tcase_add_test(tc, test_hostile_and_broken);
	tcase_add_test(tc, test_parse_time);
	suite_add_tcase(s, tc);
	tcase_add_test(te, test_s3err_table);
	tcase_add_test(te, test_retry_policy);
	suite_add_tcase(s, te);
	return s;
}
