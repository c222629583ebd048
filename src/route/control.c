/*
 * control.c - the control files at the mount root.
 *
 * .defaults and .assignments render the store's settings and take write
 * sessions (INTERFACE.md "Control-file write sessions"): the bytes of one
 * open are parsed as they arrive by the pure parser in util/ctlfile.c and
 * applied at close by the store in one transaction, so a bad line changes
 * nothing (bfs_ctl_session_*, below).  .buckets renders one line per
 * registry bucket with the index stats; .metrics is the Prometheus text of
 * util/metrics.c.  With a PostgreSQL catalog that cannot be reached, the
 * last successful rendering of .defaults and .assignments and the last
 * index stats are served instead of an error.  Renderings are capped (BFS_CTL_RENDER_MAX); the FUSE
 * layer snapshots one rendering per open so reads of one fd are consistent.
 */
#include <pthread.h>
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

/*
 * The last index stats read, for .buckets while the database cannot be
 * read (a PostgreSQL outage): the counts from before it.  Guarded by
 * last_stats_mu.
 */
static pthread_mutex_t last_stats_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bfs_bucket_stats *last_stats;
static size_t last_nstats;

/* A copy of a[0..n) into *out (NULL, 0 when out of memory). */
static size_t stats_copy(const struct bfs_bucket_stats *a, size_t n,
			 struct bfs_bucket_stats **out)
{
	size_t i;

	*out = n ? calloc(n, sizeof(**out)) : NULL;
	if (!*out)
		return 0;
	for (i = 0; i < n; i++) {
		(*out)[i] = a[i];
		(*out)[i].bucket = a[i].bucket ? strdup(a[i].bucket) : NULL;
	}
	return n;
}

/* Stats now (remembered), or the last ones when the store fails. */
static int stats_or_last(struct bfs_store *s, struct bfs_bucket_stats **st,
			 size_t *ns)
{
	struct bfs_bucket_stats *keep = NULL;
	size_t nkeep = 0;
	int ok;

	/* The store call (a round trip with PostgreSQL) holds no lock here. */
	ok = bfs_store_stats(s, NULL, st, ns) == 0;
	if (ok)
		nkeep = stats_copy(*st, *ns, &keep);
	pthread_mutex_lock(&last_stats_mu);
	if (ok) {
		bfs_bucket_stats_free(last_stats, last_nstats);
		last_stats = keep;
		last_nstats = nkeep;
	} else {
		*ns = stats_copy(last_stats, last_nstats, st);
	}
	pthread_mutex_unlock(&last_stats_mu);
	return 0;
}

/* One line per bucket: NAME provider=P remote=R status=ok|error files=N
 * bytes=N, and while a PostgreSQL catalog is unreachable database=down (then
 * files and bytes are the last counts read). */
