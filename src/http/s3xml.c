/*
 * s3xml.c - S3 response bodies parsed with expat (see bfs_s3xml.h).
 *
 * How it works: one expat parser (namespace-aware, so the S3 namespace
 * does not matter) tracks the stack of local element names.  The text of
 * the current element is gathered in a capped buffer that is reset at
 * every start tag; at an end tag the (parent, element) pair decides where
 * the text goes.  Listing mode fills one object / prefix / upload record
 * and calls back when its container closes; reply mode copies the known
 * children of the root into fixed fields.  Any DOCTYPE or entity
 * declaration aborts the parse: S3 never sends one and it is the door to
 * entity-expansion attacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_s3xml.h"

#define S3XML_NS_SEP '|'
#define S3XML_MAX_DEPTH 16
#define S3XML_NAME_MAX 64

enum s3xml_mode { MODE_LIST, MODE_REPLY };

struct s3xml_ctx {
	XML_Parser xp;
	int mode;
	int depth;                               /* open elements */
	char names[S3XML_MAX_DEPTH][S3XML_NAME_MAX];
	struct bfs_buf text;                     /* current element's text */
	size_t fed, max_body;
	int err;                                 /* first error / STOPPED */
	int done;

	/* MODE_LIST */
	struct bfs_s3xml_list_cb cb;
	int url_decoded;
	char *key, *upload_id, *prefix;          /* record being filled */
	uint64_t size;
	int64_t mtime;
	char etag[96];
	uint64_t partno;
	struct bfs_s3xml_page page;

	/* MODE_REPLY */
	struct bfs_s3xml_reply *reply;
};

struct bfs_s3xml_list {
	struct s3xml_ctx c;
};

int bfs_s3xml_parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	time_t t;

	*out = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
			 &sec, &n) != 6 || n != 19)
		return BFS_ERR_INVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || y < 1970)
		return BFS_ERR_INVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return BFS_ERR_INVAL;
	*out = (int64_t)t;
	return 0;
}

static const char *local_name(const char *name)
{
	const char *p = strrchr(name, S3XML_NS_SEP);

	return p ? p + 1 : name;
}

static void ctx_fail(struct s3xml_ctx *c, int err)
{
	if (!c->err)
		c->err = err;
	XML_StopParser(c->xp, XML_FALSE);
}

/* Copies the current text into a fixed field; too long -> TOOBIG. */
static void copy_field(struct s3xml_ctx *c, char *dst, size_t dstlen)
{
	const char *s = bfs_buf_str(&c->text);

	if (strlen(s) >= dstlen) {
		ctx_fail(c, BFS_ERR_TOOBIG);
		return;
	}
	strcpy(dst, s);
}

