/*
 * vhdx: Microsoft Hyper-V Virtual Hard Disk v2 (MS-VHDX).
 *
 * The first MiB holds the file identifier, two headers (the valid one
 * with the higher sequence number wins) and two copies of the region
 * table, all CRC-32C checked.  The region table places the metadata
 * region (block size, virtual size, sector sizes, parent) and the block
 * allocation table (BAT) anywhere in the file, in 1 MiB units.  The BAT
 * holds one entry per payload block, with a sector-bitmap entry after
 * every chunk_ratio of them; the bitmaps matter only to differencing
 * disks, which are rejected.  A log left by an unclean shutdown is
 * replayed in memory (vhdx_log.c): its writes lie over every read of the
 * BAT, the metadata and the payload; the file is never written.
 *
 * From a pipe, payload data may come before the BAT: whole MiB units met
 * before the last metadata region are parked in img->stash, keyed by
 * their file offset, and placed once the BAT is known.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "fmt/vhdx/vhdx.h"
#include "fmt/vhdx/vhdx_log.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/crc32c.h"
#include "imgpipe/err.h"
#include "imgpipe/zero.h"

#define MIB VHDX_MIB
#define VHDX_CHUNK (4 * MIB)
/* The largest log replayed, held in memory (Hyper-V and qemu write 1 MiB). */
#define VHDX_LOG_MAX (64u * MIB)

/* A region read into memory: metadata, BAT, or the log. */
struct region {
	const char *name;
	uint64_t off;
	uint64_t len;
	unsigned char *buf;
};

/* A 1 MiB unit of the file parked in the stash (pipes only). */
struct parked {
	uint64_t mb;		/* file offset in MiB */
	bool zero;		/* all zeros: nothing stashed */
	bool taken;
	struct stash_ref ref;
};

struct vhdx {
	struct region meta, bat, log;
	unsigned char log_guid[16];
	struct vhdx_overlay ov;	/* the log's writes, when it was replayed */
	uint32_t block_size;
	uint32_t logical_sector;
	uint64_t chunk_ratio;
	uint64_t nblocks;	/* payload blocks covering the virtual size */
	uint64_t disk_size;	/* as declared, before qemu's 512 rounding */
	struct parked *parked;
	size_t nparked, capparked;
	uint64_t parked_end_mb;	/* units below this were met in the stream */
};

/* The CRC of a structure whose checksum field (at sum_off) counts as 0. */
static uint32_t crc32c_without(const unsigned char *p, size_t len,
    size_t sum_off)
{
	static const unsigned char zero[4];
	uint32_t crc;

	crc = crc32c(0, p, sum_off);
	crc = crc32c(crc, zero, 4);
	return crc32c(crc, p + sum_off + 4, len - sum_off - 4);
}

/* Does the on-disk GUID at p read as text (VHDX_GUID_*)? */
static bool guid_is(const unsigned char *p, const char *text)
{
	unsigned char want[16];

	return vhdx_guid_bytes(text, want) && memcmp(p, want, 16) == 0;
}

static int vhdx_bid(const struct probe *pb)
{
	if (pb->headlen >= 8 && memcmp(pb->head, "vhdxfile", 8) == 0)
		return BID_SIGNATURE;
	return BID_NONE;
}

static bool header_valid(unsigned char *h)
{
	return memcmp(h, VHDX_HEADER_SIGNATURE, 4) == 0 &&
	    le16(h + VHDX_HDR_VERSION) == VHDX_VERSION &&
	    le32(h + VHDX_HDR_CHECKSUM) == crc32c_without(h, VHDX_HEADER_SIZE,
	    VHDX_HDR_CHECKSUM);
}

/* The current header: the valid one with the higher sequence number. */
static int pick_header(struct image *img, unsigned char *area,
    unsigned char **out)
{
	unsigned char *h1 = area + VHDX_HEADER1_OFF;
	unsigned char *h2 = area + VHDX_HEADER2_OFF;
	bool v1 = header_valid(h1), v2 = header_valid(h2);

	if (!v1 && !v2)
		return image_bad(img, "neither header is valid (signature "
		    "'head', version 1 and CRC-32C checked at 0x%x and 0x%x)",
		    VHDX_HEADER1_OFF, VHDX_HEADER2_OFF);
	if (v1 && v2)
		*out = le64(h2 + VHDX_HDR_SEQUENCE) >
		    le64(h1 + VHDX_HDR_SEQUENCE) ? h2 : h1;
	else
		*out = v1 ? h1 : h2;
	return 0;
}

/*
 * A region must be whole MiB units past the first MiB.  Where it ends is
 * checked when the regions are read (read_regions), in file order, so a
 * file and a pipe name the same one.
 */
