/*
 * The VHDX writer (lib/fmt/vhdx/vhdx.h has the layout): dynamic, the
 * default, and fixed, laid out as Hyper-V lays out a new disk:
 *
 *	0	file identifier ("vhdxfile", creator "imgpipe VERSION")
 *	64 KiB	header 1 (sequence 1), 128 KiB header 2 (sequence 2)
 *	192 KiB	region table, 256 KiB its copy: the BAT and the metadata
 *	1 MiB	the log, 1 MiB, empty (the headers' log GUID is zero)
 *	2 MiB	metadata: file parameters, virtual disk size, logical and
 *		physical sector size (4096, as Hyper-V), page 83 data
 *	3 MiB	the BAT, in whole MiB
 *	then	the payload blocks
 *
 * The BAT has a payload entry per block and a sector-bitmap entry after
 * every chunk_ratio of them (not present: there is no parent).  A block
 * is several grains (32 MiB, Hyper-V's default, is 16 of the core's
 * largest); a dynamic disk allocates a block for its first grain with
 * data, in virtual order, so the k-th block with data lies at a place
 * known from k: the BAT is generated from the plan, before the data into
 * a pipe and after it into a file.  A block without data is
 * PAYLOAD_BLOCK_ZERO, as Hyper-V marks the blocks it never wrote.  The
 * grains of an allocated block that are zeros are holes in a file and
 * zeros in a stream.  Everything before the BAT depends only on the
 * options and the size, so a fixed disk goes straight through once the
 * size is known, its disk in place after the BAT (WRITER_DATA_IN_PLACE),
 * where the core may place it itself.  Checksums are CRC-32C.  The GUIDs
 * are derived from the size and the options (or --uuid), never from the
 * clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bytes.h"
#include "imgpipe/cli.h"
#include "imgpipe/crc32c.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/uuid.h"
#include "imgpipe/writer.h"
#include "imgpipe/writers.h"
#include "fmt/vhdx/vhdx.h"

/* Where this writer puts the log, the metadata and the BAT. */
#define LOG_AT		(1ull * VHDX_MIB)
#define LOG_LEN		VHDX_MIB
#define META_AT		(2ull * VHDX_MIB)
#define META_LEN	VHDX_MIB
#define BAT_AT		(3ull * VHDX_MIB)
#define PHYSICAL_SECTOR	4096u	/* Hyper-V's, for 512e and 4Kn disks */

/* The metadata items, after the table, placed as Hyper-V places them. */
#define ITEM_FILE_PARAMS	0
#define ITEM_DISK_SIZE		8
#define ITEM_LOGICAL		16
#define ITEM_PHYSICAL		20
#define ITEM_PAGE83		24
#define ITEMS_LEN		(ITEM_PAGE83 + VHDX_PAGE83_SIZE)

struct vhdxw {
	const struct vhdx_wopts *o;
	uint32_t block;		/* block size */
	uint32_t sector;	/* logical sector size */
	uint64_t grains;	/* grains a block */
	uint64_t chunk_ratio;
	uint64_t nblocks;	/* payload blocks */
	uint64_t nentries;	/* BAT entries */
	uint64_t bat_len;	/* in whole MiB */
	uint64_t data_at;	/* the first block */
	unsigned char page83[UUID_LEN];	/* the disk's id, RFC order */
	/* dynamic, as grains are put: the block being filled */
	uint64_t cur_block;
	uint64_t cur_at;
	uint64_t nalloc;
	bool have_block;
	unsigned char *buf;	/* VHDX_REGION_TABLE_SIZE, for every piece */
};

static uint64_t round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) / align * align;
}

static uint64_t bat_entries(uint64_t nblocks, uint64_t chunk_ratio)
{
	return nblocks == 0 ? 0 : nblocks + (nblocks - 1) / chunk_ratio;
}

/* A GUID derived from the disk's id and what it is for, on-disk order. */
static void derived_guid(const struct vhdxw *x, const char *what,
    unsigned char *out)
{
	char name[96];
	unsigned char u[UUID_LEN];
	int i, n;

	n = snprintf(name, sizeof name, "vhdx %s ", what);
	for (i = 0; i < UUID_LEN && n + 3 < (int)sizeof name; i++)
		n += snprintf(name + n, sizeof name - n, "%02x", x->page83[i]);
	uuid_from_name(name, u);
	uuid_to_guid(u, out);
}

static void text_guid(const char *text, unsigned char *out)
{
	if (!vhdx_guid_bytes(text, out))
		abort();	/* the constants in vhdx.h are GUIDs */
}

static void put_checksum(unsigned char *p, size_t len, size_t at)
{
	put_le32(p + at, 0);
	put_le32(p + at, crc32c(0, p, len));
}

