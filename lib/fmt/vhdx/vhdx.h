/*
 * VHDX's on-disk layout (MS-VHDX, "Virtual Hard Disk v2 (VHDX) File
 * Format"), named once for the reader (vhdx_read.c) and a writer.  Every
 * integer is little-endian; every checksum is CRC-32C (imgpipe/crc32c.h)
 * over the whole structure with its checksum field as zero.
 *
 * The first MiB: file identifier (64 KiB), header 1 at 64 KiB, header 2
 * at 128 KiB (4 KiB each, in 64 KiB slots; the valid one with the higher
 * sequence number is current), region table 1 at 192 KiB and its copy at
 * 256 KiB.  The region table places the BAT and the metadata region
 * anywhere after the first MiB, in whole MiB; the current header places
 * the log.
 */
#ifndef IMGPIPE_FMT_VHDX_H
#define IMGPIPE_FMT_VHDX_H

#include <stdbool.h>
#include <stdint.h>

#define VHDX_KIB		1024u
#define VHDX_MIB		(1024u * 1024)
#define VHDX_ALIGN		VHDX_MIB	/* regions, blocks */

/* File type identifier at 0. */
#define VHDX_FILE_SIGNATURE	"vhdxfile"
#define VHDX_ID_SIGNATURE	0	/* 8 */
#define VHDX_ID_CREATOR		8	/* 512: UTF-16LE, NUL-terminated */
#define VHDX_ID_CREATOR_LEN	512

/* Headers: where, and byte offsets inside one. */
#define VHDX_HEADER1_OFF	(64 * VHDX_KIB)
#define VHDX_HEADER2_OFF	(128 * VHDX_KIB)
#define VHDX_HEADER_SIZE	(4 * VHDX_KIB)	/* checksummed part */
#define VHDX_HEADER_SIGNATURE	"head"
#define VHDX_HDR_SIGNATURE	0	/* 4 */
#define VHDX_HDR_CHECKSUM	4	/* 32 */
#define VHDX_HDR_SEQUENCE	8	/* 64 */
#define VHDX_HDR_FILE_WRITE_GUID 16	/* 16 */
#define VHDX_HDR_DATA_WRITE_GUID 32	/* 16 */
#define VHDX_HDR_LOG_GUID	48	/* 16: zero = log empty */
#define VHDX_HDR_LOG_VERSION	64	/* 16: 0 */
#define VHDX_HDR_VERSION	66	/* 16: VHDX_VERSION */
#define VHDX_HDR_LOG_LENGTH	68	/* 32: multiple of 1 MiB */
#define VHDX_HDR_LOG_OFFSET	72	/* 64: multiple of 1 MiB */
#define VHDX_VERSION		1
#define VHDX_LOG_VERSION	0

/* Region tables. */
#define VHDX_REGION1_OFF	(192 * VHDX_KIB)
#define VHDX_REGION2_OFF	(256 * VHDX_KIB)
#define VHDX_REGION_TABLE_SIZE	(64 * VHDX_KIB)
#define VHDX_HEAD_AREA		(320 * VHDX_KIB)	/* all of the above */
#define VHDX_REGION_SIGNATURE	"regi"
#define VHDX_RT_SIGNATURE	0	/* 4 */
#define VHDX_RT_CHECKSUM	4	/* 32 */
#define VHDX_RT_COUNT		8	/* 32 */
#define VHDX_RT_ENTRIES		16	/* VHDX_RT_ENTRY_SIZE each */
#define VHDX_RT_ENTRY_SIZE	32
#define VHDX_RT_MAX_ENTRIES	2047
#define VHDX_RE_GUID		0	/* 16 */
#define VHDX_RE_OFFSET		16	/* 64 */
#define VHDX_RE_LENGTH		24	/* 32 */
#define VHDX_RE_REQUIRED	28	/* 32: bit 0 */
#define VHDX_REGION_REQUIRED	0x1u

