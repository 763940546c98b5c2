/*
 * Unit tests of the parking store: one budget for payload and bookkeeping,
 * spill to an unlinked file whose space is reused, runs that grow at both
 * ends, charges, and two threads at once.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/stash.h"
#include "unit.h"

static char dir[] = "/tmp/imgpipe-unit-stash.XXXXXX";

static int count_entries(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	while (dp && (e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	if (dp)
		closedir(dp);
	return n;
}

/* Byte i of a test pattern: differs from byte to byte and run to run. */
static unsigned char pat(uint64_t i, unsigned seed)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull + seed;

	return (unsigned char)(x >> 29);
}

static void fill(unsigned char *p, size_t len, uint64_t from, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(from + i, seed);
}

static int matches(const unsigned char *p, size_t len, uint64_t from,
    unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(from + i, seed))
			return 0;
	return 1;
}

static uint64_t disk_bytes(int fd)
{
	struct stat sb;

	return fd >= 0 && fstat(fd, &sb) == 0 ? (uint64_t)sb.st_blocks * 512
	    : 0;
}

static void test_memory_then_file(void)
{
	unsigned char a[1000], b[1000], out[1000];
	struct stash_ref ra, rb, rc;
	struct stash st;

	fill(a, sizeof a, 0, 1);
	fill(b, sizeof b, 0, 2);
	stash_init(&st, 2000, dir);
	CHECK(stash_put(&st, a, sizeof a, &ra) == 0 && ra.len == 1000);
	/* the payload and its record are counted */
	CHECK(st.mem_used > 1000 && st.bookkeeping > 0 &&
	    st.mem_used == 1000 + STASH_MALLOC_OVERHEAD + st.bookkeeping);
	CHECK(st.fd < 0);
	/* over the budget: the oldest piece moves to the spill file */
	CHECK(stash_put(&st, b, sizeof b, &rb) == 0);
	CHECK(st.fd >= 0 && st.file_parked == 1000 && st.parked == 2000);
	CHECK(st.mem_used <= st.budget && st.mem_peak <= st.budget);
	/* the spill file is unlinked: nothing to clean up, nothing visible */
	CHECK(count_entries(dir) == 0);
	CHECK(stash_take(&st, &ra, out) == 0 && memcmp(out, a, 1000) == 0);
	CHECK(ra.len == 0 && ra.head == NULL);
	CHECK(stash_take(&st, &rb, out) == 0 && memcmp(out, b, 1000) == 0);
	CHECK(st.mem_used == 0 && st.parked == 0 && st.npieces == 0);
	CHECK(st.file_parked == 0 && st.file_used == 0 && st.nslots == 0);
	CHECK(stash_put(&st, a, 10, &rc) == 0);
	stash_drop(&st, &rc);
	stash_drop(&st, &rc);	/* an empty ref: nothing happens */
	CHECK(st.npieces == 0 && st.parked_peak == 2000);
	stash_free(&st);
}

/* A run far larger than the budget, read whole, in parts and in pieces. */
static void test_large_run(void)
{
	static unsigned char in[3 << 20], out[3 << 20];
	struct stash_ref r;
	struct stash st;

	fill(in, sizeof in, 0, 3);
	stash_init(&st, 256 << 10, dir);
	CHECK(stash_put(&st, in, sizeof in, &r) == 0 && r.len == sizeof in);
	CHECK(st.mem_peak <= st.budget);
	CHECK(st.file_parked + 256 * 1024 >= sizeof in);
	CHECK(stash_peek(&st, &r, out) == 0 && memcmp(in, out, sizeof in) == 0);
	CHECK(stash_read(&st, &r, 1234567, out, 100000) == 0 &&
	    memcmp(in + 1234567, out, 100000) == 0);
	err_clear();
	CHECK(stash_read(&st, &r, sizeof in - 10, out, 11) < 0);
	err_clear();
	/* taken in parts, the file gives its space back as it goes */
	CHECK(stash_take_head(&st, &r, out, 1 << 20) == 0 &&
	    memcmp(in, out, 1 << 20) == 0);
	CHECK(r.len == 2 << 20);
	CHECK(st.file_used <= st.file_parked + 2 * STASH_FILE_BLOCK);
	CHECK(disk_bytes(st.fd) <= st.file_parked + STASH_FILE_SLACK);
	stash_drop_head(&st, &r, 12345);
	stash_drop_tail(&st, &r, 54321);
	CHECK(r.len == (2 << 20) - 12345 - 54321);
	CHECK(stash_take(&st, &r, out) == 0 &&
	    memcmp(in + (1 << 20) + 12345, out, r.len) == 0);
	CHECK(st.parked == 0 && st.npieces == 0 && st.mem_used == 0);
	stash_free(&st);
}