/* ---- the first MiB ---- */

static int write_identifier(struct wimage *w, struct vhdxw *x)
{
	static const char creator[] = "imgpipe " IMGPIPE_VERSION;
	unsigned char *p = x->buf;
	size_t i;

	memset(p, 0, VHDX_REGION_TABLE_SIZE);
	memcpy(p + VHDX_ID_SIGNATURE, VHDX_FILE_SIGNATURE, 8);
	for (i = 0; creator[i] != '\0'; i++)
		put_le16(p + VHDX_ID_CREATOR + 2 * i, (uint16_t)creator[i]);
	return wfile_write(w->out, p, VHDX_HEADER_SIZE, 0);
}

static int write_header(struct wimage *w, struct vhdxw *x, uint64_t seq,
    uint64_t at)
{
	unsigned char *h = x->buf;

	memset(h, 0, VHDX_HEADER_SIZE);
	memcpy(h + VHDX_HDR_SIGNATURE, VHDX_HEADER_SIGNATURE, 4);
	put_le64(h + VHDX_HDR_SEQUENCE, seq);
	derived_guid(x, "file-write", h + VHDX_HDR_FILE_WRITE_GUID);
	derived_guid(x, "data-write", h + VHDX_HDR_DATA_WRITE_GUID);
	/* VHDX_HDR_LOG_GUID stays zero: the log is empty */
	put_le16(h + VHDX_HDR_LOG_VERSION, VHDX_LOG_VERSION);
	put_le16(h + VHDX_HDR_VERSION, VHDX_VERSION);
	put_le32(h + VHDX_HDR_LOG_LENGTH, LOG_LEN);
	put_le64(h + VHDX_HDR_LOG_OFFSET, LOG_AT);
	put_checksum(h, VHDX_HEADER_SIZE, VHDX_HDR_CHECKSUM);
	return wfile_write(w->out, h, VHDX_HEADER_SIZE, at);
}

static void region_entry(unsigned char *e, const char *guid, uint64_t off,
    uint64_t len)
{
	text_guid(guid, e + VHDX_RE_GUID);
	put_le64(e + VHDX_RE_OFFSET, off);
	put_le32(e + VHDX_RE_LENGTH, (uint32_t)len);
	put_le32(e + VHDX_RE_REQUIRED, VHDX_REGION_REQUIRED);
}

/* Both copies of the region table: the BAT first, as Hyper-V lists it. */
static int write_region_tables(struct wimage *w, struct vhdxw *x)
{
	unsigned char *rt = x->buf;

	memset(rt, 0, VHDX_REGION_TABLE_SIZE);
	memcpy(rt + VHDX_RT_SIGNATURE, VHDX_REGION_SIGNATURE, 4);
	put_le32(rt + VHDX_RT_COUNT, 2);
	region_entry(rt + VHDX_RT_ENTRIES, VHDX_GUID_BAT, BAT_AT, x->bat_len);
	region_entry(rt + VHDX_RT_ENTRIES + VHDX_RT_ENTRY_SIZE,
	    VHDX_GUID_METADATA, META_AT, META_LEN);
	put_checksum(rt, VHDX_REGION_TABLE_SIZE, VHDX_RT_CHECKSUM);
	return wfile_write(w->out, rt, VHDX_REGION_TABLE_SIZE,
	    VHDX_REGION1_OFF) < 0 || wfile_write(w->out, rt,
	    VHDX_REGION_TABLE_SIZE, VHDX_REGION2_OFF) < 0 ? -1 : 0;
}

/* ---- the metadata region ---- */

static void meta_entry(unsigned char *t, int i, const char *guid,
    uint32_t item, uint32_t len, uint32_t flags)
{
	unsigned char *e = t + VHDX_MT_ENTRIES + VHDX_MT_ENTRY_SIZE * i;

	text_guid(guid, e + VHDX_ME_GUID);
	put_le32(e + VHDX_ME_OFFSET, VHDX_META_TABLE_SIZE + item);
	put_le32(e + VHDX_ME_LENGTH, len);
	put_le32(e + VHDX_ME_FLAGS, flags);
}

