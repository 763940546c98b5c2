/*
 * The qcow2 writer (docs/interop/qcow2.txt), on the writer interface.
 *
 * Data clusters are packed back to back in one data region, the way qemu
 * does: a plain cluster takes the next free cluster; a compressed one is
 * packed byte by byte after the previous compressed piece (qcow2w_pack).
 * The metadata is laid out before the data for a stream (header, refcount
 * table, refcount blocks, L1, L2, data) and after it for a file (header,
 * data, L2, L1, refcount table, refcount blocks; the header last).
 * Refcounts are 16 bits (refcount_order 4).
 *
 * Nothing grows with the data: every table is generated from the plan,
 * one cluster at a time, in the order it is written.  Refcounts come from
 * a replay of the packer (struct refgen): clusters past the open
 * compressed cluster are plain, so its state is three numbers.
 */
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

#include "imgpipe/bytes.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "fmt/qcow2/qcow2.h"

#define REFCOUNT_MAX 0xffff

/* Where the next piece of data goes inside the data region. */
struct packer {
	uint64_t end;		/* end of the last compressed piece */
	uint64_t next;		/* first free cluster (a cluster multiple) */
	uint32_t users;		/* compressed pieces in end's cluster */
	bool fill_back;		/* may fill space before plain clusters */
};

struct qcow2w {
	const struct qcow2_wopts *o;
	unsigned cluster_bits;
	uint64_t cs;
	bool meta_first;	/* a stream: metadata before the data */
	struct packer pack;	/* as grains are put */
	unsigned char *buf;	/* one cluster */
	/* the layout, from the plan */
	uint64_t l1_size;	/* entries */
	uint64_t l1_clusters, n_l2, n_rb, rt_clusters, data_clusters;
	uint64_t total_clusters;
	uint64_t rt_off, rb_off, l1_off, l2_off, data_off;
	uint64_t data_bytes;	/* of the data region, up to its last byte */
	uint64_t file_size;
};

static uint64_t div_round_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

/*
 * Plain clusters take the next free cluster.  Compressed data is packed
 * byte by byte after the previous compressed piece, as qemu's
 * qcow2_alloc_bytes() does: it fills the rest of that piece's cluster
 * (with fill_back, even when plain clusters were placed after it) and
 * spills into the next cluster only when that one is free and adjacent;
 * otherwise it starts on the next free cluster.  Every host cluster a
 * piece touches counts it once in its refcount, which must stay below 2^16.
 */
static uint64_t pack(struct packer *pk, uint64_t cs, uint32_t clen)
{
	uint64_t off = pk->end, room = (cs - off % cs) % cs;

	if (clen == 0) {
		off = pk->next;
		pk->next += cs;
		return off;
	}
	if (room == 0 || pk->users >= REFCOUNT_MAX ||
	    ((clen > room || !pk->fill_back) && off + room != pk->next)) {
		off = pk->next;	/* a fresh cluster */
		pk->users = 0;
	}
	pk->end = off + clen;
	if ((pk->end - 1) / cs != off / cs)
		pk->users = 1;	/* end's cluster is new: only this piece */
	else
		pk->users++;
	if (div_round_up(pk->end, cs) * cs > pk->next)
		pk->next = div_round_up(pk->end, cs) * cs;
	return off;
}

/* Bytes of the data region: whole sectors after a final compressed piece. */
static uint64_t packed_bytes(const struct packer *pk, uint64_t cs)
{
	if (pk->next > 0 && div_round_up(pk->end, cs) * cs == pk->next)
		return div_round_up(pk->end, 512) * 512;
	return pk->next;
}

static void packer_start(const struct qcow2w *q, struct packer *pk)
{
	memset(pk, 0, sizeof *pk);
	pk->fill_back = !q->meta_first;	/* positioned writes can go back */
}

/* ---- the plan walked: L2 tables, data clusters, refcounts ---- */

