/*
 * attrcache.c - attribute and listing caches (sshfs cache.c idea).
 *
 * Attributes: readdir feeds the stat (and etag) of every listed entry
 * here, and getattr of a file found by HEAD stores it, so `ls -l` of a big
 * folder costs one listing instead of one HEAD per entry.  Entries live
 * BFS_ATTR_LONG_TTL_MS (other clients' changes show after that); this
 * mount's own changes drop them at once.  Keyed by "BUCKET/KEY" in a
 * chained hash table guarded by attr_mu; when BFS_ATTR_MAX entries are
 * reached the whole table is emptied.
 *
 * Listings (bfs_dir_list): one level of a folder as a compact entry array
 * (names in one arena).  S3 listings carry no mode, owner or type (a
 * symlink looks like a file), so files listed without x-amz-meta-mode are
 * first completed from SQLite (the file index and earlier HEAD results,
 * only while the listing shows the recorded etag, size and LastModified:
 * see known_from_store), the rest HEADed, BFS_DIR_HEADS at a time by
 * the caller and jobs of the I/O pool (bfs_pool.h), before the entries are handed out (or, with
 * list_metadata = listing, handed out with the listing's attributes).
 * A listing is cached (refcounted snapshot, dir_mu) for
 * BFS_ATTR_LONG_TTL_MS; folders without a marker stay placeholders,
 * resolved by lookup as before.
 *
 * Locks: attr_mu and dir_mu are leaves and never held together or across
 * a provider call; drops call into readcache.c after releasing them.
 * attr_mu is also taken inside the store lock (known_row, a callback of
 * bfs_store_meta_folder).  A listing under construction is cached only
 * if its own folder (or bucket) saw no drop meanwhile (gen_dir,
 * gen_bucket).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_lock.h"
#include "bfs_log.h"
#include "bfs_metrics.h"
#include "bfs_pool.h"
#include "bfs_strset.h"
#include "attrcache.h"
#include "vfs_int.h"
#include "readcache.h"

#define ATTR_SLOTS 16384

struct attr_entry {
	struct attr_entry *next;
	int64_t expires_ms;      /* of st */
	int64_t meta_expires_ms; /* of the HEAD's metadata */
	struct stat st;
	unsigned has_st : 1;     /* st was put (else only a HEAD's metadata) */
	size_t blen;             /* length of the bucket part of k */
	size_t klen;             /* length of "BUCKET/KEY" */
	size_t meta_off;         /* offset in k of the metadata, 0: none */
	char k[];                /* "BUCKET/KEY\0ETAG\0", then (aligned) the
				  * fields of a bfs_meta before xattr and its
				  * xattr string (bfs_attr_meta_put) */
};

/* Bytes of the metadata record of m (the xattr string cut to its length). */
static size_t meta_rec_len(const struct bfs_meta *m)
{
	return offsetof(struct bfs_meta, xattr) + strlen(m->xattr) + 1;
}

static pthread_mutex_t attr_mu = PTHREAD_MUTEX_INITIALIZER;
static struct attr_entry *attr_slots[ATTR_SLOTS];   /* attr_mu */
static size_t attr_count;                           /* attr_mu */
/* Drop generations of the attribute entries, per slot (bfs_attr_drop)
 * and per bucket (bfs_attr_drop_bucket; ATTR_BGEN_SLOTS by name hash): a
 * HEAD's answer is stored only if neither moved while it was on its way
 * (bfs_attr_gen, bfs_attr_meta_put), so a change passing meanwhile is
 * never hidden by the older answer. */
#define ATTR_BGEN_SLOTS 256
static uint64_t attr_gen_key[ATTR_SLOTS];           /* attr_mu */
static uint64_t attr_gen_bucket[ATTR_BGEN_SLOTS];   /* attr_mu */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned attr_hash(const char *bucket, const char *key)
{
	return bfs_key_hash(bucket, key) % ATTR_SLOTS;
}

static int attr_match(const struct attr_entry *e, const char *bucket,
		      const char *key)
{
	size_t bl = strlen(bucket);

	return e->blen == bl && memcmp(e->k, bucket, bl) == 0 &&
	       e->k[bl] == '/' && strcmp(e->k + bl + 1, key) == 0;
}

static void attr_clear_locked(void)
{
	struct attr_entry *e, *n;
	size_t i;

	bfs_lock_assert_held(&attr_mu);
	for (i = 0; i < ATTR_SLOTS; i++) {
		for (e = attr_slots[i]; e; e = n) {
			n = e->next;
			free(e);
		}
		attr_slots[i] = NULL;
	}
	attr_count = 0;
}

static struct timespec attr_start;   /* placeholder times; set at init */

void bfs_attr_init(void)
{
	clock_gettime(CLOCK_REALTIME, &attr_start);
}

static void dir_clear(void);

void bfs_attr_destroy(void)
{
	pthread_mutex_lock(&attr_mu);
	attr_clear_locked();
	pthread_mutex_unlock(&attr_mu);
	dir_clear();
	bfs_rcache_destroy();
}

void bfs_attr_put(const char *bucket, const char *key, const struct stat *st)
{
	bfs_attr_put_meta(bucket, key, st, NULL);
}

/*
 * Stores the stat (st non-NULL) or a HEAD's metadata (m non-NULL) of
 * (bucket, key) with etag.  The other half of an entry already there is
 * kept when it has the same non-empty etag (the same version), else it
 * goes.  Nothing when the caches are off.
 */
static unsigned attr_bgen_slot(const char *bucket)
{
	return bfs_fnv1a(BFS_FNV_INIT, bucket) % ATTR_BGEN_SLOTS;
}

/* Both drop generations of (bucket, key); attr_mu held.  Each only grows,
 * so the sum moves when either does. */
static uint64_t attr_gen_locked(const char *bucket, const char *key)
{
	bfs_lock_assert_held(&attr_mu);
	return attr_gen_key[attr_hash(bucket, key)] +
	       attr_gen_bucket[attr_bgen_slot(bucket)];
}

uint64_t bfs_attr_gen(const char *bucket, const char *key)
{
	uint64_t g;

	pthread_mutex_lock(&attr_mu);
	g = attr_gen_locked(bucket, key);
	pthread_mutex_unlock(&attr_mu);
	return g;
}

