/*
 * attrcache.c - a short-lived attribute cache (sshfs cache.c idea).
 *
 * readdir feeds the stat of every listed entry here, and getattr of a file
 * found by HEAD stores it, so `ls -l` of a big folder costs one listing
 * instead of one HEAD per entry.  Entries live BFS_ATTR_TTL_MS; this
 * mount's own changes drop them at once.  Keyed by "BUCKET/KEY" in a
 * chained hash table guarded by one mutex; when BFS_ATTR_MAX entries are
 * reached the whole table is emptied (cheap, and the TTL is short anyway).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bfs_metrics.h"
#include "fs_int.h"

#define ATTR_SLOTS 16384

struct attr_entry {
	struct attr_entry *next;
	int64_t expires_ms;
	struct stat st;
	size_t blen;             /* length of the bucket part of k */
	char k[];                /* "BUCKET/KEY" */
};

static pthread_mutex_t attr_mu = PTHREAD_MUTEX_INITIALIZER;
static struct attr_entry *attr_slots[ATTR_SLOTS];   /* attr_mu */
static size_t attr_count;                           /* attr_mu */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned attr_hash(const char *bucket, const char *key)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)bucket; *p; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % ATTR_SLOTS;
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

	for (i = 0; i < ATTR_SLOTS; i++) {
		for (e = attr_slots[i]; e; e = n) {
			n = e->next;
			free(e);
		}
		attr_slots[i] = NULL;
	}
	attr_count = 0;
}

void bfs_attr_init(void)
{
}

void bfs_attr_destroy(void)
{
	pthread_mutex_lock(&attr_mu);
	attr_clear_locked();
	pthread_mutex_unlock(&attr_mu);
}

void bfs_attr_put(const char *bucket, const char *key, const struct stat *st)
{
	struct attr_entry *e, **pp;
	size_t bl = strlen(bucket), kl = strlen(key);
	unsigned h = attr_hash(bucket, key);

	if (!(e = malloc(sizeof(*e) + bl + kl + 2)))
		return;
	e->blen = bl;
	memcpy(e->k, bucket, bl);
	e->k[bl] = '/';
	memcpy(e->k + bl + 1, key, kl + 1);
	e->st = *st;
	e->expires_ms = now_ms() + BFS_ATTR_TTL_MS;
	pthread_mutex_lock(&attr_mu);
	for (pp = &attr_slots[h]; *pp; pp = &(*pp)->next) {
		if (attr_match(*pp, bucket, key)) {
			struct attr_entry *old = *pp;

			e->next = old->next;
			*pp = e;
			free(old);
			goto out;
		}
	}
	if (attr_count >= BFS_ATTR_MAX)
		attr_clear_locked();
	e->next = attr_slots[h];
	attr_slots[h] = e;
	attr_count++;
out:
	pthread_mutex_unlock(&attr_mu);
}

int bfs_attr_get(const char *bucket, const char *key, struct stat *st)
{
	struct attr_entry *e, **pp;
	unsigned h = attr_hash(bucket, key);
	int found = 0;

	pthread_mutex_lock(&attr_mu);
	for (pp = &attr_slots[h]; (e = *pp) != NULL; pp = &e->next) {
		if (!attr_match(e, bucket, key))
			continue;
		if (e->expires_ms > now_ms()) {
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
	bfs_metrics_cache(found);
	return found;
}

void bfs_attr_drop(const char *bucket, const char *key)
{
	struct attr_entry *e, **pp;
	unsigned h = attr_hash(bucket, key);

	pthread_mutex_lock(&attr_mu);
	for (pp = &attr_slots[h]; (e = *pp) != NULL; pp = &e->next) {
		if (attr_match(e, bucket, key)) {
			*pp = e->next;
			free(e);
			attr_count--;
			break;
		}
	}
	pthread_mutex_unlock(&attr_mu);
}

void bfs_attr_drop_bucket(const char *bucket)
{
	struct attr_entry *e, **pp;
	size_t i, bl = strlen(bucket);

	pthread_mutex_lock(&attr_mu);
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
}
