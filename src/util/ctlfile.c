/*
 * ctlfile.c - parsing and rendering of the .defaults and .assignments
 * control files (see bfs_ctlfile.h).
 *
 * A parser keeps the bytes of the line not yet ended (at most
 * BFS_CTL_LINE_MAX) and, when its '\n' arrives, checks it: text hygiene
 * (no NUL or control bytes, valid UTF-8, length cap), then a split at the
 * first '=' into a trimmed left and right side, interpreted per file and
 * checked against the caller's exists() callback.  A good line goes into
 * the change being collected (.defaults: the role's new value, last line
 * wins; .assignments: a packed record in file order); the first bad line
 * spoils the parser with "line N: reason" and nothing of it is kept, so
 * the caller applies all or nothing.
 *
 * Packed .assignments record: one byte '0' (chat) or '1' (form), the ID,
 * '\0', the bucket name ("" to remove), '\0'.  It is shorter than the line
 * it came from ("chat/" is one byte, " = " at least one), so the packed
 * change of a session never outgrows the session's byte cap.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_ctlfile.h"
#include "bfs_error.h"
#include "bfs_key.h"

#define CTL_ERR_MAX (BFS_CTL_LINE_MAX + 160)   /* "line N: " + reason */
#define CTL_BAD_MAX 128

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

struct bfs_ctl_parser {
	int assignments;
	bfs_ctl_exists_fn exists;
	void *arg;
	uint64_t total;              /* bytes taken in all (the session cap) */
	uint64_t pending;            /* bytes taken since the last end */
	size_t lineno;               /* lines ended so far */
	int spoiled;                 /* 0 or the BFS_ERR_* that spoiled it */
	char err[CTL_ERR_MAX];       /* its "line N: reason" */
	char bad[CTL_BAD_MAX + 1];   /* the offending line, printable */
	size_t llen;
	char line[BFS_CTL_LINE_MAX]; /* the line not yet ended */
	struct ctl_line l;           /* scratch for the line being checked */
	struct bfs_ctl_changes cur;  /* what the lines since the last end change */
};

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

