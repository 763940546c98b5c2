/*
 * The parking store.  A run is a chain of pieces (struct stash_chunk) of
 * at most STASH_PIECE bytes, each in a malloc'd buffer or in the spill
 * file.  Pieces in memory sit on a list by last use; when the budget would
 * be passed, the least recently used move to the file.  A piece grows in
 * place (realloc up to STASH_PIECE, or a positioned write into its slot),
 * so a run that grows a few hundred bytes at a time is still a chain of
 * full pieces.
 *
 * The file is cut in slots of STASH_PIECE bytes.  A large piece has a slot
 * of its own; pieces of up to STASH_PACK_MAX bytes are packed one after
 * the other into a shared slot, gathered in memory and written when the
 * slot is full.  Every slot counts the bytes it holds in each 4 KiB block:
 * a block that holds nothing any more is punched out (FALLOC_FL_PUNCH_HOLE),
 * a slot that holds nothing goes back to a stack of free slots.  So the
 * file takes the blocks that hold parked bytes, no more.
 *
 * Accounting: mem_used counts every buffer at its capacity plus
 * STASH_MALLOC_OVERHEAD, every piece record, the slot arrays, the pack
 * buffer and the callers' charges.  Room is kept in the budget for what a
 * spill adds to the bookkeeping (spill_reserve), so mem_used never passes
 * the budget, not even while a piece moves out.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/grow.h"
#include "imgpipe/size.h"
#include "imgpipe/sink.h"
#include "imgpipe/stash.h"

struct stash_chunk {
	struct stash_chunk *prev, *next;	/* in its run */
	/* memory pieces: the use list; file pieces: the file list */
	struct stash_chunk *older, *newer;
	unsigned char *mem;	/* NULL: in the spill file */
	uint32_t slot;
	uint32_t lo, hi;	/* the bytes: [lo, hi) of mem or of the slot */
	uint32_t cap;		/* bytes at mem; STASH_PIECE in the file */
	bool packed;		/* shares its slot: cannot grow there */
};

#define RECORD_COST ((uint64_t)sizeof(struct stash_chunk) + \
	STASH_MALLOC_OVERHEAD)
/* A piece that is to grow starts this big, then doubles. */
#define GROW_FIRST 4096u
#define SLOT_BLOCKS (STASH_PIECE / STASH_FILE_BLOCK)
#define NO_SLOT UINT32_MAX
/* Small pieces gather here before they are written to the pack slot. */
#define PACK_BUF STASH_PACK_MAX

/* What the file holds of one slot: bytes in all, bytes per block. */
struct stash_slot {
	uint32_t live;
	uint16_t block_live[SLOT_BLOCKS];
};

void stash_init(struct stash *st, uint64_t budget, const char *tmpdir)
{
	const char *e = getenv("IMGPIPE_STASH_STATS");

	memset(st, 0, sizeof *st);
	pthread_mutex_init(&st->lock, NULL);
	st->budget = budget > STASH_BUDGET_MIN ? budget : STASH_BUDGET_MIN;
	st->tmpdir = tmpdir;
	st->fd = -1;
	st->punch = true;
	st->pack_slot = NO_SLOT;
	st->stats = e != NULL && *e != '\0';
}

/* ---- accounting ---- */

static void mem_add(struct stash *st, int64_t delta, bool bookkeeping)
{
	st->mem_used += delta;
	if (bookkeeping)
		st->bookkeeping += delta;
	if (st->mem_used > st->mem_peak)
		st->mem_peak = st->mem_used;
}

static void parked_add(struct stash *st, int64_t delta)
{
	st->parked += delta;
	if (st->parked > st->parked_peak)
		st->parked_peak = st->parked;
}

static uint64_t buffer_cost(uint32_t cap)
{
	return (uint64_t)cap + STASH_MALLOC_OVERHEAD;
}

static int over_budget(const struct stash *st)
{
	char b[32];

	/* a limit of this run, not the image's defect (ERR_BUDGET) */
	return fail_code(EXIT_REJECT, ERR_BUDGET, "parking store: the "
	    "bookkeeping of what waits to be placed needs more than the "
	    "memory budget of %s; raise --mem",
	    format_size(st->budget, b, sizeof b));
}

static uint64_t spill_reserve(const struct stash *st);