static int check_region(struct image *img, const char *what, uint64_t off,
    uint64_t len)
{
	if (off < MIB || off % MIB != 0 || len == 0 || len % MIB != 0 ||
	    off > UINT64_MAX - len)
		return image_bad(img, "%s region at 0x%llx+0x%llx is not in "
		    "whole MiB units after the first MiB", what,
		    (unsigned long long)off, (unsigned long long)len);
	if (len > IMAGE_META_MAX)
		return image_bad(img, "%s region of %llu bytes is larger than "
		    "the limit of %llu", what, (unsigned long long)len,
		    (unsigned long long)IMAGE_META_MAX);
	return 0;
}

static int parse_region_table(struct image *img, struct vhdx *x,
    const unsigned char *rt)
{
	uint32_t i, n = le32(rt + VHDX_RT_COUNT);

	if (n > VHDX_RT_MAX_ENTRIES)
		return image_bad(img, "region table has %u entries, more than "
		    "%u (region table entry count)", n, VHDX_RT_MAX_ENTRIES);
	for (i = 0; i < n; i++) {
		const unsigned char *e = rt + VHDX_RT_ENTRIES +
		    VHDX_RT_ENTRY_SIZE * (size_t)i;
		struct region *r = NULL;

		if (guid_is(e + VHDX_RE_GUID, VHDX_GUID_BAT))
			r = &x->bat;
		else if (guid_is(e + VHDX_RE_GUID, VHDX_GUID_METADATA))
			r = &x->meta;
		else if (le32(e + VHDX_RE_REQUIRED) & VHDX_REGION_REQUIRED)
			return image_unsafe(img, "unknown-region", "unknown "
			    "required region in the region table (entry %u)",
			    i);
		if (r == NULL)
			continue;
		if (r->len != 0)
			return image_bad(img, "two %s regions in the region "
			    "table", r->name);
		r->off = le64(e + VHDX_RE_OFFSET);
		r->len = le32(e + VHDX_RE_LENGTH);
		if (check_region(img, r->name, r->off, r->len) < 0)
			return -1;
	}
	if (x->bat.len == 0 || x->meta.len == 0)
		return image_bad(img, "region table lacks the %s region",
		    x->bat.len == 0 ? "BAT" : "metadata");
	return 0;
}

static bool region_table_valid(unsigned char *rt)
{
	return memcmp(rt, VHDX_REGION_SIGNATURE, 4) == 0 &&
	    le32(rt + VHDX_RT_CHECKSUM) == crc32c_without(rt,
	    VHDX_REGION_TABLE_SIZE, VHDX_RT_CHECKSUM);
}

