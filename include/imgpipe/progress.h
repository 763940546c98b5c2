/* Progress on stderr, like pv: bytes, rate, and ETA when the total is known. */
#ifndef IMGPIPE_PROGRESS_H
#define IMGPIPE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	bool enabled;
	uint64_t total;		/* 0 when unknown */
	uint64_t done;
	double start, last;	/* seconds, monotonic */
};

void progress_start(struct progress *p, bool enabled, uint64_t total);
void progress_add(struct progress *p, uint64_t n);
void progress_end(struct progress *p);

#endif