/* gen: with m, the drop generation taken before the HEAD was sent. */
static void attr_store(const char *bucket, const char *key,
		       const struct stat *st, const char *etag,
		       const struct bfs_meta *m, uint64_t gen)
{
	struct attr_entry *e = NULL, *old = NULL, **pp, **at = NULL;
	size_t bl = strlen(bucket), kl = strlen(key);
	size_t el = etag ? strlen(etag) : 0, base, ml = 0;
	const void *mrec = NULL;
	unsigned h = attr_hash(bucket, key);
	int64_t now = now_ms();
	int same;

	if (!bfs_cache_enabled())
		return;
	pthread_mutex_lock(&attr_mu);
	if (m && attr_gen_locked(bucket, key) != gen)
		goto out;       /* dropped while the HEAD was on its way */
	for (pp = &attr_slots[h]; *pp; pp = &(*pp)->next) {
		if (attr_match(*pp, bucket, key)) {
			old = *pp;
			at = pp;
			break;
		}
	}
	same = old && el && !strcmp(old->k + old->klen + 1, etag);
	base = (bl + kl + el + 3 + 7) & ~(size_t)7;
	if (m) {
		ml = meta_rec_len(m);
		mrec = m;
	} else if (same && old->meta_off && old->meta_expires_ms > now) {
		ml = meta_rec_len((const struct bfs_meta *)(old->k + old->meta_off));
		mrec = old->k + old->meta_off;
	}
	if (!(e = malloc(sizeof(*e) + base + ml)))
		goto out;
	e->blen = bl;
	e->klen = bl + 1 + kl;
	memcpy(e->k, bucket, bl);
	e->k[bl] = '/';
	memcpy(e->k + bl + 1, key, kl + 1);
	memcpy(e->k + e->klen + 1, etag ? etag : "", el + 1);
	e->meta_off = 0;
	e->has_st = 0;
	e->expires_ms = e->meta_expires_ms = now + BFS_ATTR_LONG_TTL_MS;
	if (st) {
		e->st = *st;
		e->has_st = 1;
	} else if (same && old->has_st) {
		e->st = old->st;
		e->has_st = 1;
		e->expires_ms = old->expires_ms;
	}
	if (mrec) {
		e->meta_off = base;
		memcpy(e->k + base, mrec, ml);
		if (!m)
			e->meta_expires_ms = old->meta_expires_ms;
	}
	if (old) {
		e->next = old->next;
		*at = e;
		free(old);
		goto out;
	}
	if (attr_count >= BFS_ATTR_MAX)
		attr_clear_locked();
	e->next = attr_slots[h];
	attr_slots[h] = e;
	attr_count++;
out:
	pthread_mutex_unlock(&attr_mu);
}

void bfs_attr_put_meta(const char *bucket, const char *key,
		       const struct stat *st, const char *etag)
{
	attr_store(bucket, key, st, etag, NULL, 0);
}

void bfs_attr_meta_put(const char *bucket, const char *key,
		       const struct bfs_meta *m, uint64_t gen)
{
	attr_store(bucket, key, NULL, m->etag, m, gen);
}

/* The entry of (bucket, key), fresh or not, or NULL; attr_mu held. */
static struct attr_entry *attr_find_locked(const char *bucket,
					   const char *key)
{
	struct attr_entry *e;

	bfs_lock_assert_held(&attr_mu);
	for (e = attr_slots[attr_hash(bucket, key)]; e; e = e->next)
		if (attr_match(e, bucket, key))
			return e;
	return NULL;
}

int bfs_attr_meta_get(const char *bucket, const char *key, struct bfs_meta *m)
{
	struct attr_entry *e;
	int found = 0;

	pthread_mutex_lock(&attr_mu);
	if ((e = attr_find_locked(bucket, key)) != NULL && e->meta_off &&
	    e->meta_expires_ms > now_ms()) {
		const struct bfs_meta *r =
			(const struct bfs_meta *)(e->k + e->meta_off);

		memcpy(m, r, offsetof(struct bfs_meta, xattr));
		strcpy(m->xattr, r->xattr);
		found = 1;
	}
	pthread_mutex_unlock(&attr_mu);
	return found;
}

static int attr_get(const char *bucket, const char *key, struct stat *st,
		    int count);

int bfs_attr_get(const char *bucket, const char *key, struct stat *st)
{
	return attr_get(bucket, key, st, 1);
}

/* bfs_attr_get; count: the lookup counts in the cache metrics. */
static int attr_get(const char *bucket, const char *key, struct stat *st,
		    int count)
{
	struct attr_entry *e, **pp;
	unsigned h = attr_hash(bucket, key);
	int found = 0;

	pthread_mutex_lock(&attr_mu);
	for (pp = &attr_slots[h]; (e = *pp) != NULL; pp = &e->next) {
		if (!attr_match(e, bucket, key))
			continue;
		if (!e->has_st) {
			break;   /* only a HEAD's metadata (the decorator's) */
		} else if (e->expires_ms > now_ms()) {
			*st = e->st;
			found = 1;
		} else {
			*pp = e->next;
			free(e);
			attr_count--;
		}
		break;
	}
	pthread_mutex_unlock(&attr_mu);
	if (count)
		bfs_metrics_cache(found);
	return found;
}

int bfs_attr_etag(const char *bucket, const char *key, char *out,
		  size_t outlen)
{
	struct attr_entry *e;
	const char *et;
	int found = 0;

	pthread_mutex_lock(&attr_mu);
	if ((e = attr_find_locked(bucket, key)) != NULL) {
		et = e->k + e->klen + 1;
		if (e->expires_ms > now_ms() && et[0] && strlen(et) < outlen) {
			memcpy(out, et, strlen(et) + 1);
			found = 1;
		}
	}
	pthread_mutex_unlock(&attr_mu);
	return found;
}

static void dir_drop_bucket(const char *bucket);
static void drop_dirs_of(const char *bucket, const char *key);

void bfs_attr_drop(const char *bucket, const char *key)
{
	struct attr_entry *e, **pp;
	unsigned h = attr_hash(bucket, key);

	pthread_mutex_lock(&attr_mu);
	attr_gen_key[h]++;
	for (pp = &attr_slots[h]; (e = *pp) != NULL; pp = &e->next) {
		if (attr_match(e, bucket, key)) {
			*pp = e->next;
			free(e);
			attr_count--;
			break;
		}
	}
	pthread_mutex_unlock(&attr_mu);
	drop_dirs_of(bucket, key);
	bfs_rcache_drop(bucket, key);
}

void bfs_attr_drop_bucket(const char *bucket)
{
	struct attr_entry *e, **pp;
	size_t i, bl = strlen(bucket);

	pthread_mutex_lock(&attr_mu);
	attr_gen_bucket[attr_bgen_slot(bucket)]++;
	for (i = 0; i < ATTR_SLOTS; i++) {
		pp = &attr_slots[i];
		while ((e = *pp) != NULL) {
			if (e->blen == bl && memcmp(e->k, bucket, bl) == 0) {
				*pp = e->next;
				free(e);
				attr_count--;
			} else {
				pp = &e->next;
			}
		}
	}
	pthread_mutex_unlock(&attr_mu);
	dir_drop_bucket(bucket);
	bfs_rcache_drop_bucket(bucket);
}

/* ---- listings ---- */

