/*
 * A fixed set of threads running one function over a batch
 * (include/imgpipe/workers.h): the writer sink encodes its grains on it
 * (lib/stream/wsink.c), the readers' inflate pool decodes on it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/outfile.h"
#include "imgpipe/workers.h"

struct worker_arg {
	struct workers *w;
	int thread;
};

/* Called and returns with w->mu held. */
static void work_locked(struct workers *w, int thread)
{
	while (w->next < w->n) {
		size_t i = w->next++;

		pthread_mutex_unlock(&w->mu);
		w->fn(w->arg, thread, i);
		pthread_mutex_lock(&w->mu);
		if (++w->finished == w->n)
			pthread_cond_signal(&w->done);
	}
}

/* Called and returns with w->mu held: workers_run_each's own item. */
static void work_own_locked(struct workers *w, int thread)
{
	pthread_mutex_unlock(&w->mu);
	w->fn(w->arg, thread, (size_t)thread);
	pthread_mutex_lock(&w->mu);
	if (++w->finished == w->n)
		pthread_cond_signal(&w->done);
}

static void *worker_main(void *arg)
{
	struct worker_arg *a = arg;
	struct workers *w = a->w;
	int thread = a->thread;
	unsigned long seen = 0;

	free(a);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && w->gen == seen)
			pthread_cond_wait(&w->go, &w->mu);
		if (w->quit)
			break;
		seen = w->gen;
		if (w->each)
			work_own_locked(w, thread);
		else
			work_locked(w, thread);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int workers_online(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int workers_start(struct workers *w, int threads)
{
	struct worker_arg *a;
	int i;

	memset(w, 0, sizeof *w);
	w->nthreads = threads < 1 ? 1 : threads;
	w->tid = calloc(w->nthreads, sizeof *w->tid);
	if (w->tid == NULL)
		return fail(EXIT_IO, "out of memory");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->go, NULL);
	pthread_cond_init(&w->done, NULL);
	w->ready = true;
	for (i = 0; i < w->nthreads - 1; i++) {
		a = malloc(sizeof *a);
		if (a == NULL)
			break;
		*a = (struct worker_arg){ w, i };
		if (start_thread(&w->tid[i], worker_main, a) != 0) {
			free(a);
			break;
		}
	}
	w->nstarted = i;
	return 0;
}

void workers_run(struct workers *w, size_t n, workers_fn *fn, void *arg)
{
	if (n == 0)
		return;
	if (w->nstarted == 0) {		/* no thread to wake */
		for (size_t i = 0; i < n; i++)
			fn(arg, w->nthreads - 1, i);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->n = n;
	w->next = 0;
	w->finished = 0;
	w->gen++;
	pthread_cond_broadcast(&w->go);
	work_locked(w, w->nthreads - 1);
	while (w->finished < w->n)
		pthread_cond_wait(&w->done, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void workers_run_each(struct workers *w, workers_fn *fn, void *arg)
{
	int t;

	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->n = w->nthreads;
	w->finished = 0;
	w->each = true;
	w->gen++;
	pthread_cond_broadcast(&w->go);
	/* the caller's item, and those of threads that did not start */
	for (t = w->nstarted; t < w->nthreads; t++)
		work_own_locked(w, t);
	while (w->finished < w->n)
		pthread_cond_wait(&w->done, &w->mu);
	w->each = false;
	pthread_mutex_unlock(&w->mu);
}

void workers_stop(struct workers *w)
{
	if (w->ready) {
		pthread_mutex_lock(&w->mu);
		w->quit = true;
		pthread_cond_broadcast(&w->go);
		pthread_mutex_unlock(&w->mu);
		for (int i = 0; i < w->nstarted; i++)
			pthread_join(w->tid[i], NULL);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->go);
		pthread_cond_destroy(&w->done);
	}
	free(w->tid);
	memset(w, 0, sizeof *w);
}
