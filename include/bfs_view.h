/*
 * bfs_view.h - the routing rule of the context views (pure, no I/O).
 *
 * Applications store by context with plain paths (INTERFACE.md "Context
 * views: the filesystem routes"):
 *
 *   @general/P    the general default bucket      key PREFIX + P
 *   @chat/ID/P    assignment chat/ID, else the chat default, else the
 *                 general default                 key PREFIX + "chat/ID/" + P
 *   @form/ID/P    assignment form/ID, else the forms default, else the
 *                 general default                 key PREFIX + "form/ID/" + P
 *
 * bfs_view_parse() splits such a path, bfs_view_pick() applies the rule to
 * plain data (the routing snapshot's defaults and sorted assignments).
 * The registry (src/route/registry.c) feeds both from its snapshot.
 */
#ifndef BFS_VIEW_H
#define BFS_VIEW_H

#include <stddef.h>
#include "bfs_config.h"
#include "bfs_key.h"

enum bfs_view {
	BFS_VIEW_NONE = 0,
	BFS_VIEW_GENERAL,        /* @general */
	BFS_VIEW_CHAT,           /* @chat */
	BFS_VIEW_FORM,           /* @form */
	BFS_VIEW_COUNT
};

/* "@general", "@chat", "@form" (NULL for NONE). */
const char *bfs_view_dir_name(int view);
/* Context type (0 chat, 1 form, as bfs_ctx_type_name) of a view; -1 for
 * @general. */
int bfs_view_ctx_type(int view);

struct bfs_view_path {
	int view;                /* enum bfs_view */
	int has_id;              /* @chat/ID... (chat and form only) */
	char id[BFS_CTX_ID_MAX + 1];
	const char *sub;         /* into the path: P after "@general/" or
				  * "@chat/ID/"; "" for the folder itself */
};

/*
 * Splits p, an absolute path without its leading '/' whose first
 * component starts with '@'.  0 for a view path; BFS_ERR_NOTFOUND when the
 * first component names no view (a reserved name); BFS_ERR_INVAL for a
 * context ID that is not [A-Za-z0-9_-]{1,128}.
 */
int bfs_view_parse(const char *p, struct bfs_view_path *out);

struct bfs_view_assign {
	int type;                /* 0 chat, 1 form */
	const char *id;
	const char *bucket;      /* bucket name */
};

/* What routing needs, as plain data. */
struct bfs_view_rules {
	const char *def[BFS_ROLE_COUNT];     /* default bucket names or NULL */
	const struct bfs_view_assign *as;    /* sorted by (type, id) */
	size_t nas;
};

/*
 * The bucket name a context routes to: for @general the general default;
 * for @chat/@form the assignment of (type, id), else the role's default
 * (chat / forms), else the general default.  id NULL or "" asks for the
 * view's fallback without an assignment.  NULL when nothing routes; then
 * *why (when not NULL) points to a static sentence saying what is missing.
 */
const char *bfs_view_pick(const struct bfs_view_rules *r, int view,
			  const char *id, const char **why);

/* Index of the assignment (type, id) in r->as, or -1 (binary search). */
long bfs_view_assign_find(const struct bfs_view_rules *r, int type,
			  const char *id);

#endif
