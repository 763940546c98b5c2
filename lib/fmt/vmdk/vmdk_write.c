/*
 * The VMDK writer (lib/fmt/vmdk/vmdk.h has the layout): streamOptimized,
 * what OVAs carry and ESXi imports, and monolithicSparse.
 *
 * streamOptimized is laid out as VMware's ovftool writes it: header
 * (version 3, gdOffset = GD_AT_END) and descriptor, grains from sector 128
 * on, each behind a grain marker and deflated (zlib format), a grain table
 * after the grains of each table that has any, then the grain directory,
 * the footer (the header again, with the real gdOffset) and the
 * end-of-stream marker.  Every table follows its grains, so it goes
 * straight into a pipe.  Grains are deflated on every core; the grain
 * marker is part of what a pool thread makes, so the writer only places.
 *
 * monolithicSparse is laid out as qemu-img writes it: header (version 1,
 * redundant tables), descriptor, redundant grain directory and tables,
 * grain directory and tables for the whole capacity, then the grains.
 * Into a file, each grain table is written as soon as its grains are;
 * into a pipe, the plan gives every table first.
 */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "imgpipe/bytes.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "fmt/vmdk/vmdk.h"

#define DESC_MAX 2048	/* our descriptor is well under four sectors */

struct vmdkw {
	const struct vmdk_wopts *o;
	uint64_t capacity;		/* sectors */
	uint64_t grain_sectors;
	uint64_t ngrains, ngts;
	uint64_t gd_sectors;		/* of one grain directory */
	uint64_t desc_sectors;
	char desc[DESC_MAX];
	size_t desc_len;
	uint64_t overhead;		/* sectors before the first grain */
	uint64_t next;			/* the next free sector */
	/* the grain table being filled (index cur_gt) */
	uint64_t cur_gt;
	uint32_t *gt;
	bool gt_used;
	uint32_t *gd;			/* streams: one entry per table */
	size_t gd_len, gd_cap;		/* entries set (or zero), allocated */
	bool head_late;			/* streams: the size came at the end */
	/* monolithicSparse: where the tables are */
	uint64_t rgd_at, rgt_at, gd_at, gt_at;
	unsigned char sector[VMDK_SECTOR];
};

/* ---- the descriptor ---- */

/*
 * CHS geometry as VMware gives it: IDE disks 16 heads and 63 sectors,
 * SCSI disks 255 heads and 63 sectors; cylinders rounded up, capped.
 */
static void geometry(const struct vmdkw *v, uint64_t *c, unsigned *h,
    unsigned *s)
{
	bool ide = strcmp(v->o->adapter_type, "ide") == 0;
	uint64_t max = ide ? 16383 : 65535;

	*h = ide ? 16 : 255;
	*s = 63;
	*c = (v->capacity + *h * *s - 1) / (*h * *s);
	if (*c > max)
		*c = max;
}

/*
 * The CID and the longContentID identify the content for VMware's change
 * tracking.  They must not depend on the run (the output is the same on
 * every run), so they come from what is known before the first grain.
 */
static uint32_t content_id(const struct vmdkw *v, uint32_t salt)
{
	unsigned char b[16];
	uint32_t cid;

	put_le64(b, v->capacity);
	put_le32(b + 8, salt);
	put_le32(b + 12, v->o->sparse);
	cid = (uint32_t)crc32(crc32(0, b, sizeof b),
	    (const unsigned char *)v->o->extent_name,
	    strlen(v->o->extent_name));
	/* ffffffff means "no parent", fffffffe "all zeros" to some readers */
	return cid >= 0xfffffffeu ? 0x1234567u : cid;
}

static int make_descriptor(struct vmdkw *v)
{
	uint64_t c;
	unsigned h, s;
	int n;

	geometry(v, &c, &h, &s);
	n = snprintf(v->desc, sizeof v->desc,
	    "# Disk DescriptorFile\n"
	    "version=1\n"
	    "encoding=\"UTF-8\"\n"
	    "CID=%08x\n"
	    "parentCID=ffffffff\n"
	    "createType=\"%s\"\n"
	    "\n"
	    "# Extent description\n"
	    "RW %llu SPARSE \"%s\"\n"
	    "\n"
	    "# The Disk Data Base\n"
	    "#DDB\n"
	    "\n"
	    "ddb.adapterType = \"%s\"\n"
	    "ddb.geometry.cylinders = \"%llu\"\n"
	    "ddb.geometry.heads = \"%u\"\n"
	    "ddb.geometry.sectors = \"%u\"\n"
	    "ddb.longContentID = \"%08x%08x%08x%08x\"\n"
	    "ddb.toolsInstallType = \"4\"\n"
	    "ddb.toolsVersion = \"%s\"\n"
	    "ddb.virtualHWVersion = \"%s\"\n",
	    content_id(v, 0), v->o->sparse ? VMDK_TYPE_SPARSE :
	    VMDK_TYPE_STREAM, (unsigned long long)v->capacity,
	    v->o->extent_name, v->o->adapter_type, (unsigned long long)c, h, s,
	    content_id(v, 1), content_id(v, 2), content_id(v, 3),
	    content_id(v, 0), v->o->tools_version, v->o->hw_version);
	if (n < 0 || (size_t)n >= sizeof v->desc)
		return fail(EXIT_USAGE, "vmdk: descriptor too long (extent "
		    "name?)");
	v->desc_len = n;
	v->desc_sectors = (n + VMDK_SECTOR - 1) / VMDK_SECTOR;
	return 0;
}