/* need more bytes of bookkeeping fit the budget beside the spill reserve. */
static int bookkeeping_fits(struct stash *st, uint64_t need)
{
	if (st->bookkeeping + need + spill_reserve(st) <= st->budget)
		return 0;
	return over_budget(st);
}

/* The disk space the file takes, measured when asked to report. */
static void file_measure(struct stash *st)
{
	struct stat sb;
	uint64_t disk;

	if (!st->stats || st->fd < 0 || fstat(st->fd, &sb) < 0)
		return;
	disk = (uint64_t)sb.st_blocks * 512;
	if (disk > st->file_disk_peak)
		st->file_disk_peak = disk;
	if (disk > st->file_parked &&
	    disk - st->file_parked > st->file_disk_excess_peak)
		st->file_disk_excess_peak = disk - st->file_parked;
}

static void file_peaks(struct stash *st)
{
	if (st->file_used > st->file_peak)
		st->file_peak = st->file_used;
	if (st->file_used > st->file_parked &&
	    st->file_used - st->file_parked > st->file_excess_peak)
		st->file_excess_peak = st->file_used - st->file_parked;
	file_measure(st);
}

/* ---- lists: memory pieces by last use, file pieces ---- */

static void list_unlink(struct stash_chunk **first, struct stash_chunk **last,
    struct stash_chunk *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else
		*first = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		*last = c->older;
	c->older = c->newer = NULL;
}

static void list_push(struct stash_chunk **first, struct stash_chunk **last,
    struct stash_chunk *c)
{
	c->older = *last;
	c->newer = NULL;
	if (*last)
		(*last)->newer = c;
	else
		*first = c;
	*last = c;
}

static void touch(struct stash *st, struct stash_chunk *c)
{
	if (st->newest == c)
		return;
	list_unlink(&st->oldest, &st->newest, c);
	list_push(&st->oldest, &st->newest, c);
}

/* ---- the spill file: slots of STASH_PIECE bytes ---- */

static const char *tmp_dir(const struct stash *st)
{
	const char *d = st->tmpdir;

	if (d == NULL || *d == '\0')
		d = getenv("TMPDIR");
	if (d == NULL || *d == '\0')
		d = "/tmp";
	return d;
}

/* An unlinked file: nothing to clean up, whatever way we exit. */
static int open_spill(struct stash *st)
{
	const char *dir = tmp_dir(st);
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		st->fd = fd;
		return 0;
	}
#endif
	if (snprintf(path, sizeof path, "%s/imgpipe-stash.XXXXXX", dir) >=
	    (int)sizeof path)
		return fail(EXIT_IO, "temporary directory name too long");
	fd = mkstemp(path);
	if (fd < 0)
		return fail_io(dir, "cannot create a temporary file");
	unlink(path);
	st->fd = fd;
	return 0;
}

static uint64_t slot_pos(uint32_t slot)
{
	return (uint64_t)slot * STASH_PIECE;
}

/* Give [off, off + len) of the file back to the file system. */
static void punch(struct stash *st, uint64_t off, uint64_t len)
{
	if (len == 0 || !st->punch)
		return;
#ifdef FALLOC_FL_PUNCH_HOLE
	if (fallocate(st->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    off, len) == 0)
		return;
#endif
	/* Not supported here: slots are still reused. */
	st->punch = false;
}

static int file_write(struct stash *st, const void *buf, size_t len,
    uint64_t off)
{
	return pwrite_full(st->fd, buf, len, off, "temporary file");
}

/* The file ending early is as much an error as a failed read. */
static int file_read(struct stash *st, void *buf, size_t len, uint64_t off)
{
	if (fd_pread_full(st->fd, buf, len, off) != (ssize_t)len)
		return fail_errno(EXIT_IO, "read error on temporary file");
	return 0;
}

static uint64_t slots_cost(size_t cap)
{
	return cap ? cap * (sizeof(struct stash_slot) + sizeof(uint32_t)) +
	    2 * STASH_MALLOC_OVERHEAD : 0;
}

/* What the slot arrays' next growth adds to the bookkeeping. */
static uint64_t slots_growth(const struct stash *st)
{
	size_t cap = st->capslots ? 2 * st->capslots : 16;

	return slots_cost(cap) - slots_cost(st->capslots);
}

