/*
 * vmdk: VMware hosted sparse extents ("KDMV"): monolithicSparse and
 * streamOptimized (qemu-img's and VMware ovftool's), with the embedded
 * descriptor.  A plain-text descriptor names other files; it is rejected
 * and nothing it names is ever opened.
 *
 * The layout is named in vmdk.h.
 *
 * Seekable input is read through the GD and GTs in virtual order.  From a
 * pipe, a stream with its GD at the end is read marker by marker in file
 * order; any other extent (monolithicSparse, qemu-img's streamOptimized)
 * names its GD in the header: all GTs are read, then the grains in file
 * order.  Bytes met before the tables that name them are parked in the
 * stash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "fmt/fmt.h"
#include "fmt/vmdk/vmdk.h"
#include "fmt/vmdk/vmdk_desc.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

/* The reader's own limits and buffers. */
#define VMDK_WINDOW (1u << 20)		/* read-ahead for metadata, grains */
#define VMDK_RUN_MAX (8u << 20)		/* largest coalesced grain read */

struct vmdk_kept {			/* a stashed run of the input */
	uint64_t host;
	struct stash_ref ref;
	bool taken;
};

struct vmdk {
	struct vmdk_header h;
	uint64_t grain_bytes;
	uint64_t ngrains;		/* grains in the capacity */
	uint64_t ngts;			/* GD entries */
	size_t cmax;			/* largest compressed grain accepted */
	uint32_t *gd;
	unsigned char *grain;		/* one inflated grain */
	unsigned char *run;		/* coalesced uncompressed grains */
	unsigned char *win;		/* seekable read-ahead window */
	uint64_t win_off;
	size_t win_len, win_cap;
	z_stream zs;
	bool zs_ready;
	struct vmdk_kept *kept;		/* pipe: bytes skipped before tables */
	size_t nkept, capkept;
	uint64_t stream_next;		/* markers: end of the highest grain */
	unsigned char *kcache;		/* the kept run last taken */
	size_t kcached;			/* its index + 1, or 0 */
};

static int vmdk_pipe_advance(struct image *img, struct vmdk *v, uint64_t off,
    const char *what);
static int vmdk_take_kept(struct image *img, struct vmdk *v, uint64_t host,
    unsigned char *out, size_t len, const char *what);

static int vmdk_bid(const struct probe *pb)
{
	if (pb->headlen >= 4 && le32(pb->head) == VMDK_MAGIC)
		return BID_SIGNATURE;
	if (vmdk_looks_like_descriptor(pb->head, pb->headlen))
		return BID_SIGNATURE;
	return BID_NONE;
}

/* ---- descriptor ---- */

/* The extent names, quoted and joined, for a message; the first path. */
static void vmdk_extent_names(const struct vmdk_desc *d, char *names,
    size_t nameslen, char *path, size_t pathlen)
{
	char name[80];
	size_t used = 0;

	names[0] = path[0] = '\0';
	for (size_t i = 0; i < d->nextents; i++) {
		const struct vmdk_extent_line *x = &d->extents[i];

		if (!x->has_name)
			continue;
		vmdk_name_printable(name, sizeof name, x->name);
		if (path[0] == '\0' && x->name[0] != '\0' &&
		    !vmdk_name_is_bare(x->name))
			snprintf(path, pathlen, "%s", name);
		if (used + strlen(name) + 5 < nameslen)
			used += snprintf(names + used, nameslen - used, "%s\"%s\"",
			    used ? ", " : "", name);
	}
}

/* Say what the extent names are, and call out names that are paths. */
static int vmdk_reject_extents(struct image *img, const struct vmdk_desc *d,
    const char *what)
{
	char names[256], path[80], why[200] = "";

	vmdk_extent_names(d, names, sizeof names, path, sizeof path);
	if (path[0] != '\0')
		snprintf(why, sizeof why, "; extent name \"%s\" is a path "
		    "('/', '\\' or '..')", path);
	return image_unsafe(img, "extent-file", "%s (createType \"%s\") "
	    "names extent files %s, which are never opened%s", what,
	    d->create_type[0] ? d->create_type : "?",
	    names[0] ? names : "(none)", why);
}

static int vmdk_reject_parent(struct image *img, const struct vmdk_desc *d)
{
	char hint[80];

	vmdk_name_printable(hint, sizeof hint, d->parent_hint);
	if (d->parent_hint[0] != '\0')
		return image_unsafe(img, "parent", "the descriptor names a "
		    "parent disk (parentFileNameHint \"%s\"), which is never "
		    "opened", hint);
	return image_unsafe(img, "parent", "the descriptor names a parent "
	    "disk (parentCID %08x), which is never opened", d->parent_cid);
}

/* A text descriptor: the disk is in the files it names. */
static int vmdk_open_descriptor_file(struct image *img)
{
	struct vmdk_desc d;
	int rc;

	if (vmdk_desc_parse(&d, (const char *)img->src->head,
	    img->src->headlen) < 0)
		return -1;
	snprintf(img->subformat, sizeof img->subformat, "%.47s",
	    d.create_type[0] ? d.create_type : "descriptor");
	if (d.total_sectors <= IMAGE_VSIZE_MAX / VMDK_SECTOR)
		img->virtual_size = d.total_sectors * VMDK_SECTOR;
	rc = vmdk_desc_has_parent(&d) ? vmdk_reject_parent(img, &d) : 0;
	if (rc == 0)
		rc = vmdk_reject_extents(img, &d, "descriptor file");
	vmdk_desc_free(&d);
	return rc;
}

/* The one extent of an embedded descriptor is this file. */
static bool vmdk_embedded_extent_ok(const struct vmdk_desc *d)
{
	const struct vmdk_extent_line *x = &d->extents[0];

	if (d->nextents == 0)
		return true;
	return d->nextents == 1 && strcasecmp(x->type, "SPARSE") == 0 &&
	    (x->name[0] == '\0' || vmdk_name_is_bare(x->name));
}

