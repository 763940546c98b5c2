/*
 * The writer sink: the core of every writer (include/imgpipe/writer.h).
 *
 * The emitter delivers the virtual disk in order, as data and zero
 * extents.  The sink cuts it into grains: a grain that received no data,
 * or only zeros, is left out; the others are copied into a slot of the
 * batch being filled.  A full batch is handed to the consumer thread,
 * which encodes it on the pool (the pool's threads and its own) and then
 * plans, parks or puts its grains in order, while the caller reads and
 * fills the next batch: reading never waits for encoding, nor encoding
 * for reading.  Encoding is per grain, so the output does not depend on
 * the number of threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/async_writer.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/outfile.h"
#include "imgpipe/workers.h"
#include "imgpipe/zero.h"
#include "stream/wplan.h"
#include "stream/wsink.h"

/* Raw bytes a batch holds: enough grains to keep every thread busy. */
#define BATCH_BYTES (4u << 20)

/*
 * Grains in order: data grains (data set, elen their encoded length or 0)
 * and runs of count zero grains (data NULL).
 */
struct wbatch {
	size_t cap;		/* slots */
	size_t nslots;		/* slots in use */
	size_t n, cape;		/* entries */
	uint64_t *index;
	uint64_t *count;
	unsigned char **data;
	uint32_t *elen;
	unsigned char *raw;	/* cap grains */
	unsigned char *enc;	/* cap encoded grains, when encoding */
};

/* The encoding pool: the workers, and a coder for each thread. */
struct wpool {
	const struct wimage *w;
	struct workers workers;
	bool started;
	int ncoders;		/* workers.nthreads, once the coders exist */
	void **coder;		/* one a thread: workers_fn's thread index */
	struct wbatch *b;	/* the batch being encoded */
};

uint64_t wimage_ngrains(const struct wimage *w)
{
	return w->virtual_size / w->grain + (w->virtual_size % w->grain != 0);
}

/* ---- batches ---- */

static int batch_init(struct wbatch *b, const struct wimage *w, bool encode,
    int threads)
{
	memset(b, 0, sizeof *b);
	b->cap = BATCH_BYTES / w->grain;
	if (b->cap < (size_t)threads * 2)
		b->cap = (size_t)threads * 2;
	b->cape = 2 * b->cap + 2;	/* zero runs between the grains */
	b->index = calloc(b->cape, sizeof *b->index);
	b->count = calloc(b->cape, sizeof *b->count);
	b->data = calloc(b->cape, sizeof *b->data);
	b->elen = calloc(b->cape, sizeof *b->elen);
	b->raw = bigbuf_alloc(b->cap * w->grain);
	if (encode)
		b->enc = bigbuf_alloc(b->cap * w->encoded_max);
	if (!b->index || !b->count || !b->data || !b->elen || !b->raw ||
	    (encode && !b->enc))
		return fail(EXIT_IO, "out of memory");
	return 0;
}

static void batch_free(struct wbatch *b)
{
	free(b->index);
	free(b->count);
	free(b->data);
	free(b->elen);
	bigbuf_free(b->raw);
	bigbuf_free(b->enc);
}

static bool batch_full(const struct wbatch *b)
{
	return b->nslots == b->cap || b->n + 2 > b->cape;
}

static void batch_add_data(struct wbatch *b, uint64_t index,
    unsigned char *slot)
{
	b->index[b->n] = index;
	b->count[b->n] = 1;
	b->data[b->n] = slot;
	b->elen[b->n] = 0;
	b->n++;
}

static void batch_add_zeros(struct wbatch *b, uint64_t index, uint64_t count)
{
	if (b->n > 0 && b->data[b->n - 1] == NULL &&
	    b->index[b->n - 1] + b->count[b->n - 1] == index) {
		b->count[b->n - 1] += count;
		return;
	}
	b->index[b->n] = index;
	b->count[b->n] = count;
	b->data[b->n] = NULL;
	b->n++;
}

/* ---- the encoding pool (include/imgpipe/workers.h) ---- */

