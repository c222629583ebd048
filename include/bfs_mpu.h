/*
 * bfs_mpu.h - the part plan of resumable and streaming multipart uploads
 * (pure: numbers in, numbers out) and the MD5 helpers that decide whether
 * a part already stored on the server holds the staged bytes.
 *
 * A plan is (base, grow): part n (1-based) is base bytes, and with grow
 * the size doubles every BFS_MPU_GROW_EVERY parts, so a stream whose final
 * size is unknown (8 MiB base) still fits any object up to 5 TiB in
 * 10,000 parts; without grow every part but the last is base bytes (R2's
 * rule, used when the size is known up front).  Only the last part may be
 * smaller than 5 MiB.
 *
 * grow is the plan kind, stored in the journal row with base:
 * BFS_MPU_PLAN_EQUAL (0), BFS_MPU_PLAN_GROW (1: doubling) or
 * BFS_MPU_PLAN_RAMP (2): BFS_MPU_RAMP_PARTS parts of base, then the
 * doubling plan of BFS_MPU_RAMP_MUL * base.  A stream (size unknown) on
 * a service that takes unequal parts uses the ramp: RGW spends ~10% more
 * CPU per GiB on 8 MiB parts than on 32 MiB ones (docs/BENCHMARKS.md),
 * while a file of 9-32 MiB still streams in 8 MiB parts.
 */
#ifndef BFS_MPU_H
#define BFS_MPU_H

#include <stddef.h>
#include <stdint.h>

#define BFS_MPU_BASE (8ull << 20)        /* first part size */
#define BFS_MPU_SINGLE_MAX (8ull << 20)  /* larger objects go multipart */
#define BFS_MPU_MAX_PARTS 10000u
#define BFS_MPU_GROW_EVERY 1000u
#define BFS_MPU_MAX_OBJECT (5ull << 40)  /* 5 TiB */

#define BFS_MPU_PLAN_EQUAL 0
#define BFS_MPU_PLAN_GROW 1
#define BFS_MPU_PLAN_RAMP 2
#define BFS_MPU_RAMP_PARTS 4u     /* parts of base before the ramp */
#define BFS_MPU_RAMP_MUL 4u       /* then parts of 4 * base (32 MiB) */

/* Service limits of a whole-object plan (bfs_mpu_plan). */
#define BFS_MPU_PART_MIN (5ull << 20)        /* S3: all parts but the last */
#define BFS_MPU_S3_PART_MAX (5ull << 30)     /* S3: UploadPart(Copy) */
#define BFS_MPU_COPY_BASE (512ull << 20)     /* parts of a server-side copy */
#define BFS_MPU_AZ_BLOCK_MAX (4000ull << 20) /* Azure: Put Block */

/* Size of part n (1..10000) of the plan; 0 when n is out of range. */
uint64_t bfs_mpu_part_size(uint64_t base, int grow, unsigned n);
/* Offset of part n (1..10001: 10001 is the plan's end). */
uint64_t bfs_mpu_part_off(uint64_t base, int grow, unsigned n);
/* Parts an object of size bytes needs (1 for 0 bytes); 0 when it does
 * not fit in 10,000 parts. */
unsigned bfs_mpu_part_count(uint64_t base, int grow, uint64_t size);
/* The smallest base (BFS_MPU_BASE doubled) of an equal-part plan for a
 * known size. */
uint64_t bfs_mpu_base_for(uint64_t size);

/*
 * The plan of a whole object of known size on a service whose parts are
 * at most max_part bytes: equal parts of bfs_mpu_base_for(size) (min_base
 * instead of BFS_MPU_BASE when larger, for copies), at most 10,000 of
 * them.  *base and *nparts out (1 part of 0 bytes for an empty object;
 * whether to go multipart at all is size > BFS_MPU_SINGLE_MAX, the
 * caller's test).  BFS_ERR_TOOBIG when the object does not fit
 * (a part would exceed max_part), BFS_ERR_INVAL on a min_base below
 * BFS_MPU_PART_MIN or above max_part.
 */
int bfs_mpu_plan(uint64_t size, uint64_t min_base, uint64_t max_part,
		 uint64_t *base, unsigned *nparts);
/* Length of part n (1-based) of an equal plan of base for size bytes:
 * base, the rest for the last part, 0 past the end. */
uint64_t bfs_mpu_part_len(uint64_t base, uint64_t size, unsigned n);

/* MD5 of fd [off, off + len) as 32 lower-case hex digits. */
int bfs_mpu_md5_fd(int fd, uint64_t off, uint64_t len, char hex[33]);
/*
 * The ETag S3 gives a completed multipart object: MD5 of the binary MD5s
 * of its n parts, "-n".  md5s: n hex digests.  0 or BFS_ERR_INVAL.
 */
int bfs_mpu_etag(const char (*md5s)[33], size_t n, char *out, size_t outlen);

#endif
