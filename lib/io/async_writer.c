/*
 * One producer (the reader's thread), a few consumers, a ring of slots.
 * Writer threads take queued slots in order and may finish them out of
 * order; a slot is free again once it and every slot before it are
 * written.  A slot may hold pieces of an input file that its writer
 * thread reads in itself (async_defer): then reading the input and
 * writing the output run on every thread, as qemu-img convert's requests
 * do, and the reader's thread only walks the tables.  Writer threads
 * never call fail(): the first error is kept for the caller, who
 * reports it in the words of the code it stands in for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bigbuf.h"
#include "imgpipe/direct_out.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/outfile.h"
#include "imgpipe/async_writer.h"
#include "imgpipe/zero.h"

/*
 * Threads that write (and read deferred pieces): a disk gets the next
 * direct write while one completes, and the kernel's copies (out of the
 * input's page cache, into tmpfs) run on every core.  More threads than
 * cores, as qemu-img convert's pool has: on a busy machine each runnable
 * thread is one more turn at a processor.
 */
#define WRITER_THREADS_DEFAULT 8
/*
 * Writes through the page cache (tmpfs; IMGPIPE_DIRECT=0): each takes the
 * file's inode lock, so writers past two only spin on it.  img2raw of the
 * 4 GiB qcow2 to tmpfs: 15% of its samples in rwsem_spin_on_owner with 8
 * threads; alternating rounds, medians 0.47 s with 8 against 0.43 s with 2
 * (10 rounds; 0.48 against 0.39 in 12 more; qemu-img 0.51).  As the
 * writers' in-place disk (PLACE_THREADS in lib/jobs/write.c).
 */
#define WRITER_THREADS_BUFFERED 2
#define WRITER_THREADS_MAX 16
/*
 * Slots: one a thread, one being filled, one queued; never fewer than
 * with the default threads, for an inflating reader's bursts (a stream
 * VMDK to tmpfs, medians of 8: 1.34 s with 2 threads and 4 slots, 1.25 s
 * with 6 slots, 1.18 s with 10, 1.25 s with 8 threads and 10 slots).
 */
#define WRITER_SPARE_SLOTS 2
/*
 * Small: every page of ours is one more the processor's caches and, on a
 * virtual machine, the host have to find (measured: 4 MiB slots took
 * 0.3 s more processor time with 8 threads than 1 MiB ones, 1.3 GB of
 * data).
 */
#define WRITER_SLOT_SIZE (1u << 20)
/* Input pieces a slot holds at most (clusters from all over a file). */
#define WRITER_PIECES 256
/* async_lend() starts a new slot rather than lend less than this. */
#define WRITER_LEND_MIN (256u << 10)

/* Bytes of a slot its writer thread reads in from an input file. */
struct piece {
	int fd;
	uint64_t in_off;	/* where in fd */
	size_t at, len;		/* where in the slot */
	const char *label;	/* for a message: the format, and ... */
	uint64_t img_off;	/* ... where the bytes are in the image */
};

struct slot {
	unsigned char *mem;	/* DIRECT_ALIGN-aligned */
	unsigned char *buf;	/* mem + off % DIRECT_ALIGN: the data */
	size_t len;
	uint64_t off;
	struct piece *pieces;	/* WRITER_PIECES of them */
	unsigned npieces;
	bool written;		/* by a writer thread; freed in ring order */
};

/* A deferred read that failed: reported as source_read_at() would. */
struct read_failure {
	int err;		/* errno, or 0: the file ended first */
	const char *label;
	uint64_t img_off;
};

struct async_writer {
	struct direct_out out;	/* the output, past the cache when slow */
	const char *name;
	uint64_t fresh_from;	/* the file reads as zeros from here on */
	pthread_t threads[WRITER_THREADS_MAX];
	unsigned nthreads;
	pthread_mutex_t mu;
	pthread_cond_t filled, freed;
	struct slot *slots;
	unsigned nslots;
	unsigned char *mem;	/* every slot's, one mapping */
	/* ring: the oldest unfreed, how many unfreed, how many of them taken */
	unsigned head, count, taken;
	struct slot *fill;	/* the slot after the queued ones, ours */
	bool done;		/* no more writes will be queued */
	int error;		/* errno of the first failure, or 0 */
	bool read_failed;	/* ... which was a read: see failure */
	struct read_failure failure;
	uint64_t *zeros_out;	/* deferred bytes left out as zeros, or NULL */
};

