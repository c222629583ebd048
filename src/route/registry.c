/*
 * registry.c - the live set of buckets and path routing.
 *
 * The registry holds an array of refcounted buckets (struct bfs_rbucket),
 * each with its provider opened from the settings in the store and, unless
 * the caches are off, wrapped in the cache decorator (bfs_cache.h), so
 * every change made through b->prov keeps the caches true.  Readers
 * (every FUSE operation) take a reference under a short mutex and then work
 * without any registry lock, so a slow provider call never blocks a reload
 * and a reload never pulls a provider out from under an operation: the old
 * bucket is freed (and its provider closed) when its last reference drops.
 *
 * Reload: read the bucket list and the assignments, build a new snapshot
 * reusing every bucket whose settings did not change (same provider
 * instance, same status), open providers for new or changed ones, then
 * swap the snapshots under the mutex.
 * The poll thread compares bfs_store_data_version every 250 ms (outside
 * commits from bucketctl) and runs the reload, at once when
 * bfs_registry_wake() woke it (a PostgreSQL catalog's change notification);
 * it also runs the SIGHUP hook
 * requested through an atomic flag, and the store's upkeep
 * (bfs_store_service: a PostgreSQL catalog's reconnects and queue replay).
 *
 * Routing snapshot: each reload publishes one refcounted struct rsnap
 * holding the buckets, the defaults and the assignments read in that
 * reload.  A lookup takes a reference on the current snapshot under mu and
 * routes without any store query (bfs_view_pick over the snapshot's plain
 * data); only a context file's path asks the file index (one local query,
 * never under mu) whether an older file of the context lives in another
 * bucket.  A snapshot never changes once published; the next reload swaps
 * in a new one and the old one goes with its last reference.
 *
 * Lock order (write it once): reload_mu -> mu.  The store's own mutex is
 * only taken inside store calls, never while mu is held.  rbucket fields
 * are immutable once published except refs and last_err (atomics).  The
 * changed-bucket hook (the FUSE layer's cache drop, which takes its cache
 * locks) runs after the swap with reload_mu held and mu not: cache locks
 * come after reload_mu and are never held while a reload is asked for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bfs_crypto.h"
#include "bfs_cache.h"
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_perm.h"
#include "bfs_route.h"
#include "bfs_view.h"

#define REGISTRY_POLL_NS (250L * 1000 * 1000)
#define REGISTRY_MAX_BUCKETS 4096

struct bfs_registry {
	struct bfs_store *store;          /* not owned */
	char *single;                     /* single-bucket mode name or NULL */

	pthread_mutex_t reload_mu;        /* serializes reloads; guards key */
	unsigned char key[BFS_MASTER_KEY_LEN];
	int has_key;

	pthread_mutex_t mu;               /* guards snap (the pointer) */
	struct rsnap *snap;               /* the current routing snapshot */

	pthread_t thread;
	int thread_started;
	_Atomic int stop;
	_Atomic int hook_requested;
	pthread_mutex_t wake_mu;          /* guards woken; poll thread waits */
	pthread_cond_t wake_cv;           /* on wake_cv (CLOCK_MONOTONIC) */
	int woken;
	bfs_registry_hook_fn hook;
	void *hook_arg;
	int64_t data_version;             /* only touched by the poll thread */
	bfs_registry_changed_fn changed;  /* set before the thread starts */
};

/*
 * One routing snapshot: everything a lookup needs, read by one reload.
 * Immutable once published, except refs and logged (atomics).
 */
struct rsnap {
	_Atomic int refs;
	struct bfs_rbucket **b;           /* referenced, sorted by name */
	size_t n;
	struct bfs_assignment *as;        /* owned: the strings of rules.as */
	size_t nas;
	struct bfs_view_assign *vas;      /* rules.as, sorted by (type, id) */
	struct bfs_view_rules rules;      /* def[] point into b[i]->name */
	_Atomic int logged[BFS_VIEW_COUNT]; /* "no bucket for this view" said */
};

static void rbucket_free(struct bfs_rbucket *b)
{
	if (!b)
		return;
	bfs_provider_close(b->prov);
	bfs_bucket_conf_clear(&b->conf);
	free(b->name);
	free(b->id);
	free(b->prefix);
	free(b->remote);
	free(b);
}

void bfs_rbucket_ref(struct bfs_rbucket *b)
{
	if (b)
		atomic_fetch_add(&b->refs, 1);
}