#define DIR_SLOTS 256
#define DIR_TOTAL_MAX 1000000        /* entries over every cached listing */
#define DIR_LIST_MAX (10u * 1000 * 1000)
#define DIR_NAMES_MAX (1024u * 1024 * 1024)

/* One listed entry, compact (st is rebuilt when handed out). */
struct dent {
	size_t name;             /* offset in the names arena */
	size_t etag;             /* the listing's etag, in the arena too */
	uint64_t size;
	int64_t mtime;
	long mtime_nsec;
	int64_t lm;              /* the listing's LastModified */
	uint32_t mode, uid, gid;
	unsigned is_dir : 1, has_meta : 1, has_mode : 1, has_uid : 1,
		 has_gid : 1, plus : 1, need_head : 1,
		 record : 1,     /* HEADed, same etag and size: keep it */
		 record_lm : 1;  /* index row matched: record lm with it */
};

struct dir_snap {
	struct dir_snap *next;   /* (dir_mu) hash chain; NULL once detached */
	int refs;                /* (dir_mu) readers + 1 while in the table */
	int in_table;            /* (dir_mu) */
	int served;              /* (dir_mu) walked whole by a readdir: the
				  * kernel's readdir cache may hold it */
	int64_t expires_ms;
	char *bucket, *prefix;
	struct dent *e;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
	size_t hint;             /* (dir_mu) entry bfs_dir_next_files found
				  * last: a walk asks for the next one */
};

static pthread_mutex_t dir_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dir_snap *dir_slots[DIR_SLOTS];     /* dir_mu */
static size_t dir_total;                          /* dir_mu: entries */
/*
 * Drop generations: a listing is cached only if nothing dropped its
 * folder while it was being made (it may predate that change).  Counted
 * per (bucket, folder) and per bucket (bfs_attr_drop_bucket), in small
 * hash tables: a collision only costs a listing that is not cached, and
 * writes in one folder never keep another folder's listing out.
 */
#define GEN_SLOTS 4096
static uint64_t gen_dir[GEN_SLOTS];               /* dir_mu */
static uint64_t gen_bucket[GEN_SLOTS];            /* dir_mu */

struct dir_gen {
	uint64_t dir, bucket;
};

static unsigned gen_dir_slot(const char *bucket, const char *prefix)
{
	return bfs_key_hash(bucket, prefix) % GEN_SLOTS;
}

static unsigned gen_bucket_slot(const char *bucket)
{
	return bfs_fnv1a(BFS_FNV_INIT, bucket) % GEN_SLOTS;
}

static unsigned dir_hash(const char *bucket, const char *prefix)
{
	return attr_hash(bucket, prefix) % DIR_SLOTS;
}

static void snap_free(struct dir_snap *s)
{
	if (!s)
		return;
	free(s->bucket);
	free(s->prefix);
	free(s->e);
	free(s->names);
	free(s);
}

/* Detaches s from the table; dir_mu held. */
static void snap_detach_locked(struct dir_snap *s, struct dir_snap **pp)
{
	bfs_lock_assert_held(&dir_mu);
	*pp = s->next;
	s->next = NULL;
	s->in_table = 0;
	dir_total -= s->n;
	if (--s->refs == 0)
		snap_free(s);
}

static void snap_unref(struct dir_snap *s)
{
	pthread_mutex_lock(&dir_mu);
	if (--s->refs == 0)
		snap_free(s);
	pthread_mutex_unlock(&dir_mu);
}

void bfs_dir_drop(const char *bucket, const char *prefix)
{
	struct dir_snap *s, **pp;

	pthread_mutex_lock(&dir_mu);
	gen_dir[gen_dir_slot(bucket, prefix)]++;
	for (pp = &dir_slots[dir_hash(bucket, prefix)]; (s = *pp) != NULL;
	     pp = &s->next) {
		if (strcmp(s->bucket, bucket) == 0 && strcmp(s->prefix, prefix) == 0) {
			snap_detach_locked(s, pp);
			break;
		}
	}
	pthread_mutex_unlock(&dir_mu);
}

/*
 * Names known absent (lookups answered ENOENT without a request).  A
 * record says "folder prefix held exactly these names when the record was
 * made": from a listing when it is cached, empty from this mount's own
 * mkdir, or from a probe (bfs_dir_lookup: the first page of the folder's
 * listing, made on the first lookup in a folder that has no record).
 * Names shown as objects are in present, names shown as folders in dirs,
 * so a lookup knows which of HEAD key and HEAD key/ can answer.  A probe
 * whose page was cut (more than BFS_LIST_PAGE_KEYS entries) knows only the
 * names that sort before the last one it got (upto).  Unlike the listing,
 * a record survives this mount's changes in the folder: each
 * bfs_attr_drop of a key marks its name touched (never answered from the
 * record again) instead of dropping the record, so a run of creates in
 * one folder costs no lookups; a probe's record is in the table, filling,
 * before its listing is sent, so a change made while the listing is on
 * its way is marked too.  Same TTL as listings, counted from before the
 * listing, same dir_mu.
 */
#define NEG_SLOTS 256
#define NEG_MAX 1024                 /* records; all dropped beyond */

struct neg_dir {
	struct neg_dir *next;            /* dir_mu */
	char *bucket, *prefix;
	int64_t expires_ms;
	uint64_t serial;                 /* a probe finds its own record */
	int filling;                     /* (dir_mu) probe on its way: only
					  * touched names count yet */
	char *upto;                      /* (dir_mu) NULL: every name of the
					  * folder is known; else only ASCII
					  * names whose "name/" sorts before
					  * it (a cut page) */
	struct bfs_strset present, dirs, touched;   /* dir_mu */
};

static struct neg_dir *neg_slots[NEG_SLOTS];      /* dir_mu */
static size_t neg_count;                          /* dir_mu */
static uint64_t neg_serial;                       /* dir_mu */

static void neg_free(struct neg_dir *n)
{
	if (!n)
		return;
	bfs_strset_free(&n->present);
	bfs_strset_free(&n->dirs);
	bfs_strset_free(&n->touched);
	free(n->upto);
	free(n->bucket);
	free(n->prefix);
	free(n);
}

/* The record of (bucket, prefix) and its link, or NULL; dir_mu held. */
static struct neg_dir **neg_find_locked(const char *bucket, const char *prefix)
{
	struct neg_dir **pp;

	bfs_lock_assert_held(&dir_mu);
	for (pp = &neg_slots[attr_hash(bucket, prefix) % NEG_SLOTS]; *pp;
	     pp = &(*pp)->next)
		if (!strcmp((*pp)->bucket, bucket) && !strcmp((*pp)->prefix, prefix))
			return pp;
	return NULL;
}

static void neg_unlink_locked(struct neg_dir **pp)
{
	struct neg_dir *n = *pp;

	bfs_lock_assert_held(&dir_mu);
	*pp = n->next;
	neg_count--;
	neg_free(n);
}

