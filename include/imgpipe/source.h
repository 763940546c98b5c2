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

struct archive;

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
	/* --extents: a VMDK descriptor read from this path may open the
	 * extent files beside it (set by the program after opening) */
	bool sibling_extents;
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
 * off must be >= pos; the bytes in between are skipped.  Short input is an
 * error (EXIT_REJECT, "truncated"); what names the thing being read.
 */
int source_read_at(struct source *s, void *buf, size_t len, uint64_t off,
    const char *what);
/*
 * Forward read of up to len bytes from the stream position; returns the
 * number read, 0 at end of input, -1 on error.  Works on any source.
 */
ssize_t source_read(struct source *s, void *buf, size_t len);
/* Advance the stream position to off (>= pos); 0, or -1 (truncated). */
int source_skip_to(struct source *s, uint64_t off);
/*
 * For seekable plain files: the next data region at or after off, using
 * SEEK_DATA/SEEK_HOLE.  Sets *start,*end; returns 1 if found, 0 if only a
 * hole remains, -1 on error.  Without hole support, reports all as data.
 */
int source_next_data(struct source *s, uint64_t off, uint64_t *start,
    uint64_t *end);

#endif
