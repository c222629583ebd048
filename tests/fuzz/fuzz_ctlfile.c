/*
 * fuzz_ctlfile.c - libFuzzer target for the .defaults / .assignments
 * parsers (src/util/ctlfile.c).  Raw bytes (NULs included) go in; a
 * successful .defaults parse is rendered and parsed again, which must
 * give the same values; the same bytes fed to a session parser in three
 * pieces (cut where the first two bytes say) must give the same answer
 * and the same .assignments records as the whole buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds data in three pieces and compares with the whole-buffer parse. */
static void split_same(const uint8_t *data, size_t size)
{
	struct bfs_ctl_parser *p = NULL;
	struct bfs_ctl_changes c;
	struct bfs_assign_change *a = NULL, one;
	char err[256], err2[256];
	size_t n = 0, i, j, pos = 0, k = 0;
	int r, r2;

	if (size < 2)
		return;
	i = data[0] % (size + 1);
	j = i + data[1] % (size - i + 1);
	r = bfs_ctl_parse_assignments((const char *)data, size, &a, &n, err,
				      sizeof(err));
	if (bfs_ctl_parser_new(1, NULL, NULL, &p) != 0)
		abort();
	r2 = bfs_ctl_parser_feed(p, (const char *)data, i, err2, sizeof(err2));
	if (r2 == 0)
		r2 = bfs_ctl_parser_feed(p, (const char *)data + i, j - i, err2,
					 sizeof(err2));
	if (r2 == 0)
		r2 = bfs_ctl_parser_feed(p, (const char *)data + j, size - j,
					 err2, sizeof(err2));
	if (r2 == 0)
		r2 = bfs_ctl_parser_end(p, &c, err2, sizeof(err2));
	else
		memset(&c, 0, sizeof(c));
	if (r != r2 || (r && strcmp(err, err2) != 0))
		abort();
	if (r == 0) {
		while (bfs_ctl_changes_next(&c, &pos, &one)) {
			if (k >= n || one.context_type != a[k].context_type ||
			    strcmp(one.context_id, a[k].context_id) != 0 ||
			    !one.bucket != !a[k].bucket ||
			    (one.bucket && strcmp(one.bucket, a[k].bucket) != 0))
				abort();
			k++;
		}
		if (k != n)
			abort();
		bfs_ctl_changes_clear(&c);
	}
	bfs_assign_changes_free(a, n);
	bfs_ctl_parser_free(p);
}

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
	split_same(data, size);
	return 0;
}
