/*
 * A positioned writer on its own thread, so that reading the input and
 * writing the output overlap (two cores, two kinds of kernel copying).
 * Buffers are copied in: the caller may reuse its buffer at once.
 */
#ifndef IMGPIPE_ASYNC_WRITER_H
#define IMGPIPE_ASYNC_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct async_writer;

/* NULL (error recorded) when the thread or its buffers cannot be had. */
struct async_writer *async_writer_start(int fd, const char *name);
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
/* Wait for every queued write; report the first error; free w. */
int async_writer_finish(struct async_writer *w);

#endif