/* pread in full; 0, an errno, or -1: the file ended first. */
static int read_full(int fd, unsigned char *buf, size_t len, uint64_t off)
{
	ssize_t n = fd_pread_full(fd, buf, len, off);

	if (n < 0)
		return errno;
	return (size_t)n < len ? -1 : 0;
}

/*
 * What the emitter would have given the sink had the reader read the
 * bytes itself: whole zero blocks (EMIT_ZERO_BLOCK, on virtual offsets)
 * where the file reads as zeros already are left out, the rest written.
 */
static int write_data_runs(struct async_writer *w, const unsigned char *buf,
    size_t len, uint64_t at, bool direct, uint64_t *left_out)
{
	size_t pos = 0, run = 0, n;
	uint64_t off;
	int err;

	while (pos + run < len) {
		off = at + pos + run;
		n = EMIT_ZERO_BLOCK - off % EMIT_ZERO_BLOCK;
		if (n > len - pos - run)
			n = len - pos - run;
		if (off < w->fresh_from || !is_zero(buf + pos + run, n)) {
			run += n;
			continue;
		}
		if (run > 0 && (err = direct_out_write(&w->out, buf + pos,
		    run, at + pos, direct)) != 0)
			return err;
		*left_out += n;
		pos += run + n;
		run = 0;
	}
	return run > 0 ? direct_out_write(&w->out, buf + pos, run, at + pos,
	    direct) : 0;
}

/* Keep the first failure: a read's is said as the reader would have. */
static void read_failed(struct async_writer *w, int err,
    const struct piece *p)
{
	pthread_mutex_lock(&w->mu);
	if (!w->error) {
		w->error = err > 0 ? err : EIO;
		w->read_failed = true;
		w->failure = (struct read_failure){ err > 0 ? err : 0,
		    p->label, p->img_off };
	}
	pthread_mutex_unlock(&w->mu);
}

/* Read a piece into its place, then write it as the emitter would. */
static int write_piece(struct async_writer *w, const struct slot *s,
    const struct piece *p, bool direct)
{
	int err = read_full(p->fd, s->buf + p->at, p->len, p->in_off);
	uint64_t left_out = 0;

	if (err != 0) {
		read_failed(w, err, p);
		return 0;
	}
	err = write_data_runs(w, s->buf + p->at, p->len, s->off + p->at,
	    direct, &left_out);
	if (left_out > 0 && w->zeros_out != NULL) {
		pthread_mutex_lock(&w->mu);
		*w->zeros_out += left_out;
		pthread_mutex_unlock(&w->mu);
	}
	return err;
}

/* Write the slot, reading its pieces in first: 0 or an errno. */
static int write_slot(struct async_writer *w, const struct slot *s,
    bool direct)
{
	const struct piece *p;
	uint64_t ignored = 0;	/* queued bytes: the emitter's count */
	size_t pos = 0;
	int err = 0;

	if (s->npieces == 0)
		return direct_out_write(&w->out, s->buf, s->len, s->off,
		    direct);
	for (p = s->pieces; p < s->pieces + s->npieces && !err; p++) {
		if (p->at > pos)
			err = write_data_runs(w, s->buf + pos, p->at - pos,
			    s->off + pos, direct, &ignored);
		if (!err)
			err = write_piece(w, s, p, direct);
		pos = p->at + p->len;
	}
	if (!err && pos < s->len)
		err = write_data_runs(w, s->buf + pos, s->len - pos,
		    s->off + pos, direct, &ignored);
	return err;
}

