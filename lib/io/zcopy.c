/*
 * img2raw of a plain raw file (and the writers that keep a disk's bytes
 * as they are: a fixed VHD) without the emitter: its data extents are
 * copied whole, holes stay holes in a file and go to a pipe as zeros.
 * One policy a pair of files, decided once (zcopy_file_policy):
 * copy_file_range() where the file system shares blocks (a clone: XFS,
 * btrfs) or copies itself (NFS, SMB, Ceph); anywhere else a copy of our
 * own, pread() and pwrite() through a 1 MiB buffer, which is faster than
 * the kernel's copy (copy_file_range on ext4, splice to another file
 * system: below), and whose writes leave the page cache when it is slow
 * (direct_out.h), as the writer threads' do; splice() into a pipe.  Into
 * a file, two threads copy 8 MiB pieces side by side, as qemu-img
 * convert's requests run in parallel.  Anything else (a decoded or piped
 * input, an output file that already has bytes, a device) takes the
 * ordinary path.
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

#include "imgpipe/bigbuf.h"
#include "imgpipe/direct_out.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/zcopy.h"
#include "imgpipe/zero.h"

/*
 * A piece, and a kernel call's most.  Small enough that the two copiers
 * end together when one is slowed (on this project's virtual machines a
 * vCPU writing into pages the host has taken back, as after -o removed
 * the old output): img2raw of the 4 GiB bench disk over its tmpfs output,
 * 12 alternating rounds, 0.40 / 0.45 / 0.74 s (min / median / max) with
 * 8 MiB pieces, 0.41 / 0.46 / 1.54 s with 64 MiB; the same with the
 * output absent (0.36-0.45 s).
 */
#define ZCOPY_CHUNK ((size_t)8 << 20)
/* Threads that copy pieces into a file: the caller and one more. */
#define ZCOPY_THREADS 2
/*
 * What one read and one write of our own copy move.  The 4 GiB bench
 * disk (1.3 GB of data, in the page cache), medians of 5-6 alternating
 * rounds: ext4 to tmpfs 0.37 s against 0.43 s spliced through a 1 MiB
 * pipe (cp: 0.51 s; 256 KiB and 4 MiB buffers no better); ext4 to the
 * same ext4 0.29 s against 0.44 s by copy_file_range, and with the
 * write-back (a sync) 0.93 s against 1.26 s (cp 1.11 s).
 */
#define ZCOPY_BUF (1024 * 1024)

/* A failure that is no errno: the input ended before its size. */
#define ZCOPY_SHRANK (-1)

/*
 * ZCOPY_FILE: a file that copy_file_range fills (a clone, a server's
 * copy); ZCOPY_RW: a file we copy into ourselves.
 */
enum zcopy_out { ZCOPY_NONE, ZCOPY_FILE, ZCOPY_RW, ZCOPY_PIPE };

#define NFS_MAGIC 0x6969
#define SMB2_MAGIC 0xFE534D42
#define CIFS_MAGIC 0xFF534D42
#define CEPH_MAGIC 0x00C36400
#define XFS_MAGIC 0x58465342
#define BTRFS_MAGIC 0x9123683E
#define BCACHEFS_MAGIC 0xCA451A4E

/* File systems that copy between two files without us (on the server). */
static bool fs_copies_itself(long type)
{
	return type == NFS_MAGIC || type == SMB2_MAGIC || type == CIFS_MAGIC ||
	    type == CEPH_MAGIC;
}

/*
 * IMGPIPE_CLONE, for both copy policies: 0 turns sharing and the file
 * system's copy off; copy takes copy_file_range on any one file system
 * (tests).
 */
enum clone_env { CLONE_AUTO, CLONE_OFF, CLONE_ANY_COPY };

static enum clone_env clone_env(void)
{
	const char *env = getenv("IMGPIPE_CLONE");

	if (env != NULL && strcmp(env, "0") == 0)
		return CLONE_OFF;
	if (env != NULL && strcmp(env, "copy") == 0)
		return CLONE_ANY_COPY;
	return CLONE_AUTO;
}

