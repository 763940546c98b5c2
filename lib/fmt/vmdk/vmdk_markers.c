/*
 * A stream whose GD is at the end (VMware's and VirtualBox's layout) is
 * read marker by marker in file order, from a file as from a pipe: the
 * same reads, the same checks, the same verdict.  Grains are inflated as
 * they come; walking a file (imginfo) reads each grain's marker and skips
 * its deflated bytes.
 *
 * The tables at the end must describe what the markers placed, as qemu,
 * which reads such a stream by its footer's GD, would see it: each GT
 * entry names a grain marker met before it, of the LBA the entry stands
 * for; each GD entry names a GT met before it, of its group; the footer
 * names the GD; no grain is left out of every GT.  So the disk read by
 * markers (here, VirtualBox) is the disk read by tables (qemu).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

#define VMDK_NO_GROUP UINT64_MAX

struct vmdk_walk {			/* what the markers said so far */
	uint64_t off;			/* the next marker */
	uint64_t gd_sector;		/* the GD's first entry, or 0 */
	bool footer;
};

/*
 * Until the tables at the end, nothing says which grains are still to
 * come.  qemu-img and VMware write a stream's grains in increasing LBA
 * order, and an in-order sink (a pipe) should get the gaps between them
 * as zeros as the stream goes, not park all that follows.  So, while the
 * grains come in order, the disk below the grain before the last is
 * promised complete (one grain of lag: a stream that starts backwards is
 * seen to before anything is promised).  Once a grain comes below a
 * higher one, nothing more is promised: the grains wait in the emitter's
 * queue (the one parking store, spilling beyond the budget) until the
 * end.  Only a grain below what was promised, into an in-order sink,
 * cannot be placed, and the message says so.
 */
static int vmdk_marker_promise(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t where)
{
	uint64_t off = gi * v->grain_bytes, upto;

	if (img->walk)
		return 0;
	if (off < v->stream_promised && em->sink->in_order)
		return image_bad(img, "grain marker at 0x%llx (LBA %llu) comes "
		    "after grains at higher LBAs, below data already written "
		    "in order; write the output to a file to read a stream in "
		    "this order", (unsigned long long)where,
		    (unsigned long long)(gi * v->h.grain_sectors));
	if (off < v->stream_next || v->stream_unordered) {
		v->stream_unordered = true;
		return 0;
	}
	upto = v->stream_last;
	v->stream_last = off;
	v->stream_next = off + v->grain_bytes;
	if (upto <= v->stream_promised)
		return 0;
	v->stream_promised = upto;
	return vmdk_emit_upto(v, em, upto);
}

/* A grain met: recorded until a GT names it, the record charged to the
 * one budget (beyond it: "raise --mem"). */
static int vmdk_seen_grain(struct image *img, struct vmdk *v, uint64_t where,
    uint64_t gi)
{
	struct vmdk_seen_grain *s;

	if (stash_grow_array(img->stash, &v->seen, v->nseen, &v->capseen,
	    sizeof *v->seen, 512) < 0)
		return -1;
	s = &v->seen[v->nseen++];
	s->sector = where / VMDK_SECTOR;
	s->gi = (uint32_t)gi;
	s->claimed = false;
	return 0;
}

static int vmdk_read_grain_marker(struct image *img, struct vmdk *v,
    struct emitter *em, const unsigned char *sec, uint64_t *off)
{
	uint64_t where = *off;
	uint64_t lba = le64(sec + VMDK_MARKER_VAL), gi, rest, size;
	uint32_t csize = le32(sec + VMDK_MARKER_SIZE);
	unsigned char *c = v->win;
	int64_t n;

