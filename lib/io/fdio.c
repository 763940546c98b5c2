#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "imgpipe/fdio.h"

enum fd_op { FD_READ, FD_PREAD, FD_WRITE, FD_PWRITE };

/* One system call of op on what is left of [buf, buf + len). */
static ssize_t fd_call(enum fd_op op, int fd, char *p, size_t left,
    uint64_t off)
{
	switch (op) {
	case FD_READ:
		return read(fd, p, left);
	case FD_PREAD:
		return pread(fd, p, left, (off_t)off);
	case FD_WRITE:
		return write(fd, p, left);
	default:
		return pwrite(fd, p, left, (off_t)off);
	}
}

/* Bytes moved: len, fewer where a call moved none, or -1 with errno. */
static ssize_t fd_transfer(enum fd_op op, int fd, char *buf, size_t len,
    uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = fd_call(op, fd, buf + done, len - done, off + done);
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

/* A write that stops short took nothing: an error, not an end. */
static ssize_t whole_or_eio(ssize_t n, size_t len)
{
	if (n >= 0 && (size_t)n < len) {
		errno = EIO;
		return -1;
	}
	return n;
}

ssize_t fd_read_full(int fd, void *buf, size_t len)
{
	return fd_transfer(FD_READ, fd, buf, len, 0);
}

ssize_t fd_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return fd_transfer(FD_PREAD, fd, buf, len, off);
}

/* The buffer is only read from: write(2) takes it as const. */
ssize_t fd_write_full(int fd, const void *buf, size_t len)
{
	return whole_or_eio(fd_transfer(FD_WRITE, fd, (char *)buf, len, 0),
	    len);
}

ssize_t fd_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	return whole_or_eio(fd_transfer(FD_PWRITE, fd, (char *)buf, len, off),
	    len);
}

static bool in_memory_type(long type)
{
	return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

bool fd_in_memory_fs(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 && in_memory_type(sfs.f_type);
}

bool fd_regular_bypass_cache(int fd)
{
	const char *env = getenv("IMGPIPE_DIRECT");
	struct statfs sfs;

	if (env != NULL && strcmp(env, "0") == 0)
		return false;
	return fstatfs(fd, &sfs) == 0 && !in_memory_type(sfs.f_type);
}

bool fd_bypass_cache(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    fd_regular_bypass_cache(fd);
}