/*
 * What moving one piece to the file may add to the bookkeeping: the slot
 * arrays' next growth and the pack buffer.  The store keeps this much of
 * the budget free (make_room), so that a spill never passes the budget
 * while the piece it moves out is still in memory.  It is reserved even
 * while free slots remain: they may all be taken within one make_room,
 * and the growth after one is twice the one before, reserved again
 * before the next one is due (each slot taken moves out at least
 * STASH_PIECE - STASH_PACK_MAX bytes, far more than the 40 bytes a slot
 * costs twice).
 */
static uint64_t spill_reserve(const struct stash *st)
{
	return slots_growth(st) +
	    (st->pack_buf == NULL ? buffer_cost(PACK_BUF) : 0);
}

/* Room in both slot arrays for one more slot. */
static int slots_room(struct stash *st)
{
	size_t cap = st->capslots ? 2 * st->capslots : 16;
	uint64_t grow;
	struct stash_slot *s;
	uint32_t *f;

	if (st->nslots < st->capslots)
		return 0;
	grow = slots_growth(st);
	if (st->bookkeeping + grow > st->budget)
		return over_budget(st);	/* within the reserve, normally */
	s = realloc(st->slots, cap * sizeof *s);
	if (s != NULL)
		st->slots = s;
	f = realloc(st->free_slots, cap * sizeof *f);
	if (f != NULL)
		st->free_slots = f;
	if (s == NULL || f == NULL)
		return fail(EXIT_IO, "out of memory");
	mem_add(st, grow, true);
	st->capslots = cap;
	return 0;
}

/* A free slot, holding nothing. */
static int slot_get(struct stash *st, uint32_t *slot)
{
	if (st->nfree > 0) {
		*slot = st->free_slots[--st->nfree];
		return 0;
	}
	if (st->fd < 0 && open_spill(st) < 0)
		return -1;
	if (st->nslots == NO_SLOT - 1)
		return fail(EXIT_IO, "parking store: temporary file full");
	if (slots_room(st) < 0)
		return -1;
	*slot = st->nslots++;
	memset(&st->slots[*slot], 0, sizeof st->slots[*slot]);
	return 0;
}

static void pack_buf_free(struct stash *st)
{
	if (st->pack_buf == NULL)
		return;
	free(st->pack_buf);
	st->pack_buf = NULL;
	mem_add(st, -(int64_t)buffer_cost(PACK_BUF), true);
}

/* A slot that holds nothing any more goes back to the free stack. */
static void slot_put(struct stash *st, uint32_t slot)
{
	if (slot == st->pack_slot)
		st->pack_slot = NO_SLOT;
	punch(st, slot_pos(slot), STASH_PIECE);
	st->free_slots[st->nfree++] = slot;
	if (st->nfree == st->nslots - 1 && st->pack_slot != NO_SLOT &&
	    st->slots[st->pack_slot].live == 0) {
		/* only the empty pack is left: close it too */
		st->free_slots[st->nfree++] = st->pack_slot;
		st->pack_slot = NO_SLOT;
	}
	if (st->nfree < st->nslots)
		return;
	/* Everything spilled has left: start the file over. */
	if (ftruncate(st->fd, 0) < 0) {
		/* the blocks were punched: nothing is lost */
	}
	free(st->slots);
	free(st->free_slots);
	mem_add(st, -(int64_t)slots_cost(st->capslots), true);
	st->slots = NULL;
	st->free_slots = NULL;
	st->nfree = st->nslots = 0;
	st->capslots = 0;
	pack_buf_free(st);
}

static uint32_t overlap(uint32_t a, uint32_t b, uint32_t s, uint32_t e)
{
	uint32_t lo = a > s ? a : s, hi = b < e ? b : e;

	return hi > lo ? hi - lo : 0;
}

/*
 * A file piece held [lo, hi) of its slot and now holds [c->lo, c->hi):
 * count the bytes in each block it touches, punch the blocks that hold
 * nothing any more (in one call), unless the whole slot is about to go.
 * Its slot is not freed here.
 */
