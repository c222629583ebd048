/*
 * retry.c - the retry policy, in one place: exponential backoff with full
 * jitter ("sleep = random(0, min(cap, base * 2^n))", AWS architecture blog)
 * for transient failures only: 5xx, SlowDown / 429, RequestTimeout,
 * connection resets and timeouts (bfs_err_retryable() on the error that
 * s3err.c mapped).  Any other 4xx is final.  Attempts are bounded.
 * The random source is a per-thread xorshift seeded from the clock and
 * thread address: jitter needs spread, not secrecy.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "bfs_error.h"
#include "bfs_http.h"
#include "bfs_metrics.h"

void bfs_retry_policy_default(struct bfs_retry_policy *p)
{
	p->max_attempts = 5;
	p->base_ms = 200;
	p->cap_ms = 10000;
}

int bfs_retry_should(const struct bfs_retry_policy *p, int attempt, int err)
{
	return err < 0 && bfs_err_retryable(err) && attempt < p->max_attempts;
}

unsigned bfs_retry_delay_ms(const struct bfs_retry_policy *p, int attempt,
			    uint32_t rnd)
{
	uint64_t ceil = p->base_ms;
	int i;

	for (i = 1; i < attempt && ceil < p->cap_ms; i++)
		ceil *= 2;
	if (ceil > p->cap_ms)
		ceil = p->cap_ms;
	return (unsigned)(rnd % (ceil + 1));
}

static uint32_t retry_rand(void)
{
	static _Thread_local uint64_t state;
	struct timespec ts;

	if (!state) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
			(uint64_t)(uintptr_t)&state;
		if (!state)
			state = 0x9e3779b97f4a7c15ull;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)(state >> 16);
}

int bfs_retry_next(const struct bfs_retry_policy *p, int attempt, int err)
{
	unsigned ms;
	struct timespec ts;

	if (!bfs_retry_should(p, attempt, err))
		return 0;
	bfs_metrics_retry();
	ms = bfs_retry_delay_ms(p, attempt, retry_rand());
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return 1;
}
