/*
 * ctlfile.c - parsing and rendering of the .defaults and .assignments
 * control files (see bfs_ctlfile.h).
 *
 * One write() is parsed in two passes over the same loop: every line is
 * checked for text hygiene (no NUL or control bytes, valid UTF-8, length
 * cap), then split at the first '=' into a trimmed left and right side and
 * interpreted.  The first bad line fails the whole write with "line N:
 * reason" and nothing is returned, so the caller can apply all or nothing.
 * Whether a named bucket exists is not known here: the store checks that
 * in the transaction that applies the change.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_key.h"

static const char *const ctx_type_names[] = { "chat", "form" };

const char *bfs_ctx_type_name(int t)
{
	if (t < 0 || t > 1)
		return NULL;
	return ctx_type_names[t];
}

int bfs_ctx_type_parse(const char *s)
{
	int i;

	for (i = 0; s && i < 2; i++)
		if (strcmp(s, ctx_type_names[i]) == 0)
			return i;
	return -1;
}

/* One parsed "LEFT = RIGHT" line; both sides NUL-terminated copies. */
struct ctl_line {
	size_t lineno;
	char left[BFS_CTL_LINE_MAX + 1];
	char right[BFS_CTL_LINE_MAX + 1];
};

/* Called per meaningful line; returns 0 or BFS_ERR_* with err filled. */
typedef int (*ctl_line_fn)(const struct ctl_line *l, void *user,
			   char *err, size_t errlen);

static void ctl_err(char *err, size_t errlen, size_t lineno,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void ctl_err(char *err, size_t errlen, size_t lineno,
		    const char *fmt, ...)
{
	char reason[BFS_CTL_LINE_MAX + 128];
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %zu: %s", lineno, reason);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Copies [s, e) trimmed of spaces and tabs into dst (cap BFS_CTL_LINE_MAX). */
static void copy_trimmed(char *dst, const char *s, const char *e)
{
	while (s < e && is_blank(*s))
		s++;
	while (e > s && is_blank(e[-1]))
		e--;
	memcpy(dst, s, (size_t)(e - s));
	dst[e - s] = '\0';
}

/*
 * Walks buf line by line, validates each, and calls fn on every line that
 * is not blank or a '#' comment.  A final line without '\n' is a whole
 * line (what `echo -n` writes).
 */
static int ctl_walk(const char *buf, size_t len, ctl_line_fn fn, void *user,
		    char *err, size_t errlen)
{
	struct ctl_line *l = NULL;
	size_t pos = 0, lineno = 0;
	int r = BFS_ERR_INVAL;

	if (len > BFS_CTL_WRITE_MAX) {
		/* Name the line holding the first byte past the cap. */
		const char *p = buf, *end = buf + BFS_CTL_WRITE_MAX;

		lineno = 1;
		while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
			lineno++;
			p++;
		}
		ctl_err(err, errlen, lineno, "write over %d bytes", BFS_CTL_WRITE_MAX);
		goto out;
	}
	l = malloc(sizeof(*l));
	if (!l) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	while (pos < len) {
		const char *s = buf + pos, *nl, *e, *eq, *t;
		size_t linelen, i;

		lineno++;
		nl = memchr(s, '\n', len - pos);
		linelen = nl ? (size_t)(nl - s) : len - pos;
		pos += linelen + (nl ? 1 : 0);
		if (linelen > BFS_CTL_LINE_MAX) {
			ctl_err(err, errlen, lineno, "line longer than %d bytes",
				BFS_CTL_LINE_MAX);
			goto out;
		}
		e = s + linelen;
		if (e > s && e[-1] == '\r')
			e--;
		for (i = 0; i < (size_t)(e - s); i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == 0) {
				ctl_err(err, errlen, lineno, "NUL byte");
				goto out;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				ctl_err(err, errlen, lineno, "control character");
				goto out;
			}
		}
		if (!bfs_utf8_valid(s, (size_t)(e - s))) {
			ctl_err(err, errlen, lineno, "invalid UTF-8");
			goto out;
		}
		t = s;
		while (t < e && is_blank(*t))
			t++;
		if (t == e || *t == '#')
			continue;
		eq = memchr(t, '=', (size_t)(e - t));
		if (!eq) {
			copy_trimmed(l->left, t, e);
			ctl_err(err, errlen, lineno, "missing '=' in '%s'", l->left);
			goto out;
		}
		l->lineno = lineno;
		copy_trimmed(l->left, t, eq);
		copy_trimmed(l->right, eq + 1, e);
		r = fn(l, user, err, errlen);
		if (r)
			goto out;
		r = BFS_ERR_INVAL;
	}
	r = 0;
out:
	free(l);
	return r;
}

