/* Unit tests of the shared core: zero detection, sizes, emitter, source
 * and raw sink (the parking store: test_stash.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imgpipe/bigbuf.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/sink.h"
#include "imgpipe/size.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"
#include "imgpipe/zero.h"
#include "unit.h"

static void test_is_zero(void)
{
	unsigned char buf[4096 + 64];
	size_t len, i;
	int ok = 1;

	memset(buf, 0, sizeof buf);
	for (len = 0; len < 80 && ok; len++) {
		if (!is_zero(buf, len))
			ok = 0;
		for (i = 0; i < len && ok; i++) {
			buf[i] = 1;
			if (is_zero(buf, len))
				ok = 0;
			buf[i] = 0;
		}
	}
	CHECK(ok);
	buf[4095] = 0x80;
	CHECK(!is_zero(buf, 4096));
	CHECK(is_zero(buf, 4095));
	CHECK(is_zero(zero_buf, ZERO_BUF_SIZE));
}

static void test_parse_size(void)
{
	uint64_t n = 0;

	CHECK(parse_size("512", &n) == 0 && n == 512);
	CHECK(parse_size("64K", &n) == 0 && n == 65536);
	CHECK(parse_size("1M", &n) == 0 && n == 1048576);
	CHECK(parse_size("4G", &n) == 0 && n == 4ull << 30);
	CHECK(parse_size("2TiB", &n) == 0 && n == 2ull << 40);
	CHECK(parse_size("1k", &n) == 0 && n == 1024);
	err_clear();
	CHECK(parse_size("", &n) < 0);
	CHECK(parse_size("x", &n) < 0);
	CHECK(parse_size("12Q", &n) < 0);
	CHECK(parse_size("-1", &n) < 0);
	CHECK(parse_size("99999999999999999999", &n) < 0);
	CHECK(parse_size("16777216T", &n) < 0);
	CHECK(err_status() == EXIT_USAGE);
	err_clear();
}

/* An in-order sink that records what it is given. */
struct rec_sink {
	struct sink base;
	unsigned char out[1 << 16];
	uint64_t pos;
	int zeros, writes, finished;
	int bad;
};

static int rec_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct rec_sink *r = (struct rec_sink *)sk;

	if (off != r->pos || off + len > sizeof r->out)
		r->bad = 1;
	else
		memcpy(r->out + off, buf, len);
	r->pos += len;
	r->writes++;
	return 0;
}

static int rec_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct rec_sink *r = (struct rec_sink *)sk;

	if (off != r->pos || off + len > sizeof r->out)
		r->bad = 1;
	else
		memset(r->out + off, 0, len);
	r->pos += len;
	r->zeros++;
	return 0;
}

static int rec_finish(struct sink *sk, uint64_t size)
{
	struct rec_sink *r = (struct rec_sink *)sk;

	r->finished = r->pos == size;
	return 0;
}

static void rec_init(struct rec_sink *r)
{
	memset(r, 0, sizeof *r);
	r->base = (struct sink){ .in_order = true, .write = rec_write,
	    .zero = rec_zero, .finish = rec_finish };
	memset(r->out, 0xee, sizeof r->out);
}

static void test_emitter_order(void)
{
	static struct rec_sink r;
	unsigned char blk[4096], want[40000];
	struct emitter em;
	struct stash st;
	int i;

	rec_init(&r);
	stash_init(&st, 8192, NULL);
	emitter_init(&em, &r.base, &st, 40000);
	memset(want, 0, sizeof want);
	/* emit 4K blocks in reverse order, every other block */
	for (i = 8; i >= 0; i -= 2) {
		memset(blk, 'A' + i, sizeof blk);
		memcpy(want + i * 4096, blk, sizeof blk);
		CHECK(emit_data(&em, i * 4096, blk, sizeof blk) == 0);
	}
	/* nothing can be written before block 0 arrives ... */
	CHECK(em.cursor == 4096);
	/* ... and the gap after it only once we promise it is empty */
	CHECK(emit_upto(&em, 4 * 4096) == 0);
	CHECK(em.cursor == 5 * 4096);
	CHECK(emit_finish(&em) == 0);
	CHECK(r.finished && !r.bad);
	CHECK(memcmp(r.out, want, sizeof want) == 0);
	CHECK(em.npending == 0 && st.npieces == 0);
	emitter_free(&em);
	stash_free(&st);
}