void bfs_rbucket_put(struct bfs_rbucket *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		rbucket_free(b);
}

void bfs_rbucket_note(struct bfs_rbucket *b, int err)
{
	if (!b)
		return;
	/* Only errors that say "this bucket is unusable" count; a missing
	 * object or a refused name is a normal answer. */
	if (err == 0 || err == BFS_ERR_ACCESS || err == BFS_ERR_NOBUCKET ||
	    err == BFS_ERR_NETWORK || err == BFS_ERR_TIMEOUT ||
	    err == BFS_ERR_SERVER)
		atomic_store(&b->last_err, err);
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return (!a || !a[0]) && (!b || !b[0]);
	return strcmp(a, b) == 0;
}

/* 1 when two settings would open the same provider. */
static int conf_same(const struct bfs_bucket_conf *a,
		     const struct bfs_bucket_conf *b)
{
	return str_eq(a->id, b->id) && str_eq(a->name, b->name) &&
	       a->provider == b->provider &&
	       str_eq(a->bucket_name, b->bucket_name) &&
	       str_eq(a->prefix, b->prefix) && str_eq(a->region, b->region) &&
	       str_eq(a->endpoint, b->endpoint) &&
	       str_eq(a->account_id, b->account_id) &&
	       str_eq(a->path, b->path) && a->path_style == b->path_style &&
	       a->read_only == b->read_only &&
	       a->list_metadata == b->list_metadata &&
	       str_eq(a->access_key_id, b->access_key_id) &&
	       str_eq(a->secret_access_key, b->secret_access_key) &&
	       str_eq(a->session_token, b->session_token) &&
	       bfs_bucket_perms_same(a, b);
}

/*
 * b's owner, group and modes from its settings (see struct bfs_rbucket);
 * the user and group databases are read here, once per opened bucket,
 * never on a FUSE request.
 */
static void rbucket_perms(struct bfs_rbucket *b, const struct bfs_bucket_conf *c)
{
	char reason[256];

	b->uid = (uint32_t)geteuid();
	b->gid = (uint32_t)getegid();
	if (c->owner && bfs_perm_user(c->owner, &b->uid, reason,
				      sizeof(reason)) != 0) {
		b->uid = (uint32_t)geteuid();
		BFS_WARN("bucket '%s': owner: %s; the mounting user owns it",
			 b->name, reason);
	}
	if (c->group && bfs_perm_group(c->group, &b->gid, reason,
				       sizeof(reason)) != 0) {
		b->gid = (uint32_t)getegid();
		BFS_WARN("bucket '%s': group: %s; the mounting user's group "
			 "owns it", b->name, reason);
	}
	b->mode = c->has_mode ? c->mode : BFS_BUCKET_MODE_DEFAULT;
	b->file_mode = c->has_file_mode ? c->file_mode : BFS_FILE_MODE_DEFAULT;
	b->dir_mode = c->has_dir_mode ? c->dir_mode : BFS_DIR_MODE_DEFAULT;
}

static char *remote_of(const struct bfs_bucket_conf *c)
{
	struct bfs_buf b;
	const char *pfx = c->prefix ? c->prefix : "";

	bfs_buf_init(&b, 4096);
	if (c->provider == BFS_PROV_LOCAL) {
		if (bfs_buf_adds(&b, c->path ? c->path : "") != 0)
			return NULL;
	} else {
		if (bfs_buf_adds(&b, c->bucket_name ? c->bucket_name : "") != 0)
			return NULL;
		if (pfx[0] && bfs_buf_addf(&b, "/%s", pfx) != 0)
			return NULL;
	}
	if (b.len == 0)
		return strdup("");
	return bfs_buf_steal(&b);
}

/* A new bucket (refs 1) for settings c; its provider opened (or status
 * error with the reason). */
