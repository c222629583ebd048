/*
 * ctl.h - private header of bucketctl (src/ctl only).
 *
 * bucketctl is declarative: every command is an entry of a table (name,
 * accepted options, number of positional arguments, help text, run
 * function).  main() in bucketctl.c parses the global options, finds the
 * entry, parses the command's own options into a struct ctl_args (so
 * `--help` and usage errors are answered before any file is touched),
 * then opens the context (config, store, config sync) and calls run().
 *
 * Exit codes: run() returns CTL_EXIT_OK, CTL_EXIT_FAIL (after printing
 * exactly one "bucketctl: ..." line on stderr with ctl_fail()) or
 * CTL_EXIT_USAGE (after ctl_usage()).
 */
#ifndef BFS_CTL_H
#define BFS_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "bfs_buf.h"
#include "bfs_config.h"
#include "bfs_crypto.h"
#include "bfs_store.h"

enum { CTL_EXIT_OK = 0, CTL_EXIT_FAIL = 1, CTL_EXIT_USAGE = 2 };

#define CTL_MAX_POS 4            /* positional arguments of any command */
#define CTL_ERR_LEN 1024         /* one error line */
#define CTL_JSON_ROW_MAX (1024 * 1024)  /* one JSON object being built */

/* Every option any command knows; a command lists the ones it accepts. */
enum ctl_opt_id {
	OPT_PROVIDER, OPT_DESCRIPTION, OPT_BUCKET_NAME, OPT_PREFIX, OPT_REGION,
	OPT_ENDPOINT, OPT_ACCOUNT_ID, OPT_PATH_STYLE, OPT_PATH,
	OPT_ACCESS_KEY_ID, OPT_SECRET_STDIN, OPT_SECRET_FILE, OPT_READ_ONLY,
	OPT_FORCE, OPT_BUCKET, OPT_CONTEXT, OPT_EXPIRES,
	OPT_OWNER, OPT_GROUP, OPT_MODE, OPT_FILE_MODE, OPT_DIR_MODE,
	OPT_TO, OPT_DRY_RUN,
	OPT_ACCOUNT_NAME, OPT_ACCOUNT_KEY_STDIN, OPT_ACCOUNT_KEY_FILE,
	OPT_SAS_TOKEN_FILE,
	OPT_COUNT
};

enum ctl_opt_kind {
	CTL_OPT_FLAG,                /* --x */
	CTL_OPT_ARG,                 /* --x VALUE or --x=VALUE */
	CTL_OPT_BOOL                 /* --x or --x=true|false */
};

struct ctl_optval {
	int set;                     /* given on the command line */
	const char *arg;             /* CTL_OPT_ARG: the value (argv memory) */
	int bval;                    /* CTL_OPT_BOOL: 1 / 0 */
};

struct ctl_args {
	const char *pos[CTL_MAX_POS];
	size_t npos;
	struct ctl_optval opt[OPT_COUNT];
	int json;                    /* --json anywhere */
};

/* What every command works with; see ctx_open() in bucketctl.c. */
struct ctl_cmd;
struct ctl_ctx {
	const struct ctl_cmd *cmd;   /* the command being run */
	const char *config_path;
	struct bfs_config *cfg;
	struct bfs_store *store;
	unsigned char key[BFS_MASTER_KEY_LEN];   /* wiped at close */
	int have_key;
	int json;
};

struct ctl_cmd {
	const char *name;            /* "bucket add" */
	const char *synopsis;        /* arguments after the name */
	const char *summary;         /* one line for the command list */
	const char *help;            /* details for `COMMAND --help` (or NULL) */
	const enum ctl_opt_id *opts; /* accepted options, OPT_COUNT-terminated */
	int min_pos, max_pos;
	int listing;                 /* accepts --json */
	int ctx;                     /* CTL_CTX_* */
	int (*run)(struct ctl_ctx *c, const struct ctl_args *a);
};

