/* Shared between the files of lib/fmt, not part of the public interface. */
#ifndef IMGPIPE_FMT_H
#define IMGPIPE_FMT_H

#include "imgpipe/format.h"

/* The raw reader, also used for formats that are raw underneath (iso). */
int raw_open(struct image *img);
int raw_read(struct image *img, struct emitter *em);

/*
 * From a pipe: emit the input (chunk bytes a read, into buf of chunk +
 * STREAM_TAIL bytes) but for its last STREAM_TAIL bytes, left at buf: a
 * trailer (a fixed VHD's footer) shows only at the end of a pipe.  Sets
 * em->size to unknown; *emitted and *taillen say what was seen.
 */
#define STREAM_TAIL 512
int image_stream_hold_tail(struct image *img, struct emitter *em,
    unsigned char *buf, size_t chunk, uint64_t *emitted, size_t *taillen);

/*
 * Ask the format table whether the last taillen bytes of an input read as
 * raw, after data_len bytes, are another format's trailer: its length, 0,
 * or SIZE_MAX with a rejection recorded (a trailer that does not check out).
 */
size_t format_trailer(const unsigned char *tail, size_t taillen,
    uint64_t data_len);

/* Ascending: host offsets, or (host << 32 | virtual) pairs. */
void sort_u64(uint64_t *v, size_t n);

/*
 * order[i] holds a virtual index in its low 32 bits, in the order a pipe
 * meets the data.  lowest[i] = the lowest index among order[i..n-1]
 * (none at n): after order[i - 1] is read, the disk below lowest[i] is
 * complete, which emit_upto() can be told.  NULL when out of memory.
 */
uint32_t *lowest_after(const uint64_t *order, uint64_t n, uint32_t none);

/*
 * Which host units (clusters, blocks) a reader's tables use, to find a
 * unit used twice the same way from a file and from a pipe: data twice is
 * FINDING_SHARED_BLOCK, data or metadata on metadata FINDING_OVERLAP.
 * Two bits per unit, grown on demand up to IMAGE_META_MAX bytes (2^28
 * units); units beyond are not tracked.  Zero-initialise, set unit.
 */
enum host_use { HOST_FREE, HOST_META, HOST_DATA };
struct host_claims {
	uint64_t unit;		/* bytes per unit */
	unsigned char *bits;
	uint64_t nbytes;
};
/* Claim [off, off + len) for use; what names it in a message. */
int host_claim(struct image *img, struct host_claims *c, uint64_t off,
    uint64_t len, enum host_use use, const char *what);
void host_claims_free(struct host_claims *c);

#endif