/* ---- common ---- */

static uint64_t div_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static int write_sectors(struct wimage *w, const void *buf, size_t len,
    uint64_t sector)
{
	return wfile_write(w->out, buf, len, sector * VMDK_SECTOR);
}

/* GTEs and GDEs are 32-bit sector numbers: VMDK's 2 TiB file limit. */
static int check_addressable(const struct vmdkw *v, uint64_t sector)
{
	if (sector > UINT32_MAX)
		return fail(EXIT_REJECT, "vmdk: the image would grow beyond "
		    "2 TiB, which VMDK's 32-bit tables cannot address");
	(void)v;
	return 0;
}

static void fill_header(const struct vmdkw *v, struct vmdk_header *h,
    uint64_t gd_offset)
{
	memset(h, 0, sizeof *h);
	h->capacity = v->capacity;
	h->grain_sectors = v->grain_sectors;
	h->desc_offset = VMDK_DESC_SECTOR;
	h->desc_sectors = v->desc_sectors;
	h->gtes_per_gt = VMDK_GTES_PER_GT;
	h->overhead = v->overhead;
	if (v->o->sparse) {
		h->version = VMDK_VERSION_1;
		h->flags = VMDK_FLAG_NL_TEST | VMDK_FLAG_RGD;
		h->rgd_offset = v->rgd_at;
		h->gd_offset = v->gd_at;
	} else {
		h->version = VMDK_VERSION_3;
		h->flags = VMDK_FLAG_NL_TEST | VMDK_FLAG_COMPRESSED |
		    VMDK_FLAG_MARKERS;
		h->gd_offset = gd_offset;
		h->compress = VMDK_COMPRESS_DEFLATE;
	}
}

/* Header and descriptor, then zeros up to the first grain. */
static int write_head(struct wimage *w, struct vmdkw *v, uint64_t gd_offset)
{
	struct vmdk_header h;
	unsigned char *buf;
	size_t len = v->desc_sectors * VMDK_SECTOR;
	int rc;

	fill_header(v, &h, gd_offset);
	vmdk_header_put(v->sector, &h);
	buf = calloc(1, len);
	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	memcpy(buf, v->desc, v->desc_len);
	rc = write_sectors(w, v->sector, VMDK_SECTOR, 0) < 0 ||
	    write_sectors(w, buf, len, VMDK_DESC_SECTOR) < 0 ? -1 : 0;
	free(buf);
	return rc;
}

static int vmdkw_setup(struct wimage *w)
{
	struct vmdkw *v = w->priv;

	v->o = w->opts;
	v->grain_sectors = v->o->grain_sectors;
	w->grain = v->grain_sectors * VMDK_SECTOR;
	w->max_size = (uint64_t)UINT32_MAX * VMDK_SECTOR;	/* 2 TiB */
	if (!v->o->sparse) {	/* marker, deflated grain, padding */
		w->encoded_max = VMDK_MARKER_HEAD +
		    libdeflate_zlib_compress_bound(NULL, w->grain);
		w->encoded_max = div_up(w->encoded_max, VMDK_SECTOR) *
		    VMDK_SECTOR;
	} else {	/* its tables come first */
		w->flags &= ~(WRITER_STREAMS | WRITER_SIZE_LATE_SEEKABLE);
	}
	v->gt = calloc(VMDK_GTES_PER_GT, sizeof *v->gt);
	if (v->gt == NULL)
		return fail(EXIT_IO, "out of memory");
	return 0;
}

