/*
 * The VDI writer (lib/fmt/vdi/vdi.h has the layout): dynamic, the
 * default, and static ("fixed"), laid out as VirtualBox lays out a new
 * image: the pre-header and a 1.1 header (VDIHEADER1PLUS, 400 bytes), the
 * block map from 1 MiB, the blocks from the next MiB boundary after it,
 * 1 MiB each.
 *
 * A dynamic image allocates a block for each block of the disk with
 * data, in virtual order: the k-th such block is host block k, so the
 * block map is generated from the plan, before the data into a pipe and
 * after it into a file; blocks without data are free (they read as
 * zeros).  A static image has every block, in order: its header and map
 * depend only on the size, so it goes straight through, zero blocks as
 * holes in a file; its disk lies in place from offData
 * (WRITER_DATA_IN_PLACE), where the core may place it itself.  The UUIDs are derived from the size and the type (or
 * --uuid for the creation UUID), never from the clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bytes.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/uuid.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "fmt/vdi/vdi.h"

/* The pre-header's text is informative: ours, not VirtualBox's. */
#define INFO_TEXT	"<<< imgpipe VM Virtual Disk Image >>>\n"
#define BMAP_AT		VDI_DATA_ALIGN	/* VirtualBox: aligned to 1 MiB */
#define BLOCK		VDI_BLOCK_SIZE_DEFAULT

struct vdiw {
	const struct vdi_wopts *o;
	uint64_t nblocks;
	uint64_t data_at;	/* offData */
	uint64_t nput;		/* dynamic: blocks put so far */
	unsigned char header[VDI_HDR_END];
};

static uint64_t round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) / align * align;
}

static void put_geometry(unsigned char *g)
{
	/* cylinders, heads and sectors 0: "not calculated", as VirtualBox */
	put_le32(g + VDI_GEO_SECTOR_SIZE, VDI_SECTOR_SIZE);
}

/* A UUID in the RTUUID's byte order: given, or derived from what for. */
static void put_uuid(const struct wimage *w, const struct vdiw *v,
    const char *what, unsigned char *out)
{
	unsigned char u[UUID_LEN];
	char name[96];

	if (v->o->uuid != NULL && strcmp(what, "create") == 0) {
		memcpy(u, v->o->uuid, UUID_LEN);
	} else {
		snprintf(name, sizeof name, "vdi %s %s %llu", what,
		    v->o->fixed ? "static" : "dynamic",
		    (unsigned long long)w->virtual_size);
		if (v->o->uuid != NULL)	/* another disk: other UUIDs */
			snprintf(name + strlen(name), sizeof name -
			    strlen(name), " %02x%02x%02x%02x", v->o->uuid[0],
			    v->o->uuid[1], v->o->uuid[2], v->o->uuid[3]);
		uuid_from_name(name, u);
	}
	uuid_to_guid(u, out);
}

static int write_header(struct wimage *w, struct vdiw *v, uint64_t nalloc)
{
	unsigned char *h = v->header;

	memset(h, 0, sizeof v->header);
	memcpy(h + VDI_PRE_INFO, INFO_TEXT, sizeof INFO_TEXT - 1);
	put_le32(h + VDI_PRE_SIGNATURE, VDI_SIGNATURE);
	put_le32(h + VDI_PRE_VERSION, VDI_VERSION_1_1);
	put_le32(h + VDI_HDR_SIZE, VDI_HEADER_SIZE_V1PLUS);
	put_le32(h + VDI_HDR_TYPE, v->o->fixed ? VDI_TYPE_FIXED :
	    VDI_TYPE_DYNAMIC);
	put_le32(h + VDI_HDR_BMAP_OFF, BMAP_AT);
	put_le32(h + VDI_HDR_DATA_OFF, (uint32_t)v->data_at);
	put_geometry(h + VDI_HDR_LEGACY_GEOMETRY);
	put_le64(h + VDI_HDR_DISK_SIZE, w->virtual_size);
	put_le32(h + VDI_HDR_BLOCK_SIZE, BLOCK);
	put_le32(h + VDI_HDR_NBLOCKS, (uint32_t)v->nblocks);
	put_le32(h + VDI_HDR_NALLOCATED, (uint32_t)nalloc);
	put_uuid(w, v, "create", h + VDI_HDR_UUID_CREATE);
	put_uuid(w, v, "modify", h + VDI_HDR_UUID_MODIFY);
	/* no parent: the linkage and parent UUIDs stay zero */
	put_geometry(h + VDI_HDR_LCHS_GEOMETRY);
	return wfile_write(w->out, h, sizeof v->header, 0);
}