/* workers_fn: item i of the batch, on a thread with a coder of its own. */
static void encode_item(void *arg, int thread, size_t i)
{
	struct wpool *p = arg;
	const struct wimage *w = p->w;
	struct wbatch *b = p->b;
	size_t slot;

	if (b->data[i] == NULL)
		return;		/* a run of zero grains */
	slot = (b->data[i] - b->raw) / w->grain;
	b->elen[i] = (uint32_t)w->fmt->encode(w, p->coder[thread], b->index[i],
	    b->data[i], w->grain, b->enc + slot * w->encoded_max);
}

static int pool_start(struct wpool *p, const struct wimage *w, int threads)
{
	int i;

	memset(p, 0, sizeof *p);
	p->w = w;
	if (workers_start(&p->workers, threads) < 0)
		return -1;
	p->started = true;
	p->coder = calloc(p->workers.nthreads, sizeof *p->coder);
	if (p->coder == NULL)
		return fail(EXIT_IO, "out of memory");
	p->ncoders = p->workers.nthreads;
	for (i = 0; i < p->ncoders; i++) {
		p->coder[i] = w->fmt->coder_new ? w->fmt->coder_new(w) : NULL;
		if (w->fmt->coder_new && p->coder[i] == NULL)
			return fail(EXIT_IO, "%s: cannot set up the encoder",
			    w->fmt->name);
	}
	return 0;
}

static void pool_stop(struct wpool *p)
{
	int i;

	if (p->started)
		workers_stop(&p->workers);
	for (i = 0; i < p->ncoders; i++)
		if (p->coder[i] != NULL)
			p->w->fmt->coder_free(p->coder[i]);
	free(p->coder);
	memset(p, 0, sizeof *p);
}

/* Encode every data grain of b, on every thread; the caller (the consumer
 * thread) works too. */
static void pool_encode(struct wpool *p, struct wbatch *b)
{
	p->b = b;
	workers_run(&p->workers, b->n, encode_item, p);
}

/* ---- what each pass does with a grain (the consumer thread) ---- */

static const unsigned char *grain_bytes(const struct wsink *ws,
    const struct wbatch *b, size_t i, size_t *len)
{
	const struct wimage *w = ws->w;
	size_t slot = (b->data[i] - b->raw) / w->grain;

	if (b->elen[i] == 0) {
		*len = w->grain;
		return b->data[i];
	}
	*len = b->elen[i];
	return b->enc + slot * w->encoded_max;
}

static int park_grain(struct wsink *ws, const unsigned char *p, size_t len)
{
	if (grow_array(&ws->parked, ws->nparked, &ws->capparked,
	    sizeof *ws->parked, 1024, SIZE_MAX) < 0 ||
	    stash_put(ws->w->store, p, len, &ws->parked[ws->nparked]) < 0)
		return -1;
	ws->nparked++;
	return 0;
}

/* Pass 2 must see the grains pass 1 planned, encoded to the same length. */
static int check_grain(struct wsink *ws, uint64_t index, uint32_t elen)
{
	uint64_t want;
	uint32_t wlen;

	if (wplan_next(&ws->check, &want, &wlen) != 1 || want != index ||
	    wlen != elen)
		return fail(EXIT_IO, "changed while it was being read");
	return 0;
}

/* Pass 2 ended: did pass 1 plan more grains? */
static bool plan_left(struct wsink *ws)
{
	uint64_t index;
	uint32_t elen;

	return wplan_next(&ws->check, &index, &elen) != 0;
}

static int consume_data(struct wsink *ws, struct wbatch *b, size_t i)
{
	struct wimage *w = ws->w;
	const unsigned char *p;
	size_t len;

	p = grain_bytes(ws, b, i, &len);
	ws->data_grains++;
	switch (ws->pass) {
	case WPASS_PLAN:
		return wplan_add(w->plan, b->index[i], b->elen[i]);
	case WPASS_PARK:
		if (wplan_add(w->plan, b->index[i], b->elen[i]) < 0)
			return -1;
		return park_grain(ws, p, len);
	case WPASS_CHECK:
		if (check_grain(ws, b->index[i], b->elen[i]) < 0)
			return -1;
		break;
	case WPASS_WRITE:
		if (wplan_add(w->plan, b->index[i], b->elen[i]) < 0)
			return -1;
		break;
	}
	return w->fmt->put(w, b->index[i], p, len, b->elen[i] != 0);
}