/* Puts n in the table, replacing the record of its folder; dir_mu held. */
static void neg_insert_locked(struct neg_dir *n)
{
	struct neg_dir **pp = neg_find_locked(n->bucket, n->prefix);
	size_t i;

	bfs_lock_assert_held(&dir_mu);
	if (pp)
		neg_unlink_locked(pp);
	if (neg_count >= NEG_MAX)
		for (i = 0; i < NEG_SLOTS; i++)
			while (neg_slots[i])
				neg_unlink_locked(&neg_slots[i]);
	pp = &neg_slots[attr_hash(n->bucket, n->prefix) % NEG_SLOTS];
	n->next = *pp;
	*pp = n;
	neg_count++;
}

static struct neg_dir *neg_new(const char *bucket, const char *prefix)
{
	struct neg_dir *n = calloc(1, sizeof(*n));

	if (!n || !(n->bucket = strdup(bucket)) || !(n->prefix = strdup(prefix))) {
		neg_free(n);
		return NULL;
	}
	n->expires_ms = now_ms() + BFS_ATTR_LONG_TTL_MS;
	return n;
}

void bfs_dir_note_empty(const char *bucket, const char *prefix)
{
	struct neg_dir *n;

	if (!bfs_cache_enabled() || !(n = neg_new(bucket, prefix)))
		return;
	pthread_mutex_lock(&dir_mu);
	neg_insert_locked(n);
	pthread_mutex_unlock(&dir_mu);
}


/* name of folder prefix changed here: never answer it from the record
 * (a record that cannot remember that is dropped); dir_mu held. */
static void neg_touch_locked(const char *bucket, const char *prefix,
			     const char *name)
{
	struct neg_dir **pp = neg_find_locked(bucket, prefix);

	bfs_lock_assert_held(&dir_mu);
	if (pp && bfs_strset_add(&(*pp)->touched, name, 0) < 0)
		neg_unlink_locked(pp);
}

static void neg_drop_locked(const char *bucket, const char *prefix)
{
	struct neg_dir **pp = neg_find_locked(bucket, prefix);

	bfs_lock_assert_held(&dir_mu);
	if (pp)
		neg_unlink_locked(pp);
}

static void neg_drop_bucket_locked(const char *bucket)
{
	struct neg_dir **pp;
	size_t i;

	bfs_lock_assert_held(&dir_mu);
	for (i = 0; i < NEG_SLOTS; i++) {
		pp = &neg_slots[i];
		while (*pp) {
			if (!bucket || !strcmp((*pp)->bucket, bucket))
				neg_unlink_locked(pp);
			else
				pp = &(*pp)->next;
		}
	}
}

static void dir_drop_bucket(const char *bucket)
{
	struct dir_snap *s, **pp;
	size_t i;

	pthread_mutex_lock(&dir_mu);
	gen_bucket[gen_bucket_slot(bucket)]++;
	neg_drop_bucket_locked(bucket);
	for (i = 0; i < DIR_SLOTS; i++) {
		pp = &dir_slots[i];
		while ((s = *pp) != NULL) {
			if (strcmp(s->bucket, bucket) == 0)
				snap_detach_locked(s, pp);
			else
				pp = &s->next;
		}
	}
	pthread_mutex_unlock(&dir_mu);
}

static void dir_clear(void)
{
	size_t i;

	pthread_mutex_lock(&dir_mu);
	neg_drop_bucket_locked(NULL);
	for (i = 0; i < DIR_SLOTS; i++)
		while (dir_slots[i])
			snap_detach_locked(dir_slots[i], &dir_slots[i]);
	pthread_mutex_unlock(&dir_mu);
}

/* key changed: its folder's listing and its own (as a folder) are stale. */
static void drop_dirs_of(const char *bucket, const char *key)
{
	const char *slash = strrchr(key, '/');
	size_t kl = strlen(key), pl;
	char *tmp;

	if (!(tmp = malloc(kl + 2)))
		return;
	/* "a/b" -> "a/"; "a/b/" (a folder key) -> "a/" too. */
	pl = 0;
	if (kl && key[kl - 1] == '/') {
		const char *p = key + kl - 1;

		while (p > key && p[-1] != '/')
			p--;
		pl = (size_t)(p - key);
	} else if (slash) {
		pl = (size_t)(slash - key) + 1;
	}
	memcpy(tmp, key, pl);
	tmp[pl] = '\0';
	bfs_dir_drop(bucket, tmp);
	{
		/* the name in that folder: "a/b" and "a/b/" are both "b" */
		size_t nl = kl - pl - (kl && key[kl - 1] == '/' ? 1 : 0);
		char *name = strndup(key + pl, nl);

		pthread_mutex_lock(&dir_mu);
		if (name)
			neg_touch_locked(bucket, tmp, name);
		else
			neg_drop_locked(bucket, tmp);
		pthread_mutex_unlock(&dir_mu);
		free(name);
	}
	memcpy(tmp, key, kl + 1);
	if (kl && key[kl - 1] != '/') {
		tmp[kl] = '/';
		tmp[kl + 1] = '\0';
	}
	bfs_dir_drop(bucket, tmp);
	pthread_mutex_lock(&dir_mu);
	neg_drop_locked(bucket, tmp);
	pthread_mutex_unlock(&dir_mu);
	free(tmp);
}

/* +1 ref on the fresh cached listing of (bucket, prefix), or NULL. */
static struct dir_snap *snap_get(const char *bucket, const char *prefix)
{
	struct dir_snap *s, **pp;

	pthread_mutex_lock(&dir_mu);
	for (pp = &dir_slots[dir_hash(bucket, prefix)]; (s = *pp) != NULL;
	     pp = &s->next) {
		if (strcmp(s->bucket, bucket) != 0 || strcmp(s->prefix, prefix) != 0)
			continue;
		if (s->expires_ms > now_ms()) {
			s->refs++;
		} else {
			snap_detach_locked(s, pp);
			s = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&dir_mu);
	return s;
}

/* The drop generations of folder prefix of bucket now; dir_mu held. */
static struct dir_gen dir_gen_locked(const char *bucket, const char *prefix)
{
	struct dir_gen g;

	bfs_lock_assert_held(&dir_mu);
	g.dir = gen_dir[gen_dir_slot(bucket, prefix)];
	g.bucket = gen_bucket[gen_bucket_slot(bucket)];
	return g;
}

static struct dir_gen dir_gen_now(const char *bucket, const char *prefix)
{
	struct dir_gen g;

