/*
 * vdi: VirtualBox Virtual Disk Image, fixed and dynamic.
 *
 * A pre-header (text and signature at 0x40), a header, the block map (one
 * uint32 per virtual block: the host block index, or one of two markers),
 * then the blocks.  Seekable input is read in virtual order, coalescing
 * host-contiguous blocks; a pipe is read in file order and the emitter
 * parks blocks that come out of virtual order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "fmt/vdi/vdi.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"

#define VDI_HEADER_END 0x200		/* pre-header and header fit here */
#define VDI_BLOCK_MIN 512u
#define VDI_BLOCK_MAX (32u << 20)
#define VDI_READ_MAX (8u << 20)		/* largest coalesced read */

struct vdi {
	uint32_t block_size;
	uint32_t nblocks;		/* blocks_in_image */
	uint32_t nallocated;		/* blocks_allocated */
	uint64_t offset_bmap;
	uint64_t offset_data;
	uint32_t *bmap;			/* host order of the file: LE decoded */
};

static int vdi_bid(const struct probe *pb)
{
	if (pb->headlen < VDI_PRE_LEN || le32(pb->head + VDI_PRE_SIGNATURE) != VDI_SIGNATURE)
		return BID_NONE;
	return BID_SIGNATURE;
}

/* Header fields, checked against each other and the input length. */
static int vdi_check_header(struct image *img, struct vdi *v,
    const unsigned char *h)
{
	uint32_t version = le32(h + VDI_PRE_VERSION), header_size = le32(h + VDI_HDR_SIZE);
	uint32_t type = le32(h + VDI_HDR_TYPE), sector_size = le32(h + VDI_HDR_LEGACY_GEOMETRY + VDI_GEO_SECTOR_SIZE);
	uint32_t block_extra = le32(h + VDI_HDR_BLOCK_EXTRA);
	uint64_t disk_size = le64(h + VDI_HDR_DISK_SIZE), bmap_len;

	if (version != VDI_VERSION_1_1)
		return image_bad(img, "unsupported version %u.%u (header at "
		    "0x44); only 1.1 is read", version >> 16, version & 0xffff);
	if (header_size < VDI_HEADER_SIZE_V1 ||
	    header_size > VDI_HEADER_END - VDI_PRE_SIGNATURE)
		return image_bad(img, "header size %u is out of range (header "
		    "at 0x48)", header_size);
	if (type != VDI_TYPE_DYNAMIC && type != VDI_TYPE_FIXED)
		return image_bad(img, "unsupported image type %u (header at "
		    "0x4c): only dynamic (1) and fixed (2)", type);
	if (sector_size != VDI_SECTOR_SIZE)
		return image_bad(img, "sector size %u is not 512 (header at "
		    "0x168)", sector_size);
	v->block_size = le32(h + VDI_HDR_BLOCK_SIZE);
	if (v->block_size < VDI_BLOCK_MIN || v->block_size > VDI_BLOCK_MAX ||
	    (v->block_size & (v->block_size - 1)) != 0)
		return image_bad(img, "block size %u is not a power of two "
		    "from %u to %u (header at 0x178)", v->block_size,
		    VDI_BLOCK_MIN, VDI_BLOCK_MAX);
	if (block_extra != 0)
		return image_bad(img, "block extra data of %u bytes is not "
		    "supported (header at 0x17c)", block_extra);
	v->nblocks = le32(h + VDI_HDR_NBLOCKS);
	v->nallocated = le32(h + VDI_HDR_NALLOCATED);
	bmap_len = (uint64_t)v->nblocks * 4;
	if (bmap_len > IMAGE_META_MAX)
		return image_bad(img, "block map of %u blocks is larger than "
		    "the %llu-byte limit (header at 0x180)", v->nblocks,
		    IMAGE_META_MAX);
	if (disk_size > (uint64_t)v->nblocks * v->block_size)
		return image_bad(img, "disk size %llu exceeds the %u blocks of "
		    "%u bytes (header at 0x170)", (unsigned long long)disk_size,
		    v->nblocks, v->block_size);
	if (v->nallocated > v->nblocks)
		return image_bad(img, "%u blocks allocated of only %u (header "
		    "at 0x184)", v->nallocated, v->nblocks);
	v->offset_bmap = le32(h + VDI_HDR_BMAP_OFF);
	v->offset_data = le32(h + VDI_HDR_DATA_OFF);
	if (v->offset_bmap % VDI_SECTOR_SIZE != 0 ||
	    v->offset_data % VDI_SECTOR_SIZE != 0)
		return image_defect(img, FINDING_MISALIGNED, "block map offset "
		    "0x%llx or data offset 0x%llx is not sector-aligned (header "
		    "at 0x154)", (unsigned long long)v->offset_bmap,
		    (unsigned long long)v->offset_data);
	if (v->offset_bmap < VDI_PRE_SIGNATURE + (uint64_t)header_size)
		return image_defect(img, FINDING_OVERLAP, "block map offset "
		    "0x%llx overlaps the header (header at 0x154)",
		    (unsigned long long)v->offset_bmap);
	if (v->offset_data < v->offset_bmap + bmap_len)
		return image_defect(img, FINDING_OVERLAP, "data offset 0x%llx "
		    "overlaps the block map (header at 0x158)",
		    (unsigned long long)v->offset_data);
	if (img->src->size_known && v->offset_data > img->src->size)
		return image_defect(img, FINDING_TRUNCATED,
		    "data offset 0x%llx lies past the end "
		    "of the image (header at 0x158)",
		    (unsigned long long)v->offset_data);
	img->virtual_size = disk_size;
	img->cluster_size = v->block_size;
	snprintf(img->subformat, sizeof img->subformat, "%s",
	    type == VDI_TYPE_FIXED ? "fixed" : "dynamic");
	return 0;
}

