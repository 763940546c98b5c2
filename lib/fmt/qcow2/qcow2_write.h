/*
 * The qcow2 writer.  A plan records the allocated guest clusters in guest
 * order (with their compressed length, if any) and packs their data back
 * to back in one data region, the way qemu does.  From the plan, the
 * writer lays out the metadata either before the data (a forward stream:
 * header, refcount table, refcount blocks, L1, L2, data) or after it (a
 * seekable file: header, data, L2, L1, refcount table, refcount blocks;
 * the header is written last).  Refcounts are 16 bits (refcount_order 4).
 */
#ifndef IMGPIPE_FMT_QCOW2_WRITE_H
#define IMGPIPE_FMT_QCOW2_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qcow2w_layout {
	QCOW2W_META_LAST,	/* seekable output: data from cluster 1 */
	QCOW2W_META_FIRST,	/* forward stream: metadata, then data */
};

/* One allocated guest cluster. */
struct qcow2w_cluster {
	uint64_t guest;		/* guest cluster index */
	uint32_t clen;		/* deflate length, or 0: stored plain */
};

/* Where the next piece of data goes inside the data region. */
struct qcow2w_packer {
	uint64_t end;		/* end of the last compressed piece */
	uint64_t next;		/* first free cluster (a cluster multiple) */
	uint32_t users;		/* compressed pieces in end's cluster */
	bool fill_back;		/* may fill space before plain clusters */
};

struct qcow2w_plan {
	unsigned cluster_bits;
	uint64_t cluster_size;
	int version;		/* 2 or 3 */
	struct qcow2w_cluster *cl;
	size_t ncl, capcl;
	struct qcow2w_packer pack;	/* as clusters were added */
	/* Filled by qcow2w_plan_finish: */
	enum qcow2w_layout layout;
	uint64_t virtual_size;
	uint64_t l1_size;	/* entries */
	uint64_t l1_clusters, n_l2, n_rb, rt_clusters, data_clusters;
	uint64_t total_clusters;
	uint64_t header_off, rt_off, rb_off, l1_off, l2_off, data_off;
	uint64_t file_size;	/* bytes of the finished image */
	uint16_t *refcount;	/* per host cluster */
};

/* The output: positioned writes, or a forward stream padded with zeros. */
struct qcow2w_out {
	int fd;
	const char *name;
	bool seekable;
	uint64_t pos;		/* streams: bytes written */
};

/*
 * fill_back: compressed data may fill the rest of a cluster that lies
 * before plain clusters already placed (seekable output only; a stream
 * must place data in file order).
 */
void qcow2w_plan_init(struct qcow2w_plan *p, unsigned cluster_bits,
    int version, bool fill_back);
void qcow2w_plan_free(struct qcow2w_plan *p);
/*
 * Append guest cluster `guest` (strictly above the last one added) with
 * compressed length clen (0: plain).  Sets *rel to its offset within the
 * data region.
 */
int qcow2w_plan_add(struct qcow2w_plan *p, uint64_t guest, uint32_t clen,
    uint64_t *rel);
/* Data region offset of the next piece, for a packer that replays the plan. */
uint64_t qcow2w_pack(struct qcow2w_packer *pk, uint64_t cluster_size,
    uint32_t clen);
/* Fix the virtual size and the layout; compute every offset and refcount. */
int qcow2w_plan_finish(struct qcow2w_plan *p, uint64_t virtual_size,
    enum qcow2w_layout layout);
/* Write header and all metadata (META_FIRST: forward, before the data). */
int qcow2w_write_metadata(const struct qcow2w_plan *p, struct qcow2w_out *o);

/* Output to fd: seekable when a regular file at offset 0, not appending. */
void qcow2w_out_init(struct qcow2w_out *o, int fd, const char *name);
/* Write at off; a stream pads with zeros up to off (never goes back). */
int qcow2w_out_write(struct qcow2w_out *o, const void *buf, size_t len,
    uint64_t off);
/* Pad a stream with zeros or set a file's length to size. */
int qcow2w_out_end(struct qcow2w_out *o, uint64_t size);

#endif
