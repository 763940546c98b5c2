/*
 * vmdk: VMware hosted sparse extents ("KDMV"): monolithicSparse (also
 * with its GD at the end and a footer) and streamOptimized (qemu-img's,
 * VMware's, VirtualBox's), with the embedded descriptor; descriptor files
 * (vmdk_extents.c).  The layout is named in vmdk.h.
 *
 * An extent whose header (or footer) names its GD is read by its tables
 * (vmdk_tables.c): from a file in virtual order, from a pipe in file
 * order, bytes met before the tables that name them kept by the source
 * (its retention: the one parking store, within the one budget).
 * A stream whose GD is at the end is read marker by marker
 * (vmdk_markers.c), from a file as from a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt/vmdk/vmdk_desc.h"
#include "fmt/vmdk/vmdk_info.h"
#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

static int vmdk_bid(const struct probe *pb)
{
	if (pb->headlen >= 4 && le32(pb->head) == VMDK_MAGIC)
		return BID_SIGNATURE;
	if (vmdk_looks_like_descriptor(pb->head, pb->headlen))
		return BID_SIGNATURE;
	return BID_NONE;
}

/* ---- descriptor ---- */

/* The one extent of an embedded descriptor is this file. */
static bool vmdk_embedded_extent_ok(const struct vmdk_desc *d)
{
	const struct vmdk_extent_line *x;

	if (d->nextents == 0)
		return true;
	x = &d->extents[0];
	return d->nextents == 1 && strcasecmp(x->type, "SPARSE") == 0 &&
	    (x->name[0] == '\0' || vmdk_name_is_bare(x->name));
}

/*
 * The embedded descriptor must describe this one extent and no parent;
 * its createType goes to ctype (ctypelen bytes), "" when it has none.
 */
static int vmdk_check_embedded(struct image *img, struct vmdk *v,
    char *ctype, size_t ctypelen)
{
	uint64_t len = v->h.desc_sectors * VMDK_SECTOR;
	struct vmdk_desc d;
	char *text;
	int rc = 0;

	if (v->h.desc_offset == 0 || v->h.desc_sectors == 0)
		return 0;
	if (v->h.desc_sectors > VMDK_DESC_MAX / VMDK_SECTOR ||
	    v->h.desc_offset > UINT64_MAX / VMDK_SECTOR - v->h.desc_sectors)
		return image_bad(img, "descriptor of %llu sectors at sector "
		    "%llu is out of range (header at 0x%x)",
		    (unsigned long long)v->h.desc_sectors,
		    (unsigned long long)v->h.desc_offset, VMDK_HDR_DESC_OFFSET);
	text = malloc(len);
	if (text == NULL)
		return fail(EXIT_IO, "out of memory");
	if (vmdk_meta_read(img, v, text, len, v->h.desc_offset * VMDK_SECTOR,
	    "descriptor") < 0 || vmdk_desc_parse(&d, text, len) < 0) {
		free(text);
		return -1;
	}
	vmdk_info(img, text, len, &(struct vmdk_info_sparse){
	    .capacity_bytes = v->h.capacity * VMDK_SECTOR,
	    .grain_bytes = v->h.grain_sectors * VMDK_SECTOR,
	    .compressed = (v->h.flags & VMDK_FLAG_COMPRESSED) != 0 });
	free(text);
	if (vmdk_desc_has_parent(&d))
		rc = vmdk_reject_parent(img, &d);
	if (rc == 0 && (!vmdk_embedded_extent_ok(&d) ||
	    (d.create_type[0] != '\0' &&
	    strcasecmp(d.create_type, VMDK_TYPE_SPARSE) != 0 &&
	    strcasecmp(d.create_type, VMDK_TYPE_STREAM) != 0)))
		rc = vmdk_reject_extents(img, &d, "embedded descriptor");
	snprintf(ctype, ctypelen, "%s", d.create_type);
	vmdk_desc_free(&d);
	return rc;
}

/* ---- header ---- */

/*
 * The header's flags and compressAlgorithm decide how grains are read
 * (qemu decides by compressAlgorithm alone): each combination that two
 * readers would read differently is refused, and so is a streamOptimized
 * descriptor over a header without compressed grains and markers -- read
 * by its tables, its markers and zlib bytes would pass for disk data.  A
 * monolithicSparse descriptor over a stream header reads as the stream it
 * is (each grain's marker names its LBA), as qemu reads it.
 */