/*
 * Every host block index names a block inside the file, below
 * blocks_allocated, and no other entry's: one map of nallocated bits
 * (at most 2 MiB) finds a block used twice, from a file and a pipe alike.
 */
static int vdi_check_bmap(struct image *img, struct vdi *v)
{
	uint64_t limit = UINT32_MAX;
	unsigned char *seen;
	uint32_t i, e;
	int rc = 0;

	if (img->src->size_known)
		limit = (img->src->size - v->offset_data) / v->block_size;
	seen = calloc((size_t)v->nallocated / 8 + 1, 1);
	if (seen == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < v->nblocks && rc == 0; i++) {
		e = v->bmap[i];
		if (e == VDI_BLOCK_FREE || e == VDI_BLOCK_ZERO)
			continue;
		if (e >= v->nallocated)
			rc = image_defect(img, FINDING_OUT_OF_RANGE, "block map "
			    "entry %u names host block %u, past the %u "
			    "allocated blocks (block map at 0x%llx)", i, e,
			    v->nallocated, (unsigned long long)
			    (v->offset_bmap + 4ull * i));
		else if (e >= limit)
			rc = image_defect(img, FINDING_TRUNCATED, "block map "
			    "entry %u names host block %u, past the end of the "
			    "image (block map at 0x%llx)", i, e,
			    (unsigned long long)(v->offset_bmap + 4ull * i));
		else if (seen[e / 8] & 1u << e % 8)
			rc = image_defect(img, FINDING_SHARED_BLOCK, "host block "
			    "%u is named by two block map entries, the second "
			    "%u (block map at 0x%llx)", e, i, (unsigned long long)
			    (v->offset_bmap + 4ull * i));
		else
			seen[e / 8] |= 1u << e % 8;
	}
	free(seen);
	return rc;
}

