/*
 * Any image to one output format (include/imgpipe/write.h): open the
 * input through its reader, let the writer say its grain, choose the
 * output layout, and run the passes it needs:
 *
 *   WLAYOUT_STREAM, WLAYOUT_SEEKABLE   one pass: begin, every grain, finish
 *   WLAYOUT_STREAM, the disk in place  begin; the disk by the raw paths
 *                                      (a raw file's runs copied whole);
 *                                      finish
 *   WLAYOUT_PLANNED, seekable input    pass 1 plans; begin writes the
 *                                      metadata; pass 2 reads again, checks
 *                                      each grain against the plan, puts it
 *   WLAYOUT_PLANNED, a pipe            one pass plans and parks the grains
 *                                      in the store; begin; then the parked
 *                                      grains are put
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/cli.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/size.h"
#include "imgpipe/stash.h"
#include "imgpipe/write.h"
#include "imgpipe/zcopy.h"
#include "stream/wplan.h"
#include "stream/wsink.h"

struct wjob {
	const struct write_opts *o;
	struct stash st;
	struct source src;
	struct progress pr;
	struct image img;
	bool img_open;
	struct outfile of;
	struct wfile out;
	struct wplan plan;
	struct wimage w;
	uint64_t limit;		/* the largest virtual size the output takes */
	bool limit_given;	/* it is --size */
	const char *layout_name;
	uint64_t data_grains;
	bool in_place;		/* the disk went by the raw paths */
	uint64_t data_bytes;	/* ... with this much data */
};

int online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : n;
}

bool write_option(struct write_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'o': o->output = arg; return true;
	case 'f': o->format = arg; return true;
	case 'j':
		o->threads = cli_number("-j", arg, 1, 256);
		o->threads_given = true;
		return true;
	case 'p': o->progress = true; return true;
	case 'v': o->stats = true; return true;
	case WRITE_OPT_SIZE:
		o->size = cli_size("--size", arg);
		o->size_given = true;
		return true;
	case WRITE_OPT_MEM: o->mem = cli_size("--mem", arg); return true;
	case WRITE_OPT_TMPDIR: o->tmpdir = arg; return true;
	}
	return false;
}

bool write_operands(struct write_opts *o, int argc, char **argv, int optind)
{
	if (argc - optind > 1)
		return false;
	o->input = optind < argc ? argv[optind] : NULL;
	return true;
}

void writer_notice_rounded(struct wimage *w, uint64_t from, uint64_t to,
    const char *why)
{
	if (w->rounded_why == NULL)
		w->rounded_from = from;
	w->rounded_to = to;
	w->rounded_why = why;
}

static void say_rounded(const struct wimage *w)
{
	if (w->rounded_why != NULL)
		fprintf(stderr, "%s: virtual size %llu rounded up to %llu "
		    "(%s)\n", progname, (unsigned long long)w->rounded_from,
		    (unsigned long long)w->rounded_to, w->rounded_why);
}

/* Read the image through the writer sink in the given pass. */
static int read_pass(struct wjob *j, enum wpass pass)
{
	struct wsink ws;
	struct emitter em;
	int rc;

	if (wsink_init(&ws, &j->w, pass, j->o->threads, j->limit,
	    j->limit_given, j->src.name) < 0) {
		wsink_free(&ws);
		return -1;
	}
	emitter_init(&em, &ws.base, &j->st, j->img.virtual_size);
	rc = image_read(&j->img, &em);
	emitter_free(&em);
	if (rc == 0 && pass == WPASS_PARK) {
		if (j->w.fmt->begin(&j->w) < 0 || wsink_replay_parked(&ws) < 0)
			rc = -1;
	}
	j->data_grains = ws.data_grains;
	wsink_free(&ws);
	return rc;
}

