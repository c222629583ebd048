/*
 * cmd_context.c - `bucketctl contexts` and `bucketctl context move`.
 *
 * A context (chat/ID, form/ID) is routed to one bucket by the rule the
 * daemon uses (bfs_view_pick: assignment, else the role's default, else
 * the general default), but its files may live in several buckets: files
 * stored before a re-routing stay where they were, and the mount finds
 * them through the index (INTERFACE.md "Context views").
 *
 * `contexts` lists every context with an assignment or indexed files: its
 * routed bucket and files and bytes per bucket (one index query).
 *
 * `context move` brings a context's files from other buckets into its
 * routed bucket, one file at a time: a server-side copy where both
 * buckets are one S3 service and account, else stream the object into a
 * temp file (MD5 and SHA-256 computed on the way) and store it under the
 * same path in the routed bucket with the same metadata; verify (HEAD
 * size; the etag against the MD5 when it is a plain MD5, else the objects
 * read back and their SHA-256 compared), write a durable "move:" note
 * naming the old object, move the index row; once every file is copied,
 * wait MOVE_GRACE_S, then delete each old object and drop its note.  An
 * interrupted run leaves at worst a copy not yet indexed (copied again)
 * or a note (the old object is deleted by the next run): running it
 * again ends with every file moved once, nothing lost, nothing doubled.
 * The mount keeps serving meanwhile: until the row moves it reads the
 * old object, afterwards the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bfs_buf.h"
#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_provider.h"
#include "bfs_store.h"
#include "bfs_view.h"
#include "ctl.h"

#define MOVE_NOTE_PREFIX "move:"
#define CTX_MAX (1u * 1000 * 1000)     /* contexts or files in one run */
/* Between moving the index rows and deleting the old objects: a mount
 * that looked a file up just before its row moved (the kernel keeps a
 * lookup 1 s) still reads the old object meanwhile. */
#define MOVE_GRACE_S 2

/* ---- routing data (the daemon's rule over the store's rows) ---- */

struct ctx_routing {
	struct bfs_bucket_conf *bs;
	size_t nb;
	struct bfs_assignment *as;
	size_t nas;
	struct bfs_view_assign *vas;
	struct bfs_view_rules rules;
};

static void routing_free(struct ctx_routing *rt)
{
	bfs_bucket_conf_array_free(rt->bs, rt->nb);
	bfs_assignments_free(rt->as, rt->nas);
	free(rt->vas);
	memset(rt, 0, sizeof(*rt));
}

static int vas_cmp(const void *a, const void *b)
{
	const struct bfs_view_assign *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Loads buckets, defaults and assignments.  0 or CTL_EXIT_FAIL. */
static int routing_load(struct ctl_ctx *c, struct ctx_routing *rt)
{
	size_t i;
	int r, role;

	memset(rt, 0, sizeof(*rt));
	if ((r = bfs_store_bucket_list(c->store, NULL, &rt->bs, &rt->nb)) != 0 ||
	    (r = bfs_store_assign_list(c->store, &rt->as, &rt->nas)) != 0)
		return ctl_fail("contexts: %s", bfs_strerror(r));
	if (rt->nas && !(rt->vas = calloc(rt->nas, sizeof(*rt->vas))))
		return ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
	for (i = 0; i < rt->nb; i++)
		for (role = 0; role < BFS_ROLE_COUNT; role++)
			if (rt->bs[i].defaults & BFS_ROLE_BIT(role))
				rt->rules.def[role] = rt->bs[i].name;
	for (i = 0; i < rt->nas; i++) {
		rt->vas[i].type = rt->as[i].context_type;
		rt->vas[i].id = rt->as[i].context_id ? rt->as[i].context_id : "";
		rt->vas[i].bucket = rt->as[i].bucket;
	}
	if (rt->nas)
		qsort(rt->vas, rt->nas, sizeof(*rt->vas), vas_cmp);
	rt->rules.as = rt->vas;
	rt->rules.nas = rt->nas;
	return 0;
}

static const struct bfs_bucket_conf *bucket_of(const struct ctx_routing *rt,
					       const char *name)
{
	size_t i;

	for (i = 0; name && i < rt->nb; i++)
		if (!strcmp(rt->bs[i].name, name))
			return &rt->bs[i];
	return NULL;
}

/* "chat/ID" or "form/ID" -> type (0 / 1) and id; -1 when not one. */
static int ctx_split(const char *ctx, const char **id)
{
	int type;

	if (!strncmp(ctx, "chat/", 5))
		type = 0;
	else if (!strncmp(ctx, "form/", 5))
		type = 1;
	else
		return -1;
	*id = ctx + 5;
	return bfs_ctx_id_valid(*id) ? type : -1;
}

static const char *routed_bucket(const struct ctx_routing *rt, int type,
				 const char *id)
{
	return bfs_view_pick(&rt->rules, type == 0 ? BFS_VIEW_CHAT : BFS_VIEW_FORM,
			     id, NULL);
}

/* ---- contexts ---- */

struct ctx_stat {
	char *ctx;                   /* "chat/ID" */
	char *bucket;                /* NULL: an assignment without files */
	uint64_t files, bytes;
};

struct ctx_stats {
	struct ctx_stat *v;
	size_t n, cap;
	int err;
};

static int stats_push(struct ctx_stats *s, const char *ctx, const char *bucket,
		      uint64_t files, uint64_t bytes)
{
	struct ctx_stat *nv;

	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;

		if (nc > CTX_MAX || !(nv = realloc(s->v, nc * sizeof(*nv)))) {
			s->err = nc > CTX_MAX ? BFS_ERR_TOOBIG : BFS_ERR_NOMEM;
			return 1;
		}
		s->v = nv;
		s->cap = nc;
	}
	memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
	if (!(s->v[s->n].ctx = strdup(ctx)) ||
	    (bucket && !(s->v[s->n].bucket = strdup(bucket)))) {
		free(s->v[s->n].ctx);
		s->err = BFS_ERR_NOMEM;
		return 1;
	}
	s->v[s->n].files = files;
	s->v[s->n].bytes = bytes;
	s->n++;
	return 0;
}