static void ctl_err(char *err, size_t errlen, size_t lineno,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void ctl_err(char *err, size_t errlen, size_t lineno,
		    const char *fmt, ...)
{
	char reason[CTL_ERR_MAX - 32];   /* room for "line N: " */
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

/* Shared check of the right side: "" (unset) or a bucket that exists. */
static int check_bucket(struct bfs_ctl_parser *p, const struct ctl_line *l,
			char *err, size_t errlen)
{
	if (!l->right[0])
		return 0;
	if (!bfs_bucket_name_valid(l->right)) {
		ctl_err(err, errlen, l->lineno, "bad bucket name '%s'", l->right);
		return BFS_ERR_INVAL;
	}
	if (p->exists && !p->exists(p->arg, l->right)) {
		ctl_err(err, errlen, l->lineno, "unknown bucket '%s'", l->right);
		return BFS_ERR_INVAL;
	}
	return 0;
}

static int defaults_line(struct bfs_ctl_parser *p, const struct ctl_line *l,
			 char *err, size_t errlen)
{
	struct bfs_defaults_change *c = &p->cur.defaults;
	char *name = NULL;
	int role, r;

	role = bfs_role_parse(l->left);
	if (role < 0) {
		ctl_err(err, errlen, l->lineno, "unknown role '%s'", l->left);
		return BFS_ERR_INVAL;
	}
	if ((r = check_bucket(p, l, err, errlen)) != 0)
		return r;
	if (l->right[0] && !(name = strdup(l->right)))
		return BFS_ERR_NOMEM;
	free(c->bucket[role]);
	c->bucket[role] = name;
	c->touched[role] = 1;
	return 0;
}

static int assign_line(struct bfs_ctl_parser *p, const struct ctl_line *l,
		       char *err, size_t errlen)
{
	struct bfs_buf *b = &p->cur.packed;
	const char *slash, *id;
	char type[BFS_CTL_LINE_MAX + 1];
	char t;
	int ti, r;

	slash = strchr(l->left, '/');
	if (!slash) {
		ctl_err(err, errlen, l->lineno,
			"expected chat/ID or form/ID, got '%s'", l->left);
		return BFS_ERR_INVAL;
	}
	memcpy(type, l->left, (size_t)(slash - l->left));
	type[slash - l->left] = '\0';
	ti = bfs_ctx_type_parse(type);
	if (ti < 0) {
		ctl_err(err, errlen, l->lineno, "unknown context type '%s'", type);
		return BFS_ERR_INVAL;
	}
	id = slash + 1;
	if (!bfs_ctx_id_valid(id)) {
		ctl_err(err, errlen, l->lineno, "bad id '%s'", id);
		return BFS_ERR_INVAL;
	}
	if ((r = check_bucket(p, l, err, errlen)) != 0)
		return r;
	t = (char)('0' + ti);
	if ((r = bfs_buf_add(b, &t, 1)) != 0 ||
	    (r = bfs_buf_add(b, id, strlen(id) + 1)) != 0 ||
	    (r = bfs_buf_add(b, l->right, strlen(l->right) + 1)) != 0)
		return r == BFS_ERR_TOOBIG ? BFS_ERR_INTERNAL : r;
	return 0;
}

/*
 * Checks one ended line (s, linelen bytes, without its '\n') and adds it
 * to p->cur.  0 or BFS_ERR_* with err filled.
 */
static int ctl_line(struct bfs_ctl_parser *p, const char *s, size_t linelen,
		    char *err, size_t errlen)
{
	struct ctl_line *l = &p->l;
	const char *e = s + linelen, *eq, *t;
	size_t i;
	int r;

	if (e > s && e[-1] == '\r')
		e--;
	for (i = 0; i < (size_t)(e - s); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0) {
			ctl_err(err, errlen, p->lineno, "NUL byte");
			return BFS_ERR_INVAL;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			ctl_err(err, errlen, p->lineno, "control character");
			return BFS_ERR_INVAL;
		}
	}
	if (!bfs_utf8_valid(s, (size_t)(e - s))) {
		ctl_err(err, errlen, p->lineno, "invalid UTF-8");
		return BFS_ERR_INVAL;
	}
	t = s;
	while (t < e && is_blank(*t))
		t++;
	if (t == e || *t == '#')
		return 0;
	eq = memchr(t, '=', (size_t)(e - t));
	if (!eq) {
		copy_trimmed(l->left, t, e);
		ctl_err(err, errlen, p->lineno, "missing '=' in '%s'", l->left);
		return BFS_ERR_INVAL;
	}
	l->lineno = p->lineno;
	copy_trimmed(l->left, t, eq);
	copy_trimmed(l->right, eq + 1, e);
	r = p->assignments ? assign_line(p, l, err, errlen)
			   : defaults_line(p, l, err, errlen);
	if (r == 0)
		p->cur.lines++;
	return r;
}

/*
 * Keeps a printable copy of the line to blame for the log: the held bytes
 * a (alen) followed by b (blen), cut at CTL_BAD_MAX.
 */
static void keep_bad(struct bfs_ctl_parser *p, const char *a, size_t alen,
		     const char *b, size_t blen)
{
	size_t i, o = 0;

	for (i = 0; i < alen && o < CTL_BAD_MAX; i++)
		p->bad[o++] = isprint((unsigned char)a[i]) ? a[i] : '?';
	for (i = 0; i < blen && o < CTL_BAD_MAX; i++)
		p->bad[o++] = isprint((unsigned char)b[i]) ? b[i] : '?';
	p->bad[o] = '\0';
}

static void changes_init(struct bfs_ctl_changes *c, int assignments)
{
	memset(c, 0, sizeof(*c));
	c->assignments = assignments;
	bfs_buf_init(&c->packed, BFS_CTL_SESSION_MAX);
}

void bfs_ctl_changes_clear(struct bfs_ctl_changes *c)
{
	if (!c)
		return;
	bfs_defaults_change_clear(&c->defaults);
	bfs_buf_free(&c->packed);
	changes_init(c, c->assignments);
}

int bfs_ctl_changes_next(const struct bfs_ctl_changes *c, size_t *pos,
			 struct bfs_assign_change *out)
{
	const char *rec, *id, *bucket;
	size_t idlen;

	memset(out, 0, sizeof(*out));
	if (!c->assignments || *pos >= c->packed.len)
		return 0;
	rec = c->packed.p + *pos;
	id = rec + 1;
	idlen = strlen(id);
	bucket = id + idlen + 1;
	out->context_type = rec[0] - '0';
	/* The parser bounded the id to BFS_CTX_ID_MAX bytes. */
	memcpy(out->context_id, id, idlen + 1);
	out->bucket = bucket[0] ? (char *)(uintptr_t)bucket : NULL;
	*pos = (size_t)(bucket - c->packed.p) + strlen(bucket) + 1;
	return 1;
}

int bfs_ctl_parser_new(int assignments, bfs_ctl_exists_fn exists, void *arg,
		       struct bfs_ctl_parser **out)
{
	struct bfs_ctl_parser *p;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return BFS_ERR_NOMEM;
	p->assignments = assignments != 0;
	p->exists = exists;
	p->arg = arg;
	changes_init(&p->cur, p->assignments);
	*out = p;
	return 0;
}

void bfs_ctl_parser_free(struct bfs_ctl_parser *p)
{
	if (!p)
		return;
	bfs_ctl_changes_clear(&p->cur);
	free(p);
}

void bfs_ctl_parser_spoil(struct bfs_ctl_parser *p, int code,
			  const char *reason)
{
	if (p->spoiled)
		return;
	p->spoiled = code ? code : BFS_ERR_INVAL;
	set_err(p->err, sizeof(p->err), reason ? reason : "refused");
	bfs_ctl_changes_clear(&p->cur);
}

int bfs_ctl_parser_error(const struct bfs_ctl_parser *p)
{
	return p->spoiled;
}

const char *bfs_ctl_parser_bad_line(const struct bfs_ctl_parser *p)
{
	return p->bad;
}

uint64_t bfs_ctl_parser_pending(const struct bfs_ctl_parser *p)
{
	return p->pending;
}

/* Spoils p with the error just written into p->err. */
static int spoil(struct bfs_ctl_parser *p, int r, char *err, size_t errlen)
{
	p->spoiled = r;
	bfs_ctl_changes_clear(&p->cur);
	set_err(err, errlen, p->err);
	return r;
}

int bfs_ctl_parser_feed(struct bfs_ctl_parser *p, const char *buf, size_t len,
			char *err, size_t errlen)
{
	const char *s = buf, *end = buf + len, *nl;
	size_t seg;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (p->spoiled) {
		set_err(err, errlen, p->err);
		return p->spoiled;
	}
	if (len > BFS_CTL_SESSION_MAX - p->total) {
		ctl_err(p->err, sizeof(p->err), p->lineno + 1,
			"session over %u bytes", BFS_CTL_SESSION_MAX);
		p->bad[0] = '\0';
		return spoil(p, BFS_ERR_TOOBIG, err, errlen);
	}
	if (!buf && len) {
		ctl_err(p->err, sizeof(p->err), p->lineno + 1, "no data");
		return spoil(p, BFS_ERR_INVAL, err, errlen);
	}
	p->total += len;
	p->pending += len;
	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		seg = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (p->llen + seg > BFS_CTL_LINE_MAX) {
			keep_bad(p, p->line, p->llen, s, seg);
			ctl_err(p->err, sizeof(p->err), p->lineno + 1,
				"line longer than %d bytes", BFS_CTL_LINE_MAX);
			return spoil(p, BFS_ERR_INVAL, err, errlen);
		}
		memcpy(p->line + p->llen, s, seg);
		p->llen += seg;
		if (!nl)
			break;
		s = nl + 1;
		p->lineno++;
		r = ctl_line(p, p->line, p->llen, p->err, sizeof(p->err));
		if (r != 0) {
			keep_bad(p, p->line, p->llen, NULL, 0);
			return spoil(p, r, err, errlen);
		}
		p->llen = 0;
	}
	return 0;
}

