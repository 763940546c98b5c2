/*
 * parallels: Parallels and Virtuozzo ploop expanding images (QEMU
 * docs/interop/parallels.txt, block/parallels.c).
 *
 * A 64-byte header, then the BAT: one le32 per cluster, 0 when the cluster
 * is unallocated, otherwise its host offset in sectors ("WithoutFreeSpace")
 * or in clusters ("WithouFreSpacExt", the ploop image).  The whole BAT
 * precedes the data, so a pipe is read forward in host order; the emitter
 * parks what comes out of virtual order.
 *
 * An image still marked in use (not closed cleanly) is read as it is, as
 * QEMU reads it read-only; every BAT entry is checked before use anyway.
 * The format extension cluster (dirty bitmaps) is not needed to read the
 * disk: only its offset is checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "fmt/parallels/parallels.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"

#define PRL_MAX_CLUSTER_SECTORS (INT32_MAX / 513)	/* QEMU's limit */
#define PRL_READ_MAX (4u * 1024 * 1024)

struct prl {
	uint64_t cluster_size;
	uint64_t unit;		/* bytes per BAT unit: 512, or a cluster */
	uint64_t bat_end;	/* end of header and BAT in the file */
	uint64_t data_start;	/* clusters lie at or after this */
	uint32_t data_off;	/* header fields checked against the input's */
	uint64_t ext_off;	/* end, from a file at open, a pipe at its end */
	uint32_t nclusters;	/* BAT entries that map the virtual size */
	uint32_t *bat;
	uint64_t *order;	/* allocated entries: bat << 32 | index */
	size_t nalloc;
	unsigned char *buf;	/* PRL_READ_MAX bytes */
};

static int prl_bid(const struct probe *pb)
{
	if (pb->headlen >= PRL_MAGIC_LEN &&
	    (memcmp(pb->head, PRL_MAGIC_V1, PRL_MAGIC_LEN) == 0 ||
	    memcmp(pb->head, PRL_MAGIC_V2, PRL_MAGIC_LEN) == 0))
		return BID_SIGNATURE;
	return BID_NONE;
}

static int prl_check_header(struct image *img, struct prl *p,
    const unsigned char *h)
{
	bool v2 = memcmp(h + PRL_HDR_MAGIC, PRL_MAGIC_V2, PRL_MAGIC_LEN) == 0;
	uint32_t version = le32(h + PRL_HDR_VERSION);
	uint32_t tracks = le32(h + PRL_HDR_TRACKS);
	uint32_t nbat = le32(h + PRL_HDR_BAT_ENTRIES);
	uint32_t data_off = le32(h + PRL_HDR_DATA_OFF);
	uint64_t nsectors = le64(h + PRL_HDR_NB_SECTORS);
	uint64_t ext_off = le64(h + PRL_HDR_EXT_OFF);

	if (version != PRL_VERSION)
		return image_bad(img, "version %u is not %u (header offset 16)",
		    version, PRL_VERSION);
	if (tracks == 0 || tracks > PRL_MAX_CLUSTER_SECTORS)
		return image_bad(img, "cluster size of %u sectors is zero or too "
		    "large (tracks, header offset 28)", tracks);
	if (!v2)	/* old images keep garbage in the high half */
		nsectors &= 0xffffffffu;
	if (nsectors > IMAGE_VSIZE_MAX / PRL_SECTOR_SIZE)
		return image_bad(img, "virtual size of %llu sectors is beyond "
		    "the limit of %llu bytes (nb_sectors, header offset 36)",
		    (unsigned long long)nsectors,
		    (unsigned long long)IMAGE_VSIZE_MAX);
	if ((uint64_t)nbat * tracks < nsectors)
		return image_bad(img, "%u BAT entries of %u sectors cannot map "
		    "%llu sectors (bat_entries, header offset 32)", nbat, tracks,
		    (unsigned long long)nsectors);
	p->cluster_size = (uint64_t)tracks * PRL_SECTOR_SIZE;
	p->unit = v2 ? p->cluster_size : PRL_SECTOR_SIZE;
	p->bat_end = PRL_HEADER_LEN + (uint64_t)nbat * PRL_BAT_ENTRY_LEN;
	p->nclusters = (nsectors + tracks - 1) / tracks;
	img->virtual_size = nsectors * PRL_SECTOR_SIZE;
	img->cluster_size = p->cluster_size;
	p->data_start = (uint64_t)data_off * PRL_SECTOR_SIZE;
	p->data_off = data_off;
	p->ext_off = ext_off;
	if (data_off != 0 && p->data_start < PRL_HEADER_LEN +
	    (uint64_t)p->nclusters * PRL_BAT_ENTRY_LEN)
		return image_defect(img, FINDING_OVERLAP, "data_off of %u "
		    "sectors lies inside the BAT (header offset 48)", data_off);
	if (ext_off != 0 && ext_off <= UINT64_MAX / PRL_SECTOR_SIZE - 1 &&
	    ext_off * PRL_SECTOR_SIZE < p->bat_end)
		return image_defect(img, FINDING_OVERLAP, "format extension at "
		    "sector %llu lies inside the header or BAT (ext_off, header "
		    "offset 56)", (unsigned long long)ext_off);
	if (ext_off > UINT64_MAX / PRL_SECTOR_SIZE - 1)
		return image_defect(img, FINDING_TRUNCATED,
		    "format extension at sector %llu lies "
		    "past the end of the image (ext_off, header offset 56)",
		    (unsigned long long)ext_off);
	if ((uint64_t)p->nclusters * PRL_BAT_ENTRY_LEN > IMAGE_META_MAX)
		return image_bad(img, "BAT of %u entries is beyond the limit of "
		    "%llu bytes (bat_entries)", p->nclusters,
		    (unsigned long long)IMAGE_META_MAX);
	snprintf(img->subformat, sizeof img->subformat, "%s%s",
	    v2 ? "ploop" : "v1", le32(h + PRL_HDR_INUSE) == PRL_INUSE_OPEN ? ", in use" : "");
	return 0;
}