/*
 * 512-byte pieces in reverse order, each just below the last, kept as one
 * growing run: full pieces, not a record per arrival.
 */
static void test_run_grows_down_and_up(void)
{
	static unsigned char out[64 << 20];
	unsigned char blk[512];
	uint64_t n = (64 << 20) / 512, i;
	struct stash_ref down = { 0 }, up = { 0 };
	struct stash st;

	setenv("IMGPIPE_STASH_STATS", "1", 1);
	stash_init(&st, 4 << 20, dir);
	unsetenv("IMGPIPE_STASH_STATS");
	for (i = n; i-- > 0;) {
		fill(blk, sizeof blk, i * 512, 4);
		if (stash_prepend(&st, &down, blk, sizeof blk) < 0)
			break;
	}
	CHECK(down.len == 64 << 20);
	/* whole pieces: about one record per STASH_PIECE bytes */
	CHECK(st.npieces <= (64 << 20) / STASH_PIECE + 4);
	CHECK(st.mem_peak <= st.budget);
	CHECK(st.file_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.file_disk_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.file_disk_peak <= st.parked_peak + STASH_FILE_SLACK);
	CHECK(stash_take(&st, &down, out) == 0 &&
	    matches(out, 64 << 20, 0, 4));
	for (i = 0; i < n / 4; i++) {
		fill(blk, sizeof blk, i * 512, 5);
		if (stash_append(&st, &up, blk, sizeof blk) < 0)
			break;
	}
	CHECK(up.len == (16 << 20));
	CHECK(st.npieces <= (16 << 20) / STASH_PIECE + 4);
	CHECK(stash_take(&st, &up, out) == 0 && matches(out, 16 << 20, 0, 5));
	CHECK(st.npieces == 0 && st.parked == 0);
	stash_free(&st);
}

/*
 * Runs come and go, more than the budget in all: the spill file reuses
 * the space they leave and never holds much more than is parked.
 */
static void test_spill_space_reused(void)
{
	static unsigned char buf[200000];
	struct stash_ref r[64];
	uint64_t round, k, held = 0, held_peak = 0, total = 0;
	struct stash st;
	int ok = 1;

	memset(r, 0, sizeof r);
	setenv("IMGPIPE_STASH_STATS", "1", 1);
	stash_init(&st, 1 << 20, dir);
	unsetenv("IMGPIPE_STASH_STATS");
	for (round = 0; round < 2000; round++) {
		k = (round * 37) % 64;
		if (r[k].len > 0) {
			size_t len = r[k].len;

			if (stash_take(&st, &r[k], buf) < 0 ||
			    !matches(buf, len, k * 7919, (unsigned)k))
				ok = 0;
			held -= len;
		}
		{
			size_t len = 1000 + (round * 7919) % 190000;

			fill(buf, len, k * 7919, (unsigned)k);
			if (stash_put(&st, buf, len, &r[k]) < 0)
				ok = 0;
			held += len;
			total += len;
		}
		if (held > held_peak)
			held_peak = held;
	}
	CHECK(ok);
	CHECK(total > 20 * held_peak);
	CHECK(st.parked_peak == held_peak);
	CHECK(st.file_disk_peak <= held_peak + STASH_FILE_SLACK);
	CHECK(st.file_disk_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.file_excess_peak <= STASH_FILE_SLACK);
	for (k = 0; k < 64; k++)
		stash_drop(&st, &r[k]);
	CHECK(st.parked == 0 && st.mem_used == 0 && disk_bytes(st.fd) == 0);
	stash_free(&st);
}

