/*
 * bfs_s3xml.h - S3 response bodies parsed with expat (pure: bytes in,
 * plain data out; no network).
 *
 * Listings are streamed: a parser is fed the body in chunks as it arrives
 * and calls back once per <Contents> / <CommonPrefixes> / <Upload> /
 * <Part> (ListParts), so a
 * page of 1,000 keys is never held as a tree.  The small replies (Error,
 * InitiateMultipartUpload, CompleteMultipartUpload, CopyObject, CopyPart)
 * are parsed whole into struct bfs_s3xml_reply.  Every element text is
 * capped (BFS_S3XML_TEXT_MAX) and so is the whole body (caller's cap);
 * DOCTYPE declarations are refused (no entity tricks).
 */
#ifndef BFS_S3XML_H
#define BFS_S3XML_H

#include <stddef.h>
#include <stdint.h>

#define BFS_S3XML_TEXT_MAX 4096          /* one element's text, decoded */
#define BFS_S3XML_LIST_MAX (16u << 20)   /* default cap of one listing body */
#define BFS_S3XML_REPLY_MAX (1u << 20)   /* cap of a small reply body */

/* One <Contents> of ListObjectsV2 (strings valid during the callback). */
struct bfs_s3xml_object {
	const char *key;         /* decoded (url-decoded when requested) */
	uint64_t size;
	int64_t mtime;           /* LastModified as epoch seconds; 0 unknown */
	const char *etag;        /* without quotes; "" unknown */
};

/* One <Upload> of ListMultipartUploads. */
struct bfs_s3xml_upload {
	const char *key;
	const char *upload_id;
	int64_t initiated;       /* epoch seconds; 0 unknown */
};

/* One <Part> of ListParts. */
struct bfs_s3xml_part {
	unsigned number;         /* PartNumber, 1..10000 */
	uint64_t size;
	const char *etag;        /* without quotes */
	int64_t mtime;           /* LastModified; 0 unknown */
};

/*
 * Callbacks: return 0 to go on, > 0 to stop parsing (feed then returns
 * BFS_S3XML_STOPPED), < 0 to fail with that error.  Any may be NULL.
 */
struct bfs_s3xml_list_cb {
	int (*object)(void *arg, const struct bfs_s3xml_object *o);
	int (*prefix)(void *arg, const char *prefix);   /* CommonPrefixes/Prefix */
	int (*upload)(void *arg, const struct bfs_s3xml_upload *u);
	void *arg;
	int (*part)(void *arg, const struct bfs_s3xml_part *p);
};

#define BFS_S3XML_STOPPED 1

/* Page-level facts of a listing (valid after bfs_s3xml_list_finish). */
struct bfs_s3xml_page {
	int is_truncated;
	long key_count;               /* -1 when absent */
	char *next_token;             /* NextContinuationToken; NULL; caller frees */
	char *next_key_marker;        /* ListMultipartUploads; NULL; caller frees */
	char *next_upload_id_marker;  /* ListMultipartUploads; NULL; caller frees */
	int is_error;                 /* the body was an <Error> document */
	char error_code[64];          /* its <Code> */
	unsigned next_part_marker;    /* ListParts NextPartNumberMarker; 0 */
};

struct bfs_s3xml_list;   /* opaque streaming parser */

/*
 * New streaming listing parser (ListObjectsV2, ListMultipartUploads or
 * ListParts).
 * url_decoded: keys and prefixes were requested with encoding-type=url
 * and are percent-decoded before the callbacks.  max_body caps the bytes
 * fed (0: BFS_S3XML_LIST_MAX).  Returns NULL on allocation failure.
 */
struct bfs_s3xml_list *bfs_s3xml_list_new(const struct bfs_s3xml_list_cb *cb,
					  int url_decoded, size_t max_body);
/* Feeds a chunk: 0, BFS_S3XML_STOPPED, a callback's error, BFS_ERR_PROTOCOL
 * (malformed XML), BFS_ERR_TOOBIG (a cap).  After a non-zero return the
 * parser accepts no more input. */
int bfs_s3xml_list_feed(struct bfs_s3xml_list *p, const char *data, size_t len);
/* Ends the document and fills page (its strings move to the caller; free
 * them with bfs_s3xml_page_clear).  0 or an error as for feed. */
int bfs_s3xml_list_finish(struct bfs_s3xml_list *p, struct bfs_s3xml_page *page);
void bfs_s3xml_list_free(struct bfs_s3xml_list *p);
void bfs_s3xml_page_clear(struct bfs_s3xml_page *page);

/* A whole listing body at once (new + feed + finish + free). */
int bfs_s3xml_parse_list(const char *xml, size_t len,
			 const struct bfs_s3xml_list_cb *cb, int url_decoded,
			 struct bfs_s3xml_page *page);

/* A small reply: whichever of these fields its document holds. */
struct bfs_s3xml_reply {
	char root[64];           /* root element: "Error", "CopyObjectResult"... */
	char code[64];           /* Error/Code */
	char message[512];       /* Error/Message */
	char request_id[128];    /* Error/RequestId */
	char upload_id[1024];    /* InitiateMultipartUploadResult/UploadId */
	char etag[96];           /* ETag without quotes */
	int64_t last_modified;   /* LastModified epoch; 0 when absent */
};

/*
 * Parses an Error, InitiateMultipartUploadResult,
 * CompleteMultipartUploadResult, CopyObjectResult or CopyPartResult body
 * (or any other: unknown elements are ignored).  0, BFS_ERR_PROTOCOL,
 * BFS_ERR_TOOBIG (len > BFS_S3XML_REPLY_MAX or a field too long).
 */
int bfs_s3xml_parse_reply(const char *xml, size_t len,
			  struct bfs_s3xml_reply *r);
/* 1 when the reply is an <Error> document. */
int bfs_s3xml_is_error(const struct bfs_s3xml_reply *r);

/* "2026-11-28T03:55:27.381Z" -> epoch seconds; BFS_ERR_INVAL when bad. */
int bfs_s3xml_parse_time(const char *s, int64_t *out);

#endif
