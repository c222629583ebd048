/*
 * strset.c - string set with values by open addressing (bfs_strset.h).
 *
 * Slots are a power of two; a string goes to the first free slot from
 * its FNV-1a hash on (linear probing).  The table doubles before it
 * would be more than half full, so probes stay short and a free slot
 * always ends a search.  Nothing is ever removed (the users build a set,
 * ask it, free it), so there are no tombstones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_strset.h"

#define STRSET_MIN_CAP 16

static uint32_t strset_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* The slot holding s, or the free slot where it would go; cap > 0. */
static size_t strset_probe(const struct bfs_strset_slot *slot, size_t cap,
			   const char *s)
{
	size_t j;

	for (j = strset_hash(s) & (cap - 1); slot[j].s &&
	     strcmp(slot[j].s, s) != 0; j = (j + 1) & (cap - 1))
		;
	return j;
}

/* Doubles the table, moving every string; 0 or BFS_ERR_NOMEM. */
static int strset_grow(struct bfs_strset *ss)
{
	size_t nc = ss->cap ? ss->cap * 2 : STRSET_MIN_CAP, i;
	struct bfs_strset_slot *ns;

	if (nc < ss->cap || !(ns = calloc(nc, sizeof(*ns))))
		return BFS_ERR_NOMEM;
	for (i = 0; i < ss->cap; i++)
		if (ss->slot[i].s)
			ns[strset_probe(ns, nc, ss->slot[i].s)] = ss->slot[i];
	free(ss->slot);
	ss->slot = ns;
	ss->cap = nc;
	return 0;
}

int bfs_strset_add(struct bfs_strset *ss, const char *s, size_t val)
{
	size_t j;
	char *c;
	int r;

	if (ss->cap && ss->slot[strset_probe(ss->slot, ss->cap, s)].s)
		return 0;
	if ((ss->n + 1) * 2 > ss->cap && (r = strset_grow(ss)) != 0)
		return r;
	if (!(c = strdup(s)))
		return BFS_ERR_NOMEM;
	j = strset_probe(ss->slot, ss->cap, s);
	ss->slot[j].s = c;
	ss->slot[j].val = val;
	ss->n++;
	return 1;
}

int bfs_strset_find(const struct bfs_strset *ss, const char *s, size_t *val)
{
	size_t j;

	if (!ss->cap)
		return 0;
	j = strset_probe(ss->slot, ss->cap, s);
	if (!ss->slot[j].s)
		return 0;
	if (val)
		*val = ss->slot[j].val;
	return 1;
}

size_t bfs_strset_count(const struct bfs_strset *ss)
{
	return ss->n;
}

void bfs_strset_free(struct bfs_strset *ss)
{
	size_t i;

	for (i = 0; i < ss->cap; i++)
		free(ss->slot[i].s);
	free(ss->slot);
	ss->slot = NULL;
	ss->cap = 0;
	ss->n = 0;
}