/*
 * The embedded descriptor must describe this one extent and no parent;
 * its createType goes to ctype (ctypelen bytes), "" when it has none.
 */
static int vmdk_check_embedded(struct image *img, struct vmdk *v,
    char *ctype, size_t ctypelen)
{
	uint64_t len = v->h.desc_sectors * VMDK_SECTOR;
	struct vmdk_desc d;
	char *text;
	int rc = 0;

	if (v->h.desc_offset == 0 || v->h.desc_sectors == 0)
		return 0;
	if (v->h.desc_sectors > VMDK_DESC_MAX / VMDK_SECTOR ||
	    v->h.desc_offset > UINT64_MAX / VMDK_SECTOR - v->h.desc_sectors)
		return image_bad(img, "descriptor of %llu sectors at sector "
		    "%llu is out of range (header at 0x%x)",
		    (unsigned long long)v->h.desc_sectors,
		    (unsigned long long)v->h.desc_offset, VMDK_HDR_DESC_OFFSET);
	text = malloc(len);
	if (text == NULL)
		return fail(EXIT_IO, "out of memory");
	if (image_read_at(img, text, len, v->h.desc_offset * VMDK_SECTOR,
	    "descriptor") < 0 || vmdk_desc_parse(&d, text, len) < 0) {
		free(text);
		return -1;
	}
	free(text);
	if (vmdk_desc_has_parent(&d))
		rc = vmdk_reject_parent(img, &d);
	if (rc == 0 && (!vmdk_embedded_extent_ok(&d) ||
	    (d.create_type[0] != '\0' &&
	    strcasecmp(d.create_type, VMDK_TYPE_SPARSE) != 0 &&
	    strcasecmp(d.create_type, VMDK_TYPE_STREAM) != 0)))
		rc = vmdk_reject_extents(img, &d, "embedded descriptor");
	snprintf(ctype, ctypelen, "%s", d.create_type);
	vmdk_desc_free(&d);
	return rc;
}

/* ---- header ---- */

/*
 * The header's flags and compressAlgorithm decide how grains are read
 * (qemu decides by compressAlgorithm alone): each combination that two
 * readers would read differently is refused, and so is a streamOptimized
 * descriptor over a header without compressed grains and markers -- read
 * by its tables, its markers and zlib bytes would pass for disk data.  A
 * monolithicSparse descriptor over a stream header reads as the stream it
 * is (each grain's marker names its LBA), as qemu reads it.
 */
static int vmdk_check_kind(struct image *img, struct vmdk *v,
    const char *ctype)
{
	uint32_t f = v->h.flags;
	bool compressed = f & VMDK_FLAG_COMPRESSED;

	if (strcasecmp(ctype, VMDK_TYPE_STREAM) == 0 &&
	    (!compressed || !(f & VMDK_FLAG_MARKERS)))
		return image_bad(img, "the descriptor says streamOptimized but "
		    "the header's flags 0x%x do not say compressed grains with "
		    "markers (header at 0x%x)", f, VMDK_HDR_FLAGS);
	if (!compressed && v->h.compress == VMDK_COMPRESS_DEFLATE)
		return image_bad(img, "compressAlgorithm is deflate but the "
		    "header's flags 0x%x do not say compressed grains (header "
		    "at 0x%x)", f, VMDK_HDR_FLAGS);
	if (compressed && !(f & VMDK_FLAG_MARKERS))
		return image_bad(img, "compressed grains without markers "
		    "(flags 0x%x) are not supported (header at 0x%x)", f,
		    VMDK_HDR_FLAGS);
	snprintf(img->subformat, sizeof img->subformat, "%.47s",
	    compressed ? VMDK_TYPE_STREAM : ctype[0] ? ctype
	    : VMDK_TYPE_SPARSE);
	return 0;
}