static void file_span_changed(struct stash *st, const struct stash_chunk *c,
    uint32_t lo, uint32_t hi, bool slot_goes)
{
	struct stash_slot *sl = &st->slots[c->slot];
	uint32_t from = c->lo, to = c->hi, b, bs, was, now;
	uint32_t p_from = STASH_PIECE, p_to = 0;

	if (hi > lo) {
		from = c->hi > c->lo && c->lo < lo ? c->lo : lo;
		to = c->hi > c->lo && c->hi > hi ? c->hi : hi;
	}
	for (b = from / STASH_FILE_BLOCK; b * STASH_FILE_BLOCK < to; b++) {
		bs = b * STASH_FILE_BLOCK;
		was = sl->block_live[b];
		now = was - overlap(lo, hi, bs, bs + STASH_FILE_BLOCK) +
		    overlap(c->lo, c->hi, bs, bs + STASH_FILE_BLOCK);
		sl->block_live[b] = now;
		if (was == 0 && now > 0) {
			st->file_used += STASH_FILE_BLOCK;
		} else if (was > 0 && now == 0) {
			st->file_used -= STASH_FILE_BLOCK;
			if (bs < p_from)
				p_from = bs;
			p_to = bs + STASH_FILE_BLOCK;
		}
	}
	if (p_to > p_from && !slot_goes)
		punch(st, slot_pos(c->slot) + p_from, p_to - p_from);
	sl->live += (c->hi - c->lo) - (hi - lo);
	st->file_parked += (uint64_t)(c->hi - c->lo);
	st->file_parked -= hi - lo;
	file_peaks(st);
}

/*
 * Write the pack's gathered pieces; blocks of it whose pieces have all
 * left meanwhile are punched again.
 */
static int pack_flush(struct stash *st)
{
	const struct stash_slot *sl;
	uint32_t from = st->pack_written, b;

	if (st->pack_slot == NO_SLOT || from == st->pack_used)
		return 0;
	if (file_write(st, st->pack_buf, st->pack_used - from,
	    slot_pos(st->pack_slot) + from) < 0)
		return -1;
	st->pack_written = st->pack_used;
	sl = &st->slots[st->pack_slot];
	for (b = from / STASH_FILE_BLOCK; b * STASH_FILE_BLOCK < st->pack_used;
	    b++)
		if (sl->block_live[b] == 0)
			punch(st, slot_pos(st->pack_slot) + b * STASH_FILE_BLOCK,
			    STASH_FILE_BLOCK);
	file_measure(st);
	return 0;
}

/* Stop filling the pack slot; it is freed when it holds nothing. */
static int pack_close(struct stash *st)
{
	uint32_t slot = st->pack_slot;

	if (slot == NO_SLOT)
		return 0;
	if (st->slots[slot].live == 0) {
		slot_put(st, slot);	/* nothing in it to write */
		return 0;
	}
	if (pack_flush(st) < 0)
		return -1;
	st->pack_slot = NO_SLOT;
	return 0;
}

/*
 * Room for len bytes in the pack slot (and in the buffer that gathers its
 * bytes): where they go in the slot, or -1.
 */
static int64_t pack_room(struct stash *st, uint32_t len)
{
	if (st->pack_slot != NO_SLOT && st->pack_used + len <= STASH_PIECE) {
		if (st->pack_used + len - st->pack_written > PACK_BUF &&
		    pack_flush(st) < 0)
			return -1;
		return st->pack_used;
	}
	if (pack_close(st) < 0)
		return -1;
	if (st->pack_buf == NULL) {
		if (st->bookkeeping + buffer_cost(PACK_BUF) > st->budget)
			return over_budget(st);
		st->pack_buf = malloc(PACK_BUF);
		if (st->pack_buf == NULL)
			return fail(EXIT_IO, "out of memory");
		mem_add(st, buffer_cost(PACK_BUF), true);
	}
	if (slot_get(st, &st->pack_slot) < 0)
		return -1;
	st->pack_used = st->pack_written = 0;
	return 0;
}

/*
 * A file piece left its slot (its bytes are released).  The pack being
 * filled stays open for more, unless the file holds nothing else.
 */
static void slot_left(struct stash *st, struct stash_chunk *c)
{
	if (!c->packed)
		slot_put(st, c->slot);
	else if (st->slots[c->slot].live > 0)
		return;
	else if (c->slot != st->pack_slot)
		slot_put(st, c->slot);
	else if (st->file_parked == 0)
		pack_close(st);
}

/*
 * Move a memory piece to the file.  A small one joins the pack; a large
 * one filled from its end (a run that grows downwards) goes to the end of
 * a slot of its own, others to its start, so growth can go on in place.
 */