static int stats_cb(void *arg, const struct bfs_ctx_row *row)
{
	const char *id;

	if (ctx_split(row->rel, &id) < 0)
		return 0;
	return stats_push(arg, row->rel, row->bucket, row->files, row->size);
}

static int stat_cmp(const void *a, const void *b)
{
	const struct ctx_stat *x = a, *y = b;
	int c = strcmp(x->ctx, y->ctx);

	if (c)
		return c;
	if (!x->bucket || !y->bucket)
		return !x->bucket - !y->bucket;
	return strcmp(x->bucket, y->bucket);
}

static void stats_free(struct ctx_stats *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].ctx);
		free(s->v[i].bucket);
	}
	free(s->v);
}

int ctl_cmd_contexts(struct ctl_ctx *c, const struct ctl_args *a)
{
	static const char *const head[] = { "CONTEXT", "BUCKET", "FILES", "BYTES",
		"BY_BUCKET" };
	struct ctx_routing rt;
	struct ctx_stats st;
	struct ctl_table t;
	struct bfs_buf o, cell;
	char ctxname[BFS_CTX_ID_MAX + 8];
	size_t i, j, k, shown = 0;
	int r, rc = CTL_EXIT_FAIL;

	memset(&st, 0, sizeof(st));
	ctl_table_init(&t, 5);
	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	bfs_buf_init(&cell, CTL_JSON_ROW_MAX);
	if (routing_load(c, &rt) != 0)
		goto out;
	if ((r = bfs_store_ctx_stats(c->store, stats_cb, &st)) != 0 ||
	    (r = st.err) != 0) {
		ctl_fail("contexts: %s", bfs_strerror(r));
		goto out;
	}
	for (i = 0; i < rt.nas; i++) {
		snprintf(ctxname, sizeof(ctxname), "%s/%s",
			 bfs_ctx_type_name(rt.as[i].context_type),
			 rt.as[i].context_id ? rt.as[i].context_id : "");
		if (stats_push(&st, ctxname, NULL, 0, 0) != 0) {
			ctl_fail("contexts: %s", bfs_strerror(st.err));
			goto out;
		}
	}
	if (st.n)
		qsort(st.v, st.n, sizeof(*st.v), stat_cmp);
	if (a->json)
		fputs("[", stdout);
	else
		ctl_table_add(&t, head);
	for (i = 0; i < st.n; i = j) {
		const char *id, *routed;
		uint64_t files = 0, bytes = 0;
		size_t nbk = 0;
		int type = ctx_split(st.v[i].ctx, &id);

		for (j = i; j < st.n && !strcmp(st.v[j].ctx, st.v[i].ctx); j++) {
			files += st.v[j].files;
			bytes += st.v[j].bytes;
		}
		routed = type >= 0 ? routed_bucket(&rt, type, id) : NULL;
		r = 0;
		bfs_buf_reset(&cell);
		if (a->json) {
			r = bfs_buf_addf(&o, "%s\n {\"context\": ", shown ? "," : "");
			JADD(ctl_json_str(&o, st.v[i].ctx));
			JADD(bfs_buf_adds(&o, ", \"type\": "));
			JADD(ctl_json_str(&o, bfs_ctx_type_name(type)));
			JADD(bfs_buf_adds(&o, ", \"id\": "));
			JADD(ctl_json_str(&o, id));
			JADD(bfs_buf_adds(&o, ", \"bucket\": "));
			JADD(ctl_json_str(&o, routed));
			JADD(bfs_buf_addf(&o, ", \"files\": %" PRIu64 ", \"bytes\": %"
					  PRIu64 ", \"by_bucket\": [", files, bytes));
		}
		for (k = i; k < j; k++) {
			const struct bfs_bucket_conf *b = bucket_of(&rt, st.v[k].bucket);

			if (!st.v[k].bucket)
				continue;
			if (a->json) {
				JADD(bfs_buf_adds(&o, nbk ? ", " : ""));
				JADD(bfs_buf_adds(&o, "{\"bucket\": "));
				JADD(ctl_json_str(&o, st.v[k].bucket));
				JADD(bfs_buf_adds(&o, ", \"bucket_id\": "));
				JADD(ctl_json_str(&o, b ? b->id : NULL));
				JADD(bfs_buf_addf(&o, ", \"routed\": %s, \"files\": %"
						  PRIu64 ", \"bytes\": %" PRIu64 "}",
						  routed && !strcmp(routed, st.v[k].bucket) ?
						  "true" : "false", st.v[k].files,
						  st.v[k].bytes));
			} else {
				JADD(bfs_buf_addf(&cell, "%s%s=%" PRIu64 "/%" PRIu64,
						  nbk ? "," : "", st.v[k].bucket,
						  st.v[k].files, st.v[k].bytes));
			}
			nbk++;
		}
		if (a->json) {
			JADD(bfs_buf_adds(&o, "]}"));
			if (ctl_emit(&o, r) != 0)
				goto out;
		} else {
			char nf[32], nb[32];
			const char *row[5];

			if (r != 0) {
				ctl_fail("contexts: %s", bfs_strerror(BFS_ERR_NOMEM));
				goto out;
			}
			snprintf(nf, sizeof(nf), "%" PRIu64, files);
			snprintf(nb, sizeof(nb), "%" PRIu64, bytes);
			row[0] = st.v[i].ctx;
			row[1] = routed ? routed : "-";
			row[2] = nf;
			row[3] = nb;
			row[4] = nbk ? bfs_buf_str(&cell) : "-";
			ctl_table_add(&t, row);
		}
		shown++;
	}
	if (a->json)
		fputs(shown ? "\n]\n" : "]\n", stdout);
	else if (ctl_table_flush(&t) != 0) {
		ctl_fail("contexts: output: %s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	stats_free(&st);
	bfs_buf_free(&o);
	bfs_buf_free(&cell);
	ctl_table_free(&t);
	routing_free(&rt);
	return rc;
}

/* ---- context move ---- */

struct mv_file {
	char *bucket;                /* the bucket holding it now */
	char *key;                   /* its full key there */
	char *rel;                   /* path inside the bucket */
	uint64_t size;
};

struct mv_files {
	struct mv_file *v;
	size_t n, cap;
	const char *prefix;          /* the listed bucket's prefix */
	int err;
};

static int mv_file_cb(void *arg, const struct bfs_file_row *row)
{
	struct mv_files *l = arg;
	struct mv_file *nv, *f;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;

		if (nc > CTX_MAX || !(nv = realloc(l->v, nc * sizeof(*nv)))) {
			l->err = nc > CTX_MAX ? BFS_ERR_TOOBIG : BFS_ERR_NOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = nc;
	}
	f = &l->v[l->n];
	memset(f, 0, sizeof(*f));
	if (!(f->bucket = strdup(row->bucket)) || !(f->key = strdup(row->key)) ||
	    !(f->rel = strdup(row->key + strlen(l->prefix)))) {
		free(f->bucket);
		free(f->key);
		l->err = BFS_ERR_NOMEM;
		return 1;
	}
	f->size = row->size;
	l->n++;
	return 0;
}

static void mv_files_free(struct mv_files *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].bucket);
		free(l->v[i].key);
		free(l->v[i].rel);
	}
	free(l->v);
}