/* Bytes of cluster i that belong to the disk. */
static uint64_t prl_cluster_len(const struct image *img, const struct prl *p,
    uint64_t i)
{
	uint64_t left = img->virtual_size - i * p->cluster_size;

	return left < p->cluster_size ? left : p->cluster_size;
}

/*
 * Sort the allocated entries by host offset and check them: past the BAT,
 * inside the file, and no two clusters sharing host space (a loop).
 */
static int prl_check_bat(struct image *img, struct prl *p)
{
	uint64_t host, prev_end = p->bat_end, k;
	uint32_t i;
	size_t n = 0;

	for (i = 0; i < p->nclusters; i++)
		n += p->bat[i] != 0;
	if (n * 8 > IMAGE_META_MAX)
		return image_bad(img, "%zu allocated clusters are beyond the "
		    "limit of %llu bytes of tables", n,
		    (unsigned long long)IMAGE_META_MAX);
	p->order = malloc(n * 8 + 8);
	if (p->order == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < p->nclusters; i++)
		if (p->bat[i] != 0)
			p->order[p->nalloc++] = (uint64_t)p->bat[i] << 32 | i;
	sort_u64(p->order, p->nalloc);
	for (k = 0; k < p->nalloc; k++) {
		i = (uint32_t)p->order[k];
		host = (p->order[k] >> 32) * p->unit;
		if (k > 0 && p->order[k] >> 32 == p->order[k - 1] >> 32)
			return image_defect(img, FINDING_SHARED_BLOCK, "BAT entry "
			    "%u: cluster at 0x%llx is referenced twice", i,
			    (unsigned long long)host);
		if (host < prev_end)
			return image_defect(img, FINDING_OVERLAP, "BAT entry %u: "
			    "cluster at 0x%llx overlaps %s", i,
			    (unsigned long long)host, k == 0 ? "the header "
			    "and BAT" : "another cluster");
		if (host < p->data_start)
			return image_defect(img, FINDING_OUT_OF_RANGE, "BAT entry "
			    "%u: cluster at 0x%llx lies before data_off", i,
			    (unsigned long long)host);
		prev_end = host + p->cluster_size;
	}
	return 0;
}

/*
 * The rules that need the input's end, after every rule that does not, so
 * that a file (at open) and a pipe (at its end, size = bytes read) meet the
 * same first fault: data_off, the format extension, then the clusters in
 * host order, each whole in the file, its unused end included.
 */
static int prl_check_end(struct image *img, const struct prl *p,
    uint64_t size)
{
	uint64_t host;
	size_t k;

	if (p->data_off != 0 && p->data_start > size)
		return image_defect(img, FINDING_TRUNCATED, "data_off of %u "
		    "sectors lies past the end of the image (header offset 48)",
		    p->data_off);
	if (p->ext_off != 0 && p->ext_off * PRL_SECTOR_SIZE >= size)
		return image_defect(img, FINDING_TRUNCATED,
		    "format extension at sector %llu lies "
		    "past the end of the image (ext_off, header offset 56)",
		    (unsigned long long)p->ext_off);
	for (k = 0; k < p->nalloc; k++) {
		host = (p->order[k] >> 32) * p->unit;
		if (host + p->cluster_size > size)
			return image_defect(img, FINDING_TRUNCATED,
			    "BAT entry %u: cluster at 0x%llx lies past the end "
			    "of the image", (uint32_t)p->order[k],
			    (unsigned long long)host);
	}
	return 0;
}

