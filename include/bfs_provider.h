/*
 * bfs_provider.h - a storage provider is a const table of operations on
 * keys of one bucket (curl vtls/vtls_int.h style).  s3 and r2 share one
 * implementation (r2 = s3 with its endpoint, region "auto" and quirk
 * flags); local keeps objects as files under a folder.
 *
 * Keys are full remote keys (prefix included), already checked with
 * bfs_key_check().  A key ending in '/' is a folder marker.  Type and
 * permissions travel in bfs_meta.mode (st_mode): putting a key with
 * S_IFLNK stores a symlink whose target is the body (s3fs layout; local:
 * a real symlink, never followed), putting "a/b/" with S_IFDIR makes a
 * folder (s3: a 0-byte marker; local: mkdir).
 *
 * All operations are thread-safe on one handle and return 0 or a negative
 * BFS_ERR_* code; retries of transient failures happen inside.
 */
#ifndef BFS_PROVIDER_H
#define BFS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "bfs_config.h"

/* Room for the user xattrs of one object, encoded (bfs_xattr.h). */
#define BFS_META_XATTR_MAX 2048

struct bfs_meta {
	uint64_t size;
	int64_t mtime;           /* seconds */
	long mtime_nsec;
	uint32_t mode;           /* st_mode with type bits; 0 = unknown */
	uint32_t uid, gid;
	unsigned has_mode : 1, has_uid : 1, has_gid : 1, has_mtime : 1;
	/*
	 * has_xattr: xattr below is the object's whole set of user xattrs.
	 * head/get_fd set it (and xattr, "" for none); a put stores xattr
	 * as given; set_meta and copy with m replace the stored set only
	 * when it is set, else keep it.
	 */
	unsigned has_xattr : 1;
	char etag[96];           /* without quotes; "" unknown */
	char content_type[128];  /* "" unknown */
	/* s3fs's x-amz-meta-xattr value (URL-encoded JSON, bfs_xattr.h);
	 * "" none.  local keeps them as real xattrs of the file instead. */
	char xattr[BFS_META_XATTR_MAX + 1];
};

/*
 * Listing callback: name relative to the listed prefix, without trailing
 * '/'; is_dir for common prefixes and folder markers (and local folders);
 * meta may be NULL for a common prefix with no marker.  Return 0 to go on,
 * non-zero to stop (list then returns 0).  Unsafe keys never reach it
 * (but see BFS_LIST_UNSAFE).
 */
typedef int (*bfs_list_fn)(void *arg, const char *name, int is_dir,
			   const struct bfs_meta *meta);

/* One stored part of a multipart upload (ListParts). */
struct bfs_mpu_part {
	unsigned number;         /* 1..10000 */
	uint64_t size;
	char etag[96];           /* without quotes */
};

#define BFS_MPU_ID_MAX 1024      /* room for an upload id, NUL included */

/*
 * Multipart listing callback (ListMultipartUploads): key is the full
 * remote key, initiated epoch seconds (0 unknown).  0 goes on, non-zero
 * stops.
 */
typedef int (*bfs_mpu_upload_fn)(void *arg, const char *key,
				 const char *upload_id, int64_t initiated);

enum bfs_list_flags {
	BFS_LIST_RECURSIVE = 1,  /* no delimiter: every key below prefix */
	/* An existence check: entries with unsafe keys reach the callback
	 * too, with name NULL, so a folder that holds only such keys still
	 * exists (its listing shows it) though none of them is shown.
	 * Providers whose listings never hold an unsafe name ignore it. */
	BFS_LIST_UNSAFE = 2
};

struct bfs_provider_ops {
	const char *name;        /* "local" | "s3" | "azure" */

	/* Creates the per-bucket state from its settings. */
	int (*create)(const struct bfs_bucket_conf *bc, void **state,
		      char *err, size_t errlen);
	void (*destroy)(void *state);

