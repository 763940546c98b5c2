/*
 * qcow2 layout planning and metadata (docs/interop/qcow2.txt).  See
 * qcow2_write.h for the two layouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/format.h"
#include "fmt/qcow2/qcow2.h"
#include "fmt/qcow2/qcow2_write.h"
#include "imgpipe/sink.h"

#define REFCOUNT_MAX 0xffff

static uint64_t div_round_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

void qcow2w_plan_init(struct qcow2w_plan *p, unsigned cluster_bits,
    int version, bool fill_back)
{
	memset(p, 0, sizeof *p);
	p->cluster_bits = cluster_bits;
	p->cluster_size = 1ull << cluster_bits;
	p->version = version;
	p->pack.fill_back = fill_back;
}

void qcow2w_plan_free(struct qcow2w_plan *p)
{
	free(p->cl);
	free(p->refcount);
	p->cl = NULL;
	p->refcount = NULL;
}

/*
 * Plain clusters take the next free cluster.  Compressed data is packed
 * byte by byte after the previous compressed piece, as qemu's
 * qcow2_alloc_bytes() does: it fills the rest of that piece's cluster
 * (with fill_back, even when plain clusters were placed after it) and
 * spills into the next cluster only when that one is free and adjacent;
 * otherwise it starts on the next free cluster.  Every host cluster a piece touches
 * counts it once in its refcount, which must stay below 2^16.
 */
uint64_t qcow2w_pack(struct qcow2w_packer *pk, uint64_t cluster_size,
    uint32_t clen)
{
	uint64_t off = pk->end, room = (cluster_size - off % cluster_size) %
	    cluster_size;

	if (clen == 0) {
		off = pk->next;
		pk->next += cluster_size;
		return off;
	}
	if (room == 0 || pk->users >= REFCOUNT_MAX ||
	    ((clen > room || !pk->fill_back) && off + room != pk->next)) {
		off = pk->next;	/* a fresh cluster */
		pk->users = 0;
	}
	pk->end = off + clen;
	if ((pk->end - 1) / cluster_size != off / cluster_size)
		pk->users = 1;	/* end's cluster is new: only this piece */
	else
		pk->users++;
	if (div_round_up(pk->end, cluster_size) * cluster_size > pk->next)
		pk->next = div_round_up(pk->end, cluster_size) * cluster_size;
	return off;
}

/* Bytes of the data region: whole sectors after a final compressed piece. */
static uint64_t packed_bytes(const struct qcow2w_packer *pk,
    uint64_t cluster_size)
{
	if (pk->next > 0 &&
	    div_round_up(pk->end, cluster_size) * cluster_size == pk->next)
		return div_round_up(pk->end, 512) * 512;
	return pk->next;
}

int qcow2w_plan_add(struct qcow2w_plan *p, uint64_t guest, uint32_t clen,
    uint64_t *rel)
{
	if (p->ncl > 0 && guest <= p->cl[p->ncl - 1].guest)
		return fail(EXIT_IO, "qcow2 writer: clusters out of order");
	if (grow_array(&p->cl, p->ncl, &p->capcl, sizeof *p->cl, 1024,
	    SIZE_MAX) < 0)
		return -1;
	p->cl[p->ncl].guest = guest;
	p->cl[p->ncl].clen = clen;
	p->ncl++;
	*rel = qcow2w_pack(&p->pack, p->cluster_size, clen);
	return 0;
}

static uint64_t count_l2_tables(const struct qcow2w_plan *p)
{
	unsigned l2_bits = p->cluster_bits - 3;
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < p->ncl; i++)
		if (i == 0 || p->cl[i].guest >> l2_bits !=
		    p->cl[i - 1].guest >> l2_bits)
			n++;
	return n;
}

