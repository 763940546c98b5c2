/*
 * VHD's on-disk layout (Microsoft "Virtual Hard Disk Image Format
 * Specification" 1.0, 2006, with its appendix on CHS geometry), named
 * once for the reader (vhd_read.c) and a writer.  Every integer is
 * big-endian.
 *
 * Fixed:    the disk's bytes, then the footer (512 bytes).
 * Dynamic:  footer copy (512) at 0, dynamic header (1024) at the footer's
 *           data_offset, BAT at the header's table_offset (one u32 sector
 *           number per block, VHD_BAT_UNUSED for none, padded to a
 *           sector), blocks (sector bitmap, then block_size bytes of
 *           data), footer (512) at the end.
 */
#ifndef IMGPIPE_FMT_VHD_H
#define IMGPIPE_FMT_VHD_H

#include <stdint.h>

#define VHD_SECTOR		512u
#define VHD_FOOTER_SIZE		512u
#define VHD_DYN_HEADER_SIZE	1024u

/* Footer ("hard disk footer"): byte offsets. */
#define VHD_FOOTER_COOKIE	"conectix"
#define VHD_FT_COOKIE		0	/* 8 */
#define VHD_FT_FEATURES		8	/* 32 */
#define VHD_FT_VERSION		12	/* 32: VHD_VERSION */
#define VHD_FT_DATA_OFFSET	16	/* 64: dynamic header, or all ones */
#define VHD_FT_TIMESTAMP	24	/* 32: seconds since 2000-01-01 UTC */
#define VHD_FT_CREATOR_APP	28	/* 4 characters: VHD_CREATOR_* */
#define VHD_FT_CREATOR_VERSION	32	/* 32: major << 16 | minor */
#define VHD_FT_CREATOR_HOST	36	/* 4 characters: VHD_HOST_* */
#define VHD_FT_ORIGINAL_SIZE	40	/* 64: bytes at creation */
#define VHD_FT_CURRENT_SIZE	48	/* 64: bytes now */
#define VHD_FT_CYLINDERS	56	/* 16 */
#define VHD_FT_HEADS		58	/* 8 */
#define VHD_FT_SECTORS		59	/* 8: sectors per track */
#define VHD_FT_TYPE		60	/* 32: VHD_TYPE_* */
#define VHD_FT_CHECKSUM		64	/* 32: ~(byte sum), itself as zero */
#define VHD_FT_UUID		68	/* 16 */
#define VHD_FT_SAVED_STATE	84	/* 8 */

#define VHD_FEATURE_TEMPORARY	0x1u
#define VHD_FEATURE_RESERVED	0x2u	/* always set */
#define VHD_VERSION		0x00010000u
#define VHD_NO_DATA_OFFSET	UINT64_MAX	/* fixed disks */

#define VHD_TYPE_NONE		0
#define VHD_TYPE_FIXED		2
#define VHD_TYPE_DYNAMIC	3
#define VHD_TYPE_DIFFERENCING	4

/*
 * Creator applications seen in the wild (test/producers and
 * /work/notes/producers.md say who writes which).  The size rule of
 * vhd_read.c: 'vpc ' and 'qemu' size a disk by its CHS geometry, every
 * other creator by current_size.
 */
#define VHD_CREATOR_VPC		"vpc "	/* Virtual PC: geometry */
#define VHD_CREATOR_VS		"vs  "	/* Virtual Server */
#define VHD_CREATOR_QEMU	"qemu"	/* qemu before force_size: geometry */
#define VHD_CREATOR_QEMU2	"qem2"	/* qemu with force_size */
#define VHD_CREATOR_HYPERV	"win "	/* Hyper-V, Windows */
#define VHD_CREATOR_D2V		"d2v "	/* Disk2vhd, as qemu names it */
#define VHD_CREATOR_D2V_NUL	"d2v\0"	/* Disk2vhd, as it writes it */
#define VHD_CREATOR_VBOX	"vbox"	/* VirtualBox */
#define VHD_CREATOR_MKIMG	"*img"	/* FreeBSD mkimg */
#define VHD_CREATOR_XEN		"tap\0"	/* XenServer blktap */
#define VHD_CREATOR_XENCONV	"CTXS"	/* Citrix XenConverter */
#define VHD_CREATOR_AZURE	"wa\0\0"	/* Azure export */
#define VHD_CREATOR_IMGPIPE	"imgp"	/* raw2vhd: current_size */
#define VHD_HOST_WINDOWS	"Wi2k"
#define VHD_HOST_MAC		"Mac "

