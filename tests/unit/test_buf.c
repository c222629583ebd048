/*
 * test_buf.c - the capped buffer (src/util/buf.c): growth, the cap and
 * what happens past it, printf, JSON escaping, steal and reset; the hex
 * encoder/decoder beside it and the whole reads of src/util/io.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_io.h"
#include "unit.h"

START_TEST(empty_buffer)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 100);
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(bfs_buf_str(&b), "");
	bfs_buf_free(&b);
	bfs_buf_free(&b);          /* twice is safe */
	ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(add_and_grow)
{
	struct bfs_buf b;
	size_t i;

	bfs_buf_init(&b, 1 << 20);
	ck_assert_int_eq(bfs_buf_adds(&b, "hello"), 0);
	ck_assert_int_eq(bfs_buf_add(&b, ", world!!", 7), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "hello, world");
	ck_assert_uint_eq(b.len, 12);
	ck_assert_int_eq(bfs_buf_add(&b, "", 0), 0);
	ck_assert_uint_eq(b.len, 12);
	/* Binary content with NUL stays intact and terminated. */
	ck_assert_int_eq(bfs_buf_add(&b, "a\0b", 3), 0);
	ck_assert_uint_eq(b.len, 15);
	ck_assert_int_eq(memcmp(b.p + 12, "a\0b", 3), 0);
	ck_assert_int_eq(b.p[15], '\0');
	for (i = 0; i < 10000; i++)
		ck_assert_int_eq(bfs_buf_adds(&b, "0123456789"), 0);
	ck_assert_uint_eq(b.len, 15 + 100000);
	ck_assert_uint_ge(b.alloc, b.len + 1);
	ck_assert_int_eq(b.p[b.len], '\0');
	ck_assert_int_eq(memcmp(b.p + b.len - 10, "0123456789", 10), 0);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(cap_exact_and_over)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 10);
	ck_assert_int_eq(bfs_buf_adds(&b, "12345"), 0);
	ck_assert_int_eq(bfs_buf_adds(&b, "67890"), 0);   /* exactly max */
	ck_assert_str_eq(bfs_buf_str(&b), "1234567890");
	ck_assert_int_eq(bfs_buf_adds(&b, "x"), BFS_ERR_TOOBIG);
	/* Past the cap the buffer is freed, not left half-built. */
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(bfs_buf_str(&b), "");
	/* A single add larger than the cap fails too; huge len no overflow. */
	ck_assert_int_eq(bfs_buf_add(&b, "x", 11), BFS_ERR_TOOBIG);
	ck_assert_int_eq(bfs_buf_add(&b, "x", (size_t)-1), BFS_ERR_TOOBIG);
	ck_assert_int_eq(bfs_buf_addf(&b, "%s", "0123456789A"), BFS_ERR_TOOBIG);
	ck_assert_ptr_null(b.p);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(cap_one_mib)
{
	struct bfs_buf b;
	char *chunk = malloc(4096);
	size_t total = 0;
	int r = 0;

	ck_assert_ptr_nonnull(chunk);
	memset(chunk, 'z', 4096);
	bfs_buf_init(&b, 1 << 20);
	while (r == 0) {
		r = bfs_buf_add(&b, chunk, 4096);
		if (r == 0)
			total += 4096;
	}
	ck_assert_int_eq(r, BFS_ERR_TOOBIG);
	ck_assert_uint_eq(total, 1 << 20);
	ck_assert_ptr_null(b.p);
	free(chunk);
}
END_TEST

START_TEST(addf)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 64);
	ck_assert_int_eq(bfs_buf_addf(&b, "%s=%d;", "a", 42), 0);
	ck_assert_int_eq(bfs_buf_addf(&b, "%05u", 7u), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "a=42;00007");
	ck_assert_int_eq(bfs_buf_addf(&b, "%s", ""), 0);
	ck_assert_uint_eq(b.len, 10);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(json_escaping)
{
	struct bfs_buf b;

	bfs_buf_init(&b, 1024);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "plain"), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "\"plain\"");
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "q\"b\\n\nt\tc\x01\x1f" "d\x7f"), 0);
	ck_assert_str_eq(bfs_buf_str(&b),
			 "\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001fd\\u007f\"");
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "\r"), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "\"\\u000d\"");
	bfs_buf_reset(&b);
	/* UTF-8 passes through unchanged; NULL and "" give "". */
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "caf\xc3\xa9"), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "\"caf\xc3\xa9\"");
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, ""), 0);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, NULL), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "\"\"\"\"");
	bfs_buf_free(&b);

	/* The cap applies to the escaped form. */
	bfs_buf_init(&b, 8);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "123456"), 0);   /* 8 bytes */
	bfs_buf_reset(&b);
	ck_assert_int_eq(bfs_buf_add_json_str(&b, "12345\n"), BFS_ERR_TOOBIG);
	ck_assert_ptr_null(b.p);
	bfs_buf_free(&b);
}
END_TEST

