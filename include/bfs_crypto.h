/*
 * bfs_crypto.h - secrets at rest: AES-256-GCM under a 32-byte master key.
 *
 * Sealed format: "v1:" + base64(12-byte random nonce | ciphertext | 16-byte
 * tag); the associated data binds a secret to its bucket id, so a value
 * copied to another row does not open.  Key files hold the 32 raw bytes or
 * 64 hex chars; a key file readable by group or others is refused.
 */
#ifndef BFS_CRYPTO_H
#define BFS_CRYPTO_H

#include <stddef.h>

#define BFS_MASTER_KEY_LEN 32

/* Loads the key; BFS_ERR_ACCESS when permissions are too open, with reason. */
int bfs_crypto_load_key(const char *path, unsigned char key[BFS_MASTER_KEY_LEN],
			char *err, size_t errlen);
/* Creates a new random key file with mode 0600; BFS_ERR_EXISTS if present. */
int bfs_crypto_create_key(const char *path, char *err, size_t errlen);

/* Seals plain (NUL-terminated) -> *out (new string, caller frees). */
int bfs_crypto_seal(const unsigned char key[BFS_MASTER_KEY_LEN],
		    const char *aad, const char *plain, char **out);
/*
 * Opens a sealed value -> *plain (new string; caller wipes with
 * bfs_secret_free).  BFS_ERR_CRYPTO on wrong key, wrong aad or tampering.
 */
int bfs_crypto_open(const unsigned char key[BFS_MASTER_KEY_LEN],
		    const char *aad, const char *sealed, char **plain);

/* Wipes and frees a secret string; NULL is fine. */
void bfs_secret_free(char *s);
/* Constant-time comparison of two buffers of length n: 0 when equal. */
int bfs_memeq_ct(const void *a, const void *b, size_t n);

/* Lowercase hex SHA-256 of data into out[65]. */
void bfs_sha256_hex(const void *data, size_t len, char out[65]);
/* Random bytes; 0 or BFS_ERR_INTERNAL. */
int bfs_random(void *buf, size_t len);

#endif
