/*
 * A positioned writer on threads of its own, so that reading the input and
 * writing the output overlap (two cores, two kinds of kernel copying).
 * Buffers are copied in: the caller may reuse its buffer at once.  Bytes
 * that are a run of an input file are better deferred: the writer's
 * threads read them in themselves, side by side.
 */
#ifndef IMGPIPE_ASYNC_WRITER_H
#define IMGPIPE_ASYNC_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct async_writer;

/*
 * threads: how many write (and read deferred pieces) side by side, at
 * most 16, 0 for the default (8); the file reads as zeros from fresh_from
 * on (what it held before).  NULL (error recorded) when no thread or
 * buffers can be had.
 */
struct async_writer *async_writer_start(int fd, const char *name,
    int threads, uint64_t fresh_from);
/* Queue a write; fails (EXIT_IO) if an earlier write failed. */
int async_pwrite(struct async_writer *w, const void *buf, size_t len,
    uint64_t off);
/*
 * Room in the writer's own buffers for the bytes of [off, off + *len): the
 * caller reads them there and then queues them with async_pwrite() (in
 * pieces, in order, gaps allowed), which copies nothing for them.  *len
 * may shrink.  NULL (error recorded) if an earlier write failed.
 */
unsigned char *async_lend(struct async_writer *w, uint64_t off, size_t *len);
/*
 * The bytes of [off, off + *len) are the *len bytes at in_off of the file
 * fd (open until async_writer_finish()): a writer thread preads them into
 * a slot, leaves out whole zero blocks the file holds as zeros already
 * (as the emitter would have), and writes the rest.  *len may shrink.  A
 * read that fails is recorded as source_read_at() would record it, label
 * (the format) and img_off (the bytes' offset in the image) naming the
 * bytes, when the caller next queues or finishes.  -1 (error recorded)
 * if an earlier write or read failed.
 */
int async_defer(struct async_writer *w, int fd, uint64_t in_off,
    uint64_t off, size_t *len, const char *label, uint64_t img_off);
/*
 * Add to *sum the bytes of deferred pieces left out as zeros (*sum is
 * final once async_writer_finish() has returned): the data a reader
 * that read them itself would have given the sink.
 */
void async_count_zeros(struct async_writer *w, uint64_t *sum);
/* Wait for every queued write; report the first error; free w. */
int async_writer_finish(struct async_writer *w);

#endif