/* Opened providers of the buckets a move touches, by name. */
struct mv_provs {
	char *name[64];
	struct bfs_provider *p[64];
	size_t n;
};

static struct bfs_provider *prov_get(struct ctl_ctx *c, struct mv_provs *ps,
				     const char *name)
{
	struct bfs_bucket_conf b;
	char err[CTL_ERR_LEN] = "";
	struct bfs_provider *p = NULL;
	size_t i;
	int r;

	for (i = 0; i < ps->n; i++)
		if (!strcmp(ps->name[i], name))
			return ps->p[i];
	if (ps->n == sizeof(ps->p) / sizeof(ps->p[0])) {
		ctl_fail("context move: too many buckets");
		return NULL;
	}
	if (ctl_bucket_get(c, name, 1, &b) != 0)
		return NULL;
	r = bfs_provider_open(&b, &p, err, sizeof(err));
	bfs_bucket_conf_clear(&b);
	if (r != 0) {
		ctl_fail("bucket '%s': %s", name, err[0] ? err : bfs_strerror(r));
		return NULL;
	}
	if (!(ps->name[ps->n] = strdup(name))) {
		bfs_provider_close(p);
		ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
		return NULL;
	}
	ps->p[ps->n++] = p;
	return p;
}

static void provs_free(struct mv_provs *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		bfs_provider_close(ps->p[i]);
		free(ps->name[i]);
	}
}