/* The table (64 KiB), then the items. */
static int write_metadata(struct wimage *w, struct vhdxw *x)
{
	const uint32_t disk = VHDX_META_IS_VIRTUAL_DISK | VHDX_META_IS_REQUIRED;
	unsigned char *t = x->buf, it[ITEMS_LEN];
	unsigned char u[UUID_LEN];

	memset(t, 0, VHDX_META_TABLE_SIZE);
	memcpy(t + VHDX_MT_SIGNATURE, VHDX_META_SIGNATURE, 8);
	put_le16(t + VHDX_MT_COUNT, 5);
	meta_entry(t, 0, VHDX_GUID_FILE_PARAMS, ITEM_FILE_PARAMS, VHDX_FP_SIZE,
	    VHDX_META_IS_REQUIRED);
	meta_entry(t, 1, VHDX_GUID_DISK_SIZE, ITEM_DISK_SIZE,
	    VHDX_DISK_SIZE_SIZE, disk);
	meta_entry(t, 2, VHDX_GUID_LOGICAL_SECTOR, ITEM_LOGICAL,
	    VHDX_SECTOR_SIZE_SIZE, disk);
	meta_entry(t, 3, VHDX_GUID_PHYSICAL_SECTOR, ITEM_PHYSICAL,
	    VHDX_SECTOR_SIZE_SIZE, disk);
	meta_entry(t, 4, VHDX_GUID_PAGE83, ITEM_PAGE83, VHDX_PAGE83_SIZE, disk);
	memset(it, 0, sizeof it);
	put_le32(it + ITEM_FILE_PARAMS + VHDX_FP_BLOCK_SIZE, x->block);
	put_le32(it + ITEM_FILE_PARAMS + VHDX_FP_FLAGS, x->o->fixed ?
	    VHDX_FP_LEAVE_ALLOCATED : 0);
	put_le64(it + ITEM_DISK_SIZE, w->virtual_size);
	put_le32(it + ITEM_LOGICAL, x->sector);
	put_le32(it + ITEM_PHYSICAL, PHYSICAL_SECTOR);
	uuid_to_guid(x->page83, u);
	memcpy(it + ITEM_PAGE83, u, UUID_LEN);
	return wfile_write(w->out, t, VHDX_META_TABLE_SIZE, META_AT) < 0 ||
	    wfile_write(w->out, it, sizeof it, META_AT +
	    VHDX_META_TABLE_SIZE) < 0 ? -1 : 0;
}

/* ---- the BAT ---- */

static uint64_t bat_slot(const void *ctx, uint64_t block)
{
	const struct vhdxw *x = ctx;

	return vhdx_bat_index(block, x->chunk_ratio);
}

static uint64_t payload_entry(uint64_t at)
{
	return VHDX_PAYLOAD_FULLY_PRESENT | at / VHDX_MIB <<
	    VHDX_BAT_OFFSET_SHIFT;
}

/* Slot s: a sector-bitmap entry (no parent: not present) or a block's. */
static void bat_entry(const void *ctx, unsigned char *p, uint64_t slot,
    uint64_t k)
{
	const struct vhdxw *x = ctx;
	uint64_t block = slot - slot / (x->chunk_ratio + 1);

	if ((slot + 1) % (x->chunk_ratio + 1) == 0)
		put_le64(p, VHDX_SB_NOT_PRESENT);
	else if (x->o->fixed)
		put_le64(p, payload_entry(x->data_at + block * x->block));
	else if (k == WTABLE_EMPTY)
		put_le64(p, VHDX_PAYLOAD_ZERO);
	else
		put_le64(p, payload_entry(x->data_at + k * x->block));
}

static int write_bat(struct wimage *w, struct vhdxw *x)
{
	struct wtable t = {
		.off = BAT_AT,
		.nslots = x->nentries,
		.entry_size = VHDX_BAT_ENTRY_SIZE,
		.len = x->bat_len,
		.pad = 0,
		.grains_per_unit = x->grains,
		.slot_of = bat_slot,
		.entry = bat_entry,
		.ctx = x,
	};

	return wtable_write(w, &t);
}

/* ---- the writer interface ---- */

/*
 * The most blocks a BAT of IMAGE_META_MAX bytes (what our reader reads)
 * holds: n blocks take n + (n - 1) / chunk_ratio entries.
 */
static uint64_t max_blocks(uint64_t chunk_ratio)
{
	uint64_t e = IMAGE_META_MAX / VHDX_BAT_ENTRY_SIZE;
	uint64_t n = e - (e - 1) / (chunk_ratio + 1);

	while (bat_entries(n, chunk_ratio) > e)
		n--;
	return n;
}

static int vhdxw_setup(struct wimage *w)
{
	struct vhdxw *x = w->priv;
	uint64_t most;

	x->o = w->opts;
	x->block = x->o->block_size ? x->o->block_size : VHDX_BLOCK_DEFAULT;
	x->sector = x->o->logical_sector ? x->o->logical_sector : 512;
	w->grain = x->block < WRITER_GRAIN_MAX ? x->block : WRITER_GRAIN_MAX;
	x->grains = x->block / w->grain;
	x->chunk_ratio = vhdx_chunk_ratio(x->sector, x->block);
	if (!x->o->fixed)
		w->flags &= ~(WRITER_STREAMS | WRITER_DATA_IN_PLACE);
	w->max_size = VHDX_DISK_SIZE_MAX;
	most = max_blocks(x->chunk_ratio) * x->block;
	if (most < w->max_size)
		w->max_size = most;
	x->buf = malloc(VHDX_REGION_TABLE_SIZE);
	if (x->buf == NULL)
		return fail(EXIT_IO, "out of memory");
	return 0;
}

