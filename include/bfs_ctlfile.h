/*
 * bfs_ctlfile.h - the .defaults and .assignments control files (pure).
 *
 * A write session (INTERFACE.md "Control-file write sessions") is parsed
 * by a bfs_ctl_parser: bytes are fed as they arrive, split anywhere; each
 * line is checked the moment its '\n' arrives, and the first bad one
 * spoils the parser (every later call fails the same way).  Lines are
 * "ROLE = NAME" / "ROLE =" (.defaults) or "chat/ID = NAME",
 * "form/ID = NAME", "chat/ID =" (.assignments); blank lines and '#'
 * comments are ignored.  Bad: a line over 512 bytes (refused as soon as
 * that many bytes are held without a '\n'), a NUL or other control byte,
 * invalid UTF-8, an unknown role or context type, a bad ID, a bad bucket
 * name, a bucket the caller's exists() callback does not know; more than
 * BFS_CTL_SESSION_MAX bytes in all; at the end, a last line without '\n'.
 * bfs_ctl_parser_end() hands out what was parsed since the previous end;
 * the caller applies it in one transaction (which checks the buckets
 * again: they may be gone by then).
 */
#ifndef BFS_CTLFILE_H
#define BFS_CTLFILE_H

#include <stddef.h>
#include <stdint.h>
#include "bfs_config.h"
#include "bfs_buf.h"
#include "bfs_key.h"

#define BFS_CTL_LINE_MAX 512
#define BFS_CTL_SESSION_MAX (16u * 1024 * 1024)

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
 * What one session (or the part of it since the previous end) changes.
 * .assignments lines are kept packed in file order (a record per line,
 * no bigger than the line), so a 16 MiB session holds at most about 16 MiB;
 * walk them with bfs_ctl_changes_next().
 */
struct bfs_ctl_changes {
	int assignments;                   /* 0 .defaults, 1 .assignments */
	size_t lines;                      /* lines that change something */
	struct bfs_defaults_change defaults;   /* .defaults: last line wins */
	struct bfs_buf packed;             /* .assignments: the records */
};

/*
 * The next .assignments change of c from *pos (start at 0) into *out: 1,
 * or 0 at the end.  out->bucket points into c (valid while c is).
 */
int bfs_ctl_changes_next(const struct bfs_ctl_changes *c, size_t *pos,
			 struct bfs_assign_change *out);
/* Frees what c holds and empties it (keeps c->assignments). */
void bfs_ctl_changes_clear(struct bfs_ctl_changes *c);

/* 1 when the bucket named exists (the daemon asks its registry). */
typedef int (*bfs_ctl_exists_fn)(void *arg, const char *bucket);

struct bfs_ctl_parser;

/*
 * A parser for one session of .assignments (assignments 1) or .defaults
 * (0).  exists may be NULL (bucket names are then only checked for
 * syntax).  BFS_ERR_NOMEM; free with bfs_ctl_parser_free().
 */
int bfs_ctl_parser_new(int assignments, bfs_ctl_exists_fn exists, void *arg,
		       struct bfs_ctl_parser **out);
void bfs_ctl_parser_free(struct bfs_ctl_parser *p);
/*
 * Takes len more bytes.  0; BFS_ERR_INVAL with "line N: reason" in err (a
 * bad line; nothing of this call is kept); BFS_ERR_TOOBIG when the session
 * would pass BFS_CTL_SESSION_MAX bytes (the call is refused whole);
 * BFS_ERR_NOMEM.  Any error spoils the parser: later calls return it again
 * with the same err.
 */
int bfs_ctl_parser_feed(struct bfs_ctl_parser *p, const char *buf, size_t len,
			char *err, size_t errlen);
/*
 * Ends the input so far: 0 with its changes moved into *out (initialized
 * here; the caller clears it), and the parser goes on with the next line
 * number and an empty change.  A last line without '\n' is BFS_ERR_INVAL
 * and spoils the parser; a spoiled parser returns its error.
 */
int bfs_ctl_parser_end(struct bfs_ctl_parser *p, struct bfs_ctl_changes *out,
		       char *err, size_t errlen);
/* Spoils p with code and "reason" (a refusal found by the caller). */
void bfs_ctl_parser_spoil(struct bfs_ctl_parser *p, int code,
			  const char *reason);
/* 0, or the error that spoiled p. */
int bfs_ctl_parser_error(const struct bfs_ctl_parser *p);
/* The line that spoiled p, printable bytes only ('?' for others), cut at
 * 128 bytes; "" when no line is to blame. */
const char *bfs_ctl_parser_bad_line(const struct bfs_ctl_parser *p);
/* Bytes taken since the previous end (0: nothing to apply). */
uint64_t bfs_ctl_parser_pending(const struct bfs_ctl_parser *p);

/*
 * One whole session in one buffer (feed + end, no exists check): parse a
 * .defaults write.  0 or BFS_ERR_INVAL / BFS_ERR_TOOBIG with "line N:
 * reason" in err.  On success the caller frees with
 * bfs_defaults_change_clear().  A role named twice: the last line wins.
 */
int bfs_ctl_parse_defaults(const char *buf, size_t len,
			   struct bfs_defaults_change *out,
			   char *err, size_t errlen);
void bfs_defaults_change_clear(struct bfs_defaults_change *c);

/*
 * The same for .assignments, into a new array (*out, *n) in file order;
 * caller frees with bfs_assign_changes_free().
 */
int bfs_ctl_parse_assignments(const char *buf, size_t len,
			      struct bfs_assign_change **out, size_t *n,
			      char *err, size_t errlen);
void bfs_assign_changes_free(struct bfs_assign_change *a, size_t n);

/* Renders the three .defaults lines (names[i] NULL or "" when unset). */
int bfs_ctl_format_defaults(char *const names[BFS_ROLE_COUNT],
			    struct bfs_buf *out);

#endif
