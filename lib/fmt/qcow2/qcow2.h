/*
 * qcow2's on-disk layout (QEMU docs/interop/qcow2.txt), named once for the
 * reader (qcow2_read.c) and the writer (qcow2_write.c).  Every integer is
 * big-endian.
 */
#ifndef IMGPIPE_FMT_QCOW2_H
#define IMGPIPE_FMT_QCOW2_H

#define QCOW2_MAGIC		0x514649fbu	/* "QFI\xfb" */

/* Header fields: byte offsets in cluster 0. */
#define QCOW2_HDR_MAGIC		0	/* 32 */
#define QCOW2_HDR_VERSION	4	/* 32: 2 or 3 */
#define QCOW2_HDR_BACKING_OFF	8	/* 64 */
#define QCOW2_HDR_BACKING_LEN	16	/* 32 */
#define QCOW2_HDR_CLUSTER_BITS	20	/* 32 */
#define QCOW2_HDR_SIZE		24	/* 64: virtual size in bytes */
#define QCOW2_HDR_CRYPT		32	/* 32: 0 none, 1 AES, 2 LUKS */
#define QCOW2_HDR_L1_SIZE	36	/* 32: entries */
#define QCOW2_HDR_L1_OFF	40	/* 64 */
#define QCOW2_HDR_RT_OFF	48	/* 64: refcount table */
#define QCOW2_HDR_RT_CLUSTERS	56	/* 32 */
#define QCOW2_HDR_NB_SNAPSHOTS	60	/* 32 */
#define QCOW2_HDR_SNAPSHOTS_OFF	64	/* 64 */
/* version 3 */
#define QCOW2_HDR_INCOMPAT	72	/* 64 */
#define QCOW2_HDR_COMPAT	80	/* 64 */
#define QCOW2_HDR_AUTOCLEAR	88	/* 64 */
#define QCOW2_HDR_REFCOUNT_ORDER 96	/* 32 */
#define QCOW2_HDR_LEN		100	/* 32: header length */
#define QCOW2_HDR_COMPRESSION	104	/* 8: compression type */

#define QCOW2_V2_HEADER_LEN	72
#define QCOW2_V3_HEADER_LEN	104
#define QCOW2_MIN_CLUSTER_BITS	9
#define QCOW2_MAX_CLUSTER_BITS	21

#define QCOW2_INCOMPAT_DIRTY	(1u << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1u << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1u << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1u << 3)
#define QCOW2_INCOMPAT_EXTENDED_L2 (1u << 4)
#define QCOW2_INCOMPAT_KNOWN	0x1fu

/* Header extensions: type, length, data padded to 8 bytes. */
#define QCOW2_EXT_END		0
#define QCOW2_EXT_DATA_FILE	0x44415441u

/* L1 and L2 entries. */
#define QCOW2_ENTRY_OFFSET_MASK	0x00fffffffffffe00ull
#define QCOW2_OFLAG_COPIED	(1ull << 63)	/* refcount is exactly 1 */
#define QCOW2_OFLAG_COMPRESSED	(1ull << 62)
#define QCOW2_OFLAG_ZERO	1ull
#define QCOW2_SUBCLUSTERS	32		/* extended L2 */

/* QEMU's own limit on the L1 table (QCOW_MAX_L1_SIZE). */
#define QCOW2_L1_MAX_BYTES	(32u * 1024 * 1024)

/*
 * A compressed cluster's L2 entry: the host offset in the low
 * (62 - (cluster_bits - 8)) bits, then the number of 512-byte sectors
 * after the first one it touches.
 */
static inline unsigned qcow2_csize_shift(unsigned cluster_bits)
{
	return 62 - (cluster_bits - 8);
}

#endif