/* The size is known: the disk's id and where everything lies. */
static void lay_out(struct wimage *w, struct vhdxw *x)
{
	char name[96];
	uint64_t size = round_up(w->virtual_size, x->sector);

	if (size != w->virtual_size) {
		writer_notice_rounded(w, w->virtual_size, size, x->sector ==
		    4096 ? "a multiple of the 4096-byte logical sector" :
		    "a multiple of the logical sector");
		w->virtual_size = size;
	}
	x->nblocks = (size + x->block - 1) / x->block;
	x->nentries = bat_entries(x->nblocks, x->chunk_ratio);
	x->bat_len = round_up(x->nentries * VHDX_BAT_ENTRY_SIZE, VHDX_MIB);
	if (x->bat_len == 0)
		x->bat_len = VHDX_MIB;	/* a region is never empty */
	x->data_at = BAT_AT + x->bat_len;
	w->data_at = x->data_at;
	if (x->o->uuid != NULL) {
		memcpy(x->page83, x->o->uuid, UUID_LEN);
	} else {
		snprintf(name, sizeof name, "vhdx %s %llu %u %u", x->o->fixed ?
		    "fixed" : "dynamic", (unsigned long long)size, x->block,
		    x->sector);
		uuid_from_name(name, x->page83);
	}
}

static int vhdxw_begin(struct wimage *w)
{
	struct vhdxw *x = w->priv;

	lay_out(w, x);
	x->have_block = false;
	x->nalloc = 0;
	if (write_identifier(w, x) < 0 ||
	    write_header(w, x, 1, VHDX_HEADER1_OFF) < 0 ||
	    write_header(w, x, 2, VHDX_HEADER2_OFF) < 0 ||
	    write_region_tables(w, x) < 0 ||
	    wfile_zero(w->out, LOG_AT, LOG_LEN) < 0 ||
	    write_metadata(w, x) < 0)
		return -1;
	if (x->o->fixed || w->layout == WLAYOUT_PLANNED)
		return write_bat(w, x);
	return 0;
}

/* A grain with data: the block it falls in is allocated at its first. */
static uint64_t grain_at(struct wimage *w, struct vhdxw *x, uint64_t index)
{
	uint64_t block = index / x->grains;

	if (x->o->fixed)
		return x->data_at + index * w->grain;
	if (!x->have_block || block != x->cur_block) {
		x->have_block = true;
		x->cur_block = block;
		x->cur_at = x->data_at + x->nalloc++ * x->block;
	}
	return x->cur_at + index % x->grains * w->grain;
}

static int vhdxw_put(struct wimage *w, uint64_t index,
    const unsigned char *data, size_t len, bool encoded)
{
	struct vhdxw *x = w->priv;
	uint64_t at;

	(void)encoded;
	if (data == NULL) {
		/* a fixed disk's zeros: a hole, or they come with what follows */
		if (x->o->fixed && w->out->seekable)
			return wfile_zero(w->out, x->data_at + index * w->grain,
			    len);
		return 0;
	}
	if (!x->o->fixed && w->out->seekable &&
	    (!x->have_block || index / x->grains != x->cur_block)) {
		/* a new block: what a reused file held there must go */
		at = x->data_at + x->nalloc * x->block;
		if (wfile_zero(w->out, at, x->block) < 0)
			return -1;
	}
	return wfile_put(w->out, data, len, grain_at(w, x, index));
}

static int vhdxw_finish(struct wimage *w)
{
	struct vhdxw *x = w->priv;
	uint64_t n = x->nblocks;

	if (!x->o->fixed) {
		if (w->layout != WLAYOUT_PLANNED && write_bat(w, x) < 0)
			return -1;
		if (wplan_units(w, x->grains, &n) < 0)
			return -1;
	}
	return wfile_end(w->out, x->data_at + n * x->block);
}

static void vhdxw_close(struct wimage *w)
{
	struct vhdxw *x = w->priv;

	free(x->buf);
	x->buf = NULL;
}

const struct writer writer_vhdx = {
	.name = "vhdx",
	.state_size = sizeof(struct vhdxw),
	.flags = WRITER_STREAMS | WRITER_DATA_IN_PLACE,
	.setup = vhdxw_setup,
	.begin = vhdxw_begin,
	.put = vhdxw_put,
	.finish = vhdxw_finish,
	.close = vhdxw_close,
};