/* An unnamed temp file ($TMPDIR or /tmp), or a negative BFS_ERR_*:
 * O_TMPFILE never has a name a kill could leave behind; where the file
 * system lacks it, a named one unlinked at once. */
static int temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !dir[0])
		dir = "/tmp";
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/bucketctl-move-XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return bfs_err_from_errno(errno);
	unlink(path);
	return fd;
}

/* MD5 and SHA-256 (hex) of the whole file fd, and its size. */
static int digest_fd(int fd, char md5[33], char sha[65], uint64_t *size)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new(), *h = EVP_MD_CTX_new();
	unsigned char buf[65536], d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	off_t off = 0;
	ssize_t got;
	int r = BFS_ERR_NOMEM;

	*size = 0;
	if (!m || !h || !EVP_DigestInit_ex(m, EVP_md5(), NULL) ||
	    !EVP_DigestInit_ex(h, EVP_sha256(), NULL))
		goto out;
	while ((got = pread(fd, buf, sizeof(buf), off)) > 0) {
		EVP_DigestUpdate(m, buf, (size_t)got);
		EVP_DigestUpdate(h, buf, (size_t)got);
		off += got;
	}
	if (got < 0) {
		r = bfs_err_from_errno(errno);
		goto out;
	}
	EVP_DigestFinal_ex(m, d, &dl);
	bfs_hex_encode(d, dl, md5);
	EVP_DigestFinal_ex(h, d, &dl);
	bfs_hex_encode(d, dl, sha);
	*size = (uint64_t)off;
	r = 0;
out:
	EVP_MD_CTX_free(m);
	EVP_MD_CTX_free(h);
	return r;
}

static int is_md5_etag(const char *etag)
{
	size_t i;

	for (i = 0; etag[i]; i++)
		if (bfs_hex_value((unsigned char)etag[i]) < 0)
			return 0;
	return i == 32;
}

/*
 * Stores the object skey of sp under dkey of dp and proves the copy:
 * size from a HEAD; bytes by the etag when it is the content's MD5, else
 * by reading it back and comparing SHA-256.  *etag gets the new etag.
 * BFS_ERR_NOTFOUND when the source is gone.
 */
static int copy_verified(struct bfs_provider *sp, const char *skey,
			 struct bfs_provider *dp, const char *dkey,
			 char *etag, size_t elen, uint64_t *size)
{
	char md5[33], sha[65], md5b[33], shab[65];
	struct bfs_meta m, dm;
	uint64_t sz, szb;
	int fd = -1, fd2 = -1, r;

	etag[0] = '\0';
	if ((fd = temp_file()) < 0)
		return fd;
	memset(&m, 0, sizeof(m));
	if ((r = sp->ops->get_fd(sp->st, skey, fd, &m)) != 0)
		goto out;
	if ((r = digest_fd(fd, md5, sha, &sz)) != 0)
		goto out;
	m.size = sz;
	if ((r = dp->ops->put_fd(dp->st, dkey, fd, sz, &m, etag, elen)) != 0)
		goto out;
	memset(&dm, 0, sizeof(dm));
	if ((r = dp->ops->head(dp->st, dkey, &dm)) != 0)
		goto out;
	r = BFS_ERR_IO;
	if (dm.size != sz) {
		ctl_fail("context move: %s: stored %" PRIu64 " bytes, expected %"
			 PRIu64, dkey, dm.size, sz);
		goto out;
	}
	if (!etag[0])
		snprintf(etag, elen, "%s", dm.etag);
	if (!is_md5_etag(etag) || strcmp(etag, md5) != 0) {
		/* multipart etag (or none): read it back */
		if ((fd2 = temp_file()) < 0) {
			r = fd2;
			goto out;
		}
		memset(&dm, 0, sizeof(dm));
		if ((r = dp->ops->get_fd(dp->st, dkey, fd2, &dm)) != 0 ||
		    (r = digest_fd(fd2, md5b, shab, &szb)) != 0)
			goto out;
		r = BFS_ERR_IO;
		if (szb != sz || strcmp(shab, sha) != 0) {
			ctl_fail("context move: %s: the stored copy differs "
				 "(sha256 %s, expected %s)", dkey, shab, sha);
			goto out;
		}
	}
	*size = sz;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	return r;
}

