/*
 * crypto.c - secrets at rest (see bfs_crypto.h).
 *
 * Sealing is AES-256-GCM through OpenSSL EVP with a fresh 12-byte random
 * nonce per seal; the associated data is the bucket id, so a sealed value
 * copied into another row does not open.  The stored text is
 * "v1:" + base64(nonce | ciphertext | 16-byte tag).  Opening checks the
 * format strictly (charset, padding, minimum length) before decrypting, and
 * every failure - bad format, wrong key, wrong aad, tampering - is
 * BFS_ERR_CRYPTO.
 *
 * The master key file holds 32 raw bytes or 64 hex chars (optionally
 * followed by a newline).  Like openssh's sshkey_perm_ok(), a key file that
 * group or others may access at all is refused.  Key material and
 * plaintext buffers are wiped with OPENSSL_cleanse before they are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bfs_buf.h"
#include "bfs_crypto.h"
#include "bfs_io.h"
#include "bfs_error.h"

#define SEAL_PREFIX "v1:"
#define SEAL_PREFIX_LEN 3
#define NONCE_LEN 12
#define TAG_LEN 16
/* Cap on a sealed value (secrets are short; this bounds allocations). */
#define SEALED_MAX (64 * 1024)
/* A key file is 32 raw bytes or 64 hex chars + "\n" or "\r\n". */
#define KEYFILE_READ_MAX 80

/*
 * Decodes the key file content: exactly 32 raw bytes, or 64 hex chars
 * optionally followed by "\n" / "\r\n".  0 or BFS_ERR_CRYPTO.
 */
static int key_decode(const unsigned char *buf, size_t n,
		      unsigned char key[BFS_MASTER_KEY_LEN])
{
	size_t hexlen = 2 * BFS_MASTER_KEY_LEN;

	if (n == BFS_MASTER_KEY_LEN) {
		memcpy(key, buf, BFS_MASTER_KEY_LEN);
		return 0;
	}
	if (n == hexlen + 1 && buf[hexlen] == '\n')
		n = hexlen;
	else if (n == hexlen + 2 && buf[hexlen] == '\r' && buf[hexlen + 1] == '\n')
		n = hexlen;
	if (n != hexlen)
		return BFS_ERR_CRYPTO;
	if (bfs_hex_decode((const char *)buf, BFS_MASTER_KEY_LEN, key) != 0) {
		OPENSSL_cleanse(key, BFS_MASTER_KEY_LEN);
		return BFS_ERR_CRYPTO;
	}
	return 0;
}

/*
 * Contract: fills key from the file at path.  Fails with BFS_ERR_ACCESS
 * when the file is not a regular file or group/other have any permission
 * bit (the message names the file and its mode), BFS_ERR_CRYPTO when the
 * content is not a key, a bfs_err_from_errno() code when it cannot be read.
 * key is wiped on failure.
 */