/* Refcount blocks and table must also count themselves: find the fixpoint. */
static void size_refcount_structures(struct qcow2w_plan *p, uint64_t others)
{
	uint64_t rb_entries = p->cluster_size / 2;
	uint64_t rb = 0, rt = 0, nrb, nrt;

	for (;;) {
		nrb = div_round_up(others + rb + rt, rb_entries);
		nrt = div_round_up(nrb * 8, p->cluster_size);
		if (nrb == rb && nrt == rt)
			break;
		rb = nrb;
		rt = nrt;
	}
	p->n_rb = rb;
	p->rt_clusters = rt;
}

static void place(struct qcow2w_plan *p)
{
	uint64_t cs = p->cluster_size;

	p->header_off = 0;
	if (p->layout == QCOW2W_META_LAST) {
		p->data_off = cs;
		p->l2_off = p->data_off + p->data_clusters * cs;
		p->l1_off = p->l2_off + p->n_l2 * cs;
		p->rt_off = p->l1_off + p->l1_clusters * cs;
		p->rb_off = p->rt_off + p->rt_clusters * cs;
		p->file_size = p->rb_off + p->n_rb * cs;
	} else {
		p->rt_off = cs;
		p->rb_off = p->rt_off + p->rt_clusters * cs;
		p->l1_off = p->rb_off + p->n_rb * cs;
		p->l2_off = p->l1_off + p->l1_clusters * cs;
		p->data_off = p->l2_off + p->n_l2 * cs;
		/* whole sectors: readers fetch compressed data by sector */
		p->file_size = p->data_off + packed_bytes(&p->pack, cs);
	}
}

static void set_refcounts(uint16_t *rc, uint64_t off, uint64_t nclusters,
    unsigned cluster_bits)
{
	uint64_t i, first = off >> cluster_bits;

	for (i = 0; i < nclusters; i++)
		rc[first + i] = 1;
}

static int count_refs(struct qcow2w_plan *p)
{
	struct qcow2w_packer pk = { .fill_back = p->pack.fill_back };
	uint64_t cs = p->cluster_size, host, c, last;
	unsigned cb = p->cluster_bits;
	size_t i;

	if (p->total_clusters > SIZE_MAX / sizeof *p->refcount)
		return fail(EXIT_IO, "image too large");
	p->refcount = calloc(p->total_clusters ? p->total_clusters : 1,
	    sizeof *p->refcount);
	if (p->refcount == NULL)
		return fail(EXIT_IO, "out of memory for %llu refcounts",
		    (unsigned long long)p->total_clusters);
	set_refcounts(p->refcount, p->header_off, 1, cb);
	set_refcounts(p->refcount, p->rt_off, p->rt_clusters, cb);
	set_refcounts(p->refcount, p->rb_off, p->n_rb, cb);
	set_refcounts(p->refcount, p->l1_off, p->l1_clusters, cb);
	set_refcounts(p->refcount, p->l2_off, p->n_l2, cb);
	for (i = 0; i < p->ncl; i++) {
		host = p->data_off + qcow2w_pack(&pk, cs, p->cl[i].clen);
		if (p->cl[i].clen == 0) {
			p->refcount[host >> cb] = 1;
			continue;
		}
		last = (host + p->cl[i].clen - 1) >> cb;
		for (c = host >> cb; c <= last; c++)
			p->refcount[c]++;
	}
	return 0;
}

int qcow2w_plan_finish(struct qcow2w_plan *p, uint64_t virtual_size,
    enum qcow2w_layout layout)
{
	uint64_t cs = p->cluster_size;
	uint64_t l2_span = cs << (p->cluster_bits - 3);

