/*
 * The stash: byte runs parked until they can be placed.  Kept in memory up
 * to a budget, then in an unlinked temporary file in the temporary
 * directory, so it disappears on every exit path, signals included.
 */
#ifndef IMGPIPE_STASH_H
#define IMGPIPE_STASH_H

#include <stddef.h>
#include <stdint.h>

#define STASH_DEFAULT_BUDGET (32ull * 1024 * 1024)

struct stash {
	uint64_t budget;	/* bytes of memory before spilling */
	uint64_t mem_used;
	uint64_t mem_peak;
	const char *tmpdir;	/* NULL: $TMPDIR, else /tmp */
	int fd;			/* spill file, -1 until needed */
	uint64_t file_end;	/* append position in the spill file */
	uint64_t file_live;	/* bytes in the spill file still referenced */
	uint64_t file_peak;
	uint64_t nlive;
};

/* Where a stashed run lives: memory (ptr) or the spill file (off). */
struct stash_ref {
	unsigned char *ptr;
	uint64_t off;
	uint32_t len;
};

void stash_init(struct stash *st, uint64_t budget, const char *tmpdir);
/* Copies len bytes (at most 4 GiB - 1) into the stash. */
int stash_put(struct stash *st, const void *buf, size_t len,
    struct stash_ref *ref);
/* Copies the run back out to buf and releases it. */
int stash_take(struct stash *st, struct stash_ref *ref, void *buf);
/* Copies the run out to buf and keeps it. */
int stash_peek(struct stash *st, const struct stash_ref *ref, void *buf);
/* Releases a run without reading it. */
void stash_drop(struct stash *st, struct stash_ref *ref);
void stash_free(struct stash *st);

#endif
