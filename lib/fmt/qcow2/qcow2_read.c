/*
 * qcow2: QEMU's copy-on-write format, versions 2 and 3
 * (QEMU docs/interop/qcow2.txt).
 *
 * The virtual disk is cut into clusters; a two-level table (L1 -> L2) maps
 * each to a host cluster, a compressed run of bytes, zeros, or nothing.
 *
 * Every L2 table gets one set of checks, from a file and a pipe alike, in
 * host order (qcow2_check_l2, cut_note): a file checks them all before it
 * reads any data, then walks the tables in virtual order and reads runs of
 * host-contiguous clusters in large reads.  A stream is read strictly
 * forward: the L1 table tells where every L2 table is, each L2 table read
 * adds the host -> virtual map of data still ahead, and bytes passed before
 * the L2 table that maps them are kept by the source's retention (the one
 * parking store, within --mem) until it arrives.
 *
 * Accepted but not used: snapshots (only the active L1 table is read),
 * the dirty bit (it says refcounts may be stale; a reader never uses
 * refcounts, and tables and data are written before it is cleared),
 * bitmaps and the other compatible and autoclear features.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "fmt/fmt.h"
#include "fmt/qcow2/qcow2.h"
#include "fmt/qcow2/qcow2_info.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"
#include "imgpipe/inflate_pool.h"

/* Host-contiguous clusters are read and emitted in runs up to this long. */
#define RUN_MAX			(4u * 1024 * 1024)
/* Streams: caps on what waits for placement (entries, not bytes). */
#define AHEAD_MAX		(1u << 20)

/* One run of the virtual disk backed by host bytes. */
struct qext {
	uint64_t voff;
	uint64_t host;
	uint32_t len;	/* virtual bytes */
	uint32_t clen;	/* compressed: host bytes to decompress; 0: plain */
};

struct pending_l2 {
	uint64_t host;
	uint32_t l1_index;
};

/* The first truncation in host order (see cut_note). */
struct qcut {
	const char *what;	/* NULL: none */
	uint64_t host, voff;
	bool has_voff;
};

struct qstream {
	size_t l2next;		/* the next of qcow2's l2q to read */
	unsigned char *l2done;	/* per L1 index */
	uint32_t first_unread;
	struct qext *ahead;	/* mapped data still ahead: min-heap by host */
	size_t nahead, capahead;
	uint64_t *vheap, *vdone;	/* outstanding virtual offsets (lazy) */
	size_t nvheap, nvdone, capv;
	/* [read_from, read_end): kept bytes that compressed clusters read
	 * one after another, not input passed on the way (stream_read) */
	uint64_t read_from, read_end;
	/* the compressed cluster of lowest virtual offset that did not
	 * decompress: reported at the end (stream_bad_cluster) */
	char bad[256];
	uint64_t bad_voff;
};

struct qcow2 {
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cs;			/* cluster size */
	uint64_t incompat;
	bool extended_l2;
	int compression_type;		/* 0 zlib, 1 zstd */
	uint64_t l1_off;
	uint32_t l1_size;		/* entries in the header */
	uint32_t l1_used;		/* entries the virtual size needs */
	uint64_t *l1;
	uint64_t rt_off, rt_len;	/* refcount table */
	uint32_t l2_entries;
	uint64_t l2_span;		/* virtual bytes one L2 table maps */
	uint64_t *l2_sorted;		/* L2 table offsets, for overlap checks */
	size_t nl2;
	struct pending_l2 *l2q;		/* L2 tables by host offset */
	size_t nl2q;
	struct qcut cut;		/* a file: the first truncation */
	struct host_claims data;	/* host clusters plain data uses */
	uint64_t data_end;		/* end of the last one in the file */
	uint64_t data_end_host;		/* where that one starts */
	uint64_t data_end_voff;		/* what it maps */
	int csize_shift;
	uint64_t csize_mask, coff_mask;
	unsigned char *l2buf;
	unsigned char *buf;		/* runs, compressed input: wcap bytes */
	size_t wcap;
	unsigned char *cluster;		/* decompressed cluster */
	z_stream zs;
	bool zs_ready;
	ZSTD_DCtx *zd;
	struct qext run;		/* seekable: run being gathered */
	struct qbatch *batch;		/* seekable: clusters inflated together */
	struct qstream *st;
};

static int qcow2_bid(const struct probe *pb)
{
	/* Version 1 is QCOW, another format (foreign.c names it).  The magic
	 * alone, cut before the version, is still a qcow2 image, a truncated
	 * one (qemu-img names it qcow2): not a raw disk of those bytes. */
	if (pb->headlen < QCOW2_HDR_MAGIC + 4 ||
	    be32(pb->head + QCOW2_HDR_MAGIC) != QCOW2_MAGIC)
		return BID_NONE;
	if (pb->headlen >= QCOW2_HDR_VERSION + 4 &&
	    be32(pb->head + QCOW2_HDR_VERSION) == 1)
		return BID_NONE;
	return BID_SIGNATURE;
}

static bool past_end(const struct image *img, uint64_t off, uint64_t len)
{
	const struct source *s = img->src;

	return s->size_known && (off > s->size || len > s->size - off);
}

/* ---- header ---- */

