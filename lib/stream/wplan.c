/*
 * The plan of a writer: which grains hold data, ascending, with their
 * encoded lengths when the format encodes.  It is a log of records
 *
 *	gap count [elen ...]
 *
 * in LEB128 varints: gap grains without data, then count grains with data,
 * followed by count encoded lengths when lengths are kept.  A dense disk
 * of any size is a few bytes; a compressed one two or three bytes a grain.
 * Full 64 KiB chunks go to the parking store, so the plan of a large disk
 * spills with everything else beyond the memory budget.
 */
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/stash.h"
#include "imgpipe/writer.h"
#include "stream/wplan.h"

#define PLAN_CHUNK (64u * 1024)
/* The longest record a grain can add: three 10-byte varints. */
#define PLAN_RECORD_MAX 30

int wplan_init(struct wplan *p, struct stash *st, bool lengths)
{
	memset(p, 0, sizeof *p);
	p->st = st;
	p->lengths = lengths;
	p->chunk = malloc(PLAN_CHUNK);
	if (p->chunk == NULL)
		return fail(EXIT_IO, "out of memory");
	return 0;
}

void wplan_free(struct wplan *p)
{
	size_t i;

	for (i = 0; i < p->nrefs; i++)
		stash_drop(p->st, &p->refs[i]);
	free(p->refs);
	free(p->chunk);
	memset(p, 0, sizeof *p);
}

static size_t put_varint(unsigned char *b, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (unsigned char)v;
	return n;
}

static int get_varint(const unsigned char *b, size_t len, size_t *pos,
    uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*pos < len && shift < 64) {
		unsigned char c = b[(*pos)++];

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
		shift += 7;
	}
	return fail(EXIT_IO, "writer plan: corrupt record");
}

static int park_chunk(struct wplan *p)
{
	if (p->used == 0)
		return 0;
	if (grow_array(&p->refs, p->nrefs, &p->caprefs, sizeof *p->refs, 16,
	    SIZE_MAX) < 0 ||
	    stash_put(p->st, p->chunk, p->used, &p->refs[p->nrefs]) < 0)
		return -1;
	p->nrefs++;
	p->used = 0;
	return 0;
}

static int append_record(struct wplan *p, uint64_t gap, uint64_t count,
    const uint32_t *elen)
{
	if (p->used + PLAN_RECORD_MAX > PLAN_CHUNK && park_chunk(p) < 0)
		return -1;
	p->used += put_varint(p->chunk + p->used, gap);
	p->used += put_varint(p->chunk + p->used, count);
	if (elen != NULL)
		p->used += put_varint(p->chunk + p->used, *elen);
	return 0;
}

/* Write out the run being extended. */
static int close_run(struct wplan *p)
{
	int rc = 0;

	if (p->run_count > 0)
		rc = append_record(p, p->run_gap, p->run_count, NULL);
	p->run_count = 0;
	return rc;
}

int wplan_add(struct wplan *p, uint64_t index, uint32_t elen)
{
	uint64_t gap;

	if (index < p->next)
		return fail(EXIT_IO, "writer plan: grain %llu out of order",
		    (unsigned long long)index);
	gap = index - p->next;
	p->next = index + 1;
	p->count++;
	if (p->lengths)
		return append_record(p, gap, 1, &elen);
	if (gap == 0 && p->run_count > 0) {
		p->run_count++;
		return 0;
	}
	if (close_run(p) < 0)
		return -1;
	p->run_gap = gap;
	p->run_count = 1;
	return 0;
}

int wplan_close(struct wplan *p)
{
	return close_run(p);
}

uint64_t wplan_count(const struct wimage *w)
{
	return w->plan->count;
}

/* Load chunk it->chunk (the parked ones, then the one still in memory). */
static int load_chunk(struct wplan_iter *it)
{
	struct wplan *p = it->plan;

	it->pos = 0;
	if (it->chunk < p->nrefs) {
		it->len = p->refs[it->chunk].len;
		if (stash_peek(p->st, &p->refs[it->chunk], it->buf) < 0)
			return -1;
	} else {
		it->len = it->chunk == p->nrefs ? p->used : 0;
		memcpy(it->buf, p->chunk, it->len);
	}
	it->chunk++;
	return 0;
}

int wplan_first(struct wimage *w, struct wplan_iter *it)
{
	memset(it, 0, sizeof *it);
	it->plan = w->plan;
	if (close_run(w->plan) < 0)
		return -1;
	it->buf = malloc(PLAN_CHUNK);
	if (it->buf == NULL)
		return fail(EXIT_IO, "out of memory");
	return load_chunk(it);
}

void wplan_done(struct wplan_iter *it)
{
	free(it->buf);
	it->buf = NULL;
}

int wplan_next(struct wplan_iter *it, uint64_t *index, uint32_t *elen)
{
	struct wplan *p = it->plan;
	uint64_t gap, count, len = 0;

	if (it->left == 0) {
		if (it->pos == it->len) {
			if (it->chunk > p->nrefs)
				return 0;
			if (load_chunk(it) < 0)
				return -1;
			if (it->len == 0)
				return 0;
		}
		if (get_varint(it->buf, it->len, &it->pos, &gap) < 0 ||
		    get_varint(it->buf, it->len, &it->pos, &count) < 0)
			return -1;
		it->index += gap;
		it->left = count;
	}
	if (p->lengths && get_varint(it->buf, it->len, &it->pos, &len) < 0)
		return -1;
	*index = it->index++;
	*elen = (uint32_t)len;
	it->left--;
	return 1;
}
