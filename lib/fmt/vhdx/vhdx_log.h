/*
 * VHDX log replay, in memory and read-only (MS-VHDX 2.3): what the log's
 * active sequence writes, as an overlay over reads of the file.
 */
#ifndef IMGPIPE_FMT_VHDX_LOG_H
#define IMGPIPE_FMT_VHDX_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "imgpipe/format.h"

/* Bytes [off, end) of the file read, after replay, as data or zeros. */
struct vhdx_seg {
	uint64_t off, end;
	const unsigned char *data;	/* the sector's bytes at off, or NULL: zeros */
};

struct vhdx_overlay {
	struct vhdx_seg *segs;		/* sorted, disjoint */
	size_t nsegs;
	uint32_t nentries;		/* entries of the active sequence */
	uint64_t seq_first, seq_last;
	uint64_t flushed;		/* the head entry's FlushedFileOffset */
	uint64_t last;			/* and LastFileOffset */
};

/*
 * The descriptors the log may hold, at most: 8 MiB of bookkeeping (a
 * 1 MiB log, Hyper-V's and qemu's size, holds at most 32768).
 */
#define VHDX_LOG_DESC_MAX (256u * 1024)

/*
 * Find the active sequence of the log (log_len bytes at file offset
 * log_off, in memory: its data sectors are patched in place and the
 * overlay points into it) whose entries carry guid, check it, and build
 * the overlay.  The caller checks the head's FlushedFileOffset against
 * the input's size.  0, or -1 with the rejection recorded.
 */
int vhdx_log_replay(struct image *img, unsigned char *log, uint64_t log_len,
    uint64_t log_off, const unsigned char guid[16],
    struct vhdx_overlay *ov);
/* The first segment that meets file bytes [off, end), or NULL. */
const struct vhdx_seg *vhdx_overlay_find(const struct vhdx_overlay *ov,
    uint64_t off, uint64_t end);
/* Put what the overlay says over buf, the len file bytes at off. */
void vhdx_overlay_patch(const struct vhdx_overlay *ov, unsigned char *buf,
    uint64_t off, size_t len);
void vhdx_overlay_free(struct vhdx_overlay *ov);

#endif
