#include <stdlib.h>
#include <string.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/zero.h"

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
		stash_drop(em->stash, &em->heap[i].ref);
	if (em->have_open)
		stash_drop(em->stash, &em->open.ref);
	em->have_open = false;
	if (em->cappending > 0)
		stash_charge(em->stash, -(int64_t)(em->cappending *
		    sizeof *em->heap + STASH_MALLOC_OVERHEAD));
	free(em->heap);
	em->heap = NULL;
	em->npending = em->cappending = 0;
	if (em->xfer != NULL)
		stash_charge(em->stash, -(int64_t)(em->xfer_size +
		    STASH_MALLOC_OVERHEAD));
	free(em->xfer);
	em->xfer = NULL;
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

static void heap_swap(struct emit_pending *a, struct emit_pending *b)
{
	struct emit_pending t = *a;

	*a = *b;
	*b = t;
}

static int heap_push(struct emitter *em, const struct emit_pending *pe)
{
	size_t i;

	if (stash_grow_array(em->stash, &em->heap, em->npending,
	    &em->cappending, sizeof *em->heap, 64) < 0)
		return -1;
	i = em->npending++;
	em->heap[i] = *pe;
	while (i > 0 && em->heap[(i - 1) / 2].off > em->heap[i].off) {
		heap_swap(&em->heap[(i - 1) / 2], &em->heap[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

static void heap_pop(struct emitter *em, struct emit_pending *out)
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

/* The buffer parked data goes to the sink through, counted in the budget. */
static int xfer_ready(struct emitter *em)
{
	size_t size = em->stash->budget / 8;

	if (em->xfer != NULL)
		return 0;
	if (size > EMIT_XFER_MAX)
		size = EMIT_XFER_MAX;
	if (size < 4096)
		size = 4096;
	if (stash_charge(em->stash, size + STASH_MALLOC_OVERHEAD) < 0)
		return -1;
	em->xfer = malloc(size);
	if (em->xfer == NULL) {
		stash_charge(em->stash, -(int64_t)(size +
		    STASH_MALLOC_OVERHEAD));
		return fail(EXIT_IO, "out of memory");
	}
	em->xfer_size = size;
	return 0;
}

/* Deliver a parked run (taken out of the queue), piece by piece. */
static int deliver_pending(struct emitter *em, struct emit_pending *pe)
{
	uint64_t off = pe->off;
	size_t n;

	if (pe->zero)
		return sink_zero(em, pe->off, pe->len);
	if (xfer_ready(em) < 0)
		goto fail;
	while (pe->ref.len > 0) {
		n = pe->ref.len < em->xfer_size ? pe->ref.len : em->xfer_size;
		if (stash_take_head(em->stash, &pe->ref, em->xfer, n) < 0 ||
		    deliver_data(em, off, em->xfer, n) < 0)
			goto fail;
		off += n;
	}
	return 0;
fail:
	stash_drop(em->stash, &pe->ref);
	return -1;
}

/* The parked run that starts lowest, or NULL. */
static const struct emit_pending *lowest(const struct emitter *em)
{
	const struct emit_pending *h = em->npending > 0 ? &em->heap[0] : NULL;

	if (em->have_open && (h == NULL || em->open.off < h->off))
		return &em->open;
	return h;
}

static void unpark_lowest(struct emitter *em, struct emit_pending *out)
{
	if (lowest(em) == &em->open) {
		*out = em->open;
		em->have_open = false;
	} else {
		heap_pop(em, out);
	}
}

/* Deliver whatever now continues at the cursor. */
static int drain(struct emitter *em)
{
	const struct emit_pending *lo;
	struct emit_pending pe;
	uint64_t gap_end;

	for (;;) {
		lo = lowest(em);
		if (lo != NULL && lo->off <= em->cursor) {
			unpark_lowest(em, &pe);
			if (pe.off < em->cursor) {
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
		gap_end = lo != NULL && lo->off < em->known ? lo->off : em->known;
		if (gap_end <= em->cursor)
			return 0;
		if (sink_zero(em, em->cursor, gap_end - em->cursor) < 0)
			return -1;
		em->cursor = gap_end;
	}
}

/*
 * An extent that continues the open run, just above or just below it,
 * grows it: 1 when it did, 0 when the extent does not continue it.
 */
static int grow_open(struct emitter *em, uint64_t off, uint64_t len,
    const void *buf)
{
	struct emit_pending *o = &em->open;

	if (!em->have_open || o->zero != (buf == NULL))
		return 0;
	if (off == o->off + o->len) {
		if (buf != NULL && stash_append(em->stash, &o->ref, buf,
		    len) < 0)
			return -1;
	} else if (off + len == o->off) {
		if (buf != NULL && stash_prepend(em->stash, &o->ref, buf,
		    len) < 0)
			return -1;
		o->off = off;
	} else {
		return 0;
	}
	o->len += len;
	return 1;
}

static int park(struct emitter *em, uint64_t off, uint64_t len,
    const void *buf)
{
	struct emit_pending pe = { .off = off, .len = len, .zero = buf == NULL };
	int rc = grow_open(em, off, len, buf);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (em->have_open && heap_push(em, &em->open) < 0)
		return -1;
	em->have_open = false;
	if (buf != NULL && stash_put(em->stash, buf, len, &pe.ref) < 0)
		return -1;
	em->open = pe;
	em->have_open = true;
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

int emit_buffer(struct emitter *em, uint64_t off, size_t *len,
    unsigned char **buf)
{
	*buf = NULL;
	if (em->sink->in_order || em->sink->lend == NULL || *len == 0)
		return 0;
	return em->sink->lend(em->sink, off, len, buf);
}

int emit_defer(struct emitter *em, int in, uint64_t in_off, uint64_t off,
    size_t *len, const char *label, uint64_t img_off)
{
	/* The sink splits on EMIT_ZERO_BLOCK, not on a block of the job's. */
	if (em->sink->in_order || em->sink->defer == NULL ||
	    em->zero_block != EMIT_ZERO_BLOCK || em->sink->no_zero_split ||
	    *len == 0) {
		*len = 0;
		return 0;
	}
	if (check_range(em, off, *len) < 0 ||
	    em->sink->defer(em->sink, in, in_off, off, len, label,
	    img_off) < 0)
		return -1;
	em->data_bytes += *len;
	return 0;
}

int emit_clone(struct emitter *em, int in, uint64_t in_off, uint64_t len,
    uint64_t off, uint64_t *from, uint64_t *to)
{
	*from = *to = off;
	if (em->sink->in_order || em->sink->clone == NULL || len == 0)
		return 0;
	if (check_range(em, off, len) < 0 ||
	    em->sink->clone(em->sink, in, in_off, len, off, from, to) < 0)
		return -1;
	em->data_bytes += *to - *from;
	return 0;
}

bool emit_splice_ready(const struct emitter *em, uint64_t off, size_t len)
{
	return em->sink->splice != NULL && em->sink->in_order && len > 0 &&
	    off == em->cursor && off <= em->size && len <= em->size - off;
}

int emit_splice(struct emitter *em, uint64_t off, int in, size_t len,
    size_t *moved)
{
	int rc = em->sink->splice(em->sink, off, in, len, moved);

	if (rc != 0)
		return rc;
	em->data_bytes += *moved;
	em->cursor += *moved;
	return *moved == len ? drain(em) : 0;
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
		if (lowest(em) != NULL)
			return fail(EXIT_REJECT, "extents overlap near virtual "
			    "offset 0x%llx", (unsigned long long)lowest(em)->off);
	}
	return em->sink->finish(em->sink, em->size);
}
