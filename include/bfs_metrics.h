/*
 * bfs_metrics.h - process-wide counters for .metrics (Prometheus text).
 *
 * Lock-free: every counter is a C11 atomic.  The http layer counts requests
 * by operation and status class, bytes and retries; the FUSE layer counts
 * cache hits/misses and pending uploads.
 */
#ifndef BFS_METRICS_H
#define BFS_METRICS_H

#include <stdint.h>
#include "bfs_buf.h"

enum bfs_metric_op {
	BFS_OP_HEAD, BFS_OP_GET, BFS_OP_PUT, BFS_OP_DELETE, BFS_OP_LIST,
	BFS_OP_COPY, BFS_OP_MULTIPART, BFS_OP_OTHER, BFS_OP_COUNT
};

/* status: HTTP status (0 for a transport failure). */
void bfs_metrics_request(int op, int status);
void bfs_metrics_bytes(uint64_t up, uint64_t down);
void bfs_metrics_retry(void);
void bfs_metrics_cache(int hit);
void bfs_metrics_pending_add(int delta);
/* Handles open on the mount (files, folders and control files: a reader
 * of .metrics sees its own); fs.c counts them. */
void bfs_metrics_handles_add(int delta);
/* One completed upload (close/fsync) and how long it took. */
void bfs_metrics_upload_latency(double seconds);
/* The PostgreSQL catalog's state (connected 1/0) and queued index rows;
 * rendered once set (never with a SQLite database). */
void bfs_metrics_database(int connected, int64_t queued);
/* One change notification from another host applied. */
void bfs_metrics_database_notified(void);
/* Renders every metric in the Prometheus text exposition format. */
int bfs_metrics_render(struct bfs_buf *out);

#endif