/* Dynamic disk header ("cxsparse"): byte offsets. */
#define VHD_DYN_COOKIE		"cxsparse"
#define VHD_DH_COOKIE		0	/* 8 */
#define VHD_DH_DATA_OFFSET	8	/* 64: unused, all ones */
#define VHD_DH_TABLE_OFFSET	16	/* 64: the BAT */
#define VHD_DH_VERSION		24	/* 32: VHD_DYN_VERSION */
#define VHD_DH_MAX_ENTRIES	28	/* 32: BAT entries */
#define VHD_DH_BLOCK_SIZE	32	/* 32: data bytes per block */
#define VHD_DH_CHECKSUM		36	/* 32 */
#define VHD_DH_PARENT_UUID	40	/* 16 */
#define VHD_DH_PARENT_TIME	56	/* 32 */
#define VHD_DH_PARENT_NAME	64	/* 512: UTF-16BE */
#define VHD_DH_PARENT_NAME_LEN	512
#define VHD_DH_LOCATORS		576	/* 8 entries of VHD_LOCATOR_SIZE */
#define VHD_DH_NLOCATORS	8

#define VHD_DYN_VERSION		0x00010000u
#define VHD_BLOCK_DEFAULT	(2u * 1024 * 1024)

/* Parent locator entry: byte offsets and platform codes. */
#define VHD_LOCATOR_SIZE	24
#define VHD_LOC_CODE		0	/* 32 */
#define VHD_LOC_DATA_SPACE	4	/* 32: sectors reserved */
#define VHD_LOC_DATA_LEN	8	/* 32: bytes */
#define VHD_LOC_DATA_OFFSET	16	/* 64 */
#define VHD_PLATFORM_W2KU	"W2ku"	/* absolute Windows path, UTF-16LE */
#define VHD_PLATFORM_W2RU	"W2ru"	/* relative Windows path, UTF-16LE */

/* BAT: one u32 sector number per block. */
#define VHD_BAT_ENTRY_SIZE	4
#define VHD_BAT_UNUSED		0xffffffffu

/*
 * The sector bitmap before each block: one bit per sector, most
 * significant bit first, set = the sector holds data; padded to a sector.
 * (qemu's formula gives 0 bytes for blocks under 4 KiB; this one never.)
 */
static inline uint32_t vhd_bitmap_size(uint32_t block_size)
{
	uint32_t bytes = (block_size / VHD_SECTOR + 7) / 8;

	return (bytes + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
}

/* qemu's limit (VHD_MAX_SECTORS): 2040 GiB. */
#define VHD_MAX_SECTORS		0xff000000ull

/*
 * CHS geometry, the specification's appendix: at most 65535 cylinders,
 * 16 heads, 255 sectors per track; a geometry at that maximum means the
 * disk is too large for CHS.
 */
#define VHD_GEOM_MAX_CYLINDERS	65535u
#define VHD_GEOM_MAX_HEADS	16u
#define VHD_GEOM_MAX_SPT	255u
#define VHD_GEOM_MAX_SECTORS	(65535ull * 16 * 255)
/* At or above this many sectors the appendix uses 16 heads, 255 spt. */
#define VHD_GEOM_LARGE_SECTORS	(65535ull * 16 * 63)
#define VHD_GEOM_MIN_HEADS	4u
#define VHD_GEOM_CYL_LIMIT	1024u	/* cylinders before more heads */

struct vhd_chs {
	uint16_t cylinders;
	uint8_t heads;
	uint8_t spt;
};

/* The appendix's algorithm, from a disk of total_sectors sectors. */
static inline struct vhd_chs vhd_geometry(uint64_t total_sectors)
{
	uint64_t cth;
	uint32_t heads, spt;

	if (total_sectors > VHD_GEOM_MAX_SECTORS)
		total_sectors = VHD_GEOM_MAX_SECTORS;
	if (total_sectors >= VHD_GEOM_LARGE_SECTORS) {
		spt = 255;
		heads = 16;
		cth = total_sectors / spt;
	} else {
		spt = 17;
		cth = total_sectors / spt;
		heads = (uint32_t)((cth + 1023) / 1024);
		if (heads < VHD_GEOM_MIN_HEADS)
			heads = VHD_GEOM_MIN_HEADS;
		if (cth >= heads * VHD_GEOM_CYL_LIMIT || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total_sectors / spt;
		}
		if (cth >= heads * VHD_GEOM_CYL_LIMIT) {
			spt = 63;
			heads = 16;
			cth = total_sectors / spt;
		}
	}
	return (struct vhd_chs){ (uint16_t)(cth / heads), (uint8_t)heads,
	    (uint8_t)spt };
}

/* The checksum of footer and dynamic header: ~(sum of bytes), the field
 * itself (4 bytes at skip) left out. */
static inline uint32_t vhd_checksum(const unsigned char *p, uint32_t len,
    uint32_t skip)
{
	uint32_t sum = 0, i;

	for (i = 0; i < len; i++)
		if (i < skip || i >= skip + 4)
			sum += p[i];
	return ~sum;
}

#endif