static int consume(struct wsink *ws, struct wbatch *b)
{
	struct wimage *w = ws->w;
	size_t i;

	if (ws->encode)
		pool_encode(ws->pool, b);
	for (i = 0; i < b->n; i++) {
		if (b->data[i] != NULL) {
			if (consume_data(ws, b, i) < 0)
				return -1;
		} else if (ws->pass == WPASS_WRITE || ws->pass == WPASS_CHECK) {
			if (w->fmt->put(w, b->index[i], NULL,
			    b->count[i] * w->grain, false) < 0)
				return -1;
		}
	}
	/* put's data pointed into the batch, which is about to be reused */
	return wfile_flush(w->out);
}

static void *consumer_main(void *arg)
{
	struct wsink *ws = arg;
	struct wbatch *b;
	int rc;

	pthread_mutex_lock(&ws->mu);
	for (;;) {
		while (ws->full == NULL && !ws->done)
			pthread_cond_wait(&ws->cv, &ws->mu);
		if (ws->full == NULL)
			break;
		b = ws->holding = ws->full;
		ws->full = NULL;
		pthread_cond_broadcast(&ws->cv);
		pthread_mutex_unlock(&ws->mu);
		rc = ws->failed ? 0 : consume(ws, b);
		pthread_mutex_lock(&ws->mu);
		if (rc < 0)
			ws->failed = true;
		ws->holding = NULL;
		pthread_cond_broadcast(&ws->cv);
	}
	pthread_mutex_unlock(&ws->mu);
	return NULL;
}

/*
 * Hand the batch being filled to the consumer (which encodes it), and
 * start filling the other one once the consumer is done with it.
 */
static int dispatch(struct wsink *ws)
{
	struct wbatch *b = ws->b;
	bool failed;

	if (b->n == 0)
		return 0;
	pthread_mutex_lock(&ws->mu);
	while (!ws->failed && ws->full != NULL)
		pthread_cond_wait(&ws->cv, &ws->mu);
	ws->full = b;
	pthread_cond_broadcast(&ws->cv);
	ws->cur ^= 1;
	ws->b = &ws->bufs[ws->cur];
	while (!ws->failed && (ws->full == ws->b || ws->holding == ws->b))
		pthread_cond_wait(&ws->cv, &ws->mu);
	failed = ws->failed;
	pthread_mutex_unlock(&ws->mu);
	ws->b->n = ws->b->nslots = 0;
	return failed ? -1 : 0;
}

/* Wait until the consumer has taken and done everything. */
static int drain_consumer(struct wsink *ws)
{
	bool failed;

	pthread_mutex_lock(&ws->mu);
	while (!ws->failed && (ws->full != NULL || ws->holding != NULL))
		pthread_cond_wait(&ws->cv, &ws->mu);
	failed = ws->failed;
	pthread_mutex_unlock(&ws->mu);
	return failed ? -1 : 0;
}

/* ---- cutting the disk into grains ---- */

static int too_large(const struct wimage *w, const struct wlimit *l,
    uint64_t end)
{
	if (l->given)
		return fail_file(EXIT_USAGE, l->input_name, "longer than "
		    "--size %llu", (unsigned long long)l->limit);
	return fail(EXIT_REJECT, "the disk (at least %llu bytes) is "
	    "larger than %llu bytes, the most %s can hold here",
	    (unsigned long long)end,
	    (unsigned long long)l->limit, w->fmt->name);
}

/* The current grain is complete: a data grain or a zero grain. */
static int end_grain(struct wsink *ws)
{
	struct wbatch *b = ws->b;

	if (ws->gslot != NULL && !is_zero(ws->gslot, ws->w->grain)) {
		batch_add_data(b, ws->gidx, ws->gslot);
	} else {
		if (ws->gslot != NULL)
			b->nslots--;	/* the last slot taken: give it back */
		batch_add_zeros(b, ws->gidx, 1);
	}
	ws->gslot = NULL;
	ws->gidx++;
	ws->gfill = 0;
	return batch_full(b) ? dispatch(ws) : 0;
}

