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
#include <sys/wait.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
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
	static unsigned char a[200000], b[200000], out[200000];
	struct stash_ref ra, rb, rc;
	struct stash st;

	fill(a, sizeof a, 0, 1);
	fill(b, sizeof b, 0, 2);
	stash_init(&st, 2000, dir);
	CHECK(st.budget == STASH_BUDGET_MIN);	/* too small a budget */
	stash_free(&st);
	stash_init(&st, 256 << 10, dir);
	CHECK(stash_put(&st, a, sizeof a, &ra) == 0 && ra.len == sizeof a);
	/* the payload and its records are counted */
	CHECK(st.bookkeeping > 0 && st.mem_used == sizeof a +
	    4 * STASH_MALLOC_OVERHEAD + st.bookkeeping);
	CHECK(st.fd < 0);
	/* over the budget: the oldest pieces move to the spill file */
	CHECK(stash_put(&st, b, sizeof b, &rb) == 0);
	CHECK(st.fd >= 0 && st.file_parked > 0 && st.file_parked <= sizeof a);
	CHECK(st.parked == 2 * sizeof a);
	CHECK(st.mem_used <= st.budget && st.mem_peak <= st.budget);
	/* the spill file is unlinked: nothing to clean up, nothing visible */
	CHECK(count_entries(dir) == 0);
	CHECK(stash_take(&st, &ra, out) == 0 && memcmp(out, a, sizeof a) == 0);
	/* taken: no bytes left, the length stays for the caller */
	CHECK(ra.len == sizeof a && ra.head == NULL && ra.tail == NULL);
	CHECK(stash_take(&st, &rb, out) == 0 && memcmp(out, b, sizeof b) == 0);
	CHECK(st.mem_used == 0 && st.parked == 0 && st.npieces == 0);
	CHECK(st.file_parked == 0 && st.file_used == 0 && st.nslots == 0);
	CHECK(stash_put(&st, a, 10, &rc) == 0);
	stash_drop(&st, &rc);
	stash_drop(&st, &rc);	/* an empty ref: nothing happens */
	CHECK(st.npieces == 0 && st.parked_peak == 2 * sizeof a);
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
	static unsigned char out[16 << 20];
	unsigned char blk[512];
	uint64_t n = (16 << 20) / 512, i;
	struct stash_ref down = { 0 }, up = { 0 };
	struct stash st;

	setenv("IMGPIPE_STASH_STATS", "1", 1);
	stash_init(&st, 1 << 20, dir);
	unsetenv("IMGPIPE_STASH_STATS");
	for (i = n; i-- > 0;) {
		fill(blk, sizeof blk, i * 512, 4);
		if (stash_prepend(&st, &down, blk, sizeof blk) < 0)
			break;
	}
	CHECK(down.len == 16 << 20);
	/* whole pieces: about one record per STASH_PIECE bytes */
	CHECK(st.npieces <= (16 << 20) / STASH_PIECE + 4);
	CHECK(st.mem_peak <= st.budget);
	CHECK(st.file_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.file_disk_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.file_disk_peak <= st.parked_peak + STASH_FILE_SLACK);
	CHECK(stash_take(&st, &down, out) == 0 &&
	    matches(out, 16 << 20, 0, 4));
	for (i = 0; i < n; i++) {
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

/*
 * Many small runs (a reader keeping one run per 512-byte grain): packed
 * together in the spill file, not a 4 KiB block each.
 */
static void test_small_runs_packed(void)
{
	enum { N = 30000 };
	static struct stash_ref r[N];
	unsigned char blk[512];
	struct stash st;
	int ok = 1;
	size_t i;

	setenv("IMGPIPE_STASH_STATS", "1", 1);
	stash_init(&st, 8 << 20, dir);
	unsetenv("IMGPIPE_STASH_STATS");
	for (i = 0; i < N && ok; i++) {
		fill(blk, sizeof blk, i * 512, 9);
		if (stash_put(&st, blk, sizeof blk, &r[i]) < 0)
			ok = 0;
	}
	CHECK(ok && st.file_parked > (N / 2) * 512);
	CHECK(st.file_disk_peak <= st.parked_peak + STASH_FILE_SLACK);
	for (i = 0; i < N && ok; i++)
		if (stash_take(&st, &r[i], blk) < 0 ||
		    !matches(blk, sizeof blk, i * 512, 9))
			ok = 0;
	CHECK(ok);
	CHECK(st.file_disk_excess_peak <= STASH_FILE_SLACK);
	CHECK(st.mem_peak <= st.budget);
	CHECK(st.parked == 0 && st.mem_used == 0 && disk_bytes(st.fd) == 0);
	stash_free(&st);
}

/*
 * Many pieces just too large to be packed, a slot each: the slot table
 * doubles while a piece moves out (1024 -> 2048 slots: 40 KiB more), and
 * that growth stays within the budget with everything else.
 */
static void test_slot_table_growth_within_budget(void)
{
	enum { N = 2000, LEN = STASH_PACK_MAX + 3616 };
	static struct stash_ref r[N];
	static unsigned char blk[LEN];
	struct stash st;
	int ok = 1;
	size_t i;

	stash_init(&st, 1 << 20, dir);
	for (i = 0; i < N && ok; i++) {
		fill(blk, LEN, (uint64_t)i * LEN, 12);
		if (stash_put(&st, blk, LEN, &r[i]) < 0)
			ok = 0;
	}
	CHECK(ok && st.capslots >= 2048 && st.nslots > 1024);
	CHECK(st.mem_peak <= st.budget);
	for (i = 0; i < N && ok; i++)
		if (stash_take(&st, &r[i], blk) < 0 ||
		    !matches(blk, LEN, (uint64_t)i * LEN, 12))
			ok = 0;
	CHECK(ok && st.parked == 0 && st.mem_used == 0);
	CHECK(st.mem_peak <= st.budget);
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

/*
 * The pattern of a reader whose tables come after the data they place
 * (a VMDK with its grain directory at the end, a qcow2 with its L2 tables
 * last): a header, NBLK blocks of BLK bytes in a shuffled host order, then
 * the table (virtual index of each host block).  From a pipe, the reader
 * keeps what passes, reads the table, then reads the blocks back in
 * virtual order and releases each.
 */
#define NBLK 3000u
#define BLK 3000u	/* not a divisor of the kept pieces: spans matter */
#define HDR 70000u	/* past the source's head */

static uint32_t host_of(uint32_t v)
{
	return (v * 1237u + 11) % NBLK;	/* 1237 is prime to NBLK */
}

static void make_image(unsigned char *img, size_t len)
{
	uint32_t v, h;

	memset(img, 0x11, HDR);
	for (v = 0; v < NBLK; v++) {
		h = host_of(v);
		fill(img + HDR + (size_t)h * BLK, BLK, (uint64_t)v * BLK, 7);
		memcpy(img + HDR + (size_t)NBLK * BLK + 4 * h, &v, 4);
	}
	(void)len;
}

static pid_t feed_pipe(const unsigned char *img, size_t len, int *rfd)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		write_full(p[1], img, len, "pipe");
		_exit(0);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

/* A source reading img from a pipe fed by a child, and a store for it. */
struct piped {
	struct source s;
	struct stash st;
	int fd;
	pid_t pid;
};

static void piped_open(struct piped *p, const unsigned char *img, size_t len,
    uint64_t budget, bool stats)
{
	p->fd = -1;
	p->pid = feed_pipe(img, len, &p->fd);
	CHECK(p->pid > 0);
	if (stats)
		setenv("IMGPIPE_STASH_STATS", "1", 1);
	stash_init(&p->st, budget, dir);
	unsetenv("IMGPIPE_STASH_STATS");
	CHECK(source_open_fd(&p->s, p->fd, "pipe") == 0 && !p->s.seekable);
}

/* Everything released: the store holds nothing once the source is gone. */
static void piped_close(struct piped *p)
{
	source_close(&p->s);
	CHECK(p->st.mem_used == 0);
	close(p->fd);
	waitpid(p->pid, NULL, 0);
	stash_free(&p->st);
}

static void test_source_retention(void)
{
	size_t len = HDR + (size_t)NBLK * BLK + 4 * NBLK;
	unsigned char *img = malloc(len), *table = malloc(4 * NBLK);
	unsigned char blk[BLK], hdr[16];
	uint64_t host, kept_peak = 0;
	struct piped p;
	uint32_t v, i, virt;
	int ok = 1;

	make_image(img, len);
	/* a budget less than the 9 MB kept: spills */
	piped_open(&p, img, len, 2 << 20, true);
	CHECK(source_retain(&p.s, &p.st, 0) == 0);
	CHECK(source_read_at(&p.s, hdr, sizeof hdr, 0, "header") == 0);
	/* the table is at the end: every block passes first, and is kept */
	CHECK(source_read_at(&p.s, table, 4 * NBLK, HDR + (uint64_t)NBLK * BLK,
	    "table") == 0);
	CHECK(p.s.kept_bytes == len - SOURCE_HEAD_MAX);
	CHECK(p.st.parked == p.s.kept_bytes && p.st.file_parked > 0);
	/* the header and the table are not needed again */
	source_release(&p.s, 0, HDR);
	source_release(&p.s, HDR + (uint64_t)NBLK * BLK, 4 * NBLK);
	for (v = 0; v < NBLK && ok; v++) {
		/* virtual order: find where the table put block v */
		for (i = 0; i < NBLK; i++) {
			memcpy(&virt, table + 4 * i, 4);
			if (virt == v)
				break;
		}
		host = HDR + (uint64_t)i * BLK;
		if (source_read_at(&p.s, blk, BLK, host, "data") < 0 ||
		    !matches(blk, BLK, (uint64_t)v * BLK, 7))
			ok = 0;
		source_release(&p.s, host, BLK);
		if (p.s.kept_bytes > kept_peak)
			kept_peak = p.s.kept_bytes;
	}
	CHECK(ok);
	/* everything was released: nothing is held, in memory or on disk */
	CHECK(p.s.kept_bytes == 0 && p.st.parked == 0 && p.st.file_parked == 0);
	CHECK(disk_bytes(p.st.fd) == 0);
	CHECK(p.st.mem_peak <= p.st.budget);
	CHECK(p.st.file_disk_excess_peak <= STASH_FILE_SLACK);
	/* a released block is gone: the message a reader would pass on */
	err_clear();
	CHECK(source_read_at(&p.s, blk, BLK, HDR + BLK * 5, "data") < 0);
	CHECK(err_status() == EXIT_REJECT &&
	    strstr(err_msg(), "lies behind data already read") != NULL);
	err_clear();
	/* kept again from here; SOURCE_RETAIN_NONE lets it all go */
	CHECK(source_retain(&p.s, &p.st, p.s.pos) == 0);
	CHECK(source_retain(&p.s, &p.st, SOURCE_RETAIN_NONE) == 0);
	CHECK(p.st.mem_used == 0);
	piped_close(&p);
	free(img);
	free(table);
}

/* Retention moved forward releases what lies behind it. */
static void test_source_retain_moves(void)
{
	size_t len = 1 << 20;
	unsigned char *img = malloc(len), buf[1000];
	struct piped p;

	fill(img, len, 0, 8);
	piped_open(&p, img, len, 8 << 20, false);
	CHECK(source_retain(&p.s, &p.st, 100000) == 0);
	CHECK(source_skip_to(&p.s, 500000) == 0);
	CHECK(p.s.kept_bytes == 400000);
	CHECK(source_read_at(&p.s, buf, 1000, 99000, "x") < 0);	/* not kept */
	err_clear();
	CHECK(source_read_at(&p.s, buf, 1000, 100000, "x") == 0 &&
	    matches(buf, 1000, 100000, 8));
	/* a range from the kept bytes on into the stream ahead */
	CHECK(source_read_at(&p.s, buf, 1000, 499500, "x") == 0 &&
	    matches(buf, 1000, 499500, 8));
	CHECK(source_retain(&p.s, &p.st, 300000) == 0);
	CHECK(p.s.kept_bytes == 500500 - 300000);
	CHECK(source_read_at(&p.s, buf, 1000, 200000, "x") < 0);
	err_clear();
	/* the middle of a piece released, then the rest around it */
	source_release(&p.s, 310000, 1000);
	CHECK(source_read_at(&p.s, buf, 1000, 320000, "x") == 0 &&
	    matches(buf, 1000, 320000, 8));
	source_release(&p.s, 300000, 1000000);
	CHECK(p.s.kept_bytes == 0 && p.st.parked == 0);
	piped_close(&p);
	free(img);
}

/* source_retain_stop(): what is kept stays, what passes next is not kept. */
static void test_source_retain_stop(void)
{
	size_t len = 1 << 20;
	unsigned char *img = malloc(len), buf[1000];
	struct piped p;

	fill(img, len, 0, 9);
	piped_open(&p, img, len, 8 << 20, false);
	CHECK(source_retain(&p.s, &p.st, 100000) == 0);
	CHECK(source_skip_to(&p.s, 200000) == 0);
	source_retain_stop(&p.s);
	CHECK(source_skip_to(&p.s, 300000) == 0);
	CHECK(p.s.kept_bytes == 100000);
	CHECK(source_read_at(&p.s, buf, 1000, 150000, "x") == 0 &&
	    matches(buf, 1000, 150000, 9));
	/* not kept */
	CHECK(source_read_at(&p.s, buf, 1000, 250000, "x") < 0);
	err_clear();
	source_release(&p.s, 100000, 100000);
	CHECK(p.s.kept_bytes == 0 && p.st.parked == 0);
	/* source_retain() keeps again */
	CHECK(source_retain(&p.s, &p.st, 0) == 0);
	CHECK(source_skip_to(&p.s, 310000) == 0 && p.s.kept_bytes == 10000);
	CHECK(source_retain(&p.s, &p.st, SOURCE_RETAIN_NONE) == 0);
	piped_close(&p);
	free(img);
}

int main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	test_memory_then_file();
	test_large_run();
	test_run_grows_down_and_up();
	test_spill_space_reused();
	test_small_runs_packed();
	test_slot_table_growth_within_budget();
	test_charge();
	test_two_threads();
	test_source_retention();
	test_source_retain_moves();
	test_source_retain_stop();
	CHECK(count_entries(dir) == 0);
	rmdir(dir);
	UNIT_DONE();
}
