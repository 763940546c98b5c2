/*
 * Zero-copy for img2raw of a plain raw file (and for the writers that keep
 * a disk's bytes as they are: a fixed VHD): its data extents are moved in
 * the kernel, never through our buffers - copy_file_range() into a new
 * regular file on the input's file system (which clones blocks where the
 * file system shares them, XFS and btrfs), splice() through a pipe of our
 * own into a file on another file system (what sendfile() does, but at
 * an offset of ours), splice() into a pipe: one policy a pair of files,
 * decided once (zcopy_file_policy).  Into a file, two threads copy 64 MiB pieces
 * side by side, as qemu-img convert's requests run in parallel.  Holes
 * stay holes in a file and go to a pipe as zeros.  Anything else (a
 * decoded or piped input, an output file that already has bytes, a
 * device) takes the ordinary path.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/zcopy.h"
#include "imgpipe/zero.h"

/* A piece, and a kernel call's most: keeps -p and signals timely. */
#define ZCOPY_CHUNK ((size_t)64 << 20)
/* Threads that copy pieces into a file: the caller and one more. */
#define ZCOPY_THREADS 2
/* What a splice through our own pipe moves at a time. */
#define ZCOPY_PIPE_SIZE (1024 * 1024)

/* A failure that is no errno: the input ended before its size. */
#define ZCOPY_SHRANK (-1)

/* ZCOPY_SPLICE: a file on another file system than the input's. */
enum zcopy_out { ZCOPY_NONE, ZCOPY_FILE, ZCOPY_SPLICE, ZCOPY_PIPE };

#define NFS_MAGIC 0x6969
#define SMB2_MAGIC 0xFE534D42
#define CIFS_MAGIC 0xFF534D42
#define CEPH_MAGIC 0x00C36400

/* File systems that copy between two files without us (on the server). */
static bool fs_copies_itself(long type)
{
	return type == NFS_MAGIC || type == SMB2_MAGIC || type == CIFS_MAGIC ||
	    type == CEPH_MAGIC;
}

/* Two regular files, as the copy policy sees them. */
struct zpair {
	bool files;		/* both are regular files */
	bool one_fs;		/* ... on one file system */
	long out_type;		/* the output's file system */
	uint64_t block;		/* ... and its block size */
};

static bool zpair_probe(int in, int out, struct zpair *p)
{
	struct stat si, so;
	struct statfs sf;

	memset(p, 0, sizeof *p);
	if (fstat(in, &si) < 0 || fstat(out, &so) < 0 || fstatfs(out, &sf) < 0 ||
	    !S_ISREG(si.st_mode) || !S_ISREG(so.st_mode) || sf.f_bsize <= 0)
		return false;
	p->files = true;
	p->one_fs = si.st_dev == so.st_dev;
	p->out_type = (long)sf.f_type;
	p->block = (uint64_t)sf.f_bsize;
	return true;
}

/*
 * The one copy policy of the data runs of a raw file, decided once for
 * the pair: copy_file_range on one file system (a clone where blocks
 * are shared, else the kernel's copy) or on one that copies itself;
 * across two, splice through a pipe of our own (one copy in the kernel,
 * as sendfile: the kernel refuses copy_file_range there, EXDEV).  The
 * kernel's no on the first call still falls back to the splice.
 */
static enum zcopy_out zcopy_file_policy(int in, int out)
{
	struct zpair p;

	if (!zpair_probe(in, out, &p))
		return ZCOPY_FILE;	/* its first call will tell */
	return p.one_fs || fs_copies_itself(p.out_type) ? ZCOPY_FILE
	    : ZCOPY_SPLICE;
}

/*
 * A pipe, or a regular file at offset 0 that holds nothing from `at` on
 * (for img2raw: an empty file), so that its holes already read as zeros;
 * for a file, how its runs are copied from in.
 */
static enum zcopy_out zcopy_out_kind(int in, int fd, uint64_t at)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (flags & O_APPEND) || fstat(fd, &st) < 0)
		return ZCOPY_NONE;
	if (S_ISFIFO(st.st_mode))
		return ZCOPY_PIPE;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size <= at &&
	    lseek(fd, 0, SEEK_CUR) == 0)
		return zcopy_file_policy(in, fd);
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

/* A copier's own pipe, for ZCOPY_SPLICE; fds -1 until needed. */
struct zpipe {
	int fd[2];
	size_t size;
};

