/*
 * bfs_rest.h - what the REST object providers (s3.c for s3/r2/gcs,
 * azure.c) share: one request description, the send loop around the
 * http layer, the s3fs-style metadata headers, and the request skeletons
 * of the simple operations (HEAD, ranged GET, GET into a file, a body
 * PUT, DELETE, parallel parts).
 *
 * A provider describes its dialect once (struct bfs_rest_dialect): its
 * metadata header prefix ("x-amz-meta-" / "x-ms-meta-"), its Range
 * header, its call function (URL, signing, error mapping, retries; built
 * on bfs_rest_run()) and how it reads metadata from a reply.  The
 * skeletons take the dialect and the provider's state and do request
 * init -> call -> metadata from the reply -> free in one place.
 */
#ifndef BFS_REST_H
#define BFS_REST_H

#include <stddef.h>
#include <stdint.h>

#include "bfs_buf.h"
#include "bfs_http.h"
#include "bfs_provider.h"
#include "bfs_sigv4.h"

#define BFS_REST_MAX_HDRS 32     /* request headers besides the signer's */
#define BFS_REST_MAX_QUERY 8
#define BFS_REST_MAX_EXTRA_META 16   /* other metadata kept by a rewrite */

/* One REST request as a provider's call function sends it. */
struct bfs_rest_req {
	const char *method;
	const char *key;             /* NULL: the bucket / container itself */
	struct bfs_sigv4_kv query[BFS_REST_MAX_QUERY];
	size_t nquery;
	struct bfs_sigv4_kv hdr[BFS_REST_MAX_HDRS];
	size_t nhdr;
	int op;                      /* enum bfs_metric_op */
	const void *body;            /* memory body */
	size_t body_len;
	int body_fd;                 /* file range body when >= 0 */
	uint64_t fd_off, fd_len;
	int has_body;                /* Content-Length is sent (azure signs it) */
	int check_200_error;         /* a 2xx may carry <Error> (s3 copy) */
	int sink;                    /* enum bfs_http_sink */
	size_t max_body;
	int out_fd;
	char *out_mem;
	size_t out_cap;
};

/* Zeroes q for method on key; no body, reply to a buffer. */
void bfs_rest_req_init(struct bfs_rest_req *q, const char *method,
		       const char *key, int op);
/* Adds a query parameter / a header (pointers kept); BFS_ERR_TOOBIG. */
int bfs_rest_q(struct bfs_rest_req *q, const char *name, const char *value);
int bfs_rest_h(struct bfs_rest_req *q, const char *name, const char *value);
/* Adds the "name\0value\0" pairs of extra (may be NULL) as headers. */
int bfs_rest_h_pairs(struct bfs_rest_req *q, const struct bfs_buf *extra);

/* ---- the send loop ---- */

/*
 * One attempt's headers: the provider signs q for this attempt and
 * writes every header line to send (its own, q's, the signature) into
 * out[0..*n), at most cap; the values must live until the next call or
 * the end of bfs_rest_run().  0 or a BFS_ERR_*.
 */
typedef int (*bfs_rest_sign_fn)(void *ctx, const struct bfs_rest_req *q,
				struct bfs_sigv4_kv *out, size_t cap,
				size_t *n);
/* A reply (any status) -> 0 or the mapped BFS_ERR_* (logs as it likes). */
typedef int (*bfs_rest_map_fn)(void *ctx, const struct bfs_rest_req *q,
			       const struct bfs_http_resp *resp);

/*
 * Sends q to url with retries: per attempt sign() (signed afresh), one
 * bfs_http_do() exchange, map() of the reply; again while
 * bfs_retry_next() says so.  resp (initialized by the caller) holds the
 * last reply.  The header lines are wiped after use (they hold the
 * signature).  0 on success, else the last error.
 */
int bfs_rest_run(struct bfs_http *h, const struct bfs_retry_policy *p,
		 const struct bfs_rest_req *q, const char *url,
		 bfs_rest_sign_fn sign, bfs_rest_map_fn map, void *ctx,
		 struct bfs_http_resp *resp);

/* ---- metadata ---- */

/* What differs between the REST providers in the skeletons below. */
struct bfs_rest_dialect {
	const char *meta_prefix;     /* "x-amz-meta-" | "x-ms-meta-" */
	const char *range_hdr;       /* "range" | "x-ms-range" */
	/* sends q with retries (bfs_rest_run inside); resp as there */
	int (*call)(void *st, const struct bfs_rest_req *q,
		    struct bfs_http_resp *resp);
	/* m from the headers of a HEAD / GET / PUT reply for key; *folder
	 * (may be NULL): the reply names a folder object */
	void (*meta)(const struct bfs_http_resp *resp, const char *key,
		     struct bfs_meta *m, int *folder);
};

