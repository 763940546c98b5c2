/*
 * vhd: Microsoft Virtual Hard Disk, which qemu-img calls "vpc".
 *
 * A fixed disk is the raw data followed by a 512-byte footer.  A dynamic
 * disk starts with a copy of that footer, then a dynamic header
 * ("cxsparse") that points to the block allocation table (BAT): one
 * big-endian sector number per block, 0xffffffff for none.  Each block is
 * a sector bitmap followed by the block's data.  Differencing disks
 * (type 4) need a parent file and are rejected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "fmt/vhd/vhd.h"
#include "imgpipe/bigbuf.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/zero.h"

/* Blocks are 2 MiB in practice; this keeps one block's bitmap small. */
#define VHD_BLOCK_MAX (256u * 1024 * 1024)
#define VHD_CHUNK (4u * 1024 * 1024)
/* What a pipe passes on its way to a table is parked in runs this long. */
#define VHD_PARK_UNIT (1u * 1024 * 1024)

/* A run of input a pipe passed before the table it was reading (pipes). */
struct parked {
	uint64_t off;
	uint32_t len;
	bool zero;		/* all zeros: nothing stashed */
	struct stash_ref ref;
};

struct vhd {
	unsigned char footer[VHD_FOOTER_SIZE];
	uint32_t type;
	bool footer_at_end;	/* fixed disk from a pipe: footer still to come */
	uint64_t data_len;	/* fixed: bytes of data before the footer */
	uint32_t block_size;
	uint32_t bitmap_size;
	uint32_t nblocks;	/* BAT entries that cover the virtual size */
	uint32_t *bat;
	uint64_t dh_off;	/* dynamic header */
	uint64_t bat_off, bat_len;	/* the whole table, max_table_entries */
	struct parked *parked;	/* pipes: in file order */
	size_t nparked, capparked;
	unsigned char *unit;	/* VHD_PARK_UNIT bytes, once anything is parked */
};

/*
 * The footer at the end of a fixed disk: the same rule for a file, for
 * `-f vpc` from a pipe, and for the raw reader's question at the end of a
 * pipe, so all three agree.  0, or -1 with the rejection recorded.
 */
static int check_fixed_footer(const unsigned char *ft)
{
	uint32_t want = vhd_checksum(ft, VHD_FOOTER_SIZE, VHD_FT_CHECKSUM);

	if (memcmp(ft, VHD_FOOTER_COOKIE, 8) != 0)
		return fail_code(EXIT_REJECT, FINDING_MALFORMED, "vpc: no "
		    "footer cookie 'conectix' (footer at the end)");
	if (be32(ft + VHD_FT_CHECKSUM) != want)
		return fail_code(EXIT_REJECT, FINDING_MALFORMED, "vpc: footer "
		    "checksum 0x%08x does not match the computed 0x%08x "
		    "(footer at the end)", be32(ft + VHD_FT_CHECKSUM), want);
	if (be32(ft + VHD_FT_TYPE) != VHD_TYPE_FIXED)
		return fail_code(EXIT_REJECT, FINDING_MALFORMED, "vpc: footer "
		    "at the end has disk type %u, not fixed (2), and there is "
		    "no footer copy at the start (footer type)",
		    be32(ft + VHD_FT_TYPE));
	return 0;
}

/*
 * The raw reader asks at the end of a pipe: are these last bytes a fixed
 * VHD's footer?  A disk is every byte before it, whatever current_size
 * or the geometry say (vhd_open_fixed does the same from a file).  A
 * footer cookie on a footer that does not check out is rejected, as it
 * is from a file.
 */
static size_t vhd_trailer(const unsigned char *p, size_t len,
    uint64_t data_len)
{
	(void)data_len;
	if (len != VHD_FOOTER_SIZE || memcmp(p, VHD_FOOTER_COOKIE, 8) != 0)
		return 0;
	return check_fixed_footer(p) < 0 ? SIZE_MAX : VHD_FOOTER_SIZE;
}

/*
 * A dynamic disk shows "conectix" at 0; a fixed one only at the end, which
 * a seekable probe sees.  From a pipe a fixed disk cannot be told from raw
 * until its end, so the reader bids as low as raw there: raw, listed
 * before us in the table, wins the tie, strips a fixed footer itself, and
 * `-f vpc` still works.
 */
static int vhd_bid(const struct probe *pb)
{
	if (pb->headlen >= 8 && memcmp(pb->head, VHD_FOOTER_COOKIE, 8) == 0)
		return BID_SIGNATURE;
	if (pb->taillen == VHD_FOOTER_SIZE &&
	    memcmp(pb->tail, VHD_FOOTER_COOKIE, 8) == 0)
		return BID_SIGNATURE;
	if (pb->tail == NULL && !pb->size_known)
		return BID_CATCHALL;
	return BID_NONE;
}