/* Sizes that follow from the capacity, known at begin() (or finish()). */
static int size_tables(struct wimage *w, struct vmdkw *v)
{
	v->capacity = w->virtual_size / VMDK_SECTOR;
	v->ngrains = div_up(v->capacity, v->grain_sectors);
	v->ngts = div_up(v->ngrains, VMDK_GTES_PER_GT);
	v->gd_sectors = div_up(v->ngts * VMDK_GDE_BYTES, VMDK_SECTOR);
	v->cur_gt = 0;
	return make_descriptor(v);
}

/* ---- streamOptimized ---- */

static void *vmdkw_coder_new(const struct wimage *w)
{
	const struct vmdkw *v = w->priv;

	return libdeflate_alloc_compressor(v->o->level);
}

static void vmdkw_coder_free(void *coder)
{
	libdeflate_free_compressor(coder);
}

/* A grain marker, the deflated grain, zeros to the sector's end. */
static size_t vmdkw_encode(const struct wimage *w, void *coder,
    uint64_t index, const unsigned char *in, size_t len, unsigned char *out)
{
	const struct vmdkw *v = w->priv;
	size_t n, total;

	n = libdeflate_zlib_compress(coder, in, len, out + VMDK_MARKER_HEAD,
	    w->encoded_max - VMDK_MARKER_HEAD);
	if (n == 0)	/* within the bound: cannot happen */
		abort();
	vmdk_marker_put_grain(out, index * v->grain_sectors, (uint32_t)n);
	total = VMDK_MARKER_HEAD + n;
	memset(out + total, 0, -total % VMDK_SECTOR);
	return total + (-total % VMDK_SECTOR);
}

static int write_meta_marker(struct wimage *w, struct vmdkw *v,
    uint32_t type, uint64_t nsectors)
{
	vmdk_marker_put_meta(v->sector, type, nsectors);
	if (write_sectors(w, v->sector, VMDK_SECTOR, v->next) < 0)
		return -1;
	v->next++;
	return 0;
}

/* The directory holds n entries, those not yet set zero. */
static int gd_reach(struct vmdkw *v, uint64_t n)
{
	while (v->gd_cap < n)
		if (grow_array(&v->gd, v->gd_cap, &v->gd_cap, sizeof *v->gd, 64,
		    SIZE_MAX) < 0)
			return -1;
	if (n > v->gd_len) {
		memset(v->gd + v->gd_len, 0, (n - v->gd_len) * sizeof *v->gd);
		v->gd_len = n;
	}
	return 0;
}

/* The table being filled, after its grains: marker, then the table. */
static int stream_flush_gt(struct wimage *w, struct vmdkw *v)
{
	uint32_t i;
	unsigned char *buf = (unsigned char *)v->gt;

	if (!v->gt_used)
		return 0;
	if (write_meta_marker(w, v, VMDK_MARKER_GT,
	    VMDK_GT_BYTES / VMDK_SECTOR) < 0 ||
	    check_addressable(v, v->next) < 0 || gd_reach(v, v->cur_gt + 1) < 0)
		return -1;
	v->gd[v->cur_gt] = (uint32_t)v->next;
	for (i = 0; i < VMDK_GTES_PER_GT; i++)
		put_le32(buf + 4 * i, v->gt[i]);
	if (write_sectors(w, buf, VMDK_GT_BYTES, v->next) < 0)
		return -1;
	v->next += VMDK_GT_BYTES / VMDK_SECTOR;
	memset(v->gt, 0, VMDK_GT_BYTES);
	v->gt_used = false;
	return 0;
}

/* Grain index belongs to table gt: write out the one before. */
static int stream_move_to(struct wimage *w, struct vmdkw *v, uint64_t gt)
{
	if (gt == v->cur_gt)
		return 0;
	if (stream_flush_gt(w, v) < 0)
		return -1;
	v->cur_gt = gt;
	return 0;
}

/*
 * The grains start at a fixed sector whatever the capacity.  Into a file
 * whose size comes only at the end of the input (a raw disk from a pipe,
 * WRITER_SIZE_LATE_SEEKABLE) the head is written last, by finish.
 */
static int stream_begin(struct wimage *w, struct vmdkw *v)
{
	v->overhead = VMDK_STREAM_OVERHEAD;
	v->next = v->overhead;
	v->head_late = !w->size_known;
	if (v->head_late)
		return 0;
	return write_head(w, v, VMDK_GD_AT_END);
}

