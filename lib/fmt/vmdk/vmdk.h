/*
 * VMDK's on-disk layout (VMware "Virtual Disk Format 5.0", with what
 * qemu's block/vmdk.c and VirtualBox's VMDK.cpp add), named once for the
 * reader (vmdk_read.c) and a writer.  Every integer is little-endian;
 * offsets and sizes in the header, GD, GTs and markers count 512-byte
 * sectors unless the name says bytes.
 *
 * A hosted sparse extent: header (sector 0), embedded descriptor, then
 * the redundant grain directory and tables, the grain directory (GD: one
 * GDE per grain table), the grain tables (GT: one GTE per grain) and,
 * from overHead on, the grains.  monolithicSparse has uncompressed grains;
 * streamOptimized has deflated grains, each behind a grain marker, and
 * its metadata behind metadata markers.  With gdOffset = GD_AT_END the
 * GD (and GTs) follow the grains and a footer -- a second header with the
 * real gdOffset -- ends the file:
 *
 *	... GT marker, GT ... GD marker, GD, footer marker, footer, EOS marker
 */
#ifndef IMGPIPE_FMT_VMDK_H
#define IMGPIPE_FMT_VMDK_H

#include <stdint.h>
#include <string.h>

#include "imgpipe/bytes.h"

#define VMDK_SECTOR		512u
#define VMDK_MAGIC		0x564d444bu	/* "KDMV" on disk */

/* SparseExtentHeader: byte offsets in sector 0 (and in a footer). */
#define VMDK_HDR_MAGIC		0	/* 32 */
#define VMDK_HDR_VERSION	4	/* 32 */
#define VMDK_HDR_FLAGS		8	/* 32: VMDK_FLAG_* */
#define VMDK_HDR_CAPACITY	12	/* 64: sectors of the virtual disk */
#define VMDK_HDR_GRAIN_SIZE	20	/* 64: sectors per grain */
#define VMDK_HDR_DESC_OFFSET	28	/* 64: embedded descriptor, or 0 */
#define VMDK_HDR_DESC_SIZE	36	/* 64: its sectors */
#define VMDK_HDR_GTES_PER_GT	44	/* 32: numGTEsPerGT */
#define VMDK_HDR_RGD_OFFSET	48	/* 64: redundant GD, or 0 */
#define VMDK_HDR_GD_OFFSET	56	/* 64: GD, or VMDK_GD_AT_END */
#define VMDK_HDR_OVERHEAD	64	/* 64: sectors before the first grain */
#define VMDK_HDR_UNCLEAN	72	/* 8: uncleanShutdown */
#define VMDK_HDR_NL_CHARS	73	/* 4: VMDK_NL_BYTES */
#define VMDK_HDR_COMPRESS	77	/* 16: compressAlgorithm */
#define VMDK_HDR_LEN		79	/* then zeros up to the sector's end */

/* Versions: 1 plain; 2 adds zeroed-grain GTEs (qemu writes it with
 * VMDK_FLAG_ZERO_GRAIN); 3 is what VMware and VirtualBox write for
 * streamOptimized (changed-block tracking; read like 1). */
#define VMDK_VERSION_1		1u
#define VMDK_VERSION_2		2u
#define VMDK_VERSION_3		3u
#define VMDK_VERSION_MAX	VMDK_VERSION_3

#define VMDK_FLAG_NL_TEST	(1u << 0)	/* VMDK_NL_BYTES are valid */
#define VMDK_FLAG_RGD		(1u << 1)	/* redundant GD and GTs used */
#define VMDK_FLAG_ZERO_GRAIN	(1u << 2)	/* GTE 1 means a zero grain */
#define VMDK_FLAG_COMPRESSED	(1u << 16)	/* grains are deflated */
#define VMDK_FLAG_MARKERS	(1u << 17)	/* metadata markers present */

#define VMDK_COMPRESS_NONE	0u
#define VMDK_COMPRESS_DEFLATE	1u	/* RFC 1950 zlib (VMware, qemu) */

