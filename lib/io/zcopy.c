/*
 * Zero-copy for img2raw of a plain raw file: its data extents are moved in
 * the kernel, never through our buffers - copy_file_range() into a new
 * regular file (which clones blocks where the file system shares them,
 * XFS and btrfs; sendfile() across file systems), splice() into a pipe.  Holes stay holes in a file and go
 * to a pipe as zeros.  Anything else (a decoded or piped input, an output
 * file that already has bytes, a device) takes the ordinary path.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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

static enum zcopy_out zcopy_out_kind(int fd)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (flags & O_APPEND) || fstat(fd, &st) < 0)
		return ZCOPY_NONE;
	if (S_ISFIFO(st.st_mode))
		return ZCOPY_PIPE;
	/* Only an empty file at offset 0: its holes already read as zeros. */
	if (S_ISREG(st.st_mode) && st.st_size == 0 &&
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
 * Move [off, end) of the input to the output (at the same offset for a
 * file).  Returns 0, -1 (error recorded), or 1 when the kernel cannot do it
 * for this pair and nothing was moved yet (the caller falls back).
 * copy_file_range refuses two file systems (EXDEV): sendfile does those.
 */
static int zcopy_extent(struct source *s, int out, enum zcopy_out *kind,
    uint64_t off, uint64_t end, bool first, const char *name)
{
	while (off < end) {
		size_t n = end - off < ZCOPY_CHUNK ? end - off : ZCOPY_CHUNK;
		ssize_t r = zcopy_call(s, out, *kind, s->base + off, off, n);

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

int zcopy_raw(struct image *img, int out, const char *out_name)
{
	struct source *s = img->src;
	enum zcopy_out kind;
	uint64_t off = 0, start, end;
	bool first = true;
	int r;

	if (!zcopy_input_ok(img) || (kind = zcopy_out_kind(out)) == ZCOPY_NONE)
		return 1;
	while ((r = source_next_data(s, off, &start, &end)) > 0) {
		if (kind == ZCOPY_PIPE && start > off) {
			/* a hole, as zeros: no falling back after this */
			if (write_zeros(out, start - off, out_name) < 0)
				return -1;
			first = false;
		}
		r = zcopy_extent(s, out, &kind, start, end, first,
		    out_name);
		if (r != 0)
			return r;
		first = false;
		off = end;
	}
	if (r < 0)
		return -1;
	if (kind == ZCOPY_PIPE)
		return off < s->size ? write_zeros(out, s->size - off, out_name) : 0;
	if (ftruncate(out, (off_t)s->size) < 0)
		return fail_io(out_name, "cannot set the size");
	return 0;
}

/*
 * Block sharing for the readers of uncompressed formats (qcow2, VHDX,
 * VDI, VHD, ...), whose data runs are the input's bytes at another
 * offset: qemu-img convert -C.  A clone (XFS with reflink, btrfs) shares
 * the blocks and costs no I/O.  copy_file_range is used only on file
 * systems that copy without us (network ones): on ext4 or tmpfs it is a
 * copy in the kernel into fresh page cache, which costs more than our
 * own writes (direct on a disk) and turns zero blocks inside a run into
 * data.  IMGPIPE_CLONE=copy takes it on any one file system (tests);
 * IMGPIPE_CLONE=0 turns sharing off.
 */
#define NFS_MAGIC 0x6969
#define SMB2_MAGIC 0xFE534D42
#define CIFS_MAGIC 0xFF534D42
#define CEPH_MAGIC 0x00C36400

static bool fs_copies_itself(long type)
{
	return type == NFS_MAGIC || type == SMB2_MAGIC || type == CIFS_MAGIC ||
	    type == CEPH_MAGIC;
}

static void zclone_probe(struct zclone *z, int in, int out)
{
	const char *env = getenv("IMGPIPE_CLONE");
	struct stat si, so;
	struct statfs sf;

	z->mode = ZCLONE_NONE;
	if (env != NULL && strcmp(env, "0") == 0)
		return;
	if (fstat(in, &si) < 0 || fstat(out, &so) < 0 || fstatfs(out, &sf) < 0 ||
	    !S_ISREG(si.st_mode) || !S_ISREG(so.st_mode) ||
	    si.st_dev != so.st_dev || sf.f_bsize <= 0)
		return;
	z->block = (uint64_t)sf.f_bsize;
	if (env != NULL && strcmp(env, "copy") == 0)
		z->mode = ZCLONE_COPY;
	else if (fs_copies_itself((long)sf.f_type))
		z->mode = ZCLONE_COPY;
	else
		z->mode = ZCLONE_FICLONE;
}

/* FICLONERANGE of [a, b): 0, 1 when the file system will not, -1 error. */
static int zclone_ficlone(int in, uint64_t in_off, int out, uint64_t a,
    uint64_t b, const char *name)
{
	struct file_clone_range r = { .src_fd = in, .src_offset = in_off,
	    .src_length = b - a, .dest_offset = a };

	if (ioctl(out, FICLONERANGE, &r) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV ||
	    errno == EINVAL || errno == ENOSYS || errno == EPERM)
		return 1;
	return fail_io(name, "write error");
}

/* copy_file_range of [a, b): 0, 1 when refused before any byte, -1. */
static int zclone_copy(int in, uint64_t in_off, int out, uint64_t a,
    uint64_t b, const char *name)
{
	loff_t i = (loff_t)in_off, o = (loff_t)a;
	bool first = true;
	ssize_t r;

	while ((uint64_t)o < b) {
		size_t n = b - o < ZCOPY_CHUNK ? b - o : ZCOPY_CHUNK;

		r = copy_file_range(in, &i, out, &o, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && first && zcopy_refused(errno))
			return 1;
		if (r == 0)
			return fail(EXIT_IO, "the input shrank while being "
			    "copied to %s", name);
		if (r < 0)
			return fail_io(name, "write error");
		first = false;
	}
	return 0;
}

int zclone_range(struct zclone *z, int in, uint64_t in_off, uint64_t len,
    int out, uint64_t off, uint64_t *from, uint64_t *to,
    const char *out_name)
{
	uint64_t a, b;
	int r;

	*from = *to = off;
	if (z->mode == ZCLONE_UNKNOWN)
		zclone_probe(z, in, out);
	if (z->mode == ZCLONE_NONE)
		return 0;
	a = off;	/* a copy takes any range, a clone whole blocks */
	b = off + len;
	if (z->mode == ZCLONE_FICLONE) {
		if (in_off % z->block != off % z->block)
			return 0;
		a = (off + z->block - 1) / z->block * z->block;
		b = (off + len) / z->block * z->block;
	}
	if (b <= a)
		return 0;
	if (z->mode == ZCLONE_FICLONE) {
		r = zclone_ficlone(in, in_off + (a - off), out, a, b, out_name);
		if (r == 1)	/* no reflink here: our own copy is better */
			z->mode = ZCLONE_NONE;
	} else {
		r = zclone_copy(in, in_off + (a - off), out, a, b, out_name);
		if (r == 1)
			z->mode = ZCLONE_NONE;
	}
	if (r != 0)
		return r < 0 ? -1 : 0;
	*from = a;
	*to = b;
	return 0;
}
