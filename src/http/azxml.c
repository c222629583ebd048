/*
 * azxml.c - Azure Blob listing and block-list bodies parsed with expat
 * (see bfs_azxml.h).
 *
 * How it works: like s3xml.c, one parser tracks the stack of element
 * names; the text of the current element is gathered in a capped buffer
 * reset at each start tag, and at an end tag the element and its parent
 * decide where the text goes.  One record (blob, prefix or block) is
 * filled at a time and handed to the callback when it closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <expat.h>

#include "bfs_azxml.h"
#include "bfs_buf.h"
#include "bfs_error.h"

#define AZX_MAX_DEPTH 16
#define AZX_NAME_MAX 64
#define AZX_TEXT_MAX (16 * 1024)
#define AZX_FIELDS 10

enum { F_NAME, F_ETAG, F_CTYPE, F_MODE, F_UID, F_GID, F_MTIME, F_FOLDER,
       F_NEXT, F_LASTMOD };

struct azx_ctx {
	XML_Parser xp;
	int blocks;                              /* BlockList mode */
	int depth;
	char names[AZX_MAX_DEPTH][AZX_NAME_MAX];
	struct bfs_buf text;
	int err;
	int name_encoded;                        /* current <Name Encoded="true"> */
	/* record */
	char *f[AZX_FIELDS];
	uint64_t size;
	int committed;
	bfs_azxml_blob_fn blob_fn;
	bfs_azxml_block_fn block_fn;
	void *arg;
};

static void azx_fail(struct azx_ctx *c, int err)
{
	if (!c->err)
		c->err = err;
	XML_StopParser(c->xp, XML_FALSE);
}

static void azx_clear(struct azx_ctx *c)
{
	int i;

	for (i = 0; i < AZX_FIELDS; i++) {
		if (i == F_NEXT)
			continue;
		free(c->f[i]);
		c->f[i] = NULL;
	}
	c->size = 0;
}