/* Free the written slots at the head of the ring, in order. */
static void free_written(struct async_writer *w)
{
	while (w->count > 0 && w->slots[w->head].written) {
		w->slots[w->head].written = false;
		w->head = (w->head + 1) % w->nslots;
		w->count--;
		w->taken--;
	}
}

static void *writer_main(void *arg)
{
	struct async_writer *w = arg;
	struct slot *s;
	bool skip, direct;
	int err;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->taken == w->count && !w->done)
			pthread_cond_wait(&w->filled, &w->mu);
		if (w->taken == w->count)
			break;
		s = &w->slots[(w->head + w->taken) % w->nslots];
		w->taken++;
		skip = w->error != 0;
		direct = direct_out_past(&w->out);
		pthread_mutex_unlock(&w->mu);
		err = skip ? 0 : write_slot(w, s, direct);
		pthread_mutex_lock(&w->mu);
		if (err && !w->error)
			w->error = err;
		s->written = true;
		free_written(w);
		pthread_cond_signal(&w->freed);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void writer_free(struct async_writer *w)
{
	unsigned i;

	for (i = 0; w->slots != NULL && i < w->nslots; i++)
		free(w->slots[i].pieces);
	bigbuf_free(w->mem);
	free(w->slots);
	direct_out_free(&w->out);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->filled);
	pthread_cond_destroy(&w->freed);
	free(w);
}

/* The slots' memory and piece lists: false when out of memory. */
static bool slots_alloc(struct async_writer *w, unsigned n)
{
	size_t each = WRITER_SLOT_SIZE + DIRECT_ALIGN;

	w->slots = calloc(n, sizeof *w->slots);
	if (w->slots == NULL)
		return false;
	w->nslots = n;
	w->mem = bigbuf_alloc((size_t)n * each);
	if (w->mem == NULL)
		return false;
	for (unsigned i = 0; i < n; i++) {
		w->slots[i].mem = w->mem + i * each;
		w->slots[i].pieces = malloc(WRITER_PIECES *
		    sizeof *w->slots[i].pieces);
		if (w->slots[i].pieces == NULL)
			return false;
	}
	return true;
}

struct async_writer *async_writer_start(int fd, const char *name,
    int threads, uint64_t fresh_from)
{
	struct async_writer *w = calloc(1, sizeof *w);
	unsigned slots;

	if (w == NULL) {
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	w->name = name;
	w->fresh_from = fresh_from;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->filled, NULL);
	pthread_cond_init(&w->freed, NULL);
	direct_out_init(&w->out, fd);
	if (threads < 1)
		threads = w->out.direct_fd >= 0 ? WRITER_THREADS_DEFAULT :
		    WRITER_THREADS_BUFFERED;
	if (threads > WRITER_THREADS_MAX)
		threads = WRITER_THREADS_MAX;
	slots = (threads > WRITER_THREADS_DEFAULT ? threads :
	    WRITER_THREADS_DEFAULT) + WRITER_SPARE_SLOTS;
	if (slots_alloc(w, slots))
		while (w->nthreads < (unsigned)threads && start_thread(
		    &w->threads[w->nthreads], writer_main, w) == 0)
			w->nthreads++;
	if (w->nthreads == 0) {
		writer_free(w);
		fail(EXIT_IO, "cannot start the writer thread");
		return NULL;
	}
	return w;
}

void async_count_zeros(struct async_writer *w, uint64_t *sum)
{
	pthread_mutex_lock(&w->mu);
	w->zeros_out = sum;
	pthread_mutex_unlock(&w->mu);
}

