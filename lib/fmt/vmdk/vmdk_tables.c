/*
 * An extent read by its tables.  One set of rules from a file and from a
 * pipe, checked in one order, so that an image gets the same verdict and
 * message both ways (issue 14):
 *
 *  1. the GD and, when the header names one, the redundant GD are read
 *     (the lower first); an entry present in one and not the other is
 *     malformed: VMware would recover another disk from the copy than
 *     qemu reads from the primary;
 *  2. no table overlaps the header, the descriptor or another table
 *     (overlap), no two GD entries name one GT (shared-block);
 *  3. every GT and RGT is read in file order (a pipe keeps what it passes
 *     over) and each RGT must equal its GT;
 *  4. the allocated grains, sorted by where they lie, one by one: none
 *     shares a sector with another (shared-block), overlaps a table or
 *     the previous grain (overlap) or runs past the end (truncated); a
 *     compressed grain's marker must name the LBA its GT gives it;
 *  5. the file reaches overHead, where grains start.
 *
 * A file is checked whole first, then read in virtual order, a run of
 * adjacent grains at a time; walking it (imginfo) stops after the checks,
 * having read the tables and the compressed grains' markers, no data.  A
 * pipe is checked grain by grain as it is read in file order, grains met
 * before their tables read back from what the source kept (its retention,
 * in the one parking store) and released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

#define VMDK_NO_SLOT UINT32_MAX
#define VMDK_REDUNDANT (1u << 31)	/* in a GT's order key: the RGT */
#define VMDK_FILLED_GT 1u
#define VMDK_FILLED_RGT 2u

static uint64_t gt_bytes(const struct vmdk *v)
{
	return (uint64_t)v->h.gtes_per_gt * VMDK_GTE_BYTES;
}

/* ---- where metadata lies ---- */

int vmdk_add_region(struct vmdk *v, uint64_t start, uint64_t len,
    enum vmdk_region_kind kind, uint64_t index)
{
	struct vmdk_region *r;

	if (grow_array(&v->meta, v->nmeta, &v->capmeta, sizeof *v->meta, 8,
	    SIZE_MAX) < 0)
		return -1;
	r = &v->meta[v->nmeta++];
	r->start = start;
	r->end = start + len;
	r->kind = kind;
	r->index = index;
	return 0;
}

void vmdk_region_name(const struct vmdk_region *r, char *buf, size_t len)
{
	static const char *const names[] = { "the header", "the descriptor",
	    "the grain directory", "the redundant grain directory",
	    "grain table", "redundant grain table" };

	if (r->kind == VMDK_REG_GT || r->kind == VMDK_REG_RGT)
		snprintf(buf, len, "%s %llu", names[r->kind],
		    (unsigned long long)r->index);
	else
		snprintf(buf, len, "%s", names[r->kind]);
}