	pthread_mutex_lock(&dir_mu);
	g = dir_gen_locked(bucket, prefix);
	pthread_mutex_unlock(&dir_mu);
	return g;
}

/*
 * The names of listing s into record n (not in the table yet): objects
 * in present (a folder entry with metadata is an object of that very
 * name too: an Azure folder blob), folders in dirs.  0 or BFS_ERR_NOMEM.
 */
static int neg_add_names(struct neg_dir *n, const struct dir_snap *s)
{
	size_t i;
	int r;

	for (i = 0; i < s->n; i++) {
		const struct dent *d = &s->e[i];
		const char *name = s->names + d->name;

		if ((!d->is_dir || d->has_meta) &&
		    (r = bfs_strset_add(&n->present, name, 0)) < 0)
			return r;
		if (d->is_dir && (r = bfs_strset_add(&n->dirs, name, 0)) < 0)
			return r;
	}
	return 0;
}

/*
 * Puts s in the table (replacing an older listing of the same folder),
 * unless its folder (or bucket) was dropped since gen (when the listing
 * started): it may predate that change.
 */
static void snap_insert(struct dir_snap *s, struct dir_gen gen)
{
	struct dir_gen now;
	struct dir_snap *o, **pp;
	struct neg_dir *neg;
	size_t i;

	/* the names it holds, for lookups of names it does not hold */
	if ((neg = neg_new(s->bucket, s->prefix)) != NULL &&
	    neg_add_names(neg, s) < 0) {
		neg_free(neg);
		neg = NULL;
	}
	pthread_mutex_lock(&dir_mu);
	now = dir_gen_locked(s->bucket, s->prefix);
	if (now.dir != gen.dir || now.bucket != gen.bucket) {
		pthread_mutex_unlock(&dir_mu);
		neg_free(neg);
		return;
	}
	for (pp = &dir_slots[dir_hash(s->bucket, s->prefix)]; (o = *pp) != NULL;
	     pp = &o->next) {
		if (strcmp(o->bucket, s->bucket) == 0 &&
		    strcmp(o->prefix, s->prefix) == 0) {
			snap_detach_locked(o, pp);
			break;
		}
	}
	if (dir_total + s->n > DIR_TOTAL_MAX) {
		for (i = 0; i < DIR_SLOTS; i++)
			while (dir_slots[i])
				snap_detach_locked(dir_slots[i], &dir_slots[i]);
	}
	s->expires_ms = now_ms() + BFS_ATTR_LONG_TTL_MS;
	if (neg) {
		neg->expires_ms = s->expires_ms;
		neg_insert_locked(neg);
		neg = NULL;
	}
	s->refs++;
	s->in_table = 1;
	s->next = dir_slots[dir_hash(s->bucket, s->prefix)];
	dir_slots[dir_hash(s->bucket, s->prefix)] = s;
	dir_total += s->n;
	pthread_mutex_unlock(&dir_mu);
}

struct collect {
	struct dir_snap *s;
	int err;
};

static int collect_entry(void *arg, const char *name, int is_dir,
			 const struct bfs_meta *m)
{
	struct collect *c = arg;
	struct dir_snap *s = c->s;
	size_t nl = strlen(name), el = m ? strlen(m->etag) : 0;
	struct dent *d;

	if (!nl || strchr(name, '/'))
		return 0;
	if (s->n >= DIR_LIST_MAX) {
		BFS_WARN("%s/%s: listing cut at %u entries", s->bucket, s->prefix,
			 DIR_LIST_MAX);
		return 1;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		struct dent *ne = realloc(s->e, nc * sizeof(*ne));

		if (!ne)
			goto nomem;
		s->e = ne;
		s->cap = nc;
	}
	if (s->nlen + nl + el + 2 > s->ncap) {
		size_t nc = s->ncap ? s->ncap * 2 : 4096;
		char *nn;

		while (nc < s->nlen + nl + el + 2)
			nc *= 2;
		if (nc > DIR_NAMES_MAX || !(nn = realloc(s->names, nc)))
			goto nomem;
		s->names = nn;
		s->ncap = nc;
	}
	d = &s->e[s->n++];
	memset(d, 0, sizeof(*d));
	d->name = s->nlen;
	memcpy(s->names + s->nlen, name, nl + 1);
	s->nlen += nl + 1;
	d->etag = s->nlen;
	memcpy(s->names + s->nlen, m ? m->etag : "", el + 1);
	s->nlen += el + 1;
	d->is_dir = is_dir != 0;
	if (m) {
		d->has_meta = 1;
		d->lm = m->mtime;
		d->size = m->size;
		d->mtime = m->mtime;
		d->mtime_nsec = m->mtime_nsec;
		d->mode = m->mode;
		d->uid = m->uid;
		d->gid = m->gid;
		d->has_mode = m->has_mode;
		d->has_uid = m->has_uid;
		d->has_gid = m->has_gid;
	}
	/* Only complete metadata makes a finished entry; files without it
	 * get a HEAD (folders without it stay placeholders). */
	d->plus = m && m->has_mode;
	d->need_head = !d->plus && !is_dir;
	return 0;
nomem:
	c->err = BFS_ERR_NOMEM;
	return 1;
}

static void dent_to_stat(const struct bfs_rbucket *b, const struct dent *d,
			 struct stat *st)
{
	struct bfs_meta m;