static int parse_head_area(struct image *img, struct vhdx *x,
    unsigned char *area)
{
	unsigned char *h = NULL, *rt = area + VHDX_REGION1_OFF;
	static const unsigned char zero_guid[16];

	if (memcmp(area, VHDX_FILE_SIGNATURE, 8) != 0)
		return image_bad(img, "no file identifier 'vhdxfile'");
	if (pick_header(img, area, &h) < 0)
		return -1;
	if (!region_table_valid(rt))
		rt = area + VHDX_REGION2_OFF;
	if (!region_table_valid(rt))
		return image_bad(img, "neither region table is valid "
		    "(signature 'regi' and CRC-32C checked at 0x%x and 0x%x)",
		    VHDX_REGION1_OFF, VHDX_REGION2_OFF);
	memcpy(x->log_guid, h + VHDX_HDR_LOG_GUID, 16);
	if (memcmp(x->log_guid, zero_guid, 16) != 0) {
		/* A log is active: it is replayed in memory, up to a cap. */
		x->log.off = le64(h + VHDX_HDR_LOG_OFFSET);
		x->log.len = le32(h + VHDX_HDR_LOG_LENGTH);
		if (x->log.len > VHDX_LOG_MAX)
			return image_defect(img, "log-size", "log of %llu "
			    "bytes to replay is larger than the %u MiB this "
			    "reader replays in memory (header LogLength)",
			    (unsigned long long)x->log.len,
			    VHDX_LOG_MAX / MIB);
		if (check_region(img, x->log.name, x->log.off, x->log.len) < 0)
			return -1;
	}
	return parse_region_table(img, x, rt);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Regions to read, in file order; none may overlap another. */
static int order_regions(struct image *img, struct vhdx *x,
    struct region **r)
{
	struct region *all[3] = { &x->meta, &x->bat, &x->log }, *t;
	int i, j, n = 0;

	for (i = 0; i < 3; i++)
		if (all[i]->len != 0)
			r[n++] = all[i];
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && r[j]->off < r[j - 1]->off; j--) {
			t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	for (i = 1; i < n; i++)
		if (overlaps(r[i - 1]->off, r[i - 1]->len, r[i]->off,
		    r[i]->len))
			return image_bad(img, "%s region at 0x%llx overlaps the "
			    "%s region", r[i]->name,
			    (unsigned long long)r[i]->off, r[i - 1]->name);
	return n;
}

static int park_unit(struct image *img, struct vhdx *x, uint64_t mb,
    const unsigned char *buf)
{
	struct parked *p;

	if ((x->nparked + 1) * sizeof *x->parked > IMAGE_META_MAX)
		return image_bad(img, "too much data before the BAT and "
		    "metadata regions to hold from a pipe");
	/* the records count in the store's budget, as the units */
	if (stash_grow_array(img->stash, &x->parked, x->nparked,
	    &x->capparked, sizeof *x->parked, 64) < 0)
		return -1;
	p = &x->parked[x->nparked];
	memset(p, 0, sizeof *p);
	p->mb = mb;
	p->zero = is_zero(buf, MIB);
	if (!p->zero && stash_put(img->stash, buf, MIB, &p->ref) < 0)
		return -1;
	x->nparked++;
	return 0;
}

/* A pipe: MiB units from the stream position up to off go to the stash. */
static int park_until(struct image *img, struct vhdx *x, uint64_t off,
    unsigned char *buf)
{
	uint64_t pos = img->src->pos;
	uint64_t mb = pos < MIB ? 1 : (pos + MIB - 1) / MIB;

	for (; mb * MIB < off; mb++) {
		if (image_read_at(img, buf, MIB, mb * MIB, "data") < 0 ||
		    park_unit(img, x, mb, buf) < 0)
			return -1;
	}
	return 0;
}

static int region_past_end(struct image *img, const struct region *r)
{
	return image_defect(img, FINDING_TRUNCATED, "%s region at 0x%llx lies "
	    "past the end of the image", r->name, (unsigned long long)r->off);
}

/*
 * Region r, after the units a pipe passes on its way to it are parked:
 * a file too short for it, known before the read, and a pipe that ends
 * on the way or inside it give one message and one finding code.
 */
static int read_region(struct image *img, struct vhdx *x, struct region *r,
    unsigned char *unit)
{
	const struct source *src = img->src;
	const char *code;

	if (src->size_known && (r->off > src->size ||
	    r->len > src->size - r->off))
		return region_past_end(img, r);
	if ((r->buf = malloc(r->len)) == NULL)
		return fail(EXIT_IO, "out of memory");
	if ((unit == NULL || park_until(img, x, r->off, unit) == 0) &&
	    image_read_at(img, r->buf, r->len, r->off, r->name) == 0)
		return 0;
	code = err_code();
	if (code == NULL || strcmp(code, FINDING_TRUNCATED) != 0)
		return -1;
	err_clear();
	return region_past_end(img, r);
}

static int read_regions(struct image *img, struct vhdx *x)
{
	struct region *r[3];
	unsigned char *unit = NULL;
	int i, n = order_regions(img, x, r), rc = 0;

	if (n < 0)
		return -1;
	if (!img->src->seekable && (unit = malloc(MIB)) == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		rc = read_region(img, x, r[i], unit);
		if (rc == 0 && unit != NULL)
			x->parked_end_mb = (r[i]->off + r[i]->len) / MIB;
	}
	free(unit);
	return rc;
}

static int flushed_short(struct image *img, const struct vhdx *x,
    uint64_t size)
{
	return image_defect(img, FINDING_TRUNCATED, "log: the file ends at "
	    "0x%llx, before the FlushedFileOffset 0x%llx of the log's last "
	    "entry", (unsigned long long)size,
	    (unsigned long long)x->ov.flushed);
}

/* From a pipe: read on to the FlushedFileOffset, to see the file has it. */
static int check_flushed_stream(struct image *img, const struct vhdx *x,
    unsigned char *buf)
{
	ssize_t n;

	while (img->src->pos < x->ov.flushed) {
		uint64_t want = x->ov.flushed - img->src->pos;

		n = image_read_forward(img, buf, want < VHDX_CHUNK ? want :
		    VHDX_CHUNK);
		if (n < 0)
			return -1;
		if (n == 0)
			return flushed_short(img, x, img->src->pos);
	}
	return 0;
}

/*
 * The log holds writes not yet applied to the file: none when the
 * header's log GUID is zero.  Otherwise its active sequence is replayed
 * over the BAT and metadata just read, and over the payload as it is
 * read.  A file shorter than the head entry's FlushedFileOffset was cut
 * after the log was written: from a file that shows here, from a pipe at
 * the end (check_flushed_stream), with the same message.
 */
static int replay_log(struct image *img, struct vhdx *x)
{
	if (x->log.len == 0)
		return 0;
	if (vhdx_log_replay(img, x->log.buf, x->log.len, x->log.off,
	    x->log_guid, &x->ov) < 0)
		return -1;
	vhdx_overlay_patch(&x->ov, x->meta.buf, x->meta.off, x->meta.len);
	vhdx_overlay_patch(&x->ov, x->bat.buf, x->bat.off, x->bat.len);
	img->dirty = true;
	image_detail(img, "log", "replayed %u entries (sequence numbers "
	    "%llu to %llu)", x->ov.nentries,
	    (unsigned long long)x->ov.seq_first,
	    (unsigned long long)x->ov.seq_last);
	if (img->src->size_known && img->src->size < x->ov.flushed)
		return flushed_short(img, x, img->src->size);
	return 0;
}

/* The metadata item with this GUID, checked to lie in the region. */
static int meta_item(struct image *img, struct vhdx *x, const char *guid,
    const char *what, uint32_t minlen, const unsigned char **out)
{
	const unsigned char *t = x->meta.buf;
	uint32_t i, n = le16(t + VHDX_MT_COUNT);

	*out = NULL;
	for (i = 0; i < n; i++) {
		const unsigned char *e = t + VHDX_MT_ENTRIES +
		    VHDX_MT_ENTRY_SIZE * (size_t)i;
		uint32_t off = le32(e + VHDX_ME_OFFSET);
		uint32_t len = le32(e + VHDX_ME_LENGTH);

		if (!guid_is(e + VHDX_ME_GUID, guid))
			continue;
		if (len < minlen || off < VHDX_META_TABLE_SIZE ||
		    off > x->meta.len || len > x->meta.len - off)
			return image_bad(img, "metadata item %s at +0x%x "
			    "length %u lies outside the metadata region", what,
			    off, len);
		*out = x->meta.buf + off;
		return 0;
	}
	return 0;
}

static int check_meta_table(struct image *img, struct vhdx *x)
{
	static const char *const known[] = { VHDX_GUID_FILE_PARAMS,
	    VHDX_GUID_DISK_SIZE, VHDX_GUID_PAGE83, VHDX_GUID_LOGICAL_SECTOR,
	    VHDX_GUID_PHYSICAL_SECTOR, VHDX_GUID_PARENT_LOCATOR };
	const unsigned char *t = x->meta.buf;
	uint32_t i, k, n = le16(t + VHDX_MT_COUNT);

	if (memcmp(t, VHDX_META_SIGNATURE, 8) != 0)
		return image_bad(img, "metadata region at 0x%llx lacks its "
		    "signature 'metadata'", (unsigned long long)x->meta.off);
	if (n > VHDX_MT_MAX_ENTRIES)
		return image_bad(img, "metadata table has %u entries, more "
		    "than %u (metadata entry count)", n, VHDX_MT_MAX_ENTRIES);
	for (i = 0; i < n; i++) {
		const unsigned char *e = t + VHDX_MT_ENTRIES +
		    VHDX_MT_ENTRY_SIZE * (size_t)i;

		for (k = 0; k < sizeof known / sizeof known[0]; k++)
			if (guid_is(e + VHDX_ME_GUID, known[k]))
				break;
		if (k == sizeof known / sizeof known[0] && (le32(e + VHDX_ME_FLAGS) &
		    VHDX_META_IS_REQUIRED))
			return image_unsafe(img, "unknown-metadata", "unknown "
			    "required metadata item (metadata entry %u)", i);
	}
	return 0;
}

/* A differencing disk: name its parent from the locator when we can. */
static int reject_parent(struct image *img, struct vhdx *x)
{
	const unsigned char *loc;
	char name[128] = "unnamed";
	uint32_t i, n, len = 0;

	if (meta_item(img, x, VHDX_GUID_PARENT_LOCATOR, "parent locator",
	    VHDX_PL_ENTRIES,
	    &loc) < 0)
		return -1;
	if (loc != NULL) {
		const unsigned char *e = x->meta.buf;
		size_t avail = x->meta.len - (size_t)(loc - e);

		n = le16(loc + VHDX_PL_COUNT);
		for (i = 0; i < n && VHDX_PL_ENTRIES + VHDX_PL_ENTRY_SIZE *
		    (size_t)(i + 1) <= avail; i++) {
			const unsigned char *kv = loc + VHDX_PL_ENTRIES +
			    VHDX_PL_ENTRY_SIZE * (size_t)i;
			uint32_t voff = le32(kv + VHDX_PLE_VALUE_OFFSET);
			uint32_t vlen = le16(kv + VHDX_PLE_VALUE_LENGTH);
			size_t j;

			if (voff > avail || vlen > avail - voff)
				continue;
			for (j = 0, len = 0; j + 1 < vlen && len + 1 <
			    sizeof name; j += 2) {
				unsigned c = le16(loc + voff + j);

				name[len++] = c >= 0x20 && c < 0x7f ? c : '?';
			}
			name[len] = '\0';
			if (strchr(name, '.') != NULL)
				break;	/* a path, not a GUID */
		}
	}
	return image_unsafe(img, "parent", "differencing disk: its data "
	    "depends on the parent disk '%s', which is never opened (file "
	    "parameters has_parent)", name);
}

static int parse_metadata(struct image *img, struct vhdx *x)
{
	const unsigned char *fp, *ds, *ls;
	uint32_t bs;

	if (check_meta_table(img, x) < 0 ||
	    meta_item(img, x, VHDX_GUID_FILE_PARAMS, "file parameters",
	    VHDX_FP_SIZE, &fp) < 0 ||
	    meta_item(img, x, VHDX_GUID_DISK_SIZE, "virtual disk size",
	    VHDX_DISK_SIZE_SIZE, &ds) < 0 ||
	    meta_item(img, x, VHDX_GUID_LOGICAL_SECTOR, "logical sector size",
	    VHDX_SECTOR_SIZE_SIZE, &ls) < 0)
		return -1;
	if (fp == NULL || ds == NULL || ls == NULL)
		return image_bad(img, "metadata lacks the %s item",
		    fp == NULL ? "file parameters" : ds == NULL ?
		    "virtual disk size" : "logical sector size");
	if (le32(fp + VHDX_FP_FLAGS) & VHDX_FP_HAS_PARENT)
		return reject_parent(img, x);
	strcpy(img->subformat, le32(fp + VHDX_FP_FLAGS) &
	    VHDX_FP_LEAVE_ALLOCATED ? "fixed" : "dynamic");
	bs = le32(fp + VHDX_FP_BLOCK_SIZE);
	if (bs < VHDX_BLOCK_MIN || bs > VHDX_BLOCK_MAX || (bs & (bs - 1)) != 0)
		return image_bad(img, "block size %u is not a power of two "
		    "from 1 MiB to 256 MiB (file parameters block_size)", bs);
	x->block_size = bs;
	x->logical_sector = le32(ls);
	if (x->logical_sector != 512 && x->logical_sector != 4096)
		return image_bad(img, "logical sector size %u is not 512 or "
		    "4096 (logical sector size)", x->logical_sector);
	x->disk_size = le64(ds);
	if (x->disk_size > IMAGE_VSIZE_MAX)
		return image_bad(img, "virtual size %llu is beyond the limit "
		    "of %llu bytes (virtual disk size)",
		    (unsigned long long)x->disk_size,
		    (unsigned long long)IMAGE_VSIZE_MAX);
	/* qemu counts whole 512-byte sectors; so do we, to match it. */
	img->virtual_size = x->disk_size / 512 * 512;
	img->cluster_size = bs;
	x->chunk_ratio = vhdx_chunk_ratio(x->logical_sector, bs);
	x->nblocks = (x->disk_size + bs - 1) / bs;
	return 0;
}

static uint64_t bat_entries(const struct vhdx *x)
{
	return x->nblocks == 0 ? 0 :
	    x->nblocks + (x->nblocks - 1) / x->chunk_ratio;
}

static int check_bat_size(struct image *img, struct vhdx *x)
{
	uint64_t need = bat_entries(x) * VHDX_BAT_ENTRY_SIZE;

	if (need > x->bat.len)
		return image_bad(img, "BAT region of %llu bytes is too small "
		    "for %llu blocks (region table BAT length)",
		    (unsigned long long)x->bat.len,
		    (unsigned long long)x->nblocks);
	return 0;
}

/*
 * The identifier, headers and region tables: an input too short for
 * them gives one message, known before the read from a file, met at the
 * end of a pipe.
 */
static int read_head_area(struct image *img, unsigned char *area)
{
	const struct source *src = img->src;
	const char *code;

	if (!src->size_known || src->size >= VHDX_HEAD_AREA) {
		if (image_read_at(img, area, VHDX_HEAD_AREA, 0, "headers") == 0)
			return 0;
		code = err_code();
		if (code == NULL || strcmp(code, FINDING_TRUNCATED) != 0)
			return -1;
		err_clear();
	}
	return image_defect(img, FINDING_TRUNCATED, "the image ends inside "
	    "its first %u KiB, which hold the headers and region tables",
	    VHDX_HEAD_AREA / 1024);
}

static int vhdx_open(struct image *img)
{
	struct vhdx *x = calloc(1, sizeof *x);
	unsigned char *area;

	if (x == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = x;
	x->meta.name = "metadata";
	x->bat.name = "BAT";
	x->log.name = "log";
	area = malloc(VHDX_HEAD_AREA);
	if (area == NULL)
		return fail(EXIT_IO, "out of memory");
	if (read_head_area(img, area) < 0 || parse_head_area(img, x, area) < 0) {
		free(area);
		return -1;
	}
	free(area);
	if (read_regions(img, x) < 0 || replay_log(img, x) < 0 ||
	    parse_metadata(img, x) < 0 || check_bat_size(img, x) < 0)
		return -1;
	return 0;
}

struct vblock {
	uint64_t idx;		/* virtual block number */
	uint64_t mb;		/* file offset in MiB */
};

/* The bytes of block idx that lie below the virtual size. */
static uint64_t block_len(const struct image *img, const struct vhdx *x,
    uint64_t idx)
{
	uint64_t start = idx * x->block_size;
	uint64_t len = img->virtual_size > start ?
	    img->virtual_size - start : 0;

	return len < x->block_size ? len : x->block_size;
}

static int check_block(struct image *img, struct vhdx *x, uint64_t idx,
    uint64_t off, uint64_t len)
{
	const struct region *r[3] = { &x->meta, &x->bat, &x->log };
	int i;

	if (off > UINT64_MAX - len)
		return image_bad(img, "block %llu at 0x%llx lies past any "
		    "possible end (BAT entry)", (unsigned long long)idx,
		    (unsigned long long)off);
	if (off < MIB)
		return image_defect(img, FINDING_OVERLAP, "block %llu at 0x%llx "
		    "lies in the header area (BAT entry)",
		    (unsigned long long)idx, (unsigned long long)off);
	for (i = 0; i < 3; i++)
		if (r[i]->len && overlaps(off, len, r[i]->off, r[i]->len))
			return image_defect(img, FINDING_OVERLAP, "block %llu "
			    "at 0x%llx overlaps "
			    "the %s region (BAT entry)",
			    (unsigned long long)idx, (unsigned long long)off,
			    r[i]->name);
	return 0;
}

static int by_file_offset(const void *a, const void *b);

/*
 * Issue 14: no two BAT entries name one block, no block lies over
 * another; the same from a file and a pipe, before any data is read.
 */
static int check_layout(struct image *img, struct vhdx *x,
    const struct vblock *vb, size_t n)
{
	struct vblock *s = malloc((n + 1) * sizeof *s);
	size_t i;
	int rc = 0;

	if (s == NULL)
		return fail(EXIT_IO, "out of memory");
	memcpy(s, vb, n * sizeof *s);
	qsort(s, n, sizeof *s, by_file_offset);
	for (i = 1; i < n && rc == 0; i++) {
		uint64_t prev_end = s[i - 1].mb * MIB +
		    block_len(img, x, s[i - 1].idx);

		if (s[i].mb == s[i - 1].mb)
			rc = image_defect(img, FINDING_SHARED_BLOCK, "BAT "
			    "entries of blocks %llu and %llu name the same "
			    "data at 0x%llx", (unsigned long long)s[i - 1].idx,
			    (unsigned long long)s[i].idx,
			    (unsigned long long)(s[i].mb * MIB));
		else if (s[i].mb * MIB < prev_end)
			rc = image_defect(img, FINDING_OVERLAP, "block %llu at "
			    "0x%llx overlaps block %llu (BAT entry)",
			    (unsigned long long)s[i].idx,
			    (unsigned long long)(s[i].mb * MIB),
			    (unsigned long long)s[i - 1].idx);
	}
	free(s);
	return rc;
}

/*
 * The rule that needs the input's size: the first block (in BAT order)
 * past the end.  A block takes its whole block size in the file, the
 * last one too (Hyper-V, Disk2vhd and qemu allocate whole blocks), so an
 * image cut in the unused end of its last block is truncated too.  From
 * a file before the data; from a pipe when a read runs off the end or
 * once the last block is read, with the same message.
 */
static int check_end(struct image *img, struct vhdx *x,
    const struct vblock *vb, size_t n, uint64_t size)
{
	const struct vblock *first = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t off = vb[i].mb * MIB, len = x->block_size;

		if ((off > size || len > size - off) &&
		    (first == NULL || vb[i].idx < first->idx))
			first = &vb[i];
	}
	if (first == NULL)
		return 0;
	return image_defect(img, FINDING_TRUNCATED, "block %llu at 0x%llx "
	    "lies past the end of the image (BAT entry)",
	    (unsigned long long)first->idx,
	    (unsigned long long)(first->mb * MIB));
}

/* The blocks that hold data, in virtual order; states checked. */
static int collect_blocks(struct image *img, struct vhdx *x,
    struct vblock **out, size_t *nout)
{
	struct vblock *vb;
	uint64_t i;
	size_t n = 0;

	vb = malloc((x->nblocks + 1) * sizeof *vb);
	if (vb == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < x->nblocks; i++) {
		uint64_t e = le64(x->bat.buf + VHDX_BAT_ENTRY_SIZE *
		    vhdx_bat_index(i, x->chunk_ratio));
		unsigned state = e & VHDX_BAT_STATE_MASK;

		if (state == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			free(vb);
			return image_bad(img, "block %llu is partially present, "
			    "which only a differencing disk may be (BAT entry "
			    "state)", (unsigned long long)i);
		}
		if (state != VHDX_PAYLOAD_FULLY_PRESENT) {
			if (state > VHDX_PAYLOAD_UNMAPPED) {
				free(vb);
				return image_bad(img, "block %llu has unknown "
				    "state %u (BAT entry state)",
				    (unsigned long long)i, state);
			}
			continue;	/* reads as zeros */
		}
		vb[n] = (struct vblock){ i, e >> VHDX_BAT_OFFSET_SHIFT };
		if (check_block(img, x, i, vb[n].mb * MIB,
		    block_len(img, x, i)) < 0) {
			free(vb);
			return -1;
		}
		n++;
	}
	if (check_layout(img, x, vb, n) < 0 || (img->src->size_known &&
	    check_end(img, x, vb, n, img->src->size) < 0)) {
		free(vb);
		return -1;
	}
	*out = vb;
	*nout = n;
	return 0;
}

/* File bytes [off, off + len) to virtual voff, read, the log's writes over. */
static int emit_patched(struct image *img, struct emitter *em,
    unsigned char *buf, uint64_t off, uint64_t len, uint64_t voff)
{
	struct vhdx *x = img->priv;

	while (len > 0) {
		size_t n = len < VHDX_CHUNK ? len : VHDX_CHUNK;

		if (image_read_at(img, buf, n, off, "data") < 0)
			return -1;
		vhdx_overlay_patch(&x->ov, buf, off, n);
		if (emit_data(em, voff, buf, n) < 0)
			return -1;
		off += n;
		voff += n;
		len -= n;
	}
	return 0;
}

/*
 * File bytes [off, off + len) to virtual voff, with the log's writes put
 * over them.  Only the bytes a write of the log meets are read here: the
 * rest goes as any reader's data, holes of the file as zeros unread (a
 * walk reads nothing: the log does not matter there).
 */
static int emit_file(struct image *img, struct emitter *em,
    unsigned char *buf, uint64_t off, uint64_t len, uint64_t voff)
{
	struct vhdx *x = img->priv;
	const struct vhdx_seg *g = NULL;
	uint64_t end = off + len, a, b;

	while (off < end) {
		if (!img->walk)
			g = vhdx_overlay_find(&x->ov, off, end);
		a = g == NULL ? end : g->off > off ? g->off : off;
		if (a > off && image_emit_range(img, em, buf, VHDX_CHUNK, off,
		    a - off, voff) < 0)
			return -1;
		voff += a - off;
		off = a;
		if (g == NULL)
			break;
		b = g->end < end ? g->end : end;
		if (emit_patched(img, em, buf, off, b - off, voff) < 0)
			return -1;
		voff += b - off;
		off = b;
	}
	return 0;
}

/*
 * Seekable: virtual order; blocks that follow each other both on the
 * disk and in the file are read as one run.
 */
static int read_seekable(struct image *img, struct emitter *em,
    const struct vblock *vb, size_t n, unsigned char *buf)
{
	struct vhdx *x = img->priv;
	uint64_t done = 0, bs = x->block_size;
	size_t i, j;

	for (i = 0; i < n; i = j) {
		uint64_t len = block_len(img, x, vb[i].idx);

		for (j = i + 1; j < n && vb[j].idx == vb[j - 1].idx + 1 &&
		    vb[j].mb * MIB == vb[j - 1].mb * MIB + bs; j++)
			len += block_len(img, x, vb[j].idx);
		if (emit_zero(em, done, vb[i].idx * bs - done) < 0 ||
		    emit_file(img, em, buf, vb[i].mb * MIB, len,
		    vb[i].idx * bs) < 0)
			return -1;
		done = vb[i].idx * bs + len;
	}
	return emit_zero(em, done, img->virtual_size - done);
}

static int by_file_offset(const void *a, const void *b)
{
	const struct vblock *x = a, *y = b;

	return x->mb < y->mb ? -1 : x->mb > y->mb;
}

static struct parked *find_parked(struct vhdx *x, uint64_t mb)
{
	size_t lo = 0, hi = x->nparked;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->parked[mid].mb < mb)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < x->nparked && x->parked[lo].mb == mb ? &x->parked[lo]
	    : NULL;
}

