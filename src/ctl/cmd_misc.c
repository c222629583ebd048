/*
 * cmd_misc.c - the bucketctl commands beside `bucket ...`: init, defaults,
 * assign / unassign / assignments, files, import, presign, stats, pending
 * (the upload journal).
 *
 * Listings read the store; text goes through ctl_table (aligned columns),
 * JSON is written one object at a time from a capped buffer, so a large
 * index never needs one big allocation.  defaults and assignments print
 * exactly what the .defaults and .assignments control files show.
 *
 * Paths inside a bucket: --prefix, --context and presign's KEY are paths
 * as seen under MOUNTPOINT/NAME/, so the bucket's own prefix is put in
 * front to get remote keys; the KEY column and JSON "key" show the full
 * remote key as the index stores it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_journal.h"
#include "bfs_key.h"
#include "bfs_pg.h"
#include "bfs_provider.h"
#include "ctl.h"

#define PRESIGN_DEFAULT 3600
#define PRESIGN_MAX 604800           /* 7 days: the SigV4 limit */
#define IMPORT_PROGRESS_MS 200.0

/* ---- init --------------------------------------------------------------- */

/* mkdir -p of the folder holding path (mode 0750 for new folders). */
static int make_parent_dirs(const char *path)
{
	char tmp[4096];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return ctl_fail("%s: path too long", path);
	p = strrchr(tmp, '/');
	if (!p || p == tmp)
		return 0;
	*p = '\0';
	for (p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;

			*p = '\0';
			if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
				return ctl_fail("mkdir %s: %s", tmp, strerror(errno));
			*p = save;
			if (!save)
				break;
		}
	}
	return 0;
}

int ctl_cmd_init(struct ctl_ctx *c, const struct ctl_args *a)
{
	char err[CTL_ERR_LEN] = "";
	char *keypath = NULL;
	struct stat sb;
	int db_existed, key_existed, r, rc = CTL_EXIT_FAIL;

	(void)a;
	keypath = bfs_config_master_key_path(c->cfg);
	if (!keypath) {
		ctl_fail("no master key file configured (master_key_file in %s)",
			 c->cfg->file);
		goto out;
	}
	key_existed = stat(keypath, &sb) == 0;
	if (!key_existed) {
		if (make_parent_dirs(keypath) != 0)
			goto out;
		r = bfs_crypto_create_key(keypath, err, sizeof(err));
		if (r != 0 && r != BFS_ERR_EXISTS) {
			ctl_fail("%s", err[0] ? err : bfs_strerror(r));
			goto out;
		}
	}
	/* Also checks an existing key file's permissions and format. */
	if (ctl_need_key(c) != 0)
		goto out;
	db_existed = stat(c->cfg->database, &sb) == 0;
	if (!db_existed && make_parent_dirs(c->cfg->database) != 0)
		goto out;
	if (ctl_ctx_open_store(c) != 0)
		goto out;
	printf("%s master key file %s\n", key_existed ? "kept" : "created", keypath);
	printf("%s database %s\n", db_existed ? "kept" : "created", c->cfg->database);
	printf("synced %zu bucket%s from %s\n", c->cfg->nbuckets,
	       c->cfg->nbuckets == 1 ? "" : "s", c->cfg->file);
	rc = CTL_EXIT_OK;
out:
	free(keypath);
	return rc;
}

/* ---- defaults ----------------------------------------------------------- */

int ctl_cmd_defaults(struct ctl_ctx *c, const struct ctl_args *a)
{
	char *names[BFS_ROLE_COUNT] = { NULL, NULL, NULL };
	struct bfs_buf o;
	int i, r, rc = CTL_EXIT_FAIL;

	bfs_buf_init(&o, 64 * 1024);
	if ((r = bfs_store_defaults_get(c->store, names)) != 0) {
		ctl_fail("defaults: %s", bfs_strerror(r));
		goto out;
	}
	if (a->json) {
		r = bfs_buf_adds(&o, "{");
		for (i = 0; i < BFS_ROLE_COUNT; i++) {
			JADD(bfs_buf_addf(&o, "%s\"%s\": ", i ? ", " : "",
					  bfs_role_name(i)));
			JADD(ctl_json_str(&o, names[i] && names[i][0] ? names[i] : NULL));
		}
		JADD(bfs_buf_adds(&o, "}\n"));
	} else {
		r = bfs_ctl_format_defaults(names, &o);
	}
	if (ctl_emit(&o, r) != 0)
		goto out;
	rc = CTL_EXIT_OK;
out:
	bfs_buf_free(&o);
	bfs_store_names_free(names);
	return rc;
}

static int role_arg(const char *s, int *role)
{
	*role = bfs_role_parse(s);
	if (*role < 0)
		return ctl_fail("unknown role '%.64s' (general, chat or forms)", s);
	return 0;
}