static void printable_copy(char *dst, size_t dstlen, const unsigned char *p,
    size_t len)
{
	size_t i;

	if (len >= dstlen)
		len = dstlen - 1;
	for (i = 0; i < len; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	dst[len] = '\0';
}

static int qcow2_check_backing(struct image *img, const unsigned char *c0,
    uint64_t cs)
{
	uint64_t off = be64(c0 + QCOW2_HDR_BACKING_OFF);
	uint32_t len = be32(c0 + QCOW2_HDR_BACKING_LEN);
	char name[128] = "";

	if (off == 0)
		return 0;
	if (off < cs && len <= cs - off)
		printable_copy(name, sizeof name, c0 + off, len);
	snprintf(img->backing, sizeof img->backing, "%s", name);
	return image_unsafe(img, "backing-file", "image has a backing file "
	    "'%s'; backing files are never opened", name);
}

static int qcow2_check_extensions(struct image *img, const unsigned char *c0,
    uint64_t cs, uint64_t start)
{
	uint64_t off = start;
	uint32_t type, len;
	char name[128];

	while (off + 8 <= cs) {
		type = be32(c0 + off);
		len = be32(c0 + off + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > cs - off - 8)
			return image_bad(img, "header extension 0x%08x at 0x%llx "
			    "runs past the first cluster", type,
			    (unsigned long long)off);
		if (type == QCOW2_EXT_DATA_FILE) {
			printable_copy(name, sizeof name, c0 + off + 8, len);
			if (image_unsafe(img, "external-data-file", "image "
			    "names an external data file '%s'; it is never "
			    "opened", name) < 0)
				return -1;
		}
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
	return 0;
}

static int qcow2_check_features(struct image *img, const unsigned char *h,
    uint32_t header_len, uint64_t cs)
{
	struct qcow2 *q = img->priv;
	uint32_t crypt = be32(h + QCOW2_HDR_CRYPT);

	if (crypt != 0 && image_unsafe(img, "encryption", "image is encrypted "
	    "(%s); encrypted images are not supported",
	    crypt == 1 ? "AES" : crypt == 2 ? "LUKS" : "unknown method") < 0)
		return -1;
	if (q->version < 3)
		return 0;
	q->incompat = be64(h + QCOW2_HDR_INCOMPAT);
	img->dirty = (q->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
	if (header_len < QCOW2_V3_HEADER_LEN || header_len > cs ||
	    header_len % 8 != 0)
		return image_bad(img, "header length %u is invalid", header_len);
	if ((q->incompat & QCOW2_INCOMPAT_CORRUPT) && image_unsafe(img, "corrupt",
	    "image is marked corrupt; check it with qemu-img check -r") < 0)
		return -1;
	if ((q->incompat & QCOW2_INCOMPAT_DATA_FILE) && image_unsafe(img,
	    "external-data-file", "image keeps its data in an external data "
	    "file; it is never opened") < 0)
		return -1;
	if ((q->incompat & ~(uint64_t)QCOW2_INCOMPAT_KNOWN) && image_unsafe(img,
	    "incompatible-features", "unknown incompatible feature bits "
	    "0x%llx", (unsigned long long)(q->incompat &
	    ~(uint64_t)QCOW2_INCOMPAT_KNOWN)) < 0)
		return -1;
	q->extended_l2 = q->incompat & QCOW2_INCOMPAT_EXTENDED_L2;
	if (header_len > QCOW2_V3_HEADER_LEN)
		q->compression_type = h[QCOW2_HDR_COMPRESSION];
	if (q->compression_type > 1)
		return image_unsafe(img, "compression-type", "unknown "
		    "compression type %d", q->compression_type);
	if (q->compression_type != 0 && !(q->incompat & QCOW2_INCOMPAT_COMPRESSION))
		return image_bad(img, "compression type %d without its "
		    "incompatible feature bit", q->compression_type);
	if (q->extended_l2 && q->cluster_bits < 14)
		return image_bad(img, "extended L2 entries need clusters of "
		    "at least 16 KiB, not %llu bytes", (unsigned long long)cs);
	return 0;
}

static void cut_note(struct qcow2 *q, const char *what, uint64_t host,
    uint64_t voff, bool has_voff)
{
	if (q->cut.what != NULL && q->cut.host <= host)
		return;
	q->cut = (struct qcut){ what, host, voff, has_voff };
}

static int cut_report(struct image *img, const struct qcut *c)
{
	if (!c->has_voff)
		return image_defect(img, FINDING_TRUNCATED, "%s at 0x%llx lies "
		    "past the end of the image", c->what,
		    (unsigned long long)c->host);
	return image_defect(img, FINDING_TRUNCATED, "%s at 0x%llx (virtual "
	    "0x%llx) lies past the end of the image", c->what,
	    (unsigned long long)c->host, (unsigned long long)c->voff);
}

/* The refcount table does not end inside [0, end). */
static bool rt_crosses(const struct qcow2 *q, uint64_t end)
{
	return q->rt_len > 0 && (q->rt_off > UINT64_MAX - q->rt_len ||
	    q->rt_off + q->rt_len > end);
}

/* A rejection the source recorded for the input's end, named as cut_report
 * names c; other failures stand. */
static int renamed_cut(struct image *img, const struct qcut *c)
{
	if (err_status() != EXIT_REJECT || err_code() == NULL ||
	    strcmp(err_code(), FINDING_TRUNCATED) != 0)
		return -1;
	err_clear();
	return cut_report(img, c);
}

/* Sizes and places of the L1 and refcount tables. */
static int qcow2_check_tables(struct image *img, const unsigned char *h)
{
	struct qcow2 *q = img->priv;
	uint64_t need, l1_bytes, rt_clusters = be32(h + QCOW2_HDR_RT_CLUSTERS);

	q->l2_entries = q->cs / (q->extended_l2 ? 16 : 8);
	q->l2_span = (uint64_t)q->l2_entries * q->cs;
	need = img->virtual_size / q->l2_span +
	    (img->virtual_size % q->l2_span != 0);
	if (need * 8 > QCOW2_L1_MAX_BYTES)
		return image_unsafe(img, "l1-size", "virtual size %llu needs "
		    "an L1 table of %llu bytes, more than the limit of %u",
		    (unsigned long long)img->virtual_size,
		    (unsigned long long)need * 8, QCOW2_L1_MAX_BYTES);
	q->l1_size = be32(h + QCOW2_HDR_L1_SIZE);
	q->l1_off = be64(h + QCOW2_HDR_L1_OFF);
	l1_bytes = (uint64_t)q->l1_size * 8;
	if (l1_bytes > QCOW2_L1_MAX_BYTES)
		return image_unsafe(img, "l1-size", "L1 table of %llu bytes is "
		    "more than the limit of %u", (unsigned long long)l1_bytes,
		    QCOW2_L1_MAX_BYTES);
	if (q->l1_size < need)
		return image_bad(img, "L1 table has %u entries; the virtual "
		    "size needs %llu", q->l1_size, (unsigned long long)need);
	q->l1_used = need;
	if (need > 0) {
		if (q->l1_off % q->cs != 0)
			return image_defect(img, FINDING_MISALIGNED,
			    "L1 table offset 0x%llx is not "
			    "cluster aligned", (unsigned long long)q->l1_off);
		if (q->l1_off < q->cs)
			return image_defect(img, FINDING_OVERLAP,
			    "L1 table at 0x%llx overlaps the "
			    "header", (unsigned long long)q->l1_off);
	}
	q->rt_off = be64(h + QCOW2_HDR_RT_OFF);
	q->rt_len = rt_clusters * q->cs;
	if (q->rt_len > 0) {
		if (q->rt_off % q->cs != 0)
			return image_defect(img, FINDING_MISALIGNED,
			    "refcount table offset 0x%llx is not cluster "
			    "aligned", (unsigned long long)q->rt_off);
		if (q->rt_off < q->cs)
			return image_defect(img, FINDING_OVERLAP,
			    "refcount table at 0x%llx overlaps the header",
			    (unsigned long long)q->rt_off);
		if (need > 0 && q->rt_off <= UINT64_MAX - q->rt_len &&
		    q->l1_off < q->rt_off + q->rt_len &&
		    q->rt_off < q->l1_off + l1_bytes)
			return image_defect(img, FINDING_OVERLAP,
			    "L1 table at 0x%llx overlaps the "
			    "refcount table", (unsigned long long)q->l1_off);
	}
	/* Last, so that a pipe, which does not know the size, agrees: it
	 * reads the L1 table first.  It never reads the refcount table, so
	 * that one waits with the other truncations (cut_note). */
	if (need > 0 && past_end(img, q->l1_off, l1_bytes))
		return image_defect(img, FINDING_TRUNCATED, "L1 table at 0x%llx "
		    "lies past the end of the image",
		    (unsigned long long)q->l1_off);
	if (img->src->size_known && rt_crosses(q, img->src->size))
		cut_note(q, "refcount table", q->rt_off, 0, false);
	return 0;
}

static int qcow2_open(struct image *img)
{
	const unsigned char *h = img->src->head;
	unsigned char *c0;
	struct qcow2 *q;
	uint32_t header_len;
	int rc;

	if (img->src->headlen < QCOW2_V2_HEADER_LEN)
		return image_defect(img, FINDING_TRUNCATED,
		    "header is truncated");
	q = calloc(1, sizeof *q);
	if (q == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = q;
	q->version = be32(h + QCOW2_HDR_VERSION);
	if (q->version != 2 && q->version != 3)
		return image_bad(img, "version %u is not supported (only 2 "
		    "and 3)", q->version);
	if (q->version == 3 && img->src->headlen < QCOW2_V3_HEADER_LEN)
		return image_defect(img, FINDING_TRUNCATED,
		    "header is truncated");
	q->cluster_bits = be32(h + QCOW2_HDR_CLUSTER_BITS);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return image_bad(img, "cluster_bits %u is out of range (9..21)",
		    q->cluster_bits);
	q->cs = 1ull << q->cluster_bits;
	img->cluster_size = q->cs;
	img->virtual_size = be64(h + QCOW2_HDR_SIZE);
	snprintf(img->subformat, sizeof img->subformat, "v%u", q->version);
	if (img->virtual_size > IMAGE_VSIZE_MAX && image_unsafe(img,
	    "virtual-size", "virtual size %llu is beyond the limit of %llu "
	    "bytes", (unsigned long long)img->virtual_size,
	    (unsigned long long)IMAGE_VSIZE_MAX) < 0)
		return -1;
	header_len = q->version == 3 ? be32(h + QCOW2_HDR_LEN) : QCOW2_V2_HEADER_LEN;
	if (qcow2_check_features(img, h, header_len, q->cs) < 0)
		return -1;
	/* The header, its extensions and the backing name: cluster 0. */
	c0 = malloc(q->cs);
	if (c0 == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = image_read_at(img, c0, q->cs, 0, "header cluster");
	if (rc < 0)
		rc = renamed_cut(img, &(struct qcut){ "header cluster", 0, 0,
		    false });
	if (rc == 0)
		rc = qcow2_check_backing(img, c0, q->cs);
	if (rc == 0)
		rc = qcow2_check_extensions(img, c0, q->cs, header_len);
	if (rc == 0)
		qcow2_info(img, h, c0, q->cs);
	free(c0);
	if (rc < 0)
		return -1;
	q->csize_shift = qcow2_csize_shift(q->cluster_bits);
	q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;
	q->coff_mask = (1ull << q->csize_shift) - 1;
	return qcow2_check_tables(img, h);
}

/* ---- metadata map: what data must never point at ---- */

static bool ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

/* The metadata that [off, off+len) touches, or NULL; *at: where it is. */
static const char *meta_hit(const struct qcow2 *q, uint64_t off, uint64_t len,
    uint64_t *at)
{
	size_t lo = 0, hi = q->nl2, mid;

	if (ranges_meet(off, len, 0, q->cs))
		return *at = 0, "header";
	if (ranges_meet(off, len, q->l1_off, (uint64_t)q->l1_size * 8))
		return *at = q->l1_off, "L1 table";
	if (ranges_meet(off, len, q->rt_off, q->rt_len))
		return *at = q->rt_off, "refcount table";
	/* the first L2 table ending after off */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (q->l2_sorted[mid] + q->cs <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < q->nl2 && q->l2_sorted[lo] < off + len)
		return *at = q->l2_sorted[lo], "L2 table";
	return NULL;
}

static int qcow2_read_l1(struct image *img)
{
	struct qcow2 *q = img->priv;
	unsigned char *raw;
	uint32_t i;

	q->l1 = calloc(q->l1_used ? q->l1_used : 1, sizeof *q->l1);
	raw = malloc(q->l1_used ? (size_t)q->l1_used * 8 : 1);
	if (q->l1 == NULL || raw == NULL) {
		free(raw);
		return fail(EXIT_IO, "out of memory");
	}
	if (q->l1_used > 0 && image_read_at(img, raw, (size_t)q->l1_used * 8,
	    q->l1_off, "L1 table") < 0) {
		free(raw);
		return renamed_cut(img, &(struct qcut){ "L1 table", q->l1_off,
		    0, false });
	}
	for (i = 0; i < q->l1_used; i++)
		q->l1[i] = be64(raw + 8 * (size_t)i) & QCOW2_ENTRY_OFFSET_MASK;
	free(raw);
	return 0;
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending_l2 *x = a, *y = b;

	return x->host < y->host ? -1 : x->host > y->host;
}

/* The L2 tables in the order a pipe meets them: by host offset. */
static int qcow2_order_l2(struct image *img)
{
	struct qcow2 *q = img->priv;
	uint32_t i;

	q->l2q = malloc((q->nl2 + 1) * sizeof *q->l2q);
	if (q->l2q == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < q->l1_used; i++)
		if (q->l1[i] != 0)
			q->l2q[q->nl2q++] = (struct pending_l2){ q->l1[i], i };
	qsort(q->l2q, q->nl2q, sizeof *q->l2q, cmp_pending);
	return 0;
}

/*
 * Every L2 table is aligned, apart from the metadata and from the other
 * tables.  Whether it is inside the file is asked in host order, with the
 * tables' entries (qcow2_check_seekable), as a pipe finds it.
 */
static int qcow2_map_l2_tables(struct image *img)
{
	struct qcow2 *q = img->priv;
	uint64_t off, at;
	const char *what;
	uint32_t i;
	size_t n = 0;

	q->l2_sorted = malloc((q->l1_used ? q->l1_used : 1) * sizeof(uint64_t));
	if (q->l2_sorted == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < q->l1_used; i++) {
		off = q->l1[i];
		if (off == 0)
			continue;
		if (off % q->cs != 0)
			return image_defect(img, FINDING_MISALIGNED,
			    "L2 table offset 0x%llx (L1 entry "
			    "%u) is not cluster aligned",
			    (unsigned long long)off, i);
		what = meta_hit(q, off, q->cs, &at);
		if (what != NULL)
			return image_defect(img, FINDING_OVERLAP,
			    "L2 table at 0x%llx overlaps the "
			    "%s at 0x%llx", (unsigned long long)off, what,
			    (unsigned long long)at);
		q->l2_sorted[n++] = off;
	}
	sort_u64(q->l2_sorted, n);
	for (i = 1; i < n; i++)
		if (q->l2_sorted[i] == q->l2_sorted[i - 1])
			return image_defect(img, FINDING_SHARED_BLOCK,
			    "L2 table at 0x%llx is used twice "
			    "in the L1 table",
			    (unsigned long long)q->l2_sorted[i]);
	q->nl2 = n;
	return qcow2_order_l2(img);
}

/* ---- L2 tables: checks, then entries into extents ---- */

/*
 * One set of checks for every L2 table, from a file and from a pipe, in
 * the order a pipe meets the tables: by host offset.  Structural defects
 * (misaligned, overlap, shared-block, malformed) are reported where they
 * are found; a truncation waits until every table in the file has been
 * checked (a pipe learns that the input ends only when it gets there, after
 * every table before that point), and the one reported is the first in
 * host order, with the words a pipe uses when it meets it.
 */
static int check_meta(struct image *img, uint64_t host, uint64_t len,
    uint64_t voff)
{
	const char *what;
	uint64_t at;

	what = meta_hit(img->priv, host, len, &at);
	if (what != NULL)
		return image_defect(img, FINDING_OVERLAP,
		    "L2 entry for virtual offset 0x%llx points "
		    "at the %s at 0x%llx", (unsigned long long)voff, what,
		    (unsigned long long)at);
	return 0;
}

/*
 * A compressed cluster: its stated length may run past the end of the
 * file (qemu rounds it up to sectors), so only its start must be inside;
 * all of it must keep off the metadata.
 */
static int check_compressed(struct image *img, uint64_t host, uint64_t clen,
    uint64_t voff)
{
	struct qcow2 *q = img->priv;

	if (img->src->size_known && host >= img->src->size)
		cut_note(q, "compressed cluster", host, voff, true);
	return check_meta(img, host, clen, voff);
}

/*
 * A plain data cluster belongs to one L2 entry.  inlen: how much of it
 * must be in the file: the whole cluster, its unused end included (as
 * qemu-img writes it), or with extended L2 up to the end of its last
 * allocated subcluster (qemu writes subclusters one by one: the file may
 * end there).
 */
static int qcow2_claim_data(struct image *img, uint64_t host, uint64_t voff,
    uint64_t inlen)
{
	struct qcow2 *q = img->priv;
	uint64_t used = inlen;

	if (voff >= img->virtual_size)
		return 0;
	if (used > img->virtual_size - voff)
		used = img->virtual_size - voff;
	if (past_end(img, host, inlen))
		cut_note(q, "data cluster", host, voff, true);
	if (check_meta(img, host, used, voff) < 0)
		return -1;
	if (host + inlen > q->data_end) {
		q->data_end = host + inlen;
		q->data_end_host = host;
		q->data_end_voff = voff;
	}
	q->data.unit = q->cs;
	return host_claim(img, &q->data, host, q->cs, HOST_DATA,
	    "data cluster");
}

static int check_subclusters(struct image *img, uint64_t host,
    uint64_t bitmap, uint64_t voff)
{
	struct qcow2 *q = img->priv;
	uint32_t alloc = bitmap & 0xffffffffu, zero = bitmap >> 32;
	int last = QCOW2_SUBCLUSTERS;

	while (last > 0 && !(alloc >> (last - 1) & 1))
		last--;
	if (alloc != 0 && qcow2_claim_data(img, host, voff,
	    (uint64_t)last * (q->cs / QCOW2_SUBCLUSTERS)) < 0)
		return -1;
	if (alloc & zero)
		return image_bad(img, "L2 entry for virtual offset 0x%llx has a "
		    "subcluster both allocated and zero",
		    (unsigned long long)voff);
	if (alloc != 0 && host == 0)
		return image_bad(img, "L2 entry for virtual offset 0x%llx has "
		    "allocated subclusters but no host cluster",
		    (unsigned long long)voff);
	return 0;
}

static int check_l2_entry(struct image *img, const unsigned char *p,
    uint64_t voff)
{
	struct qcow2 *q = img->priv;
	uint64_t ent = be64(p), host, nsect;

	if (ent & QCOW2_OFLAG_COMPRESSED) {
		host = ent & q->coff_mask;
		nsect = ((ent >> q->csize_shift) & q->csize_mask) + 1;
		return check_compressed(img, host, nsect * 512 - (host & 511),
		    voff);
	}
	host = ent & QCOW2_ENTRY_OFFSET_MASK;
	if (host % q->cs != 0)
		return image_defect(img, FINDING_MISALIGNED,
		    "data cluster offset 0x%llx (virtual "
		    "0x%llx) is not cluster aligned",
		    (unsigned long long)host, (unsigned long long)voff);
	if (q->extended_l2)
		return check_subclusters(img, host, be64(p + 8), voff);
	if ((ent & QCOW2_OFLAG_ZERO) || host == 0)
		return 0;	/* reads as zeros: a gap */
	return qcow2_claim_data(img, host, voff, q->cs);
}

/* Entries of one L2 table that the virtual size uses. */
static uint64_t l2_entries_used(const struct image *img, uint32_t l1_index)
{
	const struct qcow2 *q = img->priv;
	uint64_t left = img->virtual_size - l1_index * q->l2_span;
	uint64_t n = left / q->cs + (left % q->cs != 0);

	return n < q->l2_entries ? n : q->l2_entries;
}

static int qcow2_check_l2(struct image *img, uint32_t l1_index,
    const unsigned char *tab)
{
	struct qcow2 *q = img->priv;
	uint64_t vstart = l1_index * q->l2_span, n, i;
	size_t esize = q->extended_l2 ? 16 : 8;

	n = l2_entries_used(img, l1_index);
	for (i = 0; i < n; i++)
		if (check_l2_entry(img, tab + i * esize,
		    vstart + i * q->cs) < 0)
			return -1;
	return 0;
}

typedef int (*extent_fn)(struct image *img, struct emitter *em,
    const struct qext *e);

static int emit_extent(struct image *img, struct emitter *em,
    struct qext *e, extent_fn fn)
{
	if (e->voff >= img->virtual_size)
		return 0;
	if (e->len > img->virtual_size - e->voff)
		e->len = img->virtual_size - e->voff;
	return fn(img, em, e);
}

/* Allocated subclusters, as runs of adjacent ones. */
static int qcow2_subclusters(struct image *img, struct emitter *em,
    uint64_t voff, uint64_t host, uint64_t bitmap, extent_fn fn)
{
	struct qcow2 *q = img->priv;
	uint32_t alloc = bitmap & 0xffffffffu;
	uint64_t sc = q->cs / QCOW2_SUBCLUSTERS;
	struct qext e;
	int i = 0, j;

	while (i < QCOW2_SUBCLUSTERS) {
		if (!(alloc >> i & 1)) {
			i++;
			continue;
		}
		for (j = i; j < QCOW2_SUBCLUSTERS && (alloc >> j & 1); j++)
			;
		e = (struct qext){ voff + i * sc, host + i * sc,
		    (uint32_t)((j - i) * sc), 0 };
		if (emit_extent(img, em, &e, fn) < 0)
			return -1;
		i = j;
	}
	return 0;
}

/* An entry of a checked table (qcow2_check_l2) as extents. */
static int qcow2_l2_entry(struct image *img, struct emitter *em,
    const unsigned char *p, uint64_t voff, extent_fn fn)
{
	struct qcow2 *q = img->priv;
	uint64_t ent = be64(p), host, nsect;
	struct qext e;

	if (ent & QCOW2_OFLAG_COMPRESSED) {
		host = ent & q->coff_mask;
		nsect = ((ent >> q->csize_shift) & q->csize_mask) + 1;
		e = (struct qext){ voff, host, (uint32_t)q->cs,
		    (uint32_t)(nsect * 512 - (host & 511)) };
		return emit_extent(img, em, &e, fn);
	}
	host = ent & QCOW2_ENTRY_OFFSET_MASK;
	if (q->extended_l2)
		return qcow2_subclusters(img, em, voff, host, be64(p + 8), fn);
	if ((ent & QCOW2_OFLAG_ZERO) || host == 0)
		return 0;	/* reads as zeros: a gap */
	e = (struct qext){ voff, host, (uint32_t)q->cs, 0 };
	return emit_extent(img, em, &e, fn);
}

static int qcow2_walk_l2(struct image *img, struct emitter *em,
    uint32_t l1_index, const unsigned char *tab, extent_fn fn)
{
	struct qcow2 *q = img->priv;
	uint64_t vstart = l1_index * q->l2_span, n, i;
	size_t esize = q->extended_l2 ? 16 : 8;

	n = l2_entries_used(img, l1_index);
	for (i = 0; i < n; i++)
		if (qcow2_l2_entry(img, em, tab + i * esize,
		    vstart + i * q->cs, fn) < 0)
			return -1;
	return 0;
}

/* ---- compressed clusters ---- */

static int qcow2_inflate(struct image *img, const unsigned char *in,
    size_t inlen, size_t *used)
{
	struct qcow2 *q = img->priv;
	int ret;

	if (!q->zs_ready) {
		if (inflateInit2(&q->zs, -15) != Z_OK)
			return fail(EXIT_IO, "out of memory");
		q->zs_ready = true;
	} else if (inflateReset(&q->zs) != Z_OK) {
		return fail(EXIT_IO, "zlib: cannot reset");
	}
	q->zs.next_in = (unsigned char *)in;
	q->zs.avail_in = inlen;
	q->zs.next_out = q->cluster;
	q->zs.avail_out = q->cs;
	ret = inflate(&q->zs, Z_FINISH);
	if (q->zs.avail_out != 0 || (ret != Z_STREAM_END && ret != Z_OK &&
	    ret != Z_BUF_ERROR))
		return -1;
	*used = inlen - q->zs.avail_in;
	return 0;
}

static int qcow2_unzstd(struct image *img, const unsigned char *in,
    size_t inlen, size_t *used)
{
	struct qcow2 *q = img->priv;
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { q->cluster, q->cs, 0 };
	size_t ret, before;

	if (q->zd == NULL) {
		q->zd = ZSTD_createDCtx();
		if (q->zd == NULL)
			return fail(EXIT_IO, "out of memory");
		/* A window no larger than needed for 2 MiB clusters. */
		ZSTD_DCtx_setParameter(q->zd, ZSTD_d_windowLogMax, 23);
	}
	ZSTD_DCtx_reset(q->zd, ZSTD_reset_session_only);
	while (ob.pos < ob.size) {
		before = ib.pos + ob.pos;
		ret = ZSTD_decompressStream(q->zd, &ob, &ib);
		if (ZSTD_isError(ret) || ib.pos + ob.pos == before)
			return -1;
	}
	*used = ib.pos;
	return 0;
}

/* Decompress one cluster into q->cluster; *used: input bytes consumed. */
static int qcow2_decompress(struct image *img, const struct qext *e,
    const unsigned char *in, size_t inlen, size_t *used)
{
	struct qcow2 *q = img->priv;
	int rc;

	if (q->cluster == NULL && (q->cluster = malloc(q->cs)) == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = q->compression_type == 1 ? qcow2_unzstd(img, in, inlen, used)
	    : qcow2_inflate(img, in, inlen, used);
	if (rc < 0 && err_status() == 0)
		return image_bad(img, "compressed cluster at 0x%llx (virtual "
		    "0x%llx) does not decompress to %llu bytes (%s)",
		    (unsigned long long)e->host, (unsigned long long)e->voff,
		    (unsigned long long)q->cs,
		    q->compression_type == 1 ? "zstd" : "deflate");
	return rc;
}

/*
 * ---- compressed clusters in batches ----
 * A conversion from a file queues its compressed clusters, inflates them
 * together on every core, then emits them in virtual order.  A cluster
 * the pool does not take goes through qcow2_decompress, which says why in
 * its usual words (or takes it: its first cluster of output is enough).
 * An error met while clusters wait is reported after theirs.
 */
struct qbatch {
	struct inflate_pool pool;
	struct qext *ext;		/* per item of the pool */
};

static void batch_start(struct image *img, struct qbatch *b)
{
	struct qcow2 *q = img->priv;

	memset(b, 0, sizeof *b);
	if (!img->walk && !img->inspect)
		q->batch = b;
}

/* At the first compressed cluster: most images have none. */
static int batch_pool(struct image *img, struct qbatch *b)
{
	struct qcow2 *q = img->priv;

	if (b->pool.ready)
		return 0;
	if (inflate_pool_init(&b->pool, q->compression_type == 1 ?
	    INFLATE_ZSTD_FULL : INFLATE_RAW_FULL, q->cs,
	    (q->csize_mask + 1) * 512, img->threads) < 0)
		return -1;
	b->ext = calloc(b->pool.cap, sizeof *b->ext);
	return b->ext == NULL ? fail(EXIT_IO, "out of memory") : 0;
}

static void batch_end(struct image *img, struct qbatch *b)
{
	struct qcow2 *q = img->priv;

	inflate_pool_free(&b->pool);
	free(b->ext);
	q->batch = NULL;
}

static int batch_emit(struct image *img, struct emitter *em,
    const struct qext *e, const struct inflate_item *it)
{
	struct qcow2 *q = img->priv;
	const unsigned char *out = it->out;
	size_t used;

	if (!it->ok) {
		if (qcow2_decompress(img, e, it->in, it->inlen, &used) < 0)
			return -1;
		out = q->cluster;
	}
	if (emit_upto(em, e->voff) < 0)
		return -1;
	return emit_data(em, e->voff, out, e->len);
}

static int batch_flush(struct image *img, struct emitter *em)
{
	struct qbatch *b = ((struct qcow2 *)img->priv)->batch;
	int rc = 0;

	if (b == NULL || b->pool.n == 0)
		return 0;
	inflate_pool_run(&b->pool);
	for (size_t i = 0; i < b->pool.n && rc == 0; i++)
		rc = batch_emit(img, em, &b->ext[i], &b->pool.items[i]);
	inflate_pool_clear(&b->pool);
	return rc;
}

/* A later step failed: the clusters before it first.  Returns -1. */
static int batch_fail(struct image *img, struct emitter *em)
{
	struct qbatch *b = ((struct qcow2 *)img->priv)->batch;
	struct err_saved later;

	if (b == NULL || b->pool.n == 0)
		return -1;
	err_save(&later);
	err_clear();
	if (batch_flush(img, em) == 0)
		err_restore(&later);
	return -1;
}

/* Read compressed cluster e into the batch (seek_compressed's read). */
static int batch_compressed(struct image *img, struct emitter *em,
    const struct qext *e)
{
	struct qbatch *b = ((struct qcow2 *)img->priv)->batch;
	size_t inlen = e->clen;
	unsigned char *p;

	if (batch_pool(img, b) < 0)
		return -1;
	if (past_end(img, e->host, inlen))
		inlen = img->src->size - e->host;
	p = inflate_pool_room(&b->pool, inlen);
	if (p == NULL && batch_flush(img, em) < 0)
		return -1;
	if (p == NULL)
		p = inflate_pool_room(&b->pool, inlen);
	if (image_read_at(img, p, inlen, e->host, "compressed cluster") < 0)
		return -1;
	b->ext[b->pool.n] = *e;
	inflate_pool_add(&b->pool, inlen);
	return 0;
}

/* ---- seekable input: virtual order, large reads ---- */

static int seek_flush_run(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;
	struct qext *r = &q->run;

	if (r->len == 0)
		return 0;
	if (emit_upto(em, r->voff) < 0 ||
	    image_emit_range(img, em, q->buf, r->len, r->host, r->len,
	    r->voff) < 0)
		return -1;
	r->len = 0;
	return 0;
}

static int seek_compressed(struct image *img, struct emitter *em,
    const struct qext *e)
{
	struct qcow2 *q = img->priv;
	size_t inlen = e->clen, used;

	if (past_end(img, e->host, inlen))
		inlen = img->src->size - e->host;
	/* Walking: the descriptor was checked; nothing is inflated. */
	if (img->walk)
		return emit_upto(em, e->voff) < 0 ? -1
		    : emit_zero(em, e->voff, e->len);
	if (image_read_at(img, q->buf, inlen, e->host, "compressed cluster") < 0 ||
	    qcow2_decompress(img, e, q->buf, inlen, &used) < 0 ||
	    emit_upto(em, e->voff) < 0)
		return -1;
	return emit_data(em, e->voff, q->cluster, e->len);
}

static int seek_extent(struct image *img, struct emitter *em,
    const struct qext *e)
{
	struct qcow2 *q = img->priv;
	struct qext *r = &q->run;

	if (e->clen != 0 && q->batch != NULL)
		return seek_flush_run(img, em) < 0 ? -1
		    : batch_compressed(img, em, e);
	if (e->clen != 0)
		return seek_flush_run(img, em) < 0 ? -1
		    : seek_compressed(img, em, e);
	if (batch_flush(img, em) < 0)
		return -1;
	if (r->len > 0 && r->host + r->len == e->host &&
	    r->voff + r->len == e->voff && r->len + e->len <= q->wcap) {
		r->len += e->len;
		return 0;
	}
	if (seek_flush_run(img, em) < 0)
		return -1;
	*r = *e;
	return 0;
}

/*
 * Every L2 table's checks before any data is read, in host order as a
 * pipe meets them; a truncation last (cut_note).  A table that runs past
 * the end ends the walk: a pipe reads nothing after it either.
 */
static int qcow2_check_seekable(struct image *img)
{
	struct qcow2 *q = img->priv;
	const struct pending_l2 *pl;
	size_t i;

	for (i = 0; i < q->nl2q; i++) {
		pl = &q->l2q[i];
		if (past_end(img, pl->host, q->cs)) {
			cut_note(q, "L2 table", pl->host, 0, false);
			break;
		}
		if (image_read_at(img, q->l2buf, q->cs, pl->host,
		    "L2 table") < 0 ||
		    qcow2_check_l2(img, pl->l1_index, q->l2buf) < 0)
			return -1;
	}
	if (q->cut.what != NULL)
		return cut_report(img, &q->cut);
	return 0;
}

static int seek_l2_tables(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;
	uint32_t i;

	if (qcow2_check_seekable(img) < 0)
		return -1;
	/* walking: nothing left to check; the emitter ends with zeros */
	if (img->walk)
		return 0;
	for (i = 0; i < q->l1_used; i++) {
		if (q->l1[i] == 0)
			continue;
		if (image_read_at(img, q->l2buf, q->cs, q->l1[i], "L2 table") < 0 ||
		    qcow2_walk_l2(img, em, i, q->l2buf, seek_extent) < 0)
			return -1;
	}
	if (batch_flush(img, em) < 0)
		return -1;
	return seek_flush_run(img, em);
}

static int qcow2_read_seekable(struct image *img, struct emitter *em)
{
	struct qbatch b;
	int rc;

	batch_start(img, &b);
	rc = seek_l2_tables(img, em);
	if (rc < 0)
		batch_fail(img, em);
	batch_end(img, &b);
	return rc;
}

/* ---- streams: strictly forward ---- */

/*
 * From a pipe, bytes that pass before the L2 table that places them are
 * kept by the source (source_retain(): the one parking store, charged to
 * --mem and spilled beyond it), from the start until every L2 table is
 * read; an extent read back is released.  After the last table, data is
 * read in host order and only a compressed cluster's read is kept: its
 * stated length runs into the next one's bytes, read again next.
 */
static bool tables_due(const struct qcow2 *q)
{
	return q->st->l2next < q->nl2q;
}

/*
 * The stream moves forward to off: keep what passes, all of it while
 * tables are due, else from off on (what lies below is read).
 */
static int stream_keep(struct image *img, uint64_t off)
{
	struct qcow2 *q = img->priv;

	return source_retain(img->src, img->stash, tables_due(q) ? 0 : off);
}

/*
 * Host bytes [off, off + len) to buf: behind the stream position from
 * what the source kept, ahead by reading on (the bytes on the way kept).
 * Unless capture, the bytes read ahead are not kept: they are consumed
 * at once (an L2 table; plain data that no extent ahead reads again).
 * *got: how many there were before the input ended; *fresh: where the
 * kept bytes that reads, not the way to them, brought start.
 */
static int stream_read(struct image *img, unsigned char *buf, uint64_t off,
    size_t len, bool capture, const char *what, size_t *got,
    uint64_t *fresh)
{
	struct qstream *st = ((struct qcow2 *)img->priv)->st;
	struct source *s = img->src;
	size_t n = 0;
	ssize_t r;

	if (off < s->pos) {
		n = s->pos - off < len ? s->pos - off : len;
		if (image_read_at(img, buf, n, off, what) < 0)
			return -1;
	}
	if (n < len) {
		if (stream_keep(img, off) < 0 ||
		    (off + n > s->pos && image_skip_to(img, off + n) < 0))
			return -1;
		if (!capture)
			source_retain_stop(s);
		/* a compressed cluster's read runs on into the next one's */
		if (!capture)
			st->read_from = UINT64_MAX;
		else if (off + n != st->read_end)
			st->read_from = off + n;
		while (n < len) {
			r = image_read_forward(img, buf + n, len - n);
			if (r < 0)
				return -1;
			if (r == 0)
				break;
			n += r;
		}
		st->read_end = capture ? s->pos : UINT64_MAX;
	}
	*got = n;
	*fresh = st->read_from > off ? st->read_from : off;
	return 0;
}

/* Host bytes [off, off + len), all of them, or a truncation. */
static int stream_read_all(struct image *img, unsigned char *buf,
    uint64_t off, size_t len, bool capture, const char *what)
{
	size_t got;
	uint64_t fresh;

	if (stream_read(img, buf, off, len, capture, what, &got, &fresh) < 0)
		return -1;
	if (got < len)
		return image_defect(img, FINDING_TRUNCATED,
		    "image is truncated at 0x%llx",
		    (unsigned long long)img->src->pos);
	return 0;
}

/*
 * The first truncation in host order once the stream has ended at pos,
 * as a file finds it (cut_note): c, or the refcount table before it.
 */
static const struct qcut *stream_first_cut(struct qcow2 *q,
    const struct qcut *c, uint64_t pos)
{
	if (rt_crosses(q, pos) && (c->what == NULL || q->rt_off < c->host)) {
		q->cut = (struct qcut){ "refcount table", q->rt_off, 0, false };
		return &q->cut;
	}
	return c;
}

/*
 * A stream read that met the end of the input: reported as a file reports
 * it (cut_report), naming the cluster where the input ends or, when it
 * ends before e, e's; e NULL: the L2 table at l2_host.  Other failures
 * stand as they are.
 */
static int stream_cut(struct image *img, const struct qext *e,
    uint64_t l2_host)
{
	struct qcow2 *q = img->priv;
	struct qcut c = { "L2 table", l2_host, 0, false };
	uint64_t miss;

	if (e != NULL && e->clen != 0) {
		c = (struct qcut){ "compressed cluster", e->host, e->voff, true };
	} else if (e != NULL) {
		/* a run is contiguous on both sides: voff follows host */
		miss = img->src->pos > e->host ? img->src->pos : e->host;
		c.what = "data cluster";
		c.host = miss - miss % q->cs;
		c.voff = e->voff - e->host + c.host;
		c.has_voff = true;
	}
	return renamed_cut(img, stream_first_cut(q, &c, img->src->pos));
}

/*
 * A compressed cluster that does not decompress waits until the end of
 * the stream, as a file finds it only after every table's checks and
 * truncation; of several, the first in virtual order, as a file reads
 * them.  Its place stays a gap.
 */
static int stream_bad_cluster(struct image *img, const struct qext *e)
{
	struct qstream *st = ((struct qcow2 *)img->priv)->st;

	if (!err_rejects_image())
		return -1;
	if (st->bad[0] == '\0' || e->voff < st->bad_voff) {
		snprintf(st->bad, sizeof st->bad, "%s", err_msg());
		st->bad_voff = e->voff;
	}
	err_clear();
	return 0;
}

/* Where the lowest extent still ahead starts: bytes from there are wanted. */
static uint64_t stream_wanted(const struct qstream *st)
{
	return st->nahead > 0 ? st->ahead[0].host : UINT64_MAX;
}

/* Bytes [from, end) are read and used: give back what nothing ahead wants. */
static void stream_done(struct image *img, uint64_t from, uint64_t end)
{
	uint64_t wanted = stream_wanted(((struct qcow2 *)img->priv)->st);

	if (end > wanted)
		end = wanted;
	if (end > from)
		source_release(img->src, from, end - from);
}

/*
 * Plain data ahead that no extent ahead reads again: the way to it is
 * kept as stream_read() keeps it, and the run goes straight from the
 * input (from a pipe into a pipe, in the kernel: image_copy_range).
 */
static int stream_direct(struct image *img, struct emitter *em,
    const struct qext *e)
{
	struct qcow2 *q = img->priv;
	struct source *s = img->src;

	if (stream_keep(img, e->host) < 0 ||
	    (e->host > s->pos && image_skip_to(img, e->host) < 0))
		return stream_cut(img, e, 0);
	source_retain_stop(s);
	q->st->read_from = q->st->read_end = UINT64_MAX;
	if (image_copy_range(img, em, q->buf, q->wcap, e->host, e->len,
	    e->voff, "data cluster") < 0)
		return stream_cut(img, e, 0);
	stream_done(img, e->host, e->host + e->len);
	return 0;
}

static int stream_emit(struct image *img, struct emitter *em,
    const struct qext *e)
{
	struct qcow2 *q = img->priv;
	size_t len, used;
	uint64_t fresh;

	if (e->clen == 0 && !img->walk && e->host >= img->src->pos &&
	    stream_wanted(q->st) >= e->host + e->len)
		return stream_direct(img, em, e);
	if (e->clen == 0) {
		/* kept as it is read if an extent ahead reads it again */
		if (stream_read_all(img, q->buf, e->host, e->len,
		    stream_wanted(q->st) < e->host + e->len, "data cluster") < 0)
			return stream_cut(img, e, 0);
		stream_done(img, e->host, e->host + e->len);
		return emit_data(em, e->voff, q->buf, e->len);
	}
	/* its stated length may run past the end of the input */
	if (stream_read(img, q->buf, e->host, e->clen, true,
	    "compressed cluster", &len, &fresh) < 0)
		return stream_cut(img, e, 0);
	if (len == 0) {
		image_defect(img, FINDING_TRUNCATED, "image is truncated at "
		    "0x%llx", (unsigned long long)img->src->pos);
		return stream_cut(img, e, 0);
	}
	if (qcow2_decompress(img, e, q->buf, len, &used) < 0)
		return stream_bad_cluster(img, e);
	/*
	 * What reads brought and it used is given back; its stated rest may
	 * be the next one's.  Bytes passed before its table stay until every
	 * table is read, as another entry may name them.
	 */
	stream_done(img, fresh, e->host + used);
	return emit_data(em, e->voff, q->cluster, e->len);
}

static void u64_push(uint64_t *h, size_t *n, uint64_t v)
{
	size_t i = (*n)++;

	h[i] = v;
	while (i > 0 && h[(i - 1) / 2] > h[i]) {
		uint64_t t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void u64_pop(uint64_t *h, size_t *n)
{
	size_t i = 0, c;
	uint64_t t;

	h[0] = h[--*n];
	for (;;) {
		c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[i] <= h[c])
			break;
		t = h[i];
		h[i] = h[c];
		h[c] = t;
		i = c;
	}
}

static int ahead_push(struct image *img, const struct qext *e)
{
	struct qstream *st = ((struct qcow2 *)img->priv)->st;
	size_t i;

	/* vheap keeps taken offsets until they reach its top: it may outgrow ahead */
	if (st->nahead == st->capahead || st->nvheap == st->capv) {
		size_t cap = st->capahead ? st->capahead * 2 : 1024;
		struct qext *a;
		uint64_t *v, *d;

		if (st->nahead >= AHEAD_MAX)
			return image_bad(img, "more than %u clusters mapped "
			    "ahead of the stream position; read the image from "
			    "a file instead", AHEAD_MAX);
		a = realloc(st->ahead, cap * sizeof *a);
		if (a != NULL)
			st->ahead = a;
		v = realloc(st->vheap, cap * sizeof *v);
		if (v != NULL)
			st->vheap = v;
		d = realloc(st->vdone, cap * sizeof *d);
		if (d != NULL)
			st->vdone = d;
		if (a == NULL || v == NULL || d == NULL)
			return fail(EXIT_IO, "out of memory");
		st->capahead = st->capv = cap;
	}
	i = st->nahead++;
	st->ahead[i] = *e;
	while (i > 0 && st->ahead[(i - 1) / 2].host > st->ahead[i].host) {
		struct qext t = st->ahead[i];

		st->ahead[i] = st->ahead[(i - 1) / 2];
		st->ahead[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	u64_push(st->vheap, &st->nvheap, e->voff);
	return 0;
}

static void ahead_pop(struct qstream *st, struct qext *out)
{
	size_t i = 0, c;
	struct qext t;

	*out = st->ahead[0];
	st->ahead[0] = st->ahead[--st->nahead];
	for (;;) {
		c = 2 * i + 1;
		if (c >= st->nahead)
			break;
		if (c + 1 < st->nahead &&
		    st->ahead[c + 1].host < st->ahead[c].host)
			c++;
		if (st->ahead[i].host <= st->ahead[c].host)
			break;
		t = st->ahead[i];
		st->ahead[i] = st->ahead[c];
		st->ahead[c] = t;
		i = c;
	}
	u64_push(st->vdone, &st->nvdone, out->voff);
}

/* An extent from an L2 table: place it now if passed, else wait for it. */
static int stream_extent(struct image *img, struct emitter *em,
    const struct qext *e)
{
	if (e->host < img->src->pos)
		return stream_emit(img, em, e);
	return ahead_push(img, e);
}

static int stream_l2(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;
	struct qstream *st = q->st;
	struct pending_l2 *pl = &q->l2q[st->l2next];

	if (stream_read_all(img, q->l2buf, pl->host, q->cs, false,
	    "L2 table") < 0)
		return stream_cut(img, NULL, pl->host);
	source_release(img->src, pl->host, q->cs);
	st->l2done[pl->l1_index] = 1;
	/* still due while its entries are placed: what they read is kept */
	if (qcow2_check_l2(img, pl->l1_index, q->l2buf) < 0 ||
	    qcow2_walk_l2(img, em, pl->l1_index, q->l2buf, stream_extent) < 0)
		return -1;
	st->l2next++;
	/* every table read: what lies behind is placed and read */
	if (!tables_due(q))
		return source_retain(img->src, img->stash, SOURCE_RETAIN_NONE);
	return 0;
}

/* The next mapped data: host-contiguous neighbours are read as one. */
static int stream_data(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;
	struct qstream *st = q->st;
	struct qext e, next;

	ahead_pop(st, &e);
	while (e.clen == 0 && st->nahead > 0) {
		next = st->ahead[0];
		if (next.clen != 0 || next.host != e.host + e.len ||
		    next.voff != e.voff + e.len || e.len + next.len > RUN_MAX)
			break;
		ahead_pop(st, &next);
		e.len += next.len;
	}
	return stream_emit(img, em, &e);
}

/* Below the returned offset nothing more will come: gaps there are zero. */
static uint64_t stream_low_water(struct image *img)
{
	struct qcow2 *q = img->priv;
	struct qstream *st = q->st;
	uint64_t low;

	while (st->first_unread < q->l1_used &&
	    (q->l1[st->first_unread] == 0 || st->l2done[st->first_unread]))
		st->first_unread++;
	low = st->first_unread < q->l1_used
	    ? st->first_unread * q->l2_span : img->virtual_size;
	while (st->nvheap > 0 && st->nvdone > 0 &&
	    st->vheap[0] == st->vdone[0]) {
		u64_pop(st->vheap, &st->nvheap);
		u64_pop(st->vdone, &st->nvdone);
	}
	if (st->nvheap > 0 && st->vheap[0] < low)
		low = st->vheap[0];
	return low;
}

static int stream_setup(struct image *img)
{
	struct qcow2 *q = img->priv;
	struct qstream *st = q->st;

	st->l2done = calloc(q->l1_used + 1, 1);
	if (st->l2done == NULL)
		return fail(EXIT_IO, "out of memory");
	st->read_from = st->read_end = UINT64_MAX;
	source_release(img->src, q->l1_off, (uint64_t)q->l1_used * 8);
	if (!tables_due(q))
		return source_retain(img->src, img->stash, SOURCE_RETAIN_NONE);
	return 0;
}

static int stream_drain_input(struct image *img)
{
	struct qcow2 *q = img->priv;
	ssize_t n;

	do
		n = image_read_forward(img, q->buf, q->wcap);
	while (n > 0);
	return n < 0 ? -1 : 0;
}

static int qcow2_read_stream(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;
	struct qstream *st = q->st;
	struct qcut cut = { 0 };
	const struct qcut *c;

	if (stream_setup(img) < 0)
		return -1;
	while (st->l2next < q->nl2q || st->nahead > 0) {
		if (st->l2next < q->nl2q && (st->nahead == 0 ||
		    q->l2q[st->l2next].host <= st->ahead[0].host)) {
			if (stream_l2(img, em) < 0)
				return -1;
		} else if (stream_data(img, em) < 0) {
			return -1;
		}
		if (emit_upto(em, stream_low_water(img)) < 0)
			return -1;
	}
	/* Read to the end so a writer into our pipe finishes cleanly: keep
	 * nothing of it (the last compressed cluster's read kept its rest). */
	if (source_retain(img->src, img->stash, SOURCE_RETAIN_NONE) < 0 ||
	    stream_drain_input(img) < 0)
		return -1;
	/* Now the size is known: the last data cluster must be whole, the
	 * refcount table in the file. */
	if (img->src->pos < q->data_end)
		cut = (struct qcut){ "data cluster", q->data_end_host,
		    q->data_end_voff, true };
	c = stream_first_cut(q, &cut, img->src->pos);
	if (c->what != NULL)
		return cut_report(img, c);
	if (st->bad[0] != '\0')
		return fail_code(EXIT_REJECT, FINDING_MALFORMED, "%s", st->bad);
	return 0;
}

/* ---- the reader ---- */

static int qcow2_read(struct image *img, struct emitter *em)
{
	struct qcow2 *q = img->priv;

	q->wcap = 2 * q->cs + 1024 > RUN_MAX ? 2 * q->cs + 1024 : RUN_MAX;
	q->buf = bigbuf_alloc(q->wcap);
	q->l2buf = malloc(q->cs);
	if (q->buf == NULL || q->l2buf == NULL)
		return fail(EXIT_IO, "out of memory");
	if (!img->src->seekable) {
		q->st = calloc(1, sizeof *q->st);
		if (q->st == NULL)
			return fail(EXIT_IO, "out of memory");
		/* Data may come before the L1 table: keep all, unplaced. */
		if (source_retain(img->src, img->stash, 0) < 0)
			return -1;
	}
	if (qcow2_read_l1(img) < 0 || qcow2_map_l2_tables(img) < 0)
		return -1;
	if (img->src->seekable)
		return qcow2_read_seekable(img, em);
	return qcow2_read_stream(img, em);
}

static void qcow2_close(struct image *img)
{
	struct qcow2 *q = img->priv;
	struct qstream *st;

	if (q == NULL)
		return;
	st = q->st;
	if (st != NULL) {
		(void)source_retain(img->src, img->stash, SOURCE_RETAIN_NONE);
		free(st->l2done);
		free(st->ahead);
		free(st->vheap);
		free(st->vdone);
		free(st);
	}
	if (q->zs_ready)
		inflateEnd(&q->zs);
	ZSTD_freeDCtx(q->zd);
	free(q->l1);
	free(q->l2_sorted);
	free(q->l2q);
	host_claims_free(&q->data);
	free(q->l2buf);
	bigbuf_free(q->buf);
	free(q->cluster);
	free(q);
	img->priv = NULL;
}

const struct format format_qcow2 = {
	.name = "qcow2",
	.desc = "QEMU copy-on-write v2 and v3 (zlib/zstd, subclusters)",
	.bid = qcow2_bid,
	.open = qcow2_open,
	.read = qcow2_read,
	.close = qcow2_close,
};
