/*
 * bfs_ctlfile.h - the .defaults and .assignments control files (pure).
 *
 * Parsing validates every line of one write() before anything is applied:
 * lines are "ROLE = NAME" / "ROLE =" (.defaults) or "chat/ID = NAME",
 * "form/ID = NAME", "chat/ID =" (.assignments); blank lines and '#'
 * comments are ignored; the buffer must end with a newline or hold whole
 * lines; a line over 512 bytes, a NUL or other non-text byte, an unknown
 * role, a bad ID or a bad bucket name fails the whole write.  Whether the
 * named buckets exist is checked by the store in the same transaction that
 * applies the change.
 */
#ifndef BFS_CTLFILE_H
#define BFS_CTLFILE_H

#include <stddef.h>
#include "bfs_config.h"
#include "bfs_buf.h"
#include "bfs_key.h"

#define BFS_CTL_LINE_MAX 512
#define BFS_CTL_WRITE_MAX (1024 * 1024)

struct bfs_defaults_change {
	int touched[BFS_ROLE_COUNT];   /* 1 when the write names this role */
	char *bucket[BFS_ROLE_COUNT];  /* NULL with touched: unset */
};

struct bfs_assign_change {
	int context_type;              /* 0 chat, 1 form */
	char context_id[BFS_CTX_ID_MAX + 1];
	char *bucket;                  /* NULL: remove the assignment */
};

const char *bfs_ctx_type_name(int t);  /* "chat" | "form" */
int bfs_ctx_type_parse(const char *s); /* -1 when unknown */

/*
 * Parse a .defaults write.  0 or BFS_ERR_INVAL with "line N: reason" in
 * err.  On success the caller frees with bfs_defaults_change_clear().
 * A role named twice: the last line wins.
 */
int bfs_ctl_parse_defaults(const char *buf, size_t len,
			   struct bfs_defaults_change *out,
			   char *err, size_t errlen);
void bfs_defaults_change_clear(struct bfs_defaults_change *c);

/*
 * Parse a .assignments write into a new array (*out, *n); caller frees with
 * bfs_assign_changes_free().  Same error convention.
 */
int bfs_ctl_parse_assignments(const char *buf, size_t len,
			      struct bfs_assign_change **out, size_t *n,
			      char *err, size_t errlen);
void bfs_assign_changes_free(struct bfs_assign_change *a, size_t n);

/* Renders the three .defaults lines (names[i] NULL or "" when unset). */
int bfs_ctl_format_defaults(char *const names[BFS_ROLE_COUNT],
			    struct bfs_buf *out);

#endif
