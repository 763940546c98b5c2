/*
 * Shared by the files of the VMDK reader, not part of any interface:
 *	vmdk_read.c	probe, open (header, descriptor, footer), read, close
 *	vmdk_io.c	input access: read-ahead window, a pipe's retention
 *	vmdk_tables.c	extents read by their GD and GTs (file and pipe)
 *	vmdk_markers.c	streams with the GD at the end, read by markers
 *	vmdk_extents.c	descriptor files and their sibling extents
 *	vmdk_batch.c	compressed grains inflated in batches, every core
 */
#ifndef IMGPIPE_FMT_VMDK_INT_H
#define IMGPIPE_FMT_VMDK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "fmt/fmt.h"
#include "fmt/vmdk/vmdk.h"
#include "imgpipe/inflate_pool.h"

#define VMDK_PEEK (4u << 10) 		/* walking: a marker and its page */
#define VMDK_WINDOW (1u << 20)		/* read-ahead for metadata, grains */
#define VMDK_RUN_MAX (8u << 20)		/* largest coalesced grain read */

/* Where metadata lies in the file, for the overlap checks. */
enum vmdk_region_kind {
	VMDK_REG_HEADER, VMDK_REG_DESC, VMDK_REG_GD, VMDK_REG_RGD,
	VMDK_REG_GT, VMDK_REG_RGT,
};

struct vmdk_region {
	uint64_t start, end;		/* bytes */
	enum vmdk_region_kind kind;
	uint64_t index;			/* GD entry of a GT or RGT */
};

/* A stream read by markers: a grain met, and a GT met. */
struct vmdk_seen_grain {
	uint64_t sector;		/* of its marker */
	uint32_t gi;
	bool claimed;			/* a GT names it */
};

struct vmdk_seen_gt {
	uint64_t sector;		/* of its first entry */
	uint64_t group;			/* its GD entry, or UINT64_MAX if empty */
};

/* One hosted sparse extent. */
struct vmdk {
	struct vmdk_header h;
	uint64_t grain_bytes;
	uint64_t ngrains;		/* grains in the capacity */
	uint64_t ngts;			/* GD entries */
	uint64_t vbase;			/* where the extent starts on the disk */
	size_t cmax;			/* largest compressed grain accepted */
	bool use_rgd;			/* the redundant GD and GTs are read */
	/* the tables, once loaded (vmdk_tables.c) */
	uint32_t *gd, *rgd;		/* ngts entries each; rgd when use_rgd */
	uint32_t *slot;			/* per GD entry: its GT's number, or none */
	uint64_t *gt_sum;		/* per GT present: XXH3 of the first copy */
	unsigned char *filled;		/* per GT present: GT, RGT read */
	uint64_t npresent;
	/* allocated grains: host << 32 | index (file order); from a file,
	 * index << 32 | host (virtual order) once the checks are done */
	uint64_t *order;
	uint64_t nalloc;
	size_t capalloc;		/* order's room, charged as it grows */
	uint64_t tables_charged;	/* to the budget: gd, rgd, slot, .. */
	struct vmdk_region *meta;	/* sorted by start */
	size_t nmeta, capmeta;
	/* a stream read by markers (vmdk_markers.c) */
	struct vmdk_seen_grain *seen;
	size_t nseen, capseen, nclaimed;
	struct vmdk_seen_gt *seen_gts;
	size_t nseen_gts, capseen_gts;
	/* buffers */
	unsigned char *grain;		/* one inflated grain */
	unsigned char *run;		/* coalesced uncompressed grains */
	unsigned char *win;		/* seekable read-ahead window */
	uint64_t win_off;
	size_t win_len, win_cap;
	unsigned char *peek;		/* walking a file: markers' pages */
	uint64_t peek_off;
	size_t peek_len;
	z_stream zs;
	bool zs_ready;
	/* a pipe */
	bool end_known;			/* a pipe read to its end: */
	uint64_t end;			/* its length */
	/* markers (vmdk_markers.c): what the disk is known to hold */
	uint64_t stream_next;		/* end of the highest grain */
	uint64_t stream_last;		/* start of the highest grain */
	uint64_t stream_promised;	/* complete below this */
	bool stream_unordered;		/* a grain came below a higher one */
	struct vmdk_files *files;	/* a descriptor file: its extents */
};

/*
 * Does GT entry e name a grain?  0 does not; 1 is a zero grain only when
 * the header's flags say so (VMDK_FLAG_ZERO_GRAIN, as the spec and qemu
 * have it): otherwise it names sector 1, inside the header or the
 * descriptor, and the overlap checks refuse it (qemu reads the
 * descriptor's bytes as the grain's data).
 */
