/*
 * fuzz_ctlfile.c - libFuzzer target for the .defaults / .assignments
 * parsers (src/util/ctlfile.c).  Raw bytes (NULs included) go in; a
 * successful .defaults parse is rendered and parsed again, which must
 * give the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bfs_defaults_change d, d2;
	struct bfs_assign_change *a = NULL;
	struct bfs_buf b;
	char err[256];
	size_t n = 0;
	int i;

	if (bfs_ctl_parse_defaults((const char *)data, size, &d, err,
				   sizeof(err)) == 0) {
		bfs_buf_init(&b, 4096);
		if (bfs_ctl_format_defaults(d.bucket, &b) != 0)
			abort();
		if (bfs_ctl_parse_defaults(b.p, b.len, &d2, err, sizeof(err)) != 0)
			abort();
		for (i = 0; i < BFS_ROLE_COUNT; i++) {
			if (!d2.touched[i])
				abort();
			if (!d.bucket[i] != !d2.bucket[i])
				abort();
			if (d.bucket[i] && strcmp(d.bucket[i], d2.bucket[i]) != 0)
				abort();
		}
		bfs_defaults_change_clear(&d2);
		bfs_buf_free(&b);
		bfs_defaults_change_clear(&d);
	} else if (strncmp(err, "line ", 5) != 0) {
		abort();
	}
	if (bfs_ctl_parse_assignments((const char *)data, size, &a, &n, err,
				      sizeof(err)) == 0) {
		for (size_t k = 0; k < n; k++)
			if (!bfs_ctx_type_name(a[k].context_type) ||
			    !bfs_ctx_id_valid(a[k].context_id))
				abort();
		bfs_assign_changes_free(a, n);
	} else if (a || n || strncmp(err, "line ", 5) != 0) {
		abort();
	}
	return 0;
}
