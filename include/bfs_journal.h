/*
 * bfs_journal.h - pure helpers around the upload journal (no I/O): the
 * name a conflicting staged copy is stored under, and the age shown by
 * `bucketctl pending`.  The journal itself lives in the store
 * (bfs_store.h, bfs_store_journal_*).
 */
#ifndef BFS_JOURNAL_H
#define BFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ".conflict-" + YYYYmmddTHHMMSS for years 1000..9999. */
#define BFS_CONFLICT_TAG ".conflict-"
/* Longest extension kept whole when a name is shortened (dot included). */
#define BFS_CONFLICT_EXT_MAX 16

/*
 * The key a staged copy is stored under when the remote object changed
 * since the copy was based on it: "dir/NAME" -> "dir/NAME.conflict-
 * YYYYmmddTHHMMSS" with `when` in UTC, next to the original.
 *
 * key must be a safe file key (bfs_key_check(key, 0)), prefix included,
 * and the result is one too.  When the result would break the key limits
 * (a segment over BFS_NAME_MAX bytes, the key over BFS_KEY_MAX), NAME is
 * shortened: bytes are cut from the end of its stem, at a UTF-8 character
 * boundary, while its extension (the last ".ext" of at most
 * BFS_CONFLICT_EXT_MAX bytes, not a leading dot) and the conflict suffix
 * stay whole, so "long...name.pdf" becomes "long...n.pdf.conflict-...".
 * If not even one byte of the stem fits, the extension is cut too; if no
 * byte of NAME fits (the folder part alone is too long) the result is
 * BFS_ERR_NAMETOOLONG.
 *
 * *out: a new string (caller frees), NULL on failure.  Returns 0,
 * BFS_ERR_INVAL (bad key, unrepresentable time), BFS_ERR_NAMETOOLONG or
 * BFS_ERR_NOMEM.
 */
int bfs_conflict_key(const char *key, time_t when, char **out);

/*
 * An age in seconds as one rounded-down unit: "0s".."59s", "1m".."59m",
 * "1h".."47h", then days "2d"...  Negative ages (clock steps) show "0s".
 * out gets at most len bytes, NUL included.
 */
void bfs_journal_age_str(int64_t seconds, char *out, size_t len);

#endif