static inline bool vmdk_gte_grain(const struct vmdk *v, uint32_t e)
{
	return e != VMDK_GTE_UNALLOCATED && !(e == VMDK_GTE_ZERO &&
	    (v->h.flags & VMDK_FLAG_ZERO_GRAIN));
}

/* vmdk_read.c */
bool vmdk_has_markers(const struct vmdk *v);
int vmdk_check_footer(struct image *img, struct vmdk *v,
    const unsigned char *footer);
int64_t vmdk_inflate(struct image *img, struct vmdk *v,
    const unsigned char *in, size_t len, uint64_t where);
int vmdk_emit_grain(struct image *img, struct vmdk *v, struct emitter *em,
    uint64_t gi, size_t len);
int vmdk_marker_grain(struct image *img, struct vmdk *v, uint64_t lba,
    uint32_t csize, uint64_t where, uint64_t *gi);
/* Open and read one sparse extent (img->src is the extent's file). */
int vmdk_open_sparse(struct image *img, struct vmdk *v);
int vmdk_read_sparse(struct image *img, struct vmdk *v, struct emitter *em);
void vmdk_free(struct image *img, struct vmdk *v);

/* vmdk_io.c: the input, the same way from a file and from a pipe */
bool vmdk_input_size(const struct image *img, const struct vmdk *v,
    uint64_t *size);
int vmdk_past_end(struct image *img, const char *what, uint64_t off);
int vmdk_meta_read(struct image *img, struct vmdk *v, void *buf, size_t len,
    uint64_t off, const char *what);
/* The same, a read past the end named as what at at (a grain's start). */
int vmdk_read_part(struct image *img, struct vmdk *v, void *buf, size_t len,
    uint64_t off, const char *what, uint64_t at);
const unsigned char *vmdk_window(struct image *img, struct vmdk *v,
    uint64_t off, size_t len, const char *what);
int vmdk_pipe_advance(struct image *img, struct vmdk *v, uint64_t off,
    const char *what);
int vmdk_pipe_keep_all(struct image *img, struct vmdk *v);
int vmdk_pipe_retain(struct image *img);
void vmdk_pipe_tables_read(struct image *img);
int vmdk_pipe_forget(struct image *img);
void vmdk_pipe_release(struct image *img, uint64_t off, uint64_t len);
int vmdk_drain(struct image *img, struct vmdk *v);
/* Emitting at the extent's place on the disk. */
int vmdk_emit_data(struct vmdk *v, struct emitter *em, uint64_t off,
    const void *buf, size_t len);
int vmdk_emit_upto(struct vmdk *v, struct emitter *em, uint64_t off);

/* vmdk_tables.c */
int vmdk_add_region(struct vmdk *v, uint64_t start, uint64_t len,
    enum vmdk_region_kind kind, uint64_t index);
void vmdk_region_name(const struct vmdk_region *r, char *buf, size_t len);
int vmdk_check_overhead(struct image *img, struct vmdk *v);
int vmdk_read_tables(struct image *img, struct vmdk *v, struct emitter *em);
void vmdk_free_tables(struct image *img, struct vmdk *v);

/* vmdk_markers.c */
int vmdk_read_markers(struct image *img, struct vmdk *v, struct emitter *em);

/* vmdk_batch.c: grains queued, inflated together, emitted in order */
struct vmdk_queued;
struct vmdk_batch {
	bool on;			/* a conversion from a file */
	struct inflate_pool pool;
	struct vmdk_queued *q;		/* per item of the pool */
};
int vmdk_batch_start(struct image *img, struct vmdk *v, struct vmdk_batch *b);
/* Room for len compressed bytes (the batch emitted first if full). */
unsigned char *vmdk_batch_room(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_batch *b, size_t len);
/* Queue grain gi, its csize bytes (marker at where) in the room of len;
 * upto: the disk below it is emitted as complete before the grain (0: no
 * promise). */
void vmdk_batch_push(struct vmdk_batch *b, size_t len, uint32_t csize,
    uint64_t gi, uint64_t where, uint64_t upto);
int vmdk_batch_flush(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_batch *b);
/* A later step failed: the grains queued before it first; returns -1. */
int vmdk_batch_fail(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_batch *b);
void vmdk_batch_end(struct vmdk_batch *b);

/* vmdk_extents.c */
struct vmdk_desc;
int vmdk_reject_extents(struct image *img, const struct vmdk_desc *d,
    const char *what);
int vmdk_reject_parent(struct image *img, const struct vmdk_desc *d);
int vmdk_open_descriptor_file(struct image *img);
int vmdk_read_files(struct image *img, struct vmdk_files *f,
    struct emitter *em);
void vmdk_free_files(struct image *img, struct vmdk_files *f);

#endif
