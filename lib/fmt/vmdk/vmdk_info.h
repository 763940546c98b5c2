/* What imginfo prints of a VMDK, in qemu-img info's keys (vmdk_info.c). */
#ifndef IMGPIPE_FMT_VMDK_INFO_H
#define IMGPIPE_FMT_VMDK_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgpipe/format.h"

/* A hosted sparse extent: the file itself (qemu lists it as the one extent). */
struct vmdk_info_sparse {
	uint64_t capacity_bytes;
	uint64_t grain_bytes;
	bool compressed;
};

/*
 * cid, parent-cid, create-type and extents[] from a descriptor's text
 * (desclen bytes, NUL-terminated or not); sparse: the hosted extent whose
 * embedded descriptor it is, or NULL for a descriptor file (whose extents
 * are the lines it lists).
 */
void vmdk_info(struct image *img, const void *desc, size_t desclen,
    const struct vmdk_info_sparse *sparse);

#endif