static void take_slot(struct wsink *ws)
{
	struct wbatch *b = ws->b;

	ws->gslot = b->raw + b->nslots++ * (size_t)ws->w->grain;
	memset(ws->gslot, 0, ws->gfill);
}

static int sink_data(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct wsink *ws = (struct wsink *)sk;
	const unsigned char *p = buf;
	uint32_t grain = ws->w->grain;
	size_t n;

	if (off + len > ws->lim.limit)
		return too_large(ws->w, &ws->lim, off + len);
	while (len > 0) {
		n = grain - ws->gfill;
		if (n > len)
			n = len;
		if (ws->gslot == NULL)
			take_slot(ws);
		memcpy(ws->gslot + ws->gfill, p, n);
		ws->gfill += n;
		p += n;
		len -= n;
		if (ws->gfill == grain && end_grain(ws) < 0)
			return -1;
	}
	return 0;
}

static int sink_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct wsink *ws = (struct wsink *)sk;
	uint32_t grain = ws->w->grain;
	uint64_t whole;
	size_t n;

	(void)off;
	if (ws->gfill > 0) {	/* the rest of a grain begun */
		n = grain - ws->gfill < len ? grain - ws->gfill : len;
		if (ws->gslot != NULL)
			memset(ws->gslot + ws->gfill, 0, n);
		ws->gfill += n;
		len -= n;
		if (ws->gfill < grain)
			return 0;
		if (end_grain(ws) < 0)
			return -1;
	}
	whole = len / grain;
	if (whole > 0) {
		batch_add_zeros(ws->b, ws->gidx, whole);
		ws->gidx += whole;
		if (batch_full(ws->b) && dispatch(ws) < 0)
			return -1;
	}
	ws->gfill = len % grain;	/* a grain begun with zeros */
	return 0;
}

/* The input has ended: the disk's size is known now, if it was not. */
static int size_the_disk(struct wimage *w, const struct wlimit *l,
    uint64_t size)
{
	uint64_t rounded = size + (-size & 511);

	if (w->size_known) {
		if (size > w->virtual_size)
			return fail_file(EXIT_USAGE, l->input_name,
			    "longer than --size %llu",
			    (unsigned long long)w->virtual_size);
		return 0;
	}
	if (rounded > l->limit)
		return too_large(w, l, rounded);
	if (rounded != size)
		writer_notice_rounded(w, size, rounded, "a multiple of 512 "
		    "bytes");
	w->virtual_size = rounded;
	w->size_known = true;
	return 0;
}

static int sink_finish(struct sink *sk, uint64_t size)
{
	struct wsink *ws = (struct wsink *)sk;
	struct wimage *w = ws->w;
	uint64_t n;

	if (size_the_disk(w, &ws->lim, size) < 0)
		return -1;
	if (ws->gfill > 0) {	/* the last grain, zero-padded */
		if (ws->gslot != NULL)
			memset(ws->gslot + ws->gfill, 0,
			    w->grain - ws->gfill);
		if (end_grain(ws) < 0)
			return -1;
	}
	n = wimage_ngrains(w);
	if (ws->gidx < n)
		batch_add_zeros(ws->b, ws->gidx, n - ws->gidx);
	ws->gidx = n;
	if (dispatch(ws) < 0 || drain_consumer(ws) < 0)
		return -1;
	if (ws->pass == WPASS_CHECK && plan_left(ws))
		return fail(EXIT_IO, "changed while it was being read");
	return wplan_close(w->plan);
}

/* ---- set-up ---- */

int wsink_init(struct wsink *ws, struct wimage *w, enum wpass pass,
    int threads, uint64_t limit, bool limit_given, const char *input_name)
{
	memset(ws, 0, sizeof *ws);
	ws->base.in_order = true;
	ws->base.write = sink_data;
	ws->base.zero = sink_zero;
	ws->base.finish = sink_finish;
	ws->w = w;
	ws->pass = pass;
	ws->encode = w->fmt->encode != NULL && w->encoded_max > 0;
	ws->lim = (struct wlimit){ limit, limit_given, input_name };
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	ws->bufs = calloc(2, sizeof *ws->bufs);
	ws->pool = calloc(1, sizeof *ws->pool);
	if (ws->bufs == NULL || ws->pool == NULL)
		return fail(EXIT_IO, "out of memory");
	if (batch_init(&ws->bufs[0], w, ws->encode, threads) < 0 ||
	    batch_init(&ws->bufs[1], w, ws->encode, threads) < 0)
		return -1;
	ws->b = &ws->bufs[0];
	if (ws->encode && pool_start(ws->pool, w, threads) < 0)
		return -1;
	if (pass == WPASS_CHECK && wplan_first(w, &ws->check) < 0)
		return -1;
	if (start_thread(&ws->tid, consumer_main, ws) != 0)
		return fail(EXIT_IO, "cannot start a thread");
	ws->started = true;
	return 0;
}

