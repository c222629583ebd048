/*
 * mpu.c - part plans of multipart uploads and their MD5 checks (see
 * bfs_mpu.h).  bfs_mpu_plan() is the one planner of whole-object
 * uploads of the providers (s3 multipart, Azure Put Block); the part
 * plans are those of the streaming uploads of src/vfs/mpu.c, which uses
 * them to resume an
 * upload from the parts ListParts reports: a part is kept only when its
 * size and ETag (the MD5 of its body, for non-encrypted S3 objects) equal
 * those of the same range of the staged file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bfs_buf.h"
#include "bfs_error.h"
#include "bfs_mpu.h"

uint64_t bfs_mpu_part_size(uint64_t base, int grow, unsigned n)
{
	if (n < 1 || n > BFS_MPU_MAX_PARTS)
		return 0;
	if (grow == BFS_MPU_PLAN_RAMP) {
		if (n <= BFS_MPU_RAMP_PARTS)
			return base;
		/* then the doubling plan of BFS_MPU_RAMP_MUL * base */
		return bfs_mpu_part_size(base * BFS_MPU_RAMP_MUL,
					 BFS_MPU_PLAN_GROW,
					 n - BFS_MPU_RAMP_PARTS);
	}
	return grow ? base << ((n - 1) / BFS_MPU_GROW_EVERY) : base;
}

uint64_t bfs_mpu_part_off(uint64_t base, int grow, unsigned n)
{
	unsigned g, i;

	if (n < 1)
		return 0;
	if (n > BFS_MPU_MAX_PARTS + 1)
		n = BFS_MPU_MAX_PARTS + 1;
	if (grow == BFS_MPU_PLAN_RAMP) {
		if (n <= BFS_MPU_RAMP_PARTS + 1)
			return (uint64_t)(n - 1) * base;
		return BFS_MPU_RAMP_PARTS * base +
		       bfs_mpu_part_off(base * BFS_MPU_RAMP_MUL,
					BFS_MPU_PLAN_GROW,
					n - BFS_MPU_RAMP_PARTS);
	}
	if (!grow)
		return (uint64_t)(n - 1) * base;
	g = (n - 1) / BFS_MPU_GROW_EVERY;
	i = (n - 1) % BFS_MPU_GROW_EVERY;
	/* full groups: GROW_EVERY * base * (2^g - 1), then i parts of the
	 * current size */
	return (uint64_t)BFS_MPU_GROW_EVERY * base * ((1ull << g) - 1) +
	       (uint64_t)i * (base << g);
}

unsigned bfs_mpu_part_count(uint64_t base, int grow, uint64_t size)
{
	unsigned lo = 1, hi = BFS_MPU_MAX_PARTS, mid;

	if (!base)
		return 0;
	if (bfs_mpu_part_off(base, grow, BFS_MPU_MAX_PARTS + 1) < size)
		return 0;
	/* smallest n whose end reaches size */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (bfs_mpu_part_off(base, grow, mid + 1) >= size)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The smallest base (min doubled) of at most 10,000 equal parts. */
static uint64_t base_from(uint64_t size, uint64_t min)
{
	uint64_t base = min;

	while ((size + base - 1) / base > BFS_MPU_MAX_PARTS)
		base *= 2;
	return base;
}

uint64_t bfs_mpu_base_for(uint64_t size)
{
	return base_from(size, BFS_MPU_BASE);
}

int bfs_mpu_plan(uint64_t size, uint64_t min_base, uint64_t max_part,
		 uint64_t *base, unsigned *nparts)
{
	uint64_t b;

	*base = 0;
	*nparts = 0;
	if (min_base < BFS_MPU_PART_MIN || min_base > max_part)
		return BFS_ERR_INVAL;
	b = base_from(size, min_base > BFS_MPU_BASE ? min_base : BFS_MPU_BASE);
	if (b > max_part)
		return BFS_ERR_TOOBIG;
	*base = b;
	*nparts = size ? (unsigned)((size + b - 1) / b) : 1;
	return 0;
}

uint64_t bfs_mpu_part_len(uint64_t base, uint64_t size, unsigned n)
{
	uint64_t off;

	if (n < 1 || !base)
		return 0;
	off = (uint64_t)(n - 1) * base;
	if (off >= size)
		return 0;
	return size - off < base ? size - off : base;
}

int bfs_mpu_md5_fd(int fd, uint64_t off, uint64_t len, char hex[33])
{
	unsigned char buf[64 * 1024], d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_MD_CTX *ctx;
	ssize_t got;
	size_t want;
	int r = BFS_ERR_NOMEM;

	hex[0] = '\0';
	if (!(ctx = EVP_MD_CTX_new()))
		return r;
	r = BFS_ERR_IO;
	if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		goto out;
	while (len > 0) {
		want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = bfs_err_from_errno(errno);
			goto out;
		}
		if (got == 0)           /* shorter than the plan: no match */
			goto out;
		if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1)
			goto out;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	if (EVP_DigestFinal_ex(ctx, d, &dl) != 1 || dl != 16)
		goto out;
	bfs_hex_encode(d, dl, hex);
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

int bfs_mpu_etag(const char (*md5s)[33], size_t n, char *out, size_t outlen)
{
	unsigned char bin[16], d[EVP_MAX_MD_SIZE];
	char hex[33];
	unsigned dl = 0;
	EVP_MD_CTX *ctx;
	size_t i;
	int r = BFS_ERR_INVAL;

	if (!n || !outlen)
		return r;
	out[0] = '\0';
	if (!(ctx = EVP_MD_CTX_new()))
		return BFS_ERR_NOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		goto out;
	for (i = 0; i < n; i++) {
		if (bfs_hex_decode(md5s[i], sizeof(bin), bin) != 0)
			goto out;
		if (EVP_DigestUpdate(ctx, bin, sizeof(bin)) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, d, &dl) != 1 || dl != 16)
		goto out;
	bfs_hex_encode(d, dl, hex);
	if ((size_t)snprintf(out, outlen, "%s-%zu", hex, n) >= outlen)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}