static uint64_t l2_group(const struct qcow2w *q, uint64_t index)
{
	return index >> (q->cluster_bits - 3);
}

/* Count the L2 tables and size the data region from the plan. */
static int count_from_plan(struct wimage *w, struct qcow2w *q)
{
	struct wplan_iter it;
	struct packer pk;
	uint64_t index, group = UINT64_MAX;
	uint32_t elen;
	int r;

	packer_start(q, &pk);
	q->n_l2 = 0;
	if (wplan_first(w, &it) < 0)
		return -1;
	while ((r = wplan_next(&it, &index, &elen)) == 1) {
		if (l2_group(q, index) != group) {
			group = l2_group(q, index);
			q->n_l2++;
		}
		pack(&pk, q->cs, elen);
	}
	wplan_done(&it);
	q->data_clusters = pk.next / q->cs;
	q->data_bytes = packed_bytes(&pk, q->cs);
	return r;
}

/* Refcount blocks and table must also count themselves: the fixpoint. */
static void size_refcount_structures(struct qcow2w *q, uint64_t others)
{
	uint64_t rb_entries = q->cs / 2;
	uint64_t rb = 0, rt = 0, nrb, nrt;

	for (;;) {
		nrb = div_round_up(others + rb + rt, rb_entries);
		nrt = div_round_up(nrb * 8, q->cs);
		if (nrb == rb && nrt == rt)
			break;
		rb = nrb;
		rt = nrt;
	}
	q->n_rb = rb;
	q->rt_clusters = rt;
}

static void place(struct qcow2w *q)
{
	uint64_t cs = q->cs;

	if (!q->meta_first) {
		q->data_off = cs;
		q->l2_off = q->data_off + q->data_clusters * cs;
		q->l1_off = q->l2_off + q->n_l2 * cs;
		q->rt_off = q->l1_off + q->l1_clusters * cs;
		q->rb_off = q->rt_off + q->rt_clusters * cs;
		q->file_size = q->rb_off + q->n_rb * cs;
	} else {
		q->rt_off = cs;
		q->rb_off = q->rt_off + q->rt_clusters * cs;
		q->l1_off = q->rb_off + q->n_rb * cs;
		q->l2_off = q->l1_off + q->l1_clusters * cs;
		q->data_off = q->l2_off + q->n_l2 * cs;
		/* whole sectors: readers fetch compressed data by sector */
		q->file_size = q->data_off + q->data_bytes;
	}
}

static int lay_out(struct wimage *w, struct qcow2w *q)
{
	uint64_t l2_span = q->cs << (q->cluster_bits - 3);

	if (count_from_plan(w, q) < 0)
		return -1;
	q->l1_size = div_round_up(w->virtual_size, l2_span);
	q->l1_clusters = div_round_up(q->l1_size * 8, q->cs);
	size_refcount_structures(q,
	    1 + q->l1_clusters + q->n_l2 + q->data_clusters);
	q->total_clusters = 1 + q->l1_clusters + q->n_l2 + q->data_clusters +
	    q->n_rb + q->rt_clusters;
	place(q);
	return 0;
}

/*
 * The refcounts of the data clusters, asked for in order, from a replay of
 * the packer.  Every cluster below pk.next is allocated; the one holding
 * the end of the last compressed piece (open) may still be filled by later
 * pieces, and every cluster after it is plain, with refcount 1.  Asking
 * for cluster c replays pieces only until c is final, and only c can be
 * closed meanwhile, so one closed count is all the memory it needs.
 */
struct refgen {
	struct wplan_iter it;
	struct packer pk;
	uint64_t open;		/* UINT64_MAX: none */
	uint32_t open_count;
	uint64_t closed;	/* the last cluster that stopped being open */
	uint32_t closed_count;
	bool plan_done;
};

static void refgen_open(struct refgen *g, uint64_t c)
{
	if (g->open != UINT64_MAX) {
		g->closed = g->open;
		g->closed_count = g->open_count;
	}
	g->open = c;
	g->open_count = 1;
}