/* where: "header" or "footer", for messages. */
static int vmdk_check_header(struct image *img, struct vmdk *v,
    const unsigned char *p, const char *where)
{
	struct vmdk_header *h = &v->h;

	if (le32(p + VMDK_HDR_MAGIC) != VMDK_MAGIC)
		return image_bad(img, "bad magic in the %s (not \"KDMV\")",
		    where);
	vmdk_header_get(h, p);
	if (h->version < VMDK_VERSION_1 || h->version > VMDK_VERSION_MAX)
		return image_bad(img, "unsupported version %u (%s at 0x%x)",
		    h->version, where, VMDK_HDR_VERSION);
	if ((h->flags & VMDK_FLAG_NL_TEST) && memcmp(p + VMDK_HDR_NL_CHARS,
	    VMDK_NL_BYTES, VMDK_NL_LEN))
		return image_bad(img, "newline check failed: the image was "
		    "damaged by a text-mode transfer (%s at 0x%x)", where,
		    VMDK_HDR_NL_CHARS);
	if ((h->flags & VMDK_FLAG_COMPRESSED) &&
	    h->compress != VMDK_COMPRESS_DEFLATE)
		return image_bad(img, "unsupported compression algorithm %u "
		    "(%s at 0x%x)", h->compress, where, VMDK_HDR_COMPRESS);
	if (h->grain_sectors == 0 || h->grain_sectors > VMDK_GRAIN_MAX_SECTORS ||
	    (h->grain_sectors & (h->grain_sectors - 1)) != 0)
		return image_bad(img, "grain size %llu sectors is not a power "
		    "of two from 1 to %u (%s at 0x%x)",
		    (unsigned long long)h->grain_sectors,
		    VMDK_GRAIN_MAX_SECTORS, where, VMDK_HDR_GRAIN_SIZE);
	if (h->capacity > IMAGE_VSIZE_MAX / VMDK_SECTOR)
		return image_bad(img, "capacity of %llu sectors is beyond the "
		    "limit of %llu bytes (%s at 0x%x)",
		    (unsigned long long)h->capacity, IMAGE_VSIZE_MAX, where,
		    VMDK_HDR_CAPACITY);
	if (h->gtes_per_gt == 0 || h->gtes_per_gt > VMDK_GTES_MAX)
		return image_bad(img, "%u entries per grain table is out of "
		    "range 1 to %u (%s at 0x%x)", h->gtes_per_gt,
		    VMDK_GTES_MAX, where, VMDK_HDR_GTES_PER_GT);
	v->grain_bytes = h->grain_sectors * VMDK_SECTOR;
	v->ngrains = (h->capacity + h->grain_sectors - 1) / h->grain_sectors;
	v->ngts = (v->ngrains + h->gtes_per_gt - 1) / h->gtes_per_gt;
	if (v->ngts * VMDK_GDE_BYTES > IMAGE_META_MAX)
		return image_bad(img, "grain directory of %llu entries is "
		    "larger than the %llu-byte limit (%s: capacity, grain size)",
		    (unsigned long long)v->ngts, IMAGE_META_MAX, where);
	if (h->overhead > UINT64_MAX / VMDK_SECTOR ||
	    h->rgd_offset > UINT64_MAX / VMDK_SECTOR - v->ngts ||
	    (h->gd_offset != VMDK_GD_AT_END &&
	    h->gd_offset > UINT64_MAX / VMDK_SECTOR - v->ngts))
		return image_bad(img, "grain directory or overhead offset out "
		    "of range (%s at 0x%x)", where, VMDK_HDR_RGD_OFFSET);
	if (h->gd_offset != VMDK_GD_AT_END && img->src->size_known &&
	    h->gd_offset * VMDK_SECTOR + v->ngts * VMDK_GDE_BYTES >
	    img->src->size)
		return image_defect(img, FINDING_TRUNCATED, "grain directory "
		    "at sector %llu lies past the end of the image (%s at "
		    "0x%x)", (unsigned long long)h->gd_offset, where,
		    VMDK_HDR_GD_OFFSET);
	/* deflate can grow incompressible data by a little; allow 2x. */
	v->cmax = 2 * v->grain_bytes + VMDK_SECTOR;
	img->virtual_size = h->capacity * VMDK_SECTOR;
	img->cluster_size = v->grain_bytes;
	return 0;
}

/*
 * The footer is a second header whose only business is the GD: it must
 * agree with the header on the geometry and not move the descriptor.
 * v->h becomes the footer's values.
 */
static int vmdk_check_footer(struct image *img, struct vmdk *v,
    const unsigned char *footer)
{
	struct vmdk_header head = v->h;

	if (vmdk_check_header(img, v, footer, "footer") < 0)
		return -1;
	if (v->h.gd_offset == VMDK_GD_AT_END)
		return image_bad(img, "the footer's gdOffset is GD_AT_END too "
		    "(footer at 0x%x)", VMDK_HDR_GD_OFFSET);
	if (v->h.capacity != head.capacity ||
	    v->h.grain_sectors != head.grain_sectors ||
	    v->h.gtes_per_gt != head.gtes_per_gt || v->h.flags != head.flags)
		return image_bad(img, "the footer disagrees with the header on "
		    "capacity, grain size, grain table size or flags");
	if ((v->h.desc_offset != head.desc_offset ||
	    v->h.desc_sectors != head.desc_sectors) && image_unsafe(img,
	    "vmdk-footer", "the footer moves the descriptor from sector %llu "
	    "to sector %llu", (unsigned long long)head.desc_offset,
	    (unsigned long long)v->h.desc_offset) < 0)
		return -1;
	if (head.gd_offset != VMDK_GD_AT_END &&
	    v->h.gd_offset != head.gd_offset && image_unsafe(img,
	    "vmdk-footer", "the footer moves the grain directory from sector "
	    "%llu to sector %llu", (unsigned long long)head.gd_offset,
	    (unsigned long long)v->h.gd_offset) < 0)
		return -1;
	return 0;
}

/*
 * GD_AT_END: the footer lies 1024 bytes before the end, between a footer
 * marker and the end-of-stream marker.  Without them (something follows
 * the stream) the grains are read marker by marker.
 */
static int vmdk_read_footer(struct image *img, struct vmdk *v)
{
	unsigned char buf[VMDK_TAIL_SECTORS * VMDK_SECTOR];
	uint64_t size = img->src->size;
	struct vmdk_marker m;

	if (size < (VMDK_TAIL_SECTORS + 1) * VMDK_SECTOR)
		return 0;
	if (image_read_at(img, buf, sizeof buf, size - sizeof buf,
	    "footer") < 0)
		return -1;
	vmdk_marker_get(&m, buf);
	if (m.val != 1 || m.size != 0 || m.type != VMDK_MARKER_FOOTER)
		return 0;
	return vmdk_check_footer(img, v, buf + VMDK_SECTOR);
}

/* Markers are only meaningful around compressed grains. */
static bool vmdk_has_markers(const struct vmdk *v)
{
	return (v->h.flags & VMDK_FLAG_MARKERS) &&
	    (v->h.flags & VMDK_FLAG_COMPRESSED);
}

static int vmdk_alloc_buffers(struct vmdk *v)
{
	int zrc;

	v->grain = malloc(v->grain_bytes);
	v->kcache = malloc(v->grain_bytes);
	v->win_cap = VMDK_WINDOW + v->cmax + VMDK_SECTOR;
	v->win = malloc(v->win_cap);
	v->run = malloc(VMDK_RUN_MAX > v->grain_bytes ? VMDK_RUN_MAX
	    : v->grain_bytes);
	if (v->grain == NULL || v->kcache == NULL || v->win == NULL ||
	    v->run == NULL)
		return fail(EXIT_IO, "out of memory");
	zrc = inflateInit(&v->zs);
	if (zrc != Z_OK)
		return fail(EXIT_IO, "zlib: cannot initialise inflate");
	v->zs_ready = true;
	return 0;
}