/* Shared check of the right side: "" (unset) or a valid bucket name. */
static int check_bucket(const struct ctl_line *l, char *err, size_t errlen)
{
	if (l->right[0] && !bfs_bucket_name_valid(l->right)) {
		ctl_err(err, errlen, l->lineno, "bad bucket name '%s'", l->right);
		return BFS_ERR_INVAL;
	}
	return 0;
}

static int defaults_line(const struct ctl_line *l, void *user, char *err,
			 size_t errlen)
{
	struct bfs_defaults_change *c = user;
	char *name = NULL;
	int role, r;

	role = bfs_role_parse(l->left);
	if (role < 0) {
		ctl_err(err, errlen, l->lineno, "unknown role '%s'", l->left);
		return BFS_ERR_INVAL;
	}
	r = check_bucket(l, err, errlen);
	if (r)
		return r;
	if (l->right[0]) {
		name = strdup(l->right);
		if (!name)
			return BFS_ERR_NOMEM;
	}
	free(c->bucket[role]);
	c->bucket[role] = name;
	c->touched[role] = 1;
	return 0;
}

int bfs_ctl_parse_defaults(const char *buf, size_t len,
			   struct bfs_defaults_change *out,
			   char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!buf && len) {
		ctl_err(err, errlen, 1, "no data");
		return BFS_ERR_INVAL;
	}
	r = ctl_walk(buf, len, defaults_line, out, err, errlen);
	if (r)
		bfs_defaults_change_clear(out);
	return r;
}

void bfs_defaults_change_clear(struct bfs_defaults_change *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < BFS_ROLE_COUNT; i++)
		free(c->bucket[i]);
	memset(c, 0, sizeof(*c));
}

struct assign_acc {
	struct bfs_assign_change *a;
	size_t n, alloc;
};

static int assign_line(const struct ctl_line *l, void *user, char *err,
		       size_t errlen)
{
	struct assign_acc *acc = user;
	struct bfs_assign_change *c;
	char *slash;
	char type[BFS_CTL_LINE_MAX + 1];
	int t, r;

	slash = strchr(l->left, '/');
	if (!slash) {
		ctl_err(err, errlen, l->lineno,
			"expected chat/ID or form/ID, got '%s'", l->left);
		return BFS_ERR_INVAL;
	}
	memcpy(type, l->left, (size_t)(slash - l->left));
	type[slash - l->left] = '\0';
	t = bfs_ctx_type_parse(type);
	if (t < 0) {
		ctl_err(err, errlen, l->lineno, "unknown context type '%s'", type);
		return BFS_ERR_INVAL;
	}
	if (!bfs_ctx_id_valid(slash + 1)) {
		ctl_err(err, errlen, l->lineno, "bad id '%s'", slash + 1);
		return BFS_ERR_INVAL;
	}
	r = check_bucket(l, err, errlen);
	if (r)
		return r;
	if (acc->n == acc->alloc) {
		size_t na = acc->alloc ? acc->alloc * 2 : 8;
		struct bfs_assign_change *np = realloc(acc->a, na * sizeof(*np));

		if (!np)
			return BFS_ERR_NOMEM;
		acc->a = np;
		acc->alloc = na;
	}
	c = &acc->a[acc->n];
	memset(c, 0, sizeof(*c));
	c->context_type = t;
	/* bfs_ctx_id_valid() bounded the id to BFS_CTX_ID_MAX bytes. */
	strcpy(c->context_id, slash + 1);
	if (l->right[0]) {
		c->bucket = strdup(l->right);
		if (!c->bucket)
			return BFS_ERR_NOMEM;
	}
	acc->n++;
	return 0;
}

int bfs_ctl_parse_assignments(const char *buf, size_t len,
			      struct bfs_assign_change **out, size_t *n,
			      char *err, size_t errlen)
{
	struct assign_acc acc = { NULL, 0, 0 };
	int r;

	*out = NULL;
	*n = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!buf && len) {
		ctl_err(err, errlen, 1, "no data");
		return BFS_ERR_INVAL;
	}
	r = ctl_walk(buf, len, assign_line, &acc, err, errlen);
	if (r) {
		bfs_assign_changes_free(acc.a, acc.n);
		return r;
	}
	*out = acc.a;
	*n = acc.n;
	return 0;
}

void bfs_assign_changes_free(struct bfs_assign_change *a, size_t n)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < n; i++)
		free(a[i].bucket);
	free(a);
}

int bfs_ctl_format_defaults(char *const names[BFS_ROLE_COUNT],
			    struct bfs_buf *out)
{
	int i, r = 0;

	for (i = 0; r == 0 && i < BFS_ROLE_COUNT; i++) {
		const char *v = names ? names[i] : NULL;

		if (v && v[0])
			r = bfs_buf_addf(out, "%s = %s\n", bfs_role_name(i), v);
		else
			r = bfs_buf_addf(out, "%s =\n", bfs_role_name(i));
	}
	return r;
}