/* SHA-256 and size of the object key of p, streamed through a temp file. */
static int object_sha(struct bfs_provider *p, const char *key, char sha[65],
		      uint64_t *size)
{
	char md5[33];
	struct bfs_meta m;
	int fd, r;

	if ((fd = temp_file()) < 0)
		return fd;
	memset(&m, 0, sizeof(m));
	r = p->ops->get_fd(p->st, key, fd, &m);
	if (r == 0)
		r = digest_fd(fd, md5, sha, size);
	close(fd);
	return r;
}

/*
 * A server-side copy of skey (sp) to dkey (dp) when both buckets are one
 * service and account, proven like a streamed one: equal sizes, and equal
 * MD5 etags or else both objects read and their SHA-256 compared.
 * BFS_ERR_NOTSUP when the buckets cannot copy server-side.
 */
static int copy_server(struct bfs_provider *sp, const char *skey,
		       struct bfs_provider *dp, const char *dkey,
		       char *etag, size_t elen, uint64_t *size)
{
	char sa[65], sb[65];
	struct bfs_meta sm, dm;
	uint64_t za, zb;
	int r;

	if (sp->ops != dp->ops || !dp->ops->copy_from)
		return BFS_ERR_NOTSUP;
	memset(&sm, 0, sizeof(sm));
	if ((r = sp->ops->head(sp->st, skey, &sm)) != 0)
		return r;
	if ((r = dp->ops->copy_from(dp->st, sp->st, skey, dkey)) != 0)
		return r;
	memset(&dm, 0, sizeof(dm));
	if ((r = dp->ops->head(dp->st, dkey, &dm)) != 0)
		return r;
	if (dm.size != sm.size) {
		ctl_fail("context move: %s: copied %" PRIu64 " bytes, expected %"
			 PRIu64, dkey, dm.size, sm.size);
		return BFS_ERR_IO;
	}
	if (!is_md5_etag(sm.etag) || strcmp(sm.etag, dm.etag) != 0) {
		if ((r = object_sha(sp, skey, sa, &za)) != 0 ||
		    (r = object_sha(dp, dkey, sb, &zb)) != 0)
			return r;
		if (za != zb || strcmp(sa, sb) != 0) {
			ctl_fail("context move: %s: the copy differs (sha256 %s, "
				 "expected %s)", dkey, sb, sa);
			return BFS_ERR_IO;
		}
	}
	snprintf(etag, elen, "%s", dm.etag);
	*size = dm.size;
	return 0;
}

/* A note's key ("move:DST\nDKEY") and value ("SRC\nSKEY"). */
static char *note_key(const char *dst, const char *dkey)
{
	size_t l = strlen(MOVE_NOTE_PREFIX) + strlen(dst) + 1 + strlen(dkey) + 1;
	char *k = malloc(l);

	if (k)
		snprintf(k, l, "%s%s\n%s", MOVE_NOTE_PREFIX, dst, dkey);
	return k;
}

struct notes {
	char **key, **val;
	size_t n, cap;
	int err;
};

static int notes_cb(void *arg, const char *key, const char *value)
{
	struct notes *ns = arg;

	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 16;
		char **nk = realloc(ns->key, nc * sizeof(*nk)), **nv;

		if (!nk) {
			ns->err = BFS_ERR_NOMEM;
			return 1;
		}
		ns->key = nk;
		if (!(nv = realloc(ns->val, nc * sizeof(*nv)))) {
			ns->err = BFS_ERR_NOMEM;
			return 1;
		}
		ns->val = nv;
		ns->cap = nc;
	}
	ns->key[ns->n] = strdup(key);
	ns->val[ns->n] = strdup(value);
	if (!ns->key[ns->n] || !ns->val[ns->n]) {
		free(ns->key[ns->n]);
		free(ns->val[ns->n]);
		ns->err = BFS_ERR_NOMEM;
		return 1;
	}
	ns->n++;
	return 0;
}