START_TEST(steal_and_reset)
{
	struct bfs_buf b;
	char *s;

	bfs_buf_init(&b, 100);
	s = bfs_buf_steal(&b);         /* empty: a fresh "" */
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	free(s);
	ck_assert_int_eq(bfs_buf_adds(&b, "abc"), 0);
	s = bfs_buf_steal(&b);
	ck_assert_str_eq(s, "abc");
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.alloc, 0);
	ck_assert_uint_eq(b.max, 100); /* still usable with the same cap */
	ck_assert_int_eq(bfs_buf_adds(&b, "de"), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "de");
	ck_assert_str_eq(s, "abc");    /* stolen memory is independent */
	free(s);
	bfs_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_nonnull(b.p);    /* reset keeps memory */
	ck_assert_str_eq(bfs_buf_str(&b), "");
	ck_assert_int_eq(bfs_buf_adds(&b, "f"), 0);
	ck_assert_str_eq(bfs_buf_str(&b), "f");
	bfs_buf_free(&b);
}
END_TEST

START_TEST(hex_round_trip)
{
	const unsigned char raw[] = { 0x00, 0x7f, 0x80, 0xab, 0xff };
	unsigned char back[sizeof(raw)];
	char hex[2 * sizeof(raw) + 1];

	bfs_hex_encode(raw, sizeof(raw), hex);
	ck_assert_str_eq(hex, "007f80abff");
	ck_assert_int_eq(bfs_hex_decode(hex, sizeof(raw), back), 0);
	ck_assert_mem_eq(back, raw, sizeof(raw));
	/* upper case decodes the same */
	ck_assert_int_eq(bfs_hex_decode("007F80ABFF", sizeof(raw), back), 0);
	ck_assert_mem_eq(back, raw, sizeof(raw));
	ck_assert_int_eq(bfs_hex_value('0'), 0);
	ck_assert_int_eq(bfs_hex_value('f'), 15);
	ck_assert_int_eq(bfs_hex_value('F'), 15);
	ck_assert_int_eq(bfs_hex_value('g'), -1);
	ck_assert_int_eq(bfs_hex_value('\0'), -1);
	ck_assert_int_eq(bfs_hex_value(0xe9), -1);
	/* any non-digit, in either half of a byte, fails */
	ck_assert_int_eq(bfs_hex_decode("0g", 1, back), -1);
	ck_assert_int_eq(bfs_hex_decode("g0", 1, back), -1);
	ck_assert_int_eq(bfs_hex_decode("00 1", 2, back), -1);
}
END_TEST

/* A writer that feeds a pipe in small pieces makes read() return short. */
START_TEST(read_full_short_reads_and_eof)
{
	char want[3000], got[4096];
	int p[2];
	pid_t pid;
	size_t i;

	for (i = 0; i < sizeof(want); i++)
		want[i] = (char)('a' + i % 26);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		for (i = 0; i < sizeof(want); i += 100) {
			if (write(p[1], want + i, 100) != 100)
				_exit(1);
			usleep(200);
		}
		_exit(0);
	}
	close(p[1]);
	/* 1000 bytes arrive in ten or more pieces: all of them come back */
	ck_assert_int_eq(bfs_read_full(p[0], got, 1000), 1000);
	ck_assert_mem_eq(got, want, 1000);
	/* asking for more than is left stops at end of file with the rest */
	ck_assert_int_eq(bfs_read_full(p[0], got, sizeof(got)), 2000);
	ck_assert_mem_eq(got, want + 1000, 2000);
	ck_assert_int_eq(bfs_read_full(p[0], got, sizeof(got)), 0);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	errno = 0;
	ck_assert_int_eq(bfs_read_full(p[0], got, 1), -1);   /* closed fd */
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(pread_full_at_offset)
{
	char path[] = "/tmp/bfs-io-XXXXXX", got[16];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, "0123456789", 10), 10);
	ck_assert_int_eq(bfs_pread_full(fd, got, 4, 3), 4);
	ck_assert_mem_eq(got, "3456", 4);
	ck_assert_int_eq(bfs_pread_full(fd, got, sizeof(got), 7), 3);
	ck_assert_mem_eq(got, "789", 3);
	ck_assert_int_eq(bfs_pread_full(fd, got, sizeof(got), 10), 0);
	/* the file offset is not moved */
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10);
	close(fd);
}
END_TEST

Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, empty_buffer);
	tcase_add_test(tc, add_and_grow);
	tcase_add_test(tc, cap_exact_and_over);
	tcase_add_test(tc, cap_one_mib);
	tcase_add_test(tc, addf);
	tcase_add_test(tc, json_escaping);
	tcase_add_test(tc, steal_and_reset);
	tcase_add_test(tc, hex_round_trip);
	tcase_add_test(tc, read_full_short_reads_and_eof);
	tcase_add_test(tc, pread_full_at_offset);
	suite_add_tcase(s, tc);
	return s;
}