static void test_emitter_zero_split(void)
{
	static struct rec_sink r;
	static unsigned char buf[16384];
	struct emitter em;
	struct stash st;

	rec_init(&r);
	stash_init(&st, 1 << 20, NULL);
	emitter_init(&em, &r.base, &st, sizeof buf);
	memset(buf, 0, sizeof buf);
	buf[100] = 1;		/* block 0 data, 1 and 2 zero, 3 data */
	buf[3 * 4096 + 5] = 2;
	CHECK(emit_data(&em, 0, buf, sizeof buf) == 0);
	CHECK(r.writes == 2 && r.zeros == 1);
	CHECK(em.data_bytes == 8192 && em.zero_bytes == 8192);
	CHECK(emit_finish(&em) == 0 && r.finished);
	CHECK(memcmp(r.out, buf, sizeof buf) == 0);
	emitter_free(&em);
	stash_free(&st);
}

static void test_emitter_rejects(void)
{
	static struct rec_sink r;
	unsigned char blk[512] = { 1 };
	struct emitter em;
	struct stash st;

	rec_init(&r);
	stash_init(&st, 1 << 20, NULL);
	emitter_init(&em, &r.base, &st, 4096);
	err_clear();
	CHECK(emit_data(&em, 4000, blk, sizeof blk) < 0);
	CHECK(err_status() == EXIT_REJECT);
	err_clear();
	CHECK(emit_data(&em, 1024, blk, sizeof blk) == 0);
	CHECK(emit_data(&em, 1024, blk, sizeof blk) == 0);	/* parked twice */
	CHECK(emit_finish(&em) < 0);	/* the overlap is caught */
	CHECK(strstr(err_msg(), "overlap") != NULL);
	err_clear();
	emitter_free(&em);
	CHECK(st.npieces == 0);
	stash_free(&st);
}

static void test_source_stream(void)
{
	unsigned char data[100000], buf[1000];
	struct source s;
	int p[2];
	pid_t pid;
	size_t i;

	for (i = 0; i < sizeof data; i++)
		data[i] = i * 7;
	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		write_full(p[1], data, sizeof data, "pipe");
		_exit(0);
	}
	close(p[1]);
	CHECK(source_open_fd(&s, p[0], "pipe") == 0);
	CHECK(!s.seekable && s.headlen == SOURCE_HEAD_MAX);
	CHECK(source_read_at(&s, buf, 100, 50, "x") == 0 &&
	    memcmp(buf, data + 50, 100) == 0);
	/* behind the position, the head is still there */
	CHECK(source_read_at(&s, buf, 10, 0, "backwards") == 0 &&
	    memcmp(buf, data, 10) == 0);
	/* across the end of the head */
	CHECK(source_read_at(&s, buf, 1000, SOURCE_HEAD_MAX - 500, "x") == 0 &&
	    memcmp(buf, data + SOURCE_HEAD_MAX - 500, 1000) == 0);
	/* passed and not kept */
	err_clear();
	CHECK(source_read_at(&s, buf, 10, SOURCE_HEAD_MAX + 2, "backwards") < 0);
	CHECK(strstr(err_msg(), "backwards at 0x10002 lies behind") != NULL);
	err_clear();
	CHECK(source_read_at(&s, buf, 1000, 99500, "tail") < 0);
	CHECK(err_status() == EXIT_REJECT);
	err_clear();
	source_close(&s);
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void test_source_file_and_sink(void)
{
	char path[] = "/tmp/imgpipe-unit-file.XXXXXX";
	unsigned char buf[4096];
	struct raw_sink rs;
	struct source s;
	struct stat st;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	raw_sink_init(&rs, fd, path);
	CHECK(rs.seekable && !rs.base.in_order);
	memset(buf, 'x', sizeof buf);
	CHECK(rs.base.write(&rs.base, 1 << 20, buf, sizeof buf) == 0);
	CHECK(rs.base.zero(&rs.base, 0, 1 << 20) == 0);
	CHECK(rs.base.finish(&rs.base, 3 << 20) == 0);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 3 << 20);
	CHECK(st.st_blocks * 512 < 1 << 20);	/* the zeros are a hole */
	CHECK(source_open_fd(&s, fd, path) == 0);
	CHECK(s.seekable && s.size == 3 << 20);
	{
		uint64_t a, b;
		int r = source_next_data(&s, 0, &a, &b);

		CHECK(r == 1 && a <= 1 << 20 && b >= (1 << 20) + 4096);
	}
	CHECK(source_read_at(&s, buf, 10, (1 << 20) + 5, "x") == 0 &&
	    buf[0] == 'x');
	err_clear();
	CHECK(source_read_at(&s, buf, 10, (3 << 20) - 5, "end") < 0);
	err_clear();
	source_close(&s);
	close(fd);
	unlink(path);
}