/* One MiB unit (or the block's tail) of a block, from the stash or stream. */
static int emit_unit(struct image *img, struct emitter *em, uint64_t mb,
    uint64_t len, uint64_t voff, unsigned char *buf)
{
	struct vhdx *x = img->priv;
	struct parked *p;

	if (mb >= x->parked_end_mb) {
		if (mb * MIB < img->src->pos)
			return image_bad(img, "block data at 0x%llx lies behind "
			    "data already read from the pipe (two BAT entries "
			    "share it)", (unsigned long long)(mb * MIB));
		return emit_file(img, em, buf, mb * MIB, len, voff);
	}
	p = find_parked(x, mb);
	if (p == NULL || p->taken)
		return image_bad(img, "block data at 0x%llx was not kept from "
		    "the pipe (two BAT entries share it)",
		    (unsigned long long)(mb * MIB));
	p->taken = true;
	if (p->zero && x->ov.nsegs == 0)
		return emit_zero(em, voff, len);
	if (p->zero)
		memset(buf, 0, len);	/* the log may write here */
	else if (stash_take(img->stash, &p->ref, buf) < 0)
		return -1;
	vhdx_overlay_patch(&x->ov, buf, mb * MIB, len);
	return emit_data(em, voff, buf, len);
}

/*
 * A pipe: blocks in file order.  Before each, promise the emitter that
 * nothing below the lowest block still to come will arrive, so zero gaps
 * flow out instead of waiting.
 */