	if (virtual_size > IMAGE_VSIZE_MAX)
		return fail(EXIT_USAGE, "virtual size %llu is too large",
		    (unsigned long long)virtual_size);
	if (p->ncl > 0 && p->cl[p->ncl - 1].guest >=
	    div_round_up(virtual_size, cs))
		return fail(EXIT_IO, "qcow2 writer: data beyond the virtual "
		    "size");
	p->layout = layout;
	p->virtual_size = virtual_size;
	p->l1_size = div_round_up(virtual_size, l2_span);
	if (p->l1_size * 8 > QCOW2_L1_MAX_BYTES)
		return fail(EXIT_USAGE, "virtual size %llu is too large for "
		    "%llu-byte clusters", (unsigned long long)virtual_size,
		    (unsigned long long)cs);
	p->l1_clusters = div_round_up(p->l1_size * 8, cs);
	p->n_l2 = count_l2_tables(p);
	p->data_clusters = p->pack.next / cs;
	size_refcount_structures(p,
	    1 + p->l1_clusters + p->n_l2 + p->data_clusters);
	p->total_clusters = 1 + p->l1_clusters + p->n_l2 + p->data_clusters +
	    p->n_rb + p->rt_clusters;
	place(p);
	return count_refs(p);
}

static void build_header(const struct qcow2w_plan *p, unsigned char *h)
{
	memset(h, 0, p->cluster_size);
	put_be32(h + QCOW2_HDR_MAGIC, QCOW2_MAGIC);
	put_be32(h + QCOW2_HDR_VERSION, p->version);
	put_be32(h + QCOW2_HDR_CLUSTER_BITS, p->cluster_bits);
	put_be64(h + QCOW2_HDR_SIZE, p->virtual_size);
	put_be32(h + QCOW2_HDR_L1_SIZE, p->l1_size);
	put_be64(h + QCOW2_HDR_L1_OFF, p->l1_size ? p->l1_off : 0);
	put_be64(h + QCOW2_HDR_RT_OFF, p->rt_off);
	put_be32(h + QCOW2_HDR_RT_CLUSTERS, p->rt_clusters);
	if (p->version >= 3) {
		/* feature bits 72..95 stay zero; no header extensions */
		put_be32(h + QCOW2_HDR_REFCOUNT_ORDER, 4);	/* refcount_order: 16 bits */
		put_be32(h + QCOW2_HDR_LEN, QCOW2_V3_HEADER_LEN);
	}
}

static int write_refcount_table(const struct qcow2w_plan *p,
    struct qcow2w_out *o, unsigned char *buf)
{
	uint64_t cs = p->cluster_size, i, c;

	for (c = 0; c < p->rt_clusters; c++) {
		memset(buf, 0, cs);
		for (i = 0; i < cs / 8 && c * (cs / 8) + i < p->n_rb; i++)
			put_be64(buf + 8 * i, p->rb_off +
			    (c * (cs / 8) + i) * cs);
		if (qcow2w_out_write(o, buf, cs, p->rt_off + c * cs) < 0)
			return -1;
	}
	return 0;
}

static int write_refcount_blocks(const struct qcow2w_plan *p,
    struct qcow2w_out *o, unsigned char *buf)
{
	uint64_t cs = p->cluster_size, per = cs / 2, b, i, c;

	for (b = 0; b < p->n_rb; b++) {
		memset(buf, 0, cs);
		for (i = 0; i < per; i++) {
			c = b * per + i;
			if (c >= p->total_clusters)
				break;
			put_be16(buf + 2 * i, p->refcount[c]);
		}
		if (qcow2w_out_write(o, buf, cs, p->rb_off + b * cs) < 0)
			return -1;
	}
	return 0;
}

static uint64_t l2_entry(const struct qcow2w_plan *p, uint64_t host,
    uint32_t clen)
{
	unsigned csize_shift = qcow2_csize_shift(p->cluster_bits);
	uint64_t nsectors;

	if (clen == 0)
		return host | QCOW2_OFLAG_COPIED;
	/* sectors beyond the one holding the first byte */
	nsectors = ((host + clen - 1) >> 9) - (host >> 9);
	return host | QCOW2_OFLAG_COMPRESSED | nsectors << csize_shift;
}