/* The whole-transfer helpers: short only at end of file, -1 with errno. */
static void test_fd_full(void)
{
	char path[] = "/tmp/imgpipe-unit-fdio.XXXXXX";
	unsigned char data[100000], buf[100000];
	int fd = mkstemp(path), p[2];
	pid_t pid;
	size_t i;

	for (i = 0; i < sizeof data; i++)
		data[i] = i * 13;
	CHECK(fd >= 0);
	CHECK(fd_pwrite_full(fd, data, sizeof data, 5000) ==
	    (ssize_t)sizeof data);
	CHECK(fd_pread_full(fd, buf, sizeof data, 5000) ==
	    (ssize_t)sizeof data && memcmp(buf, data, sizeof data) == 0);
	/* past the end: what there is, then nothing */
	CHECK(fd_pread_full(fd, buf, 1000, 5000 + sizeof data - 10) == 10);
	CHECK(fd_pread_full(fd, buf, 1000, 5000 + sizeof data) == 0);
	close(fd);
	unlink(path);
	errno = 0;
	CHECK(fd_pread_full(fd, buf, 10, 0) == -1 && errno == EBADF);
	errno = 0;
	CHECK(fd_pwrite_full(fd, data, 10, 0) == -1 && errno == EBADF);
	/* a pipe gives what its writer wrote a piece at a time */
	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (i = 0; i < sizeof data; i += 7000)
			fd_write_full(p[1], data + i, sizeof data - i < 7000 ?
			    sizeof data - i : 7000);
		_exit(0);
	}
	close(p[1]);
	CHECK(fd_read_full(p[0], buf, sizeof buf) == (ssize_t)sizeof data &&
	    memcmp(buf, data, sizeof data) == 0);
	CHECK(fd_read_full(p[0], buf, 10) == 0);
	close(p[0]);
	waitpid(pid, NULL, 0);
}

/* The VmFlags of the mapping holding addr (/proc/self/smaps), or "". */
static void vm_flags(const void *addr, char *flags, size_t cap, size_t *len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	uintptr_t lo, hi, a = (uintptr_t)addr;
	bool in = false;

	flags[0] = 0;
	*len = 0;
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = a >= lo && a < hi;
			if (in)
				*len = hi - lo;
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, cap, "%s", line + 8);
		}
	}
	if (f != NULL)
		fclose(f);
}

/* Buffers start on a 2 MiB boundary, are asked to be huge, hold len. */
static void test_bigbuf(void)
{
	const size_t huge = (size_t)2 << 20;
	const size_t lens[] = { 1, 4096, huge - 1, huge, huge + 1,
	    9 * huge + 512 };
	char flags[512];
	size_t maplen;

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t len = lens[i], whole = (len + huge - 1) / huge * huge;
		unsigned char *p = bigbuf_alloc(len);

		CHECK(p != NULL && (uintptr_t)p % huge == 0);
		if (p == NULL)
			continue;
		CHECK(p[0] == 0 && p[len - 1] == 0);
		memset(p, 0xa5, len);
		vm_flags(p, flags, sizeof flags, &maplen);
		CHECK(strstr(flags, " hg") != NULL);
		CHECK(maplen >= whole);
		bigbuf_free(p);
		/* all of it given back, the page before it too */
		vm_flags(p, flags, sizeof flags, &maplen);
		CHECK(maplen == 0);
		vm_flags(p - 1, flags, sizeof flags, &maplen);
		CHECK(maplen == 0);
	}
	bigbuf_free(NULL);
}

int main(void)
{
	test_is_zero();
	test_parse_size();
	test_emitter_order();
	test_emitter_zero_split();
	test_emitter_rejects();
	test_source_stream();
	test_source_file_and_sink();
	test_fd_full();
	test_bigbuf();
	UNIT_DONE();
}
