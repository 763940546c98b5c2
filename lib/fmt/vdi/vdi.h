/*
 * VDI's on-disk layout (VirtualBox VDICore.h, header version 1.1), named
 * once for the reader (vdi_read.c) and a writer.  Every integer is
 * little-endian.
 *
 * A pre-header (info text, signature, version), the header, the block map
 * (one le32 per virtual block: a host block index or a marker), the data
 * blocks.  VirtualBox aligns the block map and the data to VDI_DATA_ALIGN;
 * qemu-img puts the map at 0x200 and the data right after it.
 */
#ifndef IMGPIPE_FMT_VDI_H
#define IMGPIPE_FMT_VDI_H

/* Pre-header: byte offsets from the start of the file. */
#define VDI_PRE_INFO		0x00	/* char[64]: VDI_INFO_TEXT, NUL-padded */
#define VDI_PRE_INFO_LEN	64
#define VDI_PRE_SIGNATURE	0x40	/* 32: VDI_SIGNATURE */
#define VDI_PRE_VERSION		0x44	/* 32: major << 16 | minor */
#define VDI_PRE_LEN		0x48

#define VDI_INFO_TEXT	"<<< Oracle VM VirtualBox Disk Image >>>\n"
#define VDI_SIGNATURE	0xbeda107fu
#define VDI_VERSION_1_1	0x00010001u

/* Header 1.1 ("1plus"): byte offsets from the start of the file. */
#define VDI_HDR_SIZE		0x48	/* 32: cbHeader, from here */
#define VDI_HDR_TYPE		0x4c	/* 32: VDI_TYPE_* */
#define VDI_HDR_FLAGS		0x50	/* 32 */
#define VDI_HDR_COMMENT		0x54	/* char[256], UTF-8 */
#define VDI_HDR_COMMENT_LEN	256
#define VDI_HDR_BMAP_OFF	0x154	/* 32: offBlocks, the block map */
#define VDI_HDR_DATA_OFF	0x158	/* 32: offData, block 0 */
#define VDI_HDR_LEGACY_GEOMETRY	0x15c	/* struct vdi geometry below */
#define VDI_HDR_DUMMY		0x16c	/* 32: was the BIOS translation */
#define VDI_HDR_DISK_SIZE	0x170	/* 64: virtual size in bytes */
#define VDI_HDR_BLOCK_SIZE	0x178	/* 32: bytes of data per block */
#define VDI_HDR_BLOCK_EXTRA	0x17c	/* 32: bytes before each block's data */
#define VDI_HDR_NBLOCKS		0x180	/* 32: blocks in the image */
#define VDI_HDR_NALLOCATED	0x184	/* 32: blocks allocated */
#define VDI_HDR_UUID_CREATE	0x188	/* 16: RTUUID, little-endian fields */
#define VDI_HDR_UUID_MODIFY	0x198	/* 16 */
#define VDI_HDR_UUID_LINKAGE	0x1a8	/* 16: the parent (diff images) */
#define VDI_HDR_UUID_PARENT_MODIFY 0x1b8 /* 16 */
#define VDI_HDR_LCHS_GEOMETRY	0x1c8	/* struct vdi geometry below */
#define VDI_HDR_END		0x1d8

#define VDI_UUID_LEN		16

/* A geometry: four le32 at these offsets from its start. */
#define VDI_GEO_CYLINDERS	0
#define VDI_GEO_HEADS		4
#define VDI_GEO_SECTORS		8
#define VDI_GEO_SECTOR_SIZE	12	/* 512 */
#define VDI_GEO_LEN		16

/* cbHeader: 1.1 without (VirtualBox's VDIHEADER1) and with LCHS (1plus). */
#define VDI_HEADER_SIZE_V1	384
#define VDI_HEADER_SIZE_V1PLUS	400

#define VDI_TYPE_DYNAMIC	1	/* "normal": blocks allocated on write */
#define VDI_TYPE_FIXED		2	/* "static": every block allocated */
#define VDI_TYPE_UNDO		3
#define VDI_TYPE_DIFF		4	/* has a parent (uuid linkage) */

#define VDI_SECTOR_SIZE		512
#define VDI_BLOCK_SIZE_DEFAULT	(1u << 20)
#define VDI_DATA_ALIGN		(1u << 20)	/* VirtualBox's alignment */

/* Block map entries other than a host block index. */
#define VDI_BLOCK_FREE		0xffffffffu	/* unallocated: reads as zeros */
#define VDI_BLOCK_ZERO		0xfffffffeu	/* explicitly zero */

#endif
