/*
 * control.c - the control files at the mount root.
 *
 * .defaults and .assignments render the store's settings and take writes
 * (INTERFACE.md ".defaults", ".assignments"): every write() is parsed whole
 * by the pure parsers in util/ctlfile.c and applied by the store in one
 * transaction, so a bad line changes nothing.  .buckets renders one line per
 * registry bucket with the index stats; .metrics is the Prometheus text of
 * util/metrics.c.  Renderings are capped (BFS_CTL_RENDER_MAX); the FUSE
 * layer snapshots one rendering per open so reads of one fd are consistent.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_route.h"

static const char *const ctl_names[BFS_CTL_COUNT] = {
	".defaults", ".assignments", ".buckets", ".metrics"
};

int bfs_ctl_lookup(const char *name)
{
	int i;

	for (i = 0; i < BFS_CTL_COUNT; i++)
		if (strcmp(name, ctl_names[i]) == 0)
			return i;
	return -1;
}

const char *bfs_ctl_name(int kind)
{
	return kind >= 0 && kind < BFS_CTL_COUNT ? ctl_names[kind] : NULL;
}

int bfs_ctl_writable(int kind)
{
	return kind == BFS_CTL_DEFAULTS || kind == BFS_CTL_ASSIGNMENTS;
}

static int render_defaults(struct bfs_registry *r, struct bfs_buf *out)
{
	char *names[BFS_ROLE_COUNT] = { NULL, NULL, NULL };
	int rc;

	if ((rc = bfs_store_defaults_get(bfs_registry_store(r), names)) != 0)
		return rc;
	rc = bfs_ctl_format_defaults(names, out);
	bfs_store_names_free(names);
	return rc;
}

static int render_assignments(struct bfs_registry *r, struct bfs_buf *out)
{
	struct bfs_assignment *a = NULL;
	size_t n = 0, i;
	int rc;

	if ((rc = bfs_store_assign_list(bfs_registry_store(r), &a, &n)) != 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++)
		rc = bfs_buf_addf(out, "%s/%s = %s\n",
				  bfs_ctx_type_name(a[i].context_type),
				  a[i].context_id, a[i].bucket ? a[i].bucket : "");
	bfs_assignments_free(a, n);
	return rc;
}

/* One line per bucket: NAME provider=P remote=R status=ok|error files=N bytes=N */
static int render_buckets(struct bfs_registry *r, struct bfs_buf *out)
{
	struct bfs_bucket_stats *st = NULL;
	struct bfs_rbucket *b;
	char **names = NULL;
	size_t n = 0, ns = 0, i, j;
	uint64_t files, bytes;
	int rc, ok;

	if ((rc = bfs_registry_names(r, &names, &n)) != 0)
		goto out;
	if (bfs_store_stats(bfs_registry_store(r), NULL, &st, &ns) != 0) {
		st = NULL;
		ns = 0;
	}
	for (i = 0; i < n; i++) {
		if (!(b = bfs_registry_get(r, names[i])))
			continue;
		files = bytes = 0;
		for (j = 0; j < ns; j++) {
			if (st[j].bucket && strcmp(st[j].bucket, b->name) == 0) {
				files = st[j].files;
				bytes = st[j].bytes;
				break;
			}
		}
		ok = b->prov && atomic_load(&b->last_err) == 0;
		rc = bfs_buf_addf(out, "%s provider=%s remote=%s status=%s files=%llu bytes=%llu\n",
				  b->name, bfs_provider_kind_name(b->kind),
				  b->remote[0] ? b->remote : "-",
				  ok ? "ok" : "error",
				  (unsigned long long)files,
				  (unsigned long long)bytes);
		bfs_rbucket_put(b);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	bfs_bucket_stats_free(st, ns);
	bfs_registry_names_free(names, n);
	return rc;
}

int bfs_ctl_render(struct bfs_registry *r, int kind, struct bfs_buf *out)
{
	switch (kind) {
	case BFS_CTL_DEFAULTS:
		return render_defaults(r, out);
	case BFS_CTL_ASSIGNMENTS:
		return render_assignments(r, out);
	case BFS_CTL_BUCKETS:
		return render_buckets(r, out);
	case BFS_CTL_METRICS:
		return bfs_metrics_render(out);
	default:
		return BFS_ERR_INVAL;
	}
}

/* Store answers that mean "your write named something wrong". */
static int ctl_apply_err(int rc)
{
	if (rc == BFS_ERR_NOTFOUND || rc == BFS_ERR_INVAL ||
	    rc == BFS_ERR_EXISTS || rc == BFS_ERR_CONFIG)
		return BFS_ERR_INVAL;
	return rc;
}

/*
 * Copies line `lineno` (1-based) of data into out (printable bytes only,
 * others as '?', truncated) so the refusal log names the offending text.
 */
static void ctl_line_text(const char *data, size_t len, long lineno,
			  char *out, size_t outlen)
{
	size_t i = 0, o = 0;
	long cur = 1;

	out[0] = '\0';
	while (i < len && cur < lineno) {
		if (data[i++] == '\n')
			cur++;
	}
	if (cur != lineno)
		return;
	for (; i < len && data[i] != '\n' && o + 1 < outlen; i++)
		out[o++] = isprint((unsigned char)data[i]) ? data[i] : '?';
	out[o] = '\0';
}

int bfs_ctl_write(struct bfs_registry *r, int kind, const char *data,
		  size_t len)
{
	char text[128];
	long lineno;
	struct bfs_defaults_change dc;
	struct bfs_assign_change *ac = NULL;
	size_t n = 0;
	char err[512];
	int rc = BFS_ERR_INVAL, parsed_defaults = 0;

	memset(&dc, 0, sizeof(dc));
	err[0] = '\0';
	if (!bfs_ctl_writable(kind)) {
		rc = BFS_ERR_ACCESS;
		goto out;
	}
	if (len > BFS_CTL_WRITE_MAX) {
		snprintf(err, sizeof(err), "write of %zu bytes is too large", len);
		rc = BFS_ERR_INVAL;
		goto fail;
	}
	if (kind == BFS_CTL_DEFAULTS) {
		if ((rc = bfs_ctl_parse_defaults(data, len, &dc, err,
						 sizeof(err))) != 0)
			goto fail;
		parsed_defaults = 1;
		rc = bfs_store_defaults_apply(bfs_registry_store(r), &dc, err,
					      sizeof(err));
	} else {
		if ((rc = bfs_ctl_parse_assignments(data, len, &ac, &n, err,
						    sizeof(err))) != 0)
			goto fail;
		rc = bfs_store_assign_apply(bfs_registry_store(r), ac, n, err,
					    sizeof(err));
	}
	if (rc != 0) {
		rc = ctl_apply_err(rc);
		goto fail;
	}
	BFS_INFO("%s updated", ctl_names[kind]);
	if (bfs_registry_reload(r, err, sizeof(err)) != 0)
		BFS_WARN("reload after %s write: %s", ctl_names[kind], err);
	rc = 0;
	goto out;
fail:
	text[0] = '\0';
	if (sscanf(err, "line %ld", &lineno) == 1)
		ctl_line_text(data, len, lineno, text, sizeof(text));
	if (text[0])
		BFS_WARN("%s: write refused: %s: \"%s\"", ctl_names[kind],
			 err, text);
	else
		BFS_WARN("%s: write refused: %s", ctl_names[kind],
			 err[0] ? err : bfs_strerror(rc));
out:
	if (parsed_defaults)
		bfs_defaults_change_clear(&dc);
	bfs_assign_changes_free(ac, n);
	return rc;
}
