/*
 * Compressed grains and clusters inflated in batches on every core
 * (lib/stream/inflate_pool.c), with libdeflate (and libzstd for qcow2's
 * zstd clusters).  A reader copies or reads each item's compressed bytes
 * into the room the pool gives, adds it, and runs the batch when the pool
 * is full or the reader must emit in order; then it takes the items in
 * the order they were added.
 *
 * The pool judges nothing: an item is ok or not.  An item that is not
 * goes back to the reader's own one-at-a-time decoder (zlib), which says
 * why in the words it always has, or takes it after all (qcow2 reads a
 * cluster's first bytes and ignores what follows, as qemu does).  So
 * output and verdicts are the same with any number of threads.
 *
 * Memory is fixed when the pool is made: INFLATE_BATCH_OUT bytes of
 * output (at least two items a thread, capped), INFLATE_BATCH_IN of input
 * plus one largest item.
 */
#ifndef IMGPIPE_INFLATE_POOL_H
#define IMGPIPE_INFLATE_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "workers.h"

#define INFLATE_BATCH_OUT (8u << 20)
#define INFLATE_BATCH_IN (4u << 20)
#define INFLATE_BATCH_MAX (64u << 20)	/* output, however many threads */

enum inflate_kind {
	/* VMDK grains: zlib-wrapped when the first two bytes are a zlib
	 * header (qemu, VMware), else raw deflate; up to out_cap bytes */
	INFLATE_ZLIB_OR_RAW,
	/* qcow2 clusters: raw deflate, or zstd, to exactly out_cap bytes */
	INFLATE_RAW_FULL,
	INFLATE_ZSTD_FULL,
};

struct inflate_item {
	const unsigned char *in;	/* in the pool's input buffer */
	size_t inlen;
	unsigned char *out;		/* out_cap bytes, the pool's */
	size_t outlen;			/* once run, and ok */
	bool ok;
};

struct inflate_pool {
	enum inflate_kind kind;
	size_t out_cap;
	size_t cap, n;			/* items a batch holds, and holds now */
	struct inflate_item *items;
	unsigned char *in, *out;
	size_t in_cap, in_len;
	int threads;
	void **dec;			/* a decompressor per thread */
	struct workers w;
	bool ready;
};

/*
 * out_cap: the most an item inflates to; in_max: the largest item's
 * compressed bytes; threads: 0 for every online processor.
 */
int inflate_pool_init(struct inflate_pool *p, enum inflate_kind kind,
    size_t out_cap, size_t in_max, int threads);
/* Room for the next item's len bytes, or NULL when the batch is full. */
unsigned char *inflate_pool_room(struct inflate_pool *p, size_t len);
/* Add the item whose len bytes were put in the room just given. */
struct inflate_item *inflate_pool_add(struct inflate_pool *p, size_t len);
/* Inflate every item added, on every thread. */
void inflate_pool_run(struct inflate_pool *p);
/* Forget the items: the next batch starts. */
void inflate_pool_clear(struct inflate_pool *p);
void inflate_pool_free(struct inflate_pool *p);

#endif
