/*
 * The writer sink (lib/stream/wsink.c): an in-order sink that cuts the
 * virtual disk into grains, leaves zero grains out, encodes the others on
 * a pool of threads and hands them, in order, on a thread of their own,
 * to what the pass does with them.
 */
#ifndef IMGPIPE_STREAM_WSINK_H
#define IMGPIPE_STREAM_WSINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "imgpipe/sink.h"
#include "imgpipe/stash.h"
#include "imgpipe/writer.h"

enum wpass {
	WPASS_WRITE,	/* plan each grain and put it */
	WPASS_PLAN,	/* plan each grain only (pass 1 of two) */
	WPASS_PARK,	/* plan each grain and park it in the store */
	WPASS_CHECK,	/* pass 2: each grain must be as planned; put it */
};

struct wbatch;
struct wpool;

/* What the disk may hold: data at or beyond limit is refused. */
struct wlimit {
	uint64_t limit;
	bool given;		/* the limit is --size, not the format's */
	const char *input_name;
};

struct wsink {
	struct sink base;
	struct wimage *w;
	enum wpass pass;
	bool encode;		/* the format encodes grains in this pass */
	struct wlimit lim;
	/* the grain being assembled */
	uint64_t gidx;
	uint32_t gfill;
	unsigned char *gslot;	/* its slot once it has data, else NULL */
	struct wbatch *bufs;	/* two: one filled while the other is put */
	struct wbatch *b;
	int cur;
	struct wpool *pool;
	/* the consumer thread */
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wbatch *full, *holding;
	bool done, failed, started;
	struct wplan_iter check;	/* WPASS_CHECK: the plan so far */
	struct stash_ref *parked;	/* WPASS_PARK: the grains, in order */
	size_t nparked, capparked;
	uint64_t data_grains;		/* statistics */
};

/*
 * threads: encoding threads including the caller's (>= 1).  limit: the
 * largest virtual size accepted (data beyond it fails the sink), given by
 * the user (--size) or by the format.
 */
int wsink_init(struct wsink *ws, struct wimage *w, enum wpass pass,
    int threads, uint64_t limit, bool limit_given, const char *input_name);
/* Stop the threads, free the buffers and any grain still parked. */
void wsink_free(struct wsink *ws);
/* After a WPASS_PARK pass: put every parked grain (and the gaps). */
int wsink_replay_parked(struct wsink *ws);

/*
 * The disk in place (WRITER_DATA_IN_PLACE): the raw sink, shifted to
 * w->data_at, into the writer's output, between begin and finish.  A
 * file gets holes and positioned writes on threads of their own (and
 * the raw sink's lent slots, deferred reads and clones), a stream the
 * bytes in order (spliced into a pipe where the input allows); the size
 * and the limit as the writer sink.
 */
struct wplace {
	struct sink base;
	struct wimage *w;
	struct raw_sink raw;
	struct wlimit lim;
	uint64_t data_bytes;	/* statistics, once closed */
	uint64_t deferred_zeros;	/* ... less these, read on threads */
};

int wplace_init(struct wplace *wp, struct wimage *w, int threads,
    uint64_t limit, bool limit_given, const char *input_name);
/* On every path: waits for the writes queued. */
void wplace_close(struct wplace *wp);

/* The grains a disk of w->virtual_size bytes has. */
uint64_t wimage_ngrains(const struct wimage *w);

#endif