	if (vmdk_marker_grain(img, v, lba, csize, where, &gi) < 0 ||
	    vmdk_seen_grain(img, v, where, gi) < 0 ||
	    vmdk_marker_promise(img, v, em, gi, where) < 0)
		return -1;
	/* The marker's sector holds the first 500 compressed bytes. */
	rest = (VMDK_MARKER_HEAD + (uint64_t)csize + VMDK_SECTOR - 1) /
	    VMDK_SECTOR * VMDK_SECTOR - VMDK_SECTOR;
	*off = where + VMDK_SECTOR + rest;
	if (img->walk)		/* a file: where the grain ends is enough */
		return vmdk_input_size(img, v, &size) && *off > size ?
		    vmdk_past_end(img, "grain", where) : 0;
	memcpy(c, sec + VMDK_MARKER_HEAD, VMDK_SECTOR - VMDK_MARKER_HEAD);
	if (rest > 0 && vmdk_read_part(img, v, c + VMDK_SECTOR -
	    VMDK_MARKER_HEAD, rest, where + VMDK_SECTOR, "grain", where) < 0)
		return -1;
	if (img->inspect)	/* imginfo inflates nothing, file or pipe */
		return 0;
	n = vmdk_inflate(img, v, c, csize, where);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

/* The grain met at sector, or NULL. */
static struct vmdk_seen_grain *vmdk_find_seen(struct vmdk *v, uint64_t sector)
{
	size_t lo = 0, hi = v->nseen;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->seen[mid].sector < sector)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->nseen && v->seen[lo].sector == sector ? &v->seen[lo]
	    : NULL;
}

/* Forget the grains GTs have named, once they are half the list. */
static void vmdk_compact_seen(struct vmdk *v)
{
	size_t n = 0;

	if (v->nclaimed * 2 < v->nseen)
		return;
	for (size_t i = 0; i < v->nseen; i++)
		if (!v->seen[i].claimed)
			v->seen[n++] = v->seen[i];
	v->nseen = n;
	v->nclaimed = 0;
}

/* GT entry j (value e) of the GT at 'at' names a grain met, of its LBA. */
static int vmdk_claim(struct image *img, struct vmdk *v, uint64_t at,
    uint32_t j, uint32_t e, uint64_t *group)
{
	struct vmdk_seen_grain *s = vmdk_find_seen(v, e);

	if (s == NULL)
		return image_bad(img, "grain table at 0x%llx: entry %u names "
		    "sector %u, where no grain marker was met",
		    (unsigned long long)at, j, e);
	if (s->gi % v->h.gtes_per_gt != j || (*group != VMDK_NO_GROUP &&
	    s->gi / v->h.gtes_per_gt != *group))
		return image_bad(img, "grain table at 0x%llx: entry %u names "
		    "the grain of LBA %llu", (unsigned long long)at, j,
		    (unsigned long long)s->gi * v->h.grain_sectors);
	if (s->claimed)
		return image_defect(img, FINDING_SHARED_BLOCK, "grain table at "
		    "0x%llx: entry %u names the grain at sector %u a second "
		    "time", (unsigned long long)at, j, e);
	s->claimed = true;
	v->nclaimed++;
	*group = s->gi / v->h.gtes_per_gt;
	return 0;
}

/* A GT marker at off: the GT must name grains met, of its one group. */
static int vmdk_marker_gt(struct image *img, struct vmdk *v, uint64_t off,
    uint64_t nsec)
{
	uint64_t at = off + VMDK_SECTOR, group = VMDK_NO_GROUP;
	uint64_t want = (v->h.gtes_per_gt * VMDK_GTE_BYTES + VMDK_SECTOR - 1) /
	    VMDK_SECTOR;
	unsigned char *raw = v->win;
	struct vmdk_seen_gt *t;
	int rc;

	if (nsec != want)
		return image_bad(img, "grain table marker at 0x%llx declares "
		    "%llu sectors, a grain table has %llu",
		    (unsigned long long)off, (unsigned long long)nsec,
		    (unsigned long long)want);
	if (vmdk_meta_read(img, v, raw, nsec * VMDK_SECTOR, at,
	    "grain table") < 0)
		return -1;
	for (uint32_t j = 0; j < v->h.gtes_per_gt; j++) {
		uint32_t e = le32(raw + VMDK_GTE_BYTES * j);

		if (vmdk_gte_grain(v, e) && vmdk_claim(img, v, at, j, e,
		    &group) < 0)
			return -1;
	}
	vmdk_compact_seen(v);
	if (v->nseen_gts >= v->ngts)
		return image_bad(img, "grain table marker at 0x%llx: more grain "
		    "tables than the grain directory has entries (%llu)",
		    (unsigned long long)off, (unsigned long long)v->ngts);
	rc = grow_array(&v->seen_gts, v->nseen_gts, &v->capseen_gts,
	    sizeof *v->seen_gts, 16, SIZE_MAX);
	if (rc != 0)
		return -1;
	t = &v->seen_gts[v->nseen_gts++];
	t->sector = at / VMDK_SECTOR;
	t->group = group;
	return 0;
}