static int check_footer(struct image *img, const unsigned char *ft,
    const char *where)
{
	uint32_t want = vhd_checksum(ft, VHD_FOOTER_SIZE, VHD_FT_CHECKSUM);

	if (memcmp(ft, VHD_FOOTER_COOKIE, 8) != 0)
		return image_bad(img, "no footer cookie 'conectix' (%s)",
		    where);
	if (be32(ft + VHD_FT_CHECKSUM) != want)
		return image_bad(img, "footer checksum 0x%08x does not match "
		    "the computed 0x%08x (%s)", be32(ft + VHD_FT_CHECKSUM), want,
		    where);
	return 0;
}

static bool creator_is(const unsigned char *ft, const char *id)
{
	return memcmp(ft + VHD_FT_CREATOR_APP, id, 4) == 0;
}

static uint64_t geometry_sectors(const unsigned char *ft)
{
	return (uint64_t)be16(ft + VHD_FT_CYLINDERS) * ft[VHD_FT_HEADS] *
	    ft[VHD_FT_SECTORS];
}

static uint64_t current_size(const unsigned char *ft)
{
	return be64(ft + VHD_FT_CURRENT_SIZE) / VHD_SECTOR * VHD_SECTOR;
}

/*
 * The size rule of a dynamic disk (issue 13): Virtual PC and qemu
 * without force_size size a disk by its CHS geometry, which is what
 * their guests see; every other creator writes the size it means in
 * current_size.  A geometry at its maximum means "too big for CHS":
 * current_size again.
 */
static bool sized_by_geometry(const unsigned char *ft)
{
	return (creator_is(ft, VHD_CREATOR_VPC) ||
	    creator_is(ft, VHD_CREATOR_QEMU)) &&
	    geometry_sectors(ft) != VHD_GEOM_MAX_SECTORS;
}

/*
 * What qemu-img 7.2 decides, for imginfo when it differs: geometry for
 * every creator but its list of those that use current_size.
 */
static uint64_t qemu_size(const unsigned char *ft)
{
	static const char *const by_size[] = { VHD_CREATOR_HYPERV,
	    VHD_CREATOR_QEMU2, VHD_CREATOR_D2V, VHD_CREATOR_XENCONV,
	    VHD_CREATOR_XEN };
	size_t i;

	for (i = 0; i < sizeof by_size / sizeof by_size[0]; i++)
		if (creator_is(ft, by_size[i]))
			return current_size(ft);
	if (geometry_sectors(ft) == VHD_GEOM_MAX_SECTORS)
		return current_size(ft);
	return geometry_sectors(ft) * VHD_SECTOR;
}

/* The creator id, NULs and other bytes shown as C escapes. */
static void creator_text(const unsigned char *ft, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < 4 && n + 5 < outlen; i++) {
		unsigned char c = ft[VHD_FT_CREATOR_APP + i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			out[n++] = (char)c;
		else if (c == 0)
			n += (size_t)snprintf(out + n, outlen - n, "\\0");
		else
			n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
	}
	out[n] = '\0';
}

/* imginfo: which rule gave the size, and the sizes the footer declares. */
static void size_details(struct image *img, const unsigned char *ft,
    const char *rule)
{
	char creator[24];
	uint64_t q = qemu_size(ft);

	creator_text(ft, creator, sizeof creator);
	image_detail(img, "creator", "'%s' %u.%u", creator,
	    be32(ft + VHD_FT_CREATOR_VERSION) >> 16,
	    be32(ft + VHD_FT_CREATOR_VERSION) & 0xffff);
	image_detail(img, "size-rule", "%s", rule);
	image_detail(img, "current-size", "%llu",
	    (unsigned long long)be64(ft + VHD_FT_CURRENT_SIZE));
	image_detail(img, "geometry", "%u/%u/%u (%llu bytes)",
	    be16(ft + VHD_FT_CYLINDERS), ft[VHD_FT_HEADS], ft[VHD_FT_SECTORS],
	    (unsigned long long)(geometry_sectors(ft) * VHD_SECTOR));
	if (q != img->virtual_size)
		image_detail(img, "qemu-img-size", "%llu (qemu-img 7.2's rule "
		    "for this creator)", (unsigned long long)q);
}

static int set_dynamic_size(struct image *img, const unsigned char *ft)
{
	bool chs = sized_by_geometry(ft);
	uint64_t size = chs ? geometry_sectors(ft) * VHD_SECTOR :
	    current_size(ft);

	if (size > VHD_MAX_SECTORS * VHD_SECTOR)
		return image_bad(img, "virtual size %llu is beyond the VHD "
		    "limit of 2040 GiB (footer current_size/geometry)",
		    (unsigned long long)size);
	img->virtual_size = size;
	size_details(img, ft, chs ? "geometry (creator sizes by CHS)" :
	    "current_size");
	return 0;
}

