/*
 * bucketctl.c - the admin tool's entry point: the command table, option
 * parsing, help, the context every command works in (config, store,
 * master key) and small shared helpers (messages, tables, JSON).
 *
 * How a run goes: global options (-c CONFIG, --json, -v, --help) come
 * first; the longest command name matching the next words picks a table
 * entry; its options and positional arguments are parsed (GNU style, in
 * any order, "--" ends options; --json and -c are also accepted there),
 * so `--help` and usage errors are answered before any file is touched.
 * Then the context is opened: the config is loaded, the store opened
 * (migrations run there) and bfs_store_sync_config() makes the config
 * buckets visible even when no daemon ever ran.  The master key is only
 * loaded by the commands that need it (ctl_need_key()).
 *
 * Secrets are never taken from argv: the only secret options read stdin
 * or a file, and an unknown option is reported by its name only (the
 * text after '=' is never echoed, it might be a secret).  Library logging
 * is off unless -v, so a failure prints exactly one line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bfs_error.h"
#include "bfs_log.h"
#include "bfs_provider.h"
#include "ctl.h"

#define CTL_DEFAULT_CONFIG "/etc/bucketfs/bucketfs.conf"

static const struct {
	const char *name;
	enum ctl_opt_kind kind;
	const char *hint;            /* argument shown in help */
	const char *help;
} opt_info[OPT_COUNT] = {
	[OPT_PROVIDER] = { "provider", CTL_OPT_ARG, "s3|r2|local|azure|gcs", "storage provider" },
	[OPT_DESCRIPTION] = { "description", CTL_OPT_ARG, "TEXT", "free text shown by `bucket show`" },
	[OPT_BUCKET_NAME] = { "bucket-name", CTL_OPT_ARG, "B", "remote bucket (s3, r2)" },
	[OPT_PREFIX] = { "prefix", CTL_OPT_ARG, "P", "add, update: scope inside the remote bucket (\"app1/\"); files: keys under this path" },
	[OPT_REGION] = { "region", CTL_OPT_ARG, "R", "s3 region (default us-east-1; r2: auto)" },
	[OPT_ENDPOINT] = { "endpoint", CTL_OPT_ARG, "URL", "S3-compatible service URL" },
	[OPT_ACCOUNT_ID] = { "account-id", CTL_OPT_ARG, "A", "r2 account (endpoint ACCOUNT.r2.cloudflarestorage.com)" },
	[OPT_PATH_STYLE] = { "path-style", CTL_OPT_BOOL, "[=true|false]", "path-style URLs (https://host/bucket/key)" },
	[OPT_PATH] = { "path", CTL_OPT_ARG, "DIR", "local: the folder holding the objects" },
	[OPT_ACCESS_KEY_ID] = { "access-key-id", CTL_OPT_ARG, "K", "access key id" },
	[OPT_SECRET_STDIN] = { "secret-access-key-stdin", CTL_OPT_FLAG, NULL, "read the secret key from stdin (one line)" },
	[OPT_SECRET_FILE] = { "secret-access-key-file", CTL_OPT_ARG, "F", "read the secret key from file F (mode 0600)" },
	[OPT_READ_ONLY] = { "read-only", CTL_OPT_BOOL, "[=true|false]", "every write gives EROFS" },
	[OPT_FORCE] = { "force", CTL_OPT_FLAG, NULL, "also drop pending uploads, index rows, assignments and defaults" },
	[OPT_BUCKET] = { "bucket", CTL_OPT_ARG, "NAME", "only this bucket" },
	[OPT_CONTEXT] = { "context", CTL_OPT_ARG, "chat/ID|form/ID", "the files of one chat group or form" },
	[OPT_EXPIRES] = { "expires", CTL_OPT_ARG, "SECONDS", "validity, 1..604800 (default 3600)" },
	[OPT_OWNER] = { "owner", CTL_OPT_ARG, "USER", "owner of the bucket folder and of objects without metadata (name or uid; default: the mounting user)" },
	[OPT_GROUP] = { "group", CTL_OPT_ARG, "GROUP", "their group (name or gid; default: the mounting user's)" },
	[OPT_MODE] = { "mode", CTL_OPT_ARG, "OCTAL", "mode of the bucket folder (default 0755)" },
	[OPT_FILE_MODE] = { "file-mode", CTL_OPT_ARG, "OCTAL", "mode of objects without metadata (default 0644)" },
	[OPT_DIR_MODE] = { "dir-mode", CTL_OPT_ARG, "OCTAL", "mode of folders without metadata (default 0755)" },
	[OPT_TO] = { "to", CTL_OPT_ARG, "NAME", "context move: assign the context to bucket NAME first" },
	[OPT_DRY_RUN] = { "dry-run", CTL_OPT_FLAG, NULL, "print what would move, change nothing" },
	[OPT_ACCOUNT_NAME] = { "account-name", CTL_OPT_ARG, "A", "azure storage account (endpoint ACCOUNT.blob.core.windows.net)" },
	[OPT_ACCOUNT_KEY_STDIN] = { "account-key-stdin", CTL_OPT_FLAG, NULL, "azure: read the account key from stdin (one line)" },
	[OPT_ACCOUNT_KEY_FILE] = { "account-key-file", CTL_OPT_ARG, "F", "azure: read the account key from file F (mode 0600)" },
	[OPT_SAS_TOKEN_FILE] = { "sas-token-file", CTL_OPT_ARG, "F", "azure: read a SAS token from file F (mode 0600)" },
};