static int rbucket_new(const struct bfs_bucket_conf *c, int have_key,
		       struct bfs_rbucket **out)
{
	struct bfs_rbucket *b = NULL;
	int r = BFS_ERR_NOMEM;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b))))
		goto out;
	atomic_init(&b->refs, 1);
	atomic_init(&b->last_err, 0);
	if ((r = bfs_bucket_conf_copy(&b->conf, c)) != 0)
		goto out;
	r = BFS_ERR_NOMEM;
	if (!(b->name = strdup(c->name ? c->name : "")) ||
	    (c->id && !(b->id = strdup(c->id))) ||
	    !(b->prefix = strdup(c->prefix ? c->prefix : "")) ||
	    !(b->remote = remote_of(c)))
		goto out;
	b->kind = c->provider;
	b->read_only = c->read_only;
	rbucket_perms(b, c);
	if (c->has_secret && !c->secret_access_key && !have_key) {
		snprintf(b->open_err, sizeof(b->open_err),
			 "bucket '%s': secret stored but no master key loaded",
			 b->name);
	} else if (bfs_provider_open(c, &b->prov, b->open_err,
				     sizeof(b->open_err)) != 0) {
		b->prov = NULL;
		if (!b->open_err[0])
			snprintf(b->open_err, sizeof(b->open_err),
				 "bucket '%s': provider failed to open", b->name);
	}
	if (b->prov && bfs_cache_enabled()) {
		struct bfs_provider *w;

		/* the caches wrap the provider (src/cache/cached.c) */
		if ((r = bfs_cache_wrap(b->prov, b->name, &w)) != 0)
			goto out;
		b->prov = w;
	}
	if (!b->prov)
		BFS_WARN("%s", b->open_err);
	*out = b;
	b = NULL;
	r = 0;
out:
	rbucket_free(b);
	return r;
}

static void array_put(struct bfs_rbucket **a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		bfs_rbucket_put(a[i]);
	free(a);
}

static void snap_put(struct rsnap *sn)
{
	if (!sn || atomic_fetch_sub(&sn->refs, 1) != 1)
		return;
	array_put(sn->b, sn->n);
	bfs_assignments_free(sn->as, sn->nas);
	free(sn->vas);
	free(sn);
}

/* +1 reference on the current snapshot (never NULL after the first
 * reload). */
static struct rsnap *snap_get(struct bfs_registry *r)
{
	struct rsnap *sn;

	pthread_mutex_lock(&r->mu);
	sn = r->snap;
	if (sn)
		atomic_fetch_add(&sn->refs, 1);
	pthread_mutex_unlock(&r->mu);
	return sn;
}

static int vas_cmp(const void *a, const void *b)
{
	const struct bfs_view_assign *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Bucket name in the snapshot (+1 ref), or NULL. */
static struct bfs_rbucket *snap_bucket(const struct rsnap *sn, const char *name)
{
	size_t i;

	if (!sn || !name)
		return NULL;
	for (i = 0; i < sn->n; i++) {
		if (strcmp(sn->b[i]->name, name) == 0) {
			bfs_rbucket_ref(sn->b[i]);
			return sn->b[i];
		}
	}
	return NULL;
}

/*
 * A new snapshot (refs 1) of buckets nb[0..n) (taken over) with the
 * defaults of confs and the assignments as (taken over).  On failure
 * everything handed over is released.
 */
static int snap_new(struct bfs_rbucket **nb, size_t n,
		    const struct bfs_bucket_conf *confs,
		    struct bfs_assignment *as, size_t nas, struct rsnap **out)
{
	struct rsnap *sn;
	size_t i;
	int role;

	*out = NULL;
	if (!(sn = calloc(1, sizeof(*sn))) ||
	    (nas && !(sn->vas = calloc(nas, sizeof(*sn->vas))))) {
		free(sn);
		array_put(nb, n);
		bfs_assignments_free(as, nas);
		return BFS_ERR_NOMEM;
	}
	atomic_init(&sn->refs, 1);
	for (i = 0; i < BFS_VIEW_COUNT; i++)
		atomic_init(&sn->logged[i], 0);
	sn->b = nb;
	sn->n = n;
	sn->as = as;
	sn->nas = nas;
	for (i = 0; i < n; i++)
		for (role = 0; role < BFS_ROLE_COUNT; role++)
			if (confs[i].defaults & BFS_ROLE_BIT(role))
				sn->rules.def[role] = nb[i]->name;
	for (i = 0; i < nas; i++) {
		sn->vas[i].type = as[i].context_type;
		sn->vas[i].id = as[i].context_id ? as[i].context_id : "";
		sn->vas[i].bucket = as[i].bucket;
	}
	if (nas)
		qsort(sn->vas, nas, sizeof(*sn->vas), vas_cmp);
	sn->rules.as = sn->vas;
	sn->rules.nas = nas;
	*out = sn;
	return 0;
}

/* +1 ref on the current bucket with exactly these settings, or NULL. */
static struct bfs_rbucket *find_same(struct bfs_registry *r,
				     const struct bfs_bucket_conf *c)
{
	struct bfs_rbucket *found = NULL;
	struct rsnap *sn = snap_get(r);
	size_t i;

	for (i = 0; sn && i < sn->n; i++) {
		if (strcmp(sn->b[i]->name, c->name ? c->name : "") == 0) {
			if (conf_same(&sn->b[i]->conf, c)) {
				found = sn->b[i];
				bfs_rbucket_ref(found);
			}
			break;
		}
	}
	snap_put(sn);
	return found;
}

/* Runs r->changed for each old bucket the new set does not keep (both
 * arrays sorted by name).  Caller holds reload_mu. */
static void notify_changed(struct bfs_registry *r, struct bfs_rbucket **old,
			   size_t oldn, struct bfs_rbucket **nb, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < oldn; i++) {
		while (j < n && strcmp(nb[j]->name, old[i]->name) < 0)
			j++;
		if (j < n && nb[j] == old[i])
			continue;
		r->changed(old[i]->name);
	}
}

