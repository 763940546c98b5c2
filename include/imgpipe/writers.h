/*
 * The output formats (lib/fmt/FORMAT/FORMAT_write.c) and their options,
 * which each program fills from its command line.
 */
#ifndef IMGPIPE_WRITERS_H
#define IMGPIPE_WRITERS_H

#include <stdbool.h>
#include <stdint.h>

#include "writer.h"

/* Cluster sizes the qcow2 writer takes (qemu's range less 512 B-2 KiB). */
#define QCOW2W_CLUSTER_BITS_MIN 12	/* 4 KiB */
#define QCOW2W_CLUSTER_BITS_MAX 21	/* 2 MiB */
#define QCOW2W_CLUSTER_BITS_DEFAULT 16

struct qcow2_wopts {
	unsigned cluster_bits;
	int version;		/* 2 (compat 0.10) or 3 (compat 1.1) */
	bool compress;		/* deflate clusters, as qemu-img -c */
	int level;		/* libdeflate level 0..12, -1: the default */
};

#define QCOW2W_LEVEL_DEFAULT 1	/* the fastest no larger than qemu's */

extern const struct writer writer_qcow2;

/* VMDK: streamOptimized (the default) or monolithicSparse. */
struct vmdk_wopts {
	bool sparse;			/* monolithicSparse */
	uint32_t grain_sectors;		/* 128: 64 KiB */
	int level;			/* deflate level for streams, 1..12 */
	const char *adapter_type;	/* ide, buslogic, lsilogic, legacyESX */
	const char *hw_version;		/* ddb.virtualHWVersion */
	const char *tools_version;	/* ddb.toolsVersion */
	const char *extent_name;	/* the file the descriptor names */
};

extern const struct writer writer_vmdk;

/* VHD: fixed (the default) or dynamic; --azure is fixed, 1 MiB-aligned. */
struct vhd_wopts {
	bool dynamic;
	bool azure;			/* size rounded up to a MiB multiple */
	uint32_t block_size;		/* dynamic: 512K to 2M, 0: 2M */
	const unsigned char *uuid;	/* 16 bytes, or NULL: derived */
};

extern const struct writer writer_vhd;

/* VHDX: dynamic (the default) or fixed. */
struct vhdx_wopts {
	bool fixed;
	uint32_t block_size;		/* 1 MiB to 256 MiB, a power of two */
	uint32_t logical_sector;	/* 512 or 4096 */
	const unsigned char *uuid;	/* the disk's id (page 83), or NULL */
};

extern const struct writer writer_vhdx;

/* VDI: dynamic (the default) or static. */
struct vdi_wopts {
	bool fixed;
	const unsigned char *uuid;	/* the image's creation UUID, or NULL */
};

extern const struct writer writer_vdi;

/* Parallels/ploop version 2 ("WithouFreSpacExt"), 1 MiB clusters. */
extern const struct writer writer_ploop;

#endif
