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
#define DREAD_KEEP 8                    /* idle window buffers kept */

/* Idle window buffers, reused so that uploads touch no new memory; the
 * ones in use belong to their readers.  Guarded by dread_mu. */
static pthread_mutex_t dread_mu = PTHREAD_MUTEX_INITIALIZER;
static char *dread_idle[DREAD_KEEP];
static int dread_nidle;

/* An aligned BFS_DREAD_WIN buffer: an idle one or a new one; NULL when
 * out of memory. */
static char *dread_buf_get(void)
{
	void *m = NULL;

	pthread_mutex_lock(&dread_mu);
	if (dread_nidle > 0)
		m = dread_idle[--dread_nidle];
	pthread_mutex_unlock(&dread_mu);
	if (!m && posix_memalign(&m, DREAD_ALIGN, BFS_DREAD_WIN) != 0)
		m = NULL;
	return m;
}

static void dread_buf_put(char *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&dread_mu);
	if (dread_nidle < DREAD_KEEP) {
		dread_idle[dread_nidle++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&dread_mu);
	free(b);
}

void bfs_dread_begin(struct bfs_dread *d, int fd, uint64_t len)
{
	char path[64];

	d->fd = fd;
	d->dfd = -1;
	d->buf = NULL;
	d->woff = 0;
	d->wlen = 0;
	if (len < BFS_DREAD_MIN || !(d->buf = dread_buf_get()))
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
	if (!d->buf)                    /* a small range: buffered */
		d->buf = dread_buf_get();
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
	dread_buf_put(d->buf);
	d->buf = NULL;
}
