/* Unit tests of the cache gauge (lib/io/cache_gauge.c): when a file
 * output on a disk leaves the page cache, and when it tries it again.  The sleeps only ever make a
 * window slower: a late wake-up cannot turn a slow case into a fast one,
 * and the fast cases have 3x to spare. */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "imgpipe/cache_gauge.h"
#include "imgpipe/fdio.h"
#include "unit.h"

#define MIB (1u << 20)

static void sleep_ms(long ms)
{
	struct timespec t = { 0, ms * 1000000 };

	nanosleep(&t, NULL);
}

/* A directory on a disk file system: the tree, or /var/tmp; -1 if none. */
static int disk_fd(void)
{
	static const char *const dirs[] = { ".", "/var/tmp", "/tmp" };
	int fd;

	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		fd = open(dirs[i], O_RDONLY | O_DIRECTORY);
		if (fd >= 0 && !fd_in_memory_fs(fd))
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

/* n writes of len bytes under way at once, each taking about ms. */
static bool after_overlapping(int fd, unsigned n, size_t len, long ms)
{
	struct cache_gauge g;
	bool past;

	cache_gauge_init(&g, fd);
	for (unsigned i = 0; i < n; i++)
		cache_gauge_begin(&g);
	sleep_ms(ms);
	for (unsigned i = 0; i < n; i++)
		cache_gauge_end(&g, len);
	past = cache_gauge_past(&g);
	cache_gauge_free(&g);
	return past;
}

/* n writes of len bytes one after another, each taking about ms. */
static bool after_sequential(int fd, unsigned n, size_t len, long ms)
{
	struct cache_gauge g;
	bool past;

	cache_gauge_init(&g, fd);
	for (unsigned i = 0; i < n; i++) {
		cache_gauge_begin(&g);
		sleep_ms(ms);
		cache_gauge_end(&g, len);
	}
	past = cache_gauge_past(&g);
	cache_gauge_free(&g);
	return past;
}

/* n writes of len bytes past the cache, which only count. */
static void past_writes(struct cache_gauge *g, unsigned n, size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		cache_gauge_begin(g);
		cache_gauge_end(g, len);
	}
}

/*
 * A slow window: one write of 1 MiB that takes 40 ms, longer than the
 * 33.6 ms a window's 32 MiB may take, so the verdict comes with it.
 */
static void slow_window(struct cache_gauge *g)
{
	cache_gauge_begin(g);
	sleep_ms(40);
	cache_gauge_end(g, MIB);
}

/*
 * Past the cache for 16 windows (512 MiB), then tried again; slow again,
 * past it for 32, and so on.  Fast windows keep it.
 */
static void test_back_off(int disk)
{
	struct cache_gauge g;

	cache_gauge_init(&g, disk);
	slow_window(&g);
	CHECK(cache_gauge_past(&g));
	past_writes(&g, 127, 4 * MIB);
	CHECK(cache_gauge_past(&g));
	past_writes(&g, 1, 4 * MIB);
	CHECK(!cache_gauge_past(&g));
	slow_window(&g);
	CHECK(cache_gauge_past(&g));
	past_writes(&g, 128, 4 * MIB);
	CHECK(cache_gauge_past(&g));
	past_writes(&g, 128, 4 * MIB);
	CHECK(!cache_gauge_past(&g));
	past_writes(&g, 64, 4 * MIB);	/* fast: no time taken */
	CHECK(!cache_gauge_past(&g));
	cache_gauge_free(&g);
}

static void test_settings(int disk)
{
	struct cache_gauge g;
	int shm = open("/dev/shm", O_RDONLY | O_DIRECTORY);

	CHECK(shm >= 0 && fd_in_memory_fs(shm));
	unsetenv("IMGPIPE_DIRECT");
	cache_gauge_init(&g, shm);	/* tmpfs: its pages are the file */
	CHECK(!g.measuring && !cache_gauge_past(&g));
	cache_gauge_free(&g);
	cache_gauge_init(&g, disk);
	CHECK(g.measuring && !cache_gauge_past(&g));
	cache_gauge_free(&g);
	setenv("IMGPIPE_DIRECT", "1", 1);
	cache_gauge_init(&g, disk);
	CHECK(!g.measuring && cache_gauge_past(&g));
	cache_gauge_free(&g);
	cache_gauge_init(&g, shm);
	CHECK(!g.measuring && !cache_gauge_past(&g));
	cache_gauge_free(&g);
	setenv("IMGPIPE_DIRECT", "0", 1);
	cache_gauge_init(&g, disk);
	CHECK(!g.measuring && !cache_gauge_past(&g));
	/* not measured: slow writes change nothing */
	cache_gauge_begin(&g);
	sleep_ms(40);
	cache_gauge_end(&g, 32 * MIB);
	CHECK(!cache_gauge_past(&g));
	cache_gauge_free(&g);
	unsetenv("IMGPIPE_DIRECT");
	if (shm >= 0)
		close(shm);
}

int main(void)
{
	int disk = disk_fd();

	CHECK(disk >= 0);
	if (disk < 0)
		UNIT_DONE();
	test_settings(disk);
	/* 32 MiB at once, no time: the cache is fast */
	CHECK(!after_overlapping(disk, 8, 4 * MIB, 0));
	/*
	 * Eight writes under way together for 10 ms: 32 MiB in 10 ms of
	 * wall time, 3.4 GB/s.  Their times summed would be 80 ms, 0.4
	 * GB/s: the gauge counts the time any write is under way.
	 */
	CHECK(!after_overlapping(disk, 8, 4 * MIB, 10));
	/* one after another, 5 ms each: 32 MiB in 40 ms, 0.84 GB/s */
	CHECK(after_sequential(disk, 8, 4 * MIB, 5));
	/* 24 MiB in 9 ms: a window not yet done, and no verdict */
	CHECK(!after_sequential(disk, 3, 8 * MIB, 3));
	/*
	 * 4 MiB in 40 ms: the window has taken longer than its 32 MiB may
	 * (33.6 ms at 1 GB/s), so it is slow before its bytes are written.
	 */
	CHECK(after_sequential(disk, 4, MIB, 10));
	test_back_off(disk);
	close(disk);
	UNIT_DONE();
}
