/*
 * test_azure.c - the pure parts of the azure provider: Shared Key string
 * to sign and signature, the service SAS, key decoding (azsign.c), the
 * List Blobs / Get Block List parser (azxml.c), and the azure and gcs
 * settings of the config file.
 *
 * Signature vectors: the strings to sign are written out here field by
 * field from Microsoft's "Authorize with Shared Key" and "Create a service
 * SAS" pages; the expected signatures were computed independently (Python
 * hmac/base64) over those strings with Azurite's published devstoreaccount1
 * key.  The integration suite checks the same code against Azurite, which
 * verifies every signature it receives.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_azsign.h"
#include "bfs_azxml.h"
#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_error.h"
#include "bfs_provider.h"
#include "unit.h"

#define AZ_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6" \
	       "tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define AZ_DATE "Sun, 06 Nov 1994 08:49:37 GMT"
#define AZ_TIME ((time_t)784111777)

START_TEST(test_string_to_sign_put)
{
	/* any order and case; Content-Length 11 kept; x-ms-* sorted and
	 * lowercased; query names lowercased and sorted, values decoded */
	static const struct bfs_sigv4_kv h[] = {
		{ "X-Ms-Version", BFS_AZ_VERSION }, { "x-ms-date", AZ_DATE },
		{ "Content-Type", "text/plain" }, { "Range", "bytes=0-9" },
		{ "content-length", "11" }, { "x-ms-meta-mode", " 33188 " },
		{ "If-Match", "\"0x8D\"" }, { "Content-MD5", "XrY7u+Ae7tCTyyK7j1rNww==" },
		{ "Accept", "*/*" },
	};
	static const struct bfs_sigv4_kv q[] = {
		{ "comp", "block" }, { "BlockId", "QUJD+/==" },
	};
	struct bfs_azsign_req r = { "PUT", "devstoreaccount1",
		"/devstoreaccount1/c1/a%20b/c.txt", q, 2, h, 9 };
	unsigned char key[BFS_AZ_KEY_MAX];
	struct bfs_buf sts;
	char auth[256];
	size_t klen;

	bfs_buf_init(&sts, 1 << 16);
	ck_assert_int_eq(bfs_azsign_key_decode(AZ_KEY, key, &klen), 0);
	ck_assert_uint_eq(klen, 64);
	ck_assert_int_eq(bfs_azsign_sign(&r, key, klen, auth, sizeof(auth), &sts), 0);
	ck_assert_str_eq(bfs_buf_str(&sts),
		"PUT\n\n\n11\nXrY7u+Ae7tCTyyK7j1rNww==\ntext/plain\n\n\n\"0x8D\"\n\n\n"
		"bytes=0-9\nx-ms-date:" AZ_DATE "\nx-ms-meta-mode:33188\n"
		"x-ms-version:2021-08-06\n"
		"/devstoreaccount1/devstoreaccount1/c1/a%20b/c.txt\n"
		"blockid:QUJD+/==\ncomp:block");
	ck_assert_str_eq(auth, "SharedKey devstoreaccount1:"
			 "7sh1wP2YaSWyt9k4pSMCPAutc9QF5m4rAl/mG8hePNY=");
	bfs_buf_free(&sts);
}
END_TEST

START_TEST(test_string_to_sign_list_zero_length)
{
	/* Content-Length 0 is signed as "" (versions 2015-02-21 and later) */
	static const struct bfs_sigv4_kv h[] = {
		{ "x-ms-date", AZ_DATE }, { "x-ms-version", BFS_AZ_VERSION },
		{ "content-length", "0" },
	};
	static const struct bfs_sigv4_kv q[] = {
		{ "restype", "container" }, { "comp", "list" },
		{ "prefix", "a b/" }, { "include", "metadata" },
	};
	struct bfs_azsign_req r = { "GET", "devstoreaccount1",
		"/devstoreaccount1/c1", q, 4, h, 3 };
	unsigned char key[BFS_AZ_KEY_MAX];
	struct bfs_buf sts;
	char auth[256];
	size_t klen;

	bfs_buf_init(&sts, 1 << 16);
	ck_assert_int_eq(bfs_azsign_key_decode(AZ_KEY, key, &klen), 0);
	ck_assert_int_eq(bfs_azsign_sign(&r, key, klen, auth, sizeof(auth), &sts), 0);
	ck_assert_str_eq(bfs_buf_str(&sts),
		"GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:" AZ_DATE
		"\nx-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/c1"
		"\ncomp:list\ninclude:metadata\nprefix:a b/\nrestype:container");
	ck_assert_str_eq(auth, "SharedKey devstoreaccount1:"
			 "7X4v0y25y6krO7Bx4sLMRbAm9EY19DzLl4hxcg0orN0=");
	/* bad requests */
	r.path = "no-slash";
	ck_assert_int_eq(bfs_azsign_string(&r, &sts), BFS_ERR_INVAL);
	bfs_buf_free(&sts);
}
END_TEST