void bfs_registry_set_changed_fn(struct bfs_registry *r,
				 bfs_registry_changed_fn fn)
{
	r->changed = fn;
}

/* Caller holds reload_mu. */
static int registry_reload_locked(struct bfs_registry *r, char *err,
				  size_t errlen)
{
	struct bfs_bucket_conf *confs = NULL;
	struct bfs_rbucket **nb = NULL;
	struct bfs_assignment *as = NULL;
	struct rsnap *sn = NULL, *old;
	size_t n = 0, i, nas = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = bfs_store_bucket_list(r->store, r->has_key ? r->key : NULL,
				   &confs, &n);
	if (rc != 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot read the bucket list: %s",
				 bfs_strerror(rc));
		goto out;
	}
	if ((rc = bfs_store_assign_list(r->store, &as, &nas)) != 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot read the assignments: %s",
				 bfs_strerror(rc));
		goto out;
	}
	if (n > REGISTRY_MAX_BUCKETS) {
		rc = BFS_ERR_TOOBIG;
		if (err && errlen)
			snprintf(err, errlen, "too many buckets (%zu)", n);
		goto out;
	}
	if (n && !(nb = calloc(n, sizeof(*nb)))) {
		rc = BFS_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((nb[i] = find_same(r, &confs[i])) != NULL)
			continue;
		if ((rc = rbucket_new(&confs[i], r->has_key, &nb[i])) != 0) {
			array_put(nb, i);
			nb = NULL;
			goto out;
		}
		BFS_INFO("bucket '%s' (%s) %s", nb[i]->name,
			 bfs_provider_kind_name(nb[i]->kind),
			 nb[i]->prov ? "ready" : "unavailable");
	}
	rc = snap_new(nb, n, confs, as, nas, &sn);
	nb = NULL;
	as = NULL;
	nas = 0;
	if (rc != 0)
		goto out;
	pthread_mutex_lock(&r->mu);
	old = r->snap;
	r->snap = sn;
	pthread_mutex_unlock(&r->mu);
	/* sn stays current: reloads are serialized by reload_mu */
	if (r->changed)
		notify_changed(r, old ? old->b : NULL, old ? old->n : 0,
			       sn->b, sn->n);
	snap_put(old);
	rc = 0;
out:
	bfs_assignments_free(as, nas);
	bfs_bucket_conf_array_free(confs, n);
	return rc;
}

int bfs_registry_reload(struct bfs_registry *r, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&r->reload_mu);
	rc = registry_reload_locked(r, err, errlen);
	pthread_mutex_unlock(&r->reload_mu);
	return rc;
}

void bfs_registry_set_key(struct bfs_registry *r, const unsigned char *key)
{
	pthread_mutex_lock(&r->reload_mu);
	if (key) {
		memcpy(r->key, key, BFS_MASTER_KEY_LEN);
		r->has_key = 1;
	} else {
		OPENSSL_cleanse(r->key, sizeof(r->key));
		r->has_key = 0;
	}
	pthread_mutex_unlock(&r->reload_mu);
}

