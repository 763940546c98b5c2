/*
 * Whole transfers on a file descriptor: the loop every reader and writer
 * of a file needs, written once.  EINTR is retried and a short transfer
 * continued; none of these report anything (callers say what failed in
 * their own words, or keep the errno, as the async writer's threads do).
 */
#ifndef IMGPIPE_FDIO_H
#define IMGPIPE_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read len bytes (at off for pread): how many were read, fewer than len
 * only at end of file, or -1 with errno set.
 */
ssize_t fd_read_full(int fd, void *buf, size_t len);
ssize_t fd_pread_full(int fd, void *buf, size_t len, uint64_t off);

/*
 * Write len bytes (at off for pwrite): len, or -1 with errno set (EIO for
 * a write that took nothing, which would otherwise be retried forever).
 */
ssize_t fd_write_full(int fd, const void *buf, size_t len);
ssize_t fd_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Whether a file output should keep out of the page cache (written
 * O_DIRECT, or behind): a regular file on a file system with write-back
 * (not tmpfs or ramfs, whose pages are the file), unless IMGPIPE_DIRECT=0.
 */
bool fd_bypass_cache(int fd);
/* The same for a file already known to be regular (its fstat done). */
bool fd_regular_bypass_cache(int fd);
/* fd is on tmpfs or ramfs: its pages are the file, none written back. */
bool fd_in_memory_fs(int fd);

#endif
