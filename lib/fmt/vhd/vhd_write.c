/*
 * The VHD writer (lib/fmt/vhd/vhd.h has the layout): fixed, the default,
 * and dynamic.
 *
 * A fixed disk is its bytes, then the footer.  It goes straight through,
 * into a file or a pipe, and needs the size only for the footer at the
 * end (WRITER_SIZE_LATE), so even a raw disk from a pipe streams.  The
 * disk lies in place (WRITER_DATA_IN_PLACE): the core places it as
 * img2raw would (a raw file's data runs copied whole) and put
 * below is the path of an output the core cannot place into.
 * --azure rounds the size up to a multiple of 1 MiB, as Azure requires
 * of an uploaded VHD, and says so.
 *
 * A dynamic disk is laid out as qemu-img lays it out: a copy of the
 * footer, the dynamic header, the BAT from sector 3 padded to a sector
 * with unused entries, then the blocks in virtual order (each a sector
 * bitmap, all ones, then the block's data), then the footer.  Blocks of
 * zeros are left out.  A block is one grain, and the k-th block of the
 * plan lies at a place known from k alone, so the BAT is generated from
 * the plan: before the data into a pipe, after it into a file.
 *
 * The creator is imgpipe's own ('imgp'): readers that size a disk by
 * current_size (ours, libvhdi, Hyper-V, Azure) see its exact size;
 * qemu-img 7.2 sizes an unknown creator's disk by its CHS geometry, which
 * can be a little shorter (raw2vhd(1) says how much).  Nothing depends on
 * the clock: the timestamp is 0 (2000-01-01) and the UUID is derived from
 * the size and the options unless given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bytes.h"
#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "imgpipe/zero.h"
#include "fmt/vhd/vhd.h"

#define AZURE_ALIGN	(1024u * 1024)
/* The BAT follows the footer copy and the dynamic header. */
#define BAT_OFF		(VHD_FOOTER_SIZE + VHD_DYN_HEADER_SIZE)

struct vhdw {
	const struct vhd_wopts *o;
	unsigned char footer[VHD_FOOTER_SIZE];
	unsigned char header[VHD_DYN_HEADER_SIZE];
	unsigned char *bitmap;	/* a block's sector bitmap: all ones */
	uint32_t bitmap_size;
	uint32_t block;		/* dynamic: bytes of data a block */
	/* dynamic: the layout */
	uint64_t nblocks;	/* BAT entries */
	uint64_t bat_len;	/* bytes, padded to a sector */
	uint64_t blocks_at;	/* the first block */
	uint64_t block_span;	/* bitmap and data */
	uint64_t nput;		/* blocks put so far */
};

static uint64_t round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) / align * align;
}

/* imgpipe's version, major << 16 | minor, as the footer wants it. */
static uint32_t creator_version(void)
{
	const char *dot = strchr(IMGPIPE_VERSION, '.');
	unsigned long major = strtoul(IMGPIPE_VERSION, NULL, 10);
	unsigned long minor = dot ? strtoul(dot + 1, NULL, 10) : 0;

	return (uint32_t)(major << 16 | (minor & 0xffff));
}

/* The disk's UUID: given, or derived from what the footer says. */
static void disk_uuid(const struct vhdw *v, uint64_t size,
    unsigned char *out)
{
	char name[96];

	if (v->o->uuid != NULL) {
		memcpy(out, v->o->uuid, UUID_LEN);
		return;
	}
	snprintf(name, sizeof name, "vhd %s %llu %u", v->o->dynamic ?
	    "dynamic" : v->o->azure ? "azure" : "fixed",
	    (unsigned long long)size, v->block);
	uuid_from_name(name, out);
}

