/*
 * util.c - helpers shared by the unit suites.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "unit.h"

const char *unit_data_dir(void)
{
	const char *d = getenv("BUCKETFS_TESTS");

	return (d && d[0]) ? d : "tests";
}

char *unit_read_file(const char *path, size_t *len)
{
	FILE *f;
	long n;
	char *s;

	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len)
		*len = (size_t)n;
	return s;
}

static int rm_ent(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

void unit_rm_tree(const char *path)
{
	if (path && path[0])
		nftw(path, rm_ent, 16, FTW_DEPTH | FTW_PHYS);
}