#define SETTINGS_OPTS OPT_DESCRIPTION, OPT_BUCKET_NAME, OPT_PREFIX, \
	OPT_REGION, OPT_ENDPOINT, OPT_ACCOUNT_ID, OPT_PATH_STYLE, OPT_PATH, \
	OPT_ACCESS_KEY_ID, OPT_SECRET_STDIN, OPT_SECRET_FILE, OPT_READ_ONLY, \
	OPT_OWNER, OPT_GROUP, OPT_MODE, OPT_FILE_MODE, OPT_DIR_MODE, \
	OPT_ACCOUNT_NAME, OPT_ACCOUNT_KEY_STDIN, OPT_ACCOUNT_KEY_FILE, \
	OPT_SAS_TOKEN_FILE

static const enum ctl_opt_id no_opts[] = { OPT_COUNT };
static const enum ctl_opt_id add_opts[] = { OPT_PROVIDER, SETTINGS_OPTS, OPT_COUNT };
static const enum ctl_opt_id remove_opts[] = { OPT_FORCE, OPT_COUNT };
static const enum ctl_opt_id files_opts[] = { OPT_BUCKET, OPT_PREFIX, OPT_CONTEXT, OPT_COUNT };
static const enum ctl_opt_id presign_opts[] = { OPT_EXPIRES, OPT_COUNT };
static const enum ctl_opt_id move_opts[] = { OPT_TO, OPT_DRY_RUN, OPT_COUNT };

static const char help_settings[] =
	"The secret key is never taken as an argument: use\n"
	"--secret-access-key-stdin (one line; a trailing newline is stripped)\n"
	"or --secret-access-key-file F (F must not be readable by others).\n"
	"Secrets are stored encrypted under the master key (see `init`).\n"
	"A local bucket's --path must be an existing folder.\n"
	"--owner, --group and --mode set the bucket folder's owner, group and\n"
	"mode (the kernel checks every access against them); objects and\n"
	"folders without s3fs metadata show that owner and group with\n"
	"--file-mode and --dir-mode.  Users and groups must exist; modes are\n"
	"octal.  On update an empty value goes back to the default.\n";

static const char help_files[] =
	"Lists the file index (not the remote bucket): BUCKET KEY SIZE MODE\n"
	"MTIME CONTENT_TYPE.  KEY is the full remote key (the bucket's prefix\n"
	"included); --prefix P is a path inside the bucket (the bucket's\n"
	"prefix is put in front).\n"
	"\n"
	"--context chat/ID lists the files of one chat group (form/ID: one\n"
	"form): the keys under \"chat/ID/\" (\"form/ID/\") in every bucket -\n"
	"files stored before its assignment or default changed stay where\n"
	"they are - or in --bucket only, with --prefix P below that.\n";

