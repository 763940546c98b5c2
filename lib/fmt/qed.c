/*
 * qed: QEMU Enhanced Disk (QEMU docs/interop/qed_spec, block/qed.h).
 *
 * A header cluster, an L1 table, L2 tables of le64 host offsets, data
 * clusters.  Offset 0 is unallocated, offset 1 a cluster that reads as
 * zeros.  Seekable input is read in virtual order, one coalesced read per
 * run of host-contiguous clusters.  From a pipe the file is walked
 * forward: QEMU allocates a data cluster before the L2 table that maps
 * it, so clusters met before any table claims them are parked in the
 * stash, keyed by host offset, until a table says where they belong.
 *
 * QED_F_NEED_CHECK (image not closed cleanly) is accepted: QEMU itself
 * reads such an image as it is when opened read-only, as qemu-img convert
 * does, and every table entry is checked here before use anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "fmt/qed.h"
#include "imgpipe/err.h"

#define QED_READ_MAX (4u * 1024 * 1024)

enum qed_item_kind { QED_ITEM_TABLE, QED_ITEM_DATA };

/* Stream mode: something known to lie ahead in the file. */
struct qed_item {
	uint64_t host;
	uint64_t virt;		/* data: virtual offset */
	uint32_t l1_index;	/* table: its L1 entry; data: its table */
	uint32_t kind : 1;
	uint32_t awaited_index : 31;	/* data: its place in awaited */
};

#define QED_AWAITED_DONE UINT32_MAX	/* an awaited entry that arrived */

/*
 * Stream mode, per L1 entry: what of its virtual range is still to come.
 * An unread table may map anything in its range; a read one, exactly the
 * entries in awaited (ascending) not yet marked QED_AWAITED_DONE.
 */
struct qed_table_state {
	uint32_t *awaited;
	uint32_t nawaited, next;
	bool unread;
};

/* Stream mode: a cluster read before any table mapped it. */
struct qed_parked {
	uint64_t host;
	struct stash_ref ref;
	int taken;
};

struct qed {
	uint64_t cluster_size;
	uint64_t table_bytes;	/* table_size clusters */
	uint64_t table_entries;
	uint64_t header_bytes;
	uint64_t l1_offset;
	uint64_t span;		/* virtual bytes one L2 table maps */
	uint64_t nclusters;	/* virtual clusters */
	uint32_t n_l1;		/* L1 entries that map the virtual size */
	uint64_t *l1;
	struct host_claims claims;	/* host clusters in use */
	uint64_t data_end, data_end_virt;	/* the last data cluster */
	unsigned char *buf;	/* QED_READ_MAX bytes, or a cluster if larger */
	/* stream mode */
	struct qed_item *heap;
	size_t nitems, capitems;
	struct qed_parked *parked;
	size_t nparked, capparked, parked_from;
	struct qed_table_state *tables;	/* n_l1 of them */
	uint32_t low;		/* first L1 entry with anything still to come */
	uint64_t tables_ahead;
};

static int qed_bid(const struct probe *pb)
{
	if (pb->headlen >= QED_MAGIC_LEN &&
	    memcmp(pb->head, QED_MAGIC, QED_MAGIC_LEN) == 0)
		return BID_SIGNATURE;
	return BID_NONE;
}