/* An HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") -> epoch seconds; 0. */
int64_t bfs_rest_http_date(const char *s);
/* A decimal uint32 with nothing after it; BFS_ERR_INVAL. */
int bfs_rest_parse_u32(const char *s, uint32_t *out);
/* "SECONDS" or "SECONDS.FRACTION" (s3fs, rclone) -> sec, nsec. */
int bfs_rest_parse_mtime(const char *s, int64_t *sec, long *nsec);

/*
 * Zeroes m and fills what every reply has: size (Content-Length, or the
 * total of a Content-Range), etag (unquoted), content type, Last-Modified.
 */
void bfs_rest_meta_base(const struct bfs_http_resp *resp, struct bfs_meta *m);
/*
 * The s3fs attributes from their metadata values (any may be NULL): a
 * mode without type bits gets S_IFDIR when folder, else S_IFREG.
 */
void bfs_rest_meta_values(struct bfs_meta *m, const char *mode,
			  const char *uid, const char *gid, const char *mtime,
			  int folder);
/*
 * The PREFIX{mode,uid,gid,mtime,xattr} headers of a reply into m
 * (bfs_rest_meta_values; xattr "" when absent, has_xattr set).
 */
void bfs_rest_meta_posix(const struct bfs_http_resp *resp, const char *prefix,
			 int folder, struct bfs_meta *m);

/* Storage for the metadata headers of one request (names and values). */
struct bfs_rest_meta_hdrs {
	char n_mode[24], n_uid[24], n_gid[24], n_mtime[24], n_xattr[24];
	char mode[16], uid[16], gid[16], mtime[48];
	char ctype[128];
};
/*
 * Adds PREFIX{mode,uid,gid,mtime,xattr} headers of m (NULL: none) to q,
 * mtime as s3fs writes it (".%09ld" only when nsec != 0).
 */
int bfs_rest_add_meta(struct bfs_rest_req *q, struct bfs_rest_meta_hdrs *mh,
		      const char *prefix, const struct bfs_meta *m);
/*
 * The PREFIX* headers of a reply other than mode/uid/gid/mtime/xattr
 * (another tool's metadata, azure's hdi_isfolder) as "name\0value\0"
 * pairs appended to extra, so that a rewrite of the metadata keeps them.
 * BFS_ERR_TOOBIG beyond max pairs.
 */
int bfs_rest_extra_meta(const struct bfs_http_resp *resp, const char *prefix,
			size_t max, struct bfs_buf *extra);
/*
 * nm (the stored metadata) takes what m carries: mode, uid, gid, mtime
 * where their has_* are set, the content type when given, the xattr set
 * when has_xattr (chmod, chown, utimens, setxattr on a stored object).
 */
void bfs_rest_meta_merge(struct bfs_meta *nm, const struct bfs_meta *m);

/* ---- request skeletons ---- */

/*
 * The ops a provider's table takes as they are (get_range, get_fd): st
 * must be a state whose first member is a pointer to its dialect.
 */
int bfs_rest_op_get_range(void *st, const char *key, uint64_t off,
			  size_t len, char *buf, size_t *got,
			  const char *if_match);
int bfs_rest_op_get_fd(void *st, const char *key, int fd, struct bfs_meta *m);

/* HEAD of key into m (folder, extra: may be NULL; extra as above). */
int bfs_rest_head(const struct bfs_rest_dialect *d, void *st, const char *key,
		  struct bfs_meta *m, int *folder, struct bfs_buf *extra,
		  size_t extra_max);
/*
 * Ranged GET of [off, off + len) into buf (*got bytes; 0 past the end);
 * if_match (NULL or "") the etag the object must still have, else
 * BFS_ERR_PRECONDITION.  BFS_ERR_PROTOCOL when the server ignored Range.
 */
int bfs_rest_get_range(const struct bfs_rest_dialect *d, void *st,
		       const char *key, uint64_t off, size_t len, char *buf,
		       size_t *got, const char *if_match);
/* The whole object into fd (from offset 0, cut to its size); m optional. */
int bfs_rest_get_fd(const struct bfs_rest_dialect *d, void *st,
		    const char *key, int fd, struct bfs_meta *m);
/*
 * Sends q (a PUT of a body, a commit...) and copies the etag of the reply
 * into etag_out (may be NULL).
 */
int bfs_rest_send(const struct bfs_rest_dialect *d, void *st,
		  const struct bfs_rest_req *q, char *etag_out,
		  size_t etag_len);
/* DELETE of key; absent is not an error. */
int bfs_rest_delete(const struct bfs_rest_dialect *d, void *st,
		    const char *key);

/*
 * Runs one(arg, i) for i in [0, n) by up to workers pullers of indexes
 * from a shared counter: this thread and workers - 1 jobs of the I/O
 * pool (bfs_pool.h; this thread alone when called from a pool job, or
 * when the pool is down); returns once every puller has returned.  The
 * first failure stops the others from taking more and is returned.
 */
int bfs_rest_parallel(unsigned n, unsigned workers,
		      int (*one)(void *arg, unsigned i), void *arg);

#endif