static int spill(struct stash *st, struct stash_chunk *c)
{
	uint32_t len = c->hi - c->lo, at, slot;
	int64_t p;

	if (len <= STASH_PACK_MAX) {
		p = pack_room(st, len);
		if (p < 0)
			return -1;
		at = (uint32_t)p;
		slot = st->pack_slot;
		memcpy(st->pack_buf + (at - st->pack_written), c->mem + c->lo,
		    len);
		st->pack_used += len;
		c->packed = true;
	} else {
		if (slot_get(st, &slot) < 0)
			return -1;
		at = c->lo > 0 && c->hi == c->cap ? STASH_PIECE - len : 0;
		if (file_write(st, c->mem + c->lo, len, slot_pos(slot) + at)
		    < 0) {
			st->free_slots[st->nfree++] = slot;
			return -1;
		}
	}
	list_unlink(&st->oldest, &st->newest, c);
	free(c->mem);
	mem_add(st, -(int64_t)buffer_cost(c->cap), false);
	c->mem = NULL;
	c->slot = slot;
	c->cap = STASH_PIECE;
	c->lo = at;
	c->hi = at + len;
	list_push(&st->file_first, &st->file_last, c);
	file_span_changed(st, c, 0, 0, false);
	return 0;
}

/* need more bytes, and the spill reserve, fit the budget. */
static bool room_for(const struct stash *st, uint64_t need)
{
	return st->mem_used + need + spill_reserve(st) <= st->budget;
}

/*
 * Move the least recently used pieces (never keep) to the file until need
 * more bytes fit the budget beside the spill reserve (recounted after each
 * piece: a spill may grow the slot arrays).  1 when they fit, 0 when they
 * cannot, -1 on an error.
 */
static int make_room(struct stash *st, uint64_t need,
    const struct stash_chunk *keep)
{
	while (!room_for(st, need)) {
		struct stash_chunk *c = st->oldest;

		if (c == keep && c != NULL)
			c = c->newer;
		if (c == NULL)
			return 0;
		if (spill(st, c) < 0)
			return -1;
	}
	return 1;
}

/* ---- pieces ---- */

/*
 * A new, empty piece of cap bytes, in memory when the budget allows, else
 * in a slot of its own.  at_end: its bytes will be added from its end down.
 */
static struct stash_chunk *chunk_new(struct stash *st, uint32_t cap,
    bool at_end)
{
	struct stash_chunk *c;
	int room;

	if (bookkeeping_fits(st, RECORD_COST) < 0)
		return NULL;
	room = make_room(st, RECORD_COST + buffer_cost(cap), NULL);
	if (room == 0) {
		/* the piece goes to the file, if its record fits */
		room = make_room(st, RECORD_COST, NULL);
		if (room == 0)
			over_budget(st);
		room = room > 0 ? 0 : -1;
	}
	if (room < 0)
		return NULL;
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	if (room > 0)
		c->mem = malloc(cap);
	if (c->mem != NULL) {
		c->cap = cap;
		mem_add(st, buffer_cost(cap), false);
		list_push(&st->oldest, &st->newest, c);
	} else if (slot_get(st, &c->slot) < 0) {
		free(c);
		return NULL;
	} else {
		c->cap = STASH_PIECE;
		list_push(&st->file_first, &st->file_last, c);
	}
	c->lo = c->hi = at_end ? c->cap : 0;
	mem_add(st, RECORD_COST, true);
	st->npieces++;
	return c;
}

/* Release a piece (unlinked from its run by the caller). */
static void chunk_free(struct stash *st, struct stash_chunk *c)
{
	parked_add(st, -(int64_t)(c->hi - c->lo));
	if (c->mem != NULL) {
		list_unlink(&st->oldest, &st->newest, c);
		free(c->mem);
		mem_add(st, -(int64_t)buffer_cost(c->cap), false);
	} else {
		uint32_t lo = c->lo, hi = c->hi;

		list_unlink(&st->file_first, &st->file_last, c);
		c->lo = c->hi = lo;
		file_span_changed(st, c, lo, hi, !c->packed);
		slot_left(st, c);
	}
	free(c);
	mem_add(st, -(int64_t)RECORD_COST, true);
	st->npieces--;
}

static int chunk_read(struct stash *st, const struct stash_chunk *c,
    uint32_t from, uint32_t n, void *buf)
{
	uint32_t at = c->lo + from;

	if (c->mem != NULL) {
		memcpy(buf, c->mem + at, n);
		return 0;
	}
	if (c->slot == st->pack_slot && at >= st->pack_written) {
		memcpy(buf, st->pack_buf + (at - st->pack_written), n);
		return 0;
	}
	return file_read(st, buf, n, slot_pos(c->slot) + at);
}