static bool is_pow2(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

/* The backing file's name, printable, for the rejection message. */
static void qed_backing_name(struct image *img, const unsigned char *h,
    uint64_t header_bytes, char *out, size_t outlen)
{
	uint32_t off = le32(h + QED_HDR_BACKING_OFF);
	uint32_t len = le32(h + QED_HDR_BACKING_LEN), i;
	const unsigned char *head = img->src->head;
	size_t n = 0;

	snprintf(out, outlen, "(unreadable name)");
	if (len == 0 || (uint64_t)off + len > header_bytes ||
	    (uint64_t)off + len > img->src->headlen)
		return;
	for (i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char c = head[off + i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}

/*
 * From a pipe, a read that ran out of input: true, with the error cleared,
 * for the caller to name what lies past the end as a file names it.
 */
static bool qed_ran_out(struct image *img)
{
	if (!err_rejects_image() || !img->src->raw_eof)
		return false;
	err_clear();
	return true;
}

static int qed_l1_past_end(struct image *img, const struct qed *q)
{
	return image_defect(img, FINDING_TRUNCATED, "L1 table at 0x%llx "
	    "lies past the end of the image (l1_table_offset)",
	    (unsigned long long)q->l1_offset);
}

static int qed_table_past_end(struct image *img, const struct qed *q,
    uint32_t i)
{
	return image_defect(img, FINDING_TRUNCATED, "L2 table at 0x%llx "
	    "lies past the end of the image (L1 entry %u)",
	    (unsigned long long)q->l1[i], i);
}

static int qed_check_header(struct image *img, struct qed *q,
    const unsigned char *h)
{
	struct source *src = img->src;
	uint32_t cluster = le32(h + QED_HDR_CLUSTER_SIZE);
	uint32_t table_size = le32(h + QED_HDR_TABLE_SIZE);
	uint32_t header_size = le32(h + QED_HDR_HEADER_SIZE);
	uint64_t features = le64(h + QED_HDR_FEATURES);
	uint64_t vsize = le64(h + QED_HDR_IMAGE_SIZE);
	char name[256];

	if (cluster < QED_MIN_CLUSTER || cluster > QED_MAX_CLUSTER ||
	    !is_pow2(cluster))
		return image_bad(img, "cluster_size %u is not a power of two "
		    "from 4 KiB to 64 MiB (header offset 4)", cluster);
	if (table_size < QED_MIN_TABLE_SIZE || table_size > QED_MAX_TABLE_SIZE ||
	    !is_pow2(table_size))
		return image_bad(img, "table_size %u is not a power of two "
		    "from 1 to 16 (header offset 8)", table_size);
	q->cluster_size = cluster;
	q->table_bytes = (uint64_t)table_size * cluster;
	q->table_entries = q->table_bytes / QED_ENTRY_LEN;
	q->header_bytes = (uint64_t)header_size * cluster;
	/* Past the end, the L1 table is too: found below, from a pipe too. */
	if (header_size == 0 || header_size > UINT32_MAX / cluster)
		return image_bad(img, "header_size of %u clusters is zero or "
		    "too large (header offset 12)", header_size);
	/*
	 * Unknown compat_features and autoclear_features bits are safe to
	 * ignore by definition; unknown features bits are not.
	 */
	if (features & ~QED_KNOWN_FEATURES)
		return image_bad(img, "unsupported feature bits 0x%llx "
		    "(header offset 16)", (unsigned long long)
		    (features & ~QED_KNOWN_FEATURES));
	img->dirty = (features & QED_F_NEED_CHECK) != 0;
	if (features & QED_F_BACKING_FILE) {
		qed_backing_name(img, h, q->header_bytes, name, sizeof name);
		snprintf(img->backing, sizeof img->backing, "%s", name);
		if (features & QED_F_BACKING_FORMAT_NO_PROBE)
			strcpy(img->backing_format, "raw");
		if (image_unsafe(img, "backing-file", "image has a backing file "
		    "'%s', which is never opened", name) < 0)
			return -1;
	}
	/* The largest disk two levels of tables can map, without overflow. */
	if (vsize % 512 != 0 ||
	    vsize / cluster / q->table_entries > q->table_entries)
		return image_bad(img, "image_size %llu is not a multiple of 512 "
		    "or more than the tables can map (header offset 48)",
		    (unsigned long long)vsize);
	img->virtual_size = vsize;
	img->cluster_size = cluster;
	q->span = q->table_entries * cluster;
	q->nclusters = (vsize + cluster - 1) / cluster;
	q->n_l1 = (q->nclusters + q->table_entries - 1) / q->table_entries;
	q->l1_offset = le64(h + QED_HDR_L1_OFF);
	if (q->l1_offset < q->header_bytes)
		return image_defect(img, FINDING_OVERLAP, "L1 table at 0x%llx "
		    "lies inside the header (l1_table_offset)",
		    (unsigned long long)q->l1_offset);
	if (q->l1_offset % cluster != 0)
		return image_defect(img, FINDING_MISALIGNED, "L1 table at "
		    "0x%llx is not cluster aligned (l1_table_offset)",
		    (unsigned long long)q->l1_offset);
	if (q->l1_offset > UINT64_MAX - q->table_bytes ||
	    (src->size_known && q->l1_offset + q->table_bytes > src->size))
		return qed_l1_past_end(img, q);
	if ((uint64_t)q->n_l1 * 8 > IMAGE_META_MAX)
		return image_bad(img, "L1 table of %u entries is beyond the "
		    "limit of %llu bytes", q->n_l1,
		    (unsigned long long)IMAGE_META_MAX);
	return 0;
}

/*
 * Host clusters in use: the header, the L1 table and every L2 table the L1
 * names (metadata), then the data clusters as the tables are read.  Every
 * table is claimed before any data, so that the finding for a cluster used
 * twice is the same whichever order file and pipe meet the tables in.
 */
static int qed_claim(struct image *img, struct qed *q, uint64_t host,
    uint64_t len, enum host_use use, const char *what)
{
	q->claims.unit = q->cluster_size;
	return host_claim(img, &q->claims, host, len, use, what);
}

static int qed_open(struct image *img)
{
	unsigned char h[QED_HEADER_LEN];
	struct qed *q;
	uint32_t i;

	q = calloc(1, sizeof *q);
	if (q == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = q;
	if (image_read_at(img, h, sizeof h, 0, "header") < 0 ||
	    qed_check_header(img, q, h) < 0)
		return -1;
	snprintf(img->subformat, sizeof img->subformat, "%s",
	    le64(h + QED_HDR_FEATURES) & QED_F_NEED_CHECK ? "needs-check" : "");
	if (qed_claim(img, q, 0, q->header_bytes, HOST_META, "header") < 0 ||
	    qed_claim(img, q, q->l1_offset, q->table_bytes, HOST_META,
	    "L1 table") < 0)
		return -1;
	q->l1 = malloc((size_t)q->n_l1 * 8 + 8);
	/* From a pipe whole clusters are parked: the buffer must hold one. */
	q->buf = malloc(q->cluster_size > QED_READ_MAX ? q->cluster_size
	    : QED_READ_MAX);
	if (q->l1 == NULL || q->buf == NULL)
		return fail(EXIT_IO, "out of memory");
	/*
	 * From a pipe, the L1 table may come after data clusters (qemu-img
	 * puts it first; other layouts do not): keep what passes on the way
	 * to it, for the tables that place it later.
	 */
	if (!img->src->seekable &&
	    source_retain(img->src, img->stash, q->header_bytes) < 0)
		return -1;
	/* Only the entries that map the virtual size are read. */
	if (image_read_at(img, q->l1, (size_t)q->n_l1 * 8,
	    q->l1_offset, "L1 table") < 0)
		return qed_ran_out(img) ? qed_l1_past_end(img, q) : -1;
	for (i = 0; i < q->n_l1; i++)
		q->l1[i] = le64((unsigned char *)&q->l1[i]);
	return 0;
}

/* Where an L2 table may lie: aligned, past the header, inside the file. */
static int qed_check_table(struct image *img, struct qed *q, uint32_t i)
{
	uint64_t off = q->l1[i];
	struct source *src = img->src;

	if (off % q->cluster_size != 0)
		return image_defect(img, FINDING_MISALIGNED, "L2 table at "
		    "0x%llx is not cluster aligned (L1 entry %u)",
		    (unsigned long long)off, i);
	if (off > UINT64_MAX - q->table_bytes ||
	    (src->size_known && off + q->table_bytes > src->size))
		return qed_table_past_end(img, q, i);
	return qed_claim(img, q, off, q->table_bytes, HOST_META, "L2 table");
}

static int qed_past_end(struct image *img, uint64_t host, uint64_t virt)
{
	return image_defect(img, FINDING_TRUNCATED, "data cluster at 0x%llx "
	    "lies past the end of the image (L2 entry for virtual offset "
	    "0x%llx)", (unsigned long long)host, (unsigned long long)virt);
}

/* Where a data cluster may lie; len is what of it the disk uses. */
static int qed_check_data(struct image *img, struct qed *q, uint64_t host,
    uint64_t len, uint64_t virt)
{
	struct source *src = img->src;

	if (host % q->cluster_size != 0)
		return image_defect(img, FINDING_MISALIGNED, "data cluster at "
		    "0x%llx is not cluster aligned (L2 entry for virtual offset "
		    "0x%llx)", (unsigned long long)host,
		    (unsigned long long)virt);
	/* A cluster is whole in the file, its unused end included. */
	(void)len;
	if (host > UINT64_MAX - q->cluster_size ||
	    (src->size_known && host + q->cluster_size > src->size))
		return qed_past_end(img, host, virt);
	if (host + q->cluster_size > q->data_end) {
		q->data_end = host + q->cluster_size;
		q->data_end_virt = virt;
	}
	return qed_claim(img, q, host, q->cluster_size, HOST_DATA,
	    "data cluster");
}

/* Entries of table i that map the virtual size. */
static uint64_t qed_table_used(const struct qed *q, uint32_t i)
{
	uint64_t left = q->nclusters - (uint64_t)i * q->table_entries;

	return left < q->table_entries ? left : q->table_entries;
}

/* Bytes of the cluster at virt that belong to the disk. */
static uint64_t qed_cluster_len(const struct image *img, const struct qed *q,
    uint64_t virt)
{
	uint64_t left = img->virtual_size - virt;

	return left < q->cluster_size ? left : q->cluster_size;
}

static int qed_read_table(struct image *img, struct qed *q, uint32_t i,
    unsigned char **out)
{
	uint64_t bytes = qed_table_used(q, i) * 8;

	if (bytes > IMAGE_META_MAX)
		return image_bad(img, "L2 table of %llu bytes is beyond the "
		    "limit of %llu bytes", (unsigned long long)bytes,
		    (unsigned long long)IMAGE_META_MAX);
	*out = malloc(bytes);
	if (*out == NULL)
		return fail(EXIT_IO, "out of memory");
	if (image_read_at(img, *out, bytes, q->l1[i], "L2 table") < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Read len bytes at host and emit them at virt, in QED_READ_MAX pieces. */
static int qed_copy(struct image *img, struct qed *q, struct emitter *em,
    uint64_t host, uint64_t virt, uint64_t len)
{
	/* walking a file, image_emit_range checks the range, reads nothing */
	if (img->walk)
		return image_emit_range(img, em, q->buf, QED_READ_MAX, host, len,
		    virt);
	return image_copy_range(img, em, q->buf, QED_READ_MAX, host, len, virt,
	    "data cluster");
}

/* Seekable input: runs of clusters contiguous in both host and virtual. */
struct qed_run {
	uint64_t virt, host, len;
	bool zero;
};

static int qed_flush(struct image *img, struct qed *q, struct emitter *em,
    struct qed_run *r)
{
	int rc = 0;

	if (r->len == 0)
		return 0;
	if (emit_upto(em, r->virt) < 0)
		return -1;
	rc = r->zero ? emit_zero(em, r->virt, r->len)
	    : qed_copy(img, q, em, r->host, r->virt, r->len);
	r->len = 0;
	return rc;
}

static int qed_add(struct image *img, struct qed *q, struct emitter *em,
    struct qed_run *r, const struct qed_run *c)
{
	if (r->len > 0 && r->zero == c->zero && r->virt + r->len == c->virt &&
	    (c->zero || r->host + r->len == c->host) &&
	    (c->zero || r->len < QED_READ_MAX)) {
		r->len += c->len;
		return 0;
	}
	if (qed_flush(img, q, em, r) < 0)
		return -1;
	*r = *c;
	return 0;
}

static int qed_read_seekable_table(struct image *img, struct qed *q,
    struct emitter *em, uint32_t i, struct qed_run *run)
{
	unsigned char *t;
	uint64_t j, n = qed_table_used(q, i), host;
	struct qed_run c;
	int rc = -1;

	if (qed_read_table(img, q, i, &t) < 0)
		return -1;
	for (j = 0; j < n; j++) {
		host = le64(t + 8 * j);
		if (host == QED_CLUSTER_FREE)
			continue;
		c.virt = (i * q->table_entries + j) * q->cluster_size;
		c.len = qed_cluster_len(img, q, c.virt);
		c.host = host;
		c.zero = host == QED_CLUSTER_ZERO;
		if (!c.zero && qed_check_data(img, q, host, c.len, c.virt) < 0)
			goto out;
		if (qed_add(img, q, em, run, &c) < 0)
			goto out;
	}
	rc = 0;
out:
	free(t);
	return rc;
}

static int qed_read_seekable(struct image *img, struct qed *q,
    struct emitter *em)
{
	struct qed_run run = { 0 };
	uint32_t i;

	for (i = 0; i < q->n_l1; i++)
		if (q->l1[i] != 0 &&
		    qed_read_seekable_table(img, q, em, i, &run) < 0)
			return -1;
	return qed_flush(img, q, em, &run);
}

/* Stream mode: a min-heap of what lies ahead, by host offset. */
static int qed_push(struct image *img, struct qed *q,
    const struct qed_item *it)
{
	size_t i;

	if ((q->nitems + 1) * sizeof *q->heap > IMAGE_META_MAX)
		return image_bad(img, "more than %llu clusters lie ahead in "
		    "the stream", (unsigned long long)q->nitems);
	if (stash_grow_array(img->stash, &q->heap, q->nitems, &q->capitems,
	    sizeof *q->heap, 256) < 0)
		return -1;
	i = q->nitems++;
	q->heap[i] = *it;
	while (i > 0 && q->heap[(i - 1) / 2].host > q->heap[i].host) {
		struct qed_item t = q->heap[i];

		q->heap[i] = q->heap[(i - 1) / 2];
		q->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static void qed_pop(struct qed *q, struct qed_item *out)
{
	size_t i = 0, c;

	*out = q->heap[0];
	q->heap[0] = q->heap[--q->nitems];
	for (;;) {
		struct qed_item t;

		c = 2 * i + 1;
		if (c >= q->nitems)
			break;
		if (c + 1 < q->nitems && q->heap[c + 1].host < q->heap[c].host)
			c++;
		if (q->heap[i].host <= q->heap[c].host)
			break;
		t = q->heap[i];
		q->heap[i] = q->heap[c];
		q->heap[c] = t;
		i = c;
	}
}

/* Park the whole clusters of [from, to) until a table claims them. */
static int qed_park_region(struct image *img, struct qed *q, uint64_t from,
    uint64_t to)
{
	uint64_t c = (from + q->cluster_size - 1) / q->cluster_size *
	    q->cluster_size;
	struct qed_parked *p;
	int rc;

	for (; c < to; c += q->cluster_size) {
		if ((q->nparked + 1) * sizeof *q->parked > IMAGE_META_MAX)
			return image_bad(img, "more than %llu clusters precede "
			    "their L2 tables", (unsigned long long)q->nparked);
		/* the records count in the store's budget, as the clusters */
		if (stash_grow_array(img->stash, &q->parked, q->nparked,
		    &q->capparked, sizeof *q->parked, 256) < 0)
			return -1;
		p = &q->parked[q->nparked];
		rc = image_read_at(img, q->buf, q->cluster_size, c,
		    "data cluster");
		if (rc < 0 || stash_put(img->stash, q->buf, q->cluster_size,
		    &p->ref) < 0)
			return -1;
		p->host = c;
		p->taken = 0;
		q->nparked++;
	}
	return 0;
}

static struct qed_parked *qed_find_parked(struct qed *q, uint64_t host)
{
	size_t lo = q->parked_from, hi = q->nparked;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (q->parked[mid].host < host)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < q->nparked && q->parked[lo].host == host &&
	    !q->parked[lo].taken)
		return &q->parked[lo];
	return NULL;
}

static void qed_drop_parked(struct image *img, struct qed *q)
{
	size_t i;

	for (i = q->parked_from; i < q->nparked; i++)
		if (!q->parked[i].taken)
			stash_drop(img->stash, &q->parked[i].ref);
	q->parked_from = q->nparked = 0;
}

/*
 * Promise the emitter that nothing below the first virtual cluster still
 * to come will arrive, so that it can deliver up to there without parking.
 */
static int qed_emit_low_water(struct qed *q, struct emitter *em)
{
	struct qed_table_state *st;

	for (; q->low < q->n_l1; q->low++) {
		st = &q->tables[q->low];
		if (st->unread)
			break;
		while (st->next < st->nawaited &&
		    st->awaited[st->next] == QED_AWAITED_DONE)
			st->next++;
		if (st->next < st->nawaited)
			return emit_upto(em, (uint64_t)q->low * q->span +
			    (uint64_t)st->awaited[st->next] * q->cluster_size);
		free(st->awaited);
		st->awaited = NULL;
	}
	return emit_upto(em, (uint64_t)q->low * q->span);
}

/*
 * A cluster already behind the stream: parked after the L1 table, or kept
 * by the source on the way to it (the claims have refused a cluster named
 * twice or inside metadata before this).
 */
static int qed_unpark(struct image *img, struct qed *q, struct emitter *em,
    uint64_t host, uint64_t virt, uint64_t len)
{
	struct qed_parked *p = qed_find_parked(q, host);

	if (p == NULL) {
		if (image_read_at(img, q->buf, len, host, "data cluster") < 0)
			return -1;
		source_release(img->src, host, q->cluster_size);
		return emit_data(em, virt, q->buf, len);
	}
	if (stash_take(img->stash, &p->ref, q->buf) < 0)
		return -1;
	p->taken = 1;
	return emit_data(em, virt, q->buf, len);
}

static int qed_stream_table(struct image *img, struct qed *q,
    struct emitter *em, const struct qed_item *it)
{
	uint32_t i = it->l1_index;
	uint64_t j, n = qed_table_used(q, i), host, pos;
	struct qed_item d = { .kind = QED_ITEM_DATA, .l1_index = i };
	struct qed_table_state *st = &q->tables[i];
	unsigned char *t;
	int rc = -1;

	/* The unused end of the table is not data: skip it. */
	if (qed_read_table(img, q, i, &t) < 0 ||
	    image_skip_to(img, q->l1[i] + q->table_bytes) < 0) {
		free(t);
		return qed_ran_out(img) ? qed_table_past_end(img, q, i) : -1;
	}
	pos = img->src->pos;
	q->tables_ahead--;
	st->unread = false;
	st->awaited = malloc(n * sizeof *st->awaited + 4);
	if (st->awaited == NULL) {
		free(t);
		return fail(EXIT_IO, "out of memory");
	}
	for (j = 0; j < n; j++) {
		host = le64(t + 8 * j);
		d.virt = (i * q->table_entries + j) * q->cluster_size;
		if (host == QED_CLUSTER_FREE)
			continue;
		if (host == QED_CLUSTER_ZERO) {
			if (emit_zero(em, d.virt, qed_cluster_len(img, q,
			    d.virt)) < 0)
				goto out;
			continue;
		}
		if (qed_check_data(img, q, host, qed_cluster_len(img, q, d.virt),
		    d.virt) < 0)
			goto out;
		if (host < pos) {
			if (qed_unpark(img, q, em, host, d.virt,
			    qed_cluster_len(img, q, d.virt)) < 0)
				goto out;
			continue;
		}
		d.host = host;
		d.awaited_index = st->nawaited;
		if (qed_push(img, q, &d) < 0)
			goto out;
		st->awaited[st->nawaited++] = j;
	}
	if (q->tables_ahead == 0) {
		qed_drop_parked(img, q);
		if (source_retain(img->src, img->stash, SOURCE_RETAIN_NONE) < 0)
			goto out;
	}
	rc = qed_emit_low_water(q, em);
out:
	free(t);
	return rc;
}

static int qed_stream_item(struct image *img, struct qed *q,
    struct emitter *em, const struct qed_item *it)
{
	uint64_t pos = img->src->pos;

	if (it->host < pos)
		return image_bad(img, "%s at 0x%llx overlaps another table or "
		    "cluster (a loop or duplicate reference)",
		    it->kind == QED_ITEM_TABLE ? "L2 table" : "data cluster",
		    (unsigned long long)it->host);
	if (it->host > pos && q->tables_ahead > 0 &&
	    qed_park_region(img, q, pos, it->host) < 0) {
		/* Running out of input while parking: name what was ahead. */
		if (!qed_ran_out(img))
			return -1;
		return it->kind == QED_ITEM_TABLE ?
		    qed_table_past_end(img, q, it->l1_index) :
		    qed_past_end(img, it->host, it->virt);
	}
	if (it->kind == QED_ITEM_TABLE)
		return qed_stream_table(img, q, em, it);
	if (qed_copy(img, q, em, it->host, it->virt,
	    qed_cluster_len(img, q, it->virt)) < 0)
		return qed_ran_out(img) ? qed_past_end(img, it->host, it->virt)
		    : -1;
	q->tables[it->l1_index].awaited[it->awaited_index] = QED_AWAITED_DONE;
	return qed_emit_low_water(q, em);
}

/* Read to the end: then the last data cluster must have been whole. */
static int qed_stream_end(struct image *img, struct qed *q)
{
	ssize_t n;

	do
		n = image_read_forward(img, q->buf, QED_READ_MAX);
	while (n > 0);
	if (n < 0)
		return -1;
	if (img->src->pos < q->data_end)
		return qed_past_end(img, q->data_end - q->cluster_size,
		    q->data_end_virt);
	return 0;
}

static int qed_read_stream(struct image *img, struct qed *q,
    struct emitter *em)
{
	struct qed_item it = { .kind = QED_ITEM_TABLE };
	uint32_t i;

	if (((uint64_t)q->n_l1 + 1) * sizeof *q->tables > IMAGE_META_MAX)
		return image_bad(img, "L1 table of %u entries is beyond the "
		    "limit for reading from a pipe", q->n_l1);
	q->tables = calloc((size_t)q->n_l1 + 1, sizeof *q->tables);
	if (q->tables == NULL)
		return fail(EXIT_IO, "out of memory");
	/* Whatever the L1 table holds past its used entries is not data. */
	if (image_skip_to(img, q->l1_offset + q->table_bytes) < 0)
		return qed_ran_out(img) ? qed_l1_past_end(img, q) : -1;
	for (i = 0; i < q->n_l1; i++) {
		if (q->l1[i] == QED_CLUSTER_FREE)
			continue;
		it.host = q->l1[i];
		it.l1_index = i;
		if (qed_push(img, q, &it) < 0)
			return -1;
		q->tables[i].unread = true;
		q->tables_ahead++;
	}
	if (qed_emit_low_water(q, em) < 0)
		return -1;
	while (q->nitems > 0) {
		qed_pop(q, &it);
		if (qed_stream_item(img, q, em, &it) < 0)
			return -1;
	}
	return qed_stream_end(img, q);
}

static int qed_read(struct image *img, struct emitter *em)
{
	struct qed *q = img->priv;
	uint32_t i;

	for (i = 0; i < q->n_l1; i++)
		if (q->l1[i] != QED_CLUSTER_FREE && qed_check_table(img, q, i) < 0)
			return -1;
	return img->src->seekable ? qed_read_seekable(img, q, em)
	    : qed_read_stream(img, q, em);
}

static void qed_close(struct image *img)
{
	struct qed *q = img->priv;
	uint32_t i;

	if (q == NULL)
		return;
	if (!img->src->seekable)
		(void)source_retain(img->src, img->stash, SOURCE_RETAIN_NONE);
	qed_drop_parked(img, q);
	if (q->capparked > 0)
		stash_charge(img->stash, -(int64_t)(q->capparked *
		    sizeof *q->parked + STASH_MALLOC_OVERHEAD));
	free(q->parked);
	if (q->capitems > 0)
		stash_charge(img->stash, -(int64_t)(q->capitems *
		    sizeof *q->heap + STASH_MALLOC_OVERHEAD));
	free(q->heap);
	if (q->tables != NULL)
		for (i = 0; i < q->n_l1; i++)
			free(q->tables[i].awaited);
	free(q->tables);
	host_claims_free(&q->claims);
	free(q->buf);
	free(q->l1);
	free(q);
}

const struct format format_qed = {
	.name = "qed",
	.desc = "QEMU Enhanced Disk (backing files rejected)",
	.bid = qed_bid,
	.open = qed_open,
	.read = qed_read,
	.close = qed_close,
};
