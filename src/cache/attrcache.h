/*
 * attrcache.h - what attrcache.c offers beyond the vfs_int.h basics:
 * etags with the cached attributes, and folder listings with complete
 * attributes (a listing cache plus parallel HEADs for S3 entries that
 * carry no metadata), so `ls -l` of a big folder costs one listing and
 * HEADs in parallel, and nothing again within the TTL.
 *
 * Invalidation: bfs_attr_drop(bucket, key) (vfs_int.h) also drops the
 * cached listings of key's folder and of key as a folder, and the cached
 * data blocks of key (readcache.h); bfs_attr_drop_bucket() all of them for
 * the bucket.  Every change this mount makes already calls one of them.
 */
#ifndef BFS_ATTRCACHE_H
#define BFS_ATTRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "bfs_provider.h"
#include "bfs_route.h"

#define BFS_ATTR_LONG_TTL_MS 30000     /* attributes and listings */
#define BFS_DIR_CACHE_MAX 100000       /* entries of one cached listing */
#define BFS_DIR_HEADS 16               /* HEADs in flight per listing */

/* bfs_attr_put with the object's etag (may be NULL or ""). */
void bfs_attr_put_meta(const char *bucket, const char *key,
		       const struct stat *st, const char *etag);
/*
 * What a HEAD returned for (bucket, key), for the decorator (cached.c):
 * kept in the key's attribute entry beside the stat (and with it while
 * both have the same etag), dropped with it by bfs_attr_drop and its
 * kin, BFS_ATTR_LONG_TTL_MS.  put stores m only if the key's drop
 * generation is still gen, taken by bfs_attr_gen before the HEAD was
 * sent (a change that passed meanwhile wins).  get: 1 and *m filled when
 * fresh, else 0.  Nothing is stored when the caches are off.
 */
uint64_t bfs_attr_gen(const char *bucket, const char *key);
void bfs_attr_meta_put(const char *bucket, const char *key,
		       const struct bfs_meta *m, uint64_t gen);
int bfs_attr_meta_get(const char *bucket, const char *key, struct bfs_meta *m);
/* 1 and the etag when a fresh entry with a known etag exists, else 0. */
int bfs_attr_etag(const char *bucket, const char *key, char *out,
		  size_t outlen);

/* One listed entry: st complete when plus (also stored in the attribute
 * cache), else a placeholder (type, size, and a lookup must fill it). */
typedef int (*bfs_dir_fn)(void *arg, const char *name, const struct stat *st,
			  int plus);

/*
 * Lists the folder prefix ("" or ending in '/') of bucket b, one level:
 * from the listing cache when fresh, else provider list plus parallel
 * HEADs (BFS_DIR_HEADS in flight) of files the listing gave no mode for;
 * then cached for BFS_ATTR_LONG_TTL_MS (listings up to BFS_DIR_CACHE_MAX
 * entries).  With list_metadata = listing there are no HEADs: such files
 * are handed out complete with the attributes a HEAD learned earlier
 * (attribute cache) or else the listing's (regular file, default mode and
 * owner, LastModified); they are not put in the attribute cache, so a
 * lookup after the kernel's entry timeout HEADs them.  fn returning
 * non-zero stops the walk (0 is returned).  0 or BFS_ERR_* of the listing.
 */
int bfs_dir_list(struct bfs_rbucket *b, const char *prefix, bfs_dir_fn fn,
		 void *arg);
/*
 * 1 when the cached listing of (bucket, prefix) is fresh and was walked
 * whole by an earlier bfs_dir_list: what a readdir gave the kernel then is
 * still what it would give now, so opendir may let the kernel keep its
 * cached readdir (keep_cache).  Any drop or expiry makes it 0.
 */
int bfs_dir_kept(const char *bucket, const char *prefix);
/* The list_metadata setting in force for b (bucket's, else global):
 * BFS_LIST_META_HEAD or BFS_LIST_META_LISTING. */
int bfs_dir_list_mode(const struct bfs_rbucket *b);
/* What a folder's record of names says about one of them. */
enum bfs_dir_hint {
	BFS_DIR_UNKNOWN = 0,     /* ask the provider (HEAD key, key/, ...) */
	BFS_DIR_ABSENT,          /* neither key nor anything below key/ */
	BFS_DIR_FILE,            /* an object named key, no folder key/ */
	BFS_DIR_FOLDER           /* a folder key/, no object named key */
};
/*
 * Names known absent, for lookups: the record of key's folder (from a
 * cached listing, bfs_dir_note_empty, or a probe) answers for key's name
 * unless this mount changed that name since (bfs_attr_drop).  When the
 * folder has no fresh record and b is not local, the first lookup in it
 * probes it: the names of one listing request of one page
 * (BFS_LIST_PAGE_KEYS entries) become its record for
 * BFS_ATTR_LONG_TTL_MS.  A cut page knows only names that sort before
 * its last.  Returns an enum bfs_dir_hint, or the probe's retryable
 * BFS_ERR_* (an outage: fail the lookup).
 */
int bfs_dir_lookup(struct bfs_rbucket *b, const char *key);
/* This mount just made folder prefix (ends in '/'), empty. */
void bfs_dir_note_empty(const char *bucket, const char *prefix);
/* Forgets the cached listing of (bucket, prefix). */
void bfs_dir_drop(const char *bucket, const char *prefix);
/*
 * A folder read file after file in listing order (cp -r, tar, rsync):
 * when the cached listing of key's folder shows prev (the file opened
 * before key, same folder) as the file just before key, stores the keys
 * of up to n files listed after key in out (each malloc'd; the caller
 * frees them) and returns how many; else 0.  No provider call.
 */
size_t bfs_dir_next_files(const char *bucket, const char *key,
			  const char *prev, char **out, size_t n);

#endif
