/*
 * bfs_cache.h - the caching layer (src/cache) as the registry and the vfs
 * see it: a provider decorator that wraps the provider of one bucket
 * (src/cache/cached.c), the switch that turns every cache off
 * ([mount] cache = off), and the one HEAD that must reach the server.
 *
 * The cache contents themselves (attributes, listings, names known
 * absent, data blocks) are reached through src/cache/attrcache.h and
 * readcache.h by the vfs.
 */
#ifndef BFS_CACHE_H
#define BFS_CACHE_H

#include "bfs_provider.h"

/*
 * On (default) or off, process-wide; set once at start before the
 * registry opens providers.  Off: the registry does not wrap, the
 * attribute, listing and known-absent caches answer nothing and keep
 * nothing, and reads bypass the block cache.
 */
void bfs_cache_set_enabled(int on);
int bfs_cache_enabled(void);

/*
 * Wraps inner (taken over: closed with the wrapper) in the decorator for
 * bucket (the caches' name for it).  The wrapper's ops table is its own
 * copy: an op the inner provider lacks (NULL) is NULL there too.  Every
 * change that passes through it drops what it changes; head is answered
 * from the attribute cache when fresh.  0, or BFS_ERR_NOMEM (inner is
 * then left to the caller).
 */
int bfs_cache_wrap(struct bfs_provider *inner, const char *bucket,
		   struct bfs_provider **out);
/* 1 when p is a decorator made by bfs_cache_wrap. */
int bfs_cache_is_wrapped(const struct bfs_provider *p);

/*
 * A HEAD that must see the server's current version (an etag check
 * before trusting cached blocks, a conflict check, the version a kept
 * object must still have): goes to the inner provider even when the
 * attribute cache holds the key, and refreshes it.  Same contract as
 * the provider's head; p may be unwrapped.
 */
int bfs_cache_head_fresh(struct bfs_provider *p, const char *key,
			 struct bfs_meta *m);

#endif