static int azx_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The current text as a new string, percent-decoded when decode. */
static char *azx_take(struct azx_ctx *c, int decode)
{
	const char *s = c->text.p ? c->text.p : "";
	size_t n = c->text.len, i, o = 0;
	char *out = malloc(n + 1);

	if (!out) {
		azx_fail(c, BFS_ERR_NOMEM);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (decode && s[i] == '%' && i + 2 < n + 0 &&
		    azx_hex(s[i + 1]) >= 0 && azx_hex(s[i + 2]) >= 0) {
			out[o++] = (char)(azx_hex(s[i + 1]) * 16 + azx_hex(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void azx_set(struct azx_ctx *c, int field, int decode)
{
	free(c->f[field]);
	c->f[field] = azx_take(c, decode);
}

static int64_t azx_http_date(const char *s)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm))
		return 0;
	t = timegm(&tm);
	return t == (time_t)-1 ? 0 : (int64_t)t;
}

static void azx_emit_blob(struct azx_ctx *c, int is_prefix)
{
	struct bfs_azxml_blob b;
	const char *et = c->f[F_ETAG] ? c->f[F_ETAG] : "";
	char etag[128];
	size_t n = strlen(et);
	int rc;

	if (!c->f[F_NAME] || !*c->f[F_NAME]) {
		azx_fail(c, BFS_ERR_PROTOCOL);
		return;
	}
	if (n >= 2 && et[0] == '"' && et[n - 1] == '"') {
		et++;
		n -= 2;
	}
	snprintf(etag, sizeof(etag), "%.*s", (int)n, et);
	memset(&b, 0, sizeof(b));
	b.name = c->f[F_NAME];
	b.is_prefix = is_prefix;
	b.size = c->size;
	b.mtime = azx_http_date(c->f[F_LASTMOD]);
	b.etag = etag;
	b.content_type = c->f[F_CTYPE] ? c->f[F_CTYPE] : "";
	b.meta_mode = c->f[F_MODE];
	b.meta_uid = c->f[F_UID];
	b.meta_gid = c->f[F_GID];
	b.meta_mtime = c->f[F_MTIME];
	b.is_folder = c->f[F_FOLDER] && !strcasecmp(c->f[F_FOLDER], "true");
	rc = c->blob_fn ? c->blob_fn(c->arg, &b) : 0;
	if (rc)
		azx_fail(c, rc > 0 ? BFS_AZXML_STOPPED : rc);
	azx_clear(c);
}

static void azx_size(struct azx_ctx *c)
{
	const char *s = c->text.p ? c->text.p : "";
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9') {
		azx_fail(c, BFS_ERR_PROTOCOL);
		return;
	}
	v = strtoull(s, &end, 10);
	if (*end) {
		azx_fail(c, BFS_ERR_PROTOCOL);
		return;
	}
	c->size = v;
}

static void XMLCALL azx_start(void *ud, const XML_Char *name,
			      const XML_Char **atts)
{
	struct azx_ctx *c = ud;
	int i;

	if (c->depth < AZX_MAX_DEPTH)
		snprintf(c->names[c->depth], AZX_NAME_MAX, "%s", name);
	c->depth++;
	bfs_buf_reset(&c->text);
	if (!strcmp(name, "Name")) {
		c->name_encoded = 0;
		for (i = 0; atts && atts[i]; i += 2)
			if (!strcmp(atts[i], "Encoded") && atts[i + 1] &&
			    !strcasecmp(atts[i + 1], "true"))
				c->name_encoded = 1;
	}
	if (c->blocks && !strcmp(name, "CommittedBlocks"))
		c->committed = 1;
	if (c->blocks && !strcmp(name, "UncommittedBlocks"))
		c->committed = 0;
	if (!strcmp(name, "Blob") || !strcmp(name, "BlobPrefix") ||
	    !strcmp(name, "Block"))
		azx_clear(c);
}

static void azx_end_list(struct azx_ctx *c, const char *parent,
			 const char *el)
{
	if (!strcmp(el, "Blob")) {
		azx_emit_blob(c, 0);
	} else if (!strcmp(el, "BlobPrefix")) {
		azx_emit_blob(c, 1);
	} else if (!strcmp(el, "Name") &&
		   (!strcmp(parent, "Blob") || !strcmp(parent, "BlobPrefix"))) {
		azx_set(c, F_NAME, c->name_encoded);
	} else if (!strcmp(el, "NextMarker") &&
		   !strcmp(parent, "EnumerationResults")) {
		azx_set(c, F_NEXT, 0);
	} else if (!strcmp(parent, "Properties")) {
		if (!strcmp(el, "Content-Length"))
			azx_size(c);
		else if (!strcmp(el, "Etag"))
			azx_set(c, F_ETAG, 0);
		else if (!strcmp(el, "Content-Type"))
			azx_set(c, F_CTYPE, 0);
		else if (!strcmp(el, "Last-Modified"))
			azx_set(c, F_LASTMOD, 0);
	} else if (!strcmp(parent, "Metadata")) {
		/* metadata names are case-insensitive on the service */
		if (!strcasecmp(el, "mode"))
			azx_set(c, F_MODE, 0);
		else if (!strcasecmp(el, "uid"))
			azx_set(c, F_UID, 0);
		else if (!strcasecmp(el, "gid"))
			azx_set(c, F_GID, 0);
		else if (!strcasecmp(el, "mtime"))
			azx_set(c, F_MTIME, 0);
		else if (!strcasecmp(el, "hdi_isfolder"))
			azx_set(c, F_FOLDER, 0);
	}
}

static void azx_end_blocks(struct azx_ctx *c, const char *parent,
			   const char *el)
{
	struct bfs_azxml_block b;
	int rc;

	if (!strcmp(el, "Name") && !strcmp(parent, "Block")) {
		azx_set(c, F_NAME, 0);
	} else if (!strcmp(el, "Size") && !strcmp(parent, "Block")) {
		azx_size(c);
	} else if (!strcmp(el, "Block")) {
		if (!c->f[F_NAME]) {
			azx_fail(c, BFS_ERR_PROTOCOL);
			return;
		}
		b.name = c->f[F_NAME];
		b.size = c->size;
		b.committed = c->committed;
		rc = c->block_fn ? c->block_fn(c->arg, &b) : 0;
		if (rc)
			azx_fail(c, rc > 0 ? BFS_AZXML_STOPPED : rc);
		azx_clear(c);
	}
}

static void XMLCALL azx_end(void *ud, const XML_Char *name)
{
	struct azx_ctx *c = ud;
	const char *parent = c->depth >= 2 && c->depth - 2 < AZX_MAX_DEPTH
			     ? c->names[c->depth - 2] : "";

	if (c->depth <= AZX_MAX_DEPTH) {
		if (c->blocks)
			azx_end_blocks(c, parent, name);
		else
			azx_end_list(c, parent, name);
	}
	c->depth--;
	bfs_buf_reset(&c->text);
}

static void XMLCALL azx_text(void *ud, const XML_Char *s, int len)
{
	struct azx_ctx *c = ud;

	if (bfs_buf_add(&c->text, s, (size_t)len) < 0)
		azx_fail(c, BFS_ERR_PROTOCOL);
}

static void XMLCALL azx_doctype(void *ud, const XML_Char *name,
				const XML_Char *sysid, const XML_Char *pubid,
				int has_internal)
{
	(void)name; (void)sysid; (void)pubid; (void)has_internal;
	azx_fail(ud, BFS_ERR_PROTOCOL);
}

static void XMLCALL azx_entity(void *ud, const XML_Char *name, int is_param,
			       const XML_Char *value, int value_len,
			       const XML_Char *base, const XML_Char *sysid,
			       const XML_Char *pubid, const XML_Char *notation)
{
	(void)name; (void)is_param; (void)value; (void)value_len; (void)base;
	(void)sysid; (void)pubid; (void)notation;
	azx_fail(ud, BFS_ERR_PROTOCOL);
}

static int azx_run(struct azx_ctx *c, const char *xml, size_t len)
{
	int rc;

	bfs_buf_init(&c->text, AZX_TEXT_MAX);
	if (!(c->xp = XML_ParserCreate("UTF-8")))
		return BFS_ERR_NOMEM;
	XML_SetUserData(c->xp, c);
	XML_SetElementHandler(c->xp, azx_start, azx_end);
	XML_SetCharacterDataHandler(c->xp, azx_text);
	XML_SetStartDoctypeDeclHandler(c->xp, azx_doctype);
	XML_SetEntityDeclHandler(c->xp, azx_entity);
	if (len > (size_t)0x7fffffff)
		rc = BFS_ERR_PROTOCOL;
	else if (XML_Parse(c->xp, xml, (int)len, 1) == XML_STATUS_ERROR)
		rc = c->err ? c->err : BFS_ERR_PROTOCOL;
	else
		rc = c->err;
	XML_ParserFree(c->xp);
	c->xp = NULL;
	azx_clear(c);
	bfs_buf_free(&c->text);
	return rc;
}

int bfs_azxml_parse_list(const char *xml, size_t len, bfs_azxml_blob_fn fn,
			 void *arg, char **next_marker)
{
	struct azx_ctx c;
	int rc;

	*next_marker = NULL;
	memset(&c, 0, sizeof(c));
	c.blob_fn = fn;
	c.arg = arg;
	rc = azx_run(&c, xml ? xml : "", len);
	if (rc == 0 && c.f[F_NEXT] && *c.f[F_NEXT]) {
		*next_marker = c.f[F_NEXT];
		c.f[F_NEXT] = NULL;
	}
	free(c.f[F_NEXT]);
	return rc;
}

int bfs_azxml_parse_blocks(const char *xml, size_t len, bfs_azxml_block_fn fn,
			   void *arg)
{
	struct azx_ctx c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.blocks = 1;
	c.block_fn = fn;
	c.arg = arg;
	rc = azx_run(&c, xml ? xml : "", len);
	free(c.f[F_NEXT]);
	return rc;
}