static void test_charge(void)
{
	static unsigned char in[1 << 20], out[1 << 20];
	struct stash_ref r;
	struct stash st;
	uint64_t *arr = NULL;
	size_t cap = 0, i;
	int ok = 1;

	fill(in, sizeof in, 0, 6);
	stash_init(&st, 1 << 20, dir);
	CHECK(stash_put(&st, in, 900 << 10, &r) == 0);
	CHECK(st.file_parked == 0);
	/* room for bookkeeping is made by moving payload to the file */
	CHECK(stash_charge(&st, 512 << 10) == 0);
	CHECK(st.mem_used <= st.budget && st.file_parked > 0);
	CHECK(st.charged == 512 << 10);
	/* bookkeeping alone over the budget: refused, nothing counted */
	err_clear();
	CHECK(stash_charge(&st, 600 << 10) < 0);
	CHECK(err_status() == EXIT_REJECT);
	CHECK(strstr(err_msg(), "--mem") != NULL);
	CHECK(st.charged == 512 << 10);
	err_clear();
	CHECK(stash_charge(&st, -(512 << 10)) == 0 && st.charged == 0);
	/* an array that grows is charged as it grows */
	for (i = 0; i < 10000 && ok; i++) {
		if (stash_grow_array(&st, &arr, i, &cap, sizeof *arr, 16) < 0)
			ok = 0;
		else
			arr[i] = i;
	}
	CHECK(ok && cap >= 10000);
	CHECK(st.charged == cap * sizeof *arr + STASH_MALLOC_OVERHEAD);
	/* ... up to the budget */
	err_clear();
	for (ok = 1; ok && i < 1000000; i++)
		if (stash_grow_array(&st, &arr, i, &cap, sizeof *arr, 16) < 0)
			ok = 0;
	CHECK(!ok && err_status() == EXIT_REJECT);
	CHECK(st.bookkeeping <= st.budget);
	err_clear();
	CHECK(stash_take(&st, &r, out) == 0 && memcmp(in, out, r.len) == 0);
	free(arr);
	stash_charge(&st, -(int64_t)st.charged);
	CHECK(st.mem_used == 0);
	stash_free(&st);
}

struct worker {
	struct stash *st;
	unsigned seed;
	int ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	static __thread unsigned char buf[100000];
	struct stash_ref r[16];
	unsigned i, k;

	memset(r, 0, sizeof r);
	w->ok = 1;
	for (i = 0; i < 3000; i++) {
		k = (i * 7 + w->seed) % 16;
		if (r[k].len > 0) {
			size_t len = r[k].len;

			if (stash_take(w->st, &r[k], buf) < 0 ||
			    !matches(buf, len, k, w->seed + k))
				w->ok = 0;
		}
		fill(buf, 500 + (i * 131) % 90000, k, w->seed + k);
		if (stash_put(w->st, buf, 500 + (i * 131) % 90000, &r[k]) < 0)
			w->ok = 0;
		if (i % 3 == 0 && stash_append(w->st, &r[k], buf, 0) < 0)
			w->ok = 0;
	}
	for (k = 0; k < 16; k++)
		stash_drop(w->st, &r[k]);
	return NULL;
}

static void test_two_threads(void)
{
	struct worker w[2];
	pthread_t t[2];
	struct stash st;
	int i;

	stash_init(&st, 512 << 10, dir);
	for (i = 0; i < 2; i++) {
		w[i] = (struct worker){ .st = &st, .seed = 100u * (i + 1) };
		CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(w[0].ok && w[1].ok);
	CHECK(st.parked == 0 && st.npieces == 0 && st.mem_used == 0);
	CHECK(st.mem_peak <= st.budget && st.file_peak > 0);
	stash_free(&st);
}

int main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	test_memory_then_file();
	test_large_run();
	test_run_grows_down_and_up();
	test_spill_space_reused();
	test_charge();
	test_two_threads();
	CHECK(count_entries(dir) == 0);
	rmdir(dir);
	UNIT_DONE();
}
