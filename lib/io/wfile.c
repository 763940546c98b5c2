/*
 * A writer's output: positioned writes to a file, or a forward stream.
 * Grain data that continues the previous write is gathered into one
 * pwritev/writev of up to 64 pieces, which saves a system call a grain
 * (65536 of them for 4 GiB of 64 KiB clusters) without copying.  A large
 * gathered write to a file is issued in two halves on two threads (see
 * write_split), and off tmpfs 1 MiB a call (WFILE_CALL_MAX).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "imgpipe/cache_gauge.h"
#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/sink.h"
#include "imgpipe/workers.h"
#include "imgpipe/writer.h"
#include "imgpipe/zero.h"

#define WFILE_PIPE_SIZE (1024 * 1024)
#define WFILE_BEHIND (32u << 20)
/* Pages given back for reuse when the writes go behind (start_behind). */
#define WFILE_REUSE (64u << 20)
/* A gathered write to a file this large goes in two halves (write_split). */
#define WFILE_SPLIT_MIN (1u << 20)
/*
 * The most one write to a file takes, but on tmpfs, as qemu-img convert's
 * requests.  A larger write lets the page cache of a file system with
 * large folios (ext4 since Linux 6.16, XFS) take folios of up to 2 MiB,
 * and on this project's virtual machines such writes are slow to land
 * (the guest hands free memory back to the host in 2 MiB blocks,
 * page_reporting_order 9): dd of 1.3 GB into a new ext4 file, right after
 * removing one as large, took 0.27 s in 1 MiB writes (5 runs) and 1.9-2.9
 * s in 2, 4 or 16 MiB writes (9 runs of 10; one 0.33 s).  tmpfs keeps
 * small pages: cut there, raw2vhdx took 0.51 s against 0.47 s.
 */
#define WFILE_CALL_MAX ((size_t)1 << 20)

/*
 * A file on a disk file system goes through the page cache while the
 * cache takes it fast, and is written behind while it does not
 * (cache_gauge.c): every 32 MiB its write-back is started, after the
 * write-back started before has ended, and its clean pages are given
 * back, so the output holds at most about 64 MiB more of page cache and
 * each window reuses the pages of the one before (dd oflag=nocache's
 * way; img2raw writes O_DIRECT for the same reason).  New pages cost a
 * host fault each on this project's virtual machines when free memory
 * has gone back to the host: raw2vhdx of the 4 GiB disk to ext4 took 0.4
 * to 6 s from run to run, 3 to 6 s after a few idle seconds.  Behind,
 * the time includes the write-back, which qemu-img convert leaves to the
 * kernel.  tmpfs has no write-back.
 */
static void kick_write_back(struct wfile *f, unsigned int wait_after)
{
	f->unkicked = 0;
	(void)sync_file_range(f->fd, f->behind_from, 0,
	    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | wait_after);
	(void)posix_fadvise(f->fd, f->behind_from, 0, POSIX_FADV_DONTNEED);
}

/*
 * Into write-behind: the cache was slow because its pages were new, so
 * the last WFILE_REUSE bytes that went through it are written back now
 * (about 45 ms at the disk's 1.5 GB/s) and their pages given back, for
 * the next writes to take instead of new ones.  Before, the first 32 MiB
 * behind took new pages: 27 ms a MiB on a day the host faulted them in
 * at 37 MB/s (2026-12-03).  What went through the cache before those is
 * left to the kernel, as qemu-img convert leaves all of its output.
 */
static void start_behind(struct wfile *f)
{
	f->behind_from = f->end > WFILE_REUSE ? f->end - WFILE_REUSE : 0;
	kick_write_back(f, SYNC_FILE_RANGE_WAIT_AFTER);
}

static void write_behind(struct wfile *f, uint64_t len)
{
	bool past = f->gauged && cache_gauge_past(&f->gauge);

	if (past != f->write_behind) {
		f->write_behind = past;
		if (past)	/* behind_from and unkicked only count behind */
			start_behind(f);
		return;
	}
	f->unkicked += len;
	if (f->write_behind && f->unkicked >= WFILE_BEHIND)
		kick_write_back(f, 0);
}

void wfile_init(struct wfile *f, int fd, const char *name, bool read_back)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	memset(f, 0, sizeof *f);
	f->fd = fd;
	f->name = name;
	f->call_max = SIZE_MAX;
	if (fstat(fd, &st) < 0 || flags < 0 || (flags & O_APPEND))
		return;
	/* Fewer wake-ups of both ends, as the raw sink (best effort). */
	if (S_ISFIFO(st.st_mode))
		fcntl(fd, F_SETPIPE_SZ, WFILE_PIPE_SIZE);
	if (!S_ISREG(st.st_mode))
		return;
	f->seekable = lseek(fd, 0, SEEK_CUR) == 0;
	if (!fd_in_memory_fs(fd))
		f->call_max = WFILE_CALL_MAX;
	f->prior_size = st.st_size;
	f->gauged = f->seekable && !read_back;
	if (f->gauged)
		cache_gauge_init(&f->gauge, fd);
	/* IMGPIPE_DIRECT=1: behind from the first byte */
	f->write_behind = f->gauged && cache_gauge_past(&f->gauge);
}