static int stream_put(struct wimage *w, struct vmdkw *v, uint64_t index,
    const unsigned char *data, size_t len)
{
	if (data == NULL)
		return 0;	/* zero grains are left out */
	if (stream_move_to(w, v, index / VMDK_GTES_PER_GT) < 0 ||
	    check_addressable(v, v->next + len / VMDK_SECTOR) < 0)
		return -1;
	v->gt[index % VMDK_GTES_PER_GT] = (uint32_t)v->next;
	v->gt_used = true;
	if (wfile_put(w->out, data, len, v->next * VMDK_SECTOR) < 0)
		return -1;
	v->next += len / VMDK_SECTOR;
	return 0;
}

/* The directory, then the footer and the end-of-stream marker. */
static int stream_finish(struct wimage *w, struct vmdkw *v)
{
	struct vmdk_header h;
	unsigned char *buf;
	uint64_t gd_at, i;
	size_t len;
	int rc;

	if (stream_flush_gt(w, v) < 0 ||
	    (v->head_late && size_tables(w, v) < 0) ||
	    gd_reach(v, v->ngts) < 0 ||
	    write_meta_marker(w, v, VMDK_MARKER_GD, v->gd_sectors) < 0 ||
	    check_addressable(v, v->next + v->gd_sectors) < 0)
		return -1;
	gd_at = v->next;
	len = v->gd_sectors * VMDK_SECTOR;
	buf = calloc(1, len ? len : 1);
	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < v->ngts; i++)
		put_le32(buf + 4 * i, v->gd[i]);
	rc = write_sectors(w, buf, len, gd_at);
	free(buf);
	if (rc < 0)
		return -1;
	v->next += v->gd_sectors;
	if (write_meta_marker(w, v, VMDK_MARKER_FOOTER, 1) < 0)
		return -1;
	fill_header(v, &h, gd_at);
	vmdk_header_put(v->sector, &h);
	if (write_sectors(w, v->sector, VMDK_SECTOR, v->next++) < 0 ||
	    write_meta_marker(w, v, VMDK_MARKER_EOS, 0) < 0 ||
	    (v->head_late && write_head(w, v, VMDK_GD_AT_END) < 0))
		return -1;
	return wfile_end(w->out, v->next * VMDK_SECTOR);
}

/* ---- monolithicSparse ---- */

/*
 * qemu-img's layout: header, descriptor (20 sectors), redundant GD and
 * its tables, GD and its tables, grains from a grain boundary on.
 */
static void sparse_place(struct vmdkw *v)
{
	uint64_t gts = v->ngts * (VMDK_GT_BYTES / VMDK_SECTOR);

	if (v->desc_sectors < VMDK_DESC_SECTORS)
		v->desc_sectors = VMDK_DESC_SECTORS;
	v->rgd_at = VMDK_DESC_SECTOR + v->desc_sectors;
	v->rgt_at = v->rgd_at + v->gd_sectors;
	v->gd_at = v->rgt_at + gts;
	v->gt_at = v->gd_at + v->gd_sectors;
	v->overhead = div_up(v->gt_at + gts, v->grain_sectors) *
	    v->grain_sectors;
	v->next = v->overhead;
}

/* A grain directory: its tables follow one another from first_gt on. */
static int write_gd(struct wimage *w, struct vmdkw *v, uint64_t at,
    uint64_t first_gt)
{
	size_t len = v->gd_sectors * VMDK_SECTOR;
	unsigned char *buf = calloc(1, len ? len : 1);
	uint64_t i;
	int rc;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < v->ngts; i++)
		put_le32(buf + 4 * i, (uint32_t)(first_gt +
		    i * (VMDK_GT_BYTES / VMDK_SECTOR)));
	rc = write_sectors(w, buf, len, at);
	free(buf);
	return rc;
}

/* Table gt (v->gt) in the copy whose tables start at sector first. */
static int write_gt_at(struct wimage *w, struct vmdkw *v, uint64_t first,
    uint64_t gt)
{
	unsigned char buf[VMDK_GT_BYTES];
	uint32_t i;

	for (i = 0; i < VMDK_GTES_PER_GT; i++)
		put_le32(buf + 4 * i, v->gt[i]);
	return write_sectors(w, buf, VMDK_GT_BYTES,
	    first + gt * (VMDK_GT_BYTES / VMDK_SECTOR));
}

/* Table gt in both copies. */
static int sparse_write_gt(struct wimage *w, struct vmdkw *v, uint64_t gt)
{
	return write_gt_at(w, v, v->rgt_at, gt) < 0 ||
	    write_gt_at(w, v, v->gt_at, gt) < 0 ? -1 : 0;
}

/* Into a file: a table goes out once the grains after it begin. */
static int sparse_move_to(struct wimage *w, struct vmdkw *v, uint64_t gt)
{
	if (gt == v->cur_gt)
		return 0;
	if (v->gt_used && sparse_write_gt(w, v, v->cur_gt) < 0)
		return -1;
	memset(v->gt, 0, VMDK_GT_BYTES);
	v->gt_used = false;
	v->cur_gt = gt;
	return 0;
}

