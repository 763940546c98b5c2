/* imgsparse's jobs: zero blocks to holes, punching in place, and maps. */
#ifndef IMGPIPE_SPARSE_H
#define IMGPIPE_SPARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sink.h"

struct sparse_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *output;	/* NULL or "-": stdout */
	uint64_t block;		/* zero detection block, a multiple of 512 */
	bool progress;
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	bool json;		/* --map --json */
};

/* Copy raw input to output, all-zero blocks as holes (zeros to a pipe). */
int sparse_copy(const struct sparse_opts *o);
/* Punch holes in the all-zero blocks of a file; its bytes do not change. */
int sparse_in_place(const struct sparse_opts *o);
/* Print the data and zero extents of the raw input. */
int sparse_map(const struct sparse_opts *o);

/* A sink printing merged extents: "OFFSET LENGTH data|zero" or JSON. */
struct map_sink {
	struct sink base;
	FILE *out;
	bool json;
	bool have;		/* a run is being merged */
	bool run_zero;
	uint64_t run_off, run_len;
	uint64_t nprinted;
};

void map_sink_init(struct map_sink *ms, FILE *out, bool json);

#endif