/*
 * Let a full memory piece hold more bytes, at its end or (at_end) at its
 * start: 0 when it grew, 1 when it stays as it is, -1 on an error.
 */
static int chunk_grow(struct stash *st, struct stash_chunk *c, size_t more,
    bool at_end)
{
	uint64_t want = 2 * (uint64_t)c->cap;
	uint32_t len = c->hi - c->lo, cap;
	unsigned char *p;
	int room;

	if (c->mem == NULL || c->cap >= STASH_PIECE)
		return 1;
	if (want < (uint64_t)len + more)
		want = (uint64_t)len + more;
	cap = want < STASH_PIECE ? want : STASH_PIECE;
	room = make_room(st, cap - c->cap, c);
	if (room <= 0)
		return room < 0 ? -1 : 1;
	p = realloc(c->mem, cap);
	if (p == NULL)
		return 1;
	c->mem = p;
	mem_add(st, cap - c->cap, false);
	if (at_end) {
		memmove(p + cap - len, p + c->lo, len);
		c->lo = cap - len;
		c->hi = cap;
	}
	c->cap = cap;
	return 0;
}

static uint32_t new_cap(size_t len, bool exact)
{
	if (!exact && len < GROW_FIRST)
		len = GROW_FIRST;
	return len < STASH_PIECE ? len : STASH_PIECE;
}

/* ---- runs ---- */

/* Add up to len bytes of buf after the run's bytes; how many, or -1. */
static ssize_t append_piece(struct stash *st, struct stash_ref *ref,
    const unsigned char *buf, size_t len, bool exact)
{
	struct stash_chunk *t = ref->tail;
	uint32_t hi;
	size_t n;

	if (t != NULL && t->hi == t->cap && chunk_grow(st, t, len, false) < 0)
		return -1;
	if (t == NULL || t->hi == t->cap || t->packed) {
		t = chunk_new(st, new_cap(len, exact), false);
		if (t == NULL)
			return -1;
		t->prev = ref->tail;
		if (ref->tail)
			ref->tail->next = t;
		else
			ref->head = t;
		ref->tail = t;
	}
	n = t->cap - t->hi < len ? t->cap - t->hi : len;
	if (t->mem != NULL) {
		memcpy(t->mem + t->hi, buf, n);
		t->hi += n;
		touch(st, t);
	} else {
		if (file_write(st, buf, n, slot_pos(t->slot) + t->hi) < 0)
			return -1;
		hi = t->hi;
		t->hi += n;
		file_span_changed(st, t, t->lo, hi, false);
	}
	ref->len += n;
	parked_add(st, n);
	return n;
}

/* Add up to len bytes from the end of buf before the run's bytes. */
static ssize_t prepend_piece(struct stash *st, struct stash_ref *ref,
    const unsigned char *buf, size_t len)
{
	struct stash_chunk *h = ref->head;
	uint32_t lo;
	size_t n;

	if (h != NULL && h->lo == 0 && chunk_grow(st, h, len, true) < 0)
		return -1;
	if (h == NULL || h->lo == 0 || h->packed) {
		h = chunk_new(st, new_cap(len, false), true);
		if (h == NULL)
			return -1;
		h->next = ref->head;
		if (ref->head)
			ref->head->prev = h;
		else
			ref->tail = h;
		ref->head = h;
	}
	n = h->lo < len ? h->lo : len;
	if (h->mem != NULL) {
		memcpy(h->mem + h->lo - n, buf + len - n, n);
		h->lo -= n;
		touch(st, h);
	} else {
		if (file_write(st, buf + len - n, n,
		    slot_pos(h->slot) + h->lo - n) < 0)
			return -1;
		lo = h->lo;
		h->lo -= n;
		file_span_changed(st, h, lo, h->hi, false);
	}
	ref->len += n;
	parked_add(st, n);
	return n;
}