static int set_default(struct ctl_ctx *c, const char *role_s, const char *name)
{
	struct bfs_bucket_conf b;
	char err[CTL_ERR_LEN] = "";
	int role, r;

	if (role_arg(role_s, &role) != 0)
		return CTL_EXIT_FAIL;
	if (name) {
		if (ctl_bucket_get(c, name, 0, &b) != 0)
			return CTL_EXIT_FAIL;
		bfs_bucket_conf_clear(&b);
	}
	r = bfs_store_default_set(c->store, role, name, err, sizeof(err));
	if (r == BFS_ERR_NOTFOUND)
		return ctl_fail("no such bucket '%s'", name ? name : "");
	if (r != 0)
		return ctl_fail("defaults: %s", err[0] ? err : bfs_strerror(r));
	if (name)
		printf("%s = %s\n", bfs_role_name(role), name);
	else
		printf("%s =\n", bfs_role_name(role));
	return CTL_EXIT_OK;
}

int ctl_cmd_defaults_set(struct ctl_ctx *c, const struct ctl_args *a)
{
	return set_default(c, a->pos[0], a->pos[1]);
}

int ctl_cmd_defaults_unset(struct ctl_ctx *c, const struct ctl_args *a)
{
	return set_default(c, a->pos[0], NULL);
}

/* ---- assignments -------------------------------------------------------- */

/* "chat" / "form" and an ID checked with bfs_ctx_id_valid(). */
static int context_args(const char *type_s, const char *id, int *type)
{
	*type = bfs_ctx_type_parse(type_s);
	if (*type < 0)
		return ctl_fail("unknown context type '%.64s' (chat or form)", type_s);
	if (!bfs_ctx_id_valid(id))
		return ctl_fail("invalid %s ID '%.64s' (expected "
				"[A-Za-z0-9_-]{1,128})", type_s, id);
	return 0;
}

static int apply_assignment(struct ctl_ctx *c, int type, const char *id,
			    const char *bucket)
{
	struct bfs_assign_change ch;
	char err[CTL_ERR_LEN] = "";
	int r;

	memset(&ch, 0, sizeof(ch));
	ch.context_type = type;
	snprintf(ch.context_id, sizeof(ch.context_id), "%s", id);
	if (bucket && !(ch.bucket = strdup(bucket)))
		return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
	r = bfs_store_assign_apply(c->store, &ch, 1, err, sizeof(err));
	free(ch.bucket);
	if (r == BFS_ERR_NOTFOUND && bucket)
		return ctl_fail("no such bucket '%s'", bucket);
	if (r != 0)
		return ctl_fail("%s/%s: %s", bfs_ctx_type_name(type), id,
				err[0] ? err : bfs_strerror(r));
	return 0;
}

int ctl_cmd_assign(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_bucket_conf b;
	int type;

	if (context_args(a->pos[0], a->pos[1], &type) != 0)
		return CTL_EXIT_FAIL;
	if (ctl_bucket_get(c, a->pos[2], 0, &b) != 0)
		return CTL_EXIT_FAIL;
	bfs_bucket_conf_clear(&b);
	if (apply_assignment(c, type, a->pos[1], a->pos[2]) != 0)
		return CTL_EXIT_FAIL;
	printf("%s/%s = %s\n", bfs_ctx_type_name(type), a->pos[1], a->pos[2]);
	return CTL_EXIT_OK;
}

/* The bucket assigned to (type, id) as a new string, or NULL. */
static int find_assignment(struct ctl_ctx *c, int type, const char *id,
			   char **bucket)
{
	struct bfs_assignment *as = NULL;
	size_t n = 0, i;
	int r;

	*bucket = NULL;
	if ((r = bfs_store_assign_list(c->store, &as, &n)) != 0)
		return ctl_fail("assignments: %s", bfs_strerror(r));
	for (i = 0; i < n; i++) {
		if (as[i].context_type == type && !strcmp(as[i].context_id, id) &&
		    as[i].bucket) {
			if (!(*bucket = strdup(as[i].bucket)))
				r = BFS_ERR_NOMEM;
			break;
		}
	}
	bfs_assignments_free(as, n);
	return r ? ctl_fail("%s", bfs_strerror(r)) : 0;
}

