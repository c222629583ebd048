/*
 * readcache.h - the block cache for clean file data (readcache.c).
 *
 * Reads of a file that is not staged go through bfs_rcache_read(): the
 * object is cut into BFS_RC_BLOCK blocks kept in cache_dir/blocks, shared
 * by every handle of the same object version (bucket, key, size, mtime,
 * etag when known), evicted LRU so that the blocks plus the staging files
 * stay within cache_size.  Sequential reads start parallel prefetches of
 * the next blocks on a small worker pool; random reads fetch one block.
 * Fetched blocks are written to their block file (buffered) and served
 * from a bounded pool of reused buffers while recent (readcache.c,
 * "Buffers").
 * Without bfs_rcache_init() (or when no space can be reserved) reads go
 * straight to the provider, uncached.
 */
#ifndef BFS_READCACHE_H
#define BFS_READCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bfs_route.h"

#define BFS_RC_BLOCK (1024u * 1024)   /* bytes per cached block */
#define BFS_RC_WIN_MAX 16             /* blocks prefetched ahead, at most */
#define BFS_RC_WORKERS 6              /* prefetch threads */
/* readcache.c keeps BFS_RC_WIN_MAX + BFS_RC_WORKERS + 4 block buffers at
 * most (26 MiB of the daemon's RSS). */
#define BFS_RC_NEXT_FILES 4           /* files prefetched ahead of a walk */

struct bfs_rc_file;   /* per-handle read state (opaque) */

/*
 * Starts the cache: blocks under cache_dir/blocks (emptied first), bound
 * cache_size bytes minus the staged bytes (bfs_ofile_staged_bytes).  0 or
 * BFS_ERR_*; on an error the cache stays off and reads are uncached.
 */
int bfs_rcache_init(const char *cache_dir, uint64_t cache_size);
/* Stops the workers, deletes every block file.  Safe when never started.
 * Handles still open afterwards read uncached. */
void bfs_rcache_destroy(void);

/*
 * Reads up to len bytes at off of the object (b, key) whose size, mtime
 * and etag ("" when unknown) the caller saw at open; *h is the handle's
 * read state (NULL at first, made here; free with bfs_rcache_close).
 * Returns the byte count (0 at or past size) or a negative BFS_ERR_*:
 * BFS_ERR_PRECONDITION when the object no longer has that etag (every GET
 * carries If-Match; nothing of another version is returned).
 * Thread-safe, also for concurrent reads on one handle.
 */
int bfs_rcache_read(struct bfs_rc_file **h, struct bfs_rbucket *b,
		    const char *key, uint64_t size,
		    const struct timespec *mtime, const char *etag, char *buf,
		    size_t len, uint64_t off);
void bfs_rcache_close(struct bfs_rc_file *h);

/*
 * Queues the first block of (b, key) at the version size/mtime and the
 * cached etag for the prefetch workers, unless it is cached or loading,
 * the etag is not known, the cache is off, or it has no room without
 * evicting: a file a reader is about to open (sequential walk of a
 * folder, see fs.c) then has its first block in the cache when its first
 * read comes.  Never blocks on the provider.
 */
void bfs_rcache_prefetch(struct bfs_rbucket *b, const char *key,
			 uint64_t size, const struct timespec *mtime);

/* This mount changed (bucket, key) / anything in bucket: cached blocks of
 * it are dropped (handles open on the old version read uncached). */
void bfs_rcache_drop(const char *bucket, const char *key);
void bfs_rcache_drop_bucket(const char *bucket);

/* Evicts blocks until blocks + staged bytes fit cache_size again (call
 * after the staging budget grew). */
void bfs_rcache_trim(void);
/* The cache disk is full (a staged write got ENOSPC): evicts cached
 * blocks, least recently used first, until bytes are freed; returns the
 * bytes freed (0: nothing to give). */
uint64_t bfs_rcache_shed(uint64_t bytes);
/* Bytes of blocks held now (tests, .metrics). */
uint64_t bfs_rcache_used(void);

#endif