/* Open (or, for a second pass, reopen) the input image. */
static int open_input(struct wjob *j)
{
	if (j->img_open) {
		image_close(&j->img);
		j->img_open = false;
		if (source_rewind(&j->src) < 0)
			return -1;
	}
	if (image_open(&j->img, &j->src, &j->st, j->o->format, false) < 0)
		return -1;
	j->img_open = true;
	/*
	 * A raw disk through a pipe: --size is what arrives, the total of the
	 * meter (pv -s); for another format it is not the input's size.
	 */
	if (j->o->size_given && j->src.meter_total == 0 && !j->src.meter_raw &&
	    j->img.fmt != NULL && strcmp(j->img.fmt->name, "raw") == 0)
		progress_total(&j->pr, j->o->size);
	return 0;
}

static int run_one_pass(struct wjob *j)
{
	if (j->w.fmt->begin(&j->w) < 0 || read_pass(j, WPASS_WRITE) < 0)
		return -1;
	return j->w.fmt->finish(&j->w);
}

static int run_two_passes(struct wjob *j)
{
	j->src.progress = NULL;	/* the meter shows the writing pass */
	if (read_pass(j, WPASS_PLAN) < 0 || j->w.fmt->begin(&j->w) < 0 ||
	    open_input(j) < 0)
		return -1;
	j->src.progress = &j->pr;
	if (read_pass(j, WPASS_CHECK) < 0)
		return -1;
	return j->w.fmt->finish(&j->w);
}

/*
 * The disk's bytes of a raw file, data runs only, copied whole: 1 when
 * this input and output cannot go so (nothing was written).
 */
static int place_raw_runs(struct wjob *j)
{
	struct wimage *w = &j->w;
	struct wfile *out = w->out;
	uint64_t moved;
	int r;

	if (!w->size_known)
		return 1;
	r = zcopy_raw_at(&j->img, out->fd, w->data_at, out->name, &moved);
	if (r != 0)
		return r;
	j->layout_name = "straight through, the data runs copied whole";
	j->data_bytes = moved;
	if (!out->seekable) {	/* the disk up to the input's end */
		out->pos = w->data_at + j->src.size;
		out->end = out->pos;
	}
	return 0;
}

/*
 * The in-place disk's writer threads without -j: two, as the kernel
 * copy's.  Into tmpfs every write takes the file's lock, so more only
 * wait for it: a fixed VHD of the 4 GiB qcow2 took 0.83 s of processor
 * time with 8, 0.65 s with 2, 0.61 s with 1 (medians of 6, load 7).
 */
#define PLACE_THREADS 2

/* Any other input: its extents at their place, zeros as holes in a file. */
static int place_by_sink(struct wjob *j)
{
	struct wplace wp;
	struct emitter em;
	int rc;

	if (wplace_init(&wp, &j->w, j->o->threads_given ? j->o->threads :
	    PLACE_THREADS, j->limit, j->limit_given, j->src.name) < 0) {
		wplace_close(&wp);
		return -1;
	}
	emitter_init(&em, &wp.base, &j->st, j->img.virtual_size);
	rc = image_read(&j->img, &em);
	emitter_free(&em);
	wplace_close(&wp);
	j->layout_name = "straight through, the disk in place";
	j->data_bytes = wp.data_bytes;
	return rc;
}

/*
 * WRITER_DATA_IN_PLACE: begin writes what comes before the disk, the
 * disk goes as img2raw's would, at w->data_at, and finish writes the rest
 * (a fixed VHD's footer).  Neither grains nor a plan: nothing to copy
 * into a batch or to scan for zeros twice.
 */
