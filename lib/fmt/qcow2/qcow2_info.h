/* What imginfo prints of a qcow2, in qemu-img info's keys (qcow2_info.c). */
#ifndef IMGPIPE_FMT_QCOW2_INFO_H
#define IMGPIPE_FMT_QCOW2_INFO_H

#include "imgpipe/format.h"

/*
 * Facts from the header h and cluster 0 (c0, cs bytes): format-specific
 * data, the backing format, encryption, and the internal snapshots when
 * the table can be read without moving a pipe (a file, or in the head).
 * Records no finding: the reader judges the image, this only describes.
 */
void qcow2_info(struct image *img, const unsigned char *h,
    const unsigned char *c0, uint64_t cs);

#endif