static int vmdk_check_kind(struct image *img, struct vmdk *v,
    const char *ctype)
{
	uint32_t f = v->h.flags;
	bool compressed = f & VMDK_FLAG_COMPRESSED;

	if (strcasecmp(ctype, VMDK_TYPE_STREAM) == 0 &&
	    (!compressed || !(f & VMDK_FLAG_MARKERS)))
		return image_bad(img, "the descriptor says streamOptimized but "
		    "the header's flags 0x%x do not say compressed grains with "
		    "markers (header at 0x%x)", f, VMDK_HDR_FLAGS);
	if (!compressed && v->h.compress == VMDK_COMPRESS_DEFLATE)
		return image_bad(img, "compressAlgorithm is deflate but the "
		    "header's flags 0x%x do not say compressed grains (header "
		    "at 0x%x)", f, VMDK_HDR_FLAGS);
	if (compressed && !(f & VMDK_FLAG_MARKERS))
		return image_bad(img, "compressed grains without markers "
		    "(flags 0x%x) are not supported (header at 0x%x)", f,
		    VMDK_HDR_FLAGS);
	snprintf(img->subformat, sizeof img->subformat, "%.47s",
	    compressed ? VMDK_TYPE_STREAM : ctype[0] ? ctype
	    : VMDK_TYPE_SPARSE);
	return 0;
}

/* where: "header" or "footer", for messages. */
static int vmdk_check_header(struct image *img, struct vmdk *v,
    const unsigned char *p, const char *where)
{
	struct vmdk_header *h = &v->h;

	if (le32(p + VMDK_HDR_MAGIC) != VMDK_MAGIC)
		return image_bad(img, "bad magic in the %s (not \"KDMV\")",
		    where);
	vmdk_header_get(h, p);
	if (h->version < VMDK_VERSION_1 || h->version > VMDK_VERSION_MAX)
		return image_bad(img, "unsupported version %u (%s at 0x%x)",
		    h->version, where, VMDK_HDR_VERSION);
	if ((h->flags & VMDK_FLAG_NL_TEST) && memcmp(p + VMDK_HDR_NL_CHARS,
	    VMDK_NL_BYTES, VMDK_NL_LEN))
		return image_bad(img, "newline check failed: the image was "
		    "damaged by a text-mode transfer (%s at 0x%x)", where,
		    VMDK_HDR_NL_CHARS);
	if ((h->flags & VMDK_FLAG_COMPRESSED) &&
	    h->compress != VMDK_COMPRESS_DEFLATE)
		return image_bad(img, "unsupported compression algorithm %u "
		    "(%s at 0x%x)", h->compress, where, VMDK_HDR_COMPRESS);
	if (h->grain_sectors == 0 || h->grain_sectors > VMDK_GRAIN_MAX_SECTORS ||
	    (h->grain_sectors & (h->grain_sectors - 1)) != 0)
		return image_bad(img, "grain size %llu sectors is not a power "
		    "of two from 1 to %u (%s at 0x%x)",
		    (unsigned long long)h->grain_sectors,
		    VMDK_GRAIN_MAX_SECTORS, where, VMDK_HDR_GRAIN_SIZE);
	if (h->capacity > IMAGE_VSIZE_MAX / VMDK_SECTOR)
		return image_bad(img, "capacity of %llu sectors is beyond the "
		    "limit of %llu bytes (%s at 0x%x)",
		    (unsigned long long)h->capacity, IMAGE_VSIZE_MAX, where,
		    VMDK_HDR_CAPACITY);
	if (h->gtes_per_gt == 0 || h->gtes_per_gt > VMDK_GTES_MAX)
		return image_bad(img, "%u entries per grain table is out of "
		    "range 1 to %u (%s at 0x%x)", h->gtes_per_gt,
		    VMDK_GTES_MAX, where, VMDK_HDR_GTES_PER_GT);
	v->grain_bytes = h->grain_sectors * VMDK_SECTOR;
	v->ngrains = (h->capacity + h->grain_sectors - 1) / h->grain_sectors;
	v->ngts = (v->ngrains + h->gtes_per_gt - 1) / h->gtes_per_gt;
	if (v->ngts * VMDK_GDE_BYTES > IMAGE_META_MAX)
		return image_bad(img, "grain directory of %llu entries is "
		    "larger than the %llu-byte limit (%s: capacity, grain size)",
		    (unsigned long long)v->ngts, IMAGE_META_MAX, where);
	/* With its GD at the end, a header may say the same of its RGD
	 * (VirtualBox); the footer has both. */
	if (h->overhead > UINT64_MAX / VMDK_SECTOR ||
	    (h->rgd_offset > UINT64_MAX / VMDK_SECTOR - v->ngts &&
	    (h->rgd_offset != VMDK_GD_AT_END ||
	    h->gd_offset != VMDK_GD_AT_END)) ||
	    (h->gd_offset != VMDK_GD_AT_END &&
	    h->gd_offset > UINT64_MAX / VMDK_SECTOR - v->ngts))
		return image_bad(img, "grain directory or overhead offset out "
		    "of range (%s at 0x%x)", where, VMDK_HDR_RGD_OFFSET);
	/* deflate can grow incompressible data by a little; allow 2x. */
	v->cmax = 2 * v->grain_bytes + VMDK_SECTOR;
	img->virtual_size = h->capacity * VMDK_SECTOR;
	img->cluster_size = v->grain_bytes;
	return 0;
}

