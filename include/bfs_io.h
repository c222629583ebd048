/*
 * bfs_io.h - whole reads: the loops over short counts and EINTR that
 * every reader of a file or pipe needs, in one place; and the direct
 * reader that request bodies are read through.
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

/*
 * A reader of a range of a file that bypasses the page cache: it reads
 * BFS_DREAD_WIN-byte aligned windows with O_DIRECT (through a second
 * descriptor of the same file, opened from /proc/self/fd) into this
 * reader's aligned buffer (taken from a small pool of idle ones and given
 * back at the end) and hands out pointers into it.  On this kind
 * of machine a buffered read of a file not in the page cache costs ten
 * times the direct one (every new cache page is expensive), and the
 * staging files uploads read were written with O_DIRECT, so their bytes
 * are not cached.  When the file system refuses O_DIRECT (tmpfs, or an
 * EINVAL read) the reader falls back to plain pread() for good.  Coherent
 * with buffered writes of the same file: the kernel writes a dirty range
 * back before a direct read of it.  A reader is used by one thread at a
 * time; any number of readers may exist.
 */
#define BFS_DREAD_WIN (1024u * 1024)
#define BFS_DREAD_MIN (1024u * 1024)   /* smaller ranges read buffered */

struct bfs_dread {
	int fd;         /* the caller's descriptor (the buffered fallback) */
	int dfd;        /* the O_DIRECT one, or -1: read buffered */
	char *buf;      /* the window buffer (the reader's until its end) */
	uint64_t woff;  /* file offset of buf[0] */
	size_t wlen;    /* bytes of buf valid from woff */
};

/* Starts a reader of fd for a range of len bytes: direct when len is at
 * least BFS_DREAD_MIN and O_DIRECT is possible, else buffered.  Never
 * fails (the fallback always works); bfs_dread_end() releases it. */
void bfs_dread_begin(struct bfs_dread *d, int fd, uint64_t len);

/*
 * Points *p at up to len bytes of the file from offset off and returns
 * how many (fewer than len at a window end or end of file; 0 at end of
 * file), or -1 with errno set.  The bytes stay valid until the next call.
 */
ssize_t bfs_dread_at(struct bfs_dread *d, uint64_t off, size_t len,
		     const char **p);

void bfs_dread_end(struct bfs_dread *d);

#endif
