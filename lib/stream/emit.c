#include <stdlib.h>
#include <string.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/zero.h"

/* At 40 bytes each, this caps the queue of parked extents at 40 MiB. */
#define PENDING_MAX (1u << 20)

struct pending {
	uint64_t off;
	uint64_t len;
	bool zero;
	struct stash_ref ref;
};

void emitter_init(struct emitter *em, struct sink *sk, struct stash *st,
    uint64_t size)
{
	memset(em, 0, sizeof *em);
	em->sink = sk;
	em->stash = st;
	em->size = size;
	em->zero_block = EMIT_ZERO_BLOCK;
}

void emitter_free(struct emitter *em)
{
	size_t i;

	for (i = 0; i < em->npending; i++)
		if (!em->heap[i].zero)
			stash_drop(em->stash, &em->heap[i].ref);
	free(em->heap);
	em->heap = NULL;
	em->npending = em->cappending = 0;
}

static int check_range(struct emitter *em, uint64_t off, uint64_t len)
{
	if (off > em->size || len > em->size - off)
		return fail(EXIT_REJECT, "extent at 0x%llx+0x%llx lies past "
		    "the virtual size 0x%llx", (unsigned long long)off,
		    (unsigned long long)len, (unsigned long long)em->size);
	return 0;
}

static int sink_data(struct emitter *em, uint64_t off, const void *buf,
    size_t len)
{
	em->data_bytes += len;
	return em->sink->write(em->sink, off, buf, len);
}

static int sink_zero(struct emitter *em, uint64_t off, uint64_t len)
{
	em->zero_bytes += len;
	return em->sink->zero(em->sink, off, len);
}

/*
 * Hand data to the sink as runs of data and zero blocks.  Blocks are
 * aligned to virtual offsets, so the same disk splits the same way
 * whatever the format it came from.
 */
static int deliver_data(struct emitter *em, uint64_t off, const void *buf,
    size_t len)
{
	const unsigned char *p = buf;
	size_t bs = em->zero_block, run = 0, n;
	bool run_zero = false, z;

	if (bs == 0 || em->sink->no_zero_split)
		return sink_data(em, off, buf, len);
	while (run < len) {
		n = bs - (off + run) % bs;
		if (n > len - run)
			n = len - run;
		z = is_zero(p + run, n);
		if (run > 0 && z != run_zero) {
			if ((run_zero ? sink_zero(em, off, run)
			    : sink_data(em, off, p, run)) < 0)
				return -1;
			off += run;
			p += run;
			len -= run;
			run = 0;
		}
		run_zero = z;
		run += n;
	}
	if (len == 0)
		return 0;
	return run_zero ? sink_zero(em, off, len) : sink_data(em, off, p, len);
}

static void heap_swap(struct pending *a, struct pending *b)
{
	struct pending t = *a;

	*a = *b;
	*b = t;
}

static int heap_push(struct emitter *em, const struct pending *pe)
{
	size_t i;

	if (em->npending == em->cappending && em->npending >= PENDING_MAX)
		return fail(EXIT_REJECT, "too many out-of-order extents "
		    "(more than %u)", PENDING_MAX);
	if (grow_array(&em->heap, em->npending, &em->cappending,
	    sizeof *em->heap, 64, SIZE_MAX) < 0)
		return -1;
	i = em->npending++;
	em->heap[i] = *pe;
	while (i > 0 && em->heap[(i - 1) / 2].off > em->heap[i].off) {
		heap_swap(&em->heap[(i - 1) / 2], &em->heap[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

static void heap_pop(struct emitter *em, struct pending *out)
{
	size_t i = 0, c;

	*out = em->heap[0];
	em->heap[0] = em->heap[--em->npending];
	for (;;) {
		c = 2 * i + 1;
		if (c >= em->npending)
			break;
		if (c + 1 < em->npending && em->heap[c + 1].off < em->heap[c].off)
			c++;
		if (em->heap[i].off <= em->heap[c].off)
			break;
		heap_swap(&em->heap[i], &em->heap[c]);
		i = c;
	}
}

static int deliver_pending(struct emitter *em, struct pending *pe)
{
	unsigned char *buf;
	int rc;

	if (pe->zero)
		return sink_zero(em, pe->off, pe->len);
	buf = malloc(pe->len ? pe->len : 1);
	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = stash_take(em->stash, &pe->ref, buf);
	if (rc == 0)
		rc = deliver_data(em, pe->off, buf, pe->len);
	free(buf);
	return rc;
}

/* Deliver whatever now continues at the cursor. */
static int drain(struct emitter *em)
{
	struct pending pe;
	uint64_t gap_end;

	for (;;) {
		if (em->npending > 0 && em->heap[0].off <= em->cursor) {
			heap_pop(em, &pe);
			if (pe.off < em->cursor) {
				if (!pe.zero)
					stash_drop(em->stash, &pe.ref);
				return fail(EXIT_REJECT, "two extents overlap at "
				    "virtual offset 0x%llx",
				    (unsigned long long)pe.off);
			}
			if (deliver_pending(em, &pe) < 0)
				return -1;
			em->cursor += pe.len;
			continue;
		}
		gap_end = em->npending > 0 && em->heap[0].off < em->known
		    ? em->heap[0].off : em->known;
		if (gap_end <= em->cursor)
			return 0;
		if (sink_zero(em, em->cursor, gap_end - em->cursor) < 0)
			return -1;
		em->cursor = gap_end;
	}
}

static int park(struct emitter *em, uint64_t off, uint64_t len,
    const void *buf)
{
	struct pending pe = { .off = off, .len = len, .zero = buf == NULL };

	if (buf != NULL && stash_put(em->stash, buf, len, &pe.ref) < 0)
		return -1;
	if (heap_push(em, &pe) < 0) {
		if (buf != NULL)
			stash_drop(em->stash, &pe.ref);
		return -1;
	}
	return 0;
}

int emit_data(struct emitter *em, uint64_t off, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (check_range(em, off, len) < 0)
		return -1;
	if (!em->sink->in_order)
		return deliver_data(em, off, buf, len);
	if (off < em->cursor)
		return fail(EXIT_REJECT, "data at virtual offset 0x%llx "
		    "overlaps data already written", (unsigned long long)off);
	if (off > em->cursor)
		return park(em, off, len, buf);
	if (deliver_data(em, off, buf, len) < 0)
		return -1;
	em->cursor += len;
	return drain(em);
}

int emit_zero(struct emitter *em, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (check_range(em, off, len) < 0)
		return -1;
	if (!em->sink->in_order)
		return sink_zero(em, off, len);
	if (off < em->cursor)
		return fail(EXIT_REJECT, "zero extent at virtual offset 0x%llx "
		    "overlaps data already written", (unsigned long long)off);
	if (off > em->cursor)
		return park(em, off, len, NULL);
	if (sink_zero(em, off, len) < 0)
		return -1;
	em->cursor += len;
	return drain(em);
}

int emit_upto(struct emitter *em, uint64_t off)
{
	if (!em->sink->in_order)
		return 0;
	if (off > em->size)
		off = em->size;
	if (off > em->known)
		em->known = off;
	return drain(em);
}

int emit_finish(struct emitter *em)
{
	if (em->sink->in_order) {
		em->known = em->size;
		if (drain(em) < 0)
			return -1;
		if (em->npending > 0)
			return fail(EXIT_REJECT, "extents overlap near virtual "
			    "offset 0x%llx", (unsigned long long)em->heap[0].off);
	}
	return em->sink->finish(em->sink, em->size);
}
