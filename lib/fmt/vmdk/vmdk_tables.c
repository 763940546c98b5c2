/*
 * An extent read by its tables: the GD (and the redundant GD) and every
 * GT they name are loaded first, the same way from a file and from a
 * pipe (in file order; a pipe keeps what it passes over).  Then a file
 * is read in virtual order, a run of adjacent grains at a time, and a
 * pipe in file order, grains met before their tables taken back from the
 * stash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

#define VMDK_NO_SLOT UINT32_MAX
#define VMDK_REDUNDANT (1u << 31)	/* in a GT's order key: the RGT */
#define VMDK_FILLED_GT 1u
#define VMDK_FILLED_RGT 2u

static uint64_t gt_bytes(const struct vmdk *v)
{
	return (uint64_t)v->h.gtes_per_gt * VMDK_GTE_BYTES;
}

/* Grain table entries of grain gi, or NULL when its GT is absent. */
static const uint32_t *vmdk_gt_of(const struct vmdk *v, uint64_t g)
{
	return v->slot[g] == VMDK_NO_SLOT ? NULL :
	    v->gts + (uint64_t)v->slot[g] * v->h.gtes_per_gt;
}

static int vmdk_load_directory(struct image *img, struct vmdk *v,
    uint64_t sector, uint32_t **out, const char *what)
{
	size_t len = v->ngts * VMDK_GDE_BYTES;
	unsigned char *raw = malloc(len + 1);
	uint32_t *gd = malloc(len + sizeof *gd);

	*out = gd;
	if (raw == NULL || gd == NULL) {
		free(raw);
		return fail(EXIT_IO, "out of memory");
	}
	if (vmdk_meta_read(img, v, raw, len, sector * VMDK_SECTOR, what) < 0) {
		free(raw);
		return -1;
	}
	for (size_t g = 0; g < v->ngts; g++)
		gd[g] = le32(raw + VMDK_GDE_BYTES * g);
	free(raw);
	return 0;
}

/* The GD and the RGD, the lower first (a pipe goes forward). */
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
	return 0;
}

/* A slot in gts for each GT present; memory grows with the GTs present. */
static int vmdk_assign_slots(struct image *img, struct vmdk *v)
{
	uint64_t n = 0;

	v->slot = malloc(v->ngts * sizeof *v->slot + 1);
	if (v->slot == NULL)
		return fail(EXIT_IO, "out of memory");
	for (uint64_t g = 0; g < v->ngts; g++)
		v->slot[g] = v->gd[g] != 0 ? (uint32_t)n++ : VMDK_NO_SLOT;
	if (n * gt_bytes(v) > IMAGE_META_MAX)
		return image_bad(img, "%llu grain tables of %llu bytes are "
		    "more than the %llu-byte limit", (unsigned long long)n,
		    (unsigned long long)gt_bytes(v), IMAGE_META_MAX);
	v->npresent = n;
	v->gts = malloc(n * gt_bytes(v) + 1);
	v->filled = calloc(n + 1, 1);
	if (v->gts == NULL || v->filled == NULL)
		return fail(EXIT_IO, "out of memory");
	return 0;
}

/* The GT, or the RGT, of GD entry g: kept, or compared with its twin. */
static int vmdk_load_gt(struct image *img, struct vmdk *v, uint64_t g,
    bool redundant, unsigned char *raw)
{
	uint64_t sector = redundant ? v->rgd[g] : v->gd[g];
	uint32_t slot = v->slot[g], *gt;
	unsigned char want = redundant ? VMDK_FILLED_RGT : VMDK_FILLED_GT;
	char what[64];

	snprintf(what, sizeof what, "%sgrain table %llu",
	    redundant ? "redundant " : "", (unsigned long long)g);
	if (vmdk_meta_read(img, v, raw, gt_bytes(v), sector * VMDK_SECTOR,
	    what) < 0)
		return -1;
	if (slot == VMDK_NO_SLOT)
		return 0;
	gt = v->gts + (uint64_t)slot * v->h.gtes_per_gt;
	for (uint32_t j = 0; j < v->h.gtes_per_gt; j++) {
		uint32_t e = le32(raw + VMDK_GTE_BYTES * j);

		if (v->filled[slot] == 0)
			gt[j] = e;
		else if (gt[j] != e)
			return image_bad(img, "grain table %llu differs from its "
			    "redundant copy (rgdOffset at 0x%x)",
			    (unsigned long long)g, VMDK_HDR_RGD_OFFSET);
	}
	v->filled[slot] |= want;
	return 0;
}