int bfs_registry_new(struct bfs_store *s, const unsigned char *key,
		     const char *single, struct bfs_registry **out,
		     char *err, size_t errlen)
{
	struct bfs_registry *r = NULL;
	struct bfs_rbucket *b;
	pthread_condattr_t ca;
	int rc = BFS_ERR_NOMEM;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!(r = calloc(1, sizeof(*r))))
		goto out;
	r->store = s;
	pthread_mutex_init(&r->reload_mu, NULL);
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->wake_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake_cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&r->stop, 0);
	atomic_init(&r->hook_requested, 0);
	if (single && !(r->single = strdup(single)))
		goto out;
	if (key) {
		memcpy(r->key, key, BFS_MASTER_KEY_LEN);
		r->has_key = 1;
	}
	if ((rc = bfs_registry_reload(r, err, errlen)) != 0)
		goto out;
	if (bfs_store_data_version(s, &r->data_version) != 0)
		r->data_version = -1;
	if (single) {
		if (!(b = bfs_registry_get(r, single))) {
			rc = BFS_ERR_NOTFOUND;
			if (err && errlen)
				snprintf(err, errlen, "no bucket named '%s'",
					 single);
			goto out;
		}
		bfs_rbucket_put(b);
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	bfs_registry_free(r);
	return rc;
}

void bfs_registry_free(struct bfs_registry *r)
{
	if (!r)
		return;
	bfs_registry_stop(r);
	snap_put(r->snap);
	OPENSSL_cleanse(r->key, sizeof(r->key));
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->reload_mu);
	pthread_cond_destroy(&r->wake_cv);
	pthread_mutex_destroy(&r->wake_mu);
	free(r->single);
	free(r);
}

/* Waits up to REGISTRY_POLL_NS or until bfs_registry_wake (or stop). */
static void registry_sleep(struct bfs_registry *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += REGISTRY_POLL_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->wake_mu);
	while (!r->woken && !atomic_load(&r->stop))
		if (pthread_cond_timedwait(&r->wake_cv, &r->wake_mu,
					   &ts) != 0)
			break;
	r->woken = 0;
	pthread_mutex_unlock(&r->wake_mu);
}

void bfs_registry_wake(struct bfs_registry *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->wake_mu);
	r->woken = 1;
	pthread_cond_signal(&r->wake_cv);
	pthread_mutex_unlock(&r->wake_mu);
}

static void *registry_thread(void *arg)
{
	struct bfs_registry *r = arg;
	char err[512];
	int64_t v;

	while (!atomic_load(&r->stop)) {
		registry_sleep(r);
		if (atomic_load(&r->stop))
			break;
		if (atomic_exchange(&r->hook_requested, 0) && r->hook)
			r->hook(r->hook_arg);
		/* PostgreSQL: reconnect, replay queued index rows. */
		bfs_store_service(r->store);
		if (bfs_store_data_version(r->store, &v) != 0 ||
		    v == r->data_version)
			continue;
		r->data_version = v;
		BFS_DEBUG("database changed; reloading buckets");
		if (bfs_registry_reload(r, err, sizeof(err)) != 0)
			BFS_WARN("reload refused, keeping the old buckets: %s", err);
	}
	return NULL;
}

int bfs_registry_start(struct bfs_registry *r, bfs_registry_hook_fn hook,
		       void *arg)
{
	int e;

	r->hook = hook;
	r->hook_arg = arg;
	atomic_store(&r->stop, 0);
	/* Before any operation: the store's outage handling is on. */
	bfs_store_service(r->store);
	if ((e = pthread_create(&r->thread, NULL, registry_thread, r)) != 0)
		return bfs_err_from_errno(e);
	r->thread_started = 1;
	return 0;
}

void bfs_registry_stop(struct bfs_registry *r)
{
	if (!r || !r->thread_started)
		return;
	atomic_store(&r->stop, 1);
	bfs_registry_wake(r);
	pthread_join(r->thread, NULL);
	r->thread_started = 0;
}

void bfs_registry_request_hook(struct bfs_registry *r)
{
	if (r)
		atomic_store(&r->hook_requested, 1);
}

struct bfs_rbucket *bfs_registry_get(struct bfs_registry *r, const char *name)
{
	struct bfs_rbucket *b = NULL;
	struct rsnap *sn;
	size_t lo, hi, mid;
	int c;

	pthread_mutex_lock(&r->mu);
	sn = r->snap;
	lo = 0;
	hi = sn ? sn->n : 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, sn->b[mid]->name);
		if (c == 0) {
			b = sn->b[mid];
			bfs_rbucket_ref(b);
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!b && sn) {
		/* The store sorts by name but maybe not bytewise: fall back. */
		for (mid = 0; mid < sn->n; mid++) {
			if (strcmp(name, sn->b[mid]->name) == 0) {
				b = sn->b[mid];
				bfs_rbucket_ref(b);
				break;
			}
		}
	}
	pthread_mutex_unlock(&r->mu);
	return b;
}