int ctl_cmd_unassign(struct ctl_ctx *c, const struct ctl_args *a)
{
	char *was = NULL;
	int type;

	if (context_args(a->pos[0], a->pos[1], &type) != 0)
		return CTL_EXIT_FAIL;
	if (find_assignment(c, type, a->pos[1], &was) != 0)
		return CTL_EXIT_FAIL;
	if (!was) {
		/* Already in the wanted state: nothing to do. */
		printf("%s/%s was not assigned\n", bfs_ctx_type_name(type), a->pos[1]);
		return CTL_EXIT_OK;
	}
	free(was);
	if (apply_assignment(c, type, a->pos[1], NULL) != 0)
		return CTL_EXIT_FAIL;
	printf("%s/%s =\n", bfs_ctx_type_name(type), a->pos[1]);
	return CTL_EXIT_OK;
}

/* Bucket id of name in the list, or NULL. */
static const char *bucket_id_of(const struct bfs_bucket_conf *bs, size_t n,
				const char *name)
{
	size_t i;

	for (i = 0; name && i < n; i++)
		if (!strcmp(bs[i].name, name))
			return bs[i].id;
	return NULL;
}

int ctl_cmd_assignments(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_assignment *as = NULL;
	struct bfs_bucket_conf *bs = NULL;
	struct bfs_buf o;
	size_t n = 0, nb = 0, i;
	int r, rc = CTL_EXIT_FAIL;

	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	if ((r = bfs_store_assign_list(c->store, &as, &n)) != 0 ||
	    (a->json && (r = bfs_store_bucket_list(c->store, NULL, &bs, &nb)) != 0)) {
		ctl_fail("assignments: %s", bfs_strerror(r));
		goto out;
	}
	if (a->json)
		fputs("[", stdout);
	for (i = 0; i < n; i++) {
		const char *t = bfs_ctx_type_name(as[i].context_type);

		if (!a->json) {
			printf("%s/%s = %s\n", t, as[i].context_id,
			       as[i].bucket ? as[i].bucket : "");
			continue;
		}
		r = bfs_buf_addf(&o, "%s\n {\"context_type\": \"%s\", \"context_id\": ",
				 i ? "," : "", t);
		JADD(ctl_json_str(&o, as[i].context_id));
		JADD(bfs_buf_adds(&o, ", \"bucket\": "));
		JADD(ctl_json_str(&o, as[i].bucket));
		JADD(bfs_buf_adds(&o, ", \"bucket_id\": "));
		JADD(ctl_json_str(&o, bucket_id_of(bs, nb, as[i].bucket)));
		JADD(bfs_buf_adds(&o, "}"));
		if (ctl_emit(&o, r) != 0)
			goto out;
	}
	if (a->json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	rc = CTL_EXIT_OK;
out:
	bfs_buf_free(&o);
	bfs_bucket_conf_array_free(bs, nb);
	bfs_assignments_free(as, n);
	return rc;
}

/* ---- files -------------------------------------------------------------- */

struct files_walk {
	struct ctl_table table;
	struct bfs_buf o;
	const struct bfs_bucket_conf *bs;
	size_t nb;
	int json;
	size_t rows;
	int err;                     /* first output failure */
};

static int files_row_cb(void *arg, const struct bfs_file_row *f)
{
	struct files_walk *w = arg;
	int r = 0;

	if (w->json) {
		r = bfs_buf_adds(&w->o, w->rows ? ",\n {\"bucket\": " : "\n {\"bucket\": ");
		JADD(ctl_json_str(&w->o, f->bucket));
		JADD(bfs_buf_adds(&w->o, ", \"bucket_id\": "));
		JADD(ctl_json_str(&w->o, bucket_id_of(w->bs, w->nb, f->bucket)));
		JADD(bfs_buf_adds(&w->o, ", \"key\": "));
		JADD(ctl_json_str(&w->o, f->key));
		JADD(bfs_buf_addf(&w->o, ", \"size\": %" PRIu64 ", \"etag\": ", f->size));
		JADD(ctl_json_str(&w->o, f->etag));
		JADD(bfs_buf_adds(&w->o, ", \"content_type\": "));
		JADD(ctl_json_str(&w->o, f->content_type));
		JADD(bfs_buf_addf(&w->o, ", \"mode\": %" PRIu32, f->mode));
		/* null: unknown, the mount shows the bucket's owner */
		JADD(f->no_uid ? bfs_buf_adds(&w->o, ", \"uid\": null")
			       : bfs_buf_addf(&w->o, ", \"uid\": %" PRIu32, f->uid));
		JADD(f->no_gid ? bfs_buf_adds(&w->o, ", \"gid\": null")
			       : bfs_buf_addf(&w->o, ", \"gid\": %" PRIu32, f->gid));
		JADD(bfs_buf_addf(&w->o, ", \"mtime\": %" PRId64
				  ", \"created_at\": %" PRId64 ", \"updated_at\": %"
				  PRId64 "}", f->mtime, f->created_at, f->updated_at));
		if (r == 0)
			fwrite(bfs_buf_str(&w->o), 1, w->o.len, stdout);
		bfs_buf_reset(&w->o);
	} else {
		char size[32], mode[16], mtime[40];
		const char *row[6];

		snprintf(size, sizeof(size), "%" PRIu64, f->size);
		snprintf(mode, sizeof(mode), "%07" PRIo32, f->mode);
		ctl_time_str(f->mtime, mtime, sizeof(mtime));
		row[0] = f->bucket;
		row[1] = f->key;
		row[2] = size;
		row[3] = mode;
		row[4] = mtime;
		row[5] = f->content_type && f->content_type[0] ? f->content_type : "-";
		r = ctl_table_add(&w->table, row);
	}
	w->rows++;
	if (r != 0) {
		w->err = r;
		return 1;
	}
	return 0;
}

/* "chat/ID" or "form/ID" -> type and a pointer to ID. */
static int parse_context(struct ctl_ctx *c, const char *s, int *type,
			 const char **id)
{
	const char *slash = strchr(s, '/');
	char t[8];

	if (!slash || (size_t)(slash - s) >= sizeof(t))
		return ctl_usage(c->cmd, "--context: expected chat/ID or form/ID");
	memcpy(t, s, (size_t)(slash - s));
	t[slash - s] = '\0';
	*type = bfs_ctx_type_parse(t);
	*id = slash + 1;
	if (*type < 0 || !bfs_ctx_id_valid(*id))
		return ctl_usage(c->cmd, "--context: expected chat/ID or form/ID "
				 "(ID: [A-Za-z0-9_-]{1,128})");
	return 0;
}

int ctl_cmd_files(struct ctl_ctx *c, const struct ctl_args *a)
{
	const struct ctl_optval *o = a->opt;
	static const char *const head[] = { "BUCKET", "KEY", "SIZE", "MODE",
		"MTIME", "CONTENT_TYPE" };
	struct bfs_bucket_conf *bs = NULL;
	struct files_walk w;
	char *only = NULL, rel[BFS_KEY_MAX + 256], full[2 * BFS_KEY_MAX + 256];
	const char *id = NULL;
	size_t nb = 0, i;
	int type = -1, r, rc = CTL_EXIT_FAIL, filtered;

	memset(&w, 0, sizeof(w));
	ctl_table_init(&w.table, 6);
	bfs_buf_init(&w.o, CTL_JSON_ROW_MAX);
	w.json = a->json;
	if (o[OPT_CONTEXT].set &&
	    (rc = parse_context(c, o[OPT_CONTEXT].arg, &type, &id)) != 0)
		goto out;
	rc = CTL_EXIT_FAIL;
	if ((r = bfs_store_bucket_list(c->store, NULL, &bs, &nb)) != 0) {
		ctl_fail("files: %s", bfs_strerror(r));
		goto out;
	}
	if (o[OPT_BUCKET].set) {
		if (!bucket_id_of(bs, nb, o[OPT_BUCKET].arg)) {
			ctl_fail("no such bucket '%.64s'", o[OPT_BUCKET].arg);
			goto out;
		}
		if (!(only = strdup(o[OPT_BUCKET].arg))) {
			ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
			goto out;
		}
	}
	/* A context's files are in every bucket that served it: files stored
	 * before a re-routing stay where they are (INTERFACE.md "Context
	 * views"), so --context alone lists them all. */
	/* The path inside the bucket the listing is limited to. */
	filtered = o[OPT_PREFIX].set || type >= 0;
	snprintf(rel, sizeof(rel), "%s%s%s%s", type >= 0 ? bfs_ctx_type_name(type) : "",
		 type >= 0 ? "/" : "", type >= 0 ? id : "", type >= 0 ? "/" : "");
	if (o[OPT_PREFIX].set &&
	    strlen(rel) + strlen(o[OPT_PREFIX].arg) >= sizeof(rel)) {
		ctl_fail("--prefix: too long");
		goto out;
	}
	if (o[OPT_PREFIX].set)
		strcat(rel, o[OPT_PREFIX].arg);
	w.bs = bs;
	w.nb = nb;
	if (w.json)
		fputs("[", stdout);
	else
		ctl_table_add(&w.table, head);
	for (i = 0; i < nb && !w.err; i++) {
		if (only && strcmp(bs[i].name, only) != 0)
			continue;
		snprintf(full, sizeof(full), "%s%s", bs[i].prefix ? bs[i].prefix : "",
			 rel);
		r = bfs_store_file_list(c->store, bs[i].name, filtered ? full : NULL,
					files_row_cb, &w);
		if (r != 0) {
			ctl_fail("files: %s", bfs_strerror(r));
			goto out;
		}
	}
	if (w.json)
		fputs(w.rows ? "\n]\n" : "]\n", stdout);
	else if (ctl_table_flush(&w.table) != 0 && !w.err)
		w.err = BFS_ERR_NOMEM;
	if (w.err) {
		ctl_fail("files: output: %s", bfs_strerror(w.err));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	free(only);
	bfs_buf_free(&w.o);
	ctl_table_free(&w.table);
	bfs_bucket_conf_array_free(bs, nb);
	return rc;
}

/* ---- import ------------------------------------------------------------- */

struct import_walk {
	struct ctl_ctx *c;
	const struct bfs_bucket_conf *b;
	uint64_t objects, bytes;
	int tty;
	double last;                 /* time of the last progress line */
	int err;
	char errkey[2 * BFS_KEY_MAX + 2];
};

static int import_cb(void *arg, const char *name, int is_dir,
		     const struct bfs_meta *m)
{
	struct import_walk *w = arg;
	struct bfs_file_row row;
	char key[2 * BFS_KEY_MAX + 2], etag[sizeof(m->etag)], ctype[128];
	const char *prefix = w->b->prefix ? w->b->prefix : "";
	int r;

	/* Folders (markers, common prefixes) are not files of the index. */
	if (is_dir || !m)
		return 0;
	if ((size_t)snprintf(key, sizeof(key), "%s%s", prefix, name) >= sizeof(key) ||
	    bfs_key_check(key, 0) != 0)
		return 0;
	memset(&row, 0, sizeof(row));
	snprintf(etag, sizeof(etag), "%s", m->etag);
	snprintf(ctype, sizeof(ctype), "%s", bfs_content_type(name));
	row.bucket = w->b->name;
	row.key = key;
	row.size = m->size;
	row.etag = etag[0] ? etag : NULL;
	row.content_type = ctype;
	/* Without s3fs metadata: a regular file without permission bits and
	 * no owner, so the mount shows the bucket's file_mode, owner and
	 * group (also after they change). */
	row.mode = m->has_mode && (m->mode & 07777) ? m->mode : S_IFREG;
	row.uid = m->has_uid ? m->uid : 0;
	row.gid = m->has_gid ? m->gid : 0;
	row.no_uid = !m->has_uid;
	row.no_gid = !m->has_gid;
	row.mtime = m->mtime;
	row.created_at = row.updated_at = (int64_t)time(NULL);
	if ((r = bfs_store_file_put(w->c->store, &row)) != 0) {
		w->err = r;
		snprintf(w->errkey, sizeof(w->errkey), "%s", key);
		return 1;
	}
	w->objects++;
	w->bytes += m->size;
	if (w->tty && ctl_now_ms() - w->last >= IMPORT_PROGRESS_MS) {
		fprintf(stderr, "\rimported %" PRIu64 " objects", w->objects);
		w->last = ctl_now_ms();
	}
	return 0;
}

int ctl_cmd_import(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_bucket_conf b;
	struct bfs_provider *p = NULL;
	struct import_walk w;
	char err[CTL_ERR_LEN] = "";
	int r, rc = CTL_EXIT_FAIL;

	if (ctl_bucket_get(c, a->pos[0], 1, &b) != 0)
		return CTL_EXIT_FAIL;
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.b = &b;
	w.tty = isatty(2);
	if ((r = bfs_provider_open(&b, &p, err, sizeof(err))) != 0) {
		ctl_fail("bucket '%s': %s", b.name, err[0] ? err : bfs_strerror(r));
		goto out;
	}
	r = p->ops->list(p->st, b.prefix ? b.prefix : "", BFS_LIST_RECURSIVE,
			 import_cb, &w);
	if (w.tty && w.objects)
		fprintf(stderr, "\rimported %" PRIu64 " objects\n", w.objects);
	if (w.err) {
		ctl_fail("import '%s': index row for %s: %s (%" PRIu64 " objects "
			 "imported before)", b.name, w.errkey, bfs_strerror(w.err),
			 w.objects);
		goto out;
	}
	if (r != 0) {
		ctl_fail("import '%s': listing the bucket: %s (%" PRIu64 " objects "
			 "imported before)", b.name, bfs_strerror(r), w.objects);
		goto out;
	}
	printf("imported %" PRIu64 " objects (%" PRIu64 " bytes) into the index "
	       "of bucket %s\n", w.objects, w.bytes, b.name);
	rc = CTL_EXIT_OK;
out:
	bfs_provider_close(p);
	bfs_bucket_conf_clear(&b);
	return rc;
}

/* ---- presign ------------------------------------------------------------ */

int ctl_cmd_presign(struct ctl_ctx *c, const struct ctl_args *a)
{
	const char *arg = a->pos[0], *slash = strchr(arg, '/');
	struct bfs_bucket_conf b;
	struct bfs_provider *p = NULL;
	char name[BFS_BUCKET_NAME_MAX + 2], err[CTL_ERR_LEN] = "";
	char *key = NULL, *url = NULL, *end;
	long expires = PRESIGN_DEFAULT;
	int r, rc = CTL_EXIT_FAIL;

	if (!slash || slash == arg || !slash[1] ||
	    (size_t)(slash - arg) > BFS_BUCKET_NAME_MAX)
		return ctl_usage(c->cmd, "presign: expected NAME/KEY");
	if (a->opt[OPT_EXPIRES].set) {
		errno = 0;
		expires = strtol(a->opt[OPT_EXPIRES].arg, &end, 10);
		if (errno || end == a->opt[OPT_EXPIRES].arg || *end ||
		    expires < 1 || expires > PRESIGN_MAX)
			return ctl_usage(c->cmd, "--expires: expected seconds from 1 "
					 "to %d", PRESIGN_MAX);
	}
	memcpy(name, arg, (size_t)(slash - arg));
	name[slash - arg] = '\0';
	if (ctl_bucket_get(c, name, 0, &b) != 0)
		return CTL_EXIT_FAIL;
	if (b.provider == BFS_PROV_LOCAL) {
		ctl_fail("presign is not supported by the local provider");
		goto out;
	}
	bfs_bucket_conf_clear(&b);
	if (ctl_bucket_get(c, name, 1, &b) != 0)
		goto out;
	if ((r = bfs_key_from_path(b.prefix ? b.prefix : "", slash + 1, 0, &key)) != 0) {
		ctl_fail("presign: invalid key '%.200s': %s", slash + 1,
			 bfs_strerror(r));
		goto out;
	}
	if ((r = bfs_provider_open(&b, &p, err, sizeof(err))) != 0) {
		ctl_fail("bucket '%s': %s", b.name, err[0] ? err : bfs_strerror(r));
		goto out;
	}
	if (!p->ops->presign) {
		ctl_fail("presign is not supported by the %s provider", p->ops->name);
		goto out;
	}
	if ((r = p->ops->presign(p->st, key, expires, &url)) != 0) {
		ctl_fail("presign '%s': %s", arg, bfs_strerror(r));
		goto out;
	}
	printf("%s\n", url);
	rc = CTL_EXIT_OK;
out:
	free(url);
	free(key);
	bfs_provider_close(p);
	bfs_bucket_conf_clear(&b);
	return rc;
}

/* ---- stats -------------------------------------------------------------- */

enum { CTX_CHAT, CTX_FORM, CTX_GENERAL, CTX_N };

struct stats_walk {
	const char *prefix;          /* the bucket's prefix */
	uint64_t files[CTX_N], bytes[CTX_N];
};

/* The context class of a path inside a bucket: "chat/ID/..." etc. */
static int context_class(const char *rel)
{
	static const char *const pfx[] = { "chat/", "form/" };
	char id[BFS_CTX_ID_MAX + 1];
	const char *s, *e;
	int i;

	for (i = 0; i < 2; i++) {
		if (strncmp(rel, pfx[i], 5) != 0)
			continue;
		s = rel + 5;
		e = strchr(s, '/');
		if (!e || e == s || (size_t)(e - s) > BFS_CTX_ID_MAX)
			return CTX_GENERAL;
		memcpy(id, s, (size_t)(e - s));
		id[e - s] = '\0';
		return bfs_ctx_id_valid(id) ? i : CTX_GENERAL;
	}
	return CTX_GENERAL;
}

static int stats_row_cb(void *arg, const struct bfs_file_row *f)
{
	struct stats_walk *w = arg;
	size_t plen = strlen(w->prefix);
	const char *rel = f->key;
	int k;

	if (plen && !strncmp(rel, w->prefix, plen))
		rel += plen;
	k = context_class(rel);
	w->files[k]++;
	w->bytes[k] += f->size;
	return 0;
}

int ctl_cmd_stats(struct ctl_ctx *c, const struct ctl_args *a)
{
	static const char *const head[] = { "BUCKET", "FILES", "BYTES", "CHAT",
		"FORM", "GENERAL" };
	static const char *const ctx_names[CTX_N] = { "chat", "form", "general" };
	struct bfs_bucket_conf *bs = NULL;
	struct bfs_bucket_stats *st = NULL;
	struct ctl_table t;
	struct bfs_buf o;
	size_t nb = 0, nst = 0, i, shown = 0;
	int r, k, rc = CTL_EXIT_FAIL;

	ctl_table_init(&t, 6);
	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	if ((r = bfs_store_bucket_list(c->store, NULL, &bs, &nb)) != 0) {
		ctl_fail("stats: %s", bfs_strerror(r));
		goto out;
	}
	if (a->npos && !bucket_id_of(bs, nb, a->pos[0])) {
		ctl_fail("no such bucket '%.64s'", a->pos[0]);
		goto out;
	}
	if ((r = bfs_store_stats(c->store, a->npos ? a->pos[0] : NULL, &st, &nst)) != 0) {
		ctl_fail("stats: %s", bfs_strerror(r));
		goto out;
	}
	if (a->json)
		fputs("[", stdout);
	else
		ctl_table_add(&t, head);
	for (i = 0; i < nb; i++) {
		struct stats_walk w;
		uint64_t files = 0, bytes = 0;
		size_t j;

		if (a->npos && strcmp(bs[i].name, a->pos[0]) != 0)
			continue;
		memset(&w, 0, sizeof(w));
		w.prefix = bs[i].prefix ? bs[i].prefix : "";
		for (j = 0; j < nst; j++)
			if (st[j].bucket && !strcmp(st[j].bucket, bs[i].name)) {
				files = st[j].files;
				bytes = st[j].bytes;
			}
		if ((r = bfs_store_file_list(c->store, bs[i].name, NULL,
					     stats_row_cb, &w)) != 0) {
			ctl_fail("stats: %s", bfs_strerror(r));
			goto out;
		}
		if (a->json) {
			r = bfs_buf_addf(&o, "%s\n {\"bucket\": ", shown ? "," : "");
			JADD(ctl_json_str(&o, bs[i].name));
			JADD(bfs_buf_adds(&o, ", \"bucket_id\": "));
			JADD(ctl_json_str(&o, bs[i].id));
			JADD(bfs_buf_addf(&o, ", \"files\": %" PRIu64 ", \"bytes\": %"
					  PRIu64 ", \"by_context\": {", files, bytes));
			for (k = 0; k < CTX_N; k++)
				JADD(bfs_buf_addf(&o, "%s\"%s\": {\"files\": %" PRIu64
						  ", \"bytes\": %" PRIu64 "}",
						  k ? ", " : "", ctx_names[k],
						  w.files[k], w.bytes[k]));
			JADD(bfs_buf_adds(&o, "}}"));
			if (ctl_emit(&o, r) != 0)
				goto out;
		} else {
			char cell[5][32];
			const char *row[6];

			snprintf(cell[0], sizeof(cell[0]), "%" PRIu64, files);
			snprintf(cell[1], sizeof(cell[1]), "%" PRIu64, bytes);
			for (k = 0; k < CTX_N; k++)
				snprintf(cell[2 + k], sizeof(cell[2 + k]), "%" PRIu64,
					 w.files[k]);
			row[0] = bs[i].name;
			for (k = 0; k < 5; k++)
				row[1 + k] = cell[k];
			if (ctl_table_add(&t, row) != 0) {
				ctl_fail("stats: %s", bfs_strerror(BFS_ERR_NOMEM));
				goto out;
			}
		}
		shown++;
	}
	if (a->json)
		fputs(shown ? "\n]\n" : "]\n", stdout);
	else if (ctl_table_flush(&t) != 0) {
		ctl_fail("stats: %s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	bfs_buf_free(&o);
	ctl_table_free(&t);
	bfs_bucket_stats_free(st, nst);
	bfs_bucket_conf_array_free(bs, nb);
	return rc;
}

/* ---- pending ------------------------------------------------------------ */

/* Copies s into out with control characters as spaces (one table cell). */
static void one_line(const char *s, char *out, size_t len)
{
	size_t i;

	snprintf(out, len, "%s", s);
	for (i = 0; out[i]; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
}

/*
 * The upload journal, oldest first: what was acknowledged to a writer but
 * is not yet stored by its provider.  A running daemon retries these; one
 * that crashed finishes them at its next start.  AGE counts from when the
 * file first had unstored data (created_at), not from the last attempt.
 */
int ctl_cmd_pending(struct ctl_ctx *c, const struct ctl_args *a)
{
	static const char *const head[] = { "BUCKET", "KEY", "SIZE", "AGE",
		"ATTEMPTS", "LAST_ERROR" };
	struct bfs_journal_entry *e = NULL;
	struct ctl_table t;
	struct bfs_buf o;
	size_t n = 0, i;
	time_t now = time(NULL);
	int r, rc = CTL_EXIT_FAIL;

	ctl_table_init(&t, 6);
	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	r = bfs_store_journal_list(c->store, &e, &n);
	if (r != 0) {
		ctl_fail("pending: %s", bfs_strerror(r));
		goto out;
	}
	if (a->json)
		fputs("[", stdout);
	else if (n == 0)
		printf("no pending uploads\n");
	else
		ctl_table_add(&t, head);
	for (i = 0; i < n; i++) {
		int64_t age = (int64_t)now - e[i].created_at;

		if (age < 0)
			age = 0;
		if (a->json) {
			r = bfs_buf_addf(&o, "%s\n {\"id\": %" PRId64 ", \"bucket\": ",
					 i ? "," : "", e[i].id);
			JADD(ctl_json_str(&o, e[i].bucket));
			JADD(bfs_buf_adds(&o, ", \"key\": "));
			JADD(ctl_json_str(&o, e[i].key));
			JADD(bfs_buf_adds(&o, ", \"staging_path\": "));
			JADD(ctl_json_str(&o, e[i].staging_path));
			JADD(bfs_buf_adds(&o, ", \"base_etag\": "));
			JADD(ctl_json_str(&o, e[i].base_etag));
			JADD(bfs_buf_addf(&o, ", \"size\": %" PRIu64 ", \"mode\": %"
					  PRIu32 ", \"uid\": %" PRIu32 ", \"gid\": %"
					  PRIu32 ", \"mtime\": %" PRId64
					  ", \"created_at\": %" PRId64
					  ", \"updated_at\": %" PRId64
					  ", \"age_seconds\": %" PRId64
					  ", \"attempts\": %d, \"last_error\": ",
					  e[i].size, e[i].mode, e[i].uid, e[i].gid,
					  e[i].mtime, e[i].created_at,
					  e[i].updated_at, age, e[i].attempts));
			JADD(ctl_json_str(&o, e[i].last_error));
			JADD(bfs_buf_adds(&o, "}"));
			if (ctl_emit(&o, r) != 0)
				goto out;
		} else {
			char size[32], agebuf[32], att[16], err[CTL_ERR_LEN];
			const char *row[6];

			snprintf(size, sizeof(size), "%" PRIu64, e[i].size);
			bfs_journal_age_str(age, agebuf, sizeof(agebuf));
			snprintf(att, sizeof(att), "%d", e[i].attempts);
			one_line(e[i].last_error && e[i].last_error[0] ?
				 e[i].last_error : "-", err, sizeof(err));
			row[0] = e[i].bucket;
			row[1] = e[i].key;
			row[2] = size;
			row[3] = agebuf;
			row[4] = att;
			row[5] = err;
			if (ctl_table_add(&t, row) != 0) {
				ctl_fail("pending: %s", bfs_strerror(BFS_ERR_NOMEM));
				goto out;
			}
		}
	}
	if (a->json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	else if (ctl_table_flush(&t) != 0) {
		ctl_fail("pending: %s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	bfs_buf_free(&o);
	ctl_table_free(&t);
	bfs_journal_entries_free(e, n);
	return rc;
}

/*
 * migrate-db URI: the config's SQLite catalog (opened and synced by the
 * context) is copied into the empty PostgreSQL database URI (password
 * from the config's database_password keys), then how to switch is
 * printed.  The config itself is not changed.
 */
int ctl_cmd_migrate_db(struct ctl_ctx *c, const struct ctl_args *a)
{
	struct bfs_config target;
	struct bfs_store *dst = NULL;
	char err[CTL_ERR_LEN] = "";
	int64_t n[4] = { 0, 0, 0, 0 };
	const char *uri = a->pos[0];
	int r, rc = CTL_EXIT_FAIL;

	if (bfs_pg_is_uri(c->cfg->database)) {
		rc = ctl_fail("migrate-db: the config's database is already "
			      "PostgreSQL");
		goto out;
	}
	if (bfs_pg_uri_check(uri, err, sizeof(err)) != 0) {
		rc = ctl_fail("migrate-db: %s", err);
		goto out;
	}
	target = *c->cfg;
	target.database = (char *)uri;
	r = bfs_store_open_config(&target, &dst, err, sizeof(err));
	if (r != 0) {
		rc = ctl_fail("migrate-db: %s", err[0] ? err : bfs_strerror(r));
		goto out;
	}
	r = bfs_store_migrate_db(c->store, dst, n, err, sizeof(err));
	if (r != 0) {
		rc = ctl_fail("migrate-db: %s", err[0] ? err : bfs_strerror(r));
		goto out;
	}
	printf("copied %lld bucket(s), %lld file row(s), %lld assignment(s) "
	       "and %lld setting(s) to %s (counts verified)\n",
	       (long long)n[0], (long long)n[2], (long long)n[3],
	       (long long)n[1], uri);
	printf("to switch, stop the daemon and set in %s:\n"
	       "  database = %s\n%s"
	       "every host then uses this database and the same master key\n",
	       c->cfg->file, uri, c->cfg->database_password ? "" :
	       "  database_password_file = PATH (or database_password = "
	       "env:VAR)\n");
	rc = CTL_EXIT_OK;
out:
	bfs_store_close(dst);
	return rc;
}
