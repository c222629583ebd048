/*
 * bfs_sigv4.h - AWS Signature Version 4 (pure: no network, no clock).
 *
 * The caller describes one request (method, canonical URI already
 * URI-encoded, raw query parameters, headers, payload hash, credentials)
 * and passes the clock value; the signer returns the headers to add
 * (Authorization, x-amz-date, optionally x-amz-content-sha256 and
 * x-amz-security-token) or, for presigning, the complete query string.
 * Reproduces the AWS SigV4 test suite (tests/vectors/sigv4/).
 *
 * S3 rules: each key segment is URI-encoded once (RFC 3986 unreserved
 * kept, '/' kept: bfs_sigv4_uri_encode(..., 1, ...)); query names and
 * values are encoded by the signer with '/' encoded too.
 */
#ifndef BFS_SIGV4_H
#define BFS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "bfs_buf.h"

#define BFS_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"
#define BFS_SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Longest presign validity S3 accepts (7 days). */
#define BFS_SIGV4_PRESIGN_MAX 604800L

/* A header or query parameter as plain text (not encoded). */
struct bfs_sigv4_kv {
	const char *name;
	const char *value;       /* NULL is taken as "" */
};

struct bfs_sigv4_req {
	const char *method;      /* "GET", "PUT", ... */
	const char *uri;         /* canonical URI, already encoded ("/b/k%20x") */
	const struct bfs_sigv4_kv *query;  /* raw names/values, any order */
	size_t nquery;
	/* Headers to sign, any case/order; must include Host.  Repeated names
	 * are joined with ',' in the given order; values are trimmed and runs
	 * of spaces collapsed.  Do not pass x-amz-date (the signer adds it). */
	const struct bfs_sigv4_kv *headers;
	size_t nheaders;
	const char *payload_hash;/* lowercase hex SHA-256 or BFS_SIGV4_UNSIGNED;
				  * NULL: hash of the empty body */
	const char *region;      /* "us-east-1", "auto" */
	const char *service;     /* "s3" */
	const char *access_key;
	const char *secret;
	const char *session_token;   /* NULL or "": none */
	int add_content_sha256;  /* 1: sign and return x-amz-content-sha256 (S3) */
	time_t now;              /* the clock: seconds since the epoch, UTC */
};

/* Headers the caller must send (all NUL-terminated). */
struct bfs_sigv4_out {
	char amz_date[17];           /* x-amz-date: 20150830T123600Z */
	char content_sha256[65];     /* x-amz-content-sha256 when requested, else "" */
	char authorization[1024];    /* Authorization value */
};

/*
 * Signs req.  creq / sts (may be NULL) receive the canonical request and
 * the string to sign (for tests and debugging; they contain no secret).
 * Returns 0, BFS_ERR_INVAL (missing field), BFS_ERR_TOOBIG, BFS_ERR_CRYPTO.
 * The session token, when set, is signed as x-amz-security-token; the
 * caller sends it with that header.
 */
int bfs_sigv4_sign(const struct bfs_sigv4_req *req, struct bfs_sigv4_out *out,
		   struct bfs_buf *creq, struct bfs_buf *sts);

/*
 * Query presigning: builds into *query (initialized by the caller; reset
 * first) the full encoded query string of a presigned URL: req->query plus
 * X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders=host (+ X-Amz-Security-Token) and X-Amz-Signature.
 * The payload is UNSIGNED-PAYLOAD; req->headers must hold just Host.
 * expires: 1..BFS_SIGV4_PRESIGN_MAX, else BFS_ERR_INVAL.
 */
int bfs_sigv4_presign(const struct bfs_sigv4_req *req, long expires,
		      struct bfs_buf *query);

/*
 * Appends s URI-encoded to out: RFC 3986 unreserved characters kept,
 * '/' kept when keep_slash, everything else %XX (uppercase).
 */
int bfs_sigv4_uri_encode(const char *s, int keep_slash, struct bfs_buf *out);

/* Lowercase hex SHA-256 of data (hex: 65 bytes). 0 or BFS_ERR_CRYPTO. */
int bfs_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);
/* The same over the file range [off, off + len) read with pread (the one
 * helper here that does I/O).  0, BFS_ERR_IO (short file), BFS_ERR_CRYPTO. */
int bfs_sigv4_sha256_fd(int fd, uint64_t off, uint64_t len, char hex[65]);

#endif
