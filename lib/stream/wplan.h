/* The writer core's plan log (lib/stream/wplan.c); formats walk it. */
#ifndef IMGPIPE_STREAM_WPLAN_H
#define IMGPIPE_STREAM_WPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgpipe/stash.h"

struct wplan {
	struct stash *st;
	bool lengths;		/* records carry encoded lengths */
	unsigned char *chunk;	/* records not yet parked */
	size_t used;
	struct stash_ref *refs;	/* parked chunks, in order */
	size_t nrefs, caprefs;
	uint64_t next;		/* index after the last grain added */
	uint64_t count;		/* grains added */
	uint64_t run_gap, run_count;	/* the run being extended */
};

int wplan_init(struct wplan *p, struct stash *st, bool lengths);
void wplan_free(struct wplan *p);
/* Grain index (above the last one) holds data; elen kept with lengths. */
int wplan_add(struct wplan *p, uint64_t index, uint32_t elen);
/* Every grain has been added. */
int wplan_close(struct wplan *p);

#endif