START_TEST(test_sas_and_date)
{
	unsigned char key[BFS_AZ_KEY_MAX];
	struct bfs_buf q;
	char d[32];
	size_t klen;

	bfs_azsign_date(AZ_TIME, d);
	ck_assert_str_eq(d, AZ_DATE);
	bfs_buf_init(&q, 4096);
	ck_assert_int_eq(bfs_azsign_key_decode(AZ_KEY, key, &klen), 0);
	ck_assert_int_eq(bfs_azsign_sas("devstoreaccount1", "c1", "a b/c.txt",
					key, klen, AZ_TIME, 3600, &q), 0);
	ck_assert_str_eq(bfs_buf_str(&q), "sv=2021-08-06&se=1994-11-06T09%3A49%3A37Z"
			 "&sr=b&sp=r&sig=6GpdDvO0tTzOVv3iQ99flN8FSxxChtK80RZC7r9MFO4%3D");
	ck_assert_int_eq(bfs_azsign_sas("devstoreaccount1", "c1", "k", key, klen,
					AZ_TIME, 0, &q), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_azsign_sas("devstoreaccount1", "c1", "k", key, klen,
					AZ_TIME, BFS_AZ_SAS_MAX + 1, &q),
			 BFS_ERR_INVAL);
	bfs_buf_free(&q);
}
END_TEST

