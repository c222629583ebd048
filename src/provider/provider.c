/*
 * provider.c - picks the ops table of a bucket's provider kind and keeps
 * the process-wide provider settings (CA bundle, timeouts).
 *
 * s3, r2 and gcs share bfs_provider_s3 (r2 and gcs differ only by
 * settings and quirk flags the s3 code reads from the bucket conf); local
 * and azure have their own tables.  The globals
 * are set once at start (before any provider is opened) and only read
 * afterwards, so they need no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_provider.h"

#define PROVIDER_CONNECT_TIMEOUT 10
#define PROVIDER_LOW_SPEED_TIME 30

/* Written only by bfs_provider_set_globals() at start; ca_bundle owned. */
static char *provider_ca_bundle;
static struct bfs_provider_globals provider_globals = {
	NULL, PROVIDER_CONNECT_TIMEOUT, PROVIDER_LOW_SPEED_TIME
};

static const struct bfs_provider_ops *provider_ops_for(int kind)
{
	switch (kind) {
	case BFS_PROV_LOCAL:
		return &bfs_provider_local;
	case BFS_PROV_S3:
	case BFS_PROV_R2:
	case BFS_PROV_GCS:
		return &bfs_provider_s3;
	case BFS_PROV_AZURE:
		return &bfs_provider_azure;
	default:
		return NULL;
	}
}

/*
 * Opens the provider of bucket bc: *out (caller closes with
 * bfs_provider_close) or NULL with a one-line reason in err.
 */
int bfs_provider_open(const struct bfs_bucket_conf *bc,
		      struct bfs_provider **out, char *err, size_t errlen)
{
	const struct bfs_provider_ops *ops;
	struct bfs_provider *p = NULL;
	int r = BFS_ERR_INTERNAL;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!bc) {
		r = BFS_ERR_INVAL;
		goto out;
	}
	ops = provider_ops_for(bc->provider);
	if (!ops || !ops->create) {
		if (err && errlen)
			snprintf(err, errlen, "bucket '%s': unknown provider %d",
				 bc->name ? bc->name : "?", bc->provider);
		r = BFS_ERR_CONFIG;
		goto out;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	p->ops = ops;
	p->read_only = bc->read_only ? 1 : 0;
	if ((r = ops->create(bc, &p->st, err, errlen)) != 0) {
		if (err && errlen && !err[0])
			snprintf(err, errlen, "bucket '%s': %s",
				 bc->name ? bc->name : "?", bfs_strerror(r));
		goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
out:
	free(p);
	return r;
}

void bfs_provider_close(struct bfs_provider *p)
{
	if (!p)
		return;
	if (p->ops && p->ops->destroy)
		p->ops->destroy(p->st);
	free(p);
}

/*
 * Copies g (NULL: back to the defaults).  Timeouts <= 0 take the defaults
 * (connect 10 s, low speed 30 s).  Call before opening providers.
 */
void bfs_provider_set_globals(const struct bfs_provider_globals *g)
{
	char *ca = NULL;

	if (g && g->ca_bundle)
		ca = strdup(g->ca_bundle);   /* NULL on ENOMEM: system default */
	free(provider_ca_bundle);
	provider_ca_bundle = ca;
	provider_globals.ca_bundle = ca;
	provider_globals.connect_timeout = g && g->connect_timeout > 0 ?
					   g->connect_timeout : PROVIDER_CONNECT_TIMEOUT;
	provider_globals.low_speed_time = g && g->low_speed_time > 0 ?
					  g->low_speed_time : PROVIDER_LOW_SPEED_TIME;
}

const struct bfs_provider_globals *bfs_provider_get_globals(void)
{
	return &provider_globals;
}
