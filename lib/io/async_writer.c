/*
 * One producer (the reader's thread), one consumer (the writer thread),
 * a ring of WRITER_SLOTS buffers.  The writer thread never calls fail():
 * it keeps errno for the caller, who reports it with the file name.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/outfile.h"
#include "imgpipe/async_writer.h"

#define WRITER_SLOTS 4
#define WRITER_SLOT_SIZE (4u << 20)

struct slot {
	unsigned char *buf;
	size_t len;
	uint64_t off;
};

struct async_writer {
	int fd;
	const char *name;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t filled, freed;
	struct slot slots[WRITER_SLOTS];
	unsigned head, count;	/* ring: next to write, how many queued */
	struct slot *fill;	/* the slot after the queued ones, ours */
	bool done;		/* no more writes will be queued */
	int error;		/* errno of the first failed write, or 0 */
};

static int write_slot(int fd, const struct slot *s)
{
	size_t done = 0;
	ssize_t n;

	while (done < s->len) {
		n = pwrite(fd, s->buf + done, s->len - done, s->off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		done += n;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct async_writer *w = arg;
	struct slot *s;
	int err;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->count == 0 && !w->done)
			pthread_cond_wait(&w->filled, &w->mu);
		if (w->count == 0)
			break;
		s = &w->slots[w->head];
		pthread_mutex_unlock(&w->mu);
		err = w->error ? 0 : write_slot(w->fd, s);
		pthread_mutex_lock(&w->mu);
		if (err && !w->error)
			w->error = err;
		w->head = (w->head + 1) % WRITER_SLOTS;
		w->count--;
		pthread_cond_signal(&w->freed);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void writer_free(struct async_writer *w)
{
	unsigned i;

	for (i = 0; i < WRITER_SLOTS; i++)
		free(w->slots[i].buf);
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
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->filled, NULL);
	pthread_cond_init(&w->freed, NULL);
	for (i = 0; i < WRITER_SLOTS; i++)
		if ((w->slots[i].buf = malloc(WRITER_SLOT_SIZE)) == NULL)
			break;
	if (i < WRITER_SLOTS ||
	    start_thread(&w->thread, writer_main, w) != 0) {
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
	s->len = 0;
	s->off = off;
	w->fill = s;
	return s;
}

/*
 * Contiguous writes are gathered into one slot: a raw copy arrives in
 * extents of a few hundred KiB, and a hand-off per extent costs more in
 * wake-ups than the copy (measured: imgsparse, 8800 futex calls).
 */
int async_pwrite(struct async_writer *w, const void *buf, size_t len,
    uint64_t off)
{
	struct slot *s;
	size_t n;

	while (len > 0) {
		s = w->fill;
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

int async_writer_finish(struct async_writer *w)
{
	const char *name = w->name;
	int err;

	submit_filling(w);
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->filled);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	err = w->error;
	writer_free(w);
	if (err) {
		errno = err;
		return fail_io(name, "write error");
	}
	return 0;
}