void wsink_free(struct wsink *ws)
{
	size_t i;

	if (ws->started) {
		pthread_mutex_lock(&ws->mu);
		ws->done = true;
		pthread_cond_broadcast(&ws->cv);
		pthread_mutex_unlock(&ws->mu);
		pthread_join(ws->tid, NULL);
	}
	if (ws->pool != NULL)
		pool_stop(ws->pool);
	if (ws->bufs != NULL) {
		batch_free(&ws->bufs[0]);
		batch_free(&ws->bufs[1]);
	}
	for (i = 0; i < ws->nparked; i++)
		stash_drop(ws->w->store, &ws->parked[i]);
	free(ws->parked);
	free(ws->bufs);
	free(ws->pool);
	wplan_done(&ws->check);
	pthread_mutex_destroy(&ws->mu);
	pthread_cond_destroy(&ws->cv);
	memset(ws, 0, sizeof *ws);
}

/* ---- the parked grains, put after the metadata ---- */

static int put_zeros_upto(struct wimage *w, uint64_t *next, uint64_t upto)
{
	int rc = 0;

	if (upto > *next)
		rc = w->fmt->put(w, *next, NULL, (upto - *next) * w->grain,
		    false);
	*next = upto;
	return rc;
}

int wsink_replay_parked(struct wsink *ws)
{
	struct wimage *w = ws->w;
	size_t cap = w->encoded_max > w->grain ? w->encoded_max : w->grain;
	unsigned char *buf = malloc(cap);
	struct wplan_iter it;
	uint64_t index, next = 0;
	uint32_t elen;
	size_t i = 0;
	int r, rc = -1;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	if (wplan_first(w, &it) < 0)
		goto out;
	while ((r = wplan_next(&it, &index, &elen)) == 1) {
		if (i >= ws->nparked)
			break;
		if (put_zeros_upto(w, &next, index) < 0 ||
		    stash_take(w->store, &ws->parked[i], buf) < 0 ||
		    w->fmt->put(w, index, buf, ws->parked[i].len, elen != 0) < 0 ||
		    wfile_flush(w->out) < 0)
			goto out;
		ws->parked[i++].len = 0;
		next = index + 1;
	}
	if (r < 0 || put_zeros_upto(w, &next, wimage_ngrains(w)) < 0)
		goto out;
	rc = 0;
out:
	/* what was taken is released; drop only the rest (none parked: NULL) */
	if (i > 0)
		memmove(ws->parked, ws->parked + i, (ws->nparked - i) *
		    sizeof *ws->parked);
	ws->nparked -= i;
	wplan_done(&it);
	free(buf);
	return rc;
}

/* ---- the disk in place (WRITER_DATA_IN_PLACE) ---- */

/*
 * Every hook goes to the raw sink with the disk's offsets moved by
 * data_at, after the limit check: the raw sink's fast paths (lent
 * slots, reads on its threads, clones, splice into a pipe) are the
 * writer's as they are img2raw's.
 */
static struct wplace *as_place(struct sink *sk)
{
	return (struct wplace *)sk;
}

static int place_check(struct wplace *wp, uint64_t off, uint64_t len)
{
	return off + len > wp->lim.limit ? too_large(wp->w, &wp->lim, off + len)
	    : 0;
}

static int place_data(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;

	if (place_check(wp, off, len) < 0)
		return -1;
	wp->data_bytes += len;
	return raw->write(raw, wp->w->data_at + off, buf, len);
}

static int place_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;

	/* zeros too: a stream would have them all written */
	if (place_check(wp, off, len) < 0)
		return -1;
	return raw->zero(raw, wp->w->data_at + off, len);
}