	memset(&m, 0, sizeof(m));
	m.size = d->size;
	m.mtime = d->mtime;
	m.mtime_nsec = d->mtime_nsec;
	m.mode = d->mode;
	m.uid = d->uid;
	m.gid = d->gid;
	m.has_mode = d->has_mode;
	m.has_uid = d->has_uid;
	m.has_gid = d->has_gid;
	bfs_fs_meta_to_stat(b, &m, d->is_dir, st);
	if (!d->has_meta)
		st->st_mtim = st->st_ctim = st->st_atim = attr_start;
}

/* The parallel HEADs of one listing. */
struct head_job {
	struct dir_snap *s;
	struct bfs_rbucket *b;
	size_t *todo;            /* indexes into s->e */
	size_t ntodo;
	_Atomic size_t next;
	_Atomic int err;         /* a transport error: the bucket's status */
};

static void head_one(struct head_job *j, size_t i, char *key)
{
	struct bfs_provider *p = j->b->prov;
	struct dent *d = &j->s->e[i];
	const char *name = j->s->names + d->name;
	size_t pl = strlen(j->s->prefix), nl = strlen(name);
	struct bfs_meta m;
	struct stat st;
	int r;

	if (pl + nl > BFS_KEY_MAX)
		return;
	memcpy(key, j->s->prefix, pl);
	memcpy(key + pl, name, nl + 1);
	memset(&m, 0, sizeof(m));
	r = p->ops->head(p->st, key, &m);
	if (r != 0) {
		if (r != BFS_ERR_NOTFOUND)
			atomic_store(&j->err, r);
		return;      /* stays a placeholder: lookup decides */
	}
	bfs_fs_meta_to_stat(j->b, &m, 0, &st);
	bfs_attr_put_meta(j->b->name, key, &st, m.etag);
	/* Written by this thread only (index i is its own). */
	d->record = m.etag[0] && !strcmp(m.etag, j->s->names + d->etag) &&
		    m.size == d->size;
	d->has_meta = 1;
	d->size = m.size;
	d->mtime = m.mtime;
	d->mtime_nsec = m.mtime_nsec;
	d->mode = m.mode;
	d->uid = m.uid;
	d->gid = m.gid;
	d->has_mode = 1;
	if (!(d->mode & S_IFMT))
		d->mode |= S_IFREG;
	d->has_uid = m.has_uid;
	d->has_gid = m.has_gid;
	d->plus = 1;
}

static void *head_worker(void *arg)
{
	struct head_job *j = arg;
	char *key = malloc(BFS_KEY_MAX + 2);
	size_t i;

	if (!key)
		return NULL;
	while ((i = atomic_fetch_add(&j->next, 1)) < j->ntodo)
		head_one(j, j->todo[i], key);
	free(key);
	return NULL;
}

/* head_worker as a job of the I/O pool (bfs_pool.h). */
static void head_pool_job(void *arg)
{
	head_worker(arg);
}

/* HEADs every need_head entry of s, BFS_DIR_HEADS at a time: this
 * thread and up to BFS_DIR_HEADS - 1 jobs of the I/O pool (this thread
 * alone in a pool job, where no group wait is allowed). */
static void head_all(struct bfs_rbucket *b, struct dir_snap *s)
{
	struct bfs_pool_group g;
	struct bfs_pool *pool = NULL;
	struct head_job j;
	size_t i, nth;

	memset(&j, 0, sizeof(j));
	j.s = s;
	j.b = b;
	if (!b->prov || !(j.todo = malloc((s->n ? s->n : 1) * sizeof(size_t))))
		return;
	for (i = 0; i < s->n; i++)
		if (s->e[i].need_head)
			j.todo[j.ntodo++] = i;
	atomic_init(&j.next, 0);
	atomic_init(&j.err, 0);
	nth = (j.ntodo + 3) / 4;
	if (nth > BFS_DIR_HEADS)
		nth = BFS_DIR_HEADS;
	if (nth > 1 && !bfs_pool_in_worker())
		pool = bfs_pool_io();
	if (pool) {
		bfs_pool_group_init(&g, pool);
		for (i = 1; i < nth; i++)
			if (bfs_pool_submit(pool, &g, head_pool_job, &j) != 0)
				break;
	}
	if (j.ntodo)
		head_worker(&j);     /* the caller works too */
	if (pool)
		bfs_pool_group_wait(&g);
	if (atomic_load(&j.err))
		bfs_rbucket_note(b, atomic_load(&j.err));
	free(j.todo);
}

/*
 * Known metadata (SQLite, bfs_store_meta_folder): files the listing gave
 * no mode for are completed from the file index (written through
 * bucketfs) or from what an earlier HEAD returned, when the listing shows
 * the same etag, size and LastModified as recorded.  A metadata-only
 * change by another client (a copy onto itself) keeps the etag but
 * changes LastModified, so it is HEADed again.  An index row's
 * LastModified is recorded the first time a listing shows its etag: a
 * metadata-only change by another client between this mount's write and
 * that first listing of the folder is the window in which the index wins
 * over the server (as is one within the same second as the recorded
 * LastModified: listings give seconds).
 */
struct known_ctx {
	struct dir_snap *s;
	struct bfs_rbucket *b;
	size_t plen;
	struct bfs_strset idx;   /* name -> its entry's index in s */
};

static int known_row(void *arg, const struct bfs_meta_rec *r)
{
	struct known_ctx *k = arg;
	const char *name = r->key + k->plen;
	struct dent *d = NULL;
	struct stat st;
	size_t j;

	if (bfs_strset_find(&k->idx, name, &j))
		d = &k->s->e[j];
	if (!d || !d->need_head || d->plus || !d->has_meta ||
	    d->size != r->size || strcmp(k->s->names + d->etag, r->etag) != 0)
		return 0;
	if (r->last_modified ? r->last_modified != d->lm : !r->indexed)
		return 0;
	d->record_lm = r->indexed && !r->last_modified;
	d->mode = r->has_mode ? r->mode : 0;
	if (!(d->mode & S_IFMT))
		d->mode |= S_IFREG;
	d->has_mode = 1;
	d->uid = r->uid;
	d->gid = r->gid;
	d->has_uid = r->has_uid;
	d->has_gid = r->has_gid;
	d->mtime = r->mtime;
	d->mtime_nsec = r->mtime_nsec;
	d->need_head = 0;
	d->plus = 1;
	dent_to_stat(k->b, d, &st);      /* a file with metadata */
	bfs_attr_put_meta(k->b->name, r->key, &st, r->etag);
	return 0;
}

/* Completes need_head entries of s from the store (two queries). */
static void known_from_store(struct bfs_rbucket *b, struct dir_snap *s)
{
	struct bfs_store *store = bfs_fs.reg ? bfs_registry_store(bfs_fs.reg)
					     : NULL;
	struct known_ctx k;
	size_t i, want = 0;

	for (i = 0; i < s->n; i++)
		want += s->e[i].need_head && s->e[i].has_meta &&
			s->names[s->e[i].etag];
	if (!store || !want)
		return;
	memset(&k, 0, sizeof(k));
	k.s = s;
	k.b = b;
	k.plen = strlen(s->prefix);
	for (i = 0; i < s->n; i++) {
		if (!s->e[i].need_head || !s->e[i].has_meta ||
		    !s->names[s->e[i].etag])
			continue;
		if (bfs_strset_add(&k.idx, s->names + s->e[i].name, i) < 0)
			goto out;      /* no memory: the HEADs decide */
	}
	if (bfs_store_meta_folder(store, b->name, s->prefix, known_row, &k) != 0)
		BFS_DEBUG("%s/%s: known metadata not read", b->name, s->prefix);
out:
	bfs_strset_free(&k.idx);
}

/* Keeps what this listing learned (HEAD results, the first LastModified
 * of index rows) in one transaction. */
static void record_known(struct bfs_rbucket *b, struct dir_snap *s)
{
	struct bfs_store *store = bfs_fs.reg ? bfs_registry_store(bfs_fs.reg)
					     : NULL;
	struct bfs_meta_rec *rec = NULL;
	char *keys = NULL;
	size_t i, n = 0, pl = strlen(s->prefix), klen = 0;

	for (i = 0; i < s->n; i++) {
		if (s->e[i].record || s->e[i].record_lm) {
			n++;
			klen += pl + strlen(s->names + s->e[i].name) + 1;
		}
	}
	if (!store || !n)
		return;
	if (!(rec = calloc(n, sizeof(*rec))) || !(keys = malloc(klen)))
		goto out;
	for (i = 0, n = 0, klen = 0; i < s->n; i++) {
		const struct dent *d = &s->e[i];
		struct bfs_meta_rec *r;

		if (!d->record && !d->record_lm)
			continue;
		r = &rec[n++];
		r->key = keys + klen;
		memcpy(keys + klen, s->prefix, pl);
		strcpy(keys + klen + pl, s->names + d->name);
		klen += pl + strlen(s->names + d->name) + 1;
		r->etag = s->names + d->etag;
		r->size = d->size;
		r->last_modified = d->lm;
		r->indexed = d->record_lm;
		/* a HEAD without x-amz-meta-mode left S_IFREG and no bits */
		r->mode = d->mode;
		r->has_mode = (d->mode & 07777) || (d->mode & S_IFMT) != S_IFREG;
		r->uid = d->uid;
		r->has_uid = d->has_uid;
		r->gid = d->gid;
		r->has_gid = d->has_gid;
		r->mtime = d->mtime;
		r->mtime_nsec = d->mtime_nsec;
	}
	if (bfs_store_meta_record(store, b->name, rec, n) != 0)
		BFS_DEBUG("%s/%s: known metadata not recorded", b->name, s->prefix);
out:
	free(rec);
	free(keys);
}

int bfs_dir_list_mode(const struct bfs_rbucket *b)
{
	int v = b->conf.list_metadata;

	if (v == BFS_LIST_META_UNSET)
		v = atomic_load(&bfs_fs.list_metadata);
	return v == BFS_LIST_META_LISTING ? v : BFS_LIST_META_HEAD;
}

/* Finished entries of s are known to lookups too (attribute cache),
 * with the listing's etag, which an open pins (If-Match) as a HEAD's. */
static void snap_put_attrs(struct bfs_rbucket *b, const struct dir_snap *s)
{
	size_t i, pl = strlen(s->prefix);
	struct stat st;

	for (i = 0; i < s->n; i++) {
		char *k;
		const char *name = s->names + s->e[i].name;

		if (!s->e[i].plus || !s->e[i].has_meta || s->e[i].need_head)
			continue;
		if (!(k = malloc(pl + strlen(name) + 1)))
			break;
		memcpy(k, s->prefix, pl);
		strcpy(k + pl, name);
		dent_to_stat(b, &s->e[i], &st);
		bfs_attr_put_meta(b->name, k, &st, s->names + s->e[i].etag);
		free(k);
	}
}

int bfs_dir_list(struct bfs_rbucket *b, const char *prefix, bfs_dir_fn fn,
		 void *arg)
{
	struct dir_snap *s;
	struct collect c;
	struct stat st;
	struct bfs_provider *p = b->prov;
	int listing = bfs_dir_list_mode(b) == BFS_LIST_META_LISTING;
	char *key = NULL;
	size_t pl = strlen(prefix);
	struct dir_gen gen;
	size_t i;
	int r;

	if ((s = snap_get(b->name, prefix)) != NULL) {
		bfs_metrics_cache(1);
		goto walk;
	}
	if (!p)
		return BFS_ERR_IO;
	if (!(s = calloc(1, sizeof(*s))) || !(s->bucket = strdup(b->name)) ||
	    !(s->prefix = strdup(prefix))) {
		snap_free(s);
		return BFS_ERR_NOMEM;
	}
	s->refs = 1;
	gen = dir_gen_now(b->name, prefix);
	memset(&c, 0, sizeof(c));
	c.s = s;
	r = p->ops->list(p->st, prefix, 0, collect_entry, &c);
	bfs_rbucket_note(b, r);
	if (r == 0)
		r = c.err;
	if (r != 0) {
		snap_free(s);
		return r;
	}
	if (s->n <= BFS_DIR_CACHE_MAX) {
		known_from_store(b, s);
		if (!listing)
			head_all(b, s);
		record_known(b, s);
		snap_put_attrs(b, s);
		if (bfs_cache_enabled())
			snap_insert(s, gen);
	}
	bfs_metrics_cache(0);
walk:
	if (listing && !(key = malloc(BFS_KEY_MAX + 2)))
		listing = 0;
	for (i = 0; i < s->n; i++) {
		const struct dent *d = &s->e[i];
		const char *name = s->names + d->name;
		int plus = d->plus;

		dent_to_stat(b, d, &st);
		/* listing mode: a file the listing gave no mode for shows
		 * what a HEAD learned (open, stat after the kernel's
		 * timeout), else the listing's defaults, never a HEAD here */
		if (listing && !plus && d->need_head && d->has_meta &&
		    pl + strlen(name) <= BFS_KEY_MAX) {
			memcpy(key, prefix, pl);
			strcpy(key + pl, name);
			attr_get(b->name, key, &st, 0);
			plus = 1;
		}
		if (fn(arg, name, &st, plus))
			break;
	}
	free(key);
	if (i == s->n) {
		pthread_mutex_lock(&dir_mu);
		s->served = 1;
		pthread_mutex_unlock(&dir_mu);
	}
	snap_unref(s);
	return 0;
}

/* 1 when name (ASCII only) followed by '/' sorts before upto (a name
 * without '/'): in S3's UTF-8 byte order and in any order that puts
 * every non-ASCII character after ASCII, the page that ended at upto
 * then held every key of name and below name/. */
static int sorts_before(const char *name, const char *upto)
{
	size_t i;

	for (i = 0; name[i]; i++) {
		if ((unsigned char)name[i] >= 0x80)
			return 0;
		if (name[i] != upto[i])
			return (unsigned char)name[i] < (unsigned char)upto[i];
	}
	return (unsigned char)upto[i] > '/';
}

/* What record n says about name; dir_mu held. */
static int neg_hint_locked(const struct neg_dir *n, const char *name)
{
	int file, dir;

	if (n->filling || bfs_strset_find(&n->touched, name, NULL))
		return BFS_DIR_UNKNOWN;
	file = bfs_strset_find(&n->present, name, NULL);
	dir = bfs_strset_find(&n->dirs, name, NULL);
	if (file && dir)
		return BFS_DIR_UNKNOWN;
	if (file)
		return BFS_DIR_FILE;
	if (dir)
		return BFS_DIR_FOLDER;
	if (n->upto && !sorts_before(name, n->upto))
		return BFS_DIR_UNKNOWN;
	return BFS_DIR_ABSENT;
}

/* The largest name of s (a folder's name without '/', which sorts no
 * later than the folder's own entry), malloc'd; NULL when s is empty or
 * out of memory. */
static char *snap_last_name(const struct dir_snap *s)
{
	const char *last = NULL;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!last || strcmp(s->names + s->e[i].name, last) > 0)
			last = s->names + s->e[i].name;
	return last ? strdup(last) : NULL;
}