static int vmdk_open(struct image *img)
{
	char ctype[64] = "";
	struct vmdk *v;

	if (img->src->headlen >= 4 && le32(img->src->head) != VMDK_MAGIC)
		return vmdk_open_descriptor_file(img);
	v = calloc(1, sizeof *v);
	if (v == NULL)
		return fail(EXIT_IO, "out of memory");
	img->priv = v;
	if (img->src->headlen < VMDK_SECTOR)
		return image_defect(img, FINDING_TRUNCATED, "header is "
		    "truncated (%zu bytes)", img->src->headlen);
	if (vmdk_check_header(img, v, img->src->head, "header") < 0)
		return -1;
	if (vmdk_check_embedded(img, v, ctype, sizeof ctype) < 0 ||
	    vmdk_check_kind(img, v, ctype) < 0)
		return -1;
	if (v->h.gd_offset == VMDK_GD_AT_END && !vmdk_has_markers(v))
		return image_bad(img, "gdOffset is GD_AT_END but the image has "
		    "no compressed grains with markers (header at 0x%x, flags "
		    "at 0x%x)", VMDK_HDR_GD_OFFSET, VMDK_HDR_FLAGS);
	/* A stream with its GD at the end is read by its markers, from a
	 * file as from a pipe: the same checks, the same verdict. */
	if (v->h.gd_offset == VMDK_GD_AT_END && !vmdk_has_markers(v) &&
	    img->src->seekable && vmdk_read_footer(img, v) < 0)
		return -1;
	return vmdk_alloc_buffers(v);
}

/* ---- grains ---- */

/* Inflate one compressed grain (zlib-wrapped, as qemu and VMware write, or
 * raw deflate) into v->grain; returns the inflated length or -1. */
static int64_t vmdk_inflate(struct image *img, struct vmdk *v,
    const unsigned char *in, size_t len, uint64_t where)
{
	bool zlib_wrapped = len >= 2 && (in[0] & 0x0f) == 8 &&
	    (in[0] << 8 | in[1]) % 31 == 0;
	int zrc;

	if (inflateReset2(&v->zs, zlib_wrapped ? 15 : -15) != Z_OK)
		return fail(EXIT_IO, "zlib: inflateReset2 failed");
	v->zs.next_in = (unsigned char *)in;
	v->zs.avail_in = len;
	v->zs.next_out = v->grain;
	v->zs.avail_out = v->grain_bytes;
	zrc = inflate(&v->zs, Z_FINISH);
	if (zrc == Z_STREAM_END)
		return v->grain_bytes - v->zs.avail_out;
	if (zrc == Z_BUF_ERROR && v->zs.avail_out == 0)
		return image_bad(img, "compressed grain at 0x%llx inflates to "
		    "more than the grain size of %llu bytes",
		    (unsigned long long)where,
		    (unsigned long long)v->grain_bytes);
	return image_defect(img, FINDING_TRUNCATED, "compressed grain at "
	    "0x%llx does not inflate: %s", (unsigned long long)where,
	    v->zs.msg ? v->zs.msg : "truncated deflate data");
}

/* Emit an inflated grain at grain index gi, clipped to the capacity. */
static int vmdk_emit_grain(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, size_t len)
{
	uint64_t off = gi * v->grain_bytes;

	if (off >= img->virtual_size)
		return 0;
	if (len > img->virtual_size - off)
		len = img->virtual_size - off;
	return emit_data(em, off, v->grain, len);
}

/* A grain marker's LBA must start a grain inside the capacity. */
static int vmdk_marker_grain(struct image *img, struct vmdk *v, uint64_t lba,
    uint32_t csize, uint64_t where, uint64_t *gi)
{
	if (lba % v->h.grain_sectors != 0 || lba >= v->h.capacity)
		return image_bad(img, "grain marker at 0x%llx has LBA %llu, "
		    "not the start of a grain within the capacity",
		    (unsigned long long)where, (unsigned long long)lba);
	if (csize > v->cmax)
		return image_bad(img, "grain marker at 0x%llx declares %u "
		    "compressed bytes, more than %zu", (unsigned long long)where,
		    csize, v->cmax);
	*gi = lba / v->h.grain_sectors;
	return 0;
}

/* ---- seekable: through the GD and GTs ---- */

/* Bytes [off, off+len) of a seekable input, read ahead a window at a time. */
static const unsigned char *vmdk_window(struct image *img, struct vmdk *v,
    uint64_t off, size_t len, const char *what)
{
	uint64_t size = img->src->size;
	size_t want;

	if (off >= v->win_off && len <= v->win_len &&
	    off - v->win_off <= v->win_len - len)
		return v->win + (off - v->win_off);
	want = len > VMDK_WINDOW ? len : VMDK_WINDOW;
	if (off < size && size - off < want)
		want = size - off > len ? size - off : len;
	if (image_read_at(img, v->win, want, off, what) < 0)
		return NULL;
	v->win_off = off;
	v->win_len = want;
	return v->win;
}

struct vmdk_run {			/* uncompressed grains, one read */
	uint64_t virt, host, len;
};

static int vmdk_flush_run(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *r)
{
	int rc = 0;

	if (r->len > 0)
		rc = image_read_at(img, v->run, r->len, r->host,
		    "grain") < 0 || emit_data(em, r->virt, v->run,
		    r->len) < 0 ? -1 : 0;
	r->len = 0;
	return rc;
}

/* Add grain gi at host to the run, reading the run first if it can't. */
static int vmdk_run_add(struct image *img, struct vmdk *v, struct emitter *em,
    struct vmdk_run *r, uint64_t gi, uint64_t host)
{
	uint64_t virt = gi * v->grain_bytes, len = v->grain_bytes;

	if (virt + len > img->virtual_size)
		len = img->virtual_size - virt;
	if (r->len > 0 && (r->virt + r->len != virt || r->host + r->len != host ||
	    r->len + len > VMDK_RUN_MAX) && vmdk_flush_run(img, v, em, r) < 0)
		return -1;
	if (r->len == 0) {
		r->virt = virt;
		r->host = host;
	}
	r->len += len;
	return 0;
}

