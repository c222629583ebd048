/*
 * lock.c - the lock-ownership checks of bfs_lock.h (BFS_LOCK_CHECK builds
 * only; an empty file otherwise).  The owner is the tid glibc's mutex
 * keeps in __data.__owner, compared with the caller's tid (asked each
 * time, not cached: a cached tid would outlive the daemon's fork).
 */
#include "bfs_lock.h"

#ifdef BFS_LOCK_CHECK

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int bfs_lock_held(const pthread_mutex_t *m)
{
	return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) ==
	       gettid();
}

void bfs_lock_fail(const char *file, int line, const char *what, int held)
{
	fprintf(stderr, "%s:%d: lock %s %s\n", file, line, what,
		held ? "already held by this thread" :
		       "not held by this thread");
	abort();
}

#else

/* ISO C forbids an empty translation unit. */
typedef int bfs_lock_unused;

#endif