static int append(struct stash *st, struct stash_ref *ref, const void *buf,
    size_t len, bool exact)
{
	const unsigned char *p = buf;
	ssize_t n;

	if (ref->head == NULL)
		ref->len = 0;	/* a taken ref */
	while (len > 0) {
		n = append_piece(st, ref, p, len, exact);
		if (n < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* Release n bytes at the front of the run's first piece. */
static void head_release(struct stash *st, struct stash_ref *ref, uint32_t n)
{
	struct stash_chunk *h = ref->head;
	uint32_t lo = h->lo;

	ref->len -= n;
	if (n == h->hi - h->lo) {
		ref->head = h->next;
		if (ref->head)
			ref->head->prev = NULL;
		else
			ref->tail = NULL;
		chunk_free(st, h);
		return;
	}
	h->lo += n;
	parked_add(st, -(int64_t)n);
	if (h->mem == NULL)
		file_span_changed(st, h, lo, h->hi, false);
}

static void tail_release(struct stash *st, struct stash_ref *ref, uint32_t n)
{
	struct stash_chunk *t = ref->tail;
	uint32_t hi = t->hi;

	ref->len -= n;
	if (n == t->hi - t->lo) {
		ref->tail = t->prev;
		if (ref->tail)
			ref->tail->next = NULL;
		else
			ref->head = NULL;
		chunk_free(st, t);
		return;
	}
	t->hi -= n;
	parked_add(st, -(int64_t)n);
	if (t->mem == NULL)
		file_span_changed(st, t, t->lo, hi, false);
}

/* The bytes a run holds (a taken ref keeps its len, and holds none). */
static uint64_t run_len(const struct stash_ref *ref)
{
	return ref->head != NULL ? ref->len : 0;
}

/* Read (buf not NULL) and release the first len bytes of a run. */
static int take_head(struct stash *st, struct stash_ref *ref,
    unsigned char *buf, uint64_t len)
{
	struct stash_chunk *h;
	uint32_t n;

	if (len == 0)
		return 0;
	if (len > run_len(ref))
		return fail(EXIT_IO, "parking store: a run of %llu bytes read "
		    "as %llu", (unsigned long long)ref->len,
		    (unsigned long long)len);
	while (len > 0) {
		h = ref->head;
		n = h->hi - h->lo < len ? h->hi - h->lo : len;
		if (buf != NULL) {
			if (chunk_read(st, h, 0, n, buf) < 0)
				return -1;
			buf += n;
		}
		head_release(st, ref, n);
		len -= n;
	}
	return 0;
}

static void lock(struct stash *st)
{
	pthread_mutex_lock(&st->lock);
}

static int unlock(struct stash *st, int rc)
{
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static void drop_all(struct stash *st, struct stash_ref *ref)
{
	struct stash_chunk *c = ref->head, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		chunk_free(st, c);
	}
	memset(ref, 0, sizeof *ref);
}

int stash_put(struct stash *st, const void *buf, size_t len,
    struct stash_ref *ref)
{
	int rc;

	memset(ref, 0, sizeof *ref);
	lock(st);
	rc = append(st, ref, buf, len, true);
	if (rc < 0)
		drop_all(st, ref);
	return unlock(st, rc);
}

int stash_append(struct stash *st, struct stash_ref *ref, const void *buf,
    size_t len)
{
	int rc;

	lock(st);
	rc = append(st, ref, buf, len, false);
	return unlock(st, rc);
}

int stash_prepend(struct stash *st, struct stash_ref *ref, const void *buf,
    size_t len)
{
	ssize_t n;

	lock(st);
	if (ref->head == NULL)
		ref->len = 0;	/* a taken ref */
	while (len > 0) {
		n = prepend_piece(st, ref, buf, len);
		if (n < 0)
			return unlock(st, -1);
		len -= n;
	}
	return unlock(st, 0);
}

int stash_take(struct stash *st, struct stash_ref *ref, void *buf)
{
	uint64_t len = ref->len;
	int rc;

	lock(st);
	rc = take_head(st, ref, buf, len);
	if (rc == 0)
		ref->len = len;	/* what was taken: callers read it after */
	return unlock(st, rc);
}

int stash_take_head(struct stash *st, struct stash_ref *ref, void *buf,
    size_t len)
{
	int rc;

	lock(st);
	rc = take_head(st, ref, buf, len);
	return unlock(st, rc);
}

int stash_read(struct stash *st, const struct stash_ref *ref, uint64_t off,
    void *buf, size_t len)
{
	const struct stash_chunk *c;
	unsigned char *p = buf;
	uint32_t have, n;

	lock(st);
	if (off > run_len(ref) || len > run_len(ref) - off)
		return unlock(st, fail(EXIT_IO, "parking store: bytes "
		    "0x%llx+0x%zx read from a run of 0x%llx",
		    (unsigned long long)off, len,
		    (unsigned long long)ref->len));
	for (c = ref->head; len > 0; c = c->next) {
		have = c->hi - c->lo;
		if (off >= have) {
			off -= have;
			continue;
		}
		n = have - off < len ? have - off : len;
		if (chunk_read(st, c, off, n, p) < 0)
			return unlock(st, -1);
		p += n;
		len -= n;
		off = 0;
	}
	return unlock(st, 0);
}

int stash_peek(struct stash *st, const struct stash_ref *ref, void *buf)
{
	return stash_read(st, ref, 0, buf, ref->len);
}

void stash_drop_head(struct stash *st, struct stash_ref *ref, uint64_t len)
{
	lock(st);
	take_head(st, ref, NULL, len < run_len(ref) ? len : run_len(ref));
	unlock(st, 0);
}

void stash_drop_tail(struct stash *st, struct stash_ref *ref, uint64_t len)
{
	struct stash_chunk *t;
	uint32_t n;

	lock(st);
	if (len > run_len(ref))
		len = run_len(ref);
	while (len > 0) {
		t = ref->tail;
		n = t->hi - t->lo < len ? t->hi - t->lo : len;
		tail_release(st, ref, n);
		len -= n;
	}
	unlock(st, 0);
}

void stash_drop(struct stash *st, struct stash_ref *ref)
{
	lock(st);
	drop_all(st, ref);
	unlock(st, 0);
}

int stash_charge(struct stash *st, int64_t delta)
{
	lock(st);
	if (delta < 0) {
		if ((uint64_t)-delta > st->charged)
			delta = -(int64_t)st->charged;
	} else {
		int room = bookkeeping_fits(st, delta) < 0 ? -1 :
		    make_room(st, delta, NULL);

		if (room == 0)
			over_budget(st);
		if (room <= 0)
			return unlock(st, -1);
	}
	st->charged += delta;
	mem_add(st, delta, true);
	return unlock(st, 0);
}

static uint64_t array_cost(size_t cap, size_t elem)
{
	return cap ? (uint64_t)cap * elem + STASH_MALLOC_OVERHEAD : 0;
}

int stash_grow_array(struct stash *st, void *arrp, size_t n, size_t *cap,
    size_t elem, size_t first)
{
	size_t want = *cap ? 2 * *cap : first;
	int64_t delta;
	int rc;

	if (n < *cap)
		return 0;
	if (want > SIZE_MAX / elem)
		return fail(EXIT_IO, "out of memory");
	delta = array_cost(want, elem) - array_cost(*cap, elem);
	if (stash_charge(st, delta) < 0)
		return -1;
	rc = grow_array(arrp, n, cap, elem, first, SIZE_MAX);
	if (rc != 0) {
		stash_charge(st, -delta);
		return -1;
	}
	return 0;
}

static void report(const struct stash *st)
{
	fprintf(stderr, "%s: parking store: budget=%llu mem_peak=%llu "
	    "parked_peak=%llu file_peak=%llu file_disk_peak=%llu "
	    "file_excess_peak=%llu file_disk_excess_peak=%llu slack=%u\n",
	    progname, (unsigned long long)st->budget,
	    (unsigned long long)st->mem_peak,
	    (unsigned long long)st->parked_peak,
	    (unsigned long long)st->file_peak,
	    (unsigned long long)st->file_disk_peak,
	    (unsigned long long)st->file_excess_peak,
	    (unsigned long long)st->file_disk_excess_peak,
	    STASH_FILE_SLACK);
}

/* Pieces no caller dropped (an error path) go with the store. */
static void free_list(struct stash_chunk *c)
{
	struct stash_chunk *next;

	for (; c != NULL; c = next) {
		next = c->newer;
		free(c->mem);
		free(c);
	}
}

void stash_free(struct stash *st)
{
	if (st->stats)
		report(st);
	free_list(st->oldest);
	free_list(st->file_first);
	st->oldest = st->newest = st->file_first = st->file_last = NULL;
	free(st->free_slots);
	free(st->slots);
	free(st->pack_buf);
	st->free_slots = NULL;
	st->slots = NULL;
	st->pack_buf = NULL;
	st->nfree = st->capslots = st->nslots = 0;
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	pthread_mutex_destroy(&st->lock);
}
