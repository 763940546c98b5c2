/*
 * Whether the page cache or the disk takes a file output's writes faster.
 *
 * Through the page cache, a write costs a copy into new pages, and
 * nothing waits for the disk (qemu-img convert's and cp's way).  On this
 * project's virtual machines a new page can cost far more: memory left
 * free goes back to the host, and the first touch of such a page is a
 * host fault.  1 MiB writes of 1.3 GB into a new ext4 file, 128 MiB at a
 * time, ran at 4.6-5.5 GB/s while the pages were backed and 0.35-0.39
 * GB/s once they were not, in the same run (2026-12-03); dd oflag=direct
 * writes the disk at 1.5 GB/s.  Which one a run meets depends on what
 * freed memory shortly before: replacing an output frees its pages, a
 * conversion started after a few idle seconds finds none.  So the writes
 * are timed, and when a window of them lands slower than the disk would
 * take them, the writes go past the cache.  Slow pages may be a passing
 * state: replacing an output on ext4 gave 160 MiB of slow writes, then
 * fast ones again (the old file's blocks had just been freed, 0.3 s of
 * it).  So after 16 windows (512 MiB) past the cache it is tried again,
 * and after 32, 64, ... if it was slow again: a lasting slow state costs
 * a slow window at each try, a passing one at most 512 MiB written past
 * the cache.  Tried after 4 windows instead, a lasting state (8 idle
 * seconds before the run) cost img2raw 0.75-2.88 s against 0.48-0.78 s.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imgpipe/cache_gauge.h"
#include "imgpipe/fdio.h"

/* Bytes a window: 6 ms of writes at full speed. */
#define CACHE_GAUGE_WINDOW (32u << 20)
/* Windows past the cache before it is first tried again. */
#define CACHE_GAUGE_BACK_OFF 16u
/*
 * Below this the cache is slower than the disk (1.5 GB/s above), and
 * well above the 0.4 GB/s of pages the host must fault in.
 */
#define CACHE_GAUGE_MIN_RATE (1000u * 1000 * 1000)	/* bytes a second */
/*
 * The time a window's bytes take at that rate (33.6 ms).  A window that
 * has taken longer is slow whatever its remaining writes take, so the
 * verdict comes then: a try of the cache that meets pages the host
 * faults in at 37 MB/s (27 ms a MiB) costs 2 MiB, not 32.
 */
#define CACHE_GAUGE_WINDOW_NS ((uint64_t)CACHE_GAUGE_WINDOW * 1000000000u / \
	CACHE_GAUGE_MIN_RATE)

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void cache_gauge_init(struct cache_gauge *g, int fd)
{
	const char *env = getenv("IMGPIPE_DIRECT");
	bool disk = !fd_in_memory_fs(fd);
	bool always = env != NULL && strcmp(env, "1") == 0;
	bool never = env != NULL && strcmp(env, "0") == 0;

	memset(g, 0, sizeof *g);
	pthread_mutex_init(&g->mu, NULL);
	g->measuring = disk && !always && !never;
	atomic_init(&g->past, disk && always);
	g->back_off = CACHE_GAUGE_BACK_OFF;
}

void cache_gauge_free(struct cache_gauge *g)
{
	pthread_mutex_destroy(&g->mu);
}

bool cache_gauge_past(struct cache_gauge *g)
{
	return atomic_load_explicit(&g->past, memory_order_relaxed);
}

/* Add the time since the last start or end, if a write was under way. */
static void count_busy(struct cache_gauge *g, uint64_t now)
{
	if (g->in_flight > 0)
		g->busy_ns += now - g->mark_ns;
	g->mark_ns = now;
}

/*
 * A timed write starts or ends: false if nothing is measured, else the
 * gauge is locked and its busy time counted up to now.
 */
static bool lock_at_event(struct cache_gauge *g)
{
	uint64_t now;

	if (!g->measuring)
		return false;
	now = now_ns();
	pthread_mutex_lock(&g->mu);
	count_busy(g, now);
	return true;
}

void cache_gauge_begin(struct cache_gauge *g)
{
	if (!lock_at_event(g))
		return;
	g->in_flight++;
	pthread_mutex_unlock(&g->mu);
}

/* A window through the cache starts, empty. */
static void new_window(struct cache_gauge *g)
{
	g->bytes = 0;
	g->busy_ns = 0;
}

/*
 * A window through the cache has ended, its bytes written or its time
 * spent: is it time to leave it?
 */
static void end_window(struct cache_gauge *g)
{
	/* bytes / seconds < rate, without dividing */
	if ((double)g->bytes * 1e9 < (double)CACHE_GAUGE_MIN_RATE *
	    (double)g->busy_ns) {
		atomic_store(&g->past, true);
		g->past_bytes = 0;
	}
	new_window(g);
}

/* Bytes written past the cache: is it time to try it again? */
static void count_past(struct cache_gauge *g, size_t len)
{
	g->past_bytes += len;
	if (g->past_bytes < (uint64_t)g->back_off * CACHE_GAUGE_WINDOW)
		return;
	g->back_off *= 2;	/* kept if this try is slow too */
	new_window(g);
	atomic_store(&g->past, false);
}

void cache_gauge_end(struct cache_gauge *g, size_t len)
{
	if (!lock_at_event(g))
		return;
	g->in_flight--;
	if (atomic_load(&g->past)) {
		count_past(g, len);
	} else {
		g->bytes += len;
		if (g->bytes >= CACHE_GAUGE_WINDOW ||
		    g->busy_ns >= CACHE_GAUGE_WINDOW_NS)
			end_window(g);
	}
	pthread_mutex_unlock(&g->mu);
}