START_TEST(test_key_decode_errors)
{
	unsigned char key[BFS_AZ_KEY_MAX];
	size_t n;

	ck_assert_int_eq(bfs_azsign_key_decode("", key, &n), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_azsign_key_decode("abc", key, &n), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_azsign_key_decode("ab=c", key, &n), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_azsign_key_decode("a*cd", key, &n), BFS_ERR_INVAL);
	ck_assert_int_eq(bfs_azsign_key_decode("YWI=", key, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(memcmp(key, "ab", 2), 0);
}
END_TEST

struct seen {
	char names[8][64];
	int dir[8], folder[8];
	char mode[8][16];
	unsigned long long size[8];
	int n;
};

static int on_blob(void *arg, const struct bfs_azxml_blob *b)
{
	struct seen *s = arg;

	if (s->n == 8)
		return -1;
	snprintf(s->names[s->n], 64, "%s", b->name);
	s->dir[s->n] = b->is_prefix;
	s->folder[s->n] = b->is_folder;
	snprintf(s->mode[s->n], 16, "%s", b->meta_mode ? b->meta_mode : "-");
	s->size[s->n] = b->size;
	s->n++;
	return 0;
}

START_TEST(test_xml_list)
{
	static const char xml[] =
		"<?xml version=\"1.0\" encoding=\"utf-8\"?>"
		"<EnumerationResults ServiceEndpoint=\"http://x/\" ContainerName=\"c\">"
		"<Prefix>a/</Prefix><Delimiter>/</Delimiter><Blobs>"
		"<Blob><Name>a/b</Name><Properties><Last-Modified>" AZ_DATE
		"</Last-Modified><Etag>0x8D1</Etag><Content-Length>0</Content-Length>"
		"</Properties><Metadata><hdi_isfolder>true</hdi_isfolder>"
		"<mode>16877</mode></Metadata></Blob>"
		"<Blob><Name Encoded=\"true\">a/ctl%01x</Name><Properties>"
		"<Content-Length>12</Content-Length></Properties></Blob>"
		"<BlobPrefix><Name>a/b/</Name></BlobPrefix>"
		"</Blobs><NextMarker>2!72!MDAw</NextMarker></EnumerationResults>";
	struct seen s;
	char *next = NULL;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bfs_azxml_parse_list(xml, strlen(xml), on_blob, &s,
					      &next), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_str_eq(s.names[0], "a/b");
	ck_assert(s.folder[0] && !s.dir[0]);
	ck_assert_str_eq(s.mode[0], "16877");
	ck_assert_str_eq(s.names[1], "a/ctl\001x");   /* azxml_encoded_name */
	ck_assert_uint_eq(s.size[1], 12);
	ck_assert_str_eq(s.mode[1], "-");
	ck_assert_str_eq(s.names[2], "a/b/");
	ck_assert(s.dir[2]);
	ck_assert_str_eq(next, "2!72!MDAw");
	free(next);
}
END_TEST

static int on_block(void *arg, const struct bfs_azxml_block *b)
{
	int *n = arg;

	n[b->committed ? 0 : 1] += (int)b->size;
	return 0;
}

START_TEST(test_xml_blocks_and_bad)
{
	static const char xml[] =
		"<BlockList><CommittedBlocks><Block><Name>QQ==</Name><Size>5</Size>"
		"</Block></CommittedBlocks><UncommittedBlocks><Block><Name>Qg==</Name>"
		"<Size>7</Size></Block><Block><Name>Qw==</Name><Size>1</Size></Block>"
		"</UncommittedBlocks></BlockList>";
	static const char doctype[] =
		"<!DOCTYPE x [<!ENTITY a \"b\">]><EnumerationResults/>";
	int n[2] = { 0, 0 };
	char *next = NULL;

	ck_assert_int_eq(bfs_azxml_parse_blocks(xml, strlen(xml), on_block, n), 0);
	ck_assert_int_eq(n[0], 5);
	ck_assert_int_eq(n[1], 8);
	ck_assert_int_eq(bfs_azxml_parse_list(doctype, strlen(doctype), NULL,
					      NULL, &next), BFS_ERR_PROTOCOL);
	ck_assert_int_eq(bfs_azxml_parse_list("<a>", 3, NULL, NULL, &next),
			 BFS_ERR_PROTOCOL);
	ck_assert_ptr_null(next);
}
END_TEST

static int parse(const char *text, struct bfs_config **c, char *err, size_t n)
{
	return bfs_config_parse(text, "/etc/bfs/t.conf", c, err, n);
}

START_TEST(test_config_azure)
{
	struct bfs_config *c = NULL;
	char err[512];

	ck_assert_int_eq(parse("[bucket archive]\nprovider = azure\n"
			       "account_name = myaccount\nbucket_name = my-container\n"
			       "account_key = " AZ_KEY "\n", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c->buckets[0].provider, BFS_PROV_AZURE);
	ck_assert_str_eq(c->buckets[0].account_id, "myaccount");
	ck_assert_str_eq(c->buckets[0].secret_access_key, AZ_KEY);
	ck_assert_ptr_null(c->buckets[0].region);
	bfs_config_free(c);
	ck_assert_int_eq(parse("[bucket a]\nprovider = azure\naccount_name = x1\n"
			       "bucket_name = ccc\nsas_token = sv=1&sig=2\n"
			       "endpoint = http://127.0.0.1:10000/devstoreaccount1\n",
			       &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->buckets[0].session_token, "sv=1&sig=2");
	bfs_config_free(c);
}
END_TEST

START_TEST(test_config_azure_errors)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "[bucket a]\nprovider = azure\nbucket_name = ccc\naccount_key = YQ==\n",
		  "t.conf:1: key 'account_name': required for provider azure" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = ccc\n",
		  "t.conf:1: key 'account_key': required for provider azure" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = C_C\n"
		  "account_key = YQ==\n",
		  "t.conf:4: key 'bucket_name': invalid container name" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = ccc\n"
		  "account_key = YQ==\nsas_token = s\n",
		  "t.conf:6: key 'sas_token': give account_key or sas_token, not both" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = ccc\n"
		  "secret_access_key = YQ==\n",
		  "t.conf:5: key 'secret_access_key': not used by provider azure" },
		{ "[bucket a]\nprovider = s3\nbucket_name = b\naccount_key = YQ==\n",
		  "t.conf:4: key 'account_key': not used by provider s3" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = ccc\n"
		  "account_key = YQ==\naccount_key_file = /nonexistent\n",
		  "t.conf:6: key 'account_key_file': the secret is already given by "
		  "'account_key'" },
		{ "[bucket a]\nprovider = azure\naccount_name = x\nbucket_name = ccc\n"
		  "account_key = YQ==\nregion = us\n",
		  "t.conf:6: key 'region': not used by provider azure" },
	};
	struct bfs_config *c = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse(cases[i].text, &c, err, sizeof(err)),
				 BFS_ERR_CONFIG);
		ck_assert_ptr_null(c);
		ck_assert_msg(strstr(err, cases[i].want) != NULL,
			      "case %zu: got '%s', want '%s'", i, err, cases[i].want);
	}
}
END_TEST

