/* Zero-copy img2raw of a plain raw file (lib/io/zcopy.c). */
#ifndef IMGPIPE_ZCOPY_H
#define IMGPIPE_ZCOPY_H

struct image;

/*
 * Copy the opened raw image's disk to out (an empty regular file at offset
 * 0, or a pipe) in the kernel: copy_file_range or splice.  Returns 0 when
 * done, -1 on error (recorded), 1 when this pair cannot be done so and
 * nothing was written (take the ordinary path).
 */
int zcopy_raw(struct image *img, int out, const char *out_name);

#endif
