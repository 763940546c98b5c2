/*
 * Tables generated from the plan (include/imgpipe/writer.h): a format's
 * BAT or block map is written 64 KiB at a time, each piece filled from a
 * walk of the plan, so that nothing in memory grows with the disk.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/writer.h"

#define PIECE (64u * 1024)

/* The units that hold data, ascending: a walk of the plan by unit. */
struct units {
	struct wplan_iter it;
	uint64_t per;		/* grains a unit */
	bool started;
	uint64_t unit;		/* the current unit */
	uint64_t k;		/* its rank among the units with data */
};

/* 1 and the next unit with data, 0 at the end, -1 on error. */
static int units_next(struct units *u)
{
	uint64_t index, unit;
	uint32_t elen;
	int r;

	for (;;) {
		r = wplan_next(&u->it, &index, &elen);
		if (r <= 0)
			return r;
		unit = index / u->per;
		if (u->started && unit == u->unit)
			continue;	/* another grain of the same unit */
		u->k = u->started ? u->k + 1 : 0;
		u->started = true;
		u->unit = unit;
		return 1;
	}
}

int wplan_units(struct wimage *w, uint64_t grains_per_unit, uint64_t *n)
{
	struct units u = { .per = grains_per_unit };
	int r;

	*n = 0;
	if (wplan_first(w, &u.it) < 0)
		return -1;
	while ((r = units_next(&u)) == 1)
		(*n)++;
	wplan_done(&u.it);
	return r;
}

static uint64_t slot_of(const struct wtable *t, uint64_t unit)
{
	return t->slot_of ? t->slot_of(t->ctx, unit) : unit;
}

/* The bytes after the entries: a hole (or zeros) when pad is 0. */
static int write_padding(struct wimage *w, const struct wtable *t,
    unsigned char *buf)
{
	uint64_t at = t->off + t->nslots * t->entry_size;
	uint64_t end = t->off + t->len;
	size_t n;

	if (t->pad == 0)
		return wfile_zero(w->out, at, end - at);
	memset(buf, t->pad, PIECE);
	for (; at < end; at += n) {
		n = end - at < PIECE ? end - at : PIECE;
		if (wfile_write(w->out, buf, n, at) < 0)
			return -1;
	}
	return 0;
}

/* Slots first .. first + n: empty, then the units with data among them. */
static int fill_piece(const struct wtable *t, struct units *u, int r,
    unsigned char *buf, uint64_t first, uint64_t n)
{
	uint64_t s;

	for (s = 0; s < n; s++)
		t->entry(t->ctx, buf + s * t->entry_size, first + s,
		    WTABLE_EMPTY);
	while (r == 1 && (s = slot_of(t, u->unit)) < first + n) {
		if (s >= first)
			t->entry(t->ctx, buf + (s - first) * t->entry_size, s,
			    u->k);
		r = units_next(u);
	}
	return r;
}

int wtable_write(struct wimage *w, const struct wtable *t)
{
	struct units u = { .per = t->grains_per_unit };
	uint64_t per_piece = PIECE / t->entry_size, first, n;
	unsigned char *buf = malloc(PIECE);
	int r, rc = -1;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	if (wplan_first(w, &u.it) < 0)
		goto out;
	r = units_next(&u);
	for (first = 0; r >= 0 && first < t->nslots; first += n) {
		n = t->nslots - first < per_piece ? t->nslots - first :
		    per_piece;
		r = fill_piece(t, &u, r, buf, first, n);
		if (r >= 0 && wfile_write(w->out, buf, n * t->entry_size,
		    t->off + first * t->entry_size) < 0)
			goto out;
	}
	if (r >= 0 && write_padding(w, t, buf) == 0)
		rc = 0;
out:
	wplan_done(&u.it);
	free(buf);
	return rc;
}