static int place_lend(struct sink *sk, uint64_t off, size_t *len,
    unsigned char **buf)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;

	*buf = NULL;	/* beyond the limit: the write says so */
	if (off + *len > wp->lim.limit)
		return 0;
	return raw->lend(raw, wp->w->data_at + off, len, buf);
}

static int place_defer(struct sink *sk, int in, uint64_t in_off, uint64_t off,
    size_t *len, const char *label, uint64_t img_off)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;

	if (place_check(wp, off, *len) < 0 ||
	    raw->defer(raw, in, in_off, wp->w->data_at + off, len, label,
	    img_off) < 0)
		return -1;
	wp->data_bytes += *len;
	return 0;
}

static int place_clone(struct sink *sk, int in, uint64_t in_off, uint64_t len,
    uint64_t off, uint64_t *from, uint64_t *to)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;
	uint64_t at = wp->w->data_at;

	*from = *to = off;
	if (place_check(wp, off, len) < 0 ||
	    raw->clone(raw, in, in_off, len, at + off, from, to) < 0)
		return -1;
	*from -= at;
	*to -= at;
	wp->data_bytes += *to - *from;
	return 0;
}

static int place_splice(struct sink *sk, uint64_t off, int in, size_t len,
    size_t *moved)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;
	int rc;

	*moved = 0;
	if (place_check(wp, off, len) < 0)
		return -1;
	rc = raw->splice(raw, wp->w->data_at + off, in, len, moved);
	wp->data_bytes += *moved;
	if (raw->splice == NULL)	/* the kernel will not: nor here */
		wp->base.splice = NULL;
	return rc;
}

static int place_finish(struct sink *sk, uint64_t size)
{
	struct wplace *wp = as_place(sk);
	struct sink *raw = &wp->raw.base;
	struct wfile *out = wp->w->out;

	if (size_the_disk(wp->w, &wp->lim, size) < 0 ||
	    raw->finish(raw, wp->w->data_at + size) < 0)
		return -1;
	if (!out->seekable) {	/* the writer's finish goes on from here */
		out->pos = wp->raw.pos;
		if (out->end < out->pos)
			out->end = out->pos;
	}
	return 0;
}

/* The raw sink's hooks, each forwarded where the raw sink has it. */
static void place_hooks(struct wplace *wp)
{
	const struct sink *raw = &wp->raw.base;

	wp->base = *raw;	/* in_order, no_zero_split as the raw sink */
	wp->base.write = place_data;
	wp->base.zero = place_zero;
	wp->base.finish = place_finish;
	wp->base.lend = raw->lend != NULL ? place_lend : NULL;
	wp->base.defer = raw->defer != NULL ? place_defer : NULL;
	wp->base.clone = raw->clone != NULL ? place_clone : NULL;
	wp->base.splice = raw->splice != NULL ? place_splice : NULL;
}

/*
 * A stream must have reached data_at (the job sees to it).  threads: the
 * raw sink's writer threads (-j; 0 for its default).
 */
int wplace_init(struct wplace *wp, struct wimage *w, int threads,
    uint64_t limit, bool limit_given, const char *input_name)
{
	struct wfile *out = w->out;

	memset(wp, 0, sizeof *wp);
	wp->w = w;
	wp->lim = (struct wlimit){ limit, limit_given, input_name };
	if (wfile_flush(out) < 0)
		return -1;
	raw_sink_init(&wp->raw, out->fd, out->name);
	/* what the file holds now is begin's: it held nothing before */
	wp->raw.prior_size = 0;
	if (!out->seekable) {	/* a device, too, as the writer sees it */
		raw_sink_force_stream(&wp->raw);
		wp->raw.pos = out->pos;
	}
	raw_sink_async(&wp->raw, threads);
	if (wp->raw.writer != NULL)	/* data_bytes: as if read here */
		async_count_zeros(wp->raw.writer, &wp->deferred_zeros);
	place_hooks(wp);
	return 0;
}

void wplace_close(struct wplace *wp)
{
	raw_sink_close(&wp->raw);
	wp->data_bytes -= wp->deferred_zeros;
	wp->deferred_zeros = 0;
}
