/* imgsparse: raw bytes through the emitter's zero detection. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/job.h"
#include "imgpipe/outfile.h"
#include "imgpipe/sparse.h"

struct sparse_job {
	struct sink *sink;
	uint64_t block;
	const char *output;	/* sparse_copy's, opened once the input is */
};

static int emit_blocks(struct image *img, struct stash *st, void *arg)
{
	struct sparse_job *sj = arg;
	struct emitter em;
	int rc;

	emitter_init(&em, sj->sink, st, img->virtual_size);
	em.zero_block = sj->block;
	rc = image_read(img, &em);
	emitter_free(&em);
	return rc;
}

/* Open the input as raw bytes, verbatim, and hand it to fn. */
static int run_plain(const struct sparse_opts *o,
    int (*fn)(struct image *, struct stash *, void *), void *arg)
{
	struct image_job j = { .input = o->input, .plain = true,
	    .progress = o->progress, .size = o->size };

	return image_job_run(&j, fn, arg);
}

/* Read the input into sk. */
static int run_raw(const struct sparse_opts *o, struct sink *sk)
{
	struct sparse_job sj = { sk, o->block, NULL };

	return run_plain(o, emit_blocks, &sj);
}

/* The output opens once the input has: a missing input leaves -o's file. */
static int copy_blocks(struct image *img, struct stash *st, void *arg)
{
	struct sparse_job *sj = arg;
	struct outfile of;
	struct raw_sink rs;
	int rc;

	if (outfile_replace(&of, sj->output) < 0)
		return -1;
	raw_sink_init(&rs, of.fd, of.name);
	raw_sink_async(&rs, 2);	/* nothing deferred: two writers */
	sj->sink = &rs.base;
	rc = emit_blocks(img, st, sj);
	raw_sink_close(&rs);
	if (rc == 0)
		return outfile_commit(&of);
	outfile_abort(&of);
	return -1;
}

int sparse_copy(const struct sparse_opts *o)
{
	struct sparse_job sj = { NULL, o->block, o->output };

	return run_plain(o, copy_blocks, &sj);
}

int sparse_map(const struct sparse_opts *o)
{
	struct map_sink ms;

	map_sink_init(&ms, stdout, o->json);
	return run_raw(o, &ms.base);
}

/* Punching holes: data is already in place, zero blocks are deallocated. */
struct punch_sink {
	struct sink base;
	int fd;
	const char *name;
};

static int punch_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	(void)sk; (void)off; (void)buf; (void)len;
	return 0;
}

static int punch_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct punch_sink *ps = (struct punch_sink *)sk;

	if (fallocate(ps->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
	    len) < 0)
		return fail_io(ps->name, "cannot punch a hole");
	return 0;
}

static int punch_finish(struct sink *sk, uint64_t size)
{
	struct punch_sink *ps = (struct punch_sink *)sk;

	(void)size;
	if (fsync(ps->fd) < 0)
		return fail_io(ps->name, NULL);
	return 0;
}

int sparse_in_place(const struct sparse_opts *o)
{
	struct punch_sink ps = {
		.base = { .write = punch_write, .zero = punch_zero,
		    .finish = punch_finish },
		.name = o->input,
	};
	struct stat st;
	int rc;

	if (o->input == NULL)
		return fail(EXIT_USAGE, "--in-place needs a FILE");
	ps.fd = open(o->input, O_WRONLY | O_CLOEXEC);
	if (ps.fd < 0)
		return fail_io(o->input, NULL);
	if (fstat(ps.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(ps.fd);
		return fail_file(EXIT_USAGE, o->input, "--in-place needs a "
		    "regular file");
	}
	rc = run_raw(o, &ps.base);
	if (close(ps.fd) < 0 && rc == 0)
		rc = fail_io(o->input, NULL);
	return rc;
}
