/*
 * The parking store ("stash"): bytes that arrived before they can be
 * placed wait here -- input read before the table that places it, extents
 * ahead of an in-order sink's cursor, a writer's encoded grains.  One store
 * per job, one budget (--mem) for everything it holds: the payload and the
 * bookkeeping, its own (a record per piece) and its callers' (queues,
 * indexes: stash_charge).  Beyond the budget the oldest pieces move to an
 * unlinked temporary file in the temporary directory, which disappears on
 * every exit path, signals included.  The file is cut in slots of
 * STASH_PIECE bytes; space is given back (FALLOC_FL_PUNCH_HOLE) and slots
 * are reused as data leaves, so the disk space the file takes stays within
 * the bytes parked in it plus the slack imgpipe(7) states.
 *
 * A run of bytes is kept as a chain of pieces of at most STASH_PIECE bytes
 * and can grow at either end (stash_append, stash_prepend) or shrink at
 * either end, so a caller can keep one growing run where data arrives in
 * adjacent pieces.
 *
 * Thread-safe: every call takes the store's mutex.  One ref must not be
 * used by two threads at once.  A ref is a value: after a call that
 * changes it, only the changed copy is valid.
 */
#ifndef IMGPIPE_STASH_H
#define IMGPIPE_STASH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STASH_DEFAULT_BUDGET (32ull * 1024 * 1024)
/* A smaller budget is taken as this: room for a few thousand records. */
#define STASH_BUDGET_MIN (256u * 1024)
/* Largest piece, in memory and in a slot of the spill file. */
#define STASH_PIECE (64u * 1024)
/* The spill file's allocation unit: space is punched and counted in it. */
#define STASH_FILE_BLOCK 4096u
/* Pieces up to this size share slots when they move to the file. */
#define STASH_PACK_MAX (16u * 1024)
/* What the spill file may take beyond the bytes parked in it. */
#define STASH_FILE_SLACK (1024u * 1024)
/* What a malloc'd block costs beyond its size (counted in the budget). */
#define STASH_MALLOC_OVERHEAD 16u

struct stash_chunk;
struct stash_slot;

/* A parked run of bytes; all zero, or after stash_take/drop: empty. */
struct stash_ref {
	struct stash_chunk *head, *tail;
	uint64_t len;		/* bytes in the run */
};

struct stash {
	pthread_mutex_t lock;
	uint64_t budget;	/* bytes of memory, everything counted */
	uint64_t mem_used;	/* payload buffers + bookkeeping */
	/*
	 * Never above the budget: room is kept for what moving a piece to
	 * the file adds (the slot table doubling, 40 bytes per 64 KiB of
	 * file, and the pack buffer) before the piece's memory is freed.
	 */
	uint64_t mem_peak;
	uint64_t bookkeeping;	/* of mem_used: records and charges */
	uint64_t charged;	/* of bookkeeping: the callers' charges */
	uint64_t parked;	/* payload bytes held, memory and file */
	uint64_t parked_peak;
	uint64_t file_parked;	/* payload bytes in the spill file */
	uint64_t file_used;	/* spill file blocks holding them, in bytes */
	uint64_t file_peak;	/* peak of file_used */
	uint64_t file_excess_peak;	/* peak of file_used - file_parked */
	/* Measured (st_blocks) when IMGPIPE_STASH_STATS is set: */
	uint64_t file_disk_peak;
	uint64_t file_disk_excess_peak;
	uint64_t npieces;	/* pieces held */
	const char *tmpdir;	/* NULL: $TMPDIR, else /tmp */
	int fd;			/* spill file, -1 until needed */
	bool punch;		/* the file system punches holes */
	bool stats;		/* IMGPIPE_STASH_STATS: measure, report */
	uint32_t nslots;	/* slots of the spill file in use or free */
	struct stash_slot *slots;	/* per slot: bytes held, per block */
	uint32_t *free_slots;	/* a stack */
	size_t nfree, capslots;	/* both arrays have capslots entries */
	/* Small pieces are packed into one slot, written when it is full. */
	uint32_t pack_slot;	/* UINT32_MAX: none open */
	uint32_t pack_used, pack_written;
	unsigned char *pack_buf;	/* [pack_written, pack_used) of it */
	struct stash_chunk *oldest, *newest;	/* pieces in memory, by use */
	struct stash_chunk *file_first, *file_last;	/* pieces in the file */
};

void stash_init(struct stash *st, uint64_t budget, const char *tmpdir);
/*
 * Park len bytes (any length) as a new run.  0, or -1 with the error
 * recorded: EXIT_IO (temporary file), EXIT_REJECT (bookkeeping over the
 * budget).  On failure *ref is empty.
 */
int stash_put(struct stash *st, const void *buf, size_t len,
    struct stash_ref *ref);
/* Grow a run (possibly empty) by len bytes after / before its bytes. */
int stash_append(struct stash *st, struct stash_ref *ref, const void *buf,
    size_t len);
int stash_prepend(struct stash *st, struct stash_ref *ref, const void *buf,
    size_t len);
/*
 * Copy the whole run to buf and release it.  The ref holds no bytes after,
 * but its len still says how many were taken (stash_drop of it is a no-op).
 */
int stash_take(struct stash *st, struct stash_ref *ref, void *buf);
/* Copy the first len bytes of the run to buf and release them. */
int stash_take_head(struct stash *st, struct stash_ref *ref, void *buf,
    size_t len);
/* Copy the whole run to buf and keep it. */
int stash_peek(struct stash *st, const struct stash_ref *ref, void *buf);
/* Copy bytes [off, off + len) of the run to buf and keep them. */
int stash_read(struct stash *st, const struct stash_ref *ref, uint64_t off,
    void *buf, size_t len);
/* Release the first / last len bytes of a run without reading them. */
void stash_drop_head(struct stash *st, struct stash_ref *ref, uint64_t len);
void stash_drop_tail(struct stash *st, struct stash_ref *ref, uint64_t len);
/* Release a run without reading it; an empty ref is fine. */
void stash_drop(struct stash *st, struct stash_ref *ref);
/*
 * Count delta bytes of a caller's bookkeeping (an array grown, an entry
 * added; negative when given back) against the budget.  Payload moves to
 * the spill file to make room; when bookkeeping alone would pass the
 * budget, fails with EXIT_REJECT ("... raise --mem") and counts nothing.
 */
int stash_charge(struct stash *st, int64_t delta);
/*
 * grow_array() (imgpipe/grow.h) with the growth charged: room for element
 * n of *arrp.  0, or -1 with the error recorded.
 */
int stash_grow_array(struct stash *st, void *arrp, size_t n, size_t *cap,
    size_t elem, size_t first);
/*
 * With IMGPIPE_STASH_STATS set in the environment, stash_free() prints the
 * peaks on stderr, one line: "PROG: parking store: budget=... mem_peak=...
 * parked_peak=... file_peak=... file_disk_peak=... file_excess_peak=...
 * file_disk_excess_peak=... slack=..." (bytes).
 */
void stash_free(struct stash *st);

#endif