void bfs_registry_names_free(char **names, size_t n)
{
	size_t i;

	if (!names)
		return;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int bfs_registry_names(struct bfs_registry *r, char ***names, size_t *n)
{
	char **v = NULL;
	size_t i, cnt = 0;
	int rc = BFS_ERR_NOMEM;

	struct rsnap *sn = snap_get(r);

	*names = NULL;
	*n = 0;
	if (!sn) {
		rc = 0;
		goto out;
	}
	if (sn->n && !(v = calloc(sn->n, sizeof(*v))))
		goto out;
	for (i = 0; i < sn->n; i++) {
		if (!(v[i] = strdup(sn->b[i]->name)))
			goto out;
		cnt++;
	}
	*names = v;
	*n = cnt;
	v = NULL;
	rc = 0;
out:
	snap_put(sn);
	bfs_registry_names_free(v, cnt);
	return rc;
}

struct bfs_store *bfs_registry_store(struct bfs_registry *r)
{
	return r->store;
}

void bfs_registry_set_store(struct bfs_registry *r, struct bfs_store *s)
{
	r->store = s;
}

const char *bfs_registry_single(struct bfs_registry *r)
{
	return r->single;
}

/* ---- routing ---- */

/* 1 when some context of the view can be served (the view folder exists). */
static int view_servable(const struct rsnap *sn, int view)
{
	int type = bfs_view_ctx_type(view);
	size_t i;

	if (bfs_view_pick(&sn->rules, view, NULL, NULL))
		return 1;
	for (i = 0; type >= 0 && i < sn->rules.nas; i++)
		if (sn->rules.as[i].type == type)
			return 1;
	return 0;
}

/* Logs once per snapshot and view why a view path has no bucket. */
static void view_unrouted(struct rsnap *sn, int view, const char *id,
			  const char *why)
{
	if (atomic_exchange(&sn->logged[view], 1))
		return;
	BFS_WARN("%s%s%s: no bucket serves it (%s); the folder does not exist",
		 bfs_view_dir_name(view), id ? "/" : "", id ? id : "",
		 why ? why : "no bucket");
}

void bfs_registry_views(struct bfs_registry *r, int *present, size_t n)
{
	struct rsnap *sn;
	size_t v;

	memset(present, 0, n * sizeof(*present));
	if (r->single || !(sn = snap_get(r)))
		return;
	for (v = 1; v < n && v < BFS_VIEW_COUNT; v++)
		present[v] = view_servable(sn, (int)v);
	snap_put(sn);
}

struct where_acc {
	const char *cur;                  /* the context's current bucket */
	char other[BFS_BUCKET_NAME_MAX + 1];
	int exact_cur, under_cur, exact_other, under_other;
};

static int where_cb(void *arg, const struct bfs_ctx_row *row)
{
	struct where_acc *w = arg;
	int cur = strcmp(row->bucket, w->cur) == 0;

	if (row->exact && cur) {
		w->exact_cur = 1;
	} else if (row->exact && !w->exact_other &&
		   strlen(row->bucket) <= BFS_BUCKET_NAME_MAX) {
		w->exact_other = 1;
		strcpy(w->other, row->bucket);
	} else if (!row->exact) {
		if (cur)
			w->under_cur = 1;
		else
			w->under_other = 1;
	}
	return 0;
}

/*
 * Gives the route its own copy of rel and name (one allocation, rel then
 * name, in rt->own), so the route stays valid after the caller's path
 * buffer is reused or freed.  BFS_ERR_NOMEM leaves rel and name "".
 */
static int route_own(struct bfs_route *rt, const char *rel, const char *name)
{
	size_t rl = strlen(rel), nl = strlen(name);
	char *own;

	if (!(own = malloc(rl + 1 + nl + 1)))
		return BFS_ERR_NOMEM;
	memcpy(own, rel, rl + 1);
	memcpy(own + rl + 1, name, nl + 1);
	free(rt->own);
	rt->own = own;
	rt->rel = own;
	rt->name = own + rl + 1;
	return 0;
}

/*
 * Stable paths across re-routing: asks the index whether rt->rel is a file
 * of another bucket (stored before the context was routed elsewhere) and
 * not one of the current bucket; then the route serves it from there.  A
 * folder only other buckets hold files below is marked dir_elsewhere.  An
 * index error leaves the route on the current bucket.
 */
static void route_elsewhere(struct bfs_registry *r, struct bfs_route *rt)
{
	struct where_acc w;
	struct bfs_rbucket *ob;
	int e;

	memset(&w, 0, sizeof(w));
	w.cur = rt->b->name;
	if ((e = bfs_store_ctx_where(r->store, rt->rel, where_cb, &w)) != 0) {
		BFS_DEBUG("%s: index not asked (%s): served by '%s'", rt->rel,
			  bfs_strerror(e), rt->b->name);
		return;
	}
	if (!rt->ctx_root && !w.exact_cur && w.exact_other &&
	    (ob = bfs_registry_get(r, w.other)) != NULL) {
		bfs_rbucket_put(rt->b);
		rt->b = ob;
		rt->elsewhere = 1;
		rt->indexed = 1;
		return;
	}
	rt->indexed = w.exact_cur;
	if (!w.exact_cur && w.under_other && (rt->ctx_root || !w.under_cur))
		rt->dir_elsewhere = 1;
}

/* A path below the mount root starting with "@": a view (sub-path p). */
static int route_view(struct bfs_registry *r, const struct bfs_view_path *vp,
		      const char *name, struct bfs_route *out)
{
	struct rsnap *sn = snap_get(r);
	const char *bn, *why = NULL;
	char *rel;
	size_t idl, subl;
	int rc = BFS_ERR_NOTFOUND;

	out->view = vp->view;
	out->ctx_type = bfs_view_ctx_type(vp->view);
	if (!sn)
		goto out;
	if (vp->view != BFS_VIEW_GENERAL && !vp->has_id) {
		if (!view_servable(sn, vp->view)) {
			view_unrouted(sn, vp->view, NULL,
				      bfs_view_ctx_type(vp->view) == 0 ?
				      "no assignment, no chat default and no "
				      "general default bucket" :
				      "no assignment, no forms default and no "
				      "general default bucket");
			goto out;
		}
		out->kind = BFS_ROUTE_VIEW;
		rc = route_own(out, "", name);
		goto out;
	}
	bn = bfs_view_pick(&sn->rules, vp->view, vp->id, &why);
	if (!bn || !(out->b = snap_bucket(sn, bn))) {
		view_unrouted(sn, vp->view, vp->has_id ? vp->id : NULL, why);
		goto out;
	}
	out->kind = BFS_ROUTE_BUCKET;
	if (vp->view == BFS_VIEW_GENERAL) {
		rc = route_own(out, vp->sub, name);
		goto out;
	}
	snprintf(out->ctx_id, sizeof(out->ctx_id), "%s", vp->id);
	idl = strlen(vp->id);
	subl = strlen(vp->sub);
	if (!(rel = malloc(5 + idl + 1 + subl + 1))) {
		rc = BFS_ERR_NOMEM;
		goto out;
	}
	snprintf(rel, 5 + idl + 1 + subl + 1, "%s/%s%s%s",
		 out->ctx_type == 0 ? "chat" : "form", vp->id,
		 subl ? "/" : "", vp->sub);
	rc = route_own(out, rel, name);
	free(rel);
	if (rc != 0)
		goto out;
	out->ctx_root = subl == 0;
	snap_put(sn);
	sn = NULL;
	route_elsewhere(r, out);
	rc = 0;
out:
	snap_put(sn);
	return rc;
}

int bfs_route_resolve(struct bfs_registry *r, const char *path,
		      struct bfs_route *out)
{
	struct bfs_view_path vp;
	char name[BFS_BUCKET_NAME_MAX + 2];
	const char *p, *slash, *last, *rel;
	size_t len;
	int ctl, rc;

	memset(out, 0, sizeof(*out));
	out->ctl = -1;
	out->ctx_type = -1;
	out->rel = out->name = "";
	if (!path || path[0] != '/')
		return BFS_ERR_INVAL;
	p = path + 1;
	last = strrchr(path, '/') + 1;
	if (r->single) {
		if (!(out->b = bfs_registry_get(r, r->single)))
			return BFS_ERR_NOTFOUND;
		out->kind = BFS_ROUTE_BUCKET;
		rel = p;
		goto own;
	}
	if (!*p) {
		out->kind = BFS_ROUTE_ROOT;
		rel = "";
		goto own;
	}
	slash = strchr(p, '/');
	len = slash ? (size_t)(slash - p) : strlen(p);
	if (p[0] == '@') {
		rc = bfs_view_parse(p, &vp);
		if (rc == 0) {
			if ((rc = route_view(r, &vp, last, out)) != 0)
				bfs_route_clear(out);
			return rc;
		}
		if (rc != BFS_ERR_NOTFOUND)
			return rc;
	}
	if (p[0] == '.' || p[0] == '@') {
		if (!slash && (ctl = bfs_ctl_lookup(p)) >= 0) {
			out->kind = BFS_ROUTE_CTL;
			out->ctl = ctl;
			rel = "";
			goto own;
		}
		if (slash)
			return BFS_ERR_NOTFOUND;
		out->kind = BFS_ROUTE_RESERVED;
		rel = "";
		goto own;
	}
	if (len > BFS_BUCKET_NAME_MAX)
		return BFS_ERR_NOTFOUND;
	memcpy(name, p, len);
	name[len] = '\0';
	if (!(out->b = bfs_registry_get(r, name)))
		return BFS_ERR_NOTFOUND;
	out->kind = BFS_ROUTE_BUCKET;
	rel = slash ? slash + 1 : "";
own:
	if ((rc = route_own(out, rel, last)) != 0)
		bfs_route_clear(out);
	return rc;
}

struct ids_acc {
	char **v;
	size_t n, cap;
	int err;
};

static int ids_add(struct ids_acc *a, const char *id)
{
	char **nv;

	if (!bfs_ctx_id_valid(id))
		return 0;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;

		if (nc > 10u * 1000 * 1000 || !(nv = realloc(a->v, nc * sizeof(*nv)))) {
			a->err = BFS_ERR_NOMEM;
			return 1;
		}
		a->v = nv;
		a->cap = nc;
	}
	if (!(a->v[a->n] = strdup(id))) {
		a->err = BFS_ERR_NOMEM;
		return 1;
	}
	a->n++;
	return 0;
}