static int vdi_open(struct image *img)
{
	struct vdi *v = calloc(1, sizeof *v);
	unsigned char *raw;
	uint32_t i;

	if (v == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = v;
	if (img->src->headlen < VDI_HEADER_END)
		return image_defect(img, FINDING_TRUNCATED,
		    "header is truncated (%zu bytes)",
		    img->src->headlen);
	if (vdi_check_header(img, v, img->src->head) < 0)
		return -1;
	v->bmap = malloc((size_t)v->nblocks * 4 + 1);
	if (v->bmap == NULL)
		return fail(EXIT_IO, "out of memory");
	raw = (unsigned char *)v->bmap;
	if (image_read_at(img, raw, (size_t)v->nblocks * 4,
	    v->offset_bmap, "block map") < 0)
		return -1;
	for (i = 0; i < v->nblocks; i++)
		v->bmap[i] = le32(raw + 4 * i);
	return vdi_check_bmap(img, v);
}

static uint64_t vdi_host_offset(const struct vdi *v, uint32_t hblock)
{
	return v->offset_data + (uint64_t)hblock * v->block_size;
}

/* Bytes of virtual block i that lie inside the disk. */
static size_t vdi_block_len(const struct image *img, const struct vdi *v,
    uint32_t i)
{
	uint64_t off = (uint64_t)i * v->block_size;

	if (off >= img->virtual_size)
		return 0;
	return img->virtual_size - off < v->block_size
	    ? img->virtual_size - off : v->block_size;
}

/*
 * len bytes from host block e to virtual block i: checked, not read, when
 * walking; holes of a plain file are zeros without reading them.
 */
static int vdi_copy(struct image *img, const struct vdi *v, struct emitter *em,
    unsigned char *buf, size_t len, uint32_t e, uint32_t i)
{
	uint64_t voff = (uint64_t)i * v->block_size;

	if (emit_upto(em, voff) < 0)
		return -1;
	return image_copy_range(img, em, buf, len, vdi_host_offset(v, e), len,
	    voff, "data block");
}

/* Virtual order: runs of blocks contiguous both virtually and on the host. */
static int vdi_read_seekable(struct image *img, struct vdi *v,
    struct emitter *em, unsigned char *buf, uint32_t per_read)
{
	uint32_t i = 0, n;
	size_t len;

	while (i < v->nblocks) {
		uint32_t e = v->bmap[i];

		if (e == VDI_BLOCK_FREE || e == VDI_BLOCK_ZERO) {
			i++;
			continue;
		}
		for (n = 1; n < per_read && i + n < v->nblocks &&
		    v->bmap[i + n] == e + n; n++)
			;
		len = 0;
		for (uint32_t k = 0; k < n; k++)
			len += vdi_block_len(img, v, i + k);
		/* virtual order: the disk below block i is complete */
		if (len > 0 && vdi_copy(img, v, em, buf, len, e, i) < 0)
			return -1;
		i += n;
	}
	return 0;
}

/*
 * File order: sort (host block << 32 | virtual block) and read forward.
 * Two virtual blocks sharing a host block get the same bytes.  After each
 * block the emitter learns how far the disk is complete, so an in-order
 * sink gets zeros for gaps at once instead of parking what follows.
 */
static int vdi_read_stream(struct image *img, struct vdi *v,
    struct emitter *em, unsigned char *buf)
{
	uint64_t *order, nalloc = 0, i;
	uint32_t host, virt, last = VDI_BLOCK_FREE, *lowest = NULL;
	bool whole_once;
	int rc = 0;

	order = malloc(((size_t)v->nblocks + 1) * sizeof *order);
	if (order == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < v->nblocks; i++)
		if (v->bmap[i] != VDI_BLOCK_FREE && v->bmap[i] != VDI_BLOCK_ZERO)
			order[nalloc++] = (uint64_t)v->bmap[i] << 32 | i;
	sort_u64(order, nalloc);
	lowest = lowest_after(order, nalloc, v->nblocks);
	if (lowest == NULL)
		rc = fail(EXIT_IO, "out of memory");
	for (i = 0; i < nalloc && rc == 0; i++) {
		host = order[i] >> 32;
		virt = (uint32_t)order[i];
		/* a whole block used once may go from a pipe in the kernel */
		whole_once = vdi_block_len(img, v, virt) == v->block_size &&
		    (i + 1 == nalloc || order[i + 1] >> 32 != host);
		if (host != last && whole_once) {
			rc = image_copy_range(img, em, buf, v->block_size,
			    vdi_host_offset(v, host), v->block_size,
			    (uint64_t)virt * v->block_size, "data block");
		} else {
			if (host != last)
				rc = image_read_at(img, buf, v->block_size,
				    vdi_host_offset(v, host), "data block");
			if (rc == 0)
				rc = emit_data(em, (uint64_t)virt *
				    v->block_size, buf,
				    vdi_block_len(img, v, virt));
		}
		last = host;
		if (rc == 0)
			rc = emit_upto(em, (uint64_t)lowest[i + 1] *
			    v->block_size);
	}
	free(lowest);
	free(order);
	return rc;
}

static int vdi_read(struct image *img, struct emitter *em)
{
	struct vdi *v = img->priv;
	uint32_t per_read = VDI_READ_MAX / v->block_size;
	unsigned char *buf;
	int rc;

	if (per_read == 0)
		per_read = 1;
	buf = bigbuf_alloc((size_t)per_read * v->block_size);
	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = img->src->seekable ? vdi_read_seekable(img, v, em, buf, per_read)
	    : vdi_read_stream(img, v, em, buf);
	bigbuf_free(buf);
	return rc;
}

static void vdi_close(struct image *img)
{
	struct vdi *v = img->priv;

	if (v != NULL)
		free(v->bmap);
	free(v);
}

const struct format format_vdi = {
	.name = "vdi",
	.desc = "VirtualBox VDI, fixed and dynamic",
	.bid = vdi_bid,
	.open = vdi_open,
	.read = vdi_read,
	.close = vdi_close,
};
