/* Zero-copy img2raw of a plain raw file (lib/io/zcopy.c). */
#ifndef IMGPIPE_ZCOPY_H
#define IMGPIPE_ZCOPY_H

#include <stdint.h>

struct image;

/*
 * Copy the opened raw image's disk to out (an empty regular file at offset
 * 0, or a pipe) in the kernel: copy_file_range or splice.  Returns 0 when
 * done, -1 on error (recorded), 1 when this pair cannot be done so and
 * nothing was written (take the ordinary path).
 */
int zcopy_raw(struct image *img, int out, const char *out_name);
/*
 * The same, the disk placed at `at` on: out is a regular file at offset 0
 * that holds nothing from at on (its data runs are copied there, holes
 * left, the length not set), or a pipe that has had `at` bytes (the disk
 * follows, to the input's end).  *moved: the data bytes copied.
 */
int zcopy_raw_at(struct image *img, int out, uint64_t at,
    const char *out_name, uint64_t *moved);

#endif
