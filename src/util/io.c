/*
 * io.c - whole reads (bfs_io.h).
 */
#include <errno.h>
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
