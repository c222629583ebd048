/*
 * bfs_azsign.h - Azure Storage Shared Key signing and service SAS (pure:
 * no network, no clock; the caller passes the time).
 *
 * Shared Key ("Authorize with Shared Key", Blob service, version
 * 2009-09-19 and later): the string to sign is the verb, the values of
 * eleven standard headers (Content-Length empty when 0, as from version
 * 2015-02-21), the x-ms-* headers lowercased and sorted ("name:value\n"),
 * and the canonicalized resource "/ACCOUNT" + encoded URI path + one
 * "\nname:value" line per query parameter (names lowercased and sorted,
 * values decoded, repeated names joined with ',').  The signature is the
 * base64 HMAC-SHA256 of it under the base64-decoded account key, sent as
 * "Authorization: SharedKey ACCOUNT:SIGNATURE".
 *
 * Every request carries x-ms-version BFS_AZ_VERSION, one documented
 * service version, so the service's behaviour does not drift.
 */
#ifndef BFS_AZSIGN_H
#define BFS_AZSIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bfs_buf.h"
#include "bfs_sigv4.h"          /* struct bfs_sigv4_kv: name/value pairs */

#define BFS_AZ_VERSION "2021-08-06"
#define BFS_AZ_KEY_MAX 128       /* decoded account key bytes (64 in Azure) */
#define BFS_AZ_SAS_MAX 604800L   /* presigned URLs: at most 7 days */

struct bfs_azsign_req {
	const char *method;      /* "GET", "PUT", ... */
	const char *account;     /* account name */
	const char *path;        /* encoded URI path as sent: "/c/a%20b" or,
				  * on Azurite, "/devstoreaccount1/c/a%20b" */
	const struct bfs_sigv4_kv *query;   /* decoded names/values, any order */
	size_t nquery;
	const struct bfs_sigv4_kv *headers; /* every header sent, any case */
	size_t nheaders;
};

/*
 * Appends the string to sign of r to out (reset first).  0, BFS_ERR_INVAL
 * (no method/account/path), BFS_ERR_TOOBIG.
 */
int bfs_azsign_string(const struct bfs_azsign_req *r, struct bfs_buf *out);

/*
 * Decodes a base64 account key into key (BFS_AZ_KEY_MAX bytes); *len its
 * length.  0 or BFS_ERR_INVAL (not base64, empty, too long).
 */
int bfs_azsign_key_decode(const char *b64, unsigned char *key, size_t *len);

/*
 * Signs r: auth receives "SharedKey ACCOUNT:SIGNATURE" (at most authlen
 * bytes, NUL included).  sts (may be NULL) receives the string to sign.
 * 0, BFS_ERR_INVAL, BFS_ERR_TOOBIG, BFS_ERR_CRYPTO.
 */
int bfs_azsign_sign(const struct bfs_azsign_req *r, const unsigned char *key,
		    size_t keylen, char *auth, size_t authlen,
		    struct bfs_buf *sts);

/* RFC 1123 date of t for x-ms-date ("Sun, 06 Nov 1994 08:49:37 GMT"). */
void bfs_azsign_date(time_t t, char out[32]);

/*
 * A read-only service SAS for one blob (signed version BFS_AZ_VERSION,
 * sr=b, sp=r, se = now + expires; string to sign of versions 2020-12-06
 * and later).  blob is the blob name as plain text.  Appends the encoded
 * query string "sv=...&se=...&sr=b&sp=r&sig=..." to out (reset first).
 * expires: 1..BFS_AZ_SAS_MAX, else BFS_ERR_INVAL.
 */
int bfs_azsign_sas(const char *account, const char *container,
		   const char *blob, const unsigned char *key, size_t keylen,
		   time_t now, long expires, struct bfs_buf *out);

#endif