static int read_stream(struct image *img, struct emitter *em,
    struct vblock *vb, size_t n, unsigned char *buf)
{
	struct vhdx *x = img->priv;
	uint64_t *low, bs = x->block_size;
	size_t i;
	int rc = 0;

	low = malloc((n + 1) * sizeof *low);
	if (low == NULL)
		return fail(EXIT_IO, "out of memory");
	qsort(vb, n, sizeof *vb, by_file_offset);
	low[n] = x->nblocks;
	for (i = n; i-- > 0;)
		low[i] = vb[i].idx < low[i + 1] ? vb[i].idx : low[i + 1];
	for (i = 0; i < n && rc == 0; i++) {
		uint64_t len = block_len(img, x, vb[i].idx), u;

		rc = emit_upto(em, low[i] * bs);
		for (u = 0; u < len && rc == 0; u += MIB)
			rc = emit_unit(img, em, vb[i].mb + u / MIB,
			    len - u < MIB ? len - u : MIB,
			    vb[i].idx * bs + u, buf);
	}
	free(low);
	return rc;
}

/* From a pipe: the input must hold the whole of every block. */
static int skip_to_blocks_end(struct image *img, struct vhdx *x,
    const struct vblock *vb, size_t n)
{
	uint64_t end = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (vb[i].mb * MIB + x->block_size > end)
			end = vb[i].mb * MIB + x->block_size;
	if (end <= img->src->pos || image_skip_to(img, end) == 0)
		return 0;
	return -1;
}