/* A fixed disk is every byte before its footer. */
static void set_fixed_size(struct image *img, const unsigned char *ft,
    uint64_t data_len)
{
	img->virtual_size = data_len;
	size_details(img, ft, "the bytes before the footer");
}

/* The parent's name, UTF-16BE in the header, shown as ASCII. */
static void parent_name(const unsigned char *dh, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i + 1 < VHD_DH_PARENT_NAME_LEN && n + 1 < outlen; i += 2) {
		unsigned c = be16(dh + VHD_DH_PARENT_NAME + i);

		if (c == 0)
			break;
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[n] = '\0';
}

/*
 * From a pipe, the bytes passed on the way to a table are parked (in the
 * stash): the BAT may lie before the dynamic header, blocks before the
 * BAT, and a file reads such a layout in any order.  The first 512 bytes
 * are the footer copy, which nothing else may overlap, so everything a
 * pipe could need again is kept.  Stops quietly at the end of the input:
 * the read that follows names what lies past it.
 */
static int park_to(struct image *img, struct vhd *v, uint64_t off)
{
	while (img->src->pos < off) {
		uint64_t at = img->src->pos, want = off - at;
		struct parked *p;
		ssize_t n;

		if (v->unit == NULL && (v->unit = malloc(VHD_PARK_UNIT)) == NULL)
			return fail(EXIT_IO, "out of memory");
		n = image_read_forward(img, v->unit, want < VHD_PARK_UNIT ?
		    want : VHD_PARK_UNIT);
		if (n <= 0)
			return n < 0 ? -1 : 0;
		switch (grow_array(&v->parked, v->nparked, &v->capparked,
		    sizeof *v->parked, 16, IMAGE_META_MAX)) {
		case 1:
			return image_bad(img, "too much data before the "
			    "dynamic header and BAT to hold from a pipe");
		case -1:
			return -1;
		}
		p = &v->parked[v->nparked];
		*p = (struct parked){ .off = at, .len = (uint32_t)n,
		    .zero = is_zero(v->unit, (size_t)n) };
		if (!p->zero && stash_put(img->stash, v->unit, (size_t)n,
		    &p->ref) < 0)
			return -1;
		v->nparked++;
	}
	return 0;
}

