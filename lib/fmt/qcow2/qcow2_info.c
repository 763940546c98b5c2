/*
 * qcow2 facts for imginfo, as qemu-img info (7.2) prints them: compat,
 * compression-type, lazy-refcounts, refcount-bits, encrypt, corrupt,
 * extended-l2, data-file; the backing file's format; the snapshot table.
 * Layout: QEMU docs/interop/qcow2.txt.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt/qcow2/qcow2.h"
#include "fmt/qcow2/qcow2_info.h"
#include "imgpipe/bytes.h"
#include "imgpipe/err.h"

#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1u << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1u << 1)
/* Snapshot table entry: fixed part, then extra data, id, name. */
#define SNAP_FIXED 40
#define SNAP_LISTED_MAX 16	/* more would crowd out every other fact */

/* A name from the image, printable. */
static void name_copy(char *dst, size_t dstlen, const unsigned char *p,
    size_t len)
{
	size_t i;

	if (len >= dstlen)
		len = dstlen - 1;
	for (i = 0; i < len; i++)
		dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	dst[len] = '\0';
}

/* Header extensions: the backing format, the external data file's name. */
static void qcow2_info_extensions(struct image *img, const unsigned char *c0,
    uint64_t cs, uint64_t off, char *data_file, size_t data_file_len)
{
	uint32_t type, len;

	while (off + 8 <= cs) {
		type = be32(c0 + off);
		len = be32(c0 + off + 4);
		if (type == QCOW2_EXT_END || len > cs - off - 8)
			return;
		if (type == QCOW2_EXT_BACKING_FORMAT)
			name_copy(img->backing_format,
			    sizeof img->backing_format, c0 + off + 8, len);
		if (type == QCOW2_EXT_DATA_FILE)
			name_copy(data_file, data_file_len, c0 + off + 8, len);
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
}

/* One snapshot entry at e (len bytes available); its length, or 0. */
static size_t qcow2_info_snapshot(struct image *img, const unsigned char *e,
    size_t len)
{
	uint32_t extra = be32(e + 36);
	uint16_t id_len = be16(e + 12), name_len = be16(e + 14);
	uint64_t clock = be64(e + 24), vmstate = be32(e + 32);
	size_t need = SNAP_FIXED + (size_t)extra + id_len + name_len;
	char text[96];

	if (len < SNAP_FIXED || extra > 1024 || need > len)
		return 0;
	if (extra >= 8)
		vmstate = be64(e + SNAP_FIXED);
	image_detail_item(img, "snapshots");
	if (extra >= 24 && be64(e + SNAP_FIXED + 16) != UINT64_MAX)
		image_detail_num(img, "icount", be64(e + SNAP_FIXED + 16));
	image_detail_num(img, "vm-clock-nsec", clock % 1000000000u);
	name_copy(text, sizeof text, e + SNAP_FIXED + extra + id_len,
	    name_len);
	image_detail(img, "name", "%s", text);
	image_detail_num(img, "date-sec", be32(e + 16));
	image_detail_num(img, "date-nsec", be32(e + 20));
	image_detail_num(img, "vm-clock-sec", clock / 1000000000u);
	name_copy(text, sizeof text, e + SNAP_FIXED + extra, id_len);
	image_detail(img, "id", "%s", text);
	image_detail_num(img, "vm-state-size", vmstate);
	image_detail_end(img);
	return (need + 7) & ~(size_t)7;
}

/*
 * The snapshot table, read where that cannot move a pipe: from a file,
 * or when it lies in the head.  Stops quietly at anything odd.
 */
static void qcow2_info_snapshots(struct image *img, const unsigned char *h)
{
	uint32_t n = be32(h + QCOW2_HDR_NB_SNAPSHOTS), i;
	uint64_t off = be64(h + QCOW2_HDR_SNAPSHOTS_OFF);
	struct source *src = img->src;
	const size_t bufsize = SNAP_FIXED + 1024 + 2 * 65536;
	unsigned char *buf = malloc(bufsize);
	size_t len, used;

	for (i = 0; buf != NULL && i < n && i < SNAP_LISTED_MAX; i++) {
		if (src->seekable && src->size_known && off < src->size) {
			len = src->size - off < bufsize ? src->size - off
			    : bufsize;
			if (source_read_at(src, buf, len, off, "snapshot") < 0)
				break;
			used = qcow2_info_snapshot(img, buf, len);
		} else if (!src->seekable && off < src->headlen) {
			used = qcow2_info_snapshot(img, src->head + off,
			    src->headlen - off);
		} else {
			break;
		}
		if (used == 0)
			break;
		off += used;
	}
	free(buf);
	err_clear();
}

void qcow2_info(struct image *img, const unsigned char *h,
    const unsigned char *c0, uint64_t cs)
{
	uint32_t version = be32(h + QCOW2_HDR_VERSION),
	    crypt = be32(h + QCOW2_HDR_CRYPT);
	uint64_t incompat = 0, compat = 0, autoclear = 0;
	uint32_t refcount_order = 4, header_len = QCOW2_V2_HEADER_LEN;
	char data_file[96] = "";
	int ctype = 0;

	if (!img->inspect)
		return;		/* a conversion needs none of it */

	if (version >= 3) {
		incompat = be64(h + QCOW2_HDR_INCOMPAT);
		compat = be64(h + QCOW2_HDR_COMPAT);
		autoclear = be64(h + QCOW2_HDR_AUTOCLEAR);
		refcount_order = be32(h + QCOW2_HDR_REFCOUNT_ORDER);
		header_len = be32(h + QCOW2_HDR_LEN);
		if (header_len > QCOW2_V3_HEADER_LEN && header_len <= cs)
			ctype = c0[QCOW2_HDR_COMPRESSION];
	}
	if (header_len <= cs)
		qcow2_info_extensions(img, c0, cs, header_len, data_file,
		    sizeof data_file);
	img->encrypted = crypt != 0;
	image_detail(img, "compat", "%s", version >= 3 ? "1.1" : "0.10");
	image_detail(img, "compression-type", "%s", ctype == 0 ? "zlib"
	    : ctype == 1 ? "zstd" : "unknown");
	if (version >= 3)
		image_detail_bool(img, "lazy-refcounts",
		    compat & QCOW2_COMPAT_LAZY_REFCOUNTS);
	if (refcount_order < 7)
		image_detail_num(img, "refcount-bits", 1u << refcount_order);
	if (crypt != 0) {
		image_detail_object(img, "encrypt");
		image_detail(img, "format", "%s", crypt == 1 ? "aes" : "luks");
		image_detail_end(img);
	}
	if (version >= 3) {
		image_detail_bool(img, "corrupt",
		    incompat & QCOW2_INCOMPAT_CORRUPT);
		if (data_file[0] != '\0') {
			image_detail(img, "data-file", "%s", data_file);
			image_detail_bool(img, "data-file-raw",
			    autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW);
		}
		image_detail_bool(img, "extended-l2",
		    incompat & QCOW2_INCOMPAT_EXTENDED_L2);
	}
	qcow2_info_snapshots(img, h);
}
