/*
 * QED's on-disk layout (QEMU docs/interop/qed_spec.txt, block/qed.h),
 * named once for the reader (qed.c) and a writer.  Every integer is
 * little-endian.
 *
 * A header of header_size clusters, an L1 table, L2 tables of
 * table_size clusters holding le64 host offsets, data clusters.
 */
#ifndef IMGPIPE_FMT_QED_H
#define IMGPIPE_FMT_QED_H

#define QED_MAGIC		"QED\0"
#define QED_MAGIC_LEN		4

/* Header fields: byte offsets. */
#define QED_HDR_MAGIC		0	/* 32 */
#define QED_HDR_CLUSTER_SIZE	4	/* 32: bytes, a power of two */
#define QED_HDR_TABLE_SIZE	8	/* 32: clusters per L1 or L2 table */
#define QED_HDR_HEADER_SIZE	12	/* 32: clusters */
#define QED_HDR_FEATURES	16	/* 64: QED_F_*, unknown bits fatal */
#define QED_HDR_COMPAT_FEATURES	24	/* 64: unknown bits ignored */
#define QED_HDR_AUTOCLEAR_FEATURES 32	/* 64: unknown bits cleared */
#define QED_HDR_L1_OFF		40	/* 64 */
#define QED_HDR_IMAGE_SIZE	48	/* 64: virtual size, bytes */
#define QED_HDR_BACKING_OFF	56	/* 32: name offset in the header */
#define QED_HDR_BACKING_LEN	60	/* 32 */
#define QED_HEADER_LEN		64

#define QED_MIN_CLUSTER		(4u * 1024)
#define QED_MAX_CLUSTER		(64u * 1024 * 1024)
#define QED_DEFAULT_CLUSTER	(64u * 1024)
#define QED_MIN_TABLE_SIZE	1
#define QED_MAX_TABLE_SIZE	16
#define QED_DEFAULT_TABLE_SIZE	4

#define QED_F_BACKING_FILE	0x1ull
#define QED_F_NEED_CHECK	0x2ull	/* not closed cleanly */
#define QED_F_BACKING_FORMAT_NO_PROBE 0x4ull
#define QED_KNOWN_FEATURES	(QED_F_BACKING_FILE | QED_F_NEED_CHECK | \
    QED_F_BACKING_FORMAT_NO_PROBE)

/* Table entries other than a host offset. */
#define QED_CLUSTER_FREE	0	/* unallocated */
#define QED_CLUSTER_ZERO	1	/* reads as zeros */
#define QED_ENTRY_LEN		8

#endif