/*
 * The footer is a second header whose only business is the GD: it must
 * agree with the header on the geometry and not move the descriptor.
 * v->h becomes the footer's values.
 */
int vmdk_check_footer(struct image *img, struct vmdk *v,
    const unsigned char *footer)
{
	struct vmdk_header head = v->h;

	if (vmdk_check_header(img, v, footer, "footer") < 0)
		return -1;
	if (v->h.gd_offset == VMDK_GD_AT_END ||
	    v->h.rgd_offset == VMDK_GD_AT_END)
		return image_bad(img, "the footer's gdOffset or rgdOffset is "
		    "GD_AT_END too (footer at 0x%x)", VMDK_HDR_RGD_OFFSET);
	if (v->h.capacity != head.capacity ||
	    v->h.grain_sectors != head.grain_sectors ||
	    v->h.gtes_per_gt != head.gtes_per_gt || v->h.flags != head.flags)
		return image_bad(img, "the footer disagrees with the header on "
		    "capacity, grain size, grain table size or flags");
	if ((v->h.desc_offset != head.desc_offset ||
	    v->h.desc_sectors != head.desc_sectors) && image_unsafe(img,
	    "vmdk-footer", "the footer moves the descriptor from sector %llu "
	    "to sector %llu", (unsigned long long)head.desc_offset,
	    (unsigned long long)v->h.desc_offset) < 0)
		return -1;
	if (head.gd_offset != VMDK_GD_AT_END &&
	    v->h.gd_offset != head.gd_offset && image_unsafe(img,
	    "vmdk-footer", "the footer moves the grain directory from sector "
	    "%llu to sector %llu", (unsigned long long)head.gd_offset,
	    (unsigned long long)v->h.gd_offset) < 0)
		return -1;
	return 0;
}

/*
 * An extent without markers whose GD is at the end (VMware Workstation's
 * monolithicSparse with a footer) ends with a footer marker, the footer
 * and an end-of-stream marker, as qemu reads it: tail is those three
 * sectors.  v->h becomes the footer's values.
 */
static int vmdk_check_tail(struct image *img, struct vmdk *v,
    const unsigned char *tail)
{
	struct vmdk_marker fm, eos;

	vmdk_marker_get(&fm, tail);
	vmdk_marker_get(&eos, tail + 2 * VMDK_SECTOR);
	if (fm.val != 1 || fm.size != 0 || fm.type != VMDK_MARKER_FOOTER ||
	    eos.val != 0 || eos.size != 0 || eos.type != VMDK_MARKER_EOS)
		return image_bad(img, "gdOffset is GD_AT_END but the image does "
		    "not end with a footer marker, a footer and an "
		    "end-of-stream marker (header at 0x%x)", VMDK_HDR_GD_OFFSET);
	return vmdk_check_footer(img, v, tail + VMDK_SECTOR);
}

