/*
 * Writers: output formats behind one interface, in the spirit of QEMU's
 * BlockDriver and nbdkit's regions.  A format says only what is its own:
 * its grain (the unit the core hands it), how a grain is encoded
 * (compression), where a grain goes and how it is framed, and which
 * metadata goes where.  The core (lib/stream/wsink.c, lib/jobs/write.c)
 * does the rest once for every format: reading any image, zero detection,
 * batching, the compression pool, the plan, the parking store, the output
 * layouts, the temporary name, progress.
 *
 * The core calls setup, then begin, then put for every grain in ascending
 * order (data grains and runs of zero grains), then finish.  How the
 * output is laid out depends on the output and the format:
 *
 *   WLAYOUT_STREAM    metadata follows the data it describes (a stream
 *                     VMDK, a fixed VHD) or depends on nothing but the
 *                     size (a fixed VHDX, a static VDI): straight
 *                     through, file or pipe
 *   WLAYOUT_SEEKABLE  a file: data as it comes, metadata written where it
 *                     belongs, after the data
 *   WLAYOUT_PLANNED   a pipe: every grain is planned first (two passes
 *                     over a seekable input, or grains parked in the
 *                     store), so begin() can write the metadata before
 *                     the data
 *
 * In every layout the core records the plan (the grains that hold data,
 * with their encoded lengths); wplan_first/wplan_next walk it in
 * ascending order: in begin() for WLAYOUT_PLANNED, in finish() for all.
 */
#ifndef IMGPIPE_WRITER_H
#define IMGPIPE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "imgpipe/cache_gauge.h"

struct stash;
struct wimage;
struct workers;

/* Pieces of grain data a wfile gathers into one write. */
#define WFILE_IOV_MAX 64

enum wlayout {
	WLAYOUT_STREAM,
	WLAYOUT_SEEKABLE,
	WLAYOUT_PLANNED,
};

/* Writer flags. */
/* metadata can follow its data, or needs nothing but the size */
#define WRITER_STREAMS	(1u << 0)
#define WRITER_SIZE_LATE (1u << 1)	/* the size is needed only by finish */
/* ... when the output seeks (a stream VMDK writes its head last then) */
#define WRITER_SIZE_LATE_SEEKABLE (1u << 2)
/*
 * The disk's bytes lie in the output as they are, from w->data_at (set by
 * setup or begin), and put does nothing but place them there: zeros as
 * holes in a file, as zero bytes in a stream (a fixed VHD or VHDX, a
 * static VDI).  With WRITER_STREAMS, the core may then place the data
 * itself, by the raw paths (a raw file's data runs copied whole), between
 * begin and finish, and call put not at all.
 */
#define WRITER_DATA_IN_PLACE (1u << 3)

struct writer {
	const char *name;	/* "qcow2" */
	size_t state_size;	/* bytes of w->priv, allocated zeroed */
	unsigned flags;
	/*
	 * Check the options (w->opts) and the virtual size against the
	 * format's limits; set w->grain (a multiple of 512, at most
	 * WRITER_GRAIN_MAX), w->max_size, and w->encoded_max when grains are
	 * to be encoded (with these options: 0 leaves them as they are);
	 * w->flags may drop what fmt->flags says for these options.
	 * Called once w->virtual_size is known, or with w->size_known false
	 * when WRITER_SIZE_LATE allows starting without it.
	 */
	int (*setup)(struct wimage *w);
	/*
	 * Optional: encode grain index (compress it, frame it) on a pool
	 * thread.  Returns the bytes written to out (at most w->encoded_max),
	 * or 0 to store the grain as it is.  coder: what coder_new gave this
	 * thread.  Deterministic: the same grain gives the same bytes on
	 * every thread.
	 */
	void *(*coder_new)(const struct wimage *w);
	void (*coder_free)(void *coder);
	size_t (*encode)(const struct wimage *w, void *coder, uint64_t index,
	    const unsigned char *in, size_t len, unsigned char *out);
	/* Before the first grain. */
	int (*begin)(struct wimage *w);
	/*
	 * Grain index, ascending.  data: len bytes, encoded when encoded
	 * is set, else one grain (the last one zero-padded); valid until put
	 * returns or, when written with wfile_put, until the core flushes.
	 * data NULL: len / grain zero grains from index on.
	 */
	int (*put)(struct wimage *w, uint64_t index, const unsigned char *data,
	    size_t len, bool encoded);
	/* After the last grain: the rest, and the output's length. */
	int (*finish)(struct wimage *w);
	void (*close)(struct wimage *w);	/* optional */
};

/* Grains are handed over in batches; this keeps a batch in bounds. */
#define WRITER_GRAIN_MAX (2u << 20)

/*
 * The output: positioned writes to a file, or a forward stream where a
 * write beyond the position pads with zeros and going back is an error.
 */