/* The first parked run that ends after off. */
static size_t parked_at(const struct vhd *v, uint64_t off)
{
	size_t lo = 0, hi = v->nparked;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->parked[mid].off + v->parked[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Bytes [off, off + len) a pipe has passed, from the parked runs. */
static int read_parked(struct image *img, struct vhd *v, unsigned char *buf,
    size_t len, uint64_t off, const char *what)
{
	size_t i = parked_at(v, off);

	for (; len > 0; i++) {
		const struct parked *p = &v->parked[i];
		size_t skip, n;

		if (i >= v->nparked || p->off > off)
			return image_bad(img, "%s at 0x%llx lies behind data "
			    "already read from the pipe", what,
			    (unsigned long long)off);
		skip = (size_t)(off - p->off);
		n = p->len - skip < len ? p->len - skip : len;
		if (p->zero)
			memset(buf, 0, n);
		else if (stash_peek(img->stash, &p->ref, v->unit) < 0)
			return -1;
		else
			memcpy(buf, v->unit + skip, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Input bytes [off, off + len): what a pipe has passed comes from the
 * parked runs, the rest from the source. */
static int vhd_read_at(struct image *img, struct vhd *v, void *buf,
    size_t len, uint64_t off, const char *what)
{
	uint64_t pos = img->src->pos;
	unsigned char *p = buf;

	if (!img->src->seekable && off < pos) {
		size_t behind = off + len <= pos ? len : (size_t)(pos - off);

		if (read_parked(img, v, p, behind, off, what) < 0)
			return -1;
		p += behind;
		off += behind;
		len -= behind;
		if (len == 0)
			return 0;
	}
	return image_read_at(img, p, len, off, what);
}

static int table_past_end(struct image *img, const char *what,
    uint64_t off, const char *field)
{
	return image_defect(img, FINDING_TRUNCATED, "%s at 0x%llx lies past "
	    "the end of the image%s%s%s", what, (unsigned long long)off,
	    field ? " (" : "", field ? field : "", field ? ")" : "");
}

/*
 * A table read at open (the footer copy, the dynamic header, the BAT):
 * a file too short for it, known before the read, and a pipe that ends
 * inside it give one message and one finding code (issue 14).  field
 * names the value that placed the table (NULL: none did).
 */
static int read_table(struct image *img, struct vhd *v, void *buf,
    size_t len, uint64_t off, const char *what, const char *field)
{
	const struct source *src = img->src;
	const char *code;

	if (src->size_known && (off > src->size || len > src->size - off))
		return table_past_end(img, what, off, field);
	if ((!src->seekable && park_to(img, v, off) < 0))
		return -1;
	if (vhd_read_at(img, v, buf, len, off, what) == 0)
		return 0;
	code = err_code();
	if (code == NULL || strcmp(code, FINDING_TRUNCATED) != 0)
		return -1;
	err_clear();
	return table_past_end(img, what, off, field);
}

static int open_fixed(struct image *img, struct vhd *v)
{
	struct source *src = img->src;

	strcpy(img->subformat, "fixed");
	v->type = VHD_TYPE_FIXED;
	if (!src->seekable) {
		/* The footer comes last; read_fixed_stream checks it. */
		v->footer_at_end = true;
		img->size_late = true;
		return 0;
	}
	if (!src->size_known || src->size < VHD_FOOTER_SIZE)
		return image_bad(img, "input too short for a footer");
	if (image_read_at(img, v->footer, VHD_FOOTER_SIZE,
	    src->size - VHD_FOOTER_SIZE, "footer") < 0 ||
	    check_fixed_footer(v->footer) < 0)
		return -1;
	v->data_len = src->size - VHD_FOOTER_SIZE;
	set_fixed_size(img, v->footer, v->data_len);
	return 0;
}

static int check_dyn_header(struct image *img, struct vhd *v,
    const unsigned char *dh)
{
	uint32_t want = vhd_checksum(dh, VHD_DYN_HEADER_SIZE, VHD_DH_CHECKSUM);
	char parent[128];

	if (memcmp(dh, VHD_DYN_COOKIE, 8) != 0)
		return image_bad(img, "no dynamic header cookie 'cxsparse' "
		    "(footer data_offset)");
	if (be32(dh + VHD_DH_CHECKSUM) != want)
		return image_bad(img, "dynamic header checksum 0x%08x does not "
		    "match the computed 0x%08x", be32(dh + VHD_DH_CHECKSUM), want);
	if (v->type == VHD_TYPE_DIFFERENCING) {
		parent_name(dh, parent, sizeof parent);
		return image_unsafe(img, "parent", "differencing disk: its "
		    "data depends on the parent disk '%s', which is never "
		    "opened", parent);
	}
	return 0;
}

static int read_bat(struct image *img, struct vhd *v, uint64_t bat_off)
{
	unsigned char *raw;
	uint32_t i;

	raw = malloc((size_t)v->nblocks * VHD_BAT_ENTRY_SIZE + 1);
	v->bat = malloc((size_t)v->nblocks * VHD_BAT_ENTRY_SIZE + 1);
	if (raw == NULL || v->bat == NULL) {
		free(raw);
		return fail(EXIT_IO, "out of memory");
	}
	if (read_table(img, v, raw, (size_t)v->nblocks * VHD_BAT_ENTRY_SIZE,
	    bat_off, "BAT", "dynamic header table_offset") < 0) {
		free(raw);
		return -1;
	}
	for (i = 0; i < v->nblocks; i++)
		v->bat[i] = be32(raw + VHD_BAT_ENTRY_SIZE * (size_t)i);
	free(raw);
	return 0;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * The BAT lies over neither the footer copy nor the dynamic header; a
 * field rule, the same from a file and a pipe.  Where it ends is checked
 * by its read (read_table) and, for the whole table, by check_end.
 */
static int check_bat_place(struct image *img, const struct vhd *v)
{
	if (v->bat_off > UINT64_MAX - v->bat_len)
		return table_past_end(img, "BAT", v->bat_off,
		    "dynamic header table_offset");
	if (overlaps(v->bat_off, v->bat_len, 0, VHD_FOOTER_SIZE) ||
	    overlaps(v->bat_off, v->bat_len, v->dh_off, VHD_DYN_HEADER_SIZE))
		return image_defect(img, FINDING_OVERLAP, "BAT at 0x%llx "
		    "overlaps the %s (dynamic header table_offset)",
		    (unsigned long long)v->bat_off, overlaps(v->bat_off,
		    v->bat_len, 0, VHD_FOOTER_SIZE) ? "footer copy" :
		    "dynamic header");
	return 0;
}

/* Check the geometry of the block table before anything is allocated. */
static int check_blocks(struct image *img, struct vhd *v,
    const unsigned char *dh, uint64_t *bat_off)
{
	uint32_t bs = be32(dh + VHD_DH_BLOCK_SIZE);
	uint32_t entries = be32(dh + VHD_DH_MAX_ENTRIES);
	uint64_t need;

	*bat_off = be64(dh + VHD_DH_TABLE_OFFSET);
	if (bs < VHD_SECTOR || bs > VHD_BLOCK_MAX || (bs & (bs - 1)) != 0)
		return image_bad(img, "block size %u is not a power of two "
		    "from 512 bytes to 256 MiB (dynamic header block_size)",
		    bs);
	v->block_size = bs;
	v->bitmap_size = vhd_bitmap_size(bs);
	need = (img->virtual_size + bs - 1) / bs;
	if (need > entries)
		return image_bad(img, "%u BAT entries do not cover the virtual "
		    "size of %llu bytes (dynamic header max_table_entries)",
		    entries, (unsigned long long)img->virtual_size);
	if ((uint64_t)entries * VHD_BAT_ENTRY_SIZE > IMAGE_META_MAX)
		return image_bad(img, "BAT of %u entries is larger than the "
		    "limit of %llu bytes (dynamic header max_table_entries)",
		    entries, (unsigned long long)IMAGE_META_MAX);
	v->nblocks = need;
	v->bat_off = *bat_off;
	v->bat_len = (uint64_t)entries * VHD_BAT_ENTRY_SIZE;
	img->cluster_size = bs;
	return check_bat_place(img, v);
}

/* The bytes block idx takes in the file: its bitmap, then its data up to
 * the virtual size. */
static uint64_t block_span(const struct image *img, const struct vhd *v,
    uint32_t idx)
{
	uint64_t vlen = img->virtual_size - (uint64_t)idx * v->block_size;

	return v->bitmap_size + (vlen < v->block_size ? vlen : v->block_size);
}

struct host_block {
	uint32_t sector;
	uint32_t idx;
};

static int by_host(const void *a, const void *b)
{
	const struct host_block *x = a, *y = b;

	if (x->sector != y->sector)
		return x->sector < y->sector ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The allocated blocks, in file order (n of them); NULL when out of memory. */
static struct host_block *blocks_by_host(const struct vhd *v, uint32_t *n)
{
	struct host_block *hb = malloc(((size_t)v->nblocks + 1) * sizeof *hb);
	uint32_t i;

	*n = 0;
	if (hb == NULL)
		return NULL;
	for (i = 0; i < v->nblocks; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			hb[(*n)++] = (struct host_block){ v->bat[i], i };
	qsort(hb, *n, sizeof *hb, by_host);
	return hb;
}

/* A block over the footer copy, the dynamic header or the BAT. */
static int check_block_meta(struct image *img, const struct vhd *v,
    uint32_t idx, uint64_t host, uint64_t len)
{
	const char *what = overlaps(host, len, 0, VHD_FOOTER_SIZE) ?
	    "footer copy" : overlaps(host, len, v->dh_off,
	    VHD_DYN_HEADER_SIZE) ? "dynamic header" : overlaps(host, len,
	    v->bat_off, v->bat_len) ? "BAT" : NULL;

	if (what == NULL)
		return 0;
	return image_defect(img, FINDING_OVERLAP, "block %u at 0x%llx "
	    "overlaps the %s (BAT entry %u)", idx, (unsigned long long)host,
	    what, idx);
}

/*
 * Issue 14: the rules of the block table that need no input size, the
 * same from a file and from a pipe (checked at open, before any data):
 * no block over the metadata, no two entries naming one block, no block
 * over another.  In file order, so the first fault found is the same
 * whichever way the image arrives.
 */
static int check_layout(struct image *img, struct vhd *v)
{
	struct host_block *hb;
	uint64_t prev_end = 0;
	uint32_t i, n, prev = 0;
	int rc = 0;

	if ((hb = blocks_by_host(v, &n)) == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		uint64_t host = (uint64_t)hb[i].sector * VHD_SECTOR;
		uint64_t len = block_span(img, v, hb[i].idx);

		rc = check_block_meta(img, v, hb[i].idx, host, len);
		if (rc == 0 && i > 0 && hb[i].sector == hb[i - 1].sector)
			rc = image_defect(img, FINDING_SHARED_BLOCK, "BAT "
			    "entries %u and %u name the same block at 0x%llx",
			    prev, hb[i].idx, (unsigned long long)host);
		else if (rc == 0 && i > 0 && host < prev_end)
			rc = image_defect(img, FINDING_OVERLAP, "block %u at "
			    "0x%llx overlaps block %u (BAT entry %u)",
			    hb[i].idx, (unsigned long long)host, prev,
			    hb[i].idx);
		prev = hb[i].idx;
		prev_end = host + len;
	}
	free(hb);
	return rc;
}

/*
 * The rules that need the input's end: every block and table ends before
 * the footer in the last 512 bytes (tail, NULL when the input is shorter
 * or they were not seen whole), and that footer is there.  From a file
 * at open; from a pipe once its end is seen, with the same messages.
 */
static int check_end(struct image *img, const struct vhd *v, uint64_t size,
    const unsigned char *tail)
{
	uint64_t room = size < VHD_FOOTER_SIZE ? 0 : size - VHD_FOOTER_SIZE;
	uint64_t meta_end = v->dh_off + VHD_DYN_HEADER_SIZE;
	uint32_t i;

	for (i = 0; i < v->nblocks; i++) {
		uint64_t host = (uint64_t)v->bat[i] * VHD_SECTOR;

		if (v->bat[i] != VHD_BAT_UNUSED &&
		    host + block_span(img, v, i) > room)
			return image_defect(img, FINDING_TRUNCATED, "block %u "
			    "at 0x%llx lies past the end of the image, which "
			    "ends at 0x%llx with its footer (BAT entry %u)", i,
			    (unsigned long long)host,
			    (unsigned long long)size, i);
	}
	if (v->bat_off + v->bat_len > meta_end)
		meta_end = v->bat_off + v->bat_len;
	if (meta_end > room)
		return image_defect(img, FINDING_TRUNCATED, "the image ends at "
		    "0x%llx, leaving no room for the footer after its tables, "
		    "which end at 0x%llx", (unsigned long long)size,
		    (unsigned long long)meta_end);
	if (tail == NULL || memcmp(tail, VHD_FOOTER_COOKIE, 8) != 0 ||
	    be32(tail + VHD_FT_CHECKSUM) != vhd_checksum(tail,
	    VHD_FOOTER_SIZE, VHD_FT_CHECKSUM))
		return image_defect(img, FINDING_TRUNCATED, "no footer in the "
		    "last 512 bytes of the image, which ends at 0x%llx",
		    (unsigned long long)size);
	return 0;
}

/* From a file: the same end rules, with the last 512 bytes read. */
static int check_file_end(struct image *img, const struct vhd *v)
{
	unsigned char tail[VHD_FOOTER_SIZE];
	uint64_t size = img->src->size;

	if (size >= VHD_FOOTER_SIZE && image_read_at(img, tail,
	    VHD_FOOTER_SIZE, size - VHD_FOOTER_SIZE, "footer") < 0)
		return -1;
	return check_end(img, v, size, size >= VHD_FOOTER_SIZE ? tail : NULL);
}

static int open_dynamic(struct image *img, struct vhd *v)
{
	unsigned char dh[VHD_DYN_HEADER_SIZE];
	uint64_t dh_off, bat_off;

	if (read_table(img, v, v->footer, VHD_FOOTER_SIZE, 0, "footer copy",
	    NULL) < 0 ||
	    check_footer(img, v->footer, "footer copy at the start") < 0)
		return -1;
	v->type = be32(v->footer + VHD_FT_TYPE);
	if (v->type != VHD_TYPE_DYNAMIC && v->type != VHD_TYPE_DIFFERENCING)
		return image_bad(img, "disk type %u in the footer copy at the "
		    "start is not dynamic (3) or differencing (4) (footer type)",
		    v->type);
	strcpy(img->subformat, v->type == VHD_TYPE_DYNAMIC ? "dynamic"
	    : "differencing");
	v->dh_off = dh_off = be64(v->footer + VHD_FT_DATA_OFFSET);
	if (dh_off < VHD_FOOTER_SIZE)
		return image_defect(img, FINDING_OVERLAP, "dynamic header at "
		    "0x%llx overlaps the footer copy (footer data_offset)",
		    (unsigned long long)dh_off);
	if (read_table(img, v, dh, sizeof dh, dh_off, "dynamic header",
	    "footer data_offset") < 0 ||
	    check_dyn_header(img, v, dh) < 0 ||
	    set_dynamic_size(img, v->footer) < 0 ||
	    check_blocks(img, v, dh, &bat_off) < 0 ||
	    read_bat(img, v, bat_off) < 0 || check_layout(img, v) < 0)
		return -1;
	if (img->src->size_known)
		return check_file_end(img, v);
	return 0;
}

static int vhd_open(struct image *img)
{
	struct vhd *v = calloc(1, sizeof *v);
	const struct source *src = img->src;

	if (v == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = v;
	/* An empty fixed disk is its footer alone, all the input there is. */
	if (src->headlen == VHD_FOOTER_SIZE &&
	    be32(src->head + VHD_FT_TYPE) == VHD_TYPE_FIXED)
		return open_fixed(img, v);
	if (src->headlen >= 8 && memcmp(src->head, VHD_FOOTER_COOKIE, 8) == 0)
		return open_dynamic(img, v);
	return open_fixed(img, v);
}

static int read_fixed_seekable(struct image *img, struct emitter *em,
    unsigned char *buf)
{
	uint64_t off = 0, start, end;
	int r;

	while ((r = source_next_data(img->src, off, &start, &end)) > 0 &&
	    start < img->virtual_size) {
		if (end > img->virtual_size)
			end = img->virtual_size;
		if (image_emit_range(img, em, buf, VHD_CHUNK, start,
		    end - start, start) < 0)
			return -1;
		off = end;
	}
	return r < 0 ? -1 : 0;
}

/* From a pipe the footer is the last 512 bytes: hold them back until EOF. */
static int read_fixed_stream(struct image *img, struct emitter *em,
    unsigned char *buf)
{
	struct vhd *v = img->priv;
	uint64_t off;
	size_t have;

	if (image_stream_hold_tail(img, em, buf, VHD_CHUNK, &off, &have) < 0)
		return -1;
	if (have < VHD_FOOTER_SIZE)
		return image_bad(img, "input of %llu bytes ends without a "
		    "footer", (unsigned long long)(off + have));
	memcpy(v->footer, buf, VHD_FOOTER_SIZE);
	if (check_fixed_footer(v->footer) < 0)
		return -1;
	v->data_len = off;
	set_fixed_size(img, v->footer, off);
	em->size = off;
	return 0;
}

/* Sector s of a block holds data when its bit (MSB first) is set. */
static bool sector_present(const unsigned char *bitmap, uint32_t s)
{
	return bitmap[s / 8] & (0x80 >> (s % 8));
}

/*
 * Input bytes [off, off + len) to virtual voff: from a pipe, those it
 * passed on the way to the BAT come from the parked runs.
 */
static int emit_input(struct image *img, struct vhd *v, struct emitter *em,
    unsigned char *buf, uint64_t off, uint64_t len, uint64_t voff)
{
	while (!img->src->seekable && off < img->src->pos && len > 0) {
		size_t n = len < VHD_CHUNK ? (size_t)len : VHD_CHUNK;

		if (vhd_read_at(img, v, buf, n, off, "data") < 0 ||
		    emit_data(em, voff, buf, n) < 0)
			return -1;
		off += n;
		voff += n;
		len -= n;
	}
	return image_emit_range(img, em, buf, VHD_CHUNK, off, len, voff);
}

/*
 * One allocated block: the sector bitmap says which sectors hold data.
 * qemu ignores it on read and writes it all-ones; the spec says a clear
 * bit means "no data here", which for a disk without a parent is zeros,
 * so clear runs are emitted as zeros and never read.
 */
static int read_block(struct image *img, struct emitter *em, uint32_t idx,
    unsigned char *bitmap, unsigned char *buf)
{
	struct vhd *v = img->priv;
	uint64_t host = (uint64_t)v->bat[idx] * VHD_SECTOR;
	uint64_t vstart = (uint64_t)idx * v->block_size;
	uint64_t vlen = img->virtual_size - vstart;
	uint32_t nsectors, s, e;

	if (vlen > v->block_size)
		vlen = v->block_size;
	if (img->src->size_known && (host > img->src->size ||
	    img->src->size - host < v->bitmap_size + vlen))
		return image_defect(img, FINDING_TRUNCATED,
		    "block %u at 0x%llx lies past the end of "
		    "the image (BAT entry %u)", idx, (unsigned long long)host,
		    idx);
	if (vhd_read_at(img, v, bitmap, v->bitmap_size, host,
	    "sector bitmap") < 0)
		return -1;
	nsectors = (vlen + VHD_SECTOR - 1) / VHD_SECTOR;
	for (s = 0; s < nsectors; s = e) {
		bool present = sector_present(bitmap, s);
		uint64_t from, len;

		for (e = s + 1; e < nsectors &&
		    sector_present(bitmap, e) == present; e++)
			;
		from = (uint64_t)s * VHD_SECTOR;
		len = (uint64_t)e * VHD_SECTOR < vlen ?
		    (uint64_t)(e - s) * VHD_SECTOR : vlen - from;
		if ((present ? emit_input(img, v, em, buf,
		    host + v->bitmap_size + from, len, vstart + from)
		    : emit_zero(em, vstart + from, len)) < 0)
			return -1;
	}
	return 0;
}

/* Seekable: virtual order, one zero extent per run of empty blocks. */
static int read_dynamic_seekable(struct image *img, struct emitter *em,
    unsigned char *bitmap, unsigned char *buf)
{
	struct vhd *v = img->priv;
	uint64_t done = 0;
	uint32_t i;

	for (i = 0; i < v->nblocks; i++) {
		uint64_t vstart = (uint64_t)i * v->block_size;

		if (v->bat[i] == VHD_BAT_UNUSED)
			continue;
		if (emit_zero(em, done, vstart - done) < 0 ||
		    read_block(img, em, i, bitmap, buf) < 0)
			return -1;
		done = vstart + v->block_size;
		if (done > img->virtual_size)
			done = img->virtual_size;
	}
	return emit_zero(em, done, img->virtual_size - done);
}

/*
 * A pipe: blocks in the order the file holds them.  Before each block,
 * promise the emitter that nothing below the lowest block still to come
 * will arrive, so gaps flow out as zeros instead of waiting.
 */
static int read_dynamic_stream(struct image *img, struct emitter *em,
    unsigned char *bitmap, unsigned char *buf)
{
	struct vhd *v = img->priv;
	struct host_block *hb;
	uint32_t *low, i, n = 0;
	int rc = 0;

	hb = malloc(((size_t)v->nblocks + 1) * sizeof *hb);
	low = malloc(((size_t)v->nblocks + 1) * sizeof *low);
	if (hb == NULL || low == NULL) {
		free(hb);
		free(low);
		return fail(EXIT_IO, "out of memory");
	}
	for (i = 0; i < v->nblocks; i++)
		if (v->bat[i] != VHD_BAT_UNUSED)
			hb[n++] = (struct host_block){ v->bat[i], i };
	qsort(hb, n, sizeof *hb, by_host);
	low[n] = v->nblocks;
	for (i = n; i-- > 0;)
		low[i] = hb[i].idx < low[i + 1] ? hb[i].idx : low[i + 1];
	for (i = 0; i < n && rc == 0; i++)
		rc = emit_upto(em, (uint64_t)low[i] * v->block_size) < 0 ||
		    read_block(img, em, hb[i].idx, bitmap, buf) < 0 ? -1 : 0;
	free(hb);
	free(low);
	return rc;
}

/*
 * From a pipe, once the blocks are read (or a read ran off the end): read
 * on to the end, and check the end rule with the size now known, so a
 * block past the end gets the message it gets from a file.
 */
static int finish_stream(struct image *img, struct vhd *v,
    unsigned char *buf, int rc)
{
	const char *code = err_code();
	unsigned char tail[VHD_FOOTER_SIZE];
	uint64_t drained = 0;
	char msg[512];
	ssize_t n;

	if (rc < 0 && (code == NULL || strcmp(code, FINDING_TRUNCATED) != 0))
		return -1;
	snprintf(msg, sizeof msg, "%s", rc < 0 ? err_msg() : "");
	err_clear();
	/* keep the last 512 bytes: the footer, when the blocks left it */
	while ((n = image_read_forward(img, buf, VHD_CHUNK)) > 0) {
		if ((size_t)n >= VHD_FOOTER_SIZE) {
			memcpy(tail, buf + n - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE);
		} else {
			memmove(tail, tail + n, VHD_FOOTER_SIZE - n);
			memcpy(tail + VHD_FOOTER_SIZE - n, buf, n);
		}
		drained += n;
	}
	if (n < 0 || check_end(img, v, img->src->pos,
	    drained >= VHD_FOOTER_SIZE ? tail : NULL) < 0)
		return -1;
	if (rc < 0)
		return fail_code(EXIT_REJECT, FINDING_TRUNCATED, "%s", msg);
	return 0;
}

static int vhd_read(struct image *img, struct emitter *em)
{
	struct vhd *v = img->priv;
	unsigned char *buf = bigbuf_alloc(VHD_CHUNK + VHD_FOOTER_SIZE);
	unsigned char *bitmap = NULL;
	int rc;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	if (v->type == VHD_TYPE_FIXED) {
		rc = v->footer_at_end ? read_fixed_stream(img, em, buf)
		    : read_fixed_seekable(img, em, buf);
	} else if ((bitmap = malloc(v->bitmap_size)) == NULL) {
		rc = fail(EXIT_IO, "out of memory");
	} else {
		rc = img->src->seekable
		    ? read_dynamic_seekable(img, em, bitmap, buf)
		    : finish_stream(img, v, buf,
		    read_dynamic_stream(img, em, bitmap, buf));
	}
	free(bitmap);
	bigbuf_free(buf);
	return rc;
}

static void vhd_close(struct image *img)
{
	struct vhd *v = img->priv;
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nparked; i++)
		if (!v->parked[i].zero)
			stash_drop(img->stash, &v->parked[i].ref);
	free(v->parked);
	free(v->unit);
	free(v->bat);
	free(v);
}

const struct format format_vpc = {
	.name = "vpc",
	.desc = "VHD, Microsoft Virtual Hard Disk (qemu-img's \"vpc\"): "
	    "fixed and dynamic",
	.bid = vhd_bid,
	.open = vhd_open,
	.read = vhd_read,
	.close = vhd_close,
	.trailer = vhd_trailer,
};