static void make_footer(struct vhdw *v, uint64_t size)
{
	unsigned char *ft = v->footer;
	struct vhd_chs g = vhd_geometry(size / VHD_SECTOR);

	memset(ft, 0, VHD_FOOTER_SIZE);
	memcpy(ft + VHD_FT_COOKIE, VHD_FOOTER_COOKIE, 8);
	put_be32(ft + VHD_FT_FEATURES, VHD_FEATURE_RESERVED);
	put_be32(ft + VHD_FT_VERSION, VHD_VERSION);
	put_be64(ft + VHD_FT_DATA_OFFSET, v->o->dynamic ? VHD_FOOTER_SIZE :
	    VHD_NO_DATA_OFFSET);
	/* VHD_FT_TIMESTAMP stays 0: the same bytes on every run */
	memcpy(ft + VHD_FT_CREATOR_APP, VHD_CREATOR_IMGPIPE, 4);
	put_be32(ft + VHD_FT_CREATOR_VERSION, creator_version());
	/* the spec knows only Windows and Mac hosts; qemu-img says Windows */
	memcpy(ft + VHD_FT_CREATOR_HOST, VHD_HOST_WINDOWS, 4);
	put_be64(ft + VHD_FT_ORIGINAL_SIZE, size);
	put_be64(ft + VHD_FT_CURRENT_SIZE, size);
	put_be16(ft + VHD_FT_CYLINDERS, g.cylinders);
	ft[VHD_FT_HEADS] = g.heads;
	ft[VHD_FT_SECTORS] = g.spt;
	put_be32(ft + VHD_FT_TYPE, v->o->dynamic ? VHD_TYPE_DYNAMIC :
	    VHD_TYPE_FIXED);
	disk_uuid(v, size, ft + VHD_FT_UUID);
	put_be32(ft + VHD_FT_CHECKSUM, vhd_checksum(ft, VHD_FOOTER_SIZE,
	    VHD_FT_CHECKSUM));
}

/* ---- fixed ---- */

/* The bytes of a grain up to its last non-zero sector. */
static size_t data_end(const unsigned char *p, size_t len)
{
	while (len >= 65536 && is_zero(p + len - 65536, 65536))
		len -= 65536;
	while (len >= VHD_SECTOR && is_zero(p + len - VHD_SECTOR, VHD_SECTOR))
		len -= VHD_SECTOR;
	return len;
}

/*
 * Grain index at its place.  The last grain is zero-padded and the size
 * may not be known yet, so a stream gets a grain only up to its last
 * non-zero sector (which lies within the disk) and the zeros that follow
 * come with the next write; a file gets holes.
 */
static int fixed_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len)
{
	uint64_t off = index * w->grain;
	size_t n;

	if (data == NULL)
		return w->out->seekable ? wfile_zero(w->out, off, len) : 0;
	n = data_end(data, len);
	if (wfile_put(w->out, data, n, off) < 0)
		return -1;
	return w->out->seekable ? wfile_zero(w->out, off + n, len - n) : 0;
}

static int fixed_finish(struct wimage *w, struct vhdw *v)
{
	uint64_t size = w->virtual_size, end = size;

	if (v->o->azure) {
		end = round_up(size, AZURE_ALIGN);
		if (end != size) {
			writer_notice_rounded(w, size, end, "a multiple of "
			    "1 MiB, as Azure requires");
			if (w->out->seekable &&
			    wfile_zero(w->out, size, end - size) < 0)
				return -1;
		}
		w->virtual_size = end;
	}
	make_footer(v, end);
	if (wfile_write(w->out, v->footer, VHD_FOOTER_SIZE, end) < 0)
		return -1;
	return wfile_end(w->out, end + VHD_FOOTER_SIZE);
}

/* ---- dynamic ---- */

static void make_dyn_header(struct vhdw *v)
{
	unsigned char *dh = v->header;

	memset(dh, 0, VHD_DYN_HEADER_SIZE);
	memcpy(dh + VHD_DH_COOKIE, VHD_DYN_COOKIE, 8);
	put_be64(dh + VHD_DH_DATA_OFFSET, UINT64_MAX);
	put_be64(dh + VHD_DH_TABLE_OFFSET, BAT_OFF);
	put_be32(dh + VHD_DH_VERSION, VHD_DYN_VERSION);
	put_be32(dh + VHD_DH_MAX_ENTRIES, (uint32_t)v->nblocks);
	put_be32(dh + VHD_DH_BLOCK_SIZE, v->block);
	put_be32(dh + VHD_DH_CHECKSUM, vhd_checksum(dh, VHD_DYN_HEADER_SIZE,
	    VHD_DH_CHECKSUM));
}

/* BAT entry of block `slot`: the sector of the k-th block with data. */
static void bat_entry(const void *ctx, unsigned char *p, uint64_t slot,
    uint64_t k)
{
	const struct vhdw *v = ctx;

	(void)slot;
	put_be32(p, k == WTABLE_EMPTY ? VHD_BAT_UNUSED :
	    (uint32_t)((v->blocks_at + k * v->block_span) / VHD_SECTOR));
}

static int write_bat(struct wimage *w, struct vhdw *v)
{
	struct wtable t = {
		.off = BAT_OFF,
		.nslots = v->nblocks,
		.entry_size = VHD_BAT_ENTRY_SIZE,
		.len = v->bat_len,
		.pad = 0xff,	/* unused entries, as qemu-img pads */
		.grains_per_unit = 1,
		.entry = bat_entry,
		.ctx = v,
	};

	return wtable_write(w, &t);
}