static const struct vmdk_seen_gt *vmdk_find_gt(const struct vmdk *v,
    uint64_t sector)
{
	for (size_t i = v->nseen_gts; i-- > 0;)
		if (v->seen_gts[i].sector == sector)
			return &v->seen_gts[i];
	return NULL;
}

/* A GD marker at off: each entry names a GT met, of its group. */
static int vmdk_marker_gd(struct image *img, struct vmdk *v,
    struct vmdk_walk *w, uint64_t off, uint64_t nsec)
{
	uint64_t want = (v->ngts * VMDK_GDE_BYTES + VMDK_SECTOR - 1) /
	    VMDK_SECTOR, at = off + VMDK_SECTOR;
	unsigned char *raw;
	int rc = 0;

	if (nsec != want)
		return image_bad(img, "grain directory marker at 0x%llx "
		    "declares %llu sectors, the grain directory has %llu",
		    (unsigned long long)off, (unsigned long long)nsec,
		    (unsigned long long)want);
	if (w->gd_sector != 0)
		return image_bad(img, "a second grain directory marker at "
		    "0x%llx", (unsigned long long)off);
	raw = malloc(nsec * VMDK_SECTOR);
	if (raw == NULL)
		return fail(EXIT_IO, "out of memory");
	if (vmdk_meta_read(img, v, raw, nsec * VMDK_SECTOR, at,
	    "grain directory") < 0)
		rc = -1;
	for (uint64_t g = 0; g < v->ngts && rc == 0; g++) {
		uint32_t e = le32(raw + VMDK_GDE_BYTES * g);
		const struct vmdk_seen_gt *t = e != 0 ? vmdk_find_gt(v, e)
		    : NULL;

		if (e != 0 && (t == NULL || (t->group != VMDK_NO_GROUP &&
		    t->group != g)))
			rc = image_bad(img, "grain directory at 0x%llx: entry "
			    "%llu names sector %u, where no grain table of its "
			    "grains lies", (unsigned long long)at,
			    (unsigned long long)g, e);
	}
	/* and each GT met is where the GD says its group's is */
	for (size_t i = 0; i < v->nseen_gts && rc == 0; i++) {
		const struct vmdk_seen_gt *t = &v->seen_gts[i];

		if (t->group != VMDK_NO_GROUP &&
		    le32(raw + VMDK_GDE_BYTES * t->group) != t->sector)
			rc = image_bad(img, "grain directory at 0x%llx: entry "
			    "%llu does not name the grain table of its grains "
			    "at sector %llu", (unsigned long long)at,
			    (unsigned long long)t->group,
			    (unsigned long long)t->sector);
	}
	free(raw);
	w->gd_sector = at / VMDK_SECTOR;
	return rc;
}

/* The footer marker at off: the footer must name the GD met. */
static int vmdk_marker_footer(struct image *img, struct vmdk *v,
    struct vmdk_walk *w, uint64_t off)
{
	unsigned char footer[VMDK_SECTOR];
	struct vmdk_header keep = v->h;
	uint64_t gd;
	int rc;

	if (vmdk_meta_read(img, v, footer, VMDK_SECTOR, off + VMDK_SECTOR,
	    "footer") < 0)
		return -1;
	rc = vmdk_check_footer(img, v, footer);
	gd = v->h.gd_offset;
	v->h = keep;
	if (rc < 0)
		return -1;
	if (gd != w->gd_sector)
		return image_bad(img, "the footer's gdOffset (sector %llu) is "
		    "not where the grain directory lies (sector %llu)",
		    (unsigned long long)gd, (unsigned long long)w->gd_sector);
	w->footer = true;
	return 0;
}