static int render_buckets(struct bfs_registry *r, struct bfs_buf *out)
{
	struct bfs_bucket_stats *st = NULL;
	struct bfs_rbucket *b;
	char **names = NULL;
	size_t n = 0, ns = 0, i, j;
	uint64_t files, bytes;
	int64_t queued = 0;
	int rc, ok, up = 0, pg;

	if ((rc = bfs_registry_names(r, &names, &n)) != 0)
		goto out;
	stats_or_last(bfs_registry_store(r), &st, &ns);
	pg = bfs_store_db_state(bfs_registry_store(r), &up, &queued);
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
		rc = bfs_buf_addf(out, "%s provider=%s remote=%s status=%s files=%llu bytes=%llu%s\n",
				  b->name, bfs_provider_kind_name(b->kind),
				  b->remote[0] ? b->remote : "-",
				  ok ? "ok" : "error",
				  (unsigned long long)files,
				  (unsigned long long)bytes,
				  pg && !up ? " database=down" : "");
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

/*
 * The last successful rendering of .defaults and .assignments, served
 * while the store cannot be read (a PostgreSQL outage: what the mount
 * routes with is what the catalog last said).  Guarded by last_ctl_mu.
 */
static pthread_mutex_t last_ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static char *last_ctl[2];

/* Renders kind (defaults or assignments) with the fallback above. */
static int render_kept(struct bfs_registry *r, int kind, struct bfs_buf *out)
{
	struct bfs_buf tmp;
	int i = kind == BFS_CTL_DEFAULTS ? 0 : 1, rc;
	char *keep = NULL;

	bfs_buf_init(&tmp, out->max);
	/* The store call holds no lock here. */
	rc = i == 0 ? render_defaults(r, &tmp) : render_assignments(r, &tmp);
	if (rc == 0) {
		keep = strdup(tmp.p ? tmp.p : "");
		rc = bfs_buf_add(out, tmp.p ? tmp.p : "", tmp.len);
	}
	pthread_mutex_lock(&last_ctl_mu);
	if (keep) {
		free(last_ctl[i]);
		last_ctl[i] = keep;
	} else if (rc == BFS_ERR_DB && last_ctl[i]) {
		rc = bfs_buf_adds(out, last_ctl[i]);
	}
	pthread_mutex_unlock(&last_ctl_mu);
	bfs_buf_free(&tmp);
	return rc;
}

int bfs_ctl_render(struct bfs_registry *r, int kind, struct bfs_buf *out)
{
	struct bfs_store *s = bfs_registry_store(r);
	int up;
	int64_t q;

	switch (kind) {
	case BFS_CTL_DEFAULTS:
	case BFS_CTL_ASSIGNMENTS:
		/* A PostgreSQL catalog: keep serving the last rendering. */
		if (s && bfs_store_db_state(s, &up, &q))
			return render_kept(r, kind, out);
		return kind == BFS_CTL_DEFAULTS ? render_defaults(r, out) :
						  render_assignments(r, out);
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
 * Write sessions.  One open() of .defaults or .assignments for writing is
 * one session: its bytes go through a bfs_ctl_parser as they arrive, and
 * a commit (a close() of one of its descriptors) applies what came since
 * the previous commit in one store transaction.
 *
 * Which close() commits.  Every close() of a descriptor sends a flush, and
 * a process that forks hands its descriptors to the child, whose exec or
 * exit closes them: Python's subprocess, a shell running a command in the
 * middle of a redirected block.  So a flush commits only when it comes
 * from an fd table (the kernel's lock owner) that wrote to the session; a
 * child closing its inherited copy commits nothing, and the writer's own
 * close() gets the answer: EINVAL when anything was bad.  When the kernel
 * names no owner (0) or more than CTL_WRITERS_MAX tables wrote, every
 * flush commits.
 *
 * The lines are checked against the registry when they arrive (in memory,
 * no I/O) and by the store again in the transaction, since a bucket may be
 * removed in between.  Any refusal spoils the session for good: later writes and
 * commits fail with the same error and nothing more is applied.
 *
 * Offsets: the bytes are a stream of lines taken in arrival order.  The
 * first write may be at any offset (0 after `>`, the file size after a
 * read); each later one must start where the one before ended, else it is
 * refused (EINVAL) and spoils the session.  An O_APPEND open skips that
 * check: the kernel puts its writes at what it believes is the file size,
 * which is the rendering, not what the session holds.
 */
#define CTL_WRITERS_MAX 8

struct bfs_ctl_session {
	struct bfs_registry *reg;
	int kind;
	int append;
	/*
	 * mu guards what follows.  A commit holds it across the store
	 * transaction: only other descriptors of this same open file (dup,
	 * fork) ever wait on it, and their writes belong after the commit.
	 */
	pthread_mutex_t mu;
	struct bfs_ctl_parser *p;
	int started;             /* a write arrived: next_off is known */
	uint64_t next_off;       /* where the next write must start */
	uint64_t writers[CTL_WRITERS_MAX];  /* lock owners that wrote */
	size_t nwriters;
	int any_flush;           /* every flush commits (see above) */
};

/* Notes that owner wrote to s.  mu held. */
static void ctl_note_writer(struct bfs_ctl_session *s, uint64_t owner)
{
	size_t i;

	if (s->any_flush)
		return;
	for (i = 0; i < s->nwriters; i++)
		if (s->writers[i] == owner)
			return;
	if (owner == 0 || s->nwriters == CTL_WRITERS_MAX)
		s->any_flush = 1;
	else
		s->writers[s->nwriters++] = owner;
}

/* 1 when a flush by owner commits s.  mu held. */
static int ctl_is_writer(const struct bfs_ctl_session *s, uint64_t owner)
{
	size_t i;

	if (s->any_flush)
		return 1;
	for (i = 0; i < s->nwriters; i++)
		if (s->writers[i] == owner)
			return 1;
	return 0;
}

/* bfs_ctl_exists_fn over the live registry (an in-memory lookup). */
static int ctl_bucket_exists(void *arg, const char *bucket)
{
	struct bfs_rbucket *b = bfs_registry_get(arg, bucket);

	bfs_rbucket_put(b);
	return b != NULL;
}

/* The log line of a refusal: the reason and, when a line is to blame,
 * its text. */
static void ctl_log_refusal(const struct bfs_ctl_session *s, const char *what,
			    const char *err)
{
	const char *text = bfs_ctl_parser_bad_line(s->p);

	if (text[0])
		BFS_WARN("%s: %s refused, nothing of this session is applied:"
			 " %s: \"%s\"", ctl_names[s->kind], what, err, text);
	else
		BFS_WARN("%s: %s refused, nothing of this session is applied:"
			 " %s", ctl_names[s->kind], what, err);
}

int bfs_ctl_session_new(struct bfs_registry *r, int kind, int append,
			struct bfs_ctl_session **out)
{
	struct bfs_ctl_session *s = NULL;
	int rc = BFS_ERR_ACCESS;

	*out = NULL;
	if (!bfs_ctl_writable(kind))
		goto out;
	rc = BFS_ERR_NOMEM;
	if (!(s = calloc(1, sizeof(*s))))
		goto out;
	s->reg = r;
	s->kind = kind;
	s->append = append != 0;
	if ((rc = bfs_ctl_parser_new(kind == BFS_CTL_ASSIGNMENTS,
				     ctl_bucket_exists, r, &s->p)) != 0)
		goto out;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	s = NULL;
	rc = 0;
out:
	free(s);
	return rc;
}

int bfs_ctl_session_write(struct bfs_ctl_session *s, const char *data,
			  size_t len, uint64_t off, uint64_t owner)
{
	char err[640];
	int rc;

	pthread_mutex_lock(&s->mu);
	ctl_note_writer(s, owner);
	if ((rc = bfs_ctl_parser_error(s->p)) != 0)
		goto out;          /* refused (and logged) before */
	if (!s->append && s->started && off != s->next_off) {
		snprintf(err, sizeof(err), "write at offset %llu, the session"
			 " is at %llu (control files take lines in order)",
			 (unsigned long long)off,
			 (unsigned long long)s->next_off);
		bfs_ctl_parser_spoil(s->p, BFS_ERR_INVAL, err);
		ctl_log_refusal(s, "write", err);
		rc = BFS_ERR_INVAL;
		goto out;
	}
	s->started = 1;
	s->next_off = off + len;
	if ((rc = bfs_ctl_parser_feed(s->p, data, len, err, sizeof(err))) != 0)
		ctl_log_refusal(s, "write", err);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* bfs_assign_next_fn over a session's packed changes. */
struct ctl_walk {
	const struct bfs_ctl_changes *c;
	size_t pos;
};

static int ctl_walk_next(void *arg, struct bfs_assign_change *out)
{
	struct ctl_walk *w = arg;

	return bfs_ctl_changes_next(w->c, &w->pos, out);
}

int bfs_ctl_session_commit(struct bfs_ctl_session *s, uint64_t owner)
{
	struct bfs_ctl_changes ch;
	struct ctl_walk w;
	struct bfs_store *st = bfs_registry_store(s->reg);
	char err[1024];
	size_t lines = 0;
	int rc, applied = 0;

	memset(&ch, 0, sizeof(ch));
	pthread_mutex_lock(&s->mu);
	if (!ctl_is_writer(s, owner)) {
		rc = 0;            /* an inherited copy closed: not its say */
		BFS_DEBUG("%s: close by a process that did not write to the"
			  " session (owner %llx): nothing applied",
			  ctl_names[s->kind], (unsigned long long)owner);
		goto out;
	}
	if ((rc = bfs_ctl_parser_error(s->p)) != 0)
		goto out;
	if ((rc = bfs_ctl_parser_end(s->p, &ch, err, sizeof(err))) != 0) {
		ctl_log_refusal(s, "close", err);
		goto out;
	}
	if (ch.lines == 0)
		goto out;          /* nothing written, or comments only */
	err[0] = '\0';
	if (s->kind == BFS_CTL_DEFAULTS) {
		rc = bfs_store_defaults_apply(st, &ch.defaults, err, sizeof(err));
	} else {
		w.c = &ch;
		w.pos = 0;
		rc = bfs_store_assign_apply_each(st, ctl_walk_next, &w, err,
						 sizeof(err));
	}
	if (rc != 0) {
		rc = ctl_apply_err(rc);
		bfs_ctl_parser_spoil(s->p, rc, err[0] ? err : bfs_strerror(rc));
		ctl_log_refusal(s, "close", err[0] ? err : bfs_strerror(rc));
		goto out;
	}
	applied = 1;
	lines = ch.lines;
out:
	pthread_mutex_unlock(&s->mu);
	bfs_ctl_changes_clear(&ch);
	if (applied) {
		BFS_INFO("%s updated (%zu line%s)", ctl_names[s->kind], lines,
			 lines == 1 ? "" : "s");
		if (bfs_registry_reload(s->reg, err, sizeof(err)) != 0)
			BFS_WARN("reload after %s write: %s", ctl_names[s->kind],
				 err);
	}
	return rc;
}

int bfs_ctl_session_end(struct bfs_ctl_session *s, int apply)
{
	int rc = 0, pending;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	pending = bfs_ctl_parser_error(s->p) == 0 &&
		  bfs_ctl_parser_pending(s->p) != 0;
	if (pending && apply)
		s->any_flush = 1;  /* whoever wrote it, it goes now */
	pthread_mutex_unlock(&s->mu);
	if (pending && apply) {
		BFS_WARN("%s: writes no close() saw: applied now",
			 ctl_names[s->kind]);
		rc = bfs_ctl_session_commit(s, 0);
	} else if (pending) {
		BFS_WARN("%s: session still open at shutdown: nothing of it"
			 " is applied", ctl_names[s->kind]);
	}
	bfs_ctl_parser_free(s->p);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return rc;
}