/* Replay the next piece of the plan; 0 at its end. */
static int refgen_step(const struct qcow2w *q, struct refgen *g)
{
	uint64_t index, off, first, last;
	uint32_t elen;
	int r;

	r = wplan_next(&g->it, &index, &elen);
	if (r <= 0) {
		g->plan_done = r == 0;
		return r;
	}
	off = pack(&g->pk, q->cs, elen);
	if (elen == 0)
		return 1;	/* plain: a cluster of its own */
	first = off / q->cs;
	last = (off + elen - 1) / q->cs;
	if (first == g->open)
		g->open_count++;
	else
		refgen_open(g, first);
	if (last != first)	/* spilled into the next cluster */
		refgen_open(g, last);
	return 1;
}

static int data_refcount(const struct qcow2w *q, struct refgen *g,
    uint64_t c, uint16_t *rc)
{
	while ((c >= g->pk.next || c == g->open) && !g->plan_done)
		if (refgen_step(q, g) < 0)
			return -1;
	if (c >= g->pk.next)
		*rc = 0;
	else if (c == g->open)
		*rc = g->open_count;
	else
		*rc = c == g->closed ? g->closed_count : 1;
	return 0;
}

/*
 * The refcount of host cluster c: metadata clusters have 1, data
 * clusters what the packer gave them, clusters past the end 0.
 */
static int host_refcount(const struct qcow2w *q, struct refgen *g,
    uint64_t c, uint16_t *rc)
{
	uint64_t first_data = q->data_off / q->cs;

	if (c >= q->total_clusters)
		*rc = 0;
	else if (c < first_data || c >= first_data + q->data_clusters)
		*rc = 1;
	else
		return data_refcount(q, g, c - first_data, rc);
	return 0;
}

static int write_refcount_blocks(struct wimage *w, struct qcow2w *q)
{
	struct refgen g = { .open = UINT64_MAX, .closed = UINT64_MAX };
	uint64_t per = q->cs / 2, b, i;
	uint16_t rc;
	int ret = -1;

	packer_start(q, &g.pk);
	if (wplan_first(w, &g.it) < 0)
		return -1;
	for (b = 0; b < q->n_rb; b++) {
		for (i = 0; i < per; i++) {
			if (host_refcount(q, &g, b * per + i, &rc) < 0)
				goto out;
			put_be16(q->buf + 2 * i, rc);
		}
		if (wfile_write(w->out, q->buf, q->cs, q->rb_off + b * q->cs) <
		    0)
			goto out;
	}
	ret = 0;
out:
	wplan_done(&g.it);
	return ret;
}

static int write_refcount_table(struct wimage *w, struct qcow2w *q)
{
	uint64_t cs = q->cs, i, c;

	for (c = 0; c < q->rt_clusters; c++) {
		memset(q->buf, 0, cs);
		for (i = 0; i < cs / 8 && c * (cs / 8) + i < q->n_rb; i++)
			put_be64(q->buf + 8 * i, q->rb_off +
			    (c * (cs / 8) + i) * cs);
		if (wfile_write(w->out, q->buf, cs, q->rt_off + c * cs) < 0)
			return -1;
	}
	return 0;
}

/* The L1 table, one cluster at a time: entry g points at the k-th L2. */
static int write_l1(struct wimage *w, struct qcow2w *q)
{
	uint64_t per = q->cs / 8, c = 0, index, group, last = UINT64_MAX, k = 0;
	struct wplan_iter it;
	uint32_t elen;
	int r;

	if (q->l1_clusters == 0)
		return 0;
	if (wplan_first(w, &it) < 0)
		return -1;
	memset(q->buf, 0, q->cs);
	while ((r = wplan_next(&it, &index, &elen)) == 1) {
		group = l2_group(q, index);
		if (group == last)
			continue;
		last = group;
		for (; group / per > c; c++) {
			if (wfile_write(w->out, q->buf, q->cs,
			    q->l1_off + c * q->cs) < 0)
				goto fail;
			memset(q->buf, 0, q->cs);
		}
		put_be64(q->buf + 8 * (group % per), (q->l2_off + k++ * q->cs) |
		    QCOW2_OFLAG_COPIED);
	}
	if (r < 0)
		goto fail;
	for (; c < q->l1_clusters; c++) {
		if (wfile_write(w->out, q->buf, q->cs, q->l1_off + c * q->cs) <
		    0)
			goto fail;
		memset(q->buf, 0, q->cs);
	}
	wplan_done(&it);
	return 0;
fail:
	wplan_done(&it);
	return -1;
}