static int zpipe_open(struct zpipe *p)
{
	int n;

	if (p->fd[0] >= 0)
		return 0;
	if (pipe2(p->fd, O_CLOEXEC) < 0) {
		p->fd[0] = p->fd[1] = -1;
		return -1;
	}
	fcntl(p->fd[1], F_SETPIPE_SZ, ZCOPY_PIPE_SIZE);	/* best effort */
	n = fcntl(p->fd[1], F_GETPIPE_SZ);
	p->size = n > 0 ? (size_t)n : 65536;
	return 0;
}

static void zpipe_close(struct zpipe *p)
{
	if (p->fd[0] >= 0) {
		close(p->fd[0]);
		close(p->fd[1]);
	}
	p->fd[0] = p->fd[1] = -1;
}

/* In at *i to out at *o through the pipe: what sendfile does inside. */
static ssize_t splice_through(int in, loff_t *i, int out, loff_t *o,
    size_t n, struct zpipe *p)
{
	ssize_t got, put;
	size_t left;

	if (zpipe_open(p) < 0)
		return -1;
	got = splice(in, i, p->fd[1], NULL, n < p->size ? n : p->size,
	    SPLICE_F_MOVE);
	for (left = got > 0 ? (size_t)got : 0; left > 0; left -= put) {
		put = splice(p->fd[0], NULL, out, o, left, SPLICE_F_MOVE);
		if (put < 0 && errno == EINTR)
			put = 0;
		else if (put <= 0)
			return -1;	/* what is left in the pipe goes with it */
	}
	return got;
}

/* One kernel call: up to n bytes from the input at in_off, to out at off. */
static ssize_t zcopy_call(struct source *s, int out, enum zcopy_out kind,
    uint64_t in_off, uint64_t off, size_t n, struct zpipe *p)
{
	loff_t i = (loff_t)in_off, o = (loff_t)off;

	if (n > ZCOPY_CHUNK)
		n = ZCOPY_CHUNK;
	switch (kind) {
	case ZCOPY_FILE:
		return copy_file_range(s->fd, &i, out, &o, n, 0);
	case ZCOPY_SPLICE:
		return splice_through(s->fd, &i, out, &o, n, p);
	default:
		return splice(s->fd, &i, out, NULL, n, SPLICE_F_MOVE);
	}
}

/*
 * The copy of one run of data, or of all of them into a file, shared by
 * the copiers: pieces are handed out under mu, and the first failure
 * stops them all.
 */
struct zcopy {
	struct source *s;
	int out;
	enum zcopy_out kind;
	uint64_t at;		/* the output offset of input byte 0 */
	const char *name;
	pthread_mutex_t mu;
	uint64_t off, run_end;	/* the run being handed out: [off, run_end) */
	bool runs_left;		/* more runs after it */
	int err;		/* the first failure: an errno, ZCOPY_SHRANK */
	bool refused;		/* ... which was the kernel's no, first call */
	uint64_t moved;
};

/* Called with mu held: the next piece, or false when none is left. */
static bool next_piece(struct zcopy *z, uint64_t *start, uint64_t *end)
{
	uint64_t d, h;

	if (z->err != 0)
		return false;
	if (z->off >= z->run_end) {
		if (!z->runs_left ||
		    source_next_data(z->s, z->run_end, &d, &h) <= 0) {
			z->runs_left = false;
			return false;
		}
		z->off = d;
		z->run_end = h;
	}
	*start = z->off;
	*end = z->run_end - z->off < ZCOPY_CHUNK ? z->run_end :
	    z->off + ZCOPY_CHUNK;
	z->off = *end;
	return true;
}

/*
 * Copy [off, end) of the input to the output at z->at + off.  Returns 0,
 * an errno (for the kernel's no on the first call: z->refused), or
 * ZCOPY_SHRANK.
 */
static int copy_piece(struct zcopy *z, uint64_t off, uint64_t end,
    bool first, struct zpipe *p)
{
	while (off < end) {
		ssize_t r = zcopy_call(z->s, z->out, z->kind, z->s->base + off,
		    z->at + off, end - off, p);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && first && z->kind == ZCOPY_FILE &&
		    zcopy_refused(errno)) {
			z->kind = ZCOPY_SPLICE;	/* before any other copier */
			continue;
		}
		if (r < 0 && first && zcopy_refused(errno))
			z->refused = true;
		if (r <= 0)
			return r == 0 ? ZCOPY_SHRANK : errno;
		off += (uint64_t)r;
		first = false;
		pthread_mutex_lock(&z->mu);
		z->moved += (uint64_t)r;
		if (z->s->progress != NULL)
			progress_add(z->s->progress, (uint64_t)r);
		pthread_mutex_unlock(&z->mu);
	}
	return 0;
}

