/*
 * One producer (the reader's thread), one consumer (the writer thread),
 * a ring of WRITER_SLOTS buffers.  The writer thread never calls fail():
 * the error record is not thread-safe, so it keeps errno for finish.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/writer.h"

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
	    pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		writer_free(w);
		fail(EXIT_IO, "cannot start the writer thread");
		return NULL;
	}
	return w;
}

int async_pwrite(struct async_writer *w, const void *buf, size_t len,
    uint64_t off)
{
	struct slot *s;
	size_t n;

	while (len > 0) {
		n = len < WRITER_SLOT_SIZE ? len : WRITER_SLOT_SIZE;
		pthread_mutex_lock(&w->mu);
		while (w->count == WRITER_SLOTS && !w->error)
			pthread_cond_wait(&w->freed, &w->mu);
		if (w->error) {
			errno = w->error;
			pthread_mutex_unlock(&w->mu);
			return fail_errno(EXIT_IO, "write error on %s",
			    w->name);
		}
		s = &w->slots[(w->head + w->count) % WRITER_SLOTS];
		pthread_mutex_unlock(&w->mu);
		/* The slot is ours until count says otherwise. */
		memcpy(s->buf, buf, n);
		s->len = n;
		s->off = off;
		pthread_mutex_lock(&w->mu);
		w->count++;
		pthread_cond_signal(&w->filled);
		pthread_mutex_unlock(&w->mu);
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

	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->filled);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	err = w->error;
	writer_free(w);
	if (err) {
		errno = err;
		return fail_errno(EXIT_IO, "write error on %s", name);
	}
	return 0;
}