/*
 * Into a pipe: every table, from the plan (grain k of the plan lies at
 * overhead + k grains), for one copy of the tables.
 */
static int sparse_write_planned_gts(struct wimage *w, struct vmdkw *v,
    uint64_t at)
{
	struct wplan_iter it;
	uint64_t index, k = 0, gt = 0;
	uint32_t elen;
	int r;

	if (wplan_first(w, &it) < 0)
		return -1;
	memset(v->gt, 0, VMDK_GT_BYTES);
	while ((r = wplan_next(&it, &index, &elen)) == 1) {
		for (; gt < index / VMDK_GTES_PER_GT; gt++) {
			if (write_gt_at(w, v, at, gt) < 0)
				goto fail;
			memset(v->gt, 0, VMDK_GT_BYTES);
		}
		v->gt[index % VMDK_GTES_PER_GT] = (uint32_t)(v->overhead +
		    k++ * v->grain_sectors);
	}
	for (; r == 0 && gt < v->ngts; gt++) {
		if (write_gt_at(w, v, at, gt) < 0)
			goto fail;
		memset(v->gt, 0, VMDK_GT_BYTES);
	}
	wplan_done(&it);
	return r;
fail:
	wplan_done(&it);
	return -1;
}

static int sparse_begin(struct wimage *w, struct vmdkw *v)
{
	sparse_place(v);
	if (check_addressable(v, v->overhead + v->ngrains * v->grain_sectors) <
	    0 || write_head(w, v, v->gd_at) < 0 ||
	    write_gd(w, v, v->rgd_at, v->rgt_at) < 0)
		return -1;
	if (w->layout != WLAYOUT_PLANNED)
		return write_gd(w, v, v->gd_at, v->gt_at);
	return sparse_write_planned_gts(w, v, v->rgt_at) < 0 ||
	    write_gd(w, v, v->gd_at, v->gt_at) < 0 ||
	    sparse_write_planned_gts(w, v, v->gt_at) < 0 ? -1 : 0;
}

static int sparse_put(struct wimage *w, struct vmdkw *v, uint64_t index,
    const unsigned char *data, size_t len)
{
	if (data == NULL)
		return 0;
	if (w->layout != WLAYOUT_PLANNED) {
		if (sparse_move_to(w, v, index / VMDK_GTES_PER_GT) < 0)
			return -1;
		v->gt[index % VMDK_GTES_PER_GT] = (uint32_t)v->next;
		v->gt_used = true;
	}
	if (wfile_put(w->out, data, len, v->next * VMDK_SECTOR) < 0)
		return -1;
	v->next += v->grain_sectors;
	return 0;
}

static int sparse_finish(struct wimage *w, struct vmdkw *v)
{
	if (w->layout != WLAYOUT_PLANNED && v->gt_used &&
	    sparse_write_gt(w, v, v->cur_gt) < 0)
		return -1;
	return wfile_end(w->out, v->next * VMDK_SECTOR);
}

/* ---- the writer interface ---- */

static int vmdkw_begin(struct wimage *w)
{
	struct vmdkw *v = w->priv;

	if (v->o->sparse)
		return size_tables(w, v) < 0 ? -1 : sparse_begin(w, v);
	if (w->size_known && size_tables(w, v) < 0)
		return -1;
	return stream_begin(w, v);
}

static int vmdkw_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct vmdkw *v = w->priv;

	(void)encoded;
	return v->o->sparse ? sparse_put(w, v, index, data, len) :
	    stream_put(w, v, index, data, len);
}

static int vmdkw_finish(struct wimage *w)
{
	struct vmdkw *v = w->priv;

	return v->o->sparse ? sparse_finish(w, v) : stream_finish(w, v);
}

static void vmdkw_close(struct wimage *w)
{
	struct vmdkw *v = w->priv;

	free(v->gt);
	free(v->gd);
}

const struct writer writer_vmdk = {
	.name = "vmdk",
	.state_size = sizeof(struct vmdkw),
	.flags = WRITER_STREAMS | WRITER_SIZE_LATE_SEEKABLE,
	.setup = vmdkw_setup,
	.coder_new = vmdkw_coder_new,
	.coder_free = vmdkw_coder_free,
	.encode = vmdkw_encode,
	.begin = vmdkw_begin,
	.put = vmdkw_put,
	.finish = vmdkw_finish,
	.close = vmdkw_close,
};
