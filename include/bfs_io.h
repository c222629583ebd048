/*
 * bfs_io.h - whole reads: the loops over short counts and EINTR that
 * every reader of a file or pipe needs, in one place.
 */
#ifndef BFS_IO_H
#define BFS_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Reads up to len bytes from fd into buf, retrying short reads and EINTR
 * until len bytes are in or end of file.  Returns the bytes read (less
 * than len only at end of file), or -1 with errno set; bytes read before
 * an error are in buf but not counted.
 */
ssize_t bfs_read_full(int fd, void *buf, size_t len);

/* The same with pread() from offset off; fd's file offset is not moved. */
ssize_t bfs_pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