static const struct ctl_cmd commands[] = {
	{ "init", "", "create the database and the master key file if missing",
	  "Creates the database (schema migrations) and the master key file\n"
	  "(mode 0600) when missing, then syncs the config's buckets.\n"
	  "Safe to run again: existing files are kept.\n",
	  no_opts, 0, 0, 0, CTL_CTX_CONFIG, ctl_cmd_init },
	{ "bucket list", "", "buckets with provider, remote, defaults, files, bytes",
	  "Columns: NAME PROVIDER REMOTE DEFAULTS FILES BYTES MANAGED_BY.\n"
	  "REMOTE is bucket_name[/prefix] (s3, r2) or the folder (local);\n"
	  "MANAGED_BY is \"config\" for buckets declared in the config file\n"
	  "(read-only here) or \"bucketctl\".\n",
	  no_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_bucket_list },
	{ "bucket show", "NAME", "every setting of a bucket (secrets as (set))",
	  "One \"key: value\" line per setting; secrets only as (set) or\n"
	  "(not set).\n",
	  no_opts, 1, 1, 1, CTL_CTX_FULL, ctl_cmd_bucket_show },
	{ "bucket add", "NAME --provider s3|r2|local [options]", "add a bucket",
	  help_settings, add_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_bucket_add },
	{ "bucket update", "NAME [options]", "change settings of a bucket",
	  "Only the options given change; an empty value (--endpoint \"\")\n"
	  "clears an optional setting.  Buckets managed by config are\n"
	  "refused: change the config file instead.\n",
	  add_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_bucket_update },
	{ "bucket remove", "NAME [--force]", "remove a bucket",
	  "Refused while uploads to the bucket are pending (see `pending`),\n"
	  "the index holds files of the bucket, it is a default or it has\n"
	  "assignments.  --force drops those journal rows (their data is\n"
	  "then never uploaded), index rows and assignments and clears its\n"
	  "defaults; remote objects are never deleted.  Buckets managed by\n"
	  "config are refused.\n",
	  remove_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_bucket_remove },
	{ "bucket test", "NAME", "write, read back, list and delete a probe object",
	  "Puts a probe object .bucketfs-probe-RANDOM under the bucket's\n"
	  "prefix, reads it back and compares, finds it in a listing and\n"
	  "deletes it, printing each step's latency.  A read-only bucket gets\n"
	  "the listing only.  Exit 1 with the provider's error otherwise.\n",
	  no_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_bucket_test },
	{ "defaults", "", "the default buckets (like the .defaults file)",
	  "Prints \"general = NAME\", \"chat = NAME\", \"forms = NAME\" (empty\n"
	  "when unset).\n",
	  no_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_defaults },
	{ "defaults set", "ROLE NAME", "make NAME the default of ROLE (general, chat, forms)",
	  NULL, no_opts, 2, 2, 0, CTL_CTX_FULL, ctl_cmd_defaults_set },
	{ "defaults unset", "ROLE", "clear the default of ROLE",
	  NULL, no_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_defaults_unset },
	{ "assign", "chat|form ID NAME", "store a chat group's or form's files in NAME",
	  "ID matches [A-Za-z0-9_-]{1,128}.\n",
	  no_opts, 3, 3, 0, CTL_CTX_FULL, ctl_cmd_assign },
	{ "unassign", "chat|form ID", "drop an assignment (back to the defaults)",
	  NULL, no_opts, 2, 2, 0, CTL_CTX_FULL, ctl_cmd_unassign },
	{ "assignments", "", "every assignment (like the .assignments file)",
	  "Prints sorted \"chat/ID = NAME\" and \"form/ID = NAME\" lines.\n",
	  no_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_assignments },
	{ "files", "[--bucket NAME] [--prefix P] [--context chat/ID|form/ID]",
	  "files from the index", help_files,
	  files_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_files },
	{ "import", "NAME", "index the objects already in a bucket",
	  "Lists the remote bucket (under its prefix) recursively and adds or\n"
	  "updates one index row per object: size, etag, mtime, content type\n"
	  "(from the extension), mode, uid and gid (from the object's s3fs\n"
	  "metadata; without it mode 0100000 and no uid/gid: the mount shows\n"
	  "the bucket's file_mode, owner and group).  Progress goes to stderr\n"
	  "when it is a terminal.\n",
	  no_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_import },
	{ "presign", "NAME/KEY [--expires SECONDS]", "a presigned GET URL (s3, r2)",
	  "KEY is the path inside the bucket (the bucket's prefix is put in\n"
	  "front).  Not available for local buckets.\n",
	  presign_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_presign },
	{ "stats", "[NAME]", "per bucket: files, bytes, by context (from the index)",
	  "Columns: BUCKET FILES BYTES CHAT FORM GENERAL.  CHAT counts the\n"
	  "files under \"chat/ID/\", FORM those under \"form/ID/\" (paths inside\n"
	  "the bucket), GENERAL the rest.  JSON also gives bytes per context.\n",
	  no_opts, 0, 1, 1, CTL_CTX_FULL, ctl_cmd_stats },
	{ "pending", "", "uploads not yet stored by their provider (the journal)",
	  "Columns: BUCKET KEY SIZE AGE ATTEMPTS LAST_ERROR, oldest first.\n"
	  "Each row is a file whose data was acknowledged to a writer and is\n"
	  "kept in a staging file until its provider stores it; a running\n"
	  "daemon retries it, a daemon that was killed finishes it at its next\n"
	  "start.  KEY is the full remote key; AGE counts from when the file\n"
	  "first had unstored data (s, m, h, d); LAST_ERROR is the last\n"
	  "failed attempt's reason (- when none).  Prints \"no pending\n"
	  "uploads\" when the journal is empty.  JSON gives every field, times\n"
	  "in unix seconds, and age_seconds.\n",
	  no_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_pending },
	{ "migrate-db", "URI", "copy the SQLite catalog into PostgreSQL",
	  "URI: postgresql://USER@HOST:PORT/DB?sslmode=... of an empty\n"
	  "database (password from the config's database_password_file or\n"
	  "database_password = env:VAR).  Copies buckets (sealed secrets as\n"
	  "they are: same master key), settings, the file index, assignments\n"
	  "and listing metadata in one transaction and verifies the row\n"
	  "counts; refuses a database that holds catalog rows and a SQLite\n"
	  "journal with pending uploads.  The config is not changed: the\n"
	  "output says what to set.\n",
	  no_opts, 1, 1, 0, CTL_CTX_FULL, ctl_cmd_migrate_db },
	{ "contexts", "", "contexts with their routed bucket and files per bucket",
	  "Columns: CONTEXT BUCKET FILES BYTES BY_BUCKET.  Every chat group and\n"
	  "form with an assignment or indexed files; BUCKET is the one new files\n"
	  "go to (its assignment, else the chat / forms default, else the\n"
	  "general default; - when none), FILES and BYTES count the context's\n"
	  "indexed files in every bucket, BY_BUCKET as NAME=FILES/BYTES (files\n"
	  "stored before a re-routing stay in their bucket; `context move`\n"
	  "brings them over).  From the index.\n",
	  no_opts, 0, 0, 1, CTL_CTX_FULL, ctl_cmd_contexts },
	{ "context move", "chat|form ID [--to NAME] [--dry-run]",
	  "move a context's files into its routed bucket",
	  "Copies each indexed file of the context that another bucket holds\n"
	  "into the context's routed bucket (--to NAME assigns it there first),\n"
	  "under the same path; verifies size and checksum, moves the index\n"
	  "row, then deletes the old object.  A file the routed bucket already\n"
	  "holds at the same path is kept where it is (the mount shows the\n"
	  "routed bucket's).  Safe to interrupt and run again: a run finishes\n"
	  "what an earlier one left half done.  A running mount keeps serving\n"
	  "the context at the same paths.  Progress on stderr when it is a\n"
	  "terminal; --dry-run lists what would move; --json a summary.\n",
	  move_opts, 2, 2, 1, CTL_CTX_FULL, ctl_cmd_context_move },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int ctl_verbose;

/* ---- messages ---------------------------------------------------------- */

int ctl_fail(const char *fmt, ...)
{
	char line[CTL_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One line, whatever the message carries. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fflush(stdout);
	fprintf(stderr, "bucketctl: %s\n", line);
	return CTL_EXIT_FAIL;
}

static void print_usage_line(FILE *f, const struct ctl_cmd *cmd)
{
	if (cmd)
		fprintf(f, "usage: bucketctl [-c CONFIG]%s %s%s%s\n",
			cmd->listing ? " [--json]" : "", cmd->name,
			cmd->synopsis[0] ? " " : "", cmd->synopsis);
	else
		fprintf(f, "usage: bucketctl [-c CONFIG] [--json] COMMAND [ARGS...]%s\n",
			f == stderr ? "  (bucketctl --help lists the commands)" : "");
}

int ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	char line[CTL_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "bucketctl: %s\n", line);
	print_usage_line(stderr, cmd);
	return CTL_EXIT_USAGE;
}

static void print_cmd_help(const struct ctl_cmd *cmd)
{
	const enum ctl_opt_id *o;

	print_usage_line(stdout, cmd);
	printf("\n%s.\n", cmd->summary);
	if (cmd->help)
		printf("\n%s", cmd->help);
	if (cmd->opts[0] != OPT_COUNT) {
		printf("\nOptions:\n");
		for (o = cmd->opts; *o != OPT_COUNT; o++) {
			char left[64];
			const char *h = opt_info[*o].hint;

			snprintf(left, sizeof(left), "--%s%s%s", opt_info[*o].name,
				 h && opt_info[*o].kind == CTL_OPT_ARG ? " " : "",
				 h ? h : "");
			printf("  %-32s %s\n", left, opt_info[*o].help);
		}
	}
	if (cmd->listing)
		printf("\n--json prints JSON instead of text.\n");
}

static void print_global_help(void)
{
	size_t i;

	print_usage_line(stdout, NULL);
	printf("\nThe admin tool of bucketfs.  Works whether or not a daemon is\n"
	       "running; a running daemon sees changes within one second.\n"
	       "\nOptions:\n"
	       "  -c, --config CONFIG   config file (default $BUCKETFS_CONFIG, then\n"
	       "                        " CTL_DEFAULT_CONFIG ")\n"
	       "  --json                JSON output for listing commands\n"
	       "  -v, --verbose         show the library's log messages\n"
	       "  -h, --help            this help; COMMAND --help for a command\n"
	       "\nCommands:\n");
	for (i = 0; i < NCOMMANDS; i++) {
		char left[96];

		snprintf(left, sizeof(left), "%s%s%s", commands[i].name,
			 commands[i].synopsis[0] ? " " : "", commands[i].synopsis);
		if (strlen(left) > 34)
			printf("  %s\n  %-34s %s\n", left, "", commands[i].summary);
		else
			printf("  %-34s %s\n", left, commands[i].summary);
	}
	printf("\nExit status: 0 ok, 1 failure (one line on stderr), 2 usage error.\n");
}

/* `bucketctl bucket --help`: every bucket subcommand. */
static void print_group_help(const char *group)
{
	size_t i, n = strlen(group);
	int first = 1;

	for (i = 0; i < NCOMMANDS; i++) {
		if (strncmp(commands[i].name, group, n) != 0 ||
		    commands[i].name[n] != ' ')
			continue;
		if (!first)
			printf("\n");
		first = 0;
		print_cmd_help(&commands[i]);
	}
}

/* ---- command lookup and option parsing --------------------------------- */

/* Number of argv words the command name takes when it matches, else 0. */
static int cmd_match(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *n = cmd->name;
	int used = 0;

	while (*n) {
		size_t wl = strcspn(n, " ");

		if (used >= argc || strlen(argv[used]) != wl ||
		    strncmp(argv[used], n, wl) != 0)
			return 0;
		used++;
		n += wl;
		if (*n == ' ')
			n++;
	}
	return used;
}

static int cmd_accepts(const struct ctl_cmd *cmd, enum ctl_opt_id id)
{
	const enum ctl_opt_id *o;

	for (o = cmd->opts; *o != OPT_COUNT; o++)
		if (*o == id)
			return 1;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") ||
	    !strcmp(s, "1"))
		*out = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") ||
		 !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/*
 * Parses the command's arguments into a.  Returns CTL_EXIT_OK, or
 * CTL_EXIT_USAGE after printing why; *help set for --help.  -c/--config
 * and --json are taken here too (they may follow the command).
 */
static int parse_cmd_args(const struct ctl_cmd *cmd, int argc, char **argv,
			  struct ctl_args *a, const char **config, int *help)
{
	int i, only_pos = 0;

	for (i = 0; i < argc; i++) {
		const char *s = argv[i], *eq, *val = NULL;
		size_t nl;
		int id;

		if (only_pos || s[0] != '-' || s[1] == '\0') {
			if (a->npos >= (size_t)cmd->max_pos)
				return ctl_usage(cmd, "%s: too many arguments", cmd->name);
			a->pos[a->npos++] = s;
			continue;
		}
		if (!strcmp(s, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			*help = 1;
			return CTL_EXIT_OK;
		}
		if (!strcmp(s, "--json")) {
			if (!cmd->listing)
				return ctl_usage(cmd, "%s: --json is for listing commands",
						 cmd->name);
			a->json = 1;
			continue;
		}
		if (!strcmp(s, "-c") || !strcmp(s, "--config")) {
			if (i + 1 >= argc)
				return ctl_usage(cmd, "%s needs a file", s);
			*config = argv[++i];
			continue;
		}
		if (!strncmp(s, "--config=", 9)) {
			*config = s + 9;
			continue;
		}
		/* Never echo what follows '=': it could be a secret. */
		eq = strchr(s, '=');
		nl = eq ? (size_t)(eq - s) : strlen(s);
		if (s[1] != '-')
			return ctl_usage(cmd, "%s: unknown option '%.*s'", cmd->name,
					 (int)(nl > 64 ? 64 : nl), s);
		for (id = 0; id < OPT_COUNT; id++)
			if (strlen(opt_info[id].name) == nl - 2 &&
			    !strncmp(opt_info[id].name, s + 2, nl - 2))
				break;
		if (id == OPT_COUNT || !cmd_accepts(cmd, (enum ctl_opt_id)id))
			return ctl_usage(cmd, "%s: unknown option '%.*s'", cmd->name,
					 (int)(nl > 64 ? 64 : nl), s);
		switch (opt_info[id].kind) {
		case CTL_OPT_FLAG:
			if (eq)
				return ctl_usage(cmd, "--%s takes no value",
						 opt_info[id].name);
			break;
		case CTL_OPT_ARG:
			if (eq) {
				val = eq + 1;
			} else {
				if (i + 1 >= argc)
					return ctl_usage(cmd, "--%s needs a value (%s)",
							 opt_info[id].name,
							 opt_info[id].hint);
				val = argv[++i];
			}
			break;
		case CTL_OPT_BOOL:
			a->opt[id].bval = 1;
			if (eq && parse_bool(eq + 1, &a->opt[id].bval) != 0)
				return ctl_usage(cmd, "--%s: expected true or false",
						 opt_info[id].name);
			break;
		}
		a->opt[id].set = 1;
		a->opt[id].arg = val;
	}
	if (a->npos < (size_t)cmd->min_pos)
		return ctl_usage(cmd, "%s: missing argument", cmd->name);
	return CTL_EXIT_OK;
}

/* ---- context ------------------------------------------------------------ */

int ctl_config_has_secrets(const struct bfs_config *cfg)
{
	size_t i;

	for (i = 0; cfg && i < cfg->nbuckets; i++)
		if (cfg->buckets[i].secret_access_key ||
		    cfg->buckets[i].session_token)
			return 1;
	return 0;
}

const unsigned char *ctl_key(const struct ctl_ctx *c)
{
	return c->have_key ? c->key : NULL;
}

/*
 * Loads the master key into c->key (no-op when loaded): 0, or -1 with
 * the reason in err (a missing file suggests `init`).
 */
static int load_key(struct ctl_ctx *c, char *err, size_t errlen)
{
	char *path = NULL;
	int r = -1;

	if (c->have_key)
		return 0;
	path = bfs_config_master_key_path(c->cfg);
	if (!path) {
		snprintf(err, errlen, "no master key file configured "
			 "(master_key_file in %s)", c->cfg->file);
		goto out;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		snprintf(err, errlen, "master key file %s does not exist (run "
			 "'bucketctl init')", path);
		goto out;
	}
	if (bfs_crypto_load_key(path, c->key, err, errlen) != 0) {
		OPENSSL_cleanse(c->key, sizeof(c->key));
		goto out;
	}
	c->have_key = 1;
	r = 0;
out:
	free(path);
	return r;
}

int ctl_need_key(struct ctl_ctx *c)
{
	char err[CTL_ERR_LEN] = "";

	if (load_key(c, err, sizeof(err)) != 0)
		return ctl_fail("%s", err);
	return 0;
}

/*
 * The config sync wants the key only to seal a config secret that is new
 * or changed; one already stored is kept as it is without the key.  So a
 * key that cannot be loaded (an admin without read access to it) does
 * not stop commands that use no secret: its reason is only shown when
 * the sync fails for want of it.
 */
int ctl_ctx_open_store(struct ctl_ctx *c)
{
	char err[CTL_ERR_LEN] = "", keyerr[CTL_ERR_LEN] = "";
	int r;

	r = bfs_store_open_config(c->cfg, &c->store, err, sizeof(err));
	if (r != 0)
		return ctl_fail("%s", err[0] ? err : bfs_strerror(r));
	if (ctl_config_has_secrets(c->cfg))
		load_key(c, keyerr, sizeof(keyerr));
	err[0] = '\0';
	r = bfs_store_sync_config(c->store, c->cfg, ctl_key(c), err, sizeof(err));
	if (r != 0 && !c->have_key && keyerr[0])
		return ctl_fail("config sync: %s", keyerr);
	if (r != 0)
		return ctl_fail("config sync: %s", err[0] ? err : bfs_strerror(r));
	return 0;
}

static int ctx_open(struct ctl_ctx *c, int what)
{
	struct bfs_provider_globals g;
	char err[CTL_ERR_LEN] = "";
	int r;

	r = bfs_config_load(c->config_path, &c->cfg, err, sizeof(err));
	if (r != 0)
		return ctl_fail("%s", err[0] ? err : bfs_strerror(r));
	if (ctl_verbose)
		bfs_log_set_level(c->cfg->log_level);
	memset(&g, 0, sizeof(g));
	g.ca_bundle = c->cfg->ca_bundle;
	bfs_provider_set_globals(&g);
	if (what == CTL_CTX_FULL)
		return ctl_ctx_open_store(c);
	return 0;
}

static void ctx_close(struct ctl_ctx *c)
{
	bfs_store_close(c->store);
	c->store = NULL;
	bfs_config_free(c->cfg);
	c->cfg = NULL;
	OPENSSL_cleanse(c->key, sizeof(c->key));
	c->have_key = 0;
}

int ctl_bucket_get(struct ctl_ctx *c, const char *name, int with_secrets,
		   struct bfs_bucket_conf *b)
{
	int r;

	memset(b, 0, sizeof(*b));
	r = bfs_store_bucket_get(c->store, name, NULL, b);
	if (r == BFS_ERR_NOTFOUND)
		return ctl_fail("no such bucket '%s'", name);
	if (r != 0)
		return ctl_fail("bucket '%s': %s", name, bfs_strerror(r));
	if (!with_secrets || !(b->has_secret || b->has_session_token))
		return 0;
	bfs_bucket_conf_clear(b);
	if (ctl_need_key(c) != 0)
		return CTL_EXIT_FAIL;
	r = bfs_store_bucket_get(c->store, name, c->key, b);
	if (r == BFS_ERR_CRYPTO)
		return ctl_fail("bucket '%s': its secrets do not open with this "
				"master key (%s)", name, bfs_strerror(r));
	if (r != 0)
		return ctl_fail("bucket '%s': %s", name, bfs_strerror(r));
	return 0;
}

/* ---- small formatting helpers ------------------------------------------ */

void ctl_remote_str(const struct bfs_bucket_conf *b, char *out, size_t len)
{
	if (b->provider == BFS_PROV_LOCAL)
		snprintf(out, len, "%s", b->path ? b->path : "-");
	else if (b->prefix && b->prefix[0])
		snprintf(out, len, "%s/%s", b->bucket_name ? b->bucket_name : "",
			 b->prefix);
	else
		snprintf(out, len, "%s", b->bucket_name ? b->bucket_name : "-");
}

void ctl_defaults_str(unsigned mask, char *out, size_t len)
{
	size_t at = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < BFS_ROLE_COUNT; i++) {
		if (!(mask & BFS_ROLE_BIT(i)))
			continue;
		snprintf(out + at, len - at, "%s%s", at ? "," : "",
			 bfs_role_name(i));
		at = strlen(out);
	}
	if (!at)
		snprintf(out, len, "-");
}

int ctl_json_str(struct bfs_buf *b, const char *s)
{
	return s ? bfs_buf_add_json_str(b, s) : bfs_buf_adds(b, "null");
}

int ctl_emit(struct bfs_buf *b, int r)
{
	if (r != 0) {
		bfs_buf_free(b);
		return ctl_fail("output: %s", bfs_strerror(r));
	}
	fwrite(bfs_buf_str(b), 1, b->len, stdout);
	bfs_buf_reset(b);
	return 0;
}

void ctl_time_str(int64_t t, char *out, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || !gmtime_r(&tt, &tm))
		snprintf(out, len, "-");
	else
		strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- text tables -------------------------------------------------------- */

void ctl_table_init(struct ctl_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > CTL_TABLE_COLS ? CTL_TABLE_COLS : ncols;
}

static void table_drop_rows(struct ctl_table *t)
{
	size_t i;

	for (i = 0; t->cells && i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	size_t i, base;

	if (t->nrows >= CTL_TABLE_ROWS) {
		ctl_table_flush(t);
		t->widths_fixed = 1;
	}
	if (!t->cells) {
		t->cells = calloc(CTL_TABLE_ROWS * t->ncols, sizeof(char *));
		if (!t->cells) {
			t->failed = 1;
			return BFS_ERR_NOMEM;
		}
	}
	base = t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "";
		size_t w = strlen(s);

		if (!(t->cells[base + i] = strdup(s))) {
			while (i-- > 0) {
				free(t->cells[base + i]);
				t->cells[base + i] = NULL;
			}
			t->failed = 1;
			return BFS_ERR_NOMEM;
		}
		if (!t->widths_fixed && w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

/* The first row added is the header; it is printed once. */
int ctl_table_flush(struct ctl_table *t)
{
	size_t r, i;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)t->width[i], s);
		}
	}
	table_drop_rows(t);
	return t->failed ? BFS_ERR_NOMEM : 0;
}