static int run_in_place(struct wjob *j)
{
	struct wimage *w = &j->w;
	struct wfile *out = w->out;
	int r;

	j->in_place = true;
	if (w->fmt->begin(w) < 0 || wfile_flush(out) < 0)
		return -1;
	/* a stream has had what begin wrote: the disk starts at data_at */
	if (!out->seekable && out->pos < w->data_at &&
	    wfile_zero(out, out->pos, w->data_at - out->pos) < 0)
		return -1;
	if (!out->seekable && out->pos != w->data_at)
		return fail(EXIT_IO, "%s writer: the disk is at 0x%llx, the "
		    "stream at 0x%llx", w->fmt->name,
		    (unsigned long long)w->data_at,
		    (unsigned long long)out->pos);
	r = place_raw_runs(j);
	if (r > 0)
		r = place_by_sink(j);
	return r < 0 ? -1 : w->fmt->finish(w);
}

static int run_parked(struct wjob *j)
{
	if (read_pass(j, WPASS_PARK) < 0)
		return -1;
	return j->w.fmt->finish(&j->w);
}

/*
 * Straight through when the format's metadata can follow its data or the
 * output seeks, and the size is known when the format needs it first.
 */
static int run_layout(struct wjob *j)
{
	struct wimage *w = &j->w;
	bool sized = w->size_known || (w->flags & WRITER_SIZE_LATE) ||
	    (w->out->seekable && (w->flags & WRITER_SIZE_LATE_SEEKABLE));

	if (sized && (w->flags & WRITER_STREAMS)) {
		w->layout = WLAYOUT_STREAM;
		j->layout_name = "straight through";
		if ((w->flags & WRITER_DATA_IN_PLACE) &&
		    (!w->out->seekable || w->out->prior_size == 0))
			return run_in_place(j);
		return run_one_pass(j);
	}
	if (sized && w->out->seekable) {
		w->layout = WLAYOUT_SEEKABLE;
		j->layout_name = "seekable output, metadata last";
		return run_one_pass(j);
	}
	w->layout = WLAYOUT_PLANNED;
	if (w->size_known && j->src.seekable && j->src.ar == NULL) {
		j->layout_name = "stream output, two passes over the input";
		return run_two_passes(j);
	}
	j->layout_name = "stream output, data parked in the store";
	return run_parked(j);
}

/* The virtual size, when the input or --size tells it before reading. */
static int size_the_output(struct wjob *j)
{
	const struct write_opts *o = j->o;
	struct wimage *w = &j->w;
	uint64_t n;

	if (o->size_given && !j->img.size_late && j->img.virtual_size > o->size)
		return fail_file(EXIT_USAGE, j->src.name, "longer than "
		    "--size %llu", (unsigned long long)o->size);
	if (!o->size_given && j->img.size_late)
		return 0;
	n = o->size_given ? o->size : j->img.virtual_size;
	w->virtual_size = n + (-n & 511);
	w->size_known = true;
	if (w->virtual_size != n)
		writer_notice_rounded(w, n, w->virtual_size, "a multiple of "
		    "512 bytes");
	return 0;
}

static int check_size(struct wjob *j)
{
	struct wimage *w = &j->w;

	j->limit = IMAGE_VSIZE_MAX;
	if (w->max_size && w->max_size < j->limit)
		j->limit = w->max_size;
	/* --size rounded up as the virtual size is (size_the_output) */
	if (j->o->size_given && j->o->size + (-j->o->size & 511) <= j->limit) {
		j->limit = j->o->size + (-j->o->size & 511);
		j->limit_given = true;
	}
	if (w->size_known && w->virtual_size > j->limit)
		return fail(EXIT_REJECT, "a disk of %llu bytes is larger "
		    "than %llu bytes, the most %s can hold here",
		    (unsigned long long)w->virtual_size,
		    (unsigned long long)j->limit, w->fmt->name);
	return 0;
}