/* The newline-detection bytes: a text-mode transfer changes them. */
#define VMDK_NL_BYTES		"\n \r\n"
#define VMDK_NL_LEN		4

/* gdOffset (header only): the GD follows the grains; see the footer. */
#define VMDK_GD_AT_END		UINT64_MAX

/* GD and GT entries: uint32 sector offsets. */
#define VMDK_GDE_BYTES		4u
#define VMDK_GTE_BYTES		4u
#define VMDK_GTE_UNALLOCATED	0u	/* reads as zeros (or the parent) */
#define VMDK_GTE_ZERO		1u	/* a zero grain */

#define VMDK_GRAIN_SECTORS	128u	/* VMware's and qemu's 64 KiB grain */
#define VMDK_GRAIN_MAX_SECTORS	32768u	/* our cap: 16 MiB */
#define VMDK_GTES_PER_GT	512u	/* VMware's; also the spec's maximum */
#define VMDK_GT_BYTES		(VMDK_GTES_PER_GT * VMDK_GTE_BYTES)	/* 2 KiB */
#define VMDK_GTES_MAX		VMDK_GTES_PER_GT

/*
 * Markers (streamOptimized), each at a sector boundary:
 *	grain marker:    val = LBA (sectors), size = deflated bytes, data
 *	                 from byte 12, padded to the next sector;
 *	metadata marker: val = sectors of metadata that follow, size = 0,
 *	                 type at byte 12, zeros to the sector's end.
 */
#define VMDK_MARKER_VAL		0	/* 64 */
#define VMDK_MARKER_SIZE	8	/* 32 */
#define VMDK_MARKER_TYPE	12	/* 32: metadata markers only */
#define VMDK_MARKER_HEAD	12	/* a grain's data starts here */
#define VMDK_MARKER_EOS		0u	/* end of stream */
#define VMDK_MARKER_GT		1u
#define VMDK_MARKER_GD		2u
#define VMDK_MARKER_FOOTER	3u	/* val 1: the footer follows */
/* Undocumented, "shows up in images created by vSphere" (VirtualBox's
 * VMDK_MARKER_UNSPECIFIED): VirtualBox skips its one sector. */
#define VMDK_MARKER_UNSPECIFIED	4u

/* The end of a GD_AT_END extent: footer marker, footer, EOS marker. */
#define VMDK_TAIL_SECTORS	3u

/* streamOptimized as VMware writes it: descriptor at sector 1, grains
 * from sector 128. */
#define VMDK_STREAM_OVERHEAD	128u

/* Descriptor: text, embedded at descOffset or a file of its own. */
#define VMDK_DESC_SIGNATURE	"# Disk DescriptorFile"
#define VMDK_DESC_SECTOR	1u	/* where VMware and qemu embed it */
#define VMDK_DESC_SECTORS	20u	/* monolithicSparse's descriptor area */
#define VMDK_DESC_MAX		(1u << 20)	/* our cap on its bytes */
#define VMDK_CID_NONE		0xffffffffu	/* parentCID: no parent */
#define VMDK_DDB_PREFIX		"ddb."

/* createType values. */
#define VMDK_TYPE_SPARSE	"monolithicSparse"
#define VMDK_TYPE_STREAM	"streamOptimized"
#define VMDK_TYPE_FLAT		"monolithicFlat"
#define VMDK_TYPE_SPLIT_SPARSE	"twoGbMaxExtentSparse"
#define VMDK_TYPE_SPLIT_FLAT	"twoGbMaxExtentFlat"
#define VMDK_TYPE_VMFS		"vmfs"
/* Sectors of each extent but the last of a twoGbMaxExtent* disk. */
#define VMDK_SPLIT_EXTENT_SECTORS 4192256u