START_TEST(test_config_gcs_preset)
{
	struct bfs_config *c = NULL;
	char err[512];

	ck_assert_int_eq(parse("[bucket g]\nprovider = gcs\nbucket_name = my-gcs\n"
			       "access_key_id = GOOG1E\nsecret_access_key = s\n",
			       &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c->buckets[0].provider, BFS_PROV_GCS);
	ck_assert_str_eq(c->buckets[0].region, "auto");
	ck_assert_ptr_null(c->buckets[0].endpoint);
	ck_assert_int_eq(c->buckets[0].path_style, 0);
	ck_assert_str_eq(bfs_provider_kind_name(BFS_PROV_GCS), "gcs");
	ck_assert_int_eq(bfs_provider_kind_parse("azure"), BFS_PROV_AZURE);
	bfs_config_free(c);
}
END_TEST

/* The gcs preset as the s3 code applies it, seen in a presigned URL
 * (no network): virtual-hosted storage.googleapis.com, region auto,
 * only host signed (never Accept-Encoding). */
START_TEST(test_gcs_preset_presign)
{
	struct bfs_bucket_conf bc;
	struct bfs_provider *p = NULL;
	char err[256], *url = NULL;

	memset(&bc, 0, sizeof(bc));
	bc.name = (char *)"g";
	bc.provider = BFS_PROV_GCS;
	bc.bucket_name = (char *)"my-gcs";
	bc.region = (char *)"auto";
	bc.access_key_id = (char *)"GOOG1EKEY";
	bc.secret_access_key = (char *)"secret";
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), 0);
	ck_assert_str_eq(p->ops->name, "s3");
	ck_assert_int_eq(p->ops->presign(p->st, "a b.txt", 60, &url), 0);
	ck_assert_msg(!strncmp(url, "https://my-gcs.storage.googleapis.com/a%20b.txt?",
			       48), "%s", url);
	ck_assert_ptr_nonnull(strstr(url, "%2Fauto%2Fs3%2Faws4_request"));
	ck_assert_ptr_nonnull(strstr(url, "X-Amz-SignedHeaders=host&"));
	free(url);
	bfs_provider_close(p);
	/* azure: a SAS for the default endpoint */
	memset(&bc, 0, sizeof(bc));
	bc.name = (char *)"a";
	bc.provider = BFS_PROV_AZURE;
	bc.bucket_name = (char *)"cont";
	bc.account_id = (char *)"acct";
	bc.secret_access_key = (char *)AZ_KEY;
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)), 0);
	ck_assert_str_eq(p->ops->name, "azure");
	ck_assert_int_eq(p->ops->presign(p->st, "d/x y", 60, &url), 0);
	ck_assert_msg(!strncmp(url, "https://acct.blob.core.windows.net/cont/d/x%20y"
			       "?sv=2021-08-06&se=", 65), "%s", url);
	ck_assert_ptr_nonnull(strstr(url, "&sr=b&sp=r&sig="));
	free(url);
	bfs_provider_close(p);
	/* a key that is not base64 is refused at open, naming the bucket */
	bc.secret_access_key = (char *)"not base64!";
	ck_assert_int_eq(bfs_provider_open(&bc, &p, err, sizeof(err)),
			 BFS_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err, "bucket 'a': account_key is not base64"));
}
END_TEST

Suite *azure_suite(void)
{
	Suite *s = suite_create("azure");
	TCase *tc = tcase_create("azure");

	tcase_add_test(tc, test_string_to_sign_put);
	tcase_add_test(tc, test_string_to_sign_list_zero_length);
	tcase_add_test(tc, test_sas_and_date);
	tcase_add_test(tc, test_key_decode_errors);
	tcase_add_test(tc, test_xml_list);
	tcase_add_test(tc, test_xml_blocks_and_bad);
	tcase_add_test(tc, test_config_azure);
	tcase_add_test(tc, test_config_azure_errors);
	tcase_add_test(tc, test_config_gcs_preset);
	tcase_add_test(tc, test_gcs_preset_presign);
	suite_add_tcase(s, tc);
	return s;
}
