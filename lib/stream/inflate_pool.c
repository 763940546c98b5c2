/*
 * Batches of compressed grains and clusters inflated on every core
 * (include/imgpipe/inflate_pool.h).  Each item is one whole buffer, so
 * libdeflate, which wants the whole input and the room for the whole
 * output, decodes it in one call; zstd clusters are read as qcow2 reads
 * them, to a full cluster, whatever follows.
 */
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"
#include "imgpipe/inflate_pool.h"

static bool zlib_header(const unsigned char *in, size_t len)
{
	return len >= 2 && (in[0] & 0x0f) == 8 && (in[0] << 8 | in[1]) % 31 == 0;
}

static bool inflate_deflate(struct libdeflate_decompressor *d,
    enum inflate_kind kind, struct inflate_item *it, size_t out_cap)
{
	size_t used, got;
	enum libdeflate_result r;

	if (kind == INFLATE_ZLIB_OR_RAW && zlib_header(it->in, it->inlen))
		r = libdeflate_zlib_decompress_ex(d, it->in, it->inlen, it->out,
		    out_cap, &used, &got);
	else
		r = libdeflate_deflate_decompress_ex(d, it->in, it->inlen,
		    it->out, out_cap, &used, &got);
	it->outlen = got;
	return r == LIBDEFLATE_SUCCESS &&
	    (kind == INFLATE_ZLIB_OR_RAW || got == out_cap);
}

/* As qcow2_unzstd: until the cluster is full; what follows is not read. */
static bool inflate_zstd(ZSTD_DCtx *z, struct inflate_item *it,
    size_t out_cap)
{
	ZSTD_inBuffer ib = { it->in, it->inlen, 0 };
	ZSTD_outBuffer ob = { it->out, out_cap, 0 };
	size_t ret, before;

	ZSTD_DCtx_reset(z, ZSTD_reset_session_only);
	while (ob.pos < ob.size) {
		before = ib.pos + ob.pos;
		ret = ZSTD_decompressStream(z, &ob, &ib);
		if (ZSTD_isError(ret) || ib.pos + ob.pos == before)
			return false;
	}
	it->outlen = ob.pos;
	return true;
}

static void inflate_one(void *arg, int thread, size_t i)
{
	struct inflate_pool *p = arg;
	struct inflate_item *it = &p->items[i];

	if (p->kind == INFLATE_ZSTD_FULL)
		it->ok = inflate_zstd(p->dec[thread], it, p->out_cap);
	else
		it->ok = inflate_deflate(p->dec[thread], p->kind, it,
		    p->out_cap);
}

static void *decoder_new(enum inflate_kind kind)
{
	ZSTD_DCtx *z;

	if (kind != INFLATE_ZSTD_FULL)
		return libdeflate_alloc_decompressor();
	z = ZSTD_createDCtx();
	/* A window no larger than needed for 2 MiB clusters, as qcow2's. */
	if (z != NULL)
		ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 23);
	return z;
}

static void decoder_free(enum inflate_kind kind, void *d)
{
	if (kind == INFLATE_ZSTD_FULL)
		ZSTD_freeDCtx(d);
	else
		libdeflate_free_decompressor(d);
}

/* Items a batch holds: enough for every thread, within the bounds. */
static size_t batch_items(size_t out_cap, int threads)
{
	size_t cap = INFLATE_BATCH_OUT / out_cap;

	if (cap < (size_t)threads * 2)
		cap = (size_t)threads * 2;
	if (cap > INFLATE_BATCH_MAX / out_cap)
		cap = INFLATE_BATCH_MAX / out_cap;
	return cap < 1 ? 1 : cap;
}

int inflate_pool_init(struct inflate_pool *p, enum inflate_kind kind,
    size_t out_cap, size_t in_max, int threads)
{
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->out_cap = out_cap;
	p->threads = threads > 0 ? threads : workers_online();
	p->cap = batch_items(out_cap, p->threads);
	p->in_cap = INFLATE_BATCH_IN + in_max;
	p->items = calloc(p->cap, sizeof *p->items);
	p->in = bigbuf_alloc(p->in_cap);
	p->out = bigbuf_alloc(p->cap * out_cap);
	p->dec = calloc(p->threads, sizeof *p->dec);
	if (p->items == NULL || p->in == NULL || p->out == NULL ||
	    p->dec == NULL)
		return fail(EXIT_IO, "out of memory");
	for (int i = 0; i < p->threads; i++)
		if ((p->dec[i] = decoder_new(kind)) == NULL)
			return fail(EXIT_IO, "out of memory");
	if (workers_start(&p->w, p->threads) < 0)
		return -1;
	p->ready = true;
	return 0;
}

unsigned char *inflate_pool_room(struct inflate_pool *p, size_t len)
{
	if (p->n == p->cap || len > p->in_cap - p->in_len)
		return NULL;
	return p->in + p->in_len;
}

struct inflate_item *inflate_pool_add(struct inflate_pool *p, size_t len)
{
	struct inflate_item *it = &p->items[p->n];

	it->in = p->in + p->in_len;
	it->inlen = len;
	it->out = p->out + p->n * p->out_cap;
	it->outlen = 0;
	it->ok = false;
	p->in_len += len;
	p->n++;
	return it;
}

void inflate_pool_run(struct inflate_pool *p)
{
	workers_run(&p->w, p->n, inflate_one, p);
}

void inflate_pool_clear(struct inflate_pool *p)
{
	p->n = 0;
	p->in_len = 0;
}

void inflate_pool_free(struct inflate_pool *p)
{
	if (p->ready)
		workers_stop(&p->w);
	for (int i = 0; p->dec != NULL && i < p->threads; i++)
		if (p->dec[i] != NULL)
			decoder_free(p->kind, p->dec[i]);
	free(p->dec);
	free(p->items);
	bigbuf_free(p->in);
	bigbuf_free(p->out);
	memset(p, 0, sizeof *p);
}
