/*
 * Zero-copy for img2raw of a plain raw file (and for the writers that keep
 * a disk's bytes as they are: a fixed VHD): its data extents are moved in
 * the kernel, never through our buffers - copy_file_range() into a new
 * regular file (which clones blocks where the file system shares them,
 * XFS and btrfs; sendfile() across file systems), splice() into a pipe.  Holes stay holes in a file and go
 * to a pipe as zeros.  Anything else (a decoded or piped input, an output
 * file that already has bytes, a device) takes the ordinary path.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/zcopy.h"
#include "imgpipe/zero.h"

/* Per call: keeps -p and signals timely. */
#define ZCOPY_CHUNK ((size_t)64 << 20)

/* ZCOPY_SENDFILE: a file on another file system than the input's. */
enum zcopy_out { ZCOPY_NONE, ZCOPY_FILE, ZCOPY_SENDFILE, ZCOPY_PIPE };

/*
 * A pipe, or a regular file at offset 0 that holds nothing from `at` on
 * (for img2raw: an empty file), so that its holes already read as zeros.
 */
static enum zcopy_out zcopy_out_kind(int fd, uint64_t at)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (flags & O_APPEND) || fstat(fd, &st) < 0)
		return ZCOPY_NONE;
	if (S_ISFIFO(st.st_mode))
		return ZCOPY_PIPE;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size <= at &&
	    lseek(fd, 0, SEEK_CUR) == 0)
		return ZCOPY_FILE;
	return ZCOPY_NONE;
}

static bool zcopy_input_ok(const struct image *img)
{
	const struct source *s = img->src;

	return strcmp(img->fmt->name, "raw") == 0 && s->seekable &&
	    s->ar == NULL && s->size_known && !img->walk;
}

static bool zcopy_refused(int e)
{
	return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP;
}

/* One kernel call: up to n bytes from the input at in_off, to out at off. */
static ssize_t zcopy_call(struct source *s, int out, enum zcopy_out kind,
    uint64_t in_off, uint64_t off, size_t n)
{
	loff_t i = (loff_t)in_off, o = (loff_t)off;
	off_t si = (off_t)in_off;

	switch (kind) {
	case ZCOPY_FILE:
		return copy_file_range(s->fd, &i, out, &o, n, 0);
	case ZCOPY_SENDFILE:	/* writes at out's file offset */
		if (lseek(out, (off_t)off, SEEK_SET) < 0)
			return -1;
		return sendfile(out, s->fd, &si, n);
	default:
		return splice(s->fd, &i, out, NULL, n, SPLICE_F_MOVE);
	}
}

/*
 * Move [off, end) of the input to the output (at off + at for a file).
 * Returns 0, -1 (error recorded), or 1 when the kernel cannot do it for
 * this pair and nothing was moved yet (the caller falls back).
 * copy_file_range refuses two file systems (EXDEV): sendfile does those.
 */
static int zcopy_extent(struct source *s, int out, enum zcopy_out *kind,
    uint64_t at, uint64_t off, uint64_t end, bool first, const char *name)
{
	while (off < end) {
		size_t n = end - off < ZCOPY_CHUNK ? end - off : ZCOPY_CHUNK;
		ssize_t r = zcopy_call(s, out, *kind, s->base + off, at + off,
		    n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && first && *kind == ZCOPY_FILE && zcopy_refused(errno)) {
			*kind = ZCOPY_SENDFILE;
			continue;
		}
		if (r < 0 && first && zcopy_refused(errno))
			return 1;
		if (r == 0)
			return fail(EXIT_IO, "the input shrank while being "
			    "copied to %s", name);
		if (r < 0)
			return fail_io(name, "write error");
		off += (uint64_t)r;
		first = false;
		if (s->progress != NULL)
			progress_add(s->progress, (uint64_t)r);
	}
	return 0;
}

/*
 * The input's data runs to out, placed at `at` on in a file (holes left),
 * in order with zeros between them in a pipe (up to the input's end).
 * *moved: the bytes of the runs.
 */
static int zcopy_runs(struct source *s, int out, enum zcopy_out kind,
    uint64_t at, const char *out_name, uint64_t *moved)
{
	uint64_t off = 0, start, end;
	bool first = true;
	int r;

	*moved = 0;
	while ((r = source_next_data(s, off, &start, &end)) > 0) {
		if (kind == ZCOPY_PIPE && start > off) {
			/* a hole, as zeros: no falling back after this */
			if (write_zeros(out, start - off, out_name) < 0)
				return -1;
			first = false;
		}
		r = zcopy_extent(s, out, &kind, at, start, end, first,
		    out_name);
		if (r != 0)
			return r;
		*moved += end - start;
		first = false;
		off = end;
	}
	if (r < 0)
		return -1;
	if (kind == ZCOPY_PIPE && off < s->size)
		return write_zeros(out, s->size - off, out_name);
	return 0;
}

int zcopy_raw(struct image *img, int out, const char *out_name)
{
	enum zcopy_out kind;
	uint64_t moved;
	int r;

	if (!zcopy_input_ok(img) ||
	    (kind = zcopy_out_kind(out, 0)) == ZCOPY_NONE)
		return 1;
	r = zcopy_runs(img->src, out, kind, 0, out_name, &moved);
	if (r != 0 || kind == ZCOPY_PIPE)
		return r;
	if (ftruncate(out, (off_t)img->src->size) < 0)
		return fail_io(out_name, "cannot set the size");
	return 0;
}

int zcopy_raw_at(struct image *img, int out, uint64_t at,
    const char *out_name, uint64_t *moved)
{
	enum zcopy_out kind;

	*moved = 0;
	if (!zcopy_input_ok(img) ||
	    (kind = zcopy_out_kind(out, at)) == ZCOPY_NONE)
		return 1;
	return zcopy_runs(img->src, out, kind, at, out_name, moved);
}
