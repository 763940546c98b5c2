/* raw2qcow2's job (lib/jobs/raw2qcow2.c): a raw disk to a qcow2 image. */
#ifndef IMGPIPE_RAW2QCOW2_H
#define IMGPIPE_RAW2QCOW2_H

#include <stdbool.h>
#include <stdint.h>

/* Cluster sizes the writer takes (qemu's range less 512 B-2 KiB). */
#define QCOW2W_CLUSTER_BITS_MIN 12	/* 4 KiB */
#define QCOW2W_CLUSTER_BITS_MAX 21	/* 2 MiB */
#define QCOW2W_CLUSTER_BITS_DEFAULT 16

struct raw2qcow2_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *output;	/* NULL or "-": stdout */
	unsigned cluster_bits;
	int version;		/* 2 (compat 0.10) or 3 (compat 1.1) */
	bool compress;
	int level;		/* zlib level, -1: default */
	int threads;		/* compression threads, >= 1 */
	uint64_t size;		/* virtual size when size_given */
	bool size_given;
	bool progress;
	uint64_t mem;		/* stash budget, 0: default */
	const char *tmpdir;
	bool stats;		/* report layout and temporary space on stderr */
};

int raw_to_qcow2(const struct raw2qcow2_opts *o);

#endif