/* Every GT (and RGT), in file order. */
static int vmdk_load_gts(struct image *img, struct vmdk *v)
{
	uint64_t *order = malloc((2 * v->ngts + 1) * sizeof *order), n = 0;
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
		if (v->use_rgd && v->rgd[g] != 0 && v->slot[g] != VMDK_NO_SLOT)
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

/* The allocated grains, sorted by where they lie: host << 32 | index. */
static int vmdk_list_grains(struct vmdk *v)
{
	uint64_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		n = 0;
		for (uint64_t g = 0; g < v->ngts; g++) {
			const uint32_t *gt = vmdk_gt_of(v, g);

			for (uint32_t j = 0; gt != NULL && j < v->h.gtes_per_gt;
			    j++) {
				uint64_t gi = g * v->h.gtes_per_gt + j;

				if (gi >= v->ngrains)
					break;
				if (gt[j] == VMDK_GTE_UNALLOCATED ||
				    gt[j] == VMDK_GTE_ZERO)
					continue;
				if (pass == 1)
					v->order[n] = (uint64_t)gt[j] << 32 | gi;
				n++;
			}
		}
		if (pass == 0) {
			v->order = malloc((n + 1) * sizeof *v->order);
			if (v->order == NULL)
				return fail(EXIT_IO, "out of memory");
		}
	}
	v->nalloc = n;
	sort_u64(v->order, n);
	return 0;
}

static int vmdk_load_tables(struct image *img, struct vmdk *v)
{
	if (v->ngrains > UINT32_MAX)
		return image_bad(img, "%llu grains are more than this reader "
		    "indexes (%u)", (unsigned long long)v->ngrains, UINT32_MAX);
	if (vmdk_load_directories(img, v) < 0 ||
	    vmdk_assign_slots(img, v) < 0 || vmdk_load_gts(img, v) < 0)
		return -1;
	return vmdk_list_grains(v);
}

/* ---- a grain ---- */

/* Grain gi's bytes on the disk: a grain, less past the capacity. */
static uint64_t vmdk_grain_len(const struct image *img, const struct vmdk *v,
    uint64_t gi)
{
	uint64_t off = gi * v->grain_bytes;

	return img->virtual_size - off < v->grain_bytes ?
	    img->virtual_size - off : v->grain_bytes;
}

static int vmdk_check_gte(struct image *img, struct vmdk *v, uint64_t gi,
    uint32_t gte)
{
	uint64_t host = (uint64_t)gte * VMDK_SECTOR, size;

	if (vmdk_input_size(img, v, &size) && (host >= size ||
	    (!(v->h.flags & VMDK_FLAG_COMPRESSED) &&
	    size - host < vmdk_grain_len(img, v, gi))))
		return image_defect(img, FINDING_TRUNCATED, "grain %llu at "
		    "0x%llx lies past the end of the image (grain table "
		    "entry)", (unsigned long long)gi,
		    (unsigned long long)host);
	return 0;
}

