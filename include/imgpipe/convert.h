/* img2raw's job: any image to its raw virtual disk. */
#ifndef IMGPIPE_CONVERT_H
#define IMGPIPE_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

struct convert_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *output;	/* NULL or "-": stdout */
	const char *format;	/* -f, or NULL to probe */
	bool progress;
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	uint64_t mem;		/* stash budget */
	const char *tmpdir;
	bool extents;		/* --extents */
	int threads;		/* -j, or 0: every core */
};

int convert_to_raw(const struct convert_opts *o);
/* Print the readable formats, one per line. */
void list_formats(void);

#endif
