#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/sink.h"
#include "imgpipe/async_writer.h"
#include "imgpipe/zero.h"

#define PIPE_SIZE_WANTED (1024 * 1024)

int write_full(int fd, const void *buf, size_t len, const char *name)
{
	if (fd_write_full(fd, buf, len) < 0)
		return fail_io(name, "write error");
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
    const char *name)
{
	if (fd_pwrite_full(fd, buf, len, off) < 0)
		return fail_io(name, "write error");
	return 0;
}

int write_zeros(int fd, uint64_t len, const char *name)
{
	while (len > 0) {
		size_t n = len < ZERO_BUF_SIZE ? len : ZERO_BUF_SIZE;

		if (write_full(fd, zero_buf, n, name) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

int pipe_zeros(int fd, uint64_t len, const char *name)
{
	struct iovec v;
	ssize_t n;

	while (len > 0) {
		v.iov_base = (void *)zero_buf;
		v.iov_len = len < ZERO_BUF_SIZE ? len : ZERO_BUF_SIZE;
		n = vmsplice(fd, &v, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			return write_zeros(fd, len, name);
		if (n < 0)
			return fail_io(name, "write error");
		len -= n;
	}
	return 0;
}

int zero_range(int fd, uint64_t off, uint64_t len, const char *name)
{
	uint64_t end = off + len;

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
	    len) == 0)
		return 0;
	for (; off < end; off += ZERO_BUF_SIZE) {
		size_t n = end - off < ZERO_BUF_SIZE ? end - off : ZERO_BUF_SIZE;

		if (pwrite_full(fd, zero_buf, n, off, name) < 0)
			return -1;
	}
	return 0;
}

/* A fresh file is already zero there; old content must be punched out. */
static int punch_prior(struct raw_sink *rs, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (off >= rs->prior_size)
		return 0;
	end = off + len < rs->prior_size ? off + len : rs->prior_size;
	return zero_range(rs->fd, off, end - off, rs->name);
}

/*
 * Readers leave out zeros a seekable sink does not need (a hole in a fresh
 * file), so old bytes of an existing file or device would show through
 * there.  Whatever no extent reached lies below the start of some extent
 * above the frontier, or above the last one: punch it as the frontier
 * passes.  Extents out of order (a pipe's input) write over punched space,
 * which is only extra work.  Free when the output started empty.
 */
static int advance_frontier(struct raw_sink *rs, uint64_t off, uint64_t end)
{
	uint64_t from = rs->frontier;

	if (end <= from)
		return 0;
	rs->frontier = end;
	return off > from ? punch_prior(rs, from, off - from) : 0;
}

static int file_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (advance_frontier(rs, off, off + len) < 0)
		return -1;
	if (rs->writer != NULL)
		return async_pwrite(rs->writer, buf, len, off);
	return pwrite_full(rs->fd, buf, len, off, rs->name);
}

static int file_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (advance_frontier(rs, off, off + len) < 0)
		return -1;
	return punch_prior(rs, off, len);
}

static int file_lend(struct sink *sk, uint64_t off, size_t *len,
    unsigned char **buf)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	*buf = NULL;
	if (rs->writer == NULL)	/* writes go from the caller's buffer */
		return 0;
	*buf = async_lend(rs->writer, off, len);
	return *buf != NULL ? 0 : -1;
}

static int file_defer(struct sink *sk, int in, uint64_t in_off, uint64_t off,
    size_t *len, const char *label, uint64_t img_off)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (rs->writer == NULL) {	/* the caller reads them */
		*len = 0;
		return 0;
	}
	if (async_defer(rs->writer, in, in_off, off, len, label, img_off) < 0)
		return -1;
	return advance_frontier(rs, off, off + *len);
}

static int file_clone(struct sink *sk, int in, uint64_t in_off, uint64_t len,
    uint64_t off, uint64_t *from, uint64_t *to)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (zclone_range(&rs->clone, in, in_off, len, rs->fd, off, from, to,
	    rs->name) < 0)
		return -1;
	return *to > *from ? advance_frontier(rs, *from, *to) : 0;
}

static int file_finish(struct sink *sk, uint64_t size)
{
	struct raw_sink *rs = (struct raw_sink *)sk;
	struct async_writer *w = rs->writer;
	struct stat st;

	if (advance_frontier(rs, size, size) < 0)
		return -1;
	rs->writer = NULL;
	if (w != NULL && async_writer_finish(w) < 0)
		return -1;
	if (fstat(rs->fd, &st) == 0 && S_ISBLK(st.st_mode))
		return 0;
	if (ftruncate(rs->fd, size) < 0)
		return fail_io(rs->name, "cannot set the size");
	return 0;
}

