/*
 * The emitter sits between a reader and a sink.  Readers hand it extents in
 * any order; it splits data on zero blocks, and for in-order sinks places
 * each extent at the output cursor or parks it in the stash until the
 * cursor gets there.  Space no extent covered reads as zeros.
 */
#ifndef IMGPIPE_EMIT_H
#define IMGPIPE_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"
#include "stash.h"

#define EMIT_ZERO_BLOCK 4096

struct pending;

struct emitter {
	struct sink *sink;
	struct stash *stash;
	uint64_t size;		/* virtual size; extents must lie below it */
	size_t zero_block;	/* zero detection granularity; 0 disables */
	uint64_t cursor;	/* in-order sinks: bytes delivered */
	uint64_t known;		/* in-order sinks: below this, gaps are zero */
	struct pending *heap;	/* out-of-order extents, min-heap by offset */
	size_t npending, cappending;
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
/* Everything has been emitted: deliver the rest and finish the sink. */
int emit_finish(struct emitter *em);
void emitter_free(struct emitter *em);

#endif
