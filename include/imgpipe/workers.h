/*
 * A fixed set of threads that run one function over the items of a
 * batch (lib/core/workers.c): workers_run() hands out item indexes to
 * every worker and to the caller, who works too, and returns when all
 * are done.  Each thread has an index of its own (0 to nthreads - 1; the
 * caller's is the last), so a job keeps per-thread state (a decoder) in
 * an array.  A thread that cannot be started leaves fewer workers:
 * slower, still correct.
 */
#ifndef IMGPIPE_WORKERS_H
#define IMGPIPE_WORKERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef void workers_fn(void *arg, int thread, size_t item);

struct workers {
	int nthreads;		/* the caller included; >= 1 */
	int nstarted;		/* worker threads running */
	pthread_t *tid;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	workers_fn *fn;
	void *arg;
	size_t n, next, finished;
	bool each;		/* workers_run_each: item t on thread t */
	unsigned long gen;
	bool quit, ready;
};

/* The processors online, capped at 256: the default thread count. */
int workers_online(void);
/* threads: the caller included, >= 1.  0 or -1 with an error recorded. */
int workers_start(struct workers *w, int threads);
/* fn(arg, thread, i) for every i < n, on every thread; then return. */
void workers_run(struct workers *w, size_t n, workers_fn *fn, void *arg);
/*
 * fn(arg, t, t) for every thread index t, each on its own thread (where
 * a thread could not start, on the caller's); then return.  For work
 * that must run on several processors, not only get done.
 */
void workers_run_each(struct workers *w, workers_fn *fn, void *arg);
void workers_stop(struct workers *w);

#endif
