/*
 * A file output that leaves the page cache while the page cache is slow:
 * every write is timed (cache_gauge.h), and while the gauge says slow
 * the caller writes the next ones past it, O_DIRECT.  img2raw's writer
 * threads and its copy of a raw file share it.  Any thread may write.
 */
#ifndef IMGPIPE_DIRECT_OUT_H
#define IMGPIPE_DIRECT_OUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgpipe/cache_gauge.h"

/* Direct writes: offsets, lengths and buffers on page boundaries. */
#define DIRECT_ALIGN 4096u

struct direct_out {
	int fd;			/* the output, as the caller opened it */
	int direct_fd;		/* the same file opened O_DIRECT, or -1 */
	struct cache_gauge gauge;	/* when to write O_DIRECT */
	atomic_bool refused;	/* direct writes failed with EINVAL */
};

/*
 * For an output fd: nothing is measured, and every write goes through
 * the cache, unless fd is a regular file on a disk (not tmpfs, not
 * IMGPIPE_DIRECT=0).
 */
void direct_out_init(struct direct_out *d, int fd);
void direct_out_free(struct direct_out *d);
/* Whether the next writes should go past the cache. */
bool direct_out_past(struct direct_out *d);
/*
 * Write len bytes at off in full, timed: direct, the whole pages of it
 * past the cache (buf must be as far from a page boundary as off is) and
 * its ragged edges through it; else all through it.  0 or an errno.
 */
int direct_out_write(struct direct_out *d, const unsigned char *buf,
    size_t len, uint64_t off, bool direct);

#endif