/*
 * How many sectors a metadata marker at off covers, itself included.  A
 * type-4 marker (vSphere's, undocumented) is one sector, as VirtualBox
 * reads it; other markers say how many sectors of metadata follow, and a
 * type we do not know is skipped by that count.
 */
static int vmdk_metadata_span(struct image *img, const struct vmdk_marker *m,
    uint64_t off, uint64_t *nsec)
{
	if (m->type == VMDK_MARKER_UNSPECIFIED) {
		*nsec = 1;
		return 0;
	}
	if (m->type == VMDK_MARKER_FOOTER && m->val != 1)
		return image_bad(img, "footer marker at 0x%llx declares %llu "
		    "sectors, not 1", (unsigned long long)off,
		    (unsigned long long)m->val);
	if (m->val > (UINT64_MAX - off) / VMDK_SECTOR - 1)
		return image_bad(img, "marker at 0x%llx declares %llu "
		    "sectors", (unsigned long long)off,
		    (unsigned long long)m->val);
	*nsec = m->val + 1;
	return 0;
}

static int vmdk_metadata_marker(struct image *img, struct vmdk *v,
    struct vmdk_walk *w, const struct vmdk_marker *m)
{
	uint64_t nsec = 0;

	if (vmdk_metadata_span(img, m, w->off, &nsec) < 0)
		return -1;
	if ((m->type == VMDK_MARKER_GT && vmdk_marker_gt(img, v, w->off,
	    m->val) < 0) || (m->type == VMDK_MARKER_GD &&
	    vmdk_marker_gd(img, v, w, w->off, m->val) < 0) ||
	    (m->type == VMDK_MARKER_FOOTER && vmdk_marker_footer(img, v, w,
	    w->off) < 0))
		return -1;
	w->off += nsec * VMDK_SECTOR;
	return 0;
}

/* At the end-of-stream marker: the tables named every grain. */
static int vmdk_stream_end(struct image *img, struct vmdk *v,
    const struct vmdk_walk *w)
{
	for (size_t i = 0; i < v->nseen; i++)
		if (!v->seen[i].claimed)
			return image_bad(img, "grain marker at 0x%llx (LBA "
			    "%llu) is in no grain table",
			    (unsigned long long)(v->seen[i].sector * VMDK_SECTOR),
			    (unsigned long long)v->seen[i].gi *
			    v->h.grain_sectors);
	if (!w->footer)
		return image_bad(img, "the stream ends (end-of-stream marker at "
		    "0x%llx) without the footer its gdOffset GD_AT_END "
		    "promises", (unsigned long long)w->off);
	return vmdk_drain(img, v);
}

/* The grains start at overHead, past the header and the descriptor. */
static int vmdk_stream_start(struct image *img, struct vmdk *v, uint64_t *off)
{
	uint64_t desc_end = (v->h.desc_offset + v->h.desc_sectors) *
	    VMDK_SECTOR;

	*off = v->h.overhead * VMDK_SECTOR;
	if (*off < VMDK_SECTOR || (v->h.desc_offset != 0 && *off < desc_end))
		return image_defect(img, FINDING_OVERLAP, "the grains start at "
		    "sector %llu (overHead), inside the %s",
		    (unsigned long long)v->h.overhead, *off < VMDK_SECTOR ?
		    "header" : "descriptor");
	return 0;
}

int vmdk_read_markers(struct image *img, struct vmdk *v, struct emitter *em)
{
	unsigned char sec[VMDK_SECTOR];
	struct vmdk_walk w = { 0 };
	struct vmdk_marker m;

	if (vmdk_stream_start(img, v, &w.off) < 0)
		return -1;
	for (;;) {
		if (vmdk_meta_read(img, v, sec, VMDK_SECTOR, w.off,
		    "marker") < 0)
			return -1;
		vmdk_marker_get(&m, sec);
		if (m.size != 0) {
			if (vmdk_read_grain_marker(img, v, em, sec, &w.off) < 0)
				return -1;
		} else if (m.type == VMDK_MARKER_EOS)
			return vmdk_stream_end(img, v, &w);
		else if (vmdk_metadata_marker(img, v, &w, &m) < 0)
			return -1;
	}
}
