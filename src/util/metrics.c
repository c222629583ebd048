/*
 * metrics.c - process-wide counters rendered for .metrics (Prometheus text
 * exposition format 0.0.4).  Every counter is a relaxed C11 atomic: readers
 * may see a slightly torn snapshot across counters, never a torn counter.
 */
#include <stdatomic.h>

#include "bfs_metrics.h"

#define STATUS_CLASSES 6   /* 0 = transport failure, 1..5 = 1xx..5xx */

static const char *const op_names[BFS_OP_COUNT] = {
	"head", "get", "put", "delete", "list", "copy", "multipart", "other"
};
static const double latency_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

static atomic_ullong requests[BFS_OP_COUNT][STATUS_CLASSES];
static atomic_ullong bytes_up, bytes_down, retries, cache_hits, cache_misses;
static atomic_llong pending;
static atomic_llong handles;
static atomic_ullong lat_buckets[NBOUNDS + 1];
static atomic_ullong lat_count;
static atomic_ullong lat_sum_us;
static atomic_int db_state = -1;        /* -1: no PostgreSQL catalog */
static atomic_llong db_queued;
static atomic_ullong db_notified;

void bfs_metrics_request(int op, int status)
{
	int cls = status / 100;

	if (op < 0 || op >= BFS_OP_COUNT)
		op = BFS_OP_OTHER;
	if (cls < 0 || cls >= STATUS_CLASSES)
		cls = 0;
	atomic_fetch_add_explicit(&requests[op][cls], 1, memory_order_relaxed);
}

void bfs_metrics_bytes(uint64_t up, uint64_t down)
{
	atomic_fetch_add_explicit(&bytes_up, up, memory_order_relaxed);
	atomic_fetch_add_explicit(&bytes_down, down, memory_order_relaxed);
}

void bfs_metrics_retry(void)
{
	atomic_fetch_add_explicit(&retries, 1, memory_order_relaxed);
}

void bfs_metrics_cache(int hit)
{
	atomic_fetch_add_explicit(hit ? &cache_hits : &cache_misses, 1,
				  memory_order_relaxed);
}

void bfs_metrics_pending_add(int delta)
{
	atomic_fetch_add_explicit(&pending, delta, memory_order_relaxed);
}

void bfs_metrics_handles_add(int delta)
{
	atomic_fetch_add_explicit(&handles, delta, memory_order_relaxed);
}

void bfs_metrics_upload_latency(double seconds)
{
	size_t i;

	for (i = 0; i < NBOUNDS && seconds > latency_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&lat_buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lat_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lat_sum_us,
				  (unsigned long long)(seconds * 1e6),
				  memory_order_relaxed);
}

void bfs_metrics_database(int connected, int64_t queued)
{
	atomic_store_explicit(&db_queued, queued, memory_order_relaxed);
	atomic_store_explicit(&db_state, connected ? 1 : 0,
			      memory_order_relaxed);
}

void bfs_metrics_database_notified(void)
{
	atomic_fetch_add_explicit(&db_notified, 1, memory_order_relaxed);
}

int bfs_metrics_render(struct bfs_buf *out)
{
	static const char *const cls_names[STATUS_CLASSES] = {
		"error", "1xx", "2xx", "3xx", "4xx", "5xx"
	};
	unsigned long long cum = 0;
	int r = 0, op, c;
	size_t i;

	r |= bfs_buf_adds(out,
		"# HELP bucketfs_requests_total Provider requests by operation and status class.\n"
		"# TYPE bucketfs_requests_total counter\n");
	for (op = 0; op < BFS_OP_COUNT; op++)
		for (c = 0; c < STATUS_CLASSES; c++)
			r |= bfs_buf_addf(out,
				"bucketfs_requests_total{op=\"%s\",status=\"%s\"} %llu\n",
				op_names[op], cls_names[c],
				atomic_load(&requests[op][c]));
	r |= bfs_buf_addf(out,
		"# HELP bucketfs_bytes_total Bytes sent to and received from providers.\n"
		"# TYPE bucketfs_bytes_total counter\n"
		"bucketfs_bytes_total{direction=\"up\"} %llu\n"
		"bucketfs_bytes_total{direction=\"down\"} %llu\n"
		"# HELP bucketfs_retries_total Requests retried after a transient failure.\n"
		"# TYPE bucketfs_retries_total counter\n"
		"bucketfs_retries_total %llu\n"
		"# HELP bucketfs_cache_total Attribute and data cache lookups.\n"
		"# TYPE bucketfs_cache_total counter\n"
		"bucketfs_cache_total{result=\"hit\"} %llu\n"
		"bucketfs_cache_total{result=\"miss\"} %llu\n"
		"# HELP bucketfs_pending_uploads Files with data not yet stored by their provider.\n"
		"# TYPE bucketfs_pending_uploads gauge\n"
		"bucketfs_pending_uploads %lld\n"
		"# HELP bucketfs_open_handles Open files, folders and control files (this read's own included).\n"
		"# TYPE bucketfs_open_handles gauge\n"
		"bucketfs_open_handles %lld\n"
		"# HELP bucketfs_upload_seconds Time from close/fsync to stored.\n"
		"# TYPE bucketfs_upload_seconds histogram\n",
		atomic_load(&bytes_up), atomic_load(&bytes_down),
		atomic_load(&retries), atomic_load(&cache_hits),
		atomic_load(&cache_misses), atomic_load(&pending),
		atomic_load(&handles));
	for (i = 0; i < NBOUNDS; i++) {
		cum += atomic_load(&lat_buckets[i]);
		r |= bfs_buf_addf(out, "bucketfs_upload_seconds_bucket{le=\"%g\"} %llu\n",
				  latency_bounds[i], cum);
	}
	cum += atomic_load(&lat_buckets[NBOUNDS]);
	r |= bfs_buf_addf(out,
		"bucketfs_upload_seconds_bucket{le=\"+Inf\"} %llu\n"
		"bucketfs_upload_seconds_sum %.6f\n"
		"bucketfs_upload_seconds_count %llu\n",
		cum, atomic_load(&lat_sum_us) / 1e6, atomic_load(&lat_count));
	if (atomic_load(&db_state) >= 0)
		r |= bfs_buf_addf(out,
			"# HELP bucketfs_database_connected The PostgreSQL catalog is reachable (1) or not (0).\n"
			"# TYPE bucketfs_database_connected gauge\n"
			"bucketfs_database_connected %d\n"
			"# HELP bucketfs_index_queued Index rows queued locally until the database is back.\n"
			"# TYPE bucketfs_index_queued gauge\n"
			"bucketfs_index_queued %lld\n"
			"# HELP bucketfs_database_notifications_total File changes other hosts announced (LISTEN/NOTIFY).\n"
			"# TYPE bucketfs_database_notifications_total counter\n"
			"bucketfs_database_notifications_total %llu\n",
			atomic_load(&db_state), atomic_load(&db_queued),
			atomic_load(&db_notified));
	return r ? -1 : 0;
}