/* A copier: pieces until none is left or one failed. */
static void copy_pieces(struct zcopy *z)
{
	struct zpipe p = { { -1, -1 }, 0 };
	uint64_t start, end;
	int e;

	for (;;) {
		pthread_mutex_lock(&z->mu);
		if (!next_piece(z, &start, &end)) {
			pthread_mutex_unlock(&z->mu);
			break;
		}
		pthread_mutex_unlock(&z->mu);
		e = copy_piece(z, start, end, false, &p);
		if (e != 0) {
			pthread_mutex_lock(&z->mu);
			if (z->err == 0)
				z->err = e;
			pthread_mutex_unlock(&z->mu);
			break;
		}
	}
	zpipe_close(&p);
}

static void *copier_main(void *arg)
{
	copy_pieces(arg);
	return NULL;
}

static int zcopy_failed(const struct zcopy *z)
{
	if (z->err == ZCOPY_SHRANK)
		return fail(EXIT_IO, "the input shrank while being copied to "
		    "%s", z->name);
	errno = z->err;
	return fail_io(z->name, "write error");
}

/*
 * Into a file: the first piece alone (the kernel may refuse this pair:
 * then 1, nothing written), then the rest on ZCOPY_THREADS copiers.
 */
static int zcopy_into_file(struct zcopy *z)
{
	struct zpipe p = { { -1, -1 }, 0 };
	pthread_t tid[ZCOPY_THREADS];
	uint64_t start, end;
	int i, n = 0;

	if (!next_piece(z, &start, &end))
		return 0;
	z->err = copy_piece(z, start, end, true, &p);
	zpipe_close(&p);
	if (z->err != 0)
		return z->refused ? 1 : zcopy_failed(z);
	for (i = 1; i < ZCOPY_THREADS; i++)
		if (start_thread(&tid[n], copier_main, z) == 0)
			n++;	/* else fewer: slower, still right */
	copy_pieces(z);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	return z->err != 0 ? zcopy_failed(z) : 0;
}

/* Into a pipe, in order: the runs, zeros between them. */
static int zcopy_into_pipe(struct zcopy *z)
{
	struct source *s = z->s;
	uint64_t off = 0, start, end;
	bool first = true;

	while (source_next_data(s, off, &start, &end) > 0) {
		if (start > off) {
			/* a hole, as zeros: no falling back after this */
			if (write_zeros(z->out, start - off, z->name) < 0)
				return -1;
			first = false;
		}
		z->err = copy_piece(z, start, end, first, NULL);
		if (z->err != 0)
			return z->refused ? 1 : zcopy_failed(z);
		first = false;
		off = end;
	}
	return off < s->size ? write_zeros(z->out, s->size - off, z->name) : 0;
}

static int zcopy_runs(struct source *s, int out, enum zcopy_out kind,
    uint64_t at, const char *out_name, uint64_t *moved)
{
	struct zcopy z = { .s = s, .out = out, .kind = kind, .at = at,
	    .name = out_name, .runs_left = true };
	int r;

	pthread_mutex_init(&z.mu, NULL);
	r = kind == ZCOPY_PIPE ? zcopy_into_pipe(&z) : zcopy_into_file(&z);
	pthread_mutex_destroy(&z.mu);
	*moved = z.moved;
	return r;
}

int zcopy_raw(struct image *img, int out, const char *out_name)
{
	enum zcopy_out kind;
	uint64_t moved;
	int r;

	if (!zcopy_input_ok(img) ||
	    (kind = zcopy_out_kind(img->src->fd, out, 0)) == ZCOPY_NONE)
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
	    (kind = zcopy_out_kind(img->src->fd, out, at)) == ZCOPY_NONE)
		return 1;
	return zcopy_runs(img->src, out, kind, at, out_name, moved);
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
static void zclone_probe(struct zclone *z, int in, int out)
{
	const char *env = getenv("IMGPIPE_CLONE");
	struct zpair p;

	z->mode = ZCLONE_NONE;
	if (env != NULL && strcmp(env, "0") == 0)
		return;
	if (!zpair_probe(in, out, &p) || !p.one_fs)
		return;
	z->block = p.block;
	if (env != NULL && strcmp(env, "copy") == 0)
		z->mode = ZCLONE_COPY;
	else if (fs_copies_itself(p.out_type))
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