/*
 * From a pipe, a read that ran off the end: read to the end and name the
 * first block past it, as a file does.
 */
static int end_of_stream(struct image *img, struct vhdx *x,
    const struct vblock *vb, size_t n, unsigned char *buf, int rc)
{
	const char *code;
	char msg[512];
	ssize_t got;

	if (rc == 0)
		rc = skip_to_blocks_end(img, x, vb, n);
	code = err_code();
	if (rc == 0 || code == NULL || strcmp(code, FINDING_TRUNCATED) != 0)
		return rc;
	snprintf(msg, sizeof msg, "%s", err_msg());
	err_clear();
	while ((got = image_read_forward(img, buf, VHDX_CHUNK)) > 0)
		;
	if (got < 0 || check_end(img, x, vb, n, img->src->pos) < 0)
		return -1;
	return fail_code(EXIT_REJECT, FINDING_TRUNCATED, "%s", msg);
}

static int vhdx_read(struct image *img, struct emitter *em)
{
	struct vhdx *x = img->priv;
	struct vblock *vb = NULL;
	size_t n = 0;
	unsigned char *buf;
	int rc;

	if (collect_blocks(img, x, &vb, &n) < 0)
		return -1;
	buf = bigbuf_alloc(VHDX_CHUNK);
	if (buf == NULL) {
		free(vb);
		return fail(EXIT_IO, "out of memory");
	}
	rc = img->src->seekable ? read_seekable(img, em, vb, n, buf)
	    : end_of_stream(img, x, vb, n, buf, read_stream(img, em, vb, n,
	    buf));
	if (rc == 0 && !img->src->seekable && x->ov.nentries > 0)
		rc = check_flushed_stream(img, x, buf);
	bigbuf_free(buf);
	free(vb);
	return rc;
}

static void vhdx_close(struct image *img)
{
	struct vhdx *x = img->priv;
	size_t i;

	if (x == NULL)
		return;
	for (i = 0; i < x->nparked; i++)
		if (!x->parked[i].zero && !x->parked[i].taken)
			stash_drop(img->stash, &x->parked[i].ref);
	if (x->capparked > 0)
		stash_charge(img->stash, -(int64_t)(x->capparked *
		    sizeof *x->parked + STASH_MALLOC_OVERHEAD));
	free(x->parked);
	free(x->meta.buf);
	free(x->bat.buf);
	free(x->log.buf);
	vhdx_overlay_free(&x->ov);
	free(x);
}

const struct format format_vhdx = {
	.name = "vhdx",
	.desc = "VHDX, Microsoft Hyper-V virtual hard disk v2: fixed and "
	    "dynamic",
	.bid = vhdx_bid,
	.open = vhdx_open,
	.read = vhdx_read,
	.close = vhdx_close,
};
