/*
 * Sinks consume extents.  A sink that needs virtual order (a pipe, a
 * digest, a map printer, a streaming writer) sets in_order; the emitter
 * then feeds it strictly ascending, contiguous extents.
 */
#ifndef IMGPIPE_SINK_H
#define IMGPIPE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zcopy.h"

struct sink {
	bool in_order;
	int (*write)(struct sink *sk, uint64_t off, const void *buf, size_t len);
	int (*zero)(struct sink *sk, uint64_t off, uint64_t len);
	/* size: the virtual size; all of [0,size) has been delivered. */
	int (*finish)(struct sink *sk, uint64_t size);
	/* Zeros cost this sink what data does (a pipe): do not split data. */
	bool no_zero_split;
	/*
	 * Optional, for sinks that take extents in any order.  lend: memory
	 * of the sink's own to read the bytes of [off, off + *len) into before
	 * they are written (then write copies nothing; *len may shrink), or
	 * *buf NULL.  clone: input bytes [in_off, in_off + len) of the
	 * regular file in go to [off, off + len) in the kernel, a clone where
	 * the file system shares blocks; [*from, *to) is what was done (whole
	 * blocks), the rest is the caller's.  Both -1 on error.
	 */
	int (*lend)(struct sink *sk, uint64_t off, size_t *len,
	    unsigned char **buf);
	int (*clone)(struct sink *sk, int in, uint64_t in_off, uint64_t len,
	    uint64_t off, uint64_t *from, uint64_t *to);
	/*
	 * Optional, for in-order sinks into a pipe: move up to len bytes
	 * from the fd in (a pipe, or a file at its position) to the output
	 * at off in the kernel (splice), stopping early only at the input's
	 * end; *moved: how many.  1 when the kernel will not splice this
	 * pair and nothing was moved (then copy them), 0, or -1 on error.
	 */
	int (*splice)(struct sink *sk, uint64_t off, int in, size_t len,
	    size_t *moved);
	/*
	 * Optional, for sinks into a file: [off, off + *len) are the *len
	 * bytes at in_off of the regular file in, which the sink reads itself
	 * on threads of its own (async_defer()); *len may shrink, 0 when the
	 * sink will not.  label and img_off name the bytes in a message.
	 */
	int (*defer)(struct sink *sk, int in, uint64_t in_off, uint64_t off,
	    size_t *len, const char *label, uint64_t img_off);
};

/* The raw disk to a file descriptor: holes when it seeks, zeros when not. */
struct raw_sink {
	struct sink base;
	int fd;
	const char *name;
	bool seekable;
	uint64_t prior_size;	/* file length before we started */
	uint64_t frontier;	/* seekable: the highest extent end so far */
	uint64_t pos;		/* stream sinks: bytes written */
	struct async_writer *writer;	/* seekable: writes on threads */
	struct zclone clone;	/* seekable: cloning from the input */
	bool fifo;		/* stream sinks: the output is a pipe */
};

/*
 * fd must be empty or positioned at 0 to be used seekably; an fd opened
 * for append or positioned elsewhere is treated as a stream.
 */
void raw_sink_init(struct raw_sink *rs, int fd, const char *name);
void raw_sink_force_stream(struct raw_sink *rs);
/*
 * Seekable sinks: write on threads of their own, overlapping the reading
 * (measured in test/bench/img2raw.sh), and read there what a reader
 * defers (emit_defer()); threads: how many (-j), 0 for the writer's
 * default.  Best effort: stays synchronous if no thread can be had.
 * raw_sink_close() must follow, on every path, before the input closes.
 */
void raw_sink_async(struct raw_sink *rs, int threads);
/* Wait for queued writes (after finish, or to give up); idempotent. */
void raw_sink_close(struct raw_sink *rs);

/* A sink that keeps nothing: for reading an image only to check it. */
void null_sink_init(struct sink *sk);

/* Full write with EINTR handling; write errors are EXIT_IO. */
int write_full(int fd, const void *buf, size_t len, const char *name);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
    const char *name);
/* Zeros at off in a file: a punched hole, or zero bytes written. */
int zero_range(int fd, uint64_t off, uint64_t len, const char *name);
/* Write len zero bytes to a stream. */
int write_zeros(int fd, uint64_t len, const char *name);
/*
 * The same into a pipe, in the kernel: its buffers refer to the pages of
 * zero_buf (vmsplice without SPLICE_F_GIFT; nothing ever writes them),
 * and the reader copies them from there.  Falls back to write_zeros.
 */
int pipe_zeros(int fd, uint64_t len, const char *name);

#endif