void ctl_table_free(struct ctl_table *t)
{
	table_drop_rows(t);
	free(t->cells);
	t->cells = NULL;
}

/* ---- main --------------------------------------------------------------- */

/*
 * Global options before the command.  Returns the index of the command's
 * first word, or -1 with *rc set (help printed, or usage error).
 */
static int parse_global(int argc, char **argv, const char **config,
			int *json, int *rc)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			print_global_help();
			*rc = CTL_EXIT_OK;
			return -1;
		} else if (!strcmp(s, "--json")) {
			*json = 1;
		} else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
			ctl_verbose = 1;
		} else if (!strcmp(s, "-c") || !strcmp(s, "--config")) {
			if (i + 1 >= argc) {
				*rc = ctl_usage(NULL, "%s needs a file", s);
				return -1;
			}
			*config = argv[++i];
		} else if (!strncmp(s, "--config=", 9)) {
			*config = s + 9;
		} else if (!strncmp(s, "-c", 2) && s[2]) {
			*config = s + 2;
		} else if (!strcmp(s, "--")) {
			return i + 1;
		} else if (s[0] == '-' && s[1]) {
			const char *eq = strchr(s, '=');
			int n = eq ? (int)(eq - s) : (int)strlen(s);

			*rc = ctl_usage(NULL, "unknown option '%.*s'",
					n > 64 ? 64 : n, s);
			return -1;
		} else {
			return i;
		}
	}
	*rc = ctl_usage(NULL, "missing command");
	return -1;
}