static uint64_t l2_entry(const struct qcow2w *q, uint64_t host, uint32_t clen)
{
	unsigned csize_shift = qcow2_csize_shift(q->cluster_bits);
	uint64_t nsectors;

	if (clen == 0)
		return host | QCOW2_OFLAG_COPIED;
	/* sectors beyond the one holding the first byte */
	nsectors = ((host + clen - 1) >> 9) - (host >> 9);
	return host | QCOW2_OFLAG_COMPRESSED | nsectors << csize_shift;
}

static int write_l2_tables(struct wimage *w, struct qcow2w *q)
{
	uint64_t mask = (q->cs >> 3) - 1, k = 0, index, host;
	uint64_t group = UINT64_MAX;
	struct wplan_iter it;
	struct packer pk;
	uint32_t elen;
	int r;

	packer_start(q, &pk);
	if (wplan_first(w, &it) < 0)
		return -1;
	while ((r = wplan_next(&it, &index, &elen)) == 1) {
		if (l2_group(q, index) != group) {
			if (group != UINT64_MAX && wfile_write(w->out, q->buf,
			    q->cs, q->l2_off + k++ * q->cs) < 0)
				goto fail;
			group = l2_group(q, index);
			memset(q->buf, 0, q->cs);
		}
		host = q->data_off + pack(&pk, q->cs, elen);
		put_be64(q->buf + 8 * (index & mask), l2_entry(q, host, elen));
	}
	if (r < 0 || (group != UINT64_MAX && wfile_write(w->out, q->buf,
	    q->cs, q->l2_off + k * q->cs) < 0))
		goto fail;
	wplan_done(&it);
	return 0;
fail:
	wplan_done(&it);
	return -1;
}

static int write_header(struct wimage *w, struct qcow2w *q)
{
	unsigned char *h = q->buf;

	memset(h, 0, q->cs);
	put_be32(h + QCOW2_HDR_MAGIC, QCOW2_MAGIC);
	put_be32(h + QCOW2_HDR_VERSION, q->o->version);
	put_be32(h + QCOW2_HDR_CLUSTER_BITS, q->cluster_bits);
	put_be64(h + QCOW2_HDR_SIZE, w->virtual_size);
	put_be32(h + QCOW2_HDR_L1_SIZE, q->l1_size);
	put_be64(h + QCOW2_HDR_L1_OFF, q->l1_size ? q->l1_off : 0);
	put_be64(h + QCOW2_HDR_RT_OFF, q->rt_off);
	put_be32(h + QCOW2_HDR_RT_CLUSTERS, q->rt_clusters);
	if (q->o->version >= 3) {
		/* feature bits 72..95 stay zero; no header extensions */
		put_be32(h + QCOW2_HDR_REFCOUNT_ORDER, 4);	/* 16 bits */
		put_be32(h + QCOW2_HDR_LEN, QCOW2_V3_HEADER_LEN);
	}
	return wfile_write(w->out, h, q->cs, 0);
}

/* ---- the writer interface ---- */

