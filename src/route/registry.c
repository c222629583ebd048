/*
 * registry.c - the live set of buckets and path routing.
 *
 * The registry holds an array of refcounted buckets (struct bfs_rbucket),
 * each with its provider opened from the settings in the store.  Readers
 * (every FUSE operation) take a reference under a short mutex and then work
 * without any registry lock, so a slow provider call never blocks a reload
 * and a reload never pulls a provider out from under an operation: the old
 * bucket is freed (and its provider closed) when its last reference drops.
 *
 * Reload: read the bucket list, build a new array reusing every bucket whose
 * settings did not change (same provider instance, same status), open
 * providers for new or changed ones, then swap the arrays under the mutex.
 * The poll thread compares bfs_store_data_version every 250 ms (outside
 * commits from bucketctl) and runs the reload; it also runs the SIGHUP hook
 * requested through an atomic flag.
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
#include "bfs_error.h"
#include "bfs_key.h"
#include "bfs_log.h"
#include "bfs_perm.h"
#include "bfs_route.h"

#define REGISTRY_POLL_NS (250L * 1000 * 1000)
#define REGISTRY_MAX_BUCKETS 4096

struct bfs_registry {
	struct bfs_store *store;          /* not owned */
	char *single;                     /* single-bucket mode name or NULL */

	pthread_mutex_t reload_mu;        /* serializes reloads; guards key */
	unsigned char key[BFS_MASTER_KEY_LEN];
	int has_key;

	pthread_mutex_t mu;               /* guards b, n */
	struct bfs_rbucket **b;           /* sorted by name */
	size_t n;

	pthread_t thread;
	int thread_started;
	_Atomic int stop;
	_Atomic int hook_requested;
	bfs_registry_hook_fn hook;
	void *hook_arg;
	int64_t data_version;             /* only touched by the poll thread */
	bfs_registry_changed_fn changed;  /* set before the thread starts */
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

/* +1 ref on the current bucket with exactly these settings, or NULL. */
static struct bfs_rbucket *find_same(struct bfs_registry *r,
				     const struct bfs_bucket_conf *c)
{
	struct bfs_rbucket *found = NULL;
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->n; i++) {
		if (strcmp(r->b[i]->name, c->name ? c->name : "") == 0) {
			if (conf_same(&r->b[i]->conf, c)) {
				found = r->b[i];
				bfs_rbucket_ref(found);
			}
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
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
	struct bfs_rbucket **nb = NULL, **old;
	size_t n = 0, i, oldn;
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
	pthread_mutex_lock(&r->mu);
	old = r->b;
	oldn = r->n;
	r->b = nb;
	r->n = n;
	pthread_mutex_unlock(&r->mu);
	if (r->changed)
		notify_changed(r, old, oldn, nb, n);
	nb = NULL;
	array_put(old, oldn);
	rc = 0;
out:
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
	int rc = BFS_ERR_NOMEM;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!(r = calloc(1, sizeof(*r))))
		goto out;
	r->store = s;
	pthread_mutex_init(&r->reload_mu, NULL);
	pthread_mutex_init(&r->mu, NULL);
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
	array_put(r->b, r->n);
	OPENSSL_cleanse(r->key, sizeof(r->key));
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->reload_mu);
	free(r->single);
	free(r);
}

static void *registry_thread(void *arg)
{
	struct bfs_registry *r = arg;
	struct timespec ts = { 0, REGISTRY_POLL_NS };
	char err[512];
	int64_t v;

	while (!atomic_load(&r->stop)) {
		nanosleep(&ts, NULL);
		if (atomic_load(&r->stop))
			break;
		if (atomic_exchange(&r->hook_requested, 0) && r->hook)
			r->hook(r->hook_arg);
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
	size_t lo, hi, mid;
	int c;

	pthread_mutex_lock(&r->mu);
	lo = 0;
	hi = r->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, r->b[mid]->name);
		if (c == 0) {
			b = r->b[mid];
			bfs_rbucket_ref(b);
			break;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!b) {
		/* The store sorts by name but maybe not bytewise: fall back. */
		for (mid = 0; mid < r->n; mid++) {
			if (strcmp(name, r->b[mid]->name) == 0) {
				b = r->b[mid];
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

	*names = NULL;
	*n = 0;
	pthread_mutex_lock(&r->mu);
	if (r->n && !(v = calloc(r->n, sizeof(*v))))
		goto out;
	for (i = 0; i < r->n; i++) {
		if (!(v[i] = strdup(r->b[i]->name)))
			goto out;
		cnt++;
	}
	*names = v;
	*n = cnt;
	v = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&r->mu);
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

int bfs_route_resolve(struct bfs_registry *r, const char *path,
		      struct bfs_route *out)
{
	char name[BFS_BUCKET_NAME_MAX + 2];
	const char *p, *slash, *last;
	size_t len;
	int ctl;

	memset(out, 0, sizeof(*out));
	out->ctl = -1;
	if (!path || path[0] != '/')
		return BFS_ERR_INVAL;
	p = path + 1;
	last = strrchr(path, '/') + 1;
	out->name = last;
	if (r->single) {
		if (!(out->b = bfs_registry_get(r, r->single)))
			return BFS_ERR_NOTFOUND;
		out->kind = BFS_ROUTE_BUCKET;
		out->rel = p;
		return 0;
	}
	if (!*p) {
		out->kind = BFS_ROUTE_ROOT;
		out->rel = "";
		return 0;
	}
	slash = strchr(p, '/');
	len = slash ? (size_t)(slash - p) : strlen(p);
	if (p[0] == '.' || p[0] == '@') {
		if (!slash && (ctl = bfs_ctl_lookup(p)) >= 0) {
			out->kind = BFS_ROUTE_CTL;
			out->ctl = ctl;
			out->rel = "";
			return 0;
		}
		if (slash)
			return BFS_ERR_NOTFOUND;
		out->kind = BFS_ROUTE_RESERVED;
		out->rel = "";
		return 0;
	}
	if (len > BFS_BUCKET_NAME_MAX)
		return BFS_ERR_NOTFOUND;
	memcpy(name, p, len);
	name[len] = '\0';
	if (!(out->b = bfs_registry_get(r, name)))
		return BFS_ERR_NOTFOUND;
	out->kind = BFS_ROUTE_BUCKET;
	out->rel = slash ? slash + 1 : "";
	return 0;
}

void bfs_route_clear(struct bfs_route *rt)
{
	if (!rt)
		return;
	bfs_rbucket_put(rt->b);
	rt->b = NULL;
}

int bfs_route_key(const struct bfs_route *rt, int dir, char **key)
{
	*key = NULL;
	if (rt->kind != BFS_ROUTE_BUCKET || !rt->b)
		return BFS_ERR_INVAL;
	return bfs_key_from_path(rt->b->prefix, rt->rel, dir, key);
}