/*
 * The probe of folder prefix of b: its record numbered serial (filling,
 * put in the table before) gets the names of one page of the folder's
 * listing, unless it left the table meanwhile (a bucket drop, a full
 * listing's record replaced it).  Returns 0 (the record is filled, or
 * gone), or the listing's BFS_ERR_* (the record is removed).
 */
static int neg_probe(struct bfs_rbucket *b, const char *prefix,
		     uint64_t serial)
{
	struct bfs_provider *p = b->prov;
	struct neg_dir tmp, *n, **pp;
	struct dir_snap *s;
	struct collect c;
	int r, more;

	memset(&tmp, 0, sizeof(tmp));
	if (!(s = calloc(1, sizeof(*s))) || !(s->bucket = strdup(b->name)) ||
	    !(s->prefix = strdup(prefix))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.s = s;
	r = p->ops->list(p->st, prefix, BFS_LIST_ONE_PAGE, collect_entry, &c);
	more = r == BFS_LIST_MORE;
	if (r == 0 || more)
		r = c.err;
	if (r != 0)
		goto out;
	bfs_rbucket_note(b, 0);
	/* names only: a name found is HEADed by its lookup as before, which
	 * notes its xattrs and the etag an open pins */
	if ((r = neg_add_names(&tmp, s)) != 0)
		goto out;
	if (more && !(tmp.upto = snap_last_name(s))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	BFS_DEBUG("%s/%s: probed for lookups: %zu names%s%s", b->name, prefix,
		  s ? s->n : 0, tmp.upto ? ", more after " : "",
		  r ? bfs_strerror(r) : tmp.upto ? tmp.upto : "");
	pthread_mutex_lock(&dir_mu);
	pp = neg_find_locked(b->name, prefix);
	if (pp && (n = *pp)->serial == serial) {
		if (r != 0) {
			neg_unlink_locked(pp);
		} else {
			n->present = tmp.present;
			n->dirs = tmp.dirs;
			n->upto = tmp.upto;
			memset(&tmp, 0, sizeof(tmp));
			n->filling = 0;
		}
	}
	pthread_mutex_unlock(&dir_mu);
	bfs_strset_free(&tmp.present);
	bfs_strset_free(&tmp.dirs);
	free(tmp.upto);
	snap_free(s);
	return r;
}

int bfs_dir_lookup(struct bfs_rbucket *b, const char *key)
{
	const char *slash = strrchr(key, '/');
	size_t pl = slash ? (size_t)(slash - key) + 1 : 0;
	struct neg_dir **pp, *n = NULL;
	const char *name = key + pl;
	uint64_t serial = 0;
	char *prefix;
	int hint = BFS_DIR_UNKNOWN, r;

	if (!bfs_cache_enabled() || !name[0] || !(prefix = strndup(key, pl)))
		return BFS_DIR_UNKNOWN;
	pthread_mutex_lock(&dir_mu);
	if ((pp = neg_find_locked(b->name, prefix)) != NULL &&
	    (*pp)->expires_ms <= now_ms()) {
		neg_unlink_locked(pp);
		pp = NULL;
	}
	if (pp) {
		hint = neg_hint_locked(*pp, name);
	} else if (b->prov && b->kind != BFS_PROV_LOCAL && b->prefix &&
		   !strncmp(prefix, b->prefix, strlen(b->prefix)) &&
		   (n = neg_new(b->name, prefix)) != NULL) {
		/* in the table before the listing: changes meanwhile touch it */
		n->filling = 1;
		n->serial = serial = ++neg_serial;
		neg_insert_locked(n);
	}
	pthread_mutex_unlock(&dir_mu);
	if (!n)
		goto out;
	if ((r = neg_probe(b, prefix, serial)) != 0) {
		/* an outage fails the lookup as its HEAD would; anything
		 * else (a LIST this key may not make) leaves it to them */
		if (bfs_err_retryable(r))
			hint = r;
		goto out;
	}
	pthread_mutex_lock(&dir_mu);
	pp = neg_find_locked(b->name, prefix);
	if (pp && (*pp)->serial == serial)
		hint = neg_hint_locked(*pp, name);
	pthread_mutex_unlock(&dir_mu);
out:
	free(prefix);
	return hint;
}

/* Index of the entry named name in s (from the hint on), or s->n. */
static size_t snap_find(struct dir_snap *s, const char *name)
{
	size_t i, h;

	pthread_mutex_lock(&dir_mu);
	h = s->hint;
	pthread_mutex_unlock(&dir_mu);
	/* a walk in listing order finds its entry right after the hint */
	for (i = h; i < s->n && i < h + 2; i++)
		if (!strcmp(s->names + s->e[i].name, name))
			return i;
	for (i = 0; i < s->n; i++)
		if (!strcmp(s->names + s->e[i].name, name))
			return i;
	return s->n;
}

size_t bfs_dir_next_files(const char *bucket, const char *key,
			  const char *prev, char **out, size_t n)
{
	const char *slash = strrchr(key, '/'), *name;
	struct dir_snap *s;
	char *prefix;
	size_t pl = slash ? (size_t)(slash - key) + 1 : 0, i, j, got = 0;

	name = key + pl;
	if (!prev || strncmp(prev, key, pl) != 0 || strchr(prev + pl, '/') ||
	    !(prefix = strndup(key, pl)))
		return 0;
	s = snap_get(bucket, prefix);
	free(prefix);
	if (!s)
		return 0;
	if ((i = snap_find(s, name)) == s->n)
		goto out;
	pthread_mutex_lock(&dir_mu);
	s->hint = i;
	pthread_mutex_unlock(&dir_mu);
	/* sequential: the file listed before key is the one opened before */
	for (j = i; j > 0 && s->e[j - 1].is_dir; j--)
		;
	if (j == 0 || strcmp(s->names + s->e[j - 1].name, prev + pl) != 0)
		goto out;
	for (j = i + 1; j < s->n && got < n; j++) {
		const char *nm = s->names + s->e[j].name;
		size_t nl = strlen(nm);

		if (s->e[j].is_dir || pl + nl > BFS_KEY_MAX)
			continue;
		if (!(out[got] = malloc(pl + nl + 1)))
			break;
		memcpy(out[got], key, pl);
		memcpy(out[got] + pl, nm, nl + 1);
		got++;
	}
out:
	snap_unref(s);
	return got;
}

int bfs_dir_kept(const char *bucket, const char *prefix)
{
	struct dir_snap *s;
	int kept = 0;

	pthread_mutex_lock(&dir_mu);
	for (s = dir_slots[dir_hash(bucket, prefix)]; s; s = s->next) {
		if (strcmp(s->bucket, bucket) != 0 || strcmp(s->prefix, prefix) != 0)
			continue;
		kept = s->served && s->expires_ms > now_ms();
		break;
	}
	pthread_mutex_unlock(&dir_mu);
	return kept;
}