static int qcow2w_setup(struct wimage *w)
{
	struct qcow2w *q = w->priv;
	uint64_t l2_span;

	q->o = w->opts;
	q->cluster_bits = q->o->cluster_bits;
	q->cs = 1ull << q->cluster_bits;
	w->grain = q->cs;
	if (q->o->compress)
		w->encoded_max = q->cs;	/* only what is smaller is kept */
	/* qemu refuses L1 tables above 32 MiB (QCOW_MAX_L1_SIZE) */
	l2_span = q->cs << (q->cluster_bits - 3);
	w->max_size = QCOW2_L1_MAX_BYTES / 8 * l2_span;
	q->buf = malloc(q->cs);
	if (q->buf == NULL)
		return fail(EXIT_IO, "out of memory");
	return 0;
}

static void *qcow2w_coder_new(const struct wimage *w)
{
	const struct qcow2w *q = w->priv;

	return libdeflate_alloc_compressor(q->o->level < 0 ?
	    QCOW2W_LEVEL_DEFAULT : q->o->level);
}

static void qcow2w_coder_free(void *coder)
{
	libdeflate_free_compressor(coder);
}

/*
 * Raw deflate, kept only when it fits in less than a cluster.  qemu
 * deflates with a 4 KiB window (windowBits -12) and inflates a cluster in
 * one call into a buffer that holds all of it, so the 32 KiB window of
 * libdeflate reads back there as everywhere; it packs smaller at level 1
 * than zlib at 6 with a 4 KiB window (man/raw2qcow2.1).
 */
static size_t qcow2w_encode(const struct wimage *w, void *coder,
    uint64_t index, const unsigned char *in, size_t len, unsigned char *out)
{
	(void)index;
	return libdeflate_deflate_compress(coder, in, len, out, w->grain - 1);
}

static int write_metadata(struct wimage *w, struct qcow2w *q)
{
	/* A stream gets everything in file order; a file the header last. */
	if (q->meta_first)
		return write_header(w, q) < 0 || write_refcount_table(w, q) < 0 ||
		    write_refcount_blocks(w, q) < 0 || write_l1(w, q) < 0 ||
		    write_l2_tables(w, q) < 0 ? -1 : 0;
	return write_l2_tables(w, q) < 0 || write_l1(w, q) < 0 ||
	    write_refcount_table(w, q) < 0 ||
	    write_refcount_blocks(w, q) < 0 || write_header(w, q) < 0 ? -1 : 0;
}

static int qcow2w_begin(struct wimage *w)
{
	struct qcow2w *q = w->priv;

	q->meta_first = w->layout == WLAYOUT_PLANNED;
	packer_start(q, &q->pack);
	if (!q->meta_first)
		return 0;	/* data from cluster 1, metadata at the end */
	if (lay_out(w, q) < 0)
		return -1;
	return write_metadata(w, q);
}

static int qcow2w_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct qcow2w *q = w->priv;
	uint64_t rel;

	(void)index;
	if (data == NULL)
		return 0;	/* zero clusters stay unallocated */
	rel = pack(&q->pack, q->cs, encoded ? (uint32_t)len : 0);
	return wfile_put(w->out, data, len, (q->meta_first ? q->data_off :
	    q->cs) + rel);
}

static int qcow2w_finish(struct wimage *w)
{
	struct qcow2w *q = w->priv;

	if (!q->meta_first && (lay_out(w, q) < 0 || write_metadata(w, q) < 0))
		return -1;
	return wfile_end(w->out, q->file_size);
}

static void qcow2w_close(struct wimage *w)
{
	struct qcow2w *q = w->priv;

	free(q->buf);
	q->buf = NULL;
}

const struct writer writer_qcow2 = {
	.name = "qcow2",
	.state_size = sizeof(struct qcow2w),
	.flags = WRITER_SIZE_LATE,
	.setup = qcow2w_setup,
	.coder_new = qcow2w_coder_new,
	.coder_free = qcow2w_coder_free,
	.encode = qcow2w_encode,
	.begin = qcow2w_begin,
	.put = qcow2w_put,
	.finish = qcow2w_finish,
	.close = qcow2w_close,
};
