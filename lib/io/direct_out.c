/*
 * Why a slow page cache is left for O_DIRECT: on a virtual machine every
 * page the page cache takes for new data may be memory the host has to
 * fault in first, and that cost, not the copy, was most of img2raw's
 * time (perf: 73% in copy_folio_from_iter_atomic against 6% for reading
 * as many cached bytes), and it swings with what the host is doing.  A
 * direct write costs no new memory, and leaves no dirty pages for the
 * next program to be throttled by.  A file system that refuses it gets
 * the rest buffered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "imgpipe/direct_out.h"
#include "imgpipe/fdio.h"

/*
 * The output again, opened O_DIRECT (its own open file description: the
 * caller's flags stay as they are), or -1: not a regular file, tmpfs
 * (its pages are the file: nothing to bypass), or IMGPIPE_DIRECT=0.
 */
static int open_direct(int fd)
{
	char proc[64];

	if (!fd_bypass_cache(fd))
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	return open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

void direct_out_init(struct direct_out *d, int fd)
{
	d->fd = fd;
	d->direct_fd = open_direct(fd);
	atomic_init(&d->refused, false);
	cache_gauge_init(&d->gauge, fd);
	if (d->direct_fd < 0)	/* nothing to go to */
		d->gauge.measuring = false;
}

void direct_out_free(struct direct_out *d)
{
	if (d->direct_fd >= 0)
		close(d->direct_fd);
	d->direct_fd = -1;
	cache_gauge_free(&d->gauge);
}

bool direct_out_past(struct direct_out *d)
{
	return d->direct_fd >= 0 && !atomic_load(&d->refused) &&
	    cache_gauge_past(&d->gauge);
}

/* pwrite in full: 0 or an errno. */
static int write_range(int fd, const unsigned char *buf, size_t len,
    uint64_t off)
{
	return fd_pwrite_full(fd, buf, len, off) < 0 ? errno : 0;
}

static int write_direct(struct direct_out *d, const unsigned char *buf,
    size_t len, uint64_t off)
{
	uint64_t end = off + len;
	uint64_t a = (off + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
	uint64_t b = end / DIRECT_ALIGN * DIRECT_ALIGN;
	int err;

	if (b <= a)
		return write_range(d->fd, buf, len, off);
	err = write_range(d->direct_fd, buf + (a - off), b - a, a);
	if (err == EINVAL) {	/* not for this file after all */
		atomic_store(&d->refused, true);
		return write_range(d->fd, buf, len, off);
	}
	if (err == 0 && a > off)
		err = write_range(d->fd, buf, a - off, off);
	if (err == 0 && end > b)
		err = write_range(d->fd, buf + (b - off), end - b, b);
	return err;
}

int direct_out_write(struct direct_out *d, const unsigned char *buf,
    size_t len, uint64_t off, bool direct)
{
	int err;

	cache_gauge_begin(&d->gauge);
	err = direct ? write_direct(d, buf, len, off) :
	    write_range(d->fd, buf, len, off);
	cache_gauge_end(&d->gauge, err ? 0 : len);
	return err;
}