int main(int argc, char **argv)
{
	const struct ctl_cmd *cmd = NULL;
	const char *config = NULL;
	struct ctl_args args;
	struct ctl_ctx ctx;
	int first, used = 0, best = 0, help = 0, json = 0, rc = CTL_EXIT_FAIL;
	size_t i;

	bfs_log_set_level(-1);
	memset(&ctx, 0, sizeof(ctx));
	memset(&args, 0, sizeof(args));
	first = parse_global(argc, argv, &config, &json, &rc);
	if (first < 0)
		goto out;
	for (i = 0; i < NCOMMANDS; i++) {
		used = cmd_match(&commands[i], argc - first, argv + first);
		if (used > best) {
			best = used;
			cmd = &commands[i];
		}
	}
	if (!cmd) {
		/* A group word alone ("bucket", "bucket frob"). */
		size_t n = strlen(argv[first]);

		for (i = 0; i < NCOMMANDS; i++)
			if (!strncmp(commands[i].name, argv[first], n) &&
			    commands[i].name[n] == ' ')
				break;
		if (i < NCOMMANDS && first + 1 < argc &&
		    (!strcmp(argv[first + 1], "--help") ||
		     !strcmp(argv[first + 1], "-h"))) {
			print_group_help(argv[first]);
			rc = CTL_EXIT_OK;
		} else if (i < NCOMMANDS) {
			rc = ctl_usage(NULL, "%s: %s subcommand '%s' (see bucketctl "
				       "%s --help)", argv[first],
				       first + 1 < argc ? "unknown" : "missing",
				       first + 1 < argc ? argv[first + 1] : "",
				       argv[first]);
		} else {
			rc = ctl_usage(NULL, "unknown command '%.64s'", argv[first]);
		}
		goto out;
	}
	rc = parse_cmd_args(cmd, argc - first - best, argv + first + best,
			    &args, &config, &help);
	if (rc != CTL_EXIT_OK)
		goto out;
	if (help) {
		print_cmd_help(cmd);
		rc = CTL_EXIT_OK;
		goto out;
	}
	/* A global --json means nothing to a command without a listing. */
	args.json |= json && cmd->listing;
	if (!config || !config[0])
		config = getenv("BUCKETFS_CONFIG");
	if (!config || !config[0])
		config = CTL_DEFAULT_CONFIG;
	ctx.cmd = cmd;
	ctx.config_path = config;
	ctx.json = args.json;
	rc = ctx_open(&ctx, cmd->ctx);
	if (rc != 0)
		goto out;
	rc = cmd->run(&ctx, &args);
out:
	ctx_close(&ctx);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "bucketctl: writing output: %s\n", strerror(errno));
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_FAIL;
	}
	return rc;
}
