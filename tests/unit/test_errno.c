/*
 * test_errno.c - the FUSE adapter's one BFS_ERR_* -> errno table
 * (src/fuse/errno.c, linked into the unit binary alone: no FUSE header).
 * The expectations below are written out independently of the table;
 * every code from -1 down to BFS_ERR_LAST + 1 must have one, so a code
 * added without deciding its errno fails here.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_mount.h"
#include "unit.h"

/* What the user sees for each code. */
static const struct {
	int err;
	int eno;
} want[] = {
	{ BFS_ERR_INTERNAL, EIO },
	{ BFS_ERR_NOMEM, ENOMEM },
	{ BFS_ERR_INVAL, EINVAL },
	{ BFS_ERR_NOTFOUND, ENOENT },
	{ BFS_ERR_EXISTS, EEXIST },
	{ BFS_ERR_ACCESS, EACCES },
	{ BFS_ERR_IO, EIO },
	{ BFS_ERR_NETWORK, EIO },
	{ BFS_ERR_TIMEOUT, EIO },
	{ BFS_ERR_SERVER, EIO },
	{ BFS_ERR_THROTTLED, EIO },
	{ BFS_ERR_READONLY, EROFS },
	{ BFS_ERR_NOTEMPTY, ENOTEMPTY },
	{ BFS_ERR_NAMETOOLONG, ENAMETOOLONG },
	{ BFS_ERR_NOTSUP, ENOTSUP },
	{ BFS_ERR_CONFIG, EIO },
	{ BFS_ERR_CRYPTO, EIO },
	{ BFS_ERR_DB, EIO },
	{ BFS_ERR_PRECONDITION, EIO },
	{ BFS_ERR_NOSPC, ENOSPC },
	{ BFS_ERR_ISDIR, EISDIR },
	{ BFS_ERR_NOTDIR, ENOTDIR },
	{ BFS_ERR_PROTOCOL, EIO },
	{ BFS_ERR_BUSY, EBUSY },
	{ BFS_ERR_RANGE, EIO },
	{ BFS_ERR_LOOP, ELOOP },
	{ BFS_ERR_NOBUCKET, EIO },
	{ BFS_ERR_PERM, EPERM },
	{ BFS_ERR_TOOBIG, EFBIG },
	{ BFS_ERR_NODATA, ENODATA },
	{ BFS_ERR_BUFTOOSMALL, ERANGE },
	{ BFS_ERR_XATTRTOOBIG, E2BIG },
	{ BFS_ERR_BADF, EBADF },
	{ BFS_ERR_STALE, ESTALE },
};

#define NWANT (sizeof(want) / sizeof(want[0]))

/* Every code has an expectation, its errno and a message of its own. */
START_TEST(test_every_code_mapped)
{
	int err, found;
	size_t i;

	for (err = -1; err > BFS_ERR_LAST; err--) {
		found = 0;
		for (i = 0; i < NWANT; i++) {
			if (want[i].err != err)
				continue;
			found = 1;
			ck_assert_msg(bfs_errno(err) == want[i].eno,
				      "%d (%s): errno %d, want %d", err,
				      bfs_strerror(err), bfs_errno(err),
				      want[i].eno);
		}
		ck_assert_msg(found, "code %d has no expected errno", err);
		ck_assert_msg(strcmp(bfs_strerror(err), "unknown error") != 0,
			      "code %d has no message", err);
	}
	ck_assert_uint_eq(NWANT, (size_t)-(BFS_ERR_LAST + 1));
}
END_TEST

/* A transient failure is EIO, never a "no such file" a caller could act
 * on; what is not a code at all is EIO too; 0 stays 0. */
START_TEST(test_transient_and_unknown_are_eio)
{
	int err;

	for (err = -1; err > BFS_ERR_LAST; err--)
		if (bfs_err_retryable(err))
			ck_assert_int_eq(bfs_errno(err), EIO);
	ck_assert_int_eq(bfs_err_retryable(BFS_ERR_NETWORK), 1);
	ck_assert_int_eq(bfs_errno(0), 0);
	ck_assert_int_eq(bfs_errno(BFS_ERR_LAST), EIO);
	ck_assert_int_eq(bfs_errno(BFS_ERR_LAST - 100), EIO);
	ck_assert_int_eq(bfs_errno(ENOENT), EIO);  /* an errno is no code */
}
END_TEST

Suite *errno_suite(void)
{
	Suite *s = suite_create("errno");
	TCase *tc = tcase_create("errno");

	tcase_add_test(tc, test_every_code_mapped);
	tcase_add_test(tc, test_transient_and_unknown_are_eio);
	suite_add_tcase(s, tc);
	return s;
}