/* ETag text without its surrounding quotes. */
static void copy_etag(struct s3xml_ctx *c, char *dst, size_t dstlen)
{
	const char *s = bfs_buf_str(&c->text);
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (n >= dstlen) {
		ctx_fail(c, BFS_ERR_TOOBIG);
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}


/*
 * A new string with the current text, percent-decoded when the listing
 * was requested with encoding-type=url ('+' is a space there: S3 encodes
 * like an HTML form).  A decoded NUL makes the key invalid: it is kept as
 * byte 0x01 so that key validation hides it instead of truncating.
 */
static char *take_text(struct s3xml_ctx *c, int decode)
{
	const char *s = bfs_buf_str(&c->text);
	char *out = malloc(strlen(s) + 1), *o;

	if (!out) {
		ctx_fail(c, BFS_ERR_NOMEM);
		return NULL;
	}
	if (!decode) {
		strcpy(out, s);
		return out;
	}
	for (o = out; *s; s++) {
		if (*s == '%' && bfs_hex_value((unsigned char)s[1]) >= 0 &&
		    bfs_hex_value((unsigned char)s[2]) >= 0) {
			*o = (char)(bfs_hex_value((unsigned char)s[1]) * 16 +
				    bfs_hex_value((unsigned char)s[2]));
			if (*o == '\0')
				*o = '\x01';
			o++;
			s += 2;
		} else if (*s == '+') {
			*o++ = ' ';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static void record_clear(struct s3xml_ctx *c)
{
	free(c->key);
	free(c->upload_id);
	free(c->prefix);
	c->key = c->upload_id = c->prefix = NULL;
	c->size = 0;
	c->mtime = 0;
	c->partno = 0;
	c->etag[0] = '\0';
}

static void callback_result(struct s3xml_ctx *c, int rc)
{
	if (rc > 0)
		ctx_fail(c, BFS_S3XML_STOPPED);
	else if (rc < 0)
		ctx_fail(c, rc);
}

static void parse_u64(struct s3xml_ctx *c, uint64_t *out)
{
	const char *s = bfs_buf_str(&c->text);
	char *end = NULL;
	unsigned long long v;

	if (*s < '0' || *s > '9') {
		ctx_fail(c, BFS_ERR_PROTOCOL);
		return;
	}
	v = strtoull(s, &end, 10);
	if (*end) {
		ctx_fail(c, BFS_ERR_PROTOCOL);
		return;
	}
	*out = v;
}

static void list_end(struct s3xml_ctx *c, const char *parent, const char *el)
{
	const char *t = bfs_buf_str(&c->text);
	uint64_t v = 0;
	int rc = 0;

	if (c->depth == 1)
		return;
	if (c->depth == 2 && !strcmp(parent, "Error")) {
		if (!strcmp(el, "Code"))
			copy_field(c, c->page.error_code, sizeof(c->page.error_code));
		return;
	}
	if (c->depth == 2) {
		if (!strcmp(el, "IsTruncated")) {
			c->page.is_truncated = !strcmp(t, "true");
		} else if (!strcmp(el, "KeyCount")) {
			parse_u64(c, &v);
			c->page.key_count = (long)v;
		} else if (!strcmp(el, "NextContinuationToken")) {
			free(c->page.next_token);
			c->page.next_token = take_text(c, 0);
		} else if (!strcmp(el, "NextKeyMarker")) {
			free(c->page.next_key_marker);
			c->page.next_key_marker = take_text(c, c->url_decoded);
		} else if (!strcmp(el, "NextUploadIdMarker")) {
			free(c->page.next_upload_id_marker);
			c->page.next_upload_id_marker = take_text(c, 0);
		} else if (!strcmp(el, "NextPartNumberMarker")) {
			parse_u64(c, &v);
			c->page.next_part_marker = v > 10000 ? 0 : (unsigned)v;
		} else if (!strcmp(el, "Part")) {
			struct bfs_s3xml_part pt;

			if (c->partno < 1 || c->partno > 10000) {
				ctx_fail(c, BFS_ERR_PROTOCOL);
				return;
			}
			pt.number = (unsigned)c->partno;
			pt.size = c->size;
			pt.etag = c->etag;
			pt.mtime = c->mtime;
			if (c->cb.part)
				rc = c->cb.part(c->cb.arg, &pt);
			record_clear(c);
			callback_result(c, rc);
		} else if (!strcmp(el, "Contents")) {
			struct bfs_s3xml_object o;

			if (!c->key) {
				ctx_fail(c, BFS_ERR_PROTOCOL);
				return;
			}
			o.key = c->key;
			o.size = c->size;
			o.mtime = c->mtime;
			o.etag = c->etag;
			if (c->cb.object)
				rc = c->cb.object(c->cb.arg, &o);
			record_clear(c);
			callback_result(c, rc);
		} else if (!strcmp(el, "CommonPrefixes")) {
			if (!c->prefix) {
				ctx_fail(c, BFS_ERR_PROTOCOL);
				return;
			}
			if (c->cb.prefix)
				rc = c->cb.prefix(c->cb.arg, c->prefix);
			record_clear(c);
			callback_result(c, rc);
		} else if (!strcmp(el, "Upload")) {
			struct bfs_s3xml_upload u;

			if (!c->key || !c->upload_id) {
				ctx_fail(c, BFS_ERR_PROTOCOL);
				return;
			}
			u.key = c->key;
			u.upload_id = c->upload_id;
			u.initiated = c->mtime;
			if (c->cb.upload)
				rc = c->cb.upload(c->cb.arg, &u);
			record_clear(c);
			callback_result(c, rc);
		}
		return;
	}
	if (c->depth != 3)
		return;
	if (!strcmp(parent, "Contents") || !strcmp(parent, "Upload") ||
	    !strcmp(parent, "Part")) {
		if (!strcmp(el, "PartNumber")) {
			parse_u64(c, &c->partno);
		} else if (!strcmp(el, "Key")) {
			free(c->key);
			c->key = take_text(c, c->url_decoded);
		} else if (!strcmp(el, "Size")) {
			parse_u64(c, &c->size);
		} else if (!strcmp(el, "LastModified") || !strcmp(el, "Initiated")) {
			if (bfs_s3xml_parse_time(t, &c->mtime) < 0)
				ctx_fail(c, BFS_ERR_PROTOCOL);
		} else if (!strcmp(el, "ETag")) {
			copy_etag(c, c->etag, sizeof(c->etag));
		} else if (!strcmp(el, "UploadId")) {
			free(c->upload_id);
			c->upload_id = take_text(c, 0);
		}
	} else if (!strcmp(parent, "CommonPrefixes") && !strcmp(el, "Prefix")) {
		free(c->prefix);
		c->prefix = take_text(c, c->url_decoded);
	}
}

static void reply_end(struct s3xml_ctx *c, const char *el)
{
	struct bfs_s3xml_reply *r = c->reply;

	if (c->depth != 2)
		return;
	if (!strcmp(el, "Code")) {
		copy_field(c, r->code, sizeof(r->code));
	} else if (!strcmp(el, "Message")) {
		/* informative only: truncated rather than refused */
		snprintf(r->message, sizeof(r->message), "%s", bfs_buf_str(&c->text));
	} else if (!strcmp(el, "RequestId")) {
		copy_field(c, r->request_id, sizeof(r->request_id));
	} else if (!strcmp(el, "UploadId")) {
		copy_field(c, r->upload_id, sizeof(r->upload_id));
	} else if (!strcmp(el, "ETag")) {
		copy_etag(c, r->etag, sizeof(r->etag));
	} else if (!strcmp(el, "LastModified")) {
		if (bfs_s3xml_parse_time(bfs_buf_str(&c->text), &r->last_modified) < 0)
			ctx_fail(c, BFS_ERR_PROTOCOL);
	}
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct s3xml_ctx *c = ud;
	const char *ln = local_name(name);

	(void)atts;
	if (c->depth == 0 && c->mode == MODE_REPLY)
		snprintf(c->reply->root, sizeof(c->reply->root), "%s", ln);
	if (c->depth == 0 && c->mode == MODE_LIST && !strcmp(ln, "Error"))
		c->page.is_error = 1;
	if (c->depth < S3XML_MAX_DEPTH)
		snprintf(c->names[c->depth], S3XML_NAME_MAX, "%s", ln);
	c->depth++;
	bfs_buf_reset(&c->text);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct s3xml_ctx *c = ud;
	const char *parent = c->depth >= 2 && c->depth - 2 < S3XML_MAX_DEPTH
			     ? c->names[c->depth - 2] : "";

	if (c->depth <= S3XML_MAX_DEPTH) {
		if (c->mode == MODE_LIST)
			list_end(c, parent, local_name(name));
		else
			reply_end(c, local_name(name));
	}
	c->depth--;
	bfs_buf_reset(&c->text);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct s3xml_ctx *c = ud;

	if (c->err)
		return;
	if (bfs_buf_add(&c->text, s, (size_t)len) < 0) {
		bfs_buf_init(&c->text, BFS_S3XML_TEXT_MAX);
		ctx_fail(c, BFS_ERR_TOOBIG);
	}
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name,
			       const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	ctx_fail(ud, BFS_ERR_PROTOCOL);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
			      const XML_Char *value, int value_len,
			      const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	ctx_fail(ud, BFS_ERR_PROTOCOL);
}

static int ctx_init(struct s3xml_ctx *c, int mode, size_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->max_body = max_body;
	c->page.key_count = -1;
	bfs_buf_init(&c->text, BFS_S3XML_TEXT_MAX);
	c->xp = XML_ParserCreateNS("UTF-8", S3XML_NS_SEP);
	if (!c->xp)
		return BFS_ERR_NOMEM;
	XML_SetUserData(c->xp, c);
	XML_SetElementHandler(c->xp, on_start, on_end);
	XML_SetCharacterDataHandler(c->xp, on_text);
	XML_SetStartDoctypeDeclHandler(c->xp, on_doctype);
	XML_SetEntityDeclHandler(c->xp, on_entity);
	return 0;
}

static void ctx_free(struct s3xml_ctx *c)
{
	if (c->xp)
		XML_ParserFree(c->xp);
	c->xp = NULL;
	record_clear(c);
	bfs_s3xml_page_clear(&c->page);
	bfs_buf_free(&c->text);
}

/* Feeds len bytes (final: end of document). */
static int ctx_feed(struct s3xml_ctx *c, const char *data, size_t len, int final)
{
	if (c->err)
		return c->err;
	if (c->done)
		return BFS_ERR_INVAL;
	if (len > c->max_body - c->fed) {
		c->err = BFS_ERR_TOOBIG;
		return c->err;
	}
	c->fed += len;
	if (len > (size_t)INT32_MAX) {
		c->err = BFS_ERR_TOOBIG;
		return c->err;
	}
	if (XML_Parse(c->xp, data, (int)len, final) == XML_STATUS_ERROR) {
		if (!c->err)
			c->err = BFS_ERR_PROTOCOL;
		return c->err;
	}
	if (c->err)
		return c->err;
	if (final) {
		c->done = 1;
		if (c->depth != 0)
			return c->err = BFS_ERR_PROTOCOL;
	}
	return 0;
}

struct bfs_s3xml_list *bfs_s3xml_list_new(const struct bfs_s3xml_list_cb *cb,
					  int url_decoded, size_t max_body)
{
	struct bfs_s3xml_list *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (ctx_init(&p->c, MODE_LIST, max_body ? max_body : BFS_S3XML_LIST_MAX) < 0) {
		ctx_free(&p->c);
		free(p);
		return NULL;
	}
	if (cb)
		p->c.cb = *cb;
	p->c.url_decoded = url_decoded;
	return p;
}

int bfs_s3xml_list_feed(struct bfs_s3xml_list *p, const char *data, size_t len)
{
	return ctx_feed(&p->c, data, len, 0);
}

int bfs_s3xml_list_finish(struct bfs_s3xml_list *p, struct bfs_s3xml_page *page)
{
	int r;

	memset(page, 0, sizeof(*page));
	page->key_count = -1;
	if ((r = ctx_feed(&p->c, "", 0, 1)) != 0)
		return r;
	*page = p->c.page;
	memset(&p->c.page, 0, sizeof(p->c.page));
	return 0;
}

void bfs_s3xml_list_free(struct bfs_s3xml_list *p)
{
	if (!p)
		return;
	ctx_free(&p->c);
	free(p);
}

void bfs_s3xml_page_clear(struct bfs_s3xml_page *page)
{
	free(page->next_token);
	free(page->next_key_marker);
	free(page->next_upload_id_marker);
	memset(page, 0, sizeof(*page));
	page->key_count = -1;
}

int bfs_s3xml_parse_list(const char *xml, size_t len,
			 const struct bfs_s3xml_list_cb *cb, int url_decoded,
			 struct bfs_s3xml_page *page)
{
	struct bfs_s3xml_list *p;
	int r;

	memset(page, 0, sizeof(*page));
	page->key_count = -1;
	p = bfs_s3xml_list_new(cb, url_decoded, 0);
	if (!p)
		return BFS_ERR_NOMEM;
	r = bfs_s3xml_list_feed(p, xml, len);
	if (r == 0)
		r = bfs_s3xml_list_finish(p, page);
	bfs_s3xml_list_free(p);
	return r;
}

int bfs_s3xml_parse_reply(const char *xml, size_t len, struct bfs_s3xml_reply *r)
{
	struct s3xml_ctx c;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = ctx_init(&c, MODE_REPLY, BFS_S3XML_REPLY_MAX)) < 0)
		goto out;
	c.reply = r;
	rc = ctx_feed(&c, xml, len, 1);
out:
	ctx_free(&c);
	if (rc < 0)
		memset(r, 0, sizeof(*r));
	return rc;
}

int bfs_s3xml_is_error(const struct bfs_s3xml_reply *r)
{
	return !strcmp(r->root, "Error");
}
