/*
 * bfs_lock.h - lock-ownership checks for debug and test builds.
 *
 * bfs_lock_assert_held(&m) aborts, naming file:line and the lock, when the
 * calling thread does not hold the pthread mutex m; bfs_lock_assert_free
 * when it does (a function that takes m itself).  Every `*_locked`
 * function of src/vfs starts with one.  They are checks only with
 * -DBFS_LOCK_CHECK (the Makefile sets it in every SANITIZE= build: the
 * ASan/UBSan and TSan daemons and build-san/unit-tests); otherwise they
 * compile to nothing.
 *
 * How: a glibc mutex records the kernel thread id of its owner
 * (__data.__owner) whichever way it was taken (lock, trylock, timedlock,
 * the re-acquire at the end of a condition wait) and clears it on unlock,
 * so the check compares it with the caller's tid, cached per thread.  No
 * wrapper type: every existing pthread_mutex_lock call site is covered as
 * it is.  Needs glibc with lock elision off (its default: an elided lock
 * records no owner).
 */
#ifndef BFS_LOCK_H
#define BFS_LOCK_H

#include <pthread.h>

#ifdef BFS_LOCK_CHECK

#ifndef __GLIBC__
#error "BFS_LOCK_CHECK reads glibc's mutex owner: build without it here"
#endif

/* 1 when the calling thread holds m. */
int bfs_lock_held(const pthread_mutex_t *m);
/* Prints "file:line: lock `what' not held" (or "held") and aborts. */
void bfs_lock_fail(const char *file, int line, const char *what, int held)
	__attribute__((noreturn));

#define bfs_lock_assert_held(m)                                              \
	do {                                                                 \
		if (!bfs_lock_held(m))                                       \
			bfs_lock_fail(__FILE__, __LINE__, #m, 0);            \
	} while (0)
#define bfs_lock_assert_free(m)                                              \
	do {                                                                 \
		if (bfs_lock_held(m))                                        \
			bfs_lock_fail(__FILE__, __LINE__, #m, 1);            \
	} while (0)

#else

#define bfs_lock_assert_held(m) ((void)(m))
#define bfs_lock_assert_free(m) ((void)(m))

#endif

#endif