static int set_up(struct wjob *j)
{
	const struct write_opts *o = j->o;
	struct wimage *w = &j->w;

	w->fmt = o->writer;
	w->flags = o->writer->flags;
	w->opts = o->writer_opts;
	w->store = &j->st;
	w->plan = &j->plan;
	w->out = &j->out;
	w->priv = calloc(1, o->writer->state_size ? o->writer->state_size : 1);
	if (w->priv == NULL)
		return fail(EXIT_IO, "out of memory");
	if (size_the_output(j) < 0 || w->fmt->setup(w) < 0 ||
	    check_size(j) < 0)
		return -1;
	if (w->grain == 0 || w->grain % 512 || w->grain > WRITER_GRAIN_MAX)
		return fail(EXIT_IO, "%s writer: bad grain size %u",
		    w->fmt->name, w->grain);
	return wplan_init(&j->plan, &j->st,
	    w->fmt->encode != NULL && w->encoded_max > 0);
}

static void report(const struct wjob *j)
{
	char mem[32], tmp[32], out[32], data[32];

	format_size(j->st.mem_peak, mem, sizeof mem);
	format_size(j->st.file_peak, tmp, sizeof tmp);
	format_size(j->out.end, out, sizeof out);
	if (j->in_place) {
		format_size(j->data_bytes, data, sizeof data);
		fprintf(stderr, "%s: layout: %s; data %s; image %s; stash "
		    "peak memory %s, temporary file %s\n", progname,
		    j->layout_name, data, out, mem, tmp);
		return;
	}
	fprintf(stderr, "%s: layout: %s; %llu %s allocated; image %s; "
	    "stash peak memory %s, temporary file %s\n", progname,
	    j->layout_name, (unsigned long long)j->data_grains,
	    j->o->unit ? j->o->unit : "grains", out, mem, tmp);
}

/* The output: -o FILE or stdout, or the caller's open file (to_fd). */
static int open_output(struct wjob *j)
{
	if (!j->o->to_fd) {
		if (outfile_replace(&j->of, j->o->output) < 0)
			return -1;
		wfile_init(&j->out, j->of.fd, j->of.name, false);
	} else {
		/* the caller reads it back (ovacreate's temporary VMDK) */
		wfile_init(&j->out, j->o->fd, j->o->output ? j->o->output :
		    "output", true);
	}
	j->out.one_thread = j->o->threads_given && j->o->threads == 1;
	return 0;
}

static void tell_result(const struct wjob *j, struct write_result *r)
{
	uint64_t g = j->w.grain;

	r->virtual_size = j->w.virtual_size;
	/* in place, no plan: the grains the data would fill */
	r->data_grains = j->in_place ? j->data_bytes / g +
	    (j->data_bytes % g != 0) : wplan_count(&j->w);
	r->grain = j->w.grain;
}

static int run(struct wjob *j)
{
	if (open_input(j) < 0 || set_up(j) < 0 || open_output(j) < 0)
		return -1;
	if (run_layout(j) < 0 || wfile_flush(&j->out) < 0 ||
	    source_drain(&j->src) < 0) {
		if (!j->o->to_fd)
			outfile_abort(&j->of);
		return -1;
	}
	if (!j->o->to_fd && outfile_commit(&j->of) < 0)
		return -1;
	say_rounded(&j->w);
	if (j->o->stats)
		report(j);
	if (j->o->result != NULL)
		tell_result(j, j->o->result);
	return 0;
}

int write_image(const struct write_opts *o)
{
	struct wjob j;
	int rc = -1;

	memset(&j, 0, sizeof j);
	j.o = o;
	stash_init(&j.st, o->mem ? o->mem : STASH_DEFAULT_BUDGET, o->tmpdir);
	if (source_open(&j.src, o->input) == 0) {
		progress_start(&j.pr, o->progress, j.src.meter_total);
		j.src.progress = &j.pr;
		rc = run(&j);
		progress_end(&j.pr);
	}
	if (j.w.fmt != NULL && j.w.fmt->close != NULL)
		j.w.fmt->close(&j.w);
	free(j.w.priv);
	wfile_free(&j.out);
	wplan_free(&j.plan);
	if (j.img_open)
		image_close(&j.img);
	source_close(&j.src);
	stash_free(&j.st);
	return rc;
}
