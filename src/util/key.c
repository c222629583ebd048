/*
 * key.c - key safety rules and path <-> key mapping (see bfs_key.h).
 *
 * Pure functions over byte strings.  A key is split on '/' and every
 * segment must be non-empty, not "." or "..", free of control characters,
 * well-formed UTF-8 and at most BFS_NAME_MAX bytes; the whole key is at
 * most BFS_KEY_MAX bytes, prefix included.  Keys failing these rules are
 * hidden from listings and never produced from a path, so the mount never
 * shows a name the kernel or a shell would interpret differently from the
 * object it stands for.  Syntax errors (BFS_ERR_INVAL) win over length
 * errors (BFS_ERR_NAMETOOLONG) so that a long bad name is reported as bad.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bfs_error.h"
#include "bfs_key.h"

int bfs_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;      /* overlong below U+0800 */
			else if (c == 0xed)
				hi = 0x9f;      /* surrogates U+D800-U+DFFF */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;      /* overlong below U+10000 */
			else if (c == 0xf4)
				hi = 0x8f;      /* above U+10FFFF */
		} else {
			return 0;               /* continuation, C0/C1, F5-FF */
		}
		if (len - i - 1 < n)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return 0;
		i += n + 1;
	}
	return 1;
}

int bfs_key_segment_check(const char *seg, size_t len)
{
	size_t i;

	if (!seg || len == 0)
		return BFS_ERR_INVAL;
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return BFS_ERR_INVAL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (c < 0x20 || c == 0x7f || c == '/')
			return BFS_ERR_INVAL;
	}
	if (!bfs_utf8_valid(seg, len))
		return BFS_ERR_INVAL;
	if (len > BFS_NAME_MAX)
		return BFS_ERR_NAMETOOLONG;
	return 0;
}

/*
 * Checks key[0..len) segment by segment.  The first syntax error wins; a
 * too-long segment is remembered and reported only if nothing is invalid.
 */
static int key_check_len(const char *key, size_t len, int allow_dir_marker)
{
	size_t start = 0, end;
	int toolong = 0, r;

	if (!key || len == 0)
		return BFS_ERR_INVAL;
	if (allow_dir_marker && key[len - 1] == '/')
		len--;
	if (len == 0)
		return BFS_ERR_INVAL;
	while (start <= len) {
		const char *slash = memchr(key + start, '/', len - start);

		end = slash ? (size_t)(slash - key) : len;
		r = bfs_key_segment_check(key + start, end - start);
		if (r == BFS_ERR_NAMETOOLONG)
			toolong = 1;
		else if (r)
			return r;
		start = end + 1;
	}
	if (toolong)
		return BFS_ERR_NAMETOOLONG;
	return 0;
}

int bfs_key_check(const char *key, int allow_dir_marker)
{
	size_t len;
	int r;

	if (!key)
		return BFS_ERR_INVAL;
	len = strlen(key);
	r = key_check_len(key, len, allow_dir_marker);
	if (r == 0 && len > BFS_KEY_MAX)
		r = BFS_ERR_NAMETOOLONG;
	return r;
}

int bfs_key_from_path(const char *prefix, const char *relpath, int dir,
		      char **out)
{
	size_t plen, rlen, total;
	char *key = NULL;
	int r = BFS_ERR_INVAL;

	*out = NULL;
	if (!prefix)
		prefix = "";
	if (!relpath)
		goto out;
	plen = strlen(prefix);
	rlen = strlen(relpath);
	if (rlen == 0) {
		/* The bucket root: just the prefix ("" or "p/"), a listing
		 * prefix in either case. */
		key = strdup(prefix);
		if (!key) {
			r = BFS_ERR_NOMEM;
			goto out;
		}
		*out = key;
		r = 0;
		goto out;
	}
	/* Refuse absurd sizes before allocating: anything over the cap is
	 * too long regardless of content, but a bad name still says EINVAL. */
	total = plen + rlen + (dir ? 1 : 0);
	if (total > BFS_KEY_MAX) {
		r = key_check_len(relpath, rlen, 0);
		if (r == 0)
			r = BFS_ERR_NAMETOOLONG;
		goto out;
	}
	key = malloc(total + 1);
	if (!key) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	memcpy(key, prefix, plen);
	memcpy(key + plen, relpath, rlen);
	if (dir)
		key[plen + rlen] = '/';
	key[total] = '\0';
	r = bfs_key_check(key, dir);
	if (r) {
		free(key);
		goto out;
	}
	*out = key;
	r = 0;
out:
	return r;
}

const char *bfs_key_strip_prefix(const char *prefix, const char *key)
{
	size_t plen;

	if (!key)
		return NULL;
	if (!prefix)
		prefix = "";
	plen = strlen(prefix);
	if (strncmp(key, prefix, plen) != 0)
		return NULL;
	if (bfs_key_check(key + plen, 1) != 0)
		return NULL;
	if (strlen(key) > BFS_KEY_MAX)
		return NULL;
	return key + plen;
}

static int is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int bfs_bucket_name_valid(const char *name)
{
	size_t i;

	if (!name || !is_lower_alnum((unsigned char)name[0]))
		return 0;
	for (i = 1; name[i]; i++) {
		int c = (unsigned char)name[i];

		if (i >= BFS_BUCKET_NAME_MAX)
			return 0;
		if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

int bfs_ctx_id_valid(const char *id)
{
	size_t i;

	if (!id || !id[0])
		return 0;
	for (i = 0; id[i]; i++) {
		int c = (unsigned char)id[i];

		if (i >= BFS_CTX_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static const struct {
	const char *ext;
	const char *type;
} content_types[] = {
	{ "txt", "text/plain" },
	{ "html", "text/html" },
	{ "htm", "text/html" },
	{ "css", "text/css" },
	{ "js", "text/javascript" },
	{ "json", "application/json" },
	{ "xml", "application/xml" },
	{ "pdf", "application/pdf" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "svg", "image/svg+xml" },
	{ "ico", "image/x-icon" },
	{ "mp3", "audio/mpeg" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "ogg", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "tgz", "application/gzip" },
	{ "tar", "application/x-tar" },
	{ "bz2", "application/x-bzip2" },
	{ "xz", "application/x-xz" },
	{ "7z", "application/x-7z-compressed" },
	{ "csv", "text/csv" },
	{ "md", "text/markdown" },
	{ "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "ppt", "application/vnd.ms-powerpoint" },
	{ "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "wasm", "application/wasm" },
	{ "bin", "application/octet-stream" },
};

/*
 * The extension is what follows the last '.' of the last path segment; a
 * name whose only dot is its first character (".bashrc") has none.
 */
const char *bfs_content_type(const char *name)
{
	const char *base, *dot;
	size_t i;

	if (!name)
		goto dflt;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot || dot == base || !dot[1])
		goto dflt;
	for (i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
		if (strcasecmp(dot + 1, content_types[i].ext) == 0)
			return content_types[i].type;
dflt:
	return "application/octet-stream";
}
