/*
 * One producer (the reader's thread), WRITER_THREADS consumers, a ring of
 * WRITER_SLOTS buffers.  Writer threads take queued slots in order and
 * may finish them out of order; a slot is free again once it and every
 * slot before it are written.  They never call fail(): the first errno
 * is kept for the caller, who reports it with the file name.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/outfile.h"
#include "imgpipe/async_writer.h"

#define WRITER_SLOTS 4
/*
 * Two writes in flight: a disk gets the next direct write while one
 * completes, and on a busy machine the copy into tmpfs, the larger
 * part of the work there, is not one thread's turn at the processor.
 */
#define WRITER_THREADS 2
#define WRITER_SLOT_SIZE (4u << 20)
/* async_lend() starts a new slot rather than lend less than this. */
#define WRITER_LEND_MIN (256u << 10)
/* Direct writes: offsets, lengths and buffers on page boundaries. */
#define DIRECT_ALIGN 4096u
#define TMPFS_MAGIC_NUMBER 0x01021994

struct slot {
	unsigned char *mem;	/* DIRECT_ALIGN-aligned */
	unsigned char *buf;	/* mem + off % DIRECT_ALIGN: the data */
	size_t len;
	uint64_t off;
	bool written;		/* by a writer thread; freed in ring order */
};

struct async_writer {
	int fd;
	int direct_fd;		/* the same file opened O_DIRECT, or -1 */
	const char *name;
	bool direct_refused;	/* direct writes failed with EINVAL */
	pthread_t threads[WRITER_THREADS];
	unsigned nthreads;
	pthread_mutex_t mu;
	pthread_cond_t filled, freed;
	struct slot slots[WRITER_SLOTS];
	/* ring: the oldest unfreed, how many unfreed, how many of them taken */
	unsigned head, count, taken;
	struct slot *fill;	/* the slot after the queued ones, ours */
	bool done;		/* no more writes will be queued */
	int error;		/* errno of the first failed write, or 0 */
};

static int write_range(int fd, const unsigned char *buf, size_t len,
    uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		done += n;
	}
	return 0;
}

/*
 * The whole pages of a slot go past the page cache (O_DIRECT), its ragged
 * edges through it.  Why: on a virtual machine every page the page cache
 * takes for new data may be memory the host has to fault in first, and
 * that cost, not the copy, was most of img2raw's time (perf: 73% in
 * copy_folio_from_iter_atomic against 6% for reading as many cached
 * bytes), and it swings with what the host is doing.  A direct write
 * costs no new memory, and leaves no dirty pages for the next program
 * to be throttled by.  A file system that refuses it gets the rest
 * buffered.
 */
static int write_slot(struct async_writer *w, const struct slot *s,
    bool direct)
{
	uint64_t end = s->off + s->len;
	uint64_t a = (s->off + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
	uint64_t b = end / DIRECT_ALIGN * DIRECT_ALIGN;
	int err;

	if (!direct || b <= a)
		return write_range(w->fd, s->buf, s->len, s->off);
	err = write_range(w->direct_fd, s->buf + (a - s->off), b - a, a);
	if (err == EINVAL) {	/* not for this file after all */
		pthread_mutex_lock(&w->mu);
		w->direct_refused = true;
		pthread_mutex_unlock(&w->mu);
		return write_range(w->fd, s->buf, s->len, s->off);
	}
	if (err == 0 && a > s->off)
		err = write_range(w->fd, s->buf, a - s->off, s->off);
	if (err == 0 && end > b)
		err = write_range(w->fd, s->buf + (b - s->off), end - b, b);
	return err;
}

/*
 * The output again, opened O_DIRECT (its own open file description: the
 * caller's flags stay as they are), or -1: not a regular file, tmpfs
 * (its pages are the file: nothing to bypass), or IMGPIPE_DIRECT=0.
 */
static int open_direct(int fd)
{
	struct statfs sfs;
	struct stat st;
	const char *env = getenv("IMGPIPE_DIRECT");
	char proc[64];

	if (env != NULL && strcmp(env, "0") == 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    fstatfs(fd, &sfs) < 0 || sfs.f_type == TMPFS_MAGIC_NUMBER)
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	return open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

/* Free the written slots at the head of the ring, in order. */
static void free_written(struct async_writer *w)
{
	while (w->count > 0 && w->slots[w->head].written) {
		w->slots[w->head].written = false;
		w->head = (w->head + 1) % WRITER_SLOTS;
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
		s = &w->slots[(w->head + w->taken) % WRITER_SLOTS];
		w->taken++;
		skip = w->error != 0;
		direct = w->direct_fd >= 0 && !w->direct_refused;
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

	for (i = 0; i < WRITER_SLOTS; i++)
		free(w->slots[i].mem);
	if (w->direct_fd >= 0)
		close(w->direct_fd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->filled);
	pthread_cond_destroy(&w->freed);
	free(w);
}

struct async_writer *async_writer_start(int fd, const char *name)
{
	struct async_writer *w = calloc(1, sizeof *w);
	unsigned i;

	if (w == NULL) {
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	w->fd = fd;
	w->name = name;
	w->direct_fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->filled, NULL);
	pthread_cond_init(&w->freed, NULL);
	for (i = 0; i < WRITER_SLOTS; i++)
		if (posix_memalign((void **)&w->slots[i].mem, DIRECT_ALIGN,
		    WRITER_SLOT_SIZE + DIRECT_ALIGN) != 0)
			break;
	w->direct_fd = open_direct(fd);
	if (i == WRITER_SLOTS)
		while (w->nthreads < WRITER_THREADS && start_thread(
		    &w->threads[w->nthreads], writer_main, w) == 0)
			w->nthreads++;
	if (w->nthreads == 0) {
		writer_free(w);
		fail(EXIT_IO, "cannot start the writer thread");
		return NULL;
	}
	return w;
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

/* Wait for a free slot and make it the one being filled, at off. */
static struct slot *take_slot(struct async_writer *w, uint64_t off)
{
	struct slot *s;

	pthread_mutex_lock(&w->mu);
	while (w->count == WRITER_SLOTS - 1 && !w->error)
		pthread_cond_wait(&w->freed, &w->mu);
	if (w->error) {
		errno = w->error;
		pthread_mutex_unlock(&w->mu);
		fail_io(w->name, "write error");
		return NULL;
	}
	s = &w->slots[(w->head + w->count) % WRITER_SLOTS];
	pthread_mutex_unlock(&w->mu);
	/* The slot is ours until count says otherwise. */
	s->buf = s->mem + off % DIRECT_ALIGN;
	s->len = 0;
	s->off = off;
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

int async_writer_finish(struct async_writer *w)
{
	const char *name = w->name;
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
	writer_free(w);
	if (err) {
		errno = err;
		return fail_io(name, "write error");
	}
	return 0;
}
