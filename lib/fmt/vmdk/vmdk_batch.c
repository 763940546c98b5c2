/*
 * Compressed grains inflated in batches on every core (inflate_pool.h):
 * the grains of a stream (by markers, or by tables from a file) are
 * queued with what must be emitted before each, inflated together, then
 * emitted in the order they were queued.  A grain libdeflate does not
 * take goes through vmdk_inflate (zlib), which says why in its usual
 * words.  An error met while grains wait (a later marker's check) is
 * reported only after them, so the first error in the image's order wins,
 * as when each grain was inflated as it came.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

struct vmdk_queued {
	uint64_t gi;
	uint64_t where;		/* its marker */
	uint64_t upto;		/* the disk below this is complete: say so first */
};

/*
 * Batches for a conversion of compressed grains (by tables from a file,
 * by markers from a file or a pipe: the reads are the same, into the
 * batch); walking or inspecting, nothing is inflated.
 */
int vmdk_batch_start(struct image *img, struct vmdk *v, struct vmdk_batch *b)
{
	memset(b, 0, sizeof *b);
	if (img->walk || img->inspect || !(v->h.flags & VMDK_FLAG_COMPRESSED))
		return 0;
	if (inflate_pool_init(&b->pool, INFLATE_ZLIB_OR_RAW, v->grain_bytes,
	    v->cmax + VMDK_SECTOR, img->threads) < 0) {
		inflate_pool_free(&b->pool);
		return -1;
	}
	b->q = calloc(b->pool.cap, sizeof *b->q);
	if (b->q == NULL) {
		inflate_pool_free(&b->pool);
		return fail(EXIT_IO, "out of memory");
	}
	b->on = true;
	return 0;
}

void vmdk_batch_end(struct vmdk_batch *b)
{
	if (b->on)
		inflate_pool_free(&b->pool);
	free(b->q);
	memset(b, 0, sizeof *b);
}

/* Emit inflated grain gi, clipped to the capacity (vmdk_emit_grain). */
static int vmdk_emit_inflated(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, const unsigned char *buf, size_t len)
{
	uint64_t off = gi * v->grain_bytes;

	if (off >= img->virtual_size)
		return 0;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	return vmdk_emit_data(v, em, off, buf, len);
}

static int vmdk_batch_emit(struct image *img, struct vmdk *v,
    struct emitter *em, const struct vmdk_queued *q,
    const struct inflate_item *it)
{
	int64_t n;

	if (q->upto > 0 && vmdk_emit_upto(v, em, q->upto) < 0)
		return -1;
	if (it->ok)
		return vmdk_emit_inflated(img, v, em, q->gi, it->out,
		    it->outlen);
	n = vmdk_inflate(img, v, it->in, it->inlen, q->where);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, q->gi, n);
}

int vmdk_batch_flush(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_batch *b)
{
	int rc = 0;

	if (!b->on || b->pool.n == 0)
		return 0;
	inflate_pool_run(&b->pool);
	for (size_t i = 0; i < b->pool.n && rc == 0; i++)
		rc = vmdk_batch_emit(img, v, em, &b->q[i], &b->pool.items[i]);
	inflate_pool_clear(&b->pool);
	return rc;
}

int vmdk_batch_fail(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_batch *b)
{
	struct err_saved later;

	if (!b->on || b->pool.n == 0)
		return -1;
	err_save(&later);
	err_clear();
	if (vmdk_batch_flush(img, v, em, b) == 0)
		err_restore(&later);
	return -1;
}

unsigned char *vmdk_batch_room(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_batch *b, size_t len)
{
	unsigned char *p = inflate_pool_room(&b->pool, len);

	if (p != NULL)
		return p;
	if (vmdk_batch_flush(img, v, em, b) < 0)
		return NULL;
	return inflate_pool_room(&b->pool, len);
}

void vmdk_batch_push(struct vmdk_batch *b, size_t len, uint32_t csize,
    uint64_t gi, uint64_t where, uint64_t upto)
{
	struct vmdk_queued *q = &b->q[b->pool.n];
	struct inflate_item *it = inflate_pool_add(&b->pool, len);

	it->inlen = csize;	/* the room ran to the end of its sector */
	q->gi = gi;
	q->where = where;
	q->upto = upto;
}