	/* BFS_ERR_NOTFOUND when absent. */
	int (*head)(void *st, const char *key, struct bfs_meta *m);
	/*
	 * Reads up to len bytes at off into buf; *got = bytes read (short at
	 * EOF).  if_match (NULL or "": any version) is the etag the object
	 * must still have, else BFS_ERR_PRECONDITION and nothing is read:
	 * the blocks of one open file then all come from one version.
	 */
	int (*get_range)(void *st, const char *key, uint64_t off, size_t len,
			 char *buf, size_t *got, const char *if_match);
	/* Whole object into fd (written from offset 0); m filled when non-NULL. */
	int (*get_fd)(void *st, const char *key, int fd, struct bfs_meta *m);
	/*
	 * Stores size bytes read from fd (pread from offset 0) as key with the
	 * metadata in m (mode/uid/gid/mtime, content_type); large bodies go as
	 * multipart.  etag_out (may be NULL) receives the new etag.
	 */
	int (*put_fd)(void *st, const char *key, int fd, uint64_t size,
		      const struct bfs_meta *m, char *etag_out, size_t etag_len);
	/* Same from memory (folder markers, symlinks, small files). */
	int (*put_buf)(void *st, const char *key, const void *data, size_t len,
		       const struct bfs_meta *m, char *etag_out, size_t etag_len);
	/* Deleting an absent key is not an error.  "a/b/" removes a folder. */
	int (*del)(void *st, const char *key);
	/* One level (or all, RECURSIVE) below prefix ("" or ends in '/'). */
	int (*list)(void *st, const char *prefix, unsigned flags,
		    bfs_list_fn fn, void *arg);
	/* Server-side copy; m non-NULL replaces the metadata. */
	int (*copy)(void *st, const char *src, const char *dst,
		    const struct bfs_meta *m);
	/* Replaces mode/uid/gid/mtime of an existing key (chmod, chown, utimens). */
	int (*set_meta)(void *st, const char *key, const struct bfs_meta *m);
	/* Atomic rename of one key or a whole folder ("a/" -> "b/"); NULL when the
	 * provider has none (the caller copies then deletes). */
	int (*rename)(void *st, const char *src, const char *dst);
	/* Presigned GET URL valid for expires seconds; NULL when unsupported. */
	int (*presign)(void *st, const char *key, long expires, char **url);
	/* Free/total space; NULL when unknown (the FUSE layer reports large). */
	int (*statfs)(void *st, uint64_t *total, uint64_t *avail);

	/*
	 * Resumable multipart uploads, driven by the caller (upload.c), which
	 * keeps the upload id durable between calls.  All NULL when the
	 * provider has none (local); then put_fd is the only way.
	 * NOTFOUND from part/list_parts/complete means the upload id is gone
	 * (NoSuchUpload): the caller starts a new one.
	 */
	/* CreateMultipartUpload with the metadata of m; id into upload_id. */
	int (*mpu_begin)(void *st, const char *key, const struct bfs_meta *m,
			 char *upload_id, size_t idlen);
	/* UploadPart number from fd [off, off + len); its etag out. */
	int (*mpu_part)(void *st, const char *key, const char *upload_id,
			unsigned number, int fd, uint64_t off, uint64_t len,
			char *etag, size_t etag_len);
	/* Every stored part, by number, into a new array (caller frees). */
	int (*mpu_list_parts)(void *st, const char *key, const char *upload_id,
			      struct bfs_mpu_part **parts, size_t *n);
	/* CompleteMultipartUpload of parts[0..n) (ascending numbers). */
	int (*mpu_complete)(void *st, const char *key, const char *upload_id,
			    const struct bfs_mpu_part *parts, size_t n,
			    char *etag_out, size_t etag_len);
	/* AbortMultipartUpload; an id already gone is not an error. */
	int (*mpu_abort)(void *st, const char *key, const char *upload_id);
	/* Every upload in progress whose key starts with prefix. */
	int (*mpu_list_uploads)(void *st, const char *prefix,
				bfs_mpu_upload_fn fn, void *arg);

	/*
	 * Server-side copy of key src of another bucket of the same provider
	 * (its state src_st) into dst, metadata kept; BFS_ERR_NOTSUP when the
	 * two cannot copy server-side (another service or account), then the
	 * caller streams the body.  NULL when the provider has none.
	 */
	int (*copy_from)(void *st, void *src_st, const char *src,
			 const char *dst);
};

extern const struct bfs_provider_ops bfs_provider_local;
extern const struct bfs_provider_ops bfs_provider_s3;   /* serves s3, r2, gcs */
extern const struct bfs_provider_ops bfs_provider_azure;

/* A live provider instance of one bucket. */
struct bfs_provider {
	const struct bfs_provider_ops *ops;
	void *st;
	int read_only;
};

/* Picks the ops table for bc->provider and creates its state. */
int bfs_provider_open(const struct bfs_bucket_conf *bc,
		      struct bfs_provider **out, char *err, size_t errlen);
void bfs_provider_close(struct bfs_provider *p);

/* Process-wide settings every provider uses (set once at start). */
struct bfs_provider_globals {
	const char *ca_bundle;   /* NULL: system default */
	int connect_timeout;     /* seconds */
	int low_speed_time;      /* seconds below 1 KiB/s before abort */
};
void bfs_provider_set_globals(const struct bfs_provider_globals *g);
const struct bfs_provider_globals *bfs_provider_get_globals(void);

#endif