/* The tail from a file, or from what the source kept of a whole pipe. */
static int vmdk_read_tail(struct image *img, struct vmdk *v)
{
	unsigned char tail[VMDK_TAIL_SECTORS * VMDK_SECTOR];
	uint64_t size;

	if (!vmdk_input_size(img, v, &size))
		return -1;
	if (size < (VMDK_TAIL_SECTORS + 1) * VMDK_SECTOR)
		return vmdk_past_end(img, "footer", 0);
	if (vmdk_meta_read(img, v, tail, sizeof tail, size - sizeof tail,
	    "footer") < 0)
		return -1;
	return vmdk_check_tail(img, v, tail);
}

/* Markers are only meaningful around compressed grains. */
bool vmdk_has_markers(const struct vmdk *v)
{
	return (v->h.flags & VMDK_FLAG_MARKERS) &&
	    (v->h.flags & VMDK_FLAG_COMPRESSED);
}

/* Read marker by marker, forward only: a pipe keeps nothing behind. */
static bool vmdk_read_by_markers(const struct vmdk *v)
{
	return v->h.gd_offset == VMDK_GD_AT_END && vmdk_has_markers(v);
}

static int vmdk_alloc_buffers(struct vmdk *v)
{
	int zrc;

	v->grain = malloc(v->grain_bytes);
	v->win_cap = VMDK_WINDOW + v->cmax + VMDK_SECTOR;
	v->win = malloc(v->win_cap);
	v->run = malloc(VMDK_RUN_MAX > v->grain_bytes ? VMDK_RUN_MAX
	    : v->grain_bytes);
	if (v->grain == NULL || v->win == NULL ||
	    v->run == NULL)
		return fail(EXIT_IO, "out of memory");
	zrc = inflateInit(&v->zs);
	if (zrc != Z_OK)
		return fail(EXIT_IO, "zlib: cannot initialise inflate");
	v->zs_ready = true;
	return 0;
}

/*
 * The redundant GD and GTs are read, from a file and a pipe alike; an RGD
 * at the GD's own sector (FreeBSD mkimg) is the GD, read once.
 */
static void vmdk_use_rgd(struct vmdk *v)
{
	v->use_rgd = (v->h.flags & VMDK_FLAG_RGD) && v->h.rgd_offset != 0 &&
	    v->h.rgd_offset != VMDK_GD_AT_END &&
	    v->h.rgd_offset != v->h.gd_offset;
}

/*
 * Which GD to read: the header's; with GD_AT_END and markers, none (the
 * markers are read); with GD_AT_END and no markers, the footer's, read
 * here from a file and at the end of a pipe.
 */
int vmdk_open_sparse(struct image *img, struct vmdk *v)
{
	char ctype[64] = "";

	if (img->src->headlen < VMDK_SECTOR)
		return image_defect(img, FINDING_TRUNCATED, "header is "
		    "truncated (%zu bytes)", img->src->headlen);
	if (vmdk_check_header(img, v, img->src->head, "header") < 0 ||
	    vmdk_alloc_buffers(v) < 0 ||
	    (!vmdk_read_by_markers(v) && vmdk_pipe_retain(img) < 0) ||
	    vmdk_check_embedded(img, v, ctype, sizeof ctype) < 0 ||
	    vmdk_check_kind(img, v, ctype) < 0)
		return -1;
	if (v->h.gd_offset == VMDK_GD_AT_END && !vmdk_has_markers(v) &&
	    img->src->seekable && vmdk_read_tail(img, v) < 0)
		return -1;
	vmdk_use_rgd(v);
	return 0;
}