static int stream_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (off != rs->pos)
		return fail(EXIT_IO, "internal error: stream write at %llu, "
		    "expected %llu", (unsigned long long)off,
		    (unsigned long long)rs->pos);
	rs->pos += len;
	return write_full(rs->fd, buf, len, rs->name);
}

static int stream_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (off != rs->pos)
		return fail(EXIT_IO, "internal error: stream zero at %llu, "
		    "expected %llu", (unsigned long long)off,
		    (unsigned long long)rs->pos);
	rs->pos += len;
	return rs->fifo ? pipe_zeros(rs->fd, len, rs->name)
	    : write_zeros(rs->fd, len, rs->name);
}

/*
 * Input bytes straight into the output pipe (splice moves the input
 * pipe's pages, or the page cache's, without a copy through us).
 */
static int stream_splice(struct sink *sk, uint64_t off, int in, size_t len,
    size_t *moved)
{
	struct raw_sink *rs = (struct raw_sink *)sk;
	ssize_t n;

	*moved = 0;
	if (off != rs->pos)
		return stream_write(sk, off, NULL, 0);	/* its message */
	while (*moved < len) {
		n = splice(in, NULL, rs->fd, NULL, len - *moved, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && *moved == 0 && (errno == EINVAL || errno == ENOSYS)) {
			rs->base.splice = NULL;	/* this pair will not */
			return 1;
		}
		if (n < 0 && errno == EPIPE)
			return fail_io(rs->name, "write error");
		if (n < 0)	/* a pipe takes any write: the input failed */
			return fail_errno(EXIT_IO, "read error");
		if (n == 0)
			break;
		*moved += n;
		rs->pos += n;
	}
	return 0;
}

static int stream_finish(struct sink *sk, uint64_t size)
{
	struct raw_sink *rs = (struct raw_sink *)sk;

	if (rs->pos != size)
		return fail(EXIT_IO, "internal error: stream ended at %llu of "
		    "%llu", (unsigned long long)rs->pos,
		    (unsigned long long)size);
	return 0;
}

void raw_sink_force_stream(struct raw_sink *rs)
{
	rs->seekable = false;
	rs->base.in_order = true;
	rs->base.write = stream_write;
	rs->base.zero = stream_zero;
	rs->base.finish = stream_finish;
	rs->base.no_zero_split = true;
	rs->base.lend = NULL;
	rs->base.clone = NULL;
	rs->base.splice = rs->fifo ? stream_splice : NULL;
	rs->base.defer = NULL;
}

void raw_sink_init(struct raw_sink *rs, int fd, const char *name)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	memset(rs, 0, sizeof *rs);
	rs->fd = fd;
	rs->name = name;
	raw_sink_force_stream(rs);
	if (fstat(fd, &st) < 0 || flags < 0 || (flags & O_APPEND))
		return;
	/* Fewer wake-ups of both ends: measured in test/bench (best effort). */
	if (S_ISFIFO(st.st_mode)) {
		fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE_WANTED);
		/* non-blocking: splice could stop half-way, as no write does */
		rs->fifo = !(flags & O_NONBLOCK);
		rs->base.splice = rs->fifo ? stream_splice : NULL;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return;
	if (lseek(fd, 0, SEEK_CUR) != 0)
		return;
	rs->seekable = true;
	rs->prior_size = S_ISBLK(st.st_mode) ? UINT64_MAX : (uint64_t)st.st_size;
	rs->base.in_order = false;
	rs->base.write = file_write;
	rs->base.zero = file_zero;
	rs->base.finish = file_finish;
	rs->base.no_zero_split = false;
	rs->base.lend = file_lend;
	rs->base.defer = file_defer;
	rs->base.clone = S_ISREG(st.st_mode) ? file_clone : NULL;
}

static int null_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	(void)sk; (void)off; (void)buf; (void)len;
	return 0;
}

static int null_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	(void)sk; (void)off; (void)len;
	return 0;
}

static int null_finish(struct sink *sk, uint64_t size)
{
	(void)sk; (void)size;
	return 0;
}

void null_sink_init(struct sink *sk)
{
	*sk = (struct sink){ .write = null_write, .zero = null_zero,
	    .finish = null_finish, .no_zero_split = true };
}

void raw_sink_async(struct raw_sink *rs, int threads)
{
	if (!rs->seekable || rs->writer != NULL)
		return;
	rs->writer = async_writer_start(rs->fd, rs->name, threads,
	    rs->prior_size);
	if (rs->writer == NULL)
		err_clear();	/* synchronous writes will do */
}

void raw_sink_close(struct raw_sink *rs)
{
	struct async_writer *w = rs->writer;

	rs->writer = NULL;
	if (w != NULL)	/* an error here never hides the first one */
		async_writer_finish(w);
}