struct wfile {
	int fd;
	const char *name;
	bool seekable;
	uint64_t pos;		/* streams: bytes written */
	uint64_t end;		/* the highest byte written + 1 */
	uint64_t prior_size;	/* a file's length before we started */
	size_t call_max;	/* the most one write takes (a disk's file) */
	/* writes of grain data gathered until the core flushes */
	struct iovec iov[WFILE_IOV_MAX];
	int niov;
	uint64_t iov_off, iov_len;
	/* a file on a disk: through the page cache, then behind from ... */
	bool gauged;
	struct cache_gauge gauge;
	bool write_behind;
	uint64_t behind_from;
	uint64_t unkicked;	/* bytes written since write-back started */
	struct workers *halves;	/* large writes to a file, in two halves */
	bool one_thread;	/* -j 1: not in halves */
};

/*
 * fd is seekable when a regular file at offset 0, not appending.  A file
 * on a disk goes through the page cache while that is fast, then is
 * written behind (its pages given back as it goes), unless read_back:
 * the caller reads it back (ovacreate's temporary VMDK), so its pages
 * stay cached.
 */
void wfile_init(struct wfile *f, int fd, const char *name, bool read_back);
/* Stop the threads a file's writes started. */
void wfile_free(struct wfile *f);
/* Write len bytes at off now (metadata, from the writer's own buffers). */
int wfile_write(struct wfile *f, const void *buf, size_t len, uint64_t off);
/*
 * Write grain data (put's data) at off; gathered with the writes it
 * continues and done by the next wfile_write, wfile_flush or wfile_end.
 */
int wfile_put(struct wfile *f, const void *buf, size_t len, uint64_t off);
/* Zeros at off: a hole in a fresh file, zero bytes in a stream. */
int wfile_zero(struct wfile *f, uint64_t off, uint64_t len);
int wfile_flush(struct wfile *f);
/* The output is size bytes long: a file's length set, a stream padded. */
int wfile_end(struct wfile *f, uint64_t size);

struct wimage {
	const struct writer *fmt;
	unsigned flags;		/* fmt->flags, which setup may change */
	const void *opts;	/* the format's options, from its program */
	void *priv;		/* the format's state */
	enum wlayout layout;
	bool size_known;
	uint64_t virtual_size;	/* a multiple of 512 once known */
	uint32_t grain;		/* set by setup */
	size_t encoded_max;	/* set by setup when the format encodes */
	uint64_t max_size;	/* set by setup: the largest virtual size the
				 * format takes with these options, 0: any */
	uint64_t data_at;	/* WRITER_DATA_IN_PLACE: where byte 0 goes */
	struct wfile *out;
	struct stash *store;	/* the parking store (plan, parked grains) */
	struct wplan *plan;
	/* the first size asked for, and the last rounding (see below) */
	uint64_t rounded_from, rounded_to;
	const char *rounded_why;
};

/* The plan: walk the grains that hold data, ascending. */
struct wplan_iter {
	struct wplan *plan;
	size_t chunk;		/* next chunk to load */
	unsigned char *buf;	/* the loaded chunk */
	size_t pos, len;
	uint64_t index;		/* index of the next grain of the run */
	uint64_t left;		/* grains left in the run */
	bool started;
};

uint64_t wplan_count(const struct wimage *w);	/* grains with data */
int wplan_first(struct wimage *w, struct wplan_iter *it);
/* 1 and the next grain (elen 0: stored plain), 0 at the end, -1 error. */
int wplan_next(struct wplan_iter *it, uint64_t *index, uint32_t *elen);
void wplan_done(struct wplan_iter *it);

/*
 * The virtual size was rounded up from `from` to `to` because of `why`
 * ("a multiple of 512 bytes"): said on stderr once the output is complete.
 */
void writer_notice_rounded(struct wimage *w, uint64_t from, uint64_t to,
    const char *why);

/*
 * A table generated from the plan, 64 KiB at a time (a BAT, a block map):
 * nslots entries of entry_size bytes written at off, then pad bytes up
 * to len.  The disk is cut into units of grains_per_unit grains (a block
 * of several grains, or one); unit u has its entry in slot slot_of(u)
 * (NULL: slot u).  entry() writes the entry of slot s: k is the rank of
 * the unit there among the units that hold data (0 for the first such
 * unit), or WTABLE_EMPTY for a slot whose unit holds none, or that no
 * unit maps to.
 */
#define WTABLE_EMPTY UINT64_MAX

struct wtable {
	uint64_t off;
	uint64_t nslots;
	uint32_t entry_size;
	uint64_t len;			/* at least nslots * entry_size */
	unsigned char pad;
	uint64_t grains_per_unit;
	uint64_t (*slot_of)(const void *ctx, uint64_t unit);
	void (*entry)(const void *ctx, unsigned char *p, uint64_t slot,
	    uint64_t k);
	const void *ctx;
};

int wtable_write(struct wimage *w, const struct wtable *t);
/* The units of grains_per_unit grains that hold data, from the plan. */
int wplan_units(struct wimage *w, uint64_t grains_per_unit, uint64_t *n);

#endif
