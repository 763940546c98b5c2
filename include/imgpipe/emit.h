/*
 * The emitter sits between a reader and a sink.  Readers hand it extents in
 * any order; it splits data on zero blocks, and for in-order sinks places
 * each extent at the output cursor or parks it in the stash (the parking
 * store) until the cursor gets there.  Space no extent covered reads as
 * zeros.
 */
#ifndef IMGPIPE_EMIT_H
#define IMGPIPE_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"
#include "stash.h"

#define EMIT_ZERO_BLOCK 4096
/* Parked data goes to the sink through a buffer of at most this size. */
#define EMIT_XFER_MAX (256u * 1024)

/* An extent waiting for the cursor: zeros, or a run in the stash. */
struct emit_pending {
	uint64_t off;
	uint64_t len;
	bool zero;
	struct stash_ref ref;
};

/*
 * Extents that arrive ahead of the cursor wait as runs: an extent that
 * continues the run parked last (just above it, or just below it: a disk
 * written backwards) grows that run in the stash, so a million adjacent
 * extents are one run.  Other runs wait in a heap by offset.  The heap,
 * the buffer to the sink and the stash's records are all counted in the
 * stash's budget (--mem): there is no other cap on the queue.
 */
struct emitter {
	struct sink *sink;
	struct stash *stash;
	uint64_t size;		/* virtual size; extents must lie below it */
	size_t zero_block;	/* zero detection granularity; 0 disables */
	uint64_t cursor;	/* in-order sinks: bytes delivered */
	uint64_t known;		/* in-order sinks: below this, gaps are zero */
	struct emit_pending open;	/* the run parked last, if have_open */
	bool have_open;
	struct emit_pending *heap;	/* other runs: a min-heap by offset */
	size_t npending, cappending;
	unsigned char *xfer;	/* parked data on its way to the sink */
	size_t xfer_size;
	uint64_t data_bytes;	/* statistics: data and zero bytes delivered */
	uint64_t zero_bytes;
};

void emitter_init(struct emitter *em, struct sink *sk, struct stash *st,
    uint64_t size);
int emit_data(struct emitter *em, uint64_t off, const void *buf, size_t len);
int emit_zero(struct emitter *em, uint64_t off, uint64_t len);
/*
 * Promise that no extent below off is still to come: gaps below it are
 * zeros and can be delivered now.  Lets readers skip emitting zeros.
 */
int emit_upto(struct emitter *em, uint64_t off);
/*
 * For a reader about to read the bytes of [off, off + *len) and emit them
 * with emit_data(): where to read them, when the sink lends memory of its
 * own (then *len may shrink, and nothing is copied on the way), or NULL:
 * the reader's buffer.  -1 on error.
 */
int emit_buffer(struct emitter *em, uint64_t off, size_t *len,
    unsigned char **buf);
/*
 * Bytes [in_off, in_off + len) of the regular file in are the disk at
 * [off, off + len): the sink clones what it can in the kernel, no zero
 * detection, and sets [*from, *to), the part done (maybe empty); the
 * reader emits the rest.  -1 on error.
 */
int emit_clone(struct emitter *em, int in, uint64_t in_off, uint64_t len,
    uint64_t off, uint64_t *from, uint64_t *to);
/*
 * Splicing, for a reader about to read input bytes that go 1:1 to
 * [off, off + len): true when they may go from the input's fd to the
 * sink in the kernel instead (a pipe sink whose cursor is at off, the
 * range inside the disk).  Otherwise read and emit_data() them: that
 * path has the messages.
 */
bool emit_splice_ready(const struct emitter *em, uint64_t off, size_t len);
/*
 * Then move them from fd in (*moved: how many; fewer only at the
 * input's end, and then nothing more may be emitted), and deliver what
 * was waiting for them.  1: the kernel will not splice this pair and
 * nothing was moved (read and emit them).  -1 on error.
 */
int emit_splice(struct emitter *em, uint64_t off, int in, size_t len,
    size_t *moved);
/*
 * For a reader about to read the *len bytes at in_off of the regular file
 * in and emit them at off: the sink may take them as they are and read
 * them itself, on threads of its own, splitting zero blocks as
 * emit_data() does (then *len is what it took, maybe less); *len 0: the
 * reader reads and emits them.  label and img_off name them in a message
 * (source_read_at()'s, should the read fail).  -1 on error.
 */
int emit_defer(struct emitter *em, int in, uint64_t in_off, uint64_t off,
    size_t *len, const char *label, uint64_t img_off);
/* Everything has been emitted: deliver the rest and finish the sink. */
int emit_finish(struct emitter *em);
void emitter_free(struct emitter *em);

#endif