/* A fresh file reads as zeros already; bytes it held before must go. */
static int punch(struct wfile *f, uint64_t off, uint64_t len)
{
	if (off >= f->prior_size)
		return 0;
	if (len > f->prior_size - off)
		len = f->prior_size - off;
	return zero_range(f->fd, off, len, f->name);
}

/*
 * The highest byte written so far.  A format leaves gaps it expects to
 * read as zeros (padding, unallocated space); in a file that held bytes
 * before, they are punched as the end passes them (free in a fresh file).
 */
static int note_end(struct wfile *f, uint64_t off, uint64_t end)
{
	uint64_t from = f->end;

	if (end <= from)
		return 0;
	f->end = end;
	return f->seekable && off > from ? punch(f, from, off - from) : 0;
}

/*
 * How many of the n pieces one write takes: at most max bytes.  If the
 * last piece goes past that, its length is cut and the full one returned
 * in *cut_from (else 0) for the caller to put back.
 */
static int pieces_for_call(struct iovec *iov, int n, size_t max,
    size_t *cut_from)
{
	size_t sum = 0;
	int k = 0;

	*cut_from = 0;
	while (k < n && sum < max)
		sum += iov[k++].iov_len;
	if (sum > max) {
		*cut_from = iov[k - 1].iov_len;
		iov[k - 1].iov_len -= sum - max;
	}
	return k;
}

/*
 * pwritev/writev all of iov, at most call_max bytes a call, each timed
 * by g if not NULL: 0, or the errno of the write that failed.  Runs on
 * any thread: it reports nothing.
 */
static int write_iov(int fd, bool seekable, size_t call_max,
    struct cache_gauge *g, struct iovec *iov, int n, uint64_t off)
{
	ssize_t done;
	size_t cut_from;
	int k;