/* Region and metadata item GUIDs, as MS-VHDX writes them. */
#define VHDX_GUID_BAT		"2DC27766-F623-4200-9D64-115E9BFD4A08"
#define VHDX_GUID_METADATA	"8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define VHDX_GUID_FILE_PARAMS	"CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define VHDX_GUID_DISK_SIZE	"2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define VHDX_GUID_PAGE83	"BECA12AB-B2E6-4523-93EF-C309E000C746"
#define VHDX_GUID_LOGICAL_SECTOR "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define VHDX_GUID_PHYSICAL_SECTOR "CDA348C7-445D-4471-9CC9-E9885251C556"
#define VHDX_GUID_PARENT_LOCATOR "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
#define VHDX_GUID_PARENT_TYPE_VHDX "B04AEFB7-D19E-4A81-B789-25B8E9445913"

/* Metadata region: the table at its start, items after it. */
#define VHDX_META_SIGNATURE	"metadata"
#define VHDX_META_TABLE_SIZE	(64 * VHDX_KIB)
#define VHDX_MT_SIGNATURE	0	/* 8 */
#define VHDX_MT_COUNT		10	/* 16 */
#define VHDX_MT_ENTRIES		32	/* VHDX_MT_ENTRY_SIZE each */
#define VHDX_MT_ENTRY_SIZE	32
#define VHDX_MT_MAX_ENTRIES	2047
#define VHDX_ME_GUID		0	/* 16 */
#define VHDX_ME_OFFSET		16	/* 32: from the region's start */
#define VHDX_ME_LENGTH		20	/* 32 */
#define VHDX_ME_FLAGS		24	/* 32 */
#define VHDX_META_IS_USER	0x1u
#define VHDX_META_IS_VIRTUAL_DISK 0x2u
#define VHDX_META_IS_REQUIRED	0x4u

/* Metadata items. */
#define VHDX_FP_BLOCK_SIZE	0	/* 32 */
#define VHDX_FP_FLAGS		4	/* 32 */
#define VHDX_FP_SIZE		8
#define VHDX_FP_LEAVE_ALLOCATED	0x1u
#define VHDX_FP_HAS_PARENT	0x2u
#define VHDX_DISK_SIZE_SIZE	8	/* 64: virtual disk size */
#define VHDX_SECTOR_SIZE_SIZE	4	/* 32: 512 or 4096 */
#define VHDX_PAGE83_SIZE	16	/* a GUID */
#define VHDX_BLOCK_MIN		VHDX_MIB
#define VHDX_BLOCK_MAX		(256u * VHDX_MIB)
#define VHDX_BLOCK_DEFAULT	(32u * VHDX_MIB)	/* Hyper-V */
#define VHDX_DISK_SIZE_MAX	(64ull << 40)	/* VirtualDiskSize: 64 TiB */

/* Parent locator item: header, then key/value entries (UTF-16LE). */
#define VHDX_PL_TYPE		0	/* 16: VHDX_GUID_PARENT_TYPE_VHDX */
#define VHDX_PL_COUNT		18	/* 16 */
#define VHDX_PL_ENTRIES		20	/* VHDX_PL_ENTRY_SIZE each */
#define VHDX_PL_ENTRY_SIZE	12
#define VHDX_PLE_KEY_OFFSET	0	/* 32 */
#define VHDX_PLE_VALUE_OFFSET	4	/* 32 */
#define VHDX_PLE_KEY_LENGTH	8	/* 16 */
#define VHDX_PLE_VALUE_LENGTH	10	/* 16 */

/*
 * BAT: 64-bit entries, state in bits 0-2, file offset in MiB in bits
 * 20-63.  After every chunk_ratio payload entries comes one sector-bitmap
 * entry; chunk_ratio = 2^23 * logical sector size / block size.
 */
#define VHDX_BAT_ENTRY_SIZE	8
#define VHDX_BAT_STATE_MASK	0x7u
#define VHDX_BAT_OFFSET_SHIFT	20
#define VHDX_PAYLOAD_NOT_PRESENT 0
#define VHDX_PAYLOAD_UNDEFINED	1
#define VHDX_PAYLOAD_ZERO	2
#define VHDX_PAYLOAD_UNMAPPED	3
#define VHDX_PAYLOAD_FULLY_PRESENT 6
#define VHDX_PAYLOAD_PARTIALLY_PRESENT 7
#define VHDX_SB_NOT_PRESENT	0
#define VHDX_SB_PRESENT		6
#define VHDX_CHUNK_SECTORS	(1ull << 23)	/* sectors one bitmap covers */

