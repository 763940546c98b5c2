/*
 * The ploop writer (lib/fmt/parallels/parallels.h has the layout): a
 * Parallels expandable image in ploop's version 2 format
 * ("WithouFreSpacExt", BAT entries in clusters), with 1 MiB clusters, the
 * Image service's "ploop" disk format; laid out as qemu-img lays it out:
 * the 64-byte header, the BAT, padding to the first cluster boundary
 * (data_off), then the clusters in virtual order.
 *
 * Clusters of zeros are not allocated (BAT entry 0).  The k-th cluster
 * with data is host cluster data_off / cluster + k, so the BAT is
 * generated from the plan: before the data into a pipe, after it into a
 * file.  The image is closed (inuse 0) and carries no format extension.
 */
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bytes.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "fmt/parallels/parallels.h"

#define CLUSTER		PRL_CLUSTER_DEFAULT
/* The header's geometry is informative; qemu-img writes this one. */
#define GEO_HEADS	16u
#define GEO_SECTORS	32u

struct ploopw {
	uint64_t nclusters;	/* BAT entries */
	uint64_t data_at;	/* the first cluster (data_off) */
	uint64_t nput;		/* clusters put so far */
	unsigned char header[PRL_HEADER_LEN];
};

static int write_header(struct wimage *w, struct ploopw *p)
{
	unsigned char *h = p->header;
	uint64_t sectors = w->virtual_size / PRL_SECTOR_SIZE;

	memset(h, 0, PRL_HEADER_LEN);
	memcpy(h + PRL_HDR_MAGIC, PRL_MAGIC_V2, PRL_MAGIC_LEN);
	put_le32(h + PRL_HDR_VERSION, PRL_VERSION);
	put_le32(h + PRL_HDR_HEADS, GEO_HEADS);
	put_le32(h + PRL_HDR_CYLINDERS, (uint32_t)(sectors / GEO_HEADS /
	    GEO_SECTORS));
	put_le32(h + PRL_HDR_TRACKS, CLUSTER / PRL_SECTOR_SIZE);
	put_le32(h + PRL_HDR_BAT_ENTRIES, (uint32_t)p->nclusters);
	put_le64(h + PRL_HDR_NB_SECTORS, sectors);
	put_le32(h + PRL_HDR_INUSE, PRL_INUSE_CLOSED);
	put_le32(h + PRL_HDR_DATA_OFF, (uint32_t)(p->data_at /
	    PRL_SECTOR_SIZE));
	/* flags 0, ext_off 0: no format extension */
	return wfile_write(w->out, h, PRL_HEADER_LEN, 0);
}

/* BAT entry of cluster `slot`: the k-th cluster with data, or none. */
static void bat_entry(const void *ctx, unsigned char *e, uint64_t slot,
    uint64_t k)
{
	const struct ploopw *p = ctx;

	(void)slot;
	put_le32(e, k == WTABLE_EMPTY ? 0 :
	    (uint32_t)(p->data_at / CLUSTER + k));
}

static int write_metadata(struct wimage *w, struct ploopw *p)
{
	struct wtable t = {
		.off = PRL_HEADER_LEN,
		.nslots = p->nclusters,
		.entry_size = PRL_BAT_ENTRY_LEN,
		.len = p->data_at - PRL_HEADER_LEN,
		.pad = 0,
		.grains_per_unit = 1,
		.entry = bat_entry,
		.ctx = p,
	};

	return write_header(w, p) < 0 || wtable_write(w, &t) < 0 ? -1 : 0;
}

static int ploopw_setup(struct wimage *w)
{
	w->grain = CLUSTER;
	/* our reader's BAT limit (qemu takes up to 2^29 clusters) */
	w->max_size = IMAGE_META_MAX / PRL_BAT_ENTRY_LEN * (uint64_t)CLUSTER;
	return 0;
}

static int ploopw_begin(struct wimage *w)
{
	struct ploopw *p = w->priv;
	uint64_t bat_end;

	p->nclusters = (w->virtual_size + CLUSTER - 1) / CLUSTER;
	bat_end = PRL_HEADER_LEN + p->nclusters * PRL_BAT_ENTRY_LEN;
	p->data_at = (bat_end + CLUSTER - 1) / CLUSTER * CLUSTER;
	p->nput = 0;
	return w->layout == WLAYOUT_PLANNED ? write_metadata(w, p) : 0;
}

static int ploopw_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct ploopw *p = w->priv;

	(void)index;
	(void)encoded;
	if (data == NULL)
		return 0;	/* unallocated clusters read as zeros */
	return wfile_put(w->out, data, len, p->data_at + p->nput++ * CLUSTER);
}

static int ploopw_finish(struct wimage *w)
{
	struct ploopw *p = w->priv;

	if (w->layout != WLAYOUT_PLANNED && write_metadata(w, p) < 0)
		return -1;
	return wfile_end(w->out, p->data_at + wplan_count(w) * CLUSTER);
}

const struct writer writer_ploop = {
	.name = "ploop",
	.state_size = sizeof(struct ploopw),
	.flags = 0,
	.setup = ploopw_setup,
	.begin = ploopw_begin,
	.put = ploopw_put,
	.finish = ploopw_finish,
};
