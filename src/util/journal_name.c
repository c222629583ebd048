/*
 * journal_name.c - pure helpers of the upload journal (see bfs_journal.h):
 * the conflict copy's key and the human-readable age of a pending upload.
 *
 * bfs_conflict_key() works on bytes: it splits the key at its last '/',
 * measures how much of the last segment (NAME) fits beside the suffix
 * under both limits (segment and whole key), and when NAME must shrink it
 * cuts the stem before the extension at a UTF-8 boundary.  The result is
 * checked with bfs_key_check() like any key we produce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_journal.h"
#include "bfs_key.h"

/* Largest n <= want such that s[0..n) ends on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t want)
{
	while (want > 0 && ((unsigned char)s[want] & 0xc0) == 0x80)
		want--;
	return want;
}

/* Length of NAME's extension to keep ("." included), 0 for none. */
static size_t ext_len(const char *name, size_t nl)
{
	const char *dot = NULL;
	size_t i;

	for (i = nl; i > 1; i--)
		if (name[i - 1] == '.') {
			dot = name + i - 1;
			break;
		}
	if (!dot || (size_t)(name + nl - dot) > BFS_CONFLICT_EXT_MAX)
		return 0;
	return (size_t)(name + nl - dot);
}

int bfs_conflict_key(const char *key, time_t when, char **out)
{
	char suffix[64];
	const char *slash, *name;
	size_t dl, nl, sl, el, room, stem, total;
	struct tm tm;
	char *k = NULL;
	int r;

	*out = NULL;
	if (!key)
		return BFS_ERR_INVAL;
	r = bfs_key_check(key, 0);
	if (r != 0)
		return r;
	if (!gmtime_r(&when, &tm) ||
	    !strftime(suffix, sizeof(suffix), BFS_CONFLICT_TAG "%Y%m%dT%H%M%S",
		      &tm))
		return BFS_ERR_INVAL;
	slash = strrchr(key, '/');
	name = slash ? slash + 1 : key;
	dl = (size_t)(name - key);
	nl = strlen(name);
	sl = strlen(suffix);
	/* Bytes of NAME that fit beside the suffix under both limits. */
	if (sl >= BFS_NAME_MAX || dl + sl >= BFS_KEY_MAX)
		return BFS_ERR_NAMETOOLONG;
	room = BFS_NAME_MAX - sl;
	if (BFS_KEY_MAX - dl - sl < room)
		room = BFS_KEY_MAX - dl - sl;
	el = 0;
	stem = nl;
	if (nl > room) {
		el = ext_len(name, nl);
		/* Keep the extension only when some of the stem fits too. */
		if (el >= room || utf8_cut(name, room - el) == 0)
			el = 0;
		stem = utf8_cut(name, room - el);
		if (stem == 0)
			return BFS_ERR_NAMETOOLONG;
	}
	total = dl + stem + el + sl;
	k = malloc(total + 1);
	if (!k)
		return BFS_ERR_NOMEM;
	memcpy(k, key, dl + stem);
	if (el)
		memcpy(k + dl + stem, name + nl - el, el);
	memcpy(k + dl + stem + el, suffix, sl + 1);
	r = bfs_key_check(k, 0);
	if (r != 0) {
		free(k);
		return r;
	}
	*out = k;
	return 0;
}

void bfs_journal_age_str(int64_t seconds, char *out, size_t len)
{
	if (!out || len == 0)
		return;
	if (seconds < 60)
		snprintf(out, len, "%llds", (long long)(seconds < 0 ? 0 : seconds));
	else if (seconds < 3600)
		snprintf(out, len, "%lldm", (long long)(seconds / 60));
	else if (seconds < 48 * 3600)
		snprintf(out, len, "%lldh", (long long)(seconds / 3600));
	else
		snprintf(out, len, "%lldd", (long long)(seconds / 86400));
}