static int dynamic_begin(struct wimage *w, struct vhdw *v)
{
	v->nblocks = (w->virtual_size + v->block - 1) / v->block;
	v->bat_len = round_up(v->nblocks * VHD_BAT_ENTRY_SIZE, VHD_SECTOR);
	v->blocks_at = BAT_OFF + v->bat_len;
	v->block_span = v->bitmap_size + (uint64_t)v->block;
	v->nput = 0;
	make_footer(v, w->virtual_size);
	make_dyn_header(v);
	if (wfile_write(w->out, v->footer, VHD_FOOTER_SIZE, 0) < 0 ||
	    wfile_write(w->out, v->header, VHD_DYN_HEADER_SIZE,
	    VHD_FOOTER_SIZE) < 0)
		return -1;
	return w->layout == WLAYOUT_PLANNED ? write_bat(w, v) : 0;
}

/* A block with data: its bitmap and its bytes, after the last block. */
static int dynamic_put(struct wimage *w, struct vhdw *v,
    const unsigned char *data, size_t len)
{
	uint64_t at = v->blocks_at + v->nput * v->block_span;

	if (data == NULL)
		return 0;	/* blocks of zeros are not allocated */
	v->nput++;
	if (wfile_put(w->out, v->bitmap, v->bitmap_size, at) < 0)
		return -1;
	return wfile_put(w->out, data, len, at + v->bitmap_size);
}

static int dynamic_finish(struct wimage *w, struct vhdw *v)
{
	uint64_t end = v->blocks_at + wplan_count(w) * v->block_span;

	if (w->layout != WLAYOUT_PLANNED && write_bat(w, v) < 0)
		return -1;
	if (wfile_write(w->out, v->footer, VHD_FOOTER_SIZE, end) < 0)
		return -1;
	return wfile_end(w->out, end + VHD_FOOTER_SIZE);
}

/* ---- the writer interface ---- */

static int vhdw_setup(struct wimage *w)
{
	struct vhdw *v = w->priv;
	uint64_t blocks;

	v->o = w->opts;
	/* qemu's limit, 2040 GiB, which the 32-bit BAT also allows */
	w->max_size = VHD_MAX_SECTORS * VHD_SECTOR;
	if (!v->o->dynamic) {
		w->grain = WRITER_GRAIN_MAX;
		w->data_at = 0;
		return 0;
	}
	w->flags &= ~(WRITER_STREAMS | WRITER_SIZE_LATE |
	    WRITER_DATA_IN_PLACE);
	v->block = v->o->block_size ? v->o->block_size : VHD_BLOCK_DEFAULT;
	w->grain = v->block;
	v->bitmap_size = vhd_bitmap_size(v->block);
	v->bitmap = malloc(v->bitmap_size);
	if (v->bitmap == NULL)
		return fail(EXIT_IO, "out of memory");
	memset(v->bitmap, 0xff, v->bitmap_size);
	/* the most blocks whose sectors a 32-bit BAT entry can name */
	blocks = ((uint64_t)UINT32_MAX * VHD_SECTOR - BAT_OFF) /
	    (v->bitmap_size + (uint64_t)v->block) - 1;
	if (blocks * v->block < w->max_size)
		w->max_size = blocks * v->block;
	return 0;
}

static int vhdw_begin(struct wimage *w)
{
	struct vhdw *v = w->priv;

	return v->o->dynamic ? dynamic_begin(w, v) : 0;
}

static int vhdw_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct vhdw *v = w->priv;

	(void)encoded;
	return v->o->dynamic ? dynamic_put(w, v, data, len) :
	    fixed_put(w, index, data, len);
}

static int vhdw_finish(struct wimage *w)
{
	struct vhdw *v = w->priv;

	return v->o->dynamic ? dynamic_finish(w, v) : fixed_finish(w, v);
}

static void vhdw_close(struct wimage *w)
{
	struct vhdw *v = w->priv;

	free(v->bitmap);
	v->bitmap = NULL;
}

const struct writer writer_vhd = {
	.name = "vhd",
	.state_size = sizeof(struct vhdw),
	.flags = WRITER_STREAMS | WRITER_SIZE_LATE | WRITER_DATA_IN_PLACE,
	.setup = vhdw_setup,
	.begin = vhdw_begin,
	.put = vhdw_put,
	.finish = vhdw_finish,
	.close = vhdw_close,
};