/* A header (or footer) as numbers. */
struct vmdk_header {
	uint32_t version, flags;
	uint64_t capacity;		/* sectors */
	uint64_t grain_sectors;
	uint64_t desc_offset, desc_sectors;
	uint32_t gtes_per_gt;
	uint64_t rgd_offset, gd_offset, overhead;	/* sectors */
	uint8_t unclean;
	uint16_t compress;
};

static inline void vmdk_header_get(struct vmdk_header *h,
    const unsigned char *p)
{
	h->version = le32(p + VMDK_HDR_VERSION);
	h->flags = le32(p + VMDK_HDR_FLAGS);
	h->capacity = le64(p + VMDK_HDR_CAPACITY);
	h->grain_sectors = le64(p + VMDK_HDR_GRAIN_SIZE);
	h->desc_offset = le64(p + VMDK_HDR_DESC_OFFSET);
	h->desc_sectors = le64(p + VMDK_HDR_DESC_SIZE);
	h->gtes_per_gt = le32(p + VMDK_HDR_GTES_PER_GT);
	h->rgd_offset = le64(p + VMDK_HDR_RGD_OFFSET);
	h->gd_offset = le64(p + VMDK_HDR_GD_OFFSET);
	h->overhead = le64(p + VMDK_HDR_OVERHEAD);
	h->unclean = p[VMDK_HDR_UNCLEAN];
	h->compress = le16(p + VMDK_HDR_COMPRESS);
}

/* One sector: the header, newline bytes included, zero-padded. */
static inline void vmdk_header_put(unsigned char *p,
    const struct vmdk_header *h)
{
	memset(p, 0, VMDK_SECTOR);
	put_le32(p + VMDK_HDR_MAGIC, VMDK_MAGIC);
	put_le32(p + VMDK_HDR_VERSION, h->version);
	put_le32(p + VMDK_HDR_FLAGS, h->flags);
	put_le64(p + VMDK_HDR_CAPACITY, h->capacity);
	put_le64(p + VMDK_HDR_GRAIN_SIZE, h->grain_sectors);
	put_le64(p + VMDK_HDR_DESC_OFFSET, h->desc_offset);
	put_le64(p + VMDK_HDR_DESC_SIZE, h->desc_sectors);
	put_le32(p + VMDK_HDR_GTES_PER_GT, h->gtes_per_gt);
	put_le64(p + VMDK_HDR_RGD_OFFSET, h->rgd_offset);
	put_le64(p + VMDK_HDR_GD_OFFSET, h->gd_offset);
	put_le64(p + VMDK_HDR_OVERHEAD, h->overhead);
	p[VMDK_HDR_UNCLEAN] = h->unclean;
	memcpy(p + VMDK_HDR_NL_CHARS, VMDK_NL_BYTES, VMDK_NL_LEN);
	put_le16(p + VMDK_HDR_COMPRESS, h->compress);
}

/* A marker as numbers: size 0 makes it a metadata marker. */
struct vmdk_marker {
	uint64_t val;
	uint32_t size;
	uint32_t type;			/* meaningful when size == 0 */
};

static inline void vmdk_marker_get(struct vmdk_marker *m,
    const unsigned char *p)
{
	m->val = le64(p + VMDK_MARKER_VAL);
	m->size = le32(p + VMDK_MARKER_SIZE);
	m->type = m->size == 0 ? le32(p + VMDK_MARKER_TYPE) : 0;
}

/* A metadata marker: one sector. */
static inline void vmdk_marker_put_meta(unsigned char *p, uint32_t type,
    uint64_t nsectors)
{
	memset(p, 0, VMDK_SECTOR);
	put_le64(p + VMDK_MARKER_VAL, nsectors);
	put_le32(p + VMDK_MARKER_TYPE, type);
}

/* A grain marker's head: the deflated bytes go from VMDK_MARKER_HEAD. */
static inline void vmdk_marker_put_grain(unsigned char *p, uint64_t lba,
    uint32_t nbytes)
{
	put_le64(p + VMDK_MARKER_VAL, lba);
	put_le32(p + VMDK_MARKER_SIZE, nbytes);
}

#endif
