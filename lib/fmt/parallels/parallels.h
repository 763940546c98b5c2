/*
 * The Parallels expandable image and Virtuozzo ploop layout (QEMU
 * docs/interop/parallels.txt, block/parallels.c, parallels-ext.c), named
 * once for the reader (parallels_read.c) and a writer.  Every integer is
 * little-endian.
 *
 * A 64-byte header, the BAT (one le32 per cluster: 0 unallocated, else the
 * cluster's place in sectors for "WithoutFreeSpace" or in clusters for
 * "WithouFreSpacExt", the ploop v2 image), the data area from data_off.
 * ext_off may name a format extension cluster (dirty bitmaps).
 */
#ifndef IMGPIPE_FMT_PARALLELS_H
#define IMGPIPE_FMT_PARALLELS_H

#define PRL_MAGIC_LEN		16
#define PRL_MAGIC_V1		"WithoutFreeSpace"	/* BAT in sectors */
#define PRL_MAGIC_V2		"WithouFreSpacExt"	/* BAT in clusters */
#define PRL_VERSION		2

/* Header fields: byte offsets. */
#define PRL_HDR_MAGIC		0	/* char[16] */
#define PRL_HDR_VERSION		16	/* 32: PRL_VERSION */
#define PRL_HDR_HEADS		20	/* 32: geometry, informative */
#define PRL_HDR_CYLINDERS	24	/* 32 */
#define PRL_HDR_TRACKS		28	/* 32: sectors per cluster */
#define PRL_HDR_BAT_ENTRIES	32	/* 32 */
#define PRL_HDR_NB_SECTORS	36	/* 64: virtual size; v1: low 32 bits */
#define PRL_HDR_INUSE		44	/* 32: PRL_INUSE_* */
#define PRL_HDR_DATA_OFF	48	/* 32: sectors; 0: right after the BAT */
#define PRL_HDR_FLAGS		52	/* 32 */
#define PRL_HDR_EXT_OFF		56	/* 64: sectors; 0: no format extension */
#define PRL_HEADER_LEN		64	/* the BAT follows */

#define PRL_BAT_ENTRY_LEN	4
#define PRL_SECTOR_SIZE		512
#define PRL_CLUSTER_DEFAULT	(1u << 20)	/* 2048 sectors */

/* inuse: open for writing, or closed (0, or ploop v2.1's closed mark). */
#define PRL_INUSE_OPEN		0x746f6e59u	/* "Ynot" */
#define PRL_INUSE_CLOSED	0
#define PRL_INUSE_V21_CLOSED	0x312e3276u	/* "v2.1" */

/* Format extension cluster: magic, MD5 of the rest, then features. */
#define PRL_EXT_MAGIC		0xab234cef23dcea87ull
#define PRL_EXT_OFF_MAGIC	0	/* 64 */
#define PRL_EXT_OFF_CHECKSUM	8	/* 16: MD5 of [24, cluster end) */
#define PRL_EXT_OFF_FEATURES	24	/* the first feature header */

/* A feature: header, data padded to 8 bytes; magic 0 ends the list. */
#define PRL_FEAT_OFF_MAGIC	0	/* 64 */
#define PRL_FEAT_OFF_FLAGS	8	/* 64 */
#define PRL_FEAT_OFF_DATA_SIZE	16	/* 32: bytes of data */
#define PRL_FEAT_OFF_RESERVED	20	/* 32 */
#define PRL_FEAT_HEADER_LEN	24
#define PRL_FEAT_END		0ull
#define PRL_FEAT_DIRTY_BITMAP	0x20385fae252cb34aull

/* Dirty bitmap feature data, then l1_size le64: sector of each bitmap
 * cluster, 0 all clear, 1 all set. */
#define PRL_BITMAP_OFF_SIZE	0	/* 64: sectors the bitmap covers */
#define PRL_BITMAP_OFF_ID	8	/* 16: UUID */
#define PRL_BITMAP_OFF_GRANULARITY 24	/* 32: sectors per bit */
#define PRL_BITMAP_OFF_L1_SIZE	28	/* 32: entries after this header */
#define PRL_BITMAP_HEADER_LEN	32

#endif