static int ids_cb(void *arg, const struct bfs_ctx_row *row)
{
	return ids_add(arg, row->rel);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bfs_route_ctx_ids(struct bfs_registry *r, int type, char ***ids,
		      size_t *n)
{
	struct ids_acc a;
	struct rsnap *sn = snap_get(r);
	size_t i, j;
	int rc = 0;

	memset(&a, 0, sizeof(a));
	*ids = NULL;
	*n = 0;
	for (i = 0; sn && i < sn->rules.nas && !a.err; i++)
		if (sn->rules.as[i].type == type)
			ids_add(&a, sn->rules.as[i].id);
	snap_put(sn);
	if (!a.err && (rc = bfs_store_ctx_ids(r->store, type, ids_cb, &a)) != 0)
		goto out;
	if ((rc = a.err) != 0)
		goto out;
	if (a.n)
		qsort(a.v, a.n, sizeof(*a.v), str_cmp);
	for (i = j = 0; i < a.n; i++) {
		if (j && strcmp(a.v[j - 1], a.v[i]) == 0) {
			free(a.v[i]);
			continue;
		}
		a.v[j++] = a.v[i];
	}
	*ids = a.v;
	*n = j;
	a.v = NULL;
	a.n = 0;
out:
	bfs_registry_names_free(a.v, a.n);
	return rc;
}

int bfs_route_ctx_elsewhere(struct bfs_registry *r, const struct bfs_route *rt,
			    bfs_ctx_row_fn cb, void *arg)
{
	size_t l;
	char *pfx;
	int rc;

	if (rt->kind != BFS_ROUTE_BUCKET || rt->ctx_type < 0 || !rt->b)
		return 0;
	l = strlen(rt->rel);
	if (!(pfx = malloc(l + 2)))
		return BFS_ERR_NOMEM;
	memcpy(pfx, rt->rel, l);
	pfx[l] = '/';
	pfx[l + 1] = '\0';
	rc = bfs_store_ctx_folder(r->store, pfx, NULL, cb, arg);
	free(pfx);
	return rc;
}

void bfs_route_clear(struct bfs_route *rt)
{
	if (!rt)
		return;
	bfs_rbucket_put(rt->b);
	rt->b = NULL;
	free(rt->own);
	rt->own = NULL;
	rt->rel = rt->name = "";
}

int bfs_route_key(const struct bfs_route *rt, int dir, char **key)
{
	*key = NULL;
	if (rt->kind != BFS_ROUTE_BUCKET || !rt->b)
		return BFS_ERR_INVAL;
	return bfs_key_from_path(rt->b->prefix, rt->rel, dir, key);
}