int bfs_crypto_load_key(const char *path, unsigned char key[BFS_MASTER_KEY_LEN],
			char *err, size_t errlen)
{
	unsigned char buf[KEYFILE_READ_MAX + 1];
	struct stat st;
	size_t n = 0;
	ssize_t got;
	int fd = -1, r = BFS_ERR_INTERNAL;

	OPENSSL_cleanse(key, BFS_MASTER_KEY_LEN);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: %s", path,
			strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: %s", path,
			strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = BFS_ERR_ACCESS;
		bfs_set_err(err, errlen, "master key file %s is not a regular file",
			path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		r = BFS_ERR_ACCESS;
		bfs_set_err(err, errlen,
			"master key file %s has mode %04o: it must not be "
			"accessible by group or others (chmod 600 %s)",
			path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if ((got = bfs_read_full(fd, buf, sizeof(buf))) < 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: %s", path,
			strerror(errno));
		goto out;
	}
	n = (size_t)got;
	if (n > KEYFILE_READ_MAX || key_decode(buf, n, key) != 0) {
		r = BFS_ERR_CRYPTO;
		bfs_set_err(err, errlen, "master key file %s: expected 32 bytes or "
			"64 hex characters", path);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r != 0)
		OPENSSL_cleanse(key, BFS_MASTER_KEY_LEN);
	return r;
}

/*
 * Contract: creates path exclusively (never through a symlink) with mode
 * 0600 whatever the umask, holding 64 hex chars and a newline.  A partly
 * written file is removed.  BFS_ERR_EXISTS when path exists.
 */
int bfs_crypto_create_key(const char *path, char *err, size_t errlen)
{
	unsigned char key[BFS_MASTER_KEY_LEN];
	char hex[2 * BFS_MASTER_KEY_LEN + 2];
	size_t len, off = 0;
	ssize_t w;
	int fd = -1, created = 0, r = BFS_ERR_INTERNAL;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: %s", path,
			strerror(errno));
		goto out;
	}
	created = 1;
	if (fchmod(fd, 0600) != 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: chmod: %s", path,
			strerror(errno));
		goto out;
	}
	if (bfs_random(key, sizeof(key)) != 0) {
		r = BFS_ERR_INTERNAL;
		bfs_set_err(err, errlen, "no random bytes for the master key");
		goto out;
	}
	bfs_hex_encode(key, sizeof(key), hex);
	len = 2 * BFS_MASTER_KEY_LEN;
	hex[len++] = '\n';
	while (off < len) {
		w = write(fd, hex + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = bfs_err_from_errno(w < 0 ? errno : EIO);
			bfs_set_err(err, errlen, "master key file %s: write: %s",
				path, strerror(w < 0 ? errno : EIO));
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: fsync: %s", path,
			strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = bfs_err_from_errno(errno);
		bfs_set_err(err, errlen, "master key file %s: close: %s", path,
			strerror(errno));
		goto out;
	}
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && created)
		unlink(path);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(hex, sizeof(hex));
	return r;
}

/*
 * Contract: *out = "v1:" + base64(nonce | ct | tag), a new string the caller
 * frees (it holds no secret in clear).  aad NULL means "".
 */
int bfs_crypto_seal(const unsigned char key[BFS_MASTER_KEY_LEN],
		    const char *aad, const char *plain, char **out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *text = NULL;
	size_t plen, rawlen, textlen;
	int outl = 0, finl = 0, r = BFS_ERR_INTERNAL;

	*out = NULL;
	if (!key || !plain)
		return BFS_ERR_INVAL;
	if (!aad)
		aad = "";
	plen = strlen(plain);
	if (plen > SEALED_MAX)
		return BFS_ERR_TOOBIG;
	rawlen = NONCE_LEN + plen + TAG_LEN;
	raw = malloc(rawlen);
	textlen = SEAL_PREFIX_LEN + 4 * ((rawlen + 2) / 3) + 1;
	text = malloc(textlen);
	if (!raw || !text) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if (bfs_random(raw, NONCE_LEN) != 0)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad,
			      (int)strlen(aad)) != 1)
		goto out;
	outl = 0;
	if (plen > 0 &&
	    EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &outl,
			      (const unsigned char *)plain, (int)plen) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + outl, &finl) != 1 ||
	    (size_t)(outl + finl) != plen ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				raw + NONCE_LEN + plen) != 1)
		goto out;
	memcpy(text, SEAL_PREFIX, SEAL_PREFIX_LEN);
	EVP_EncodeBlock((unsigned char *)text + SEAL_PREFIX_LEN, raw, (int)rawlen);
	*out = text;
	text = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(text);
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return r;
}

/* Strict base64 check: [A-Za-z0-9+/]*, length % 4 == 0, '=' only as padding. */
static int b64_check(const char *s, size_t n, size_t *pad)
{
	size_t i;

	*pad = 0;
	if (n == 0 || n % 4 != 0)
		return -1;
	if (s[n - 1] == '=')
		(*pad)++;
	if (s[n - 2] == '=')
		(*pad)++;
	if (*pad == 1 && s[n - 2] == '=')
		return -1;
	for (i = 0; i < n - *pad; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -1;
	}
	return 0;
}

