/*
 * When a file output on a disk leaves the page cache.  Its writes go
 * through the page cache while the page cache takes them fast; once a
 * window of them lands slower than CACHE_GAUGE_MIN_RATE, they go past it
 * (O_DIRECT, or written behind: the caller's way) for a while, then try
 * it again.  The writes may come from several threads at once.
 */
#ifndef IMGPIPE_CACHE_GAUGE_H
#define IMGPIPE_CACHE_GAUGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_gauge {
	bool measuring;		/* through the cache, timed */
	atomic_bool past;	/* past the cache from now on */
	pthread_mutex_t mu;
	unsigned in_flight;	/* timed writes under way */
	uint64_t mark_ns;	/* the last start or end of one */
	uint64_t busy_ns;	/* this window: time with one under way */
	uint64_t bytes;		/* ... and the bytes they wrote */
	uint64_t past_bytes;	/* written past the cache since it was left */
	unsigned back_off;	/* windows of those before trying it again */
};

/*
 * For a regular file fd: tmpfs and ramfs (their pages are the file) and
 * IMGPIPE_DIRECT=0 stay in the cache, IMGPIPE_DIRECT=1 goes past it from
 * the first byte, anything else is measured.
 */
void cache_gauge_init(struct cache_gauge *g, int fd);
void cache_gauge_free(struct cache_gauge *g);
/* Whether writes go past the cache now. */
bool cache_gauge_past(struct cache_gauge *g);
/*
 * Around every write of len bytes while measured, through the cache or
 * past it (any thread): the first are timed, the second counted.
 */
void cache_gauge_begin(struct cache_gauge *g);
void cache_gauge_end(struct cache_gauge *g, size_t len);

#endif
