/*
 * io.c - whole reads and the direct reader (bfs_io.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bfs_io.h"

static ssize_t read_loop(int fd, void *buf, size_t len, uint64_t off, int at)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		if (at)
			n = pread(fd, p + done, len - done, (off_t)(off + done));
		else
			n = read(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t bfs_read_full(int fd, void *buf, size_t len)
{
	return read_loop(fd, buf, len, 0, 0);
}

ssize_t bfs_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return read_loop(fd, buf, len, off, 1);
}

#define DREAD_ALIGN 4096u               /* O_DIRECT offset/length unit */

static pthread_key_t dread_key;
static pthread_once_t dread_once = PTHREAD_ONCE_INIT;

static void dread_key_init(void)
{
	if (pthread_key_create(&dread_key, free) != 0)
		dread_key = (pthread_key_t)-1;
}

/* This thread's BFS_DREAD_WIN buffer aligned for O_DIRECT (kept for the
 * thread's life, freed at its exit), or NULL. */
static char *dread_buf(void)
{
	void *m;

	pthread_once(&dread_once, dread_key_init);
	if (dread_key == (pthread_key_t)-1)
		return NULL;
	if ((m = pthread_getspecific(dread_key)))
		return m;
	if (posix_memalign(&m, DREAD_ALIGN, BFS_DREAD_WIN) != 0)
		return NULL;
	if (pthread_setspecific(dread_key, m) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

void bfs_dread_begin(struct bfs_dread *d, int fd, uint64_t len)
{
	char path[64];

	d->fd = fd;
	d->dfd = -1;
	d->buf = NULL;
	d->woff = 0;
	d->wlen = 0;
	if (len < BFS_DREAD_MIN || !(d->buf = dread_buf()))
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	d->dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

ssize_t bfs_dread_at(struct bfs_dread *d, uint64_t off, size_t len,
		     const char **p)
{
	uint64_t at;
	ssize_t n;

	if (d->dfd >= 0 && (off < d->woff || off >= d->woff + d->wlen)) {
		at = off - off % DREAD_ALIGN;
		do {
			n = pread(d->dfd, d->buf, BFS_DREAD_WIN, (off_t)at);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EINVAL) {         /* refused: buffered */
			close(d->dfd);
			d->dfd = -1;
		} else if (n < 0) {
			return -1;
		} else {
			d->woff = at;
			d->wlen = (size_t)n;
			if (off >= at + (size_t)n)
				return 0;               /* end of file */
		}
	}
	if (d->dfd >= 0) {
		n = (ssize_t)(d->woff + d->wlen - off);
		if ((size_t)n > len)
			n = (ssize_t)len;
		*p = d->buf + (off - d->woff);
		return n;
	}
	if (!d->buf)                    /* small range: the caller's memory */
		d->buf = dread_buf();
	if (!d->buf) {
		errno = ENOMEM;
		return -1;
	}
	if (len > BFS_DREAD_WIN)
		len = BFS_DREAD_WIN;
	do {
		n = pread(d->fd, d->buf, len, (off_t)off);
	} while (n < 0 && errno == EINTR);
	d->wlen = 0;            /* (the buffered bytes are no window) */
	if (n > 0)
		*p = d->buf;
	return n;
}

void bfs_dread_end(struct bfs_dread *d)
{
	if (d->dfd >= 0)
		close(d->dfd);
	d->dfd = -1;
	d->buf = NULL;
}
