/*
 * Input source: a file descriptor that may or may not seek, optionally
 * behind a decompression filter.  The first SOURCE_HEAD_MAX bytes are kept
 * for probing, so probing a pipe consumes nothing.
 */
#ifndef IMGPIPE_SOURCE_H
#define IMGPIPE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "progress.h"

#define SOURCE_HEAD_MAX (64 * 1024)
/* source_retain(): keep nothing more, release everything kept. */
#define SOURCE_RETAIN_NONE UINT64_MAX
/* Bytes kept from a stream are stored in pieces of at most this size. */
#define SOURCE_KEPT_PIECE (64 * 1024)

struct archive;
struct stash;
struct source_kept;

struct source {
	int fd;
	const char *name;	/* for messages */
	bool seekable;		/* positioned reads work */
	bool size_known;
	uint64_t size;		/* total length when size_known */
	uint64_t pos;		/* stream position: bytes consumed so far */
	uint64_t base;		/* fd offset of byte 0 (stdin may start mid-file) */
	unsigned char *head;	/* the first headlen bytes of the (decoded) input */
	size_t headlen;
	struct archive *ar;	/* decompression filter, or NULL */
	const char *filter;	/* "gzip", "xz", "zstd", "bzip2" or NULL */
	int filter_errno;	/* a read error under the filter, or 0 */
	bool raw_eof;		/* fd (or filter) reached end of file */
	bool owns_fd;
	struct progress *progress;	/* counts bytes consumed, or NULL */
	/*
	 * What the meter counts, and its total when the job gave none: a
	 * compressed file or pipe counts its bytes as they arrive (pv's
	 * view), against the file's size; a zstd frame from a pipe that
	 * declares its decoded size counts decoded bytes against that.
	 */
	bool meter_raw;
	uint64_t meter_total;	/* 0: unknown */
	uint64_t raw_in;	/* compressed bytes fed to the filter so far */
	/* --extents: a VMDK descriptor read from this path may open the
	 * extent files beside it (set by the program after opening) */
	bool sibling_extents;
	/* Retention (streams): bytes kept behind the stream position. */
	struct stash *keep_stash;
	uint64_t keep_from;	/* keep passing bytes at or after this */
	bool keep_stopped;	/* source_retain_stop(): keep no more */
	struct source_kept *kept;	/* pieces by offset; some released */
	size_t nkept, capkept;
	size_t kept_first;	/* pieces before this are all released */
	size_t kept_dead;	/* released pieces still in the array */
	uint64_t kept_bytes;	/* bytes held for retention */
	uint64_t kept_peak;	/* its peak (IMGPIPE_STASH_STATS reports it) */
	/* source_extent_at()'s last answer: [map_from, map_data) a hole,
	 * [map_data, map_end) data */
	uint64_t map_from, map_data, map_end;
};

/* path NULL or "-" is standard input.  Detects and decodes compression. */
int source_open(struct source *s, const char *path);
/* The bytes as they are, even if they look compressed (imgsparse). */
int source_open_plain(struct source *s, const char *path);
/* Takes an open fd; never closes it unless owns_fd is set afterwards. */
int source_open_fd(struct source *s, int fd, const char *name);
/* The same, for bytes as they are (a VMDK flat extent). */
int source_open_fd_plain(struct source *s, int fd, const char *name);
/* Treat the source as a pipe even if it seeks (tests, fuzzing). */
void source_force_stream(struct source *s);
void source_close(struct source *s);

/*
 * Read len bytes at off.  Seekable: positioned read, any order.  Stream:
 * bytes at or after pos are read (the bytes in between skipped); bytes
 * behind pos come from what source_retain() kept, or from the head
 * (the first SOURCE_HEAD_MAX bytes); a range may start behind pos and
 * go on ahead.  Behind pos and not kept: EXIT_REJECT, "WHAT at 0xOFF lies
 * behind data already read from the stream".  Short input is an error
 * (EXIT_REJECT, "truncated"); what names the thing being read.
 */
int source_read_at(struct source *s, void *buf, size_t len, uint64_t off,
    const char *what);
/*
 * Forward read of up to len bytes from the stream position; returns the
 * number read, 0 at end of input, -1 on error.  Works on any source.
 */
