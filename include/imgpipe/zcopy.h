/* Zero-copy img2raw of a plain raw file (lib/io/zcopy.c). */
#ifndef IMGPIPE_ZCOPY_H
#define IMGPIPE_ZCOPY_H

#include <stdint.h>

struct image;

/*
 * Block sharing between the input and an output file, decided at the
 * first run: none, FICLONERANGE, or copy_file_range (a file system that
 * copies on the server or shares blocks itself: NFS, SMB, Ceph).
 */
enum zclone_mode { ZCLONE_UNKNOWN, ZCLONE_NONE, ZCLONE_FICLONE, ZCLONE_COPY };
struct zclone {
	enum zclone_mode mode;
	uint64_t block;		/* the output file system's block size */
};

/*
 * Copy the opened raw image's disk to out (an empty regular file at offset
 * 0, or a pipe), its data runs whole: copy_file_range, our own pread and
 * pwrite, or splice into a pipe (lib/io/zcopy.c).  Returns 0 when
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

/*
 * Input bytes [in_off, in_off + len) of the regular file in, to out at
 * off, in the kernel where the two can share blocks: the whole blocks
 * of the run when in_off and off agree modulo the block size.  Sets
 * [*from, *to) to the output range done (empty: nothing, the caller
 * copies it); -1 on error (recorded, naming out_name).
 */
int zclone_range(struct zclone *z, int in, uint64_t in_off, uint64_t len,
    int out, uint64_t off, uint64_t *from, uint64_t *to,
    const char *out_name);

#endif
