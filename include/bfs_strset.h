/*
 * bfs_strset.h - a set of strings, each with a size_t value, by open
 * addressing (linear probing, FNV-1a, grown to keep it at most half
 * full).  It owns copies of its strings.  Used where a listing must tell
 * fast whether it holds a name: readdir's dedup of "a" and "a/", the
 * names a cached listing holds (known absent names), and the entry a
 * name has in a listing (known metadata).
 *
 * Not thread-safe: the owner's lock guards it.  The struct is public so
 * it can be embedded; touch its fields only through these functions.
 */
#ifndef BFS_STRSET_H
#define BFS_STRSET_H

#include <stddef.h>

struct bfs_strset_slot {
	char *s;                 /* owned; NULL: free slot */
	size_t val;
};

struct bfs_strset {
	struct bfs_strset_slot *slot;
	size_t cap;              /* 0 or a power of two */
	size_t n;
};

/* An empty set; {0} works too.  No allocation until the first add. */
#define BFS_STRSET_INIT { NULL, 0, 0 }

/*
 * Adds s with value val: 1 when added, 0 when s was there already (its
 * value stays), BFS_ERR_NOMEM (the set is unchanged).
 */
int bfs_strset_add(struct bfs_strset *ss, const char *s, size_t val);
/* 1 when s is in the set (and *val, when val is not NULL), else 0. */
int bfs_strset_find(const struct bfs_strset *ss, const char *s, size_t *val);
/* Number of strings in the set. */
size_t bfs_strset_count(const struct bfs_strset *ss);
/* Frees every string and the table; the set is empty (reusable) after. */
void bfs_strset_free(struct bfs_strset *ss);

#endif
