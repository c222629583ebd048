/*
 * test_crypto.c - sealing round trips and failures, key file handling
 * (permissions, formats, exclusive creation), SHA-256 vectors.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfs_crypto.h"
#include "bfs_error.h"
#include "unit.h"

static char tmpdir[64];

static void dir_setup(void)
{
	strcpy(tmpdir, "/tmp/bfs-crypto-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void dir_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void fill_key(unsigned char key[BFS_MASTER_KEY_LEN], unsigned char v)
{
	memset(key, v, BFS_MASTER_KEY_LEN);
}

START_TEST(seal_roundtrip_all_lengths)
{
	unsigned char key[BFS_MASTER_KEY_LEN];
	char plain[64], *sealed = NULL, *opened = NULL;
	size_t len;

	fill_key(key, 7);
	/* Every base64 padding case and the empty secret. */
	for (len = 0; len < 40; len++) {
		memset(plain, 'a' + (int)(len % 26), len);
		plain[len] = '\0';
		ck_assert_int_eq(bfs_crypto_seal(key, "bucket-id", plain, &sealed), 0);
		ck_assert_int_eq(strncmp(sealed, "v1:", 3), 0);
		ck_assert_ptr_null(strstr(sealed, len > 3 ? plain : "\x01"));
		ck_assert_int_eq(bfs_crypto_open(key, "bucket-id", sealed, &opened), 0);
		ck_assert_str_eq(opened, plain);
		bfs_secret_free(opened);
		free(sealed);
	}
}
END_TEST

START_TEST(seal_nonce_differs)
{
	unsigned char key[BFS_MASTER_KEY_LEN];
	char *a = NULL, *b = NULL;

	fill_key(key, 1);
	ck_assert_int_eq(bfs_crypto_seal(key, "id", "secret", &a), 0);
	ck_assert_int_eq(bfs_crypto_seal(key, "id", "secret", &b), 0);
	ck_assert_str_ne(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(open_wrong_key_aad_tamper)
{
	unsigned char key[BFS_MASTER_KEY_LEN], other[BFS_MASTER_KEY_LEN];
	char *sealed = NULL, *opened = (char *)1, *copy;
	size_t i;

	fill_key(key, 3);
	fill_key(other, 4);
	ck_assert_int_eq(bfs_crypto_seal(key, "id-a", "the secret value", &sealed), 0);
	ck_assert_int_eq(bfs_crypto_open(other, "id-a", sealed, &opened), BFS_ERR_CRYPTO);
	ck_assert_ptr_null(opened);
	ck_assert_int_eq(bfs_crypto_open(key, "id-b", sealed, &opened), BFS_ERR_CRYPTO);
	ck_assert_int_eq(bfs_crypto_open(key, NULL, sealed, &opened), BFS_ERR_CRYPTO);
	/* Flip each base64 char to another valid one: never opens. */
	copy = strdup(sealed);
	for (i = 3; copy[i] && copy[i] != '='; i++) {
		char c = copy[i];

		copy[i] = c == 'A' ? 'B' : 'A';
		ck_assert_int_eq(bfs_crypto_open(key, "id-a", copy, &opened),
				 BFS_ERR_CRYPTO);
		copy[i] = c;
	}
	ck_assert_int_eq(bfs_crypto_open(key, "id-a", copy, &opened), 0);
	bfs_secret_free(opened);
	free(copy);
	free(sealed);
}
END_TEST

START_TEST(open_bad_format)
{
	static const char *const bad[] = {
		"", "v1", "v1:", "v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"v1:AAAA",                                   /* too short */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* len % 4 */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=A=", /* '=' inside */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA*A",
		"v1: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* tag mismatch */
	};
	unsigned char key[BFS_MASTER_KEY_LEN];
	char *opened = NULL;
	size_t i;

	fill_key(key, 9);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(bfs_crypto_open(key, "id", bad[i], &opened) == BFS_ERR_CRYPTO,
			      "accepted '%s'", bad[i]);
	ck_assert_ptr_null(opened);
}
END_TEST

START_TEST(key_create_and_load)
{
	unsigned char key[BFS_MASTER_KEY_LEN], key2[BFS_MASTER_KEY_LEN];
	char path[128], err[256], buf[100];
	struct stat st;
	mode_t old;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "%s/master.key", tmpdir);
	old = umask(0);
	ck_assert_int_eq(bfs_crypto_create_key(path, err, sizeof(err)), 0);
	umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(n, 65);
	ck_assert_int_eq(buf[64], '\n');
	for (i = 0; i < 64; i++)
		ck_assert(strchr("0123456789abcdef", buf[i]) != NULL);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), 0);
	/* The loaded key is the hex content. */
	for (i = 0; i < BFS_MASTER_KEY_LEN; i++) {
		unsigned v;

		sscanf(buf + 2 * i, "%2x", &v);
		ck_assert_uint_eq(key[i], v);
	}
	/* Second create refuses. */
	ck_assert_int_eq(bfs_crypto_create_key(path, err, sizeof(err)), BFS_ERR_EXISTS);
	ck_assert_int_eq(bfs_crypto_load_key(path, key2, err, sizeof(err)), 0);
	ck_assert_int_eq(bfs_memeq_ct(key, key2, sizeof(key)), 0);
}
END_TEST