static int prl_open(struct image *img)
{
	unsigned char h[PRL_HEADER_LEN];
	struct prl *p;
	uint32_t i;

	p = calloc(1, sizeof *p);
	if (p == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = p;
	if (image_read_at(img, h, sizeof h, 0, "header") < 0 ||
	    prl_check_header(img, p, h) < 0)
		return -1;
	p->bat = malloc((size_t)p->nclusters * PRL_BAT_ENTRY_LEN + 4);
	p->buf = bigbuf_alloc(PRL_READ_MAX);
	if (p->bat == NULL || p->buf == NULL)
		return fail(EXIT_IO, "out of memory");
	/* Only the entries that map the virtual size are read. */
	if (image_read_at(img, p->bat, (size_t)p->nclusters * PRL_BAT_ENTRY_LEN,
	    PRL_HEADER_LEN, "BAT") < 0)
		return -1;
	for (i = 0; i < p->nclusters; i++)
		p->bat[i] = le32((unsigned char *)&p->bat[i]);
	if (prl_check_bat(img, p) < 0)
		return -1;
	return img->src->size_known ? prl_check_end(img, p, img->src->size) : 0;
}

/* Read len bytes at host and emit them at virt, in PRL_READ_MAX pieces. */
static int prl_copy(struct image *img, struct prl *p, struct emitter *em,
    uint64_t host, uint64_t virt, uint64_t len)
{
	/* walking a file, image_emit_range checks the range, reads nothing */
	if (img->walk)
		return image_emit_range(img, em, p->buf, PRL_READ_MAX, host, len,
		    virt);
	return image_copy_range(img, em, p->buf, PRL_READ_MAX, host, len, virt,
	    "cluster");
}

/* Seekable: virtual order, one read per run contiguous in the file. */
static int prl_read_seekable(struct image *img, struct prl *p,
    struct emitter *em)
{
	uint64_t run_virt = 0, run_host = 0, run_len = 0, host, virt, len;
	uint32_t i;

	for (i = 0; i < p->nclusters; i++) {
		if (p->bat[i] == 0)
			continue;
		host = (uint64_t)p->bat[i] * p->unit;
		virt = (uint64_t)i * p->cluster_size;
		len = prl_cluster_len(img, p, i);
		if (run_len > 0 && run_virt + run_len == virt &&
		    run_host + run_len == host && run_len < PRL_READ_MAX) {
			run_len += len;
			continue;
		}
		if (run_len > 0 && (emit_upto(em, run_virt) < 0 ||
		    prl_copy(img, p, em, run_host, run_virt, run_len) < 0))
			return -1;
		run_virt = virt;
		run_host = host;
		run_len = len;
	}
	if (run_len > 0 && (emit_upto(em, run_virt) < 0 ||
	    prl_copy(img, p, em, run_host, run_virt, run_len) < 0))
		return -1;
	return 0;
}

/* Read to the end, then check what a file checks at open. */
static int prl_stream_end(struct image *img, struct prl *p)
{
	ssize_t n;

	do
		n = image_read_forward(img, p->buf, PRL_READ_MAX);
	while (n > 0);
	if (n < 0)
		return -1;
	return prl_check_end(img, p, img->src->pos);
}

/*
 * Stream: host order.  After each cluster, every virtual cluster below the
 * first one still to come is final, so the emitter can deliver up to it.
 */
static int prl_read_stream(struct image *img, struct prl *p,
    struct emitter *em)
{
	uint32_t i, low = 0;
	uint64_t k;

	for (k = 0; k < p->nalloc; k++) {
		i = (uint32_t)p->order[k];
		if (prl_copy(img, p, em, (p->order[k] >> 32) * p->unit,
		    (uint64_t)i * p->cluster_size, prl_cluster_len(img, p, i)) < 0) {
			/* the input ended: name the fault a file names */
			if (!err_rejects_image() || !img->src->raw_eof)
				return -1;
			err_clear();
			return prl_stream_end(img, p);
		}
		p->bat[i] = 0;
		while (low < p->nclusters && p->bat[low] == 0)
			low++;
		if (emit_upto(em, (uint64_t)low * p->cluster_size) < 0)
			return -1;
	}
	return prl_stream_end(img, p);
}

static int prl_read(struct image *img, struct emitter *em)
{
	struct prl *p = img->priv;

	return img->src->seekable ? prl_read_seekable(img, p, em)
	    : prl_read_stream(img, p, em);
}

static void prl_close(struct image *img)
{
	struct prl *p = img->priv;

	if (p == NULL)
		return;
	free(p->bat);
	free(p->order);
	bigbuf_free(p->buf);
	free(p);
}

const struct format format_parallels = {
	.name = "parallels",
	.desc = "Parallels or Virtuozzo ploop expanding image",
	.bid = prl_bid,
	.open = prl_open,
	.read = prl_read,
	.close = prl_close,
};