enum {
	CTL_CTX_FULL,                /* config + store + sync */
	CTL_CTX_CONFIG               /* config only (init opens the rest) */
};

/* ---- bucketctl.c: messages, context, small helpers ---- */

/* Prints "bucketctl: MSG" on stderr; returns CTL_EXIT_FAIL. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "bucketctl: MSG" and the command's usage line; CTL_EXIT_USAGE. */
int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Loads the master key into c->key once (no-op when loaded).  0 or
 * CTL_EXIT_FAIL after printing why (missing file: suggests `init`).
 */
int ctl_need_key(struct ctl_ctx *c);
/* The key when loaded, else NULL. */
const unsigned char *ctl_key(const struct ctl_ctx *c);
/* Opens the store on cfg->database and syncs the config buckets. */
int ctl_ctx_open_store(struct ctl_ctx *c);
/* 1 when a config bucket carries a secret (the sync then needs the key). */
int ctl_config_has_secrets(const struct bfs_config *cfg);

/*
 * Gets bucket NAME into *b (caller clears with bfs_bucket_conf_clear).
 * with_secrets: loads the master key when the bucket has secrets and
 * decrypts them.  0 or CTL_EXIT_FAIL with the line printed.
 */
int ctl_bucket_get(struct ctl_ctx *c, const char *name, int with_secrets,
		   struct bfs_bucket_conf *b);
/* "bucket_name/prefix" for s3/r2, the folder for local; into out. */
void ctl_remote_str(const struct bfs_bucket_conf *b, char *out, size_t len);
/* "general,chat" or "-" into out. */
void ctl_defaults_str(unsigned mask, char *out, size_t len);
/* Runs expr only while the int r of the caller is still 0 (JSON building). */
#define JADD(expr) do { if (r == 0) r = (expr); } while (0)
/* Appends a JSON string, or null for NULL. */
int ctl_json_str(struct bfs_buf *b, const char *s);
/* Writes b to stdout; CTL_EXIT_FAIL on a buffer overflow (r != 0). */
int ctl_emit(struct bfs_buf *b, int r);
/* Unix seconds -> "YYYY-MM-DDTHH:MM:SSZ" (or "-" for 0). */
void ctl_time_str(int64_t t, char *out, size_t len);
/* Monotonic milliseconds. */
double ctl_now_ms(void);

/*
 * A text table: rows of cells collected, then printed with columns
 * aligned to their widest cell.  At most CTL_TABLE_ROWS rows are held:
 * when full, the rows so far are printed (widths fixed from then on) and
 * collection goes on, so memory stays bounded on huge listings.
 */
#define CTL_TABLE_COLS 10
#define CTL_TABLE_ROWS 4096
struct ctl_table {
	size_t ncols, nrows;
	size_t width[CTL_TABLE_COLS];
	char **cells;                /* nrows * ncols strings */
	int widths_fixed;
	int failed;                  /* out of memory: rows were lost */
};
void ctl_table_init(struct ctl_table *t, size_t ncols);
/* Adds one row of t->ncols cells (copied). */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* Prints what is held and frees it; returns ctl_table_add's failures. */
int ctl_table_flush(struct ctl_table *t);
void ctl_table_free(struct ctl_table *t);

/* ---- commands (cmd_bucket.c, cmd_misc.c, cmd_context.c) ---- */

int ctl_cmd_bucket_list(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_bucket_show(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_bucket_add(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_bucket_update(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_bucket_remove(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_bucket_test(struct ctl_ctx *c, const struct ctl_args *a);

int ctl_cmd_init(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_defaults(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_defaults_set(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_defaults_unset(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_assign(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_unassign(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_assignments(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_files(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_import(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_presign(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_stats(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_pending(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_migrate_db(struct ctl_ctx *c, const struct ctl_args *a);

/* cmd_context.c */
int ctl_cmd_contexts(struct ctl_ctx *c, const struct ctl_args *a);
int ctl_cmd_context_move(struct ctl_ctx *c, const struct ctl_args *a);

#endif