/* 0 when encoding raw gives exactly text (rejects stray low bits). */
static int b64_canonical(const unsigned char *raw, size_t rawlen,
			 const char *text, size_t textlen)
{
	unsigned char *enc;
	int r = -1;

	enc = malloc(textlen + 1);
	if (!enc)
		return -1;
	if ((size_t)EVP_EncodeBlock(enc, raw, (int)rawlen) == textlen &&
	    memcmp(enc, text, textlen) == 0)
		r = 0;
	free(enc);
	return r;
}

/*
 * Contract: *plain = the NUL-terminated secret (caller frees it with
 * bfs_secret_free) or NULL on failure.  Any malformed value, wrong key,
 * wrong aad or tampered byte gives BFS_ERR_CRYPTO.
 */
int bfs_crypto_open(const unsigned char key[BFS_MASTER_KEY_LEN],
		    const char *aad, const char *sealed, char **plain)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *pt = NULL;
	size_t slen, b64len, pad, rawlen = 0, ctlen = 0;
	int dec, outl = 0, finl = 0, r = BFS_ERR_CRYPTO;

	*plain = NULL;
	if (!key || !sealed)
		return BFS_ERR_INVAL;
	if (!aad)
		aad = "";
	slen = strlen(sealed);
	if (slen > SEALED_MAX || slen < SEAL_PREFIX_LEN ||
	    memcmp(sealed, SEAL_PREFIX, SEAL_PREFIX_LEN) != 0)
		goto out;
	b64len = slen - SEAL_PREFIX_LEN;
	if (b64_check(sealed + SEAL_PREFIX_LEN, b64len, &pad) != 0)
		goto out;
	raw = malloc(b64len / 4 * 3);
	if (!raw) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	dec = EVP_DecodeBlock(raw, (const unsigned char *)sealed + SEAL_PREFIX_LEN,
			      (int)b64len);
	/* DecodeBlock counts padding as zero bytes: drop them. */
	if (dec < 0 || (size_t)dec != b64len / 4 * 3)
		goto out;
	rawlen = (size_t)dec - pad;
	if (rawlen < NONCE_LEN + TAG_LEN)
		goto out;
	/* Only the canonical encoding (unused bits zero) is accepted. */
	if (b64_canonical(raw, rawlen, sealed + SEAL_PREFIX_LEN, b64len) != 0)
		goto out;
	ctlen = rawlen - NONCE_LEN - TAG_LEN;
	pt = malloc(ctlen + 1);
	if (!pt) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) {
		r = BFS_ERR_NOMEM;
		goto out;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad,
			      (int)strlen(aad)) != 1)
		goto out;
	outl = 0;
	if (ctlen > 0 &&
	    EVP_DecryptUpdate(ctx, (unsigned char *)pt, &outl, raw + NONCE_LEN,
			      (int)ctlen) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				raw + NONCE_LEN + ctlen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + outl, &finl) != 1 ||
	    (size_t)(outl + finl) != ctlen)
		goto out;
	pt[ctlen] = '\0';
	/* A secret with an embedded NUL was not sealed by us. */
	if (strlen(pt) != ctlen)
		goto out;
	*plain = pt;
	pt = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (pt) {
		OPENSSL_cleanse(pt, ctlen + 1);
		free(pt);
	}
	if (raw) {
		OPENSSL_cleanse(raw, b64len / 4 * 3);
		free(raw);
	}
	return r;
}

void bfs_secret_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int bfs_memeq_ct(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) != 0;
}

void bfs_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		/* Cannot happen with a working libcrypto; never return junk. */
		memset(out, '0', 64);
		out[64] = '\0';
		return;
	}
	bfs_hex_encode(md, 32, out);
}

int bfs_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	int chunk;

	while (len > 0) {
		chunk = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(p, chunk) != 1)
			return BFS_ERR_INTERNAL;
		p += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}