static int write_l1(const struct qcow2w_plan *p, struct qcow2w_out *o)
{
	unsigned l2_bits = p->cluster_bits - 3;
	uint64_t bytes = p->l1_clusters * p->cluster_size, k = 0;
	unsigned char *l1;
	size_t i;
	int rc;

	if (bytes == 0)
		return 0;
	l1 = calloc(1, bytes);
	if (l1 == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < p->ncl; i++)
		if (i == 0 || p->cl[i].guest >> l2_bits !=
		    p->cl[i - 1].guest >> l2_bits)
			put_be64(l1 + 8 * (p->cl[i].guest >> l2_bits),
			    (p->l2_off + k++ * p->cluster_size) |
			    QCOW2_OFLAG_COPIED);
	rc = qcow2w_out_write(o, l1, bytes, p->l1_off);
	free(l1);
	return rc;
}

static int write_l2_tables(const struct qcow2w_plan *p, struct qcow2w_out *o,
    unsigned char *buf)
{
	struct qcow2w_packer pk = { .fill_back = p->pack.fill_back };
	unsigned l2_bits = p->cluster_bits - 3;
	uint64_t cs = p->cluster_size, mask = (1ull << l2_bits) - 1, k = 0;
	uint64_t host;
	size_t i;

	for (i = 0; i < p->ncl; i++) {
		const struct qcow2w_cluster *c = &p->cl[i];

		if (i == 0 || c->guest >> l2_bits != c[-1].guest >> l2_bits)
			memset(buf, 0, cs);
		host = p->data_off + qcow2w_pack(&pk, cs, c->clen);
		put_be64(buf + 8 * (c->guest & mask), l2_entry(p, host,
		    c->clen));
		if (i + 1 == p->ncl || c[1].guest >> l2_bits !=
		    c->guest >> l2_bits) {
			if (qcow2w_out_write(o, buf, cs, p->l2_off + k++ * cs)
			    < 0)
				return -1;
		}
	}
	return 0;
}

int qcow2w_write_metadata(const struct qcow2w_plan *p, struct qcow2w_out *o)
{
	unsigned char *buf = malloc(p->cluster_size);
	int rc = -1;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	/* A stream gets everything in file order; a file gets the header last. */
	if (p->layout == QCOW2W_META_FIRST) {
		build_header(p, buf);
		if (qcow2w_out_write(o, buf, p->cluster_size, 0) < 0 ||
		    write_refcount_table(p, o, buf) < 0 ||
		    write_refcount_blocks(p, o, buf) < 0 ||
		    write_l1(p, o) < 0 || write_l2_tables(p, o, buf) < 0)
			goto out;
	} else {
		if (write_l2_tables(p, o, buf) < 0 || write_l1(p, o) < 0 ||
		    write_refcount_table(p, o, buf) < 0 ||
		    write_refcount_blocks(p, o, buf) < 0)
			goto out;
		build_header(p, buf);
		if (qcow2w_out_write(o, buf, p->cluster_size, 0) < 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

void qcow2w_out_init(struct qcow2w_out *o, int fd, const char *name)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	memset(o, 0, sizeof *o);
	o->fd = fd;
	o->name = name;
	if (fstat(fd, &st) < 0 || flags < 0 || (flags & O_APPEND) ||
	    !S_ISREG(st.st_mode))
		return;
	o->seekable = lseek(fd, 0, SEEK_CUR) == 0;
}

int qcow2w_out_write(struct qcow2w_out *o, const void *buf, size_t len,
    uint64_t off)
{
	if (o->seekable)
		return pwrite_full(o->fd, buf, len, off, o->name);
	if (off < o->pos)
		return fail(EXIT_IO, "qcow2 writer: cannot go back in a stream");
	if (off > o->pos && write_zeros(o->fd, off - o->pos, o->name) < 0)
		return -1;
	if (write_full(o->fd, buf, len, o->name) < 0)
		return -1;
	o->pos = off + len;
	return 0;
}

int qcow2w_out_end(struct qcow2w_out *o, uint64_t size)
{
	if (o->seekable) {
		if (ftruncate(o->fd, size) < 0)
			return fail_io(o->name, "cannot set the size");
		return 0;
	}
	if (size > o->pos && write_zeros(o->fd, size - o->pos, o->name) < 0)
		return -1;
	o->pos = size > o->pos ? size : o->pos;
	return 0;
}
