/*
 * The VMDK reader's input: positioned reads through a read-ahead window
 * from a file; from a pipe, forward reads, the bytes passed over kept by
 * the source (its retention, in the one parking store and its budget)
 * until the tables are read, in case a table met later names them.  A
 * read past the end says so in the same words both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

bool vmdk_input_size(const struct image *img, const struct vmdk *v,
    uint64_t *size)
{
	if (img->src->size_known) {
		*size = img->src->size;
		return true;
	}
	*size = v->end;
	return v->end_known;
}

int vmdk_past_end(struct image *img, const char *what, uint64_t off)
{
	return image_defect(img, FINDING_TRUNCATED, "%s at 0x%llx lies past "
	    "the end of the image", what, (unsigned long long)off);
}

/* A pipe ran dry: the message a file gives for the same cut. */
static int vmdk_cut(struct image *img, const char *what, uint64_t off)
{
	const char *code = err_code();

	if (err_status() != EXIT_REJECT || code == NULL ||
	    strcmp(code, FINDING_TRUNCATED) != 0)
		return -1;
	err_clear();
	return vmdk_past_end(img, what, off);
}

int vmdk_emit_data(struct vmdk *v, struct emitter *em, uint64_t off,
    const void *buf, size_t len)
{
	return emit_data(em, v->vbase + off, buf, len);
}

int vmdk_emit_upto(struct vmdk *v, struct emitter *em, uint64_t off)
{
	return emit_upto(em, v->vbase + off);
}

/* Bytes [off, off+len) of a seekable input, read ahead a window at a time. */
const unsigned char *vmdk_window(struct image *img, struct vmdk *v,
    uint64_t off, size_t len, const char *what)
{
	uint64_t size = img->src->size;
	size_t want;

	if (off >= v->win_off && len <= v->win_len &&
	    off - v->win_off <= v->win_len - len)
		return v->win + (off - v->win_off);
	if (off > size || len > size - off) {
		vmdk_past_end(img, what, off);
		return NULL;
	}
	want = len > VMDK_WINDOW ? len : VMDK_WINDOW;
	if (size - off < want)
		want = size - off;
	if (image_read_at(img, v->win, want, off, what) < 0)
		return NULL;
	v->win_off = off;
	v->win_len = want;
	return v->win;
}

/*
 * A pipe's bytes behind its position: the source keeps what passes
 * (source_retain(), charged to the one budget, spilled beyond it) from
 * the header on until every table is read, so a table met late can place
 * grains met early; each grain, once read back, is released.
 */
int vmdk_pipe_retain(struct image *img)
{
	if (img->src->seekable)
		return 0;
	return source_retain(img->src, img->stash, 0);
}

/* Every table is read: keep nothing more (grains behind stay kept). */
void vmdk_pipe_tables_read(struct image *img)
{
	if (!img->src->seekable)
		source_retain_stop(img->src);
}

/* Nothing behind the position will be read again. */
int vmdk_pipe_forget(struct image *img)
{
	if (img->src->seekable)
		return 0;
	return source_retain(img->src, img->stash, SOURCE_RETAIN_NONE);
}

/* Bytes [off, off + len) of a pipe, read back, will not be read again;
 * whole sectors, so a piece of the store empties once its grains are. */
void vmdk_pipe_release(struct image *img, uint64_t off, uint64_t len)
{
	if (!img->src->seekable)
		source_release(img->src, off, (len + VMDK_SECTOR - 1) /
		    VMDK_SECTOR * VMDK_SECTOR);
}

/* Go forward to off, where what is (the source keeps what it passes). */
int vmdk_pipe_advance(struct image *img, struct vmdk *v, uint64_t off,
    const char *what)
{
	(void)v;
	if (img->src->pos >= off)
		return 0;
	return image_skip_to(img, off) < 0 ? vmdk_cut(img, what, off) : 0;
}

/* Read the rest of a pipe (the source keeps it); then its length is known. */
int vmdk_pipe_keep_all(struct image *img, struct vmdk *v)
{
	ssize_t got;

	while ((got = image_read_forward(img, v->run, VMDK_RUN_MAX)) > 0)
		;
	if (got < 0)
		return -1;
	v->end = img->src->pos;
	v->end_known = true;
	return 0;
}

/*
 * Walking a file (imginfo), a marker or a grain's marker head: read with
 * the aligned block around it, which holds the next markers of a stream
 * packed with small grains: one read, not one a grain.  Only the pages
 * holding markers are read, and nothing is inflated.  off + len is
 * within the file (checked by the caller).
 */
static int vmdk_peek(struct image *img, struct vmdk *v, void *buf, size_t len,
    uint64_t off, const char *what)
{
	uint64_t start = off / VMDK_PEEK * VMDK_PEEK, size = img->src->size;
	size_t want = VMDK_PEEK;

	if (off < v->peek_off || off - v->peek_off > v->peek_len ||
	    len > v->peek_len - (off - v->peek_off)) {
		if (v->peek == NULL && (v->peek = malloc(2 * VMDK_PEEK)) == NULL)
			return fail(EXIT_IO, "out of memory");
		if (off + len > start + want)	/* across the block's end */
			want *= 2;
		if (size - start < want)
			want = size - start;
		v->peek_len = 0;
		if (image_read_at(img, v->peek, want, start, what) < 0)
			return -1;
		v->peek_off = start;
		v->peek_len = want;
	}
	memcpy(buf, v->peek + (off - v->peek_off), len);
	return 0;
}

/*
 * Metadata (GD, GTs, a footer) at off: from a file, or from a pipe going
 * forward or back into what it kept.  A read past the end gives the
 * same message both ways.
 */
int vmdk_read_part(struct image *img, struct vmdk *v, void *buf, size_t len,
    uint64_t off, const char *what, uint64_t at)
{
	uint64_t size;

	if (vmdk_input_size(img, v, &size) && (off > size || len > size - off))
		return vmdk_past_end(img, what, at);
	if (img->src->seekable && img->walk && len <= VMDK_SECTOR)
		return vmdk_peek(img, v, buf, len, off, what);
	if (img->src->seekable)
		return image_read_at(img, buf, len, off, what);
	/* a pipe: ahead, or back into what the source kept */
	if (vmdk_pipe_advance(img, v, off, what) < 0 ||
	    image_read_at(img, buf, len, off, what) < 0)
		return vmdk_cut(img, what, at);
	return 0;
}

int vmdk_meta_read(struct image *img, struct vmdk *v, void *buf, size_t len,
    uint64_t off, const char *what)
{
	return vmdk_read_part(img, v, buf, len, off, what, off);
}

/* Consume what follows the end of the image, so writers see no EPIPE. */
int vmdk_drain(struct image *img, struct vmdk *v)
{
	ssize_t n;

	if (img->src->seekable)
		return 0;
	while ((n = image_read_forward(img, v->run, VMDK_RUN_MAX)) > 0)
		;
	return n < 0 ? -1 : 0;
}