/*
 * Finishes the moves noted (by this run, or an interrupted one): where
 * the index row is in the new bucket and none is at the old place, the
 * old object is deleted; then the note goes.
 * Returns the number of notes finished, or -1 after a printed failure.
 */
static long finish_notes(struct ctl_ctx *c, struct mv_provs *ps)
{
	struct bfs_file_row row;
	struct notes ns;
	struct bfs_provider *p;
	size_t i;
	long done = 0;
	int r;

	memset(&ns, 0, sizeof(ns));
	if ((r = bfs_store_move_list(c->store, MOVE_NOTE_PREFIX, notes_cb, &ns)) != 0 ||
	    (r = ns.err) != 0) {
		ctl_fail("context move: notes: %s", bfs_strerror(r));
		done = -1;
		goto out;
	}
	for (i = 0; i < ns.n; i++) {
		char *dst = ns.key[i] + strlen(MOVE_NOTE_PREFIX);
		char *dkey = strchr(dst, '\n'), *src = ns.val[i];
		char *skey = strchr(src, '\n');

		if (!dkey || !skey)
			continue;
		*dkey++ = '\0';
		*skey++ = '\0';
		memset(&row, 0, sizeof(row));
		if (bfs_store_file_get(c->store, src, skey, &row) == 0) {
			/* indexed at the old place again (written there
			 * since): a live file, not a leftover */
			bfs_file_row_clear(&row);
		} else if (bfs_store_file_get(c->store, dst, dkey, &row) == 0) {
			bfs_file_row_clear(&row);
			if (!(p = prov_get(c, ps, src))) {
				done = -1;
				goto out;
			}
			if ((r = p->ops->del(p->st, skey)) != 0) {
				ctl_fail("context move: delete %s/%s: %s", src, skey,
					 bfs_strerror(r));
				done = -1;
				goto out;
			}
		}
		dkey[-1] = '\n';
		if ((r = bfs_store_move_note(c->store, ns.key[i], NULL)) != 0) {
			ctl_fail("context move: notes: %s", bfs_strerror(r));
			done = -1;
			goto out;
		}
		done++;
	}
out:
	for (i = 0; i < ns.n; i++) {
		free(ns.key[i]);
		free(ns.val[i]);
	}
	free(ns.key);
	free(ns.val);
	return done;
}

/* Moves one file (*server set when copied server-side); 0, 1 when
 * skipped (the source is gone), or a failure already printed
 * (CTL_EXIT_FAIL). */
static int move_one(struct ctl_ctx *c, struct mv_provs *ps,
		    const struct mv_file *f, const char *dst, const char *dkey,
		    uint64_t *bytes, int *server)
{
	struct bfs_provider *sp, *dp;
	struct bfs_file_row row;
	char etag[96], *nk = NULL;
	int r, rc = CTL_EXIT_FAIL;

	memset(&row, 0, sizeof(row));
	if (!(sp = prov_get(c, ps, f->bucket)) || !(dp = prov_get(c, ps, dst)))
		goto out;
	r = copy_server(sp, f->key, dp, dkey, etag, sizeof(etag), bytes);
	if (r == 0)
		*server = 1;
	else if (r == BFS_ERR_NOTSUP)
		r = copy_verified(sp, f->key, dp, dkey, etag, sizeof(etag),
				  bytes);
	if (r == BFS_ERR_NOTFOUND) {
		fprintf(stderr, "bucketctl: %s/%s: indexed but not stored; "
			"left as it is\n", f->bucket, f->key);
		rc = 1;
		goto out;
	}
	if (r != 0) {
		if (r != BFS_ERR_IO)
			ctl_fail("context move: %s/%s -> %s/%s: %s", f->bucket,
				 f->key, dst, dkey, bfs_strerror(r));
		goto out;
	}
	if (!(nk = note_key(dst, dkey))) {
		ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
		goto out;
	}
	{
		size_t vl = strlen(f->bucket) + 1 + strlen(f->key) + 1;
		char *v = malloc(vl);

		if (!v) {
			ctl_fail("%s", bfs_strerror(BFS_ERR_NOMEM));
			goto out;
		}
		snprintf(v, vl, "%s\n%s", f->bucket, f->key);
		r = bfs_store_move_note(c->store, nk, v);
		free(v);
	}
	if (r != 0 ||
	    (r = bfs_store_file_rename(c->store, f->bucket, f->key, dst, dkey)) != 0) {
		ctl_fail("context move: index: %s", bfs_strerror(r));
		goto out;
	}
	/* the row keeps its attributes; its etag is the new object's */
	if (etag[0] && bfs_store_file_get(c->store, dst, dkey, &row) == 0) {
		char *old = row.etag;

		row.etag = etag;
		row.updated_at = row.created_at;
		r = bfs_store_file_put(c->store, &row);
		row.etag = old;
		if (r != 0) {
			ctl_fail("context move: index: %s", bfs_strerror(r));
			goto out;
		}
	}
	/* the old object goes in finish_notes(), after MOVE_GRACE_S */
	rc = 0;
out:
	bfs_file_row_clear(&row);
	free(nk);
	return rc;
}