static inline uint64_t vhdx_chunk_ratio(uint32_t logical_sector,
    uint32_t block_size)
{
	return VHDX_CHUNK_SECTORS * logical_sector / block_size;
}

/* The BAT index of payload block b. */
static inline uint64_t vhdx_bat_index(uint64_t b, uint64_t chunk_ratio)
{
	return b + b / chunk_ratio;
}

/*
 * The log: a circular buffer of 4 KiB sectors.  An entry is a header
 * sector (header, then descriptors), more descriptor sectors if needed,
 * then one data sector per data descriptor.
 */
#define VHDX_LOG_SECTOR		(4 * VHDX_KIB)
#define VHDX_LOG_ENTRY_SIGNATURE "loge"
#define VHDX_LE_SIGNATURE	0	/* 4 */
#define VHDX_LE_CHECKSUM	4	/* 32: over EntryLength bytes */
#define VHDX_LE_LENGTH		8	/* 32: multiple of 4 KiB */
#define VHDX_LE_TAIL		12	/* 32: log offset of the sequence's first entry */
#define VHDX_LE_SEQUENCE	16	/* 64: never 0 */
#define VHDX_LE_DESC_COUNT	24	/* 32 */
#define VHDX_LE_LOG_GUID	32	/* 16: the header's LogGuid */
#define VHDX_LE_FLUSHED_OFFSET	48	/* 64: the file is at least this long */
#define VHDX_LE_LAST_OFFSET	56	/* 64: every structure lies below */
#define VHDX_LE_HEADER_SIZE	64

#define VHDX_DESC_SIZE		32
#define VHDX_ZERO_SIGNATURE	"zero"
#define VHDX_DATA_DESC_SIGNATURE "desc"
#define VHDX_DE_SIGNATURE	0	/* 4 */
#define VHDX_DE_TRAILING	4	/* 32: data: last 4 bytes of the sector */
#define VHDX_DE_ZERO_LENGTH	8	/* 64: zero: bytes, multiple of 4 KiB */
#define VHDX_DE_LEADING		8	/* 64: data: first 8 bytes of the sector */
#define VHDX_DE_FILE_OFFSET	16	/* 64: multiple of 4 KiB */
#define VHDX_DE_SEQUENCE	24	/* 64: the entry's */

#define VHDX_DATA_SIGNATURE	"data"
#define VHDX_DS_SIGNATURE	0	/* 4 */
#define VHDX_DS_SEQ_HIGH	4	/* 32 */
#define VHDX_DS_DATA		8	/* 4084 bytes: sector bytes 8..4091 */
#define VHDX_DS_SEQ_LOW		4092	/* 32 */
#define VHDX_DS_DATA_LEN	4084

/* Sectors an entry with ndesc descriptors needs for header + descriptors. */
static inline uint64_t vhdx_desc_sectors(uint64_t ndesc)
{
	return (VHDX_LE_HEADER_SIZE + VHDX_DESC_SIZE * ndesc +
	    VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
}

/*
 * GUIDs are written with their first three fields little-endian: the
 * on-disk bytes of the text form "8B7CA206-4790-4B9A-B8FE-575F050F886E".
 * false when text is not such a GUID.
 */
static inline int vhdx_hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ?
	    c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static inline bool vhdx_guid_bytes(const char *text, unsigned char out[16])
{
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
	    8, 9, 10, 11, 12, 13, 14, 15 };
	unsigned char be[16];
	int i, n = 0, v;

	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] == '-')
			continue;
		if (n >= 32 || (v = vhdx_hexval(text[i])) < 0)
			return false;
		be[n / 2] = n % 2 ? (unsigned char)(be[n / 2] | v)
		    : (unsigned char)(v << 4);
		n++;
	}
	if (n != 32)
		return false;
	for (i = 0; i < 16; i++)
		out[i] = be[order[i]];
	return true;
}

#endif