/* Hand the slot being filled to the writer thread. */
static void submit_filling(struct async_writer *w)
{
	if (w->fill == NULL)
		return;
	w->fill = NULL;
	pthread_mutex_lock(&w->mu);
	w->count++;
	pthread_cond_signal(&w->filled);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Record the first failure (with w->mu held; err is w->error): a write in
 * the output's words, a deferred read in source_read_at()'s, as if the
 * reader had read the bytes itself.  It is recorded when the reader's
 * thread next comes here, so an error the reader finds meanwhile, later
 * in the image, is the one reported: reads fail only when the input file
 * changes or its device fails, never for what the image holds.
 */
static int report_failure(struct async_writer *w, int err)
{
	const struct read_failure *f = &w->failure;

	errno = err;
	if (!w->read_failed)
		return fail_io(w->name, "write error");
	if (f->err != 0)
		return fail_errno(EXIT_IO, "read error");
	return fail_code(EXIT_REJECT, FINDING_TRUNCATED, "%s: data at 0x%llx: "
	    "image is truncated", f->label, (unsigned long long)f->img_off);
}

/* Wait for a free slot and make it the one being filled, at off. */
static struct slot *take_slot(struct async_writer *w, uint64_t off)
{
	struct slot *s;

	pthread_mutex_lock(&w->mu);
	while (w->count == w->nslots - 1 && !w->error)
		pthread_cond_wait(&w->freed, &w->mu);
	if (w->error) {
		report_failure(w, w->error);
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	s = &w->slots[(w->head + w->count) % w->nslots];
	pthread_mutex_unlock(&w->mu);
	/* The slot is ours until count says otherwise. */
	s->buf = s->mem + off % DIRECT_ALIGN;
	s->len = 0;
	s->off = off;
	s->npieces = 0;
	w->fill = s;
	return s;
}

/*
 * Contiguous writes are gathered into one slot: a raw copy arrives in
 * extents of a few hundred KiB, and a hand-off per extent costs more in
 * wake-ups than the copy (measured: imgsparse, 8800 futex calls).
 * Bytes the caller read into the room async_lend() gave are in place
 * already: nothing is copied.
 */
int async_pwrite(struct async_writer *w, const void *buf, size_t len,
    uint64_t off)
{
	struct slot *s;
	size_t n;

	while (len > 0) {
		s = w->fill;
		if (s != NULL && off == s->off + s->len &&
		    buf == s->buf + s->len && len <= WRITER_SLOT_SIZE - s->len) {
			s->len += len;
			return 0;
		}
		if (s != NULL && (off != s->off + s->len ||
		    s->len == WRITER_SLOT_SIZE))
			submit_filling(w);
		if (w->fill == NULL && (s = take_slot(w, off)) == NULL)
			return -1;
		n = WRITER_SLOT_SIZE - s->len;
		if (n > len)
			n = len;
		memcpy(s->buf + s->len, buf, n);
		s->len += n;
		buf = (const char *)buf + n;
		off += n;
		len -= n;
	}
	return 0;
}

unsigned char *async_lend(struct async_writer *w, uint64_t off, size_t *len)
{
	struct slot *s = w->fill;
	size_t room = s != NULL ? WRITER_SLOT_SIZE - s->len : 0;

	/* A new slot rather than a sliver of this one: fewer, larger reads. */
	if (s != NULL && (off != s->off + s->len ||
	    (room < *len && room < WRITER_LEND_MIN)))
		submit_filling(w);
	if (w->fill == NULL) {
		if ((s = take_slot(w, off)) == NULL)
			return NULL;
		room = WRITER_SLOT_SIZE;
	}
	if (*len > room)
		*len = room;
	return s->buf + s->len;
}

int async_defer(struct async_writer *w, int fd, uint64_t in_off,
    uint64_t off, size_t *len, const char *label, uint64_t img_off)
{
	struct slot *s;
	unsigned char *p = async_lend(w, off, len);

	if (p == NULL)
		return -1;
	s = w->fill;
	s->pieces[s->npieces++] = (struct piece){ fd, in_off,
	    (size_t)(p - s->buf), *len, label, img_off };
	s->len += *len;
	if (s->npieces == WRITER_PIECES || s->len == WRITER_SLOT_SIZE)
		submit_filling(w);
	return 0;
}

int async_writer_finish(struct async_writer *w)
{
	unsigned i;
	int err;

	submit_filling(w);
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_broadcast(&w->filled);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	err = w->error;
	if (err)
		report_failure(w, err);
	writer_free(w);
	return err ? -1 : 0;
}