static int vmdk_region_cmp(const void *a, const void *b)
{
	const struct vmdk_region *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

/* A table and its redundant twin at one place: FreeBSD mkimg's rgdOffset
 * == gdOffset, one directory serving as both. */
static bool vmdk_twins(const struct vmdk_region *a, const struct vmdk_region *b)
{
	if (a->start != b->start || a->end != b->end)
		return false;
	if ((a->kind == VMDK_REG_GD && b->kind == VMDK_REG_RGD) ||
	    (a->kind == VMDK_REG_RGD && b->kind == VMDK_REG_GD))
		return true;
	return ((a->kind == VMDK_REG_GT && b->kind == VMDK_REG_RGT) ||
	    (a->kind == VMDK_REG_RGT && b->kind == VMDK_REG_GT)) &&
	    a->index == b->index;
}

static int vmdk_region_clash(struct image *img, const struct vmdk_region *a,
    const struct vmdk_region *b)
{
	char an[48], bn[48];

	if (a->kind == b->kind && (a->kind == VMDK_REG_GT ||
	    a->kind == VMDK_REG_RGT) && a->start == b->start)
		return image_defect(img, FINDING_SHARED_BLOCK, "%sgrain "
		    "directory entries %llu and %llu name one grain table at "
		    "sector %llu", a->kind == VMDK_REG_RGT ? "redundant " : "",
		    (unsigned long long)a->index, (unsigned long long)b->index,
		    (unsigned long long)(b->start / VMDK_SECTOR));
	vmdk_region_name(b, bn, sizeof bn);
	vmdk_region_name(a, an, sizeof an);
	return image_defect(img, FINDING_OVERLAP, "%s at 0x%llx overlaps %s",
	    bn, (unsigned long long)b->start, an);
}

/* Sort the regions; any two sharing bytes are refused. */
static int vmdk_check_regions(struct image *img, struct vmdk *v)
{
	size_t last = 0;

	qsort(v->meta, v->nmeta, sizeof *v->meta, vmdk_region_cmp);
	for (size_t i = 1; i < v->nmeta; i++) {
		const struct vmdk_region *r = &v->meta[i], *p = &v->meta[last];

		if (r->start < p->end && !vmdk_twins(p, r))
			return vmdk_region_clash(img, p, r);
		if (r->end > p->end)
			last = i;
	}
	return 0;
}

/* The region of the last table starting before end, if it reaches past
 * start: what [start, end) overlaps. */
static const struct vmdk_region *vmdk_region_over(const struct vmdk *v,
    uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = v->nmeta;

	while (lo < hi) {		/* first region starting at or after end */
		size_t mid = (lo + hi) / 2;

		if (v->meta[mid].start < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || v->meta[lo - 1].end <= start)
		return NULL;
	return &v->meta[lo - 1];
}

/* The header, the descriptor and the directories: known from the header,
 * checked before any directory is read (a pipe reads each byte once). */
static int vmdk_directory_regions(struct vmdk *v)
{
	uint64_t gdlen = v->ngts * VMDK_GDE_BYTES;

	return vmdk_add_region(v, 0, VMDK_SECTOR, VMDK_REG_HEADER, 0) < 0 ||
	    (v->h.desc_offset != 0 && v->h.desc_sectors != 0 &&
	    vmdk_add_region(v, v->h.desc_offset * VMDK_SECTOR,
	    v->h.desc_sectors * VMDK_SECTOR, VMDK_REG_DESC, 0) < 0) ||
	    vmdk_add_region(v, v->h.gd_offset * VMDK_SECTOR, gdlen,
	    VMDK_REG_GD, 0) < 0 || (v->use_rgd && vmdk_add_region(v,
	    v->h.rgd_offset * VMDK_SECTOR, gdlen, VMDK_REG_RGD, 0) < 0) ?
	    -1 : 0;
}

/* The GTs, once the directories are read. */
static int vmdk_table_regions(struct vmdk *v)
{
	for (uint64_t g = 0; g < v->ngts; g++)
		if ((v->gd[g] != 0 && vmdk_add_region(v, (uint64_t)v->gd[g] *
		    VMDK_SECTOR, gt_bytes(v), VMDK_REG_GT, g) < 0) ||
		    (v->use_rgd && v->rgd[g] != 0 && vmdk_add_region(v,
		    (uint64_t)v->rgd[g] * VMDK_SECTOR, gt_bytes(v),
		    VMDK_REG_RGT, g) < 0))
			return -1;
	return 0;
}

/* ---- the tables ---- */

/*
 * size bytes of zeros for a table, charged to the one budget as the other
 * bookkeeping is (the GD, the GTs, the sorted grain list: 12 bytes per
 * allocated grain of 512 bytes); beyond it, "raise --mem".  NULL with
 * the error recorded.
 */
static void *vmdk_table_alloc(struct image *img, struct vmdk *v, size_t size)
{
	uint64_t cost = (uint64_t)size + STASH_MALLOC_OVERHEAD;
	void *p;

	if (stash_charge(img->stash, (int64_t)cost) < 0)
		return NULL;
	p = calloc(1, size);
	if (p == NULL) {
		stash_charge(img->stash, -(int64_t)cost);
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	v->tables_charged += cost;
	return p;
}

static int vmdk_load_directory(struct image *img, struct vmdk *v,
    uint64_t sector, uint32_t **out, const char *what)
{
	size_t len = v->ngts * VMDK_GDE_BYTES;
	unsigned char *raw;
	uint32_t *gd = vmdk_table_alloc(img, v, len + sizeof *gd);

	*out = gd;
	if (gd == NULL)
		return -1;
	raw = malloc(len + 1);
	if (raw == NULL)
		return fail(EXIT_IO, "out of memory");
	if (vmdk_meta_read(img, v, raw, len, sector * VMDK_SECTOR, what) < 0) {
		free(raw);
		return -1;
	}
	for (size_t g = 0; g < v->ngts; g++)
		gd[g] = le32(raw + VMDK_GDE_BYTES * g);
	free(raw);
	return 0;
}

/* The GD and the RGD (the lower first: a pipe goes forward); they must
 * name GTs for the same entries. */
static int vmdk_load_directories(struct image *img, struct vmdk *v)
{
	bool rgd_first = v->use_rgd && v->h.rgd_offset < v->h.gd_offset;

	if (rgd_first && vmdk_load_directory(img, v, v->h.rgd_offset, &v->rgd,
	    "redundant grain directory") < 0)
		return -1;
	if (vmdk_load_directory(img, v, v->h.gd_offset, &v->gd,
	    "grain directory") < 0)
		return -1;
	if (v->use_rgd && !rgd_first && vmdk_load_directory(img, v,
	    v->h.rgd_offset, &v->rgd, "redundant grain directory") < 0)
		return -1;
	for (uint64_t g = 0; v->use_rgd && g < v->ngts; g++)
		if ((v->gd[g] == 0) != (v->rgd[g] == 0))
			return image_bad(img, "grain directory entry %llu (%u) "
			    "and its redundant copy (%u) disagree",
			    (unsigned long long)g, v->gd[g], v->rgd[g]);
	return 0;
}

/*
 * A number for each GT present, and 9 bytes of bookkeeping for it.  The
 * GTs themselves are not kept: a monolithicSparse extent has every GT
 * from its creation (2 KiB for each 32 MiB of capacity: 128 MiB for the
 * 2 TiB VMware allows), and only the grains they place are needed.
 */
static int vmdk_assign_slots(struct image *img, struct vmdk *v)
{
	uint64_t n = 0;

	v->slot = vmdk_table_alloc(img, v, v->ngts * sizeof *v->slot + 1);
	if (v->slot == NULL)
		return -1;
	for (uint64_t g = 0; g < v->ngts; g++)
		v->slot[g] = v->gd[g] != 0 ? (uint32_t)n++ : VMDK_NO_SLOT;
	v->npresent = n;
	v->gt_sum = vmdk_table_alloc(img, v, (n + 1) * sizeof *v->gt_sum);
	if (v->gt_sum == NULL)
		return -1;
	v->filled = vmdk_table_alloc(img, v, n + 1);
	return v->filled != NULL ? 0 : -1;
}

/* The grains GT g places, added to the list in file order's form. */
static int vmdk_list_gt(struct image *img, struct vmdk *v, uint64_t g,
    const unsigned char *raw)
{
	for (uint32_t j = 0; j < v->h.gtes_per_gt; j++) {
		uint64_t gi = g * v->h.gtes_per_gt + j;
		uint32_t e = le32(raw + VMDK_GTE_BYTES * j);

		if (gi >= v->ngrains)
			break;
		if (!vmdk_gte_grain(v, e))
			continue;
		if (stash_grow_array(img->stash, &v->order, v->nalloc,
		    &v->capalloc, sizeof *v->order, 512) < 0)
			return -1;
		v->order[v->nalloc++] = (uint64_t)e << 32 | gi;
	}
	return 0;
}

/*
 * The GT, or the RGT, of GD entry g: the first of the two read gives the
 * grains; the second must have the same bytes.  Compared by a 64-bit
 * XXH3 of each, not kept whole (see vmdk_assign_slots): which entry
 * differs is not said, and a pair made to collide would pass, which
 * costs nothing but the check (qemu-img reads no RGT at all).
 */
static int vmdk_load_gt(struct image *img, struct vmdk *v, uint64_t g,
    bool redundant, unsigned char *raw)
{
	uint64_t sector = redundant ? v->rgd[g] : v->gd[g];
	uint32_t slot = v->slot[g];
	uint64_t sum;
	char what[64];

	snprintf(what, sizeof what, "%sgrain table %llu",
	    redundant ? "redundant " : "", (unsigned long long)g);
	if (vmdk_meta_read(img, v, raw, gt_bytes(v), sector * VMDK_SECTOR,
	    what) < 0)
		return -1;
	sum = XXH3_64bits(raw, gt_bytes(v));
	if (v->filled[slot] == 0) {
		v->gt_sum[slot] = sum;
		if (vmdk_list_gt(img, v, g, raw) < 0)
			return -1;
	} else if (v->gt_sum[slot] != sum) {
		return image_bad(img, "grain table %llu differs from its "
		    "redundant copy", (unsigned long long)g);
	}
	v->filled[slot] |= redundant ? VMDK_FILLED_RGT : VMDK_FILLED_GT;
	return 0;
}

/* Every GT (and RGT), in file order. */
static int vmdk_load_gts(struct image *img, struct vmdk *v)
{
	uint64_t *order = malloc((2 * v->npresent + 1) * sizeof *order), n = 0;
	unsigned char *raw = malloc(gt_bytes(v));
	int rc = 0;

	if (order == NULL || raw == NULL) {
		free(order);
		free(raw);
		return fail(EXIT_IO, "out of memory");
	}
	for (uint64_t g = 0; g < v->ngts; g++) {
		if (v->gd[g] != 0)
			order[n++] = (uint64_t)v->gd[g] << 32 | g;
		if (v->use_rgd && v->rgd[g] != 0)
			order[n++] = (uint64_t)v->rgd[g] << 32 | g |
			    VMDK_REDUNDANT;
	}
	sort_u64(order, n);
	for (uint64_t i = 0; i < n && rc == 0; i++)
		rc = vmdk_load_gt(img, v, (uint32_t)order[i] & ~VMDK_REDUNDANT,
		    (uint32_t)order[i] & VMDK_REDUNDANT, raw);
	free(raw);
	free(order);
	return rc;
}

static int vmdk_load_tables(struct image *img, struct vmdk *v)
{
	if (v->ngrains > UINT32_MAX)
		return image_bad(img, "%llu grains are more than this reader "
		    "indexes (%u)", (unsigned long long)v->ngrains, UINT32_MAX);
	if (vmdk_directory_regions(v) < 0 || vmdk_check_regions(img, v) < 0 ||
	    vmdk_load_directories(img, v) < 0 ||
	    vmdk_assign_slots(img, v) < 0 || vmdk_table_regions(v) < 0 ||
	    vmdk_check_regions(img, v) < 0 || vmdk_load_gts(img, v) < 0)
		return -1;
	/* the allocated grains, sorted by where they lie */
	sort_u64(v->order, v->nalloc);
	return 0;
}

/* ---- a grain, where it lies ---- */

/* Grain gi's bytes on the disk: a grain, less past the capacity. */
static uint64_t vmdk_grain_len(const struct image *img, const struct vmdk *v,
    uint64_t gi)
{
	uint64_t off = gi * v->grain_bytes;

	return img->virtual_size - off < v->grain_bytes ?
	    img->virtual_size - off : v->grain_bytes;
}

/* Where the grains of the file order have been, so far. */
struct vmdk_cursor {
	uint64_t i;			/* in v->order */
	uint64_t prev_end;		/* end of the grain before */
	uint64_t prev_gi;
};

static void vmdk_grain_what(char *buf, size_t len, uint64_t gi)
{
	snprintf(buf, len, "grain %llu", (unsigned long long)gi);
}

/*
 * Grain gi at [host, end): not on a table, not on the grain before, not
 * past the end.  end == host + 1 checks where it starts (a compressed
 * grain's length is known once its marker is read).
 */
static int vmdk_check_place(struct image *img, struct vmdk *v,
    const struct vmdk_cursor *c, uint64_t gi, uint64_t host, uint64_t end)
{
	const struct vmdk_region *r = vmdk_region_over(v, host, end);
	char what[48], name[48];
	uint64_t size;

	if (r != NULL) {
		vmdk_region_name(r, name, sizeof name);
		return image_defect(img, FINDING_OVERLAP, "grain %llu at 0x%llx "
		    "overlaps %s", (unsigned long long)gi,
		    (unsigned long long)host, name);
	}
	if (c->i > 0 && host < c->prev_end)
		return image_defect(img, FINDING_OVERLAP, "grain %llu at 0x%llx "
		    "overlaps grain %llu", (unsigned long long)gi,
		    (unsigned long long)host, (unsigned long long)c->prev_gi);
	vmdk_grain_what(what, sizeof what, gi);
	if (vmdk_input_size(img, v, &size) && end > size)
		return vmdk_past_end(img, what, host);
	return 0;
}

/* Grain gi at host, of the file order: named once. */
static int vmdk_check_shared(struct image *img, struct vmdk *v,
    const struct vmdk_cursor *c, uint64_t gi, uint64_t host)
{
	if (c->i > 0 && v->order[c->i] >> 32 == v->order[c->i - 1] >> 32)
		return image_defect(img, FINDING_SHARED_BLOCK, "grains %llu and "
		    "%llu share sector %llu", (unsigned long long)c->prev_gi,
		    (unsigned long long)gi,
		    (unsigned long long)(host / VMDK_SECTOR));
	return 0;
}

/* A compressed grain's marker (12 bytes at host), from a file or a pipe. */
static int vmdk_read_head(struct image *img, struct vmdk *v, uint64_t gi,
    uint64_t host, uint32_t *csize)
{
	unsigned char head[VMDK_MARKER_HEAD];
	uint64_t lba, mgi;
	char what[48];

	vmdk_grain_what(what, sizeof what, gi);
	if (vmdk_meta_read(img, v, head, sizeof head, host, what) < 0)
		return -1;
	lba = le64(head + VMDK_MARKER_VAL);
	*csize = le32(head + VMDK_MARKER_SIZE);
	if (vmdk_marker_grain(img, v, lba, *csize, host, &mgi) < 0)
		return -1;
	if (mgi != gi)
		return image_bad(img, "grain marker at 0x%llx has LBA %llu, but "
		    "the grain table puts it at LBA %llu",
		    (unsigned long long)host, (unsigned long long)lba,
		    (unsigned long long)(gi * v->h.grain_sectors));
	return 0;
}

/*
 * The checks of grain c->i of the file order; *len: its bytes in the
 * file (a compressed grain's marker is read for it).
 */
static int vmdk_check_grain(struct image *img, struct vmdk *v,
    struct vmdk_cursor *c, uint64_t *len)
{
	uint64_t host = (v->order[c->i] >> 32) * VMDK_SECTOR;
	uint64_t gi = (uint32_t)v->order[c->i];
	uint32_t csize;

	if (vmdk_check_shared(img, v, c, gi, host) < 0)
		return -1;
	if (v->h.flags & VMDK_FLAG_COMPRESSED) {
		if (vmdk_check_place(img, v, c, gi, host, host + 1) < 0 ||
		    vmdk_read_head(img, v, gi, host, &csize) < 0)
			return -1;
		*len = VMDK_MARKER_HEAD + (uint64_t)csize;
	} else
		*len = v->grain_bytes;	/* whole grains, as VMware and qemu */
	return vmdk_check_place(img, v, c, gi, host, host + *len);
}

static void vmdk_cursor_next(const struct vmdk *v, struct vmdk_cursor *c,
    uint64_t len)
{
	uint64_t host = (v->order[c->i] >> 32) * VMDK_SECTOR;

	c->prev_end = host + len;
	c->prev_gi = (uint32_t)v->order[c->i];
	c->i++;
}

/* From a file: every grain checked before any is read. */
static int vmdk_check_all_grains(struct image *img, struct vmdk *v)
{
	struct vmdk_cursor c = { 0 };
	uint64_t len;

	while (c.i < v->nalloc) {
		if (vmdk_check_grain(img, v, &c, &len) < 0)
			return -1;
		vmdk_cursor_next(v, &c, len);
	}
	return 0;
}

/* The input reaches overHead, where the grains start. */
int vmdk_check_overhead(struct image *img, struct vmdk *v)
{
	static const char what[] = "the first grain (overHead)";
	uint64_t at = v->h.overhead * VMDK_SECTOR, size;

	if (vmdk_input_size(img, v, &size))
		return at > size ? vmdk_past_end(img, what, at) : 0;
	return vmdk_pipe_advance(img, v, at, what);
}

/* ---- reading grains ---- */

/* A compressed grain at host, its marker checked: inflate and emit. */
static int vmdk_compressed_at(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t host, uint32_t csize)
{
	const unsigned char *p;
	char what[48];
	int64_t n;

	vmdk_grain_what(what, sizeof what, gi);
	if (img->src->seekable) {
		p = vmdk_window(img, v, host, VMDK_MARKER_HEAD + csize, what);
		if (p == NULL)
			return -1;
		p += VMDK_MARKER_HEAD;
	} else {
		if (vmdk_read_part(img, v, v->win, csize,
		    host + VMDK_MARKER_HEAD, what, host) < 0)
			return -1;
		vmdk_pipe_release(img, host, VMDK_MARKER_HEAD + csize);
		p = v->win;
	}
	if (img->inspect)	/* imginfo inflates nothing, file or pipe */
		return 0;
	n = vmdk_inflate(img, v, p, csize, host);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

/* The same, into the batch: inflated with the grains around it. */
static int vmdk_batch_at(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_batch *b, uint64_t gi, uint64_t host,
    uint32_t csize)
{
	const unsigned char *p;
	unsigned char *c;
	char what[48];

	vmdk_grain_what(what, sizeof what, gi);
	p = vmdk_window(img, v, host, VMDK_MARKER_HEAD + csize, what);
	if (p == NULL || (c = vmdk_batch_room(img, v, em, b, csize)) == NULL)
		return -1;
	memcpy(c, p + VMDK_MARKER_HEAD, csize);
	vmdk_batch_push(b, csize, csize, gi, host, gi * v->grain_bytes);
	return 0;
}

struct vmdk_run {			/* uncompressed grains, one read */
	uint64_t virt, host, len;
	bool filled;			/* a pipe: the bytes are in v->run */
};

static int vmdk_flush_run(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *r)
{
	int rc = 0;

	/* from a file, holes of the file are zeros without reading them */
	if (r->len > 0 && !r->filled)
		rc = image_copy_range(img, em, v->run, r->len, r->host, r->len,
		    v->vbase + r->virt, "grain");
	else if (r->len > 0)
		rc = vmdk_emit_data(v, em, r->virt, v->run, r->len);
	r->len = 0;
	r->filled = false;
	return rc;
}

/*
 * Add grain gi at host to the run, emitting the run first if it can't.
 * From a pipe the grain is read now, whole (its part past the capacity
 * too: a file must hold it, as the checks from a file say).
 */
static int vmdk_run_add(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_run *r, uint64_t gi, uint64_t host)
{
	uint64_t virt = gi * v->grain_bytes, len = vmdk_grain_len(img, v, gi);
	char what[48];

	if (r->len > 0 && (r->virt + r->len != virt || r->host + r->len != host ||
	    r->len + v->grain_bytes > VMDK_RUN_MAX) &&
	    vmdk_flush_run(img, v, em, r) < 0)
		return -1;
	if (r->len == 0) {
		r->virt = virt;
		r->host = host;
		r->filled = !img->src->seekable;
	}
	vmdk_grain_what(what, sizeof what, gi);
	if (r->filled && vmdk_meta_read(img, v, v->run + r->len,
	    v->grain_bytes, host, what) < 0)
		return -1;
	r->len += len;
	return 0;
}

/* ---- a file: virtual order ---- */

/* The grain list turned to index << 32 | host and sorted: by index. */
static void vmdk_order_by_grain(struct vmdk *v)
{
	for (uint64_t i = 0; i < v->nalloc; i++)
		v->order[i] = v->order[i] << 32 | v->order[i] >> 32;
	sort_u64(v->order, v->nalloc);
}

static int vmdk_read_virtual_order(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_batch *b)
{
	bool compressed = v->h.flags & VMDK_FLAG_COMPRESSED;
	struct vmdk_run run = { 0 };
	uint32_t csize;

	vmdk_order_by_grain(v);
	for (uint64_t i = 0; i < v->nalloc; i++) {
		uint64_t gi = v->order[i] >> 32;
		uint64_t host = (uint64_t)(uint32_t)v->order[i] * VMDK_SECTOR;

		if (compressed && b->on) {
			if (vmdk_read_head(img, v, gi, host, &csize) < 0 ||
			    vmdk_batch_at(img, v, em, b, gi, host, csize) < 0)
				return -1;
			continue;
		}
		/* virtual order: the disk below is complete */
		if (vmdk_emit_upto(v, em, run.len > 0 ? run.virt
		    : gi * v->grain_bytes) < 0)
			return -1;
		if (compressed ? vmdk_read_head(img, v, gi, host, &csize) < 0 ||
		    vmdk_compressed_at(img, v, em, gi, host, csize) < 0 :
		    vmdk_run_add(img, v, em, &run, gi, host) < 0)
			return -1;
	}
	if (vmdk_batch_flush(img, v, em, b) < 0)
		return -1;
	return vmdk_flush_run(img, v, em, &run);
}

/* Compressed grains from a file are inflated in batches. */
static int vmdk_read_grains(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	struct vmdk_batch b;
	int rc;

	if (vmdk_batch_start(img, v, &b) < 0)
		return -1;
	rc = vmdk_read_virtual_order(img, v, em, &b);
	if (rc < 0)
		vmdk_batch_fail(img, v, em, &b);
	vmdk_batch_end(&b);
	return rc;
}

/* ---- a pipe: file order ---- */

/* One grain of the file order: from the stream, or kept by the source
 * before its table came (then released). */
static int vmdk_pipe_grain(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *run, uint64_t gi, uint64_t host)
{
	uint64_t len = vmdk_grain_len(img, v, gi);

	char what[48];

	if (host >= img->src->pos)
		return vmdk_run_add(img, v, em, run, gi, host);
	vmdk_grain_what(what, sizeof what, gi);
	if (vmdk_flush_run(img, v, em, run) < 0 ||
	    vmdk_meta_read(img, v, v->run, v->grain_bytes, host, what) < 0)
		return -1;
	vmdk_pipe_release(img, host, v->grain_bytes);
	return vmdk_emit_data(v, em, gi * v->grain_bytes, v->run, len);
}

/* After grain i of the file order: below what is the disk complete? */
static int vmdk_pipe_promise(struct vmdk *v, struct emitter *em,
    const struct vmdk_run *run, uint32_t lowest)
{
	uint64_t upto = (uint64_t)lowest * v->grain_bytes;

	if (run->len > 0 && run->virt < upto)
		upto = run->virt;
	return vmdk_emit_upto(v, em, upto);
}

static int vmdk_read_file_order(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	bool compressed = v->h.flags & VMDK_FLAG_COMPRESSED;
	struct vmdk_run run = { 0 };
	struct vmdk_cursor c = { 0 };
	uint64_t lowest_cost = (v->nalloc + 1) * sizeof(uint32_t) +
	    STASH_MALLOC_OVERHEAD;
	uint32_t *lowest;
	uint64_t len;
	int rc = 0;

	/* 4 bytes a grain, charged to the budget while it is used */
	if (stash_charge(img->stash, (int64_t)lowest_cost) < 0)
		return -1;
	lowest = lowest_after(v->order, v->nalloc, (uint32_t)v->ngrains);
	if (lowest == NULL) {
		stash_charge(img->stash, -(int64_t)lowest_cost);
		return fail(EXIT_IO, "out of memory");
	}
	while (c.i < v->nalloc && rc == 0) {
		uint64_t host = (v->order[c.i] >> 32) * VMDK_SECTOR;
		uint64_t gi = (uint32_t)v->order[c.i];

		rc = vmdk_check_grain(img, v, &c, &len);
		if (rc == 0)
			rc = compressed ? vmdk_compressed_at(img, v, em, gi, host,
			    (uint32_t)(len - VMDK_MARKER_HEAD)) :
			    vmdk_pipe_grain(img, v, em, &run, gi, host);
		if (rc == 0)
			rc = vmdk_pipe_promise(v, em, &run, lowest[c.i + 1]);
		vmdk_cursor_next(v, &c, len);
	}
	free(lowest);
	stash_charge(img->stash, -(int64_t)lowest_cost);
	return rc < 0 ? -1 : vmdk_flush_run(img, v, em, &run);
}

/*
 * A pipe whose tables are all read: the source keeps what lies behind
 * while a grain there is still to be read, and nothing that comes next
 * (read once, in file order).
 */
static void vmdk_pipe_tables_kept(struct image *img, struct vmdk *v)
{
	if (v->nalloc > 0 && (v->order[0] >> 32) * VMDK_SECTOR <
	    img->src->pos)
		vmdk_pipe_tables_read(img);
	else
		(void)vmdk_pipe_forget(img);
}

int vmdk_read_tables(struct image *img, struct vmdk *v, struct emitter *em)
{
	if (vmdk_load_tables(img, v) < 0)
		return -1;
	if (!img->src->seekable) {
		vmdk_pipe_tables_kept(img, v);
		return vmdk_read_file_order(img, v, em) < 0 ||
		    vmdk_pipe_forget(img) < 0 ? -1 : vmdk_check_overhead(img, v);
	}
	if (vmdk_check_all_grains(img, v) < 0 ||
	    vmdk_check_overhead(img, v) < 0)
		return -1;
	return img->walk ? 0 : vmdk_read_grains(img, v, em);
}

void vmdk_free_tables(struct image *img, struct vmdk *v)
{
	if (v->tables_charged > 0)
		stash_charge(img->stash, -(int64_t)v->tables_charged);
	v->tables_charged = 0;
	if (v->capalloc > 0)
		stash_charge(img->stash, -(int64_t)(v->capalloc *
		    sizeof *v->order + STASH_MALLOC_OVERHEAD));
	v->capalloc = 0;
	free(v->gd);
	free(v->rgd);
	free(v->slot);
	free(v->gt_sum);
	free(v->filled);
	free(v->order);
	free(v->meta);
	v->gd = v->rgd = v->slot = NULL;
	v->gt_sum = NULL;
	v->filled = NULL;
	v->order = NULL;
	v->meta = NULL;
	v->nmeta = v->capmeta = 0;
}
