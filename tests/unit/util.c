/*
 * util.c - helpers shared by the unit suites.
 */
#include <stdlib.h>

#include "unit.h"

const char *unit_data_dir(void)
{
	const char *d = getenv("BUCKETFS_TESTS");

	return (d && d[0]) ? d : "tests";
}