START_TEST(key_create_refuses_symlink)
{
	char path[128], target[128], err[256];

	snprintf(target, sizeof(target), "%s/target", tmpdir);
	snprintf(path, sizeof(path), "%s/link.key", tmpdir);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_ne(bfs_crypto_create_key(path, err, sizeof(err)), 0);
	ck_assert_int_ne(access(target, F_OK), 0);
}
END_TEST

START_TEST(key_load_permissions)
{
	static const mode_t modes[] = { 0640, 0604, 0610, 0601, 0660, 0644 };
	unsigned char key[BFS_MASTER_KEY_LEN], raw[BFS_MASTER_KEY_LEN];
	char path[128], err[256], want[16];
	size_t i;

	snprintf(path, sizeof(path), "%s/open.key", tmpdir);
	memset(raw, 0x5a, sizeof(raw));
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(path, raw, sizeof(raw), modes[i]);
		err[0] = '\0';
		ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)),
				 BFS_ERR_ACCESS);
		ck_assert_ptr_nonnull(strstr(err, path));
		snprintf(want, sizeof(want), "%04o", (unsigned)modes[i]);
		ck_assert_msg(strstr(err, want) != NULL, "%s lacks %s", err, want);
	}
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(key, raw, sizeof(raw)), 0);
	snprintf(path, sizeof(path), "%s/missing.key", tmpdir);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)),
			 BFS_ERR_NOTFOUND);
}
END_TEST

START_TEST(key_load_formats)
{
	static const char hex[] =
		"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
	unsigned char key[BFS_MASTER_KEY_LEN];
	char path[128], err[256], buf[80];

	snprintf(path, sizeof(path), "%s/fmt.key", tmpdir);
	write_file(path, hex, 64, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), 0);
	ck_assert_uint_eq(key[0], 0x00);
	ck_assert_uint_eq(key[1], 0x11);
	ck_assert_uint_eq(key[31], 0xff);
	snprintf(buf, sizeof(buf), "%s\n", hex);
	write_file(path, buf, 65, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), 0);
	ck_assert_uint_eq(key[15], 0xff);
	/* Wrong sizes and non-hex content are refused. */
	write_file(path, hex, 63, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), BFS_ERR_CRYPTO);
	ck_assert_ptr_nonnull(strstr(err, path));
	write_file(path, hex, 33, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), BFS_ERR_CRYPTO);
	snprintf(buf, sizeof(buf), "%s\n\n", hex);
	write_file(path, buf, 66, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), BFS_ERR_CRYPTO);
	memcpy(buf, hex, 64);
	buf[10] = 'g';
	write_file(path, buf, 64, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), BFS_ERR_CRYPTO);
	write_file(path, "", 0, 0600);
	ck_assert_int_eq(bfs_crypto_load_key(path, key, err, sizeof(err)), BFS_ERR_CRYPTO);
}
END_TEST

START_TEST(sha256_vectors)
{
	char out[65];

	bfs_sha256_hex("", 0, out);
	ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	bfs_sha256_hex("abc", 3, out);
	ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(memeq_and_random)
{
	unsigned char a[32], b[32];

	ck_assert_int_eq(bfs_memeq_ct("abcd", "abcd", 4), 0);
	ck_assert_int_ne(bfs_memeq_ct("abcd", "abce", 4), 0);
	ck_assert_int_eq(bfs_memeq_ct("x", "y", 0), 0);
	ck_assert_int_eq(bfs_random(a, sizeof(a)), 0);
	ck_assert_int_eq(bfs_random(b, sizeof(b)), 0);
	ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
	bfs_secret_free(NULL);
}
END_TEST

Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("seal");
	TCase *tk = tcase_create("keyfile");

	tcase_add_test(tc, seal_roundtrip_all_lengths);
	tcase_add_test(tc, seal_nonce_differs);
	tcase_add_test(tc, open_wrong_key_aad_tamper);
	tcase_add_test(tc, open_bad_format);
	tcase_add_test(tc, sha256_vectors);
	tcase_add_test(tc, memeq_and_random);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tk, dir_setup, dir_teardown);
	tcase_add_test(tk, key_create_and_load);
	tcase_add_test(tk, key_create_refuses_symlink);
	tcase_add_test(tk, key_load_permissions);
	tcase_add_test(tk, key_load_formats);
	suite_add_tcase(s, tk);
	return s;
}