/* A compressed grain at host: its marker, then its deflated bytes. */
static int vmdk_compressed_at(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t host)
{
	unsigned char head[VMDK_MARKER_HEAD], *c = v->win;
	const unsigned char *p;
	uint64_t mgi, lba;
	uint32_t csize;
	int64_t n;

	p = img->src->seekable ? vmdk_window(img, v, host, VMDK_MARKER_HEAD,
	    "grain marker") : head;
	if (p == NULL || (!img->src->seekable && image_read_at(img, head,
	    VMDK_MARKER_HEAD, host, "grain marker") < 0))
		return -1;
	lba = le64(p + VMDK_MARKER_VAL);
	csize = le32(p + VMDK_MARKER_SIZE);
	if (vmdk_marker_grain(img, v, lba, csize, host, &mgi) < 0)
		return -1;
	if (mgi != gi)
		return image_bad(img, "grain marker at 0x%llx has LBA %llu, but "
		    "the grain table puts it at LBA %llu",
		    (unsigned long long)host, (unsigned long long)lba,
		    (unsigned long long)(gi * v->h.grain_sectors));
	if (img->src->seekable) {
		p = vmdk_window(img, v, host, VMDK_MARKER_HEAD + csize, "grain");
		if (p == NULL)
			return -1;
		p += VMDK_MARKER_HEAD;
	} else {
		if (image_read_at(img, c, csize, host + VMDK_MARKER_HEAD,
		    "grain") < 0)
			return -1;
		p = c;
	}
	n = vmdk_inflate(img, v, p, csize, host);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

struct vmdk_run {			/* uncompressed grains, one read */
	uint64_t virt, host, len;
};

static int vmdk_flush_run(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *r)
{
	int rc = 0;

	if (r->len > 0)
		rc = image_read_at(img, v->run, r->len, r->host,
		    "grain") < 0 || vmdk_emit_data(v, em, r->virt, v->run,
		    r->len) < 0 ? -1 : 0;
	r->len = 0;
	return rc;
}

/* Add grain gi at host to the run, reading the run first if it can't. */
static int vmdk_run_add(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_run *r, uint64_t gi, uint64_t host)
{
	uint64_t virt = gi * v->grain_bytes, len = vmdk_grain_len(img, v, gi);

	if (r->len > 0 && (r->virt + r->len != virt || r->host + r->len != host ||
	    r->len + len > VMDK_RUN_MAX) && vmdk_flush_run(img, v, em, r) < 0)
		return -1;
	if (r->len == 0) {
		r->virt = virt;
		r->host = host;
	}
	r->len += len;
	return 0;
}

/* ---- a file: virtual order ---- */

static int vmdk_read_virtual_order(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	bool compressed = v->h.flags & VMDK_FLAG_COMPRESSED;
	struct vmdk_run run = { 0 };

	for (uint64_t g = 0; g < v->ngts; g++) {
		const uint32_t *gt = vmdk_gt_of(v, g);

		for (uint32_t j = 0; gt != NULL && j < v->h.gtes_per_gt; j++) {
			uint64_t gi = g * v->h.gtes_per_gt + j;
			uint64_t host = (uint64_t)gt[j] * VMDK_SECTOR;

			if (gi >= v->ngrains)
				break;
			if (gt[j] == VMDK_GTE_UNALLOCATED ||
			    gt[j] == VMDK_GTE_ZERO)
				continue;
			/* virtual order: the disk below is complete */
			if (vmdk_check_gte(img, v, gi, gt[j]) < 0 ||
			    vmdk_emit_upto(v, em, run.len > 0 ? run.virt
			    : gi * v->grain_bytes) < 0)
				return -1;
			if (compressed ? vmdk_compressed_at(img, v, em, gi,
			    host) < 0 : vmdk_run_add(img, v, em, &run, gi,
			    host) < 0)
				return -1;
		}
	}
	return vmdk_flush_run(img, v, em, &run);
}

/* ---- a pipe: file order ---- */

/* One grain of the file-ordered list: from the stream, or kept earlier. */
static int vmdk_pipe_grain(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *run, uint64_t gi, uint64_t host)
{
	uint64_t len = vmdk_grain_len(img, v, gi);

	if (host >= img->src->pos)
		return vmdk_run_add(img, v, em, run, gi, host);
	if (vmdk_flush_run(img, v, em, run) < 0 ||
	    vmdk_take_kept(img, v, host, v->run, len, "grain") < 0)
		return -1;
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
	struct vmdk_run run = { 0 };
	uint32_t *lowest;
	int rc = 0;

	lowest = lowest_after(v->order, v->nalloc, (uint32_t)v->ngrains);
	if (lowest == NULL)
		return fail(EXIT_IO, "out of memory");
	for (uint64_t i = 0; i < v->nalloc && rc == 0; i++) {
		uint64_t host = (v->order[i] >> 32) * VMDK_SECTOR;
		uint64_t gi = (uint32_t)v->order[i];

		if (i > 0 && v->order[i] >> 32 == v->order[i - 1] >> 32)
			rc = image_bad(img, "grains %llu and %llu share sector "
			    "%llu", (unsigned long long)(uint32_t)v->order[i - 1],
			    (unsigned long long)gi,
			    (unsigned long long)(v->order[i] >> 32));
		else if (v->h.flags & VMDK_FLAG_COMPRESSED)
			rc = host < img->src->pos ? image_bad(img, "compressed "
			    "grain at 0x%llx lies before its grain table",
			    (unsigned long long)host) : vmdk_compressed_at(img,
			    v, em, gi, host);
		else
			rc = vmdk_pipe_grain(img, v, em, &run, gi, host);
		if (rc == 0)
			rc = vmdk_pipe_promise(v, em, &run, lowest[i + 1]);
	}
	free(lowest);
	return rc < 0 ? -1 : vmdk_flush_run(img, v, em, &run);
}

int vmdk_read_tables(struct image *img, struct vmdk *v, struct emitter *em)
{
	if (vmdk_load_tables(img, v) < 0)
		return -1;
	if (img->src->seekable)
		return vmdk_read_virtual_order(img, v, em);
	return vmdk_read_file_order(img, v, em);
}

void vmdk_free_tables(struct vmdk *v)
{
	free(v->gd);
	free(v->rgd);
	free(v->slot);
	free(v->gts);
	free(v->filled);
	free(v->order);
	v->gd = v->rgd = v->slot = v->gts = NULL;
	v->filled = NULL;
	v->order = NULL;
}
