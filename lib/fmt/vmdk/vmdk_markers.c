/*
 * A stream whose GD is at the end (VMware's and VirtualBox's layout) is
 * read marker by marker in file order, from a file as from a pipe: the
 * same reads, the same checks, the same verdict.  Grains are inflated as
 * they come; metadata markers are skipped by the sectors they declare.
 */
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

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
	return vmdk_emit_upto(v, em, off);
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
	if (rest > 0 && vmdk_meta_read(img, v, c + VMDK_SECTOR -
	    VMDK_MARKER_HEAD, rest, where + VMDK_SECTOR, "grain") < 0)
		return -1;
	*off = where + VMDK_SECTOR + rest;
	n = vmdk_inflate(img, v, c, csize, where);
	return n < 0 ? -1 : vmdk_emit_grain(img, v, em, gi, n);
}

/* From a pipe the footer comes last: check it all the same. */
static int vmdk_pipe_footer(struct image *img, struct vmdk *v, uint64_t off)
{
	unsigned char footer[VMDK_SECTOR];
	struct vmdk_header keep = v->h;
	int rc;

	if (vmdk_meta_read(img, v, footer, VMDK_SECTOR, off, "footer") < 0)
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

int vmdk_read_markers(struct image *img, struct vmdk *v,
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
		if (vmdk_meta_read(img, v, sec, VMDK_SECTOR, off, "marker") < 0)
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