	while (n > 0) {
		k = pieces_for_call(iov, n, call_max, &cut_from);
		if (g != NULL)
			cache_gauge_begin(g);
		done = seekable ? pwritev(fd, iov, k, off) : writev(fd, iov, k);
		if (g != NULL)
			cache_gauge_end(g, done > 0 ? (size_t)done : 0);
		if (cut_from)
			iov[k - 1].iov_len = cut_from;
		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return errno;
		off += done;
		while (n > 0 && (size_t)done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

/* The gauge of a file's writes through the cache, or NULL. */
static struct cache_gauge *file_gauge(struct wfile *f)
{
	return f->gauged ? &f->gauge : NULL;
}

struct half {
	int fd;
	size_t call_max;
	struct cache_gauge *gauge;
	struct iovec iov[WFILE_IOV_MAX];
	int n;
	uint64_t off;
	int err;
};

static void write_half(void *arg, int thread, size_t i)
{
	struct half *h = (struct half *)arg + i;

	(void)thread;
	h->err = write_iov(h->fd, true, h->call_max, h->gauge, h->iov, h->n,
	    h->off);
}

/* Cut the gathered pieces at byte `at` into h[0] and h[1]. */
static void cut_in_two(struct wfile *f, uint64_t at, struct half *h)
{
	size_t left = at;
	int i;

	h[0] = (struct half){ .fd = f->fd, .call_max = f->call_max,
	    .gauge = file_gauge(f), .off = f->iov_off };
	h[1] = (struct half){ .fd = f->fd, .call_max = f->call_max,
	    .gauge = file_gauge(f), .off = f->iov_off + at };
	for (i = 0; i < f->niov; i++) {
		struct iovec v = f->iov[i];

		if (left > 0 && v.iov_len > left) {	/* the piece cut */
			h[0].iov[h[0].n++] = (struct iovec){ v.iov_base, left };
			v.iov_base = (char *)v.iov_base + left;
			v.iov_len -= left;
			left = 0;
		}
		if (left > 0) {
			h[0].iov[h[0].n++] = v;
			left -= v.iov_len;
		} else {
			h[1].iov[h[1].n++] = v;
		}
	}
}

/*
 * Two threads, each writing half: the pages a write takes come from the
 * processor that runs it, and on this project's virtual machines a
 * processor's own free pages are cheap while pages the host has taken
 * back (free page reporting) cost a host fault each.  Written from one
 * thread, raw2qcow2 of the 4 GiB disk to tmpfs ran 0.48-1.46 s (median
 * 0.80, 10 rounds) depending on which processor that thread landed on;
 * in halves 0.49-0.67 s (median 0.52), qemu-img convert 0.63-0.70 s
 * (its pool of threads spreads its writes too).  tmpfs takes the file's
 * lock for each write, so the halves do not overlap much; where they
 * run is the point.  0, or the errno of a half that failed.
 */
static int write_split(struct wfile *f)
{
	struct half h[2];

	if (f->halves == NULL) {
		f->halves = malloc(sizeof *f->halves);
		if (f->halves != NULL && workers_start(f->halves, 2) < 0) {
			free(f->halves);
			f->halves = NULL;
		}
	}
	if (f->halves == NULL)	/* no memory for the helper: one write */
		return write_iov(f->fd, true, f->call_max, file_gauge(f),
		    f->iov, f->niov, f->iov_off);
	cut_in_two(f, f->iov_len / 2, h);
	workers_run_each(f->halves, write_half, h);
	return h[0].err ? h[0].err : h[1].err;
}

/* Write the gathered pieces: one system call, or a few if short. */
static int write_gathered(struct wfile *f)
{
	int e;

	if (f->seekable && !f->one_thread && f->iov_len >= WFILE_SPLIT_MIN)
		e = write_split(f);
	else
		e = write_iov(f->fd, f->seekable, f->call_max, file_gauge(f),
		    f->iov, f->niov, f->iov_off);
	if (e == 0)
		return 0;
	errno = e;
	return fail_io(f->name, "write error");
}

void wfile_free(struct wfile *f)
{
	if (f->gauged) {
		cache_gauge_free(&f->gauge);
		f->gauged = false;
	}
	if (f->halves != NULL) {
		workers_stop(f->halves);
		free(f->halves);
		f->halves = NULL;
	}
}

int wfile_flush(struct wfile *f)
{
	int rc;

	if (f->niov == 0)
		return 0;
	rc = write_gathered(f);
	if (rc == 0)
		write_behind(f, f->iov_len);
	if (!f->seekable)
		f->pos = f->iov_off + f->iov_len;
	f->niov = 0;
	f->iov_len = 0;
	return rc;
}

/* A stream: pad with zeros up to off; going back is a writer's bug. */
static int stream_seek(struct wfile *f, uint64_t off)
{
	if (off < f->pos)
		return fail_file(EXIT_IO, f->name, "a writer went back in a "
		    "stream (0x%llx < 0x%llx)", (unsigned long long)off,
		    (unsigned long long)f->pos);
	if (off > f->pos && write_zeros(f->fd, off - f->pos, f->name) < 0)
		return -1;
	f->pos = off;
	return 0;
}

/* Before a write or zeros that skip the gathered pieces: those first. */
static int flush_then_note_end(struct wfile *f, uint64_t off, uint64_t len)
{
	if (wfile_flush(f) < 0)
		return -1;
	return note_end(f, off, off + len);
}

int wfile_write(struct wfile *f, const void *buf, size_t len, uint64_t off)
{
	int rc;

	if (flush_then_note_end(f, off, len) < 0)
		return -1;
	if (f->seekable) {
		if (f->gauged)
			cache_gauge_begin(&f->gauge);
		rc = pwrite_full(f->fd, buf, len, off, f->name);
		if (f->gauged)
			cache_gauge_end(&f->gauge, rc < 0 ? 0 : len);
		if (rc < 0)
			return -1;
		write_behind(f, len);
		return 0;
	}
	if (stream_seek(f, off) < 0 || write_full(f->fd, buf, len, f->name) < 0)
		return -1;
	f->pos += len;
	return 0;
}

int wfile_put(struct wfile *f, const void *buf, size_t len, uint64_t off)
{
	if (len == 0)
		return 0;
	if (f->niov > 0 && (off != f->iov_off + f->iov_len ||
	    f->niov == WFILE_IOV_MAX ||
	    f->iov_len >= (4u << 20)) && wfile_flush(f) < 0)
		return -1;
	if (f->niov == 0) {
		if (!f->seekable && stream_seek(f, off) < 0)
			return -1;
		f->iov_off = off;
	}
	f->iov[f->niov].iov_base = (void *)buf;
	f->iov[f->niov].iov_len = len;
	f->niov++;
	f->iov_len += len;
	return note_end(f, off, off + len);
}

int wfile_zero(struct wfile *f, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (flush_then_note_end(f, off, len) < 0)
		return -1;
	if (f->seekable)
		return punch(f, off, len);
	if (stream_seek(f, off) < 0 || write_zeros(f->fd, len, f->name) < 0)
		return -1;
	f->pos += len;
	return 0;
}

int wfile_end(struct wfile *f, uint64_t size)
{
	if (wfile_flush(f) < 0)
		return -1;
	if (f->seekable) {
		if (note_end(f, size, size) < 0)
			return -1;
		if (ftruncate(f->fd, size) < 0)
			return fail_io(f->name, "cannot set the size");
		f->end = size;	/* zeros written past it are cut off */
		return 0;
	}
	if (size > f->pos && write_zeros(f->fd, size - f->pos, f->name) < 0)
		return -1;
	if (size > f->pos)
		f->pos = size;
	return note_end(f, size, size);
}