static int vmdk_open(struct image *img)
{
	struct vmdk *v;

	if (img->src->headlen >= 4 && le32(img->src->head) != VMDK_MAGIC)
		return vmdk_open_descriptor_file(img);
	v = calloc(1, sizeof *v);
	if (v == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = v;
	return vmdk_open_sparse(img, v);
}

/* ---- grains ---- */

/* Inflate one compressed grain (zlib-wrapped, as qemu and VMware write, or
 * raw deflate) into v->grain; returns the inflated length or -1. */
int64_t vmdk_inflate(struct image *img, struct vmdk *v,
    const unsigned char *in, size_t len, uint64_t where)
{
	bool zlib_wrapped = len >= 2 && (in[0] & 0x0f) == 8 &&
	    (in[0] << 8 | in[1]) % 31 == 0;
	int zrc;

	if (inflateReset2(&v->zs, zlib_wrapped ? 15 : -15) != Z_OK)
		return fail(EXIT_IO, "zlib: inflateReset2 failed");
	v->zs.next_in = (unsigned char *)in;
	v->zs.avail_in = len;
	v->zs.next_out = v->grain;
	v->zs.avail_out = v->grain_bytes;
	zrc = inflate(&v->zs, Z_FINISH);
	if (zrc == Z_STREAM_END)
		return v->grain_bytes - v->zs.avail_out;
	if (zrc == Z_BUF_ERROR && v->zs.avail_out == 0)
		return image_bad(img, "compressed grain at 0x%llx inflates to "
		    "more than the grain size of %llu bytes",
		    (unsigned long long)where,
		    (unsigned long long)v->grain_bytes);
	return image_defect(img, FINDING_TRUNCATED, "compressed grain at "
	    "0x%llx does not inflate: %s", (unsigned long long)where,
	    v->zs.msg ? v->zs.msg : "truncated deflate data");
}

/* Emit an inflated grain at grain index gi, clipped to the capacity. */
int vmdk_emit_grain(struct image *img, struct vmdk *v, struct emitter *em,
    uint64_t gi, size_t len)
{
	uint64_t off = gi * v->grain_bytes;

	if (off >= img->virtual_size)
		return 0;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	return vmdk_emit_data(v, em, off, v->grain, len);
}

/* A grain marker's LBA must start a grain inside the capacity. */
int vmdk_marker_grain(struct image *img, struct vmdk *v, uint64_t lba,
    uint32_t csize, uint64_t where, uint64_t *gi)
{
	if (lba % v->h.grain_sectors != 0)
		return image_defect(img, FINDING_MISALIGNED, "grain marker at "
		    "0x%llx has LBA %llu, not the start of a grain",
		    (unsigned long long)where, (unsigned long long)lba);
	if (lba >= v->h.capacity)
		return image_defect(img, FINDING_OUT_OF_RANGE, "grain marker "
		    "at 0x%llx has LBA %llu, beyond the capacity of %llu "
		    "sectors", (unsigned long long)where,
		    (unsigned long long)lba, (unsigned long long)v->h.capacity);
	if (csize == 0 || csize > v->cmax)
		return image_bad(img, "grain marker at 0x%llx declares %u "
		    "compressed bytes, not 1 to %zu", (unsigned long long)where,
		    csize, v->cmax);
	*gi = lba / v->h.grain_sectors;
	return 0;
}

int vmdk_read_sparse(struct image *img, struct vmdk *v, struct emitter *em)
{
	if (v->h.gd_offset != VMDK_GD_AT_END)
		return vmdk_read_tables(img, v, em);
	if (vmdk_has_markers(v))
		return vmdk_read_markers(img, v, em);
	/* A pipe: the GD comes last; the source keeps everything before. */
	if (vmdk_pipe_keep_all(img, v) < 0 || vmdk_read_tail(img, v) < 0)
		return -1;
	vmdk_use_rgd(v);
	return vmdk_read_tables(img, v, em);
}

static int vmdk_read(struct image *img, struct emitter *em)
{
	struct vmdk *v = img->priv;

	if (v->files != NULL)
		return vmdk_read_files(img, v->files, em);
	return vmdk_read_sparse(img, v, em);
}

void vmdk_free(struct image *img, struct vmdk *v)
{
	if (v->files != NULL)
		vmdk_free_files(img, v->files);
	(void)vmdk_pipe_forget(img);
	vmdk_free_tables(img, v);
	if (v->capseen > 0)
		stash_charge(img->stash, -(int64_t)(v->capseen *
		    sizeof *v->seen + STASH_MALLOC_OVERHEAD));
	free(v->seen);
	free(v->seen_gts);
	if (v->zs_ready)
		inflateEnd(&v->zs);
	free(v->grain);
	free(v->run);
	free(v->win);
	free(v->peek);
	free(v);
}

static void vmdk_close(struct image *img)
{
	if (img->priv != NULL)
		vmdk_free(img, img->priv);
}

const struct format format_vmdk = {
	.name = "vmdk",
	.desc = "VMware VMDK: monolithicSparse, streamOptimized; split and flat with --extents",
	.bid = vmdk_bid,
	.open = vmdk_open,
	.read = vmdk_read,
	.close = vmdk_close,
};