static void progress(size_t done, size_t total, uint64_t bytes,
		     uint64_t total_bytes, double t0)
{
	double s = (ctl_now_ms() - t0) / 1000.0;
	double rate = s > 0 ? (double)bytes / s : 0;
	double eta = rate > 0 ? (double)(total_bytes - bytes) / rate : 0;

	fprintf(stderr, "\rmoved %zu/%zu files, %" PRIu64 "/%" PRIu64
		" bytes, %.1f MB/s, ETA %.0f s   ", done, total, bytes,
		total_bytes, rate / 1e6, eta);
}

int ctl_cmd_context_move(struct ctl_ctx *c, const struct ctl_args *a)
{
	const int dry = a->opt[OPT_DRY_RUN].set;
	struct ctx_routing rt;
	struct mv_files l;
	struct mv_provs ps;
	struct bfs_file_row row;
	struct bfs_buf o;
	const struct bfs_bucket_conf *tb;
	const char *id = a->pos[1], *dst;
	char rel[BFS_CTX_ID_MAX + 8], *dkey = NULL;
	uint64_t moved_bytes = 0, total_bytes = 0, b;
	size_t i, moved = 0, skipped = 0, kept = 0, server_side = 0;
	long notes = 0;
	double t0 = ctl_now_ms();
	int type, r, rc = CTL_EXIT_FAIL, tty = isatty(2) && !a->json;

	memset(&l, 0, sizeof(l));
	memset(&ps, 0, sizeof(ps));
	memset(&rt, 0, sizeof(rt));
	bfs_buf_init(&o, CTL_JSON_ROW_MAX);
	if ((type = bfs_ctx_type_parse(a->pos[0])) < 0)
		return ctl_usage(c->cmd, "unknown context type '%.64s' (chat or form)",
				 a->pos[0]);
	if (!bfs_ctx_id_valid(id))
		return ctl_usage(c->cmd, "invalid ID '%.140s' ([A-Za-z0-9_-]{1,128})",
				 id);
	if (routing_load(c, &rt) != 0)
		goto out;
	if (a->opt[OPT_TO].set) {
		dst = a->opt[OPT_TO].arg;
		if (!bucket_of(&rt, dst)) {
			ctl_fail("no such bucket '%.64s'", dst);
			goto out;
		}
		if (!dry) {
			struct bfs_assign_change ch;
			char err[CTL_ERR_LEN] = "";

			memset(&ch, 0, sizeof(ch));
			ch.context_type = type;
			snprintf(ch.context_id, sizeof(ch.context_id), "%s", id);
			ch.bucket = (char *)(uintptr_t)dst;
			if ((r = bfs_store_assign_apply(c->store, &ch, 1, err,
							sizeof(err))) != 0) {
				ctl_fail("%s/%s: %s", bfs_ctx_type_name(type), id,
					 err[0] ? err : bfs_strerror(r));
				goto out;
			}
		}
	} else if (!(dst = routed_bucket(&rt, type, id))) {
		ctl_fail("no bucket serves %s/%s (no assignment, no %s or general "
			 "default)", bfs_ctx_type_name(type), id,
			 type == 0 ? "chat" : "forms");
		goto out;
	}
	tb = bucket_of(&rt, dst);
	if (tb->read_only) {
		ctl_fail("bucket '%s' is read-only", dst);
		goto out;
	}
	if (!dry && (notes = finish_notes(c, &ps)) < 0)
		goto out;
	snprintf(rel, sizeof(rel), "%s/%s/", bfs_ctx_type_name(type), id);
	for (i = 0; i < rt.nb; i++) {
		char full[BFS_KEY_MAX + sizeof(rel) + 1];

		if (!strcmp(rt.bs[i].name, dst))
			continue;
		l.prefix = rt.bs[i].prefix ? rt.bs[i].prefix : "";
		snprintf(full, sizeof(full), "%s%s", l.prefix, rel);
		if ((r = bfs_store_file_list(c->store, rt.bs[i].name, full,
					     mv_file_cb, &l)) != 0 ||
		    (r = l.err) != 0) {
			ctl_fail("context move: %s", bfs_strerror(r));
			goto out;
		}
	}
	for (i = 0; i < l.n; i++)
		total_bytes += l.v[i].size;
	if (a->json)
		r = bfs_buf_addf(&o, "{\"context\": \"%s/%s\", \"bucket\": ",
				 bfs_ctx_type_name(type), id);
	else
		r = 0;
	JADD(a->json ? ctl_json_str(&o, dst) : 0);
	JADD(a->json ? bfs_buf_addf(&o, ", \"dry_run\": %s, \"files\": [",
				    dry ? "true" : "false") : 0);
	/* JSON streams out one file at a time: a context may be large */
	if (a->json && ctl_emit(&o, r) != 0)
		goto out;
	for (i = 0; i < l.n; i++) {
		const struct mv_file *f = &l.v[i];
		const char *what;

		free(dkey);
		dkey = NULL;
		if ((r = bfs_key_from_path(tb->prefix ? tb->prefix : "", f->rel, 0,
					   &dkey)) != 0) {
			ctl_fail("context move: %s: %s", f->rel, bfs_strerror(r));
			goto out;
		}
		memset(&row, 0, sizeof(row));
		if (bfs_store_file_get(c->store, dst, dkey, &row) == 0) {
			/* the routed bucket has its own file at that path: it is
			 * the one the mount shows; the other stays */
			bfs_file_row_clear(&row);
			what = "kept";
			kept++;
		} else if (dry) {
			what = "would move";
			moved++;
			moved_bytes += f->size;
		} else {
			int server = 0;

			b = 0;
			if ((r = move_one(c, &ps, f, dst, dkey, &b, &server)) ==
			    CTL_EXIT_FAIL)
				goto out;
			server_side += server;
			what = r == 0 ? "moved" : "skipped";
			if (r == 0) {
				moved++;
				moved_bytes += b;
			} else {
				skipped++;
			}
		}
		if (a->json) {
			r = 0;
			JADD(bfs_buf_addf(&o, "%s{\"from\": ", i ? ", " : ""));
			JADD(ctl_json_str(&o, f->bucket));
			JADD(bfs_buf_adds(&o, ", \"key\": "));
			JADD(ctl_json_str(&o, f->key));
			JADD(bfs_buf_adds(&o, ", \"to_key\": "));
			JADD(ctl_json_str(&o, dkey));
			JADD(bfs_buf_adds(&o, ", \"action\": "));
			JADD(ctl_json_str(&o, what));
			JADD(bfs_buf_addf(&o, ", \"size\": %" PRIu64 "}", f->size));
			if (ctl_emit(&o, r) != 0)
				goto out;
		} else if (dry || !tty) {
			printf("%s %s/%s -> %s/%s (%" PRIu64 " bytes)\n", what,
			       f->bucket, f->key, dst, dkey, f->size);
		}
		if (tty && !dry)
			progress(i + 1, l.n, moved_bytes, total_bytes, t0);
	}
	if (tty && !dry && l.n)
		fputc('\n', stderr);
	if (!dry && moved) {
		sleep(MOVE_GRACE_S);
		if (finish_notes(c, &ps) < 0)
			goto out;
	}
	if (a->json) {
		r = 0;
		JADD(bfs_buf_addf(&o, "], \"moved\": %zu, \"bytes\": %" PRIu64
				  ", \"server_side\": %zu, \"kept\": %zu, "
				  "\"skipped\": %zu, \"finished_from_earlier_run\":"
				  " %ld}\n", moved, moved_bytes, server_side, kept,
				  skipped, notes));
		if (ctl_emit(&o, r) != 0)
			goto out;
	} else {
		printf("%s/%s: %s %zu files (%" PRIu64 " bytes) into %s; %zu kept "
		       "(%s has its own file at that path), %zu skipped\n",
		       bfs_ctx_type_name(type), id, dry ? "would move" : "moved",
		       moved, moved_bytes, dst, kept, dst, skipped);
	}
	rc = CTL_EXIT_OK;
out:
	free(dkey);
	bfs_buf_free(&o);
	provs_free(&ps);
	mv_files_free(&l);
	routing_free(&rt);
	return rc;
}
