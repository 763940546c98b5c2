/* What every program that reads an image does around the reading. */
#ifndef IMGPIPE_JOB_H
#define IMGPIPE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"

struct image_job {
	const char *input;	/* NULL or "-": stdin */
	const char *format;	/* -f, or NULL to probe */
	bool plain;		/* raw bytes as they are: no decoding, no VHD
				 * footer stripped (imgsparse) */
	bool progress;		/* -p */
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	uint64_t mem;		/* stash budget; 0: STASH_DEFAULT_BUDGET */
	const char *tmpdir;
	bool extents;		/* --extents: see source.sibling_extents */
	int threads;		/* -j: inflating threads; 0: every core */
};

/*
 * Open the input, its stash and the image, run fn on them, then close
 * everything on every path.  Returns what fn returns, or -1 (error
 * recorded) when the input or the image cannot be opened.
 */
int image_job_run(const struct image_job *j,
    int (*fn)(struct image *img, struct stash *st, void *arg), void *arg);

#endif