int bfs_ctl_parser_end(struct bfs_ctl_parser *p, struct bfs_ctl_changes *out,
		       char *err, size_t errlen)
{
	changes_init(out, p->assignments);
	if (err && errlen)
		err[0] = '\0';
	if (p->spoiled) {
		set_err(err, errlen, p->err);
		return p->spoiled;
	}
	if (p->llen) {
		keep_bad(p, p->line, p->llen, NULL, 0);
		ctl_err(p->err, sizeof(p->err), p->lineno + 1,
			"incomplete last line (no newline at the end)");
		return spoil(p, BFS_ERR_INVAL, err, errlen);
	}
	*out = p->cur;
	changes_init(&p->cur, p->assignments);
	p->pending = 0;
	return 0;
}

/* feed + end of one whole buffer. */
static int parse_whole(int assignments, const char *buf, size_t len,
		       struct bfs_ctl_changes *out, char *err, size_t errlen)
{
	struct bfs_ctl_parser *p = NULL;
	int r;

	changes_init(out, assignments);
	if ((r = bfs_ctl_parser_new(assignments, NULL, NULL, &p)) != 0) {
		set_err(err, errlen, "out of memory");
		return r;
	}
	if ((r = bfs_ctl_parser_feed(p, buf, len, err, errlen)) == 0)
		r = bfs_ctl_parser_end(p, out, err, errlen);
	bfs_ctl_parser_free(p);
	return r;
}

int bfs_ctl_parse_defaults(const char *buf, size_t len,
			   struct bfs_defaults_change *out,
			   char *err, size_t errlen)
{
	struct bfs_ctl_changes c;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = parse_whole(0, buf, len, &c, err, errlen)) == 0) {
		*out = c.defaults;
		memset(&c.defaults, 0, sizeof(c.defaults));
	}
	bfs_ctl_changes_clear(&c);
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

int bfs_ctl_parse_assignments(const char *buf, size_t len,
			      struct bfs_assign_change **out, size_t *n,
			      char *err, size_t errlen)
{
	struct bfs_ctl_changes c;
	struct bfs_assign_change one, *a = NULL;
	size_t pos = 0, cnt = 0, i;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = parse_whole(1, buf, len, &c, err, errlen)) != 0)
		goto out;
	if (c.lines && !(a = calloc(c.lines, sizeof(*a)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	while (cnt < c.lines && bfs_ctl_changes_next(&c, &pos, &one)) {
		a[cnt] = one;
		if (one.bucket && !(a[cnt].bucket = strdup(one.bucket))) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		cnt++;
	}
	*out = a;
	*n = cnt;
	a = NULL;
	r = 0;
out:
	if (a) {
		for (i = 0; i < cnt; i++)
			free(a[i].bucket);
		free(a);
	}
	bfs_ctl_changes_clear(&c);
	return r;
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