/* File systems whose copy_file_range shares blocks (where reflink is on). */
static bool fs_shares_blocks(long type)
{
	return type == XFS_MAGIC || type == BTRFS_MAGIC ||
	    type == BCACHEFS_MAGIC;
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
 * the pair: copy_file_range on one file system that shares blocks or
 * copies itself (IMGPIPE_CLONE=copy: any one, for tests; 0: none), our
 * own copy anywhere else.  The kernel's no on the first call still falls
 * back to our copy.
 */
static enum zcopy_out zcopy_file_policy(int in, int out)
{
	enum clone_env env = clone_env();
	struct zpair p;

	if (env == CLONE_OFF)
		return ZCOPY_RW;
	if (!zpair_probe(in, out, &p))
		return ZCOPY_FILE;	/* its first call will tell */
	if (p.one_fs && env == CLONE_ANY_COPY)
		return ZCOPY_FILE;
	return fs_copies_itself(p.out_type) ||
	    (p.one_fs && fs_shares_blocks(p.out_type)) ? ZCOPY_FILE : ZCOPY_RW;
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

/*
 * The copy of one run of data, or of all of them into a file, shared by
 * the copiers: pieces are handed out under mu, and the first failure
 * stops them all.
 */
struct zcopy {
	struct source *s;
	int out;
	enum zcopy_out kind;
	struct direct_out dout;	/* out, for ZCOPY_RW */
	uint64_t at;		/* the output offset of input byte 0 */
	const char *name;
	pthread_mutex_t mu;
	uint64_t off, run_end;	/* the run being handed out: [off, run_end) */
	bool runs_left;		/* more runs after it */
	int err;		/* the first failure: an errno, ZCOPY_SHRANK */
	bool refused;		/* ... which was the kernel's no, first call */
	bool read_failed;	/* ... which was reading the input */
	uint64_t moved;
};

/*
 * Up to n bytes of in at *i to out at *o through the copier's buffer
 * (*buf, made at the first call), past the page cache while it is slow
 * (direct_out.h): what was read (0: the input ended), or -1 with errno
 * and *read_failed telling which side.  The bytes sit in the buffer as
 * far from a page boundary as *o is, as a direct write wants them.
 */
static ssize_t copy_through(int in, loff_t *i, struct direct_out *out,
    loff_t *o, size_t n, unsigned char **buf, bool *read_failed)
{
	unsigned char *at;
	ssize_t got;
	int err;

	if (*buf == NULL &&
	    (*buf = bigbuf_alloc(ZCOPY_BUF + DIRECT_ALIGN)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	at = *buf + (uint64_t)*o % DIRECT_ALIGN;
	got = pread(in, at, n < ZCOPY_BUF ? n : ZCOPY_BUF, *i);
	if (got < 0) {
		*read_failed = errno != EINTR;
		return -1;
	}
	err = got == 0 ? 0 : direct_out_write(out, at, (size_t)got,
	    (uint64_t)*o, direct_out_past(out));
	if (err != 0) {
		errno = err;
		return -1;
	}
	*i += got;
	*o += got;
	return got;
}

/* One call: up to n bytes from the input at in_off, to out at off. */
static ssize_t zcopy_call(struct zcopy *z, uint64_t in_off, uint64_t off,
    size_t n, unsigned char **buf, bool *read_failed)
{
	loff_t i = (loff_t)in_off, o = (loff_t)off;

	if (n > ZCOPY_CHUNK)
		n = ZCOPY_CHUNK;
	switch (z->kind) {
	case ZCOPY_FILE:
		return copy_file_range(z->s->fd, &i, z->out, &o, n, 0);
	case ZCOPY_RW:
		return copy_through(z->s->fd, &i, &z->dout, &o, n, buf,
		    read_failed);
	default:
		return splice(z->s->fd, &i, z->out, NULL, n, SPLICE_F_MOVE);
	}
}

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
 * an errno (for the kernel's no on the first call: z->refused; a failed
 * read: *read_failed), or ZCOPY_SHRANK.
 */
static int copy_piece(struct zcopy *z, uint64_t off, uint64_t end,
    bool first, unsigned char **buf, bool *read_failed)
{
	while (off < end) {
		ssize_t r = zcopy_call(z, z->s->base + off, z->at + off,
		    end - off, buf, read_failed);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && first && z->kind == ZCOPY_FILE &&
		    zcopy_refused(errno)) {
			z->kind = ZCOPY_RW;	/* before any other copier */
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
	unsigned char *buf = NULL;
	bool read_failed = false;
	uint64_t start, end;
	int e;

	for (;;) {
		pthread_mutex_lock(&z->mu);
		if (!next_piece(z, &start, &end)) {
			pthread_mutex_unlock(&z->mu);
			break;
		}
		pthread_mutex_unlock(&z->mu);
		e = copy_piece(z, start, end, false, &buf, &read_failed);
		if (e != 0) {
			pthread_mutex_lock(&z->mu);
			if (z->err == 0) {
				z->err = e;
				z->read_failed = read_failed;
			}
			pthread_mutex_unlock(&z->mu);
			break;
		}
	}
	bigbuf_free(buf);
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
	return z->read_failed ? fail_io(z->s->name, "read error") :
	    fail_io(z->name, "write error");
}

/*
 * Into a file: for copy_file_range the first piece alone (the kernel may
 * refuse this pair: then our own copy), then the rest on ZCOPY_THREADS
 * copiers.
 */
static int zcopy_into_file(struct zcopy *z)
{
	unsigned char *buf = NULL;
	pthread_t tid[ZCOPY_THREADS];
	uint64_t start, end;
	int i, n = 0;

	if (z->kind == ZCOPY_FILE && next_piece(z, &start, &end)) {
		z->err = copy_piece(z, start, end, true, &buf, &z->read_failed);
		bigbuf_free(buf);
		if (z->err != 0)
			return zcopy_failed(z);
	}
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
		z->err = copy_piece(z, start, end, first, NULL,
		    &z->read_failed);
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
	if (kind == ZCOPY_PIPE) {
		r = zcopy_into_pipe(&z);
	} else {
		direct_out_init(&z.dout, out);
		r = zcopy_into_file(&z);
		direct_out_free(&z.dout);
	}
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
	enum clone_env env = clone_env();
	struct zpair p;

	z->mode = ZCLONE_NONE;
	if (env == CLONE_OFF)
		return;
	if (!zpair_probe(in, out, &p) || !p.one_fs)
		return;
	z->block = p.block;
	if (env == CLONE_ANY_COPY)
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