/* Map entry of block `slot`: host block k, or free. */
static void map_entry(const void *ctx, unsigned char *p, uint64_t slot,
    uint64_t k)
{
	const struct vdiw *v = ctx;

	if (v->o->fixed)
		put_le32(p, (uint32_t)slot);
	else
		put_le32(p, k == WTABLE_EMPTY ? VDI_BLOCK_FREE : (uint32_t)k);
}

/* The header and the block map: everything before the data. */
static int write_metadata(struct wimage *w, struct vdiw *v, uint64_t nalloc)
{
	struct wtable t = {
		.off = BMAP_AT,
		.nslots = v->nblocks,
		.entry_size = 4,
		.len = v->data_at - BMAP_AT,
		.pad = 0,
		.grains_per_unit = 1,
		.entry = map_entry,
		.ctx = v,
	};

	return write_header(w, v, nalloc) < 0 || wfile_zero(w->out,
	    VDI_HDR_END, BMAP_AT - VDI_HDR_END) < 0 ||
	    wtable_write(w, &t) < 0 ? -1 : 0;
}

static int vdiw_setup(struct wimage *w)
{
	struct vdiw *v = w->priv;

	v->o = w->opts;
	w->grain = BLOCK;
	/* our reader's block map limit (VirtualBox takes up to 4 PiB) */
	w->max_size = IMAGE_META_MAX / 4 * BLOCK;
	if (!v->o->fixed)
		w->flags &= ~(WRITER_STREAMS | WRITER_DATA_IN_PLACE);
	return 0;
}

static int vdiw_begin(struct wimage *w)
{
	struct vdiw *v = w->priv;

	v->nblocks = (w->virtual_size + BLOCK - 1) / BLOCK;
	v->data_at = round_up(BMAP_AT + v->nblocks * 4, VDI_DATA_ALIGN);
	w->data_at = v->data_at;
	v->nput = 0;
	if (v->o->fixed)
		return write_metadata(w, v, v->nblocks);
	if (w->layout == WLAYOUT_PLANNED)
		return write_metadata(w, v, wplan_count(w));
	return 0;
}

static int vdiw_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct vdiw *v = w->priv;

	(void)encoded;
	if (v->o->fixed) {
		if (data != NULL)
			return wfile_put(w->out, data, len, v->data_at +
			    index * BLOCK);
		/* zeros: a hole in a file, padding in a stream */
		return w->out->seekable ? wfile_zero(w->out, v->data_at +
		    index * BLOCK, len) : 0;
	}
	if (data == NULL)
		return 0;	/* free blocks read as zeros */
	return wfile_put(w->out, data, len, v->data_at + v->nput++ * BLOCK);
}

static int vdiw_finish(struct wimage *w)
{
	struct vdiw *v = w->priv;
	uint64_t nalloc = v->o->fixed ? v->nblocks : wplan_count(w);

	if (!v->o->fixed && w->layout != WLAYOUT_PLANNED &&
	    write_metadata(w, v, nalloc) < 0)
		return -1;
	return wfile_end(w->out, v->data_at + nalloc * BLOCK);
}

const struct writer writer_vdi = {
	.name = "vdi",
	.state_size = sizeof(struct vdiw),
	.flags = WRITER_STREAMS | WRITER_DATA_IN_PLACE,
	.setup = vdiw_setup,
	.begin = vdiw_begin,
	.put = vdiw_put,
	.finish = vdiw_finish,
};
