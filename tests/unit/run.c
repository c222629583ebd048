/*
 * run.c - the unit test runner (Check).  Each pure module contributes one
 * suite from its own tests/unit/test_*.c; a suite declared here but not yet
 * linked is reported as missing and fails the run.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

struct suite_ent {
	const char *name;
	Suite *(*fn)(void);
};

int main(void)
{
	static const struct suite_ent suites[] = {
		{ "buf", buf_suite },
		{ "key", key_suite },
		{ "config", config_suite },
		{ "ctlfile", ctlfile_suite },
		{ "crypto", crypto_suite },
		{ "store", store_suite },
		{ "sigv4", sigv4_suite },
		{ "s3xml", s3xml_suite },
		{ "local", local_suite },
		{ "xattr", xattr_suite },
		{ "pgsql", pgsql_suite },
		{ "strset", strset_suite },
		{ "view", view_suite },
		{ "azure", azure_suite },
		{ "vfs", vfs_suite },
		{ "rest", rest_suite },
		{ "pool", pool_suite },
		{ "route", route_suite },
		{ "errno", errno_suite },
		{ "cache", cache_suite },
	};
	SRunner *sr = NULL;
	int failed, missing = 0;
	size_t i;

	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (!suites[i].fn) {
			fprintf(stderr, "unit: suite %s is not linked\n", suites[i].name);
			missing++;
			continue;
		}
		if (!sr)
			sr = srunner_create(suites[i].fn());
		else
			srunner_add_suite(sr, suites[i].fn());
	}
	if (!sr)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 && missing == 0) ? EXIT_SUCCESS : EXIT_FAILURE;
}