static int vmdk_read_compressed_at(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t host)
{
	const unsigned char *p = vmdk_window(img, v, host, VMDK_MARKER_HEAD,
	    "grain marker");
	uint64_t lba, mgi;
	uint32_t csize;
	int64_t n;

	if (p == NULL)
		return -1;
	lba = le64(p + VMDK_MARKER_VAL);
	csize = le32(p + VMDK_MARKER_SIZE);
	if (vmdk_marker_grain(img, v, lba, csize, host, &mgi) < 0)
		return -1;
	if (mgi != gi)
		return image_bad(img, "grain marker at 0x%llx has LBA %llu, but "
		    "the grain table puts it at LBA %llu",
		    (unsigned long long)host, (unsigned long long)lba,
		    (unsigned long long)(gi * v->h.grain_sectors));
	p = vmdk_window(img, v, host, VMDK_MARKER_HEAD + csize, "grain");
	if (p == NULL)
		return -1;
	n = vmdk_inflate(img, v, p + VMDK_MARKER_HEAD, csize, host);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

static int vmdk_read_gt(struct image *img, struct vmdk *v, uint64_t g,
    uint32_t *gt)
{
	uint64_t off = (uint64_t)v->gd[g] * VMDK_SECTOR;
	size_t len = (size_t)v->h.gtes_per_gt * VMDK_GTE_BYTES;
	const unsigned char *p;
	char what[64];

	snprintf(what, sizeof what, "grain table %llu",
	    (unsigned long long)g);
	p = img->src->seekable ? vmdk_window(img, v, off, len, what) : NULL;
	if (!img->src->seekable) {
		if (off < img->src->pos ? vmdk_take_kept(img, v, off, v->win,
		    len, what) < 0 : vmdk_pipe_advance(img, v, off,
		    what) < 0 || image_read_at(img, v->win, len, off,
		    what) < 0)
			return -1;
		p = v->win;
	}
	if (p == NULL)
		return -1;
	for (size_t j = 0; j < v->h.gtes_per_gt; j++)
		gt[j] = le32(p + VMDK_GTE_BYTES * j);
	return 0;
}

static int vmdk_check_gte(struct image *img, struct vmdk *v, uint64_t gi,
    uint32_t gte)
{
	uint64_t host = (uint64_t)gte * VMDK_SECTOR;

	if (img->src->size_known && (host >= img->src->size ||
	    (!(v->h.flags & VMDK_FLAG_COMPRESSED) &&
	    img->src->size - host < v->grain_bytes &&
	    img->src->size - host < img->virtual_size - gi * v->grain_bytes)))
		return image_defect(img, FINDING_TRUNCATED, "grain %llu at "
		    "0x%llx lies past the end of the image (grain table "
		    "entry)", (unsigned long long)gi,
		    (unsigned long long)host);
	return 0;
}

static int vmdk_load_gd(struct image *img, struct vmdk *v, uint64_t sector,
    uint32_t **out, const char *what)
{
	size_t len = v->ngts * VMDK_GDE_BYTES;
	unsigned char *raw = malloc(len + 1);
	uint32_t *gd = malloc(len + sizeof *gd);

	*out = gd;
	if (raw == NULL || gd == NULL) {
		free(raw);
		return fail(EXIT_IO, "out of memory");
	}
	if (image_read_at(img, raw, len, sector * VMDK_SECTOR, what) < 0) {
		free(raw);
		return -1;
	}
	for (size_t g = 0; g < v->ngts; g++) {
		gd[g] = le32(raw + VMDK_GDE_BYTES * g);
		if (img->src->size_known && gd[g] != 0 &&
		    (uint64_t)gd[g] * VMDK_SECTOR + v->h.gtes_per_gt * (uint64_t)VMDK_GTE_BYTES >
		    img->src->size) {
			free(raw);
			return image_defect(img, FINDING_TRUNCATED, "%s entry "
			    "%zu puts a grain table at sector %u, past the "
			    "end of the image", what, g, gd[g]);
		}
	}
	free(raw);
	return 0;
}

/* The redundant GT must match the primary (cheap on a seekable input). */
static int vmdk_verify_rgt(struct image *img, struct vmdk *v,
    const uint32_t *rgd, uint64_t g, const uint32_t *gt, uint32_t *rgt)
{
	uint32_t saved = v->gd[g];
	int rc;

	if (rgd == NULL || rgd[g] == 0)
		return 0;
	v->gd[g] = rgd[g];
	rc = vmdk_read_gt(img, v, g, rgt);
	v->gd[g] = saved;
	if (rc < 0)
		return -1;
	if (memcmp(gt, rgt, v->h.gtes_per_gt * sizeof *gt) != 0)
		return image_bad(img, "grain table %llu differs from its "
		    "redundant copy (rgdOffset at 0x%x)", (unsigned long long)g,
		    VMDK_HDR_RGD_OFFSET);
	return 0;
}

static int vmdk_read_gts(struct image *img, struct vmdk *v,
    struct emitter *em, const uint32_t *rgd, uint32_t *gt, uint32_t *rgt)
{
	bool compressed = v->h.flags & VMDK_FLAG_COMPRESSED;
	struct vmdk_run run = { 0 };
	uint64_t g, j, gi;

	for (g = 0; g < v->ngts; g++) {
		if (v->gd[g] == 0)
			continue;
		if (vmdk_read_gt(img, v, g, gt) < 0 ||
		    vmdk_verify_rgt(img, v, rgd, g, gt, rgt) < 0)
			return -1;
		for (j = 0; j < v->h.gtes_per_gt; j++) {
			gi = g * v->h.gtes_per_gt + j;
			if (gi >= v->ngrains)
				break;
			if (gt[j] == 0 || gt[j] == VMDK_GTE_ZERO)
				continue;
			/* virtual order: the disk below is complete */
			if (vmdk_check_gte(img, v, gi, gt[j]) < 0 ||
			    emit_upto(em, run.len > 0 ? run.virt
			    : gi * v->grain_bytes) < 0)
				return -1;
			if (compressed ? vmdk_read_compressed_at(img, v, em, gi,
			    (uint64_t)gt[j] * VMDK_SECTOR) < 0
			    : vmdk_run_add(img, v, em, &run, gi,
			    (uint64_t)gt[j] * VMDK_SECTOR) < 0)
				return -1;
		}
	}
	return vmdk_flush_run(img, v, em, &run);
}

static int vmdk_read_seekable(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	uint32_t *rgd = NULL, *gt, *rgt;
	int rc = -1;

	gt = malloc(2 * v->h.gtes_per_gt * sizeof *gt);
	if (gt == NULL)
		return fail(EXIT_IO, "out of memory");
	rgt = gt + v->h.gtes_per_gt;
	if (vmdk_load_gd(img, v, v->h.gd_offset, &v->gd,
	    "grain directory") < 0)
		goto out;
	if ((v->h.flags & VMDK_FLAG_RGD) && v->h.rgd_offset != 0 &&
	    !(v->h.flags & VMDK_FLAG_COMPRESSED) &&
	    vmdk_load_gd(img, v, v->h.rgd_offset, &rgd,
	    "redundant grain directory") < 0)
		goto out;
	rc = vmdk_read_gts(img, v, em, rgd, gt, rgt);
out:
	free(rgd);
	free(gt);
	return rc;
}

/* ---- pipe, streamOptimized: marker by marker ---- */

/*
 * qemu-img and VMware write a stream's grains in increasing LBA order, so
 * the disk below each grain is complete when it arrives: an in-order sink
 * gets the gap as zeros now instead of the stash holding all that follows.
 * A grain below one already seen breaks that promise; only an in-order
 * sink (a pipe) cannot take it, and the message says so.
 */
static int vmdk_marker_promise(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t where)
{
	uint64_t off = gi * v->grain_bytes;

	if (off < v->stream_next && em->sink->in_order)
		return image_bad(img, "grain marker at 0x%llx (LBA %llu) comes "
		    "after grains at higher LBAs; write the output to a file "
		    "to read a stream in this order", (unsigned long long)where,
		    (unsigned long long)(gi * v->h.grain_sectors));
	if (off < v->stream_next)
		return 0;
	v->stream_next = off + v->grain_bytes;
	return emit_upto(em, off);
}

static int vmdk_read_grain_marker(struct image *img, struct vmdk *v,
    struct emitter *em, const unsigned char *sec, uint64_t *off)
{
	uint64_t where = *off;
	uint64_t lba = le64(sec + VMDK_MARKER_VAL), gi, rest;
	uint32_t csize = le32(sec + VMDK_MARKER_SIZE);
	unsigned char *c = v->win;
	int64_t n;

	if (vmdk_marker_grain(img, v, lba, csize, where, &gi) < 0 ||
	    vmdk_marker_promise(img, v, em, gi, where) < 0)
		return -1;
	/* The marker's sector holds the first 500 compressed bytes. */
	memcpy(c, sec + VMDK_MARKER_HEAD, VMDK_SECTOR - VMDK_MARKER_HEAD);
	rest = (VMDK_MARKER_HEAD + (uint64_t)csize + VMDK_SECTOR - 1) /
	    VMDK_SECTOR * VMDK_SECTOR - VMDK_SECTOR;
	if (rest > 0 && image_read_at(img, c + VMDK_SECTOR -
	    VMDK_MARKER_HEAD, rest, where + VMDK_SECTOR, "grain") < 0)
		return -1;
	*off = where + VMDK_SECTOR + rest;
	n = vmdk_inflate(img, v, c, csize, where);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

/* Consume what follows the end-of-stream marker, so writers see no EPIPE. */
static int vmdk_drain(struct image *img, struct vmdk *v)
{
	ssize_t n;

	if (img->src->seekable)
		return 0;
	while ((n = image_read_forward(img, v->run, VMDK_RUN_MAX)) > 0)
		;
	return n < 0 ? -1 : 0;
}

/* From a pipe the footer comes last: check it all the same. */
static int vmdk_pipe_footer(struct image *img, struct vmdk *v, uint64_t off)
{
	unsigned char footer[VMDK_SECTOR];
	struct vmdk_header keep = v->h;
	int rc;

	if (image_read_at(img, footer, VMDK_SECTOR, off, "footer") < 0)
		return -1;
	rc = vmdk_check_footer(img, v, footer);
	v->h = keep;
	return rc;
}

/*
 * How many sectors a metadata marker at off covers, itself included.  A
 * type-4 marker (vSphere's, undocumented) is one sector, as VirtualBox
 * reads it; other markers say how many sectors of metadata follow, and a
 * type we do not know is skipped by that count.
 */
static int vmdk_metadata_span(struct image *img, const struct vmdk_marker *m,
    uint64_t off, uint64_t *nsec)
{
	if (m->type == VMDK_MARKER_UNSPECIFIED) {
		*nsec = 1;
		return 0;
	}
	if (m->type == VMDK_MARKER_FOOTER && m->val != 1)
		return image_bad(img, "footer marker at 0x%llx declares %llu "
		    "sectors, not 1", (unsigned long long)off,
		    (unsigned long long)m->val);
	if (m->val > (UINT64_MAX - off) / VMDK_SECTOR - 1)
		return image_bad(img, "marker at 0x%llx declares %llu "
		    "sectors", (unsigned long long)off,
		    (unsigned long long)m->val);
	*nsec = m->val + 1;
	return 0;
}

static int vmdk_read_markers(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	unsigned char sec[VMDK_SECTOR];
	uint64_t off = v->h.overhead * VMDK_SECTOR, nsec = 0;
	struct vmdk_marker m;
	bool footer = false;

	if (off < img->src->pos)
		off = (img->src->pos + VMDK_SECTOR - 1) / VMDK_SECTOR *
		    VMDK_SECTOR;
	for (;;) {
		if (image_read_at(img, sec, VMDK_SECTOR, off, "marker") < 0)
			return -1;
		vmdk_marker_get(&m, sec);
		if (m.size != 0) {
			if (vmdk_read_grain_marker(img, v, em, sec, &off) < 0)
				return -1;
			continue;
		}
		if (m.type == VMDK_MARKER_EOS)
			break;
		if (vmdk_metadata_span(img, &m, off, &nsec) < 0)
			return -1;
		if (m.type == VMDK_MARKER_FOOTER) {
			if (vmdk_pipe_footer(img, v, off + VMDK_SECTOR) < 0)
				return -1;
			footer = true;
		}
		off += nsec * VMDK_SECTOR;
	}
	if (!footer)
		return image_bad(img, "the stream ends (end-of-stream marker at "
		    "0x%llx) without the footer its gdOffset GD_AT_END "
		    "promises", (unsigned long long)off);
	return vmdk_drain(img, v);
}

/* ---- pipe, monolithicSparse: tables first, then grains in file order ---- */

/*
 * Skip forward to off, where what is; past the overhead, keep the bytes
 * in the stash, in runs of one grain, in case a table met later names them.
 */
static int vmdk_pipe_advance(struct image *img, struct vmdk *v, uint64_t off,
    const char *what)
{
	uint64_t pos = img->src->pos, keep_from = v->h.overhead * VMDK_SECTOR;
	struct vmdk_kept *k;
	size_t n;
	ssize_t got;

	if (pos < keep_from && image_skip_to(img,
	    off < keep_from ? off : keep_from) < 0)
		return -1;
	while ((pos = img->src->pos) < off) {
		n = off - pos < v->grain_bytes ? off - pos : v->grain_bytes;
		got = image_read_forward(img, v->run, n);
		if (got < 0)
			return -1;
		if ((size_t)got < n)
			return image_defect(img, FINDING_TRUNCATED, "%s at "
			    "0x%llx lies past the end of the image (0x%llx)",
			    what, (unsigned long long)off,
			    (unsigned long long)(pos + got));
		if (grow_array(&v->kept, v->nkept, &v->capkept,
		    sizeof *v->kept, 64, SIZE_MAX) < 0)
			return -1;
		k = &v->kept[v->nkept];
		k->host = pos;
		k->taken = false;
		if (stash_put(img->stash, v->run, n, &k->ref) < 0)
			return -1;
		v->nkept++;
	}
	return 0;
}

/*
 * Copy [host, host+len) back from the kept runs.  A run leaves the stash
 * when first used; the last one used stays cached, as readers go forward.
 */
static int vmdk_take_kept(struct image *img, struct vmdk *v, uint64_t host,
    unsigned char *out, size_t len, const char *what)
{
	size_t lo = 0, hi = v->nkept, got = 0, i;

	while (lo < hi) {		/* first run ending after host */
		size_t mid = (lo + hi) / 2;

		if (v->kept[mid].host + v->kept[mid].ref.len <= host)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < v->nkept && got < len; i++) {
		struct vmdk_kept *k = &v->kept[i];
		uint64_t skip = host + got - k->host;
		size_t n;

		if (k->host > host + got || skip >= k->ref.len ||
		    (k->taken && v->kcached != i + 1))
			break;
		n = k->ref.len - skip < len - got ? k->ref.len - skip : len - got;
		if (!k->taken) {
			if (stash_take(img->stash, &k->ref, v->kcache) < 0)
				return -1;
			k->taken = true;
			v->kcached = i + 1;
		}
		memcpy(out + got, v->kcache + skip, n);
		got += n;
	}
	if (got < len)
		return image_bad(img, "%s at 0x%llx lies before data already "
		    "read from the stream and was not kept", what,
		    (unsigned long long)host);
	return 0;
}

/* Read every GT, in file order, into gts (ngts * gtes_per_gt entries). */
static int vmdk_pipe_read_gts(struct image *img, struct vmdk *v,
    uint32_t *gts)
{
	uint64_t *order = malloc((v->ngts + 1) * sizeof *order), n = 0, i, g;
	int rc = 0;

	if (order == NULL)
		return fail(EXIT_IO, "out of memory");
	for (g = 0; g < v->ngts; g++)
		if (v->gd[g] != 0)
			order[n++] = (uint64_t)v->gd[g] << 32 | g;
	sort_u64(order, n);
	for (i = 0; i < n && rc == 0; i++) {
		g = (uint32_t)order[i];
		if (vmdk_read_gt(img, v, g, gts + g * v->h.gtes_per_gt) < 0)
			rc = -1;
	}
	free(order);
	return rc;
}

/* A compressed grain without metadata markers, met in file order. */
static int vmdk_pipe_compressed(struct image *img, struct vmdk *v,
    struct emitter *em, uint64_t gi, uint64_t host)
{
	unsigned char *c = v->win;
	uint64_t mgi;
	uint32_t csize;
	int64_t n;

	if (image_read_at(img, c, VMDK_MARKER_HEAD, host, "grain marker") < 0)
		return -1;
	csize = le32(c + VMDK_MARKER_SIZE);
	if (vmdk_marker_grain(img, v, le64(c + VMDK_MARKER_VAL), csize, host,
	    &mgi) < 0)
		return -1;
	if (mgi != gi)
		return image_bad(img, "grain marker at 0x%llx has LBA %llu, but "
		    "the grain table puts it at LBA %llu",
		    (unsigned long long)host,
		    (unsigned long long)le64(c + VMDK_MARKER_VAL),
		    (unsigned long long)(gi * v->h.grain_sectors));
	if (image_read_at(img, c, csize, host + VMDK_MARKER_HEAD,
	    "grain") < 0)
		return -1;
	n = vmdk_inflate(img, v, c, csize, host);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

/* One grain of the file-ordered list: from the stream, or kept earlier. */
static int vmdk_pipe_grain(struct image *img, struct vmdk *v,
    struct emitter *em, struct vmdk_run *run, uint64_t gi, uint64_t host)
{
	uint64_t len = v->grain_bytes;

	if (gi * v->grain_bytes + len > img->virtual_size)
		len = img->virtual_size - gi * v->grain_bytes;
	if (host >= img->src->pos)
		return vmdk_run_add(img, v, em, run, gi, host);
	if (vmdk_flush_run(img, v, em, run) < 0 ||
	    vmdk_take_kept(img, v, host, v->run, len, "grain") < 0)
		return -1;
	return emit_data(em, gi * v->grain_bytes, v->run, len);
}

/* After grain i of the file order: below what is the disk complete? */
static int vmdk_pipe_promise(struct vmdk *v, struct emitter *em,
    const struct vmdk_run *run, uint32_t lowest)
{
	uint64_t upto = (uint64_t)lowest * v->grain_bytes;

	if (run->len > 0 && run->virt < upto)
		upto = run->virt;
	return emit_upto(em, upto);
}

static int vmdk_pipe_read_grains(struct image *img, struct vmdk *v,
    struct emitter *em, const uint32_t *gts)
{
	uint64_t nalloc = 0, n = 0, i, gi;
	struct vmdk_run run = { 0 };
	uint32_t *lowest;
	uint64_t *order;
	int rc = 0;

	for (gi = 0; gi < v->ngrains; gi++)
		nalloc += gts[gi] != 0 && gts[gi] != VMDK_GTE_ZERO;
	order = malloc((nalloc + 1) * sizeof *order);
	if (order == NULL)
		return fail(EXIT_IO, "out of memory");
	for (gi = 0; gi < v->ngrains; gi++)
		if (gts[gi] != 0 && gts[gi] != VMDK_GTE_ZERO)
			order[n++] = (uint64_t)gts[gi] << 32 | gi;
	sort_u64(order, n);
	lowest = lowest_after(order, n, (uint32_t)v->ngrains);
	if (lowest == NULL)
		rc = fail(EXIT_IO, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		uint64_t host = (order[i] >> 32) * VMDK_SECTOR;

		gi = (uint32_t)order[i];
		if (i > 0 && order[i] >> 32 == order[i - 1] >> 32)
			rc = image_bad(img, "grains %llu and %llu share sector "
			    "%llu", (unsigned long long)(uint32_t)order[i - 1],
			    (unsigned long long)gi,
			    (unsigned long long)(order[i] >> 32));
		else if (v->h.flags & VMDK_FLAG_COMPRESSED)
			rc = host < img->src->pos ? image_bad(img, "compressed "
			    "grain at 0x%llx lies before its grain table",
			    (unsigned long long)host) : vmdk_pipe_compressed(img,
			    v, em, gi, host);
		else
			rc = vmdk_pipe_grain(img, v, em, &run, gi, host);
		if (rc == 0)
			rc = vmdk_pipe_promise(v, em, &run, lowest[i + 1]);
	}
	free(lowest);
	free(order);
	return rc < 0 ? -1 : vmdk_flush_run(img, v, em, &run);
}

static int vmdk_read_stream(struct image *img, struct vmdk *v,
    struct emitter *em)
{
	uint64_t ntotal = v->ngts * v->h.gtes_per_gt;
	uint32_t *gts;
	int rc;

	/*
	 * Only a stream whose GD is at the end needs its markers walked.
	 * qemu-img's streams name their GD in the header, tables first, and
	 * may end right after the last grain with no end-of-stream marker:
	 * the tables say what must come, so a cut is seen, grains may come
	 * in any order, and a pipe reads what a file reads.
	 */
	if (vmdk_has_markers(v) && v->h.gd_offset == VMDK_GD_AT_END)
		return vmdk_read_markers(img, v, em);
	if (ntotal * VMDK_GTE_BYTES > IMAGE_META_MAX || v->ngrains > UINT32_MAX)
		return image_bad(img, "grain tables of %llu entries are larger "
		    "than the %llu-byte limit for reading from a pipe",
		    (unsigned long long)ntotal, IMAGE_META_MAX);
	if (vmdk_pipe_advance(img, v, v->h.gd_offset * VMDK_SECTOR,
	    "grain directory") < 0 ||
	    vmdk_load_gd(img, v, v->h.gd_offset, &v->gd,
	    "grain directory") < 0)
		return -1;
	gts = calloc(ntotal + 1, sizeof *gts);
	if (gts == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = vmdk_pipe_read_gts(img, v, gts);
	if (rc == 0)
		rc = vmdk_pipe_read_grains(img, v, em, gts);
	free(gts);
	return rc;
}

static int vmdk_read(struct image *img, struct emitter *em)
{
	struct vmdk *v = img->priv;

	if (v == NULL)
		return image_bad(img, "a descriptor file holds no disk data");
	if (img->src->seekable && v->h.gd_offset != VMDK_GD_AT_END)
		return vmdk_read_seekable(img, v, em);
	return vmdk_read_stream(img, v, em);
}

static void vmdk_close(struct image *img)
{
	struct vmdk *v = img->priv;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nkept; i++)
		if (!v->kept[i].taken)
			stash_drop(img->stash, &v->kept[i].ref);
	if (v->zs_ready)
		inflateEnd(&v->zs);
	free(v->kept);
	free(v->gd);
	free(v->grain);
	free(v->kcache);
	free(v->run);
	free(v->win);
	free(v);
}

const struct format format_vmdk = {
	.name = "vmdk",
	.desc = "VMware VMDK: monolithicSparse, streamOptimized",
	.bid = vmdk_bid,
	.open = vmdk_open,
	.read = vmdk_read,
	.close = vmdk_close,
};