ssize_t source_read(struct source *s, void *buf, size_t len);
/*
 * After a whole image has been read from a stream: read the rest of it,
 * discarding it, so that the program writing into our pipe finishes its
 * writes rather than meet a closed pipe (EPIPE, SIGPIPE: a failure under
 * `set -o pipefail`, and for ovaextract, which checks a member's digest
 * once it has written it whole), and a compressed stream is checked to
 * its trailer.  0, or -1 on a read error (recorded).  A positioned
 * input: nothing to do.
 */
int source_drain(struct source *s);
/*
 * Splicing (readers do it through image_copy_range): a plain stream
 * whose bytes [off, off + len) can be taken from the fd itself, moved in
 * the kernel.  source_splice_from() goes to off as source_read_at()
 * would (its messages) and returns the fd; or -2 when they cannot (a
 * decoded, seekable or non-blocking input; bytes in the head, behind
 * the position or to be kept by source_retain()), nothing done; or -1
 * on error.  source_spliced(): got of them were moved (fewer than len
 * only at the end of the input); a short count is the truncation
 * source_read_at() reports for those bytes.
 */
int source_splice_from(struct source *s, uint64_t off, size_t len,
    const char *what);
int source_spliced(struct source *s, uint64_t off, size_t len, size_t got,
    const char *what);
/*
 * -p: bytes [off, off + len) were read past source_read_at() (cloned, or
 * read on a writer's thread): count them as it would.
 */
void source_meter(struct source *s, uint64_t off, uint64_t len);
/* Back to offset 0 for a second pass (seekable, undecoded sources). */
int source_rewind(struct source *s);
/* Advance the stream position to off (>= pos); 0, or -1 (truncated). */
int source_skip_to(struct source *s, uint64_t off);
/*
 * For seekable plain files: the next data region at or after off, using
 * SEEK_DATA/SEEK_HOLE.  Sets *start,*end; returns 1 if found, 0 if only a
 * hole remains, -1 on error.  Without hole support, reports all as data.
 */
int source_next_data(struct source *s, uint64_t off, uint64_t *start,
    uint64_t *end);
/*
 * For a plain file: how many of the len bytes at off (inside the file)
 * are one hole (*hole set) or one run of data, at least 1.  Remembers
 * the region last asked about, so a file without holes costs two lseeks
 * in all.  Anything else, or a file system without SEEK_HOLE: all data.
 */
uint64_t source_extent_at(struct source *s, uint64_t off, uint64_t len,
    bool *hole);

/*
 * Retention: read-ahead/consume for readers of streams, so that no format
 * keeps a buffer of its own (libarchive's model).  A reader that meets
 * data before the table that places it asks the source to keep what
 * passes, reads it back with source_read_at() once the table has come,
 * and says when it will not read it again:
 *
 *	source_retain(src, img->stash, 0);	   before the tables are known
 *	... source_read_at() forward: tables and data pass and are kept ...
 *	source_read_at(src, buf, len, host, "data"); a table placed it:
 *	source_release(src, host, len);		   behind pos, from the store
 *	source_retain(src, st, SOURCE_RETAIN_NONE);  every table is read
 *
 * source_retain(src, st, off): from now on, bytes at or after off that
 * pass the stream position (read or skipped) are kept in the stash st
 * (memory up to its budget, then its spill file; the index is charged to
 * the budget).  Kept bytes below off are released, so moving off forward
 * releases what lies behind it; SOURCE_RETAIN_NONE stops keeping and
 * releases everything.  0, or -1 with the error recorded.
 *
 * source_release(src, off, len): bytes [off, off + len) will not be read
 * again: what is kept of them is given back (in whole pieces of
 * SOURCE_KEPT_PIECE bytes, once every byte of a piece is released).
 * Bytes not yet passed are not affected.  A released byte may still be
 * served until its whole piece is released; a reader must not count on it.
 *
 * A reader stops retention (SOURCE_RETAIN_NONE) when it has read every
 * table, and in its close callback at the latest: programs drain a pipe
 * after the reader is done (imginfo), and must not keep what they drain.
 *
 * On a seekable source both do nothing: every byte can be read again.
 * The bytes of the head are always there and are never kept twice.
 */
int source_retain(struct source *s, struct stash *st, uint64_t off);
void source_release(struct source *s, uint64_t off, uint64_t len);
/*
 * Keep nothing more of what passes from now on; what is kept stays, to be
 * read back and released (a reader whose tables are all read, with data
 * behind the position still to read: what comes next is read once, in
 * order).  source_retain() starts keeping again.
 */
void source_retain_stop(struct source *s);

#endif
