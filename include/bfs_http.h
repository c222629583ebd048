/*
 * bfs_http.h - the http layer: one request over a pool of reused
 * connections, the S3 error table and the retry policy.
 *
 * src/http/http.c is the only file that includes curl.  A bfs_http client
 * keeps a pool of easy handles (keep-alive) sharing DNS, connection and
 * TLS-session caches; bfs_http_do() performs ONE exchange (no retry) and
 * reports the HTTP status, the response headers and the body (to a capped
 * buffer, a file descriptor, a caller buffer or a streaming sink).  Retries
 * are the caller's loop around it using bfs_retry_*(); errors are mapped
 * with bfs_s3err_map() (src/http/s3err.c, the ONE table).
 */
#ifndef BFS_HTTP_H
#define BFS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "bfs_buf.h"

struct bfs_http;         /* opaque client: handle pool + share handle */

/* Creates a client (curl global init happens once per process). */
int bfs_http_new(struct bfs_http **out);
/* Frees a client; safe with NULL.  No request may be running. */
void bfs_http_free(struct bfs_http *h);

enum bfs_http_sink {
	BFS_HTTP_TO_BUF = 0,     /* resp->body, capped at req->max_body */
	BFS_HTTP_TO_FD,          /* pwrite to req->out_fd from req->out_off */
	BFS_HTTP_TO_MEM,         /* req->out_mem, at most req->out_cap bytes */
	BFS_HTTP_TO_FN           /* req->out_fn(req->out_arg, data, len) */
};

struct bfs_http_req {
	const char *method;      /* GET HEAD PUT POST DELETE */
	const char *url;         /* full URL, path and query already encoded */
	const char *const *headers;  /* "Name: value" lines */
	size_t nheaders;
	int op;                  /* enum bfs_metric_op, for metrics */
	const char *log_key;     /* key shown in debug logs (never a secret) */

	/* request body: memory (body, body_len) or, with body_fd >= 0, the
	 * range [body_off, body_off + body_len) of body_fd read with pread */
	const void *body;
	int body_fd;             /* -1: none / memory */
	uint64_t body_off;
	uint64_t body_len;

	/* response body of a 2xx reply; any other status always goes to
	 * resp->body (the error document, capped at 64 KiB) */
	int sink;                /* enum bfs_http_sink */
	size_t max_body;         /* TO_BUF cap (0: 1 MiB) */
	int out_fd;
	uint64_t out_off;
	char *out_mem;
	size_t out_cap;
	/* TO_FN: return 0 to go on, a negative BFS_ERR_* to abort */
	int (*out_fn)(void *arg, const char *data, size_t len);
	void *out_arg;
};

struct bfs_http_resp {
	int status;              /* HTTP status; 0 when no reply */
	struct bfs_buf body;     /* TO_BUF content or the error document */
	struct bfs_buf headers;  /* raw header lines of the final reply */
	uint64_t got;            /* body bytes delivered to the sink */
	double seconds;          /* total time */
};

/* Zeroes resp (bodies empty).  bfs_http_resp_free() releases it. */
void bfs_http_resp_init(struct bfs_http_resp *resp);
void bfs_http_resp_free(struct bfs_http_resp *resp);

/*
 * Performs one exchange.  Returns 0 when a reply was received (whatever
 * its status: see resp->status), else BFS_ERR_NETWORK (connect, reset),
 * BFS_ERR_TIMEOUT, BFS_ERR_CONFIG (TLS verification, bad URL), BFS_ERR_IO
 * (reading body_fd / writing out_fd), BFS_ERR_TOOBIG (a sink cap), or the
 * error an out_fn returned.  resp is reset first (reusable across retries).
 */
int bfs_http_do(struct bfs_http *h, const struct bfs_http_req *req,
		struct bfs_http_resp *resp);

/*
 * Value of response header name (case-insensitive), trimmed, copied into
 * out.  0, BFS_ERR_NOTFOUND, BFS_ERR_TOOBIG.
 */
int bfs_http_resp_header(const struct bfs_http_resp *resp, const char *name,
			 char *out, size_t outlen);

/* ---- src/http/s3err.c: THE table HTTP status + S3 <Code> -> BFS_ERR_* ---- */

/*
 * Maps a reply to a project error: the S3 <Code> first (code may be NULL
 * or "" when the body had none, e.g. HEAD), then the status class.
 * 2xx gives 0.
 */
int bfs_s3err_map(int status, const char *code);

/* ---- src/http/retry.c: the retry policy ---- */

struct bfs_retry_policy {
	int max_attempts;        /* total tries, >= 1 */
	unsigned base_ms;        /* first backoff ceiling */
	unsigned cap_ms;         /* backoff ceiling cap */
};

/* 5 attempts, base 200 ms, cap 10 s. */
void bfs_retry_policy_default(struct bfs_retry_policy *p);
/*
 * 1 when a request whose attempt number `attempt` (1-based) failed with
 * err should be tried again: err is retryable (5xx, SlowDown, 429,
 * RequestTimeout, connection reset or timeout) and attempts remain.
 */
int bfs_retry_should(const struct bfs_retry_policy *p, int attempt, int err);
/* Full jitter: a delay in [0, min(cap, base * 2^(attempt-1))] ms from rnd. */
unsigned bfs_retry_delay_ms(const struct bfs_retry_policy *p, int attempt,
			    uint32_t rnd);
/*
 * The loop step: when bfs_retry_should(), counts a retry metric, sleeps
 * the jittered delay and returns 1; else returns 0 at once.
 */
int bfs_retry_next(const struct bfs_retry_policy *p, int attempt, int err);

#endif
