/*
 * view.c - the routing rule of the context views: path parsing and the
 * pick (assignment -> role default -> general default) over plain data.
 * No I/O, no locks: the registry calls it with its routing snapshot, the
 * unit tests with fixed tables.  See include/bfs_view.h.
 */
#include <string.h>

#include "bfs_error.h"
#include "bfs_view.h"

static const char *const view_dirs[BFS_VIEW_COUNT] = {
	NULL, "@general", "@chat", "@form"
};

const char *bfs_view_dir_name(int view)
{
	return view > 0 && view < BFS_VIEW_COUNT ? view_dirs[view] : NULL;
}

int bfs_view_ctx_type(int view)
{
	return view == BFS_VIEW_CHAT ? 0 : view == BFS_VIEW_FORM ? 1 : -1;
}

int bfs_view_parse(const char *p, struct bfs_view_path *out)
{
	const char *slash, *rest;
	size_t len, idlen;
	int v;

	memset(out, 0, sizeof(*out));
	out->sub = "";
	slash = strchr(p, '/');
	len = slash ? (size_t)(slash - p) : strlen(p);
	for (v = 1; v < BFS_VIEW_COUNT; v++)
		if (strlen(view_dirs[v]) == len && !memcmp(p, view_dirs[v], len))
			break;
	if (v == BFS_VIEW_COUNT)
		return BFS_ERR_NOTFOUND;
	out->view = v;
	if (!slash)
		return 0;
	rest = slash + 1;
	if (v == BFS_VIEW_GENERAL) {
		out->sub = rest;
		return 0;
	}
	if (!*rest)
		return 0;            /* "@chat/": the folder itself */
	slash = strchr(rest, '/');
	idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (idlen == 0 || idlen > BFS_CTX_ID_MAX)
		return BFS_ERR_INVAL;
	memcpy(out->id, rest, idlen);
	out->id[idlen] = '\0';
	if (!bfs_ctx_id_valid(out->id))
		return BFS_ERR_INVAL;
	out->has_id = 1;
	out->sub = slash ? slash + 1 : "";
	return 0;
}

static int assign_cmp(int ta, const char *ia, int tb, const char *ib)
{
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(ia, ib);
}

long bfs_view_assign_find(const struct bfs_view_rules *r, int type,
			  const char *id)
{
	size_t lo = 0, hi = r->nas, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = assign_cmp(type, id, r->as[mid].type, r->as[mid].id);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static int set(const char *s)
{
	return s && s[0];
}

const char *bfs_view_pick(const struct bfs_view_rules *r, int view,
			  const char *id, const char **why)
{
	int type = bfs_view_ctx_type(view);
	int role = type == 0 ? BFS_ROLE_CHAT : BFS_ROLE_FORMS;
	long i;

	if (why)
		*why = NULL;
	if (view == BFS_VIEW_GENERAL) {
		if (set(r->def[BFS_ROLE_GENERAL]))
			return r->def[BFS_ROLE_GENERAL];
		if (why)
			*why = "no general default bucket";
		return NULL;
	}
	if (type < 0) {
		if (why)
			*why = "not a context view";
		return NULL;
	}
	if (id && id[0] && (i = bfs_view_assign_find(r, type, id)) >= 0 &&
	    set(r->as[i].bucket))
		return r->as[i].bucket;
	if (set(r->def[role]))
		return r->def[role];
	if (set(r->def[BFS_ROLE_GENERAL]))
		return r->def[BFS_ROLE_GENERAL];
	if (why)
		*why = type == 0 ? "no assignment, no chat default and no general "
				   "default bucket" :
				   "no assignment, no forms default and no "
				   "general default bucket";
	return NULL;
}
