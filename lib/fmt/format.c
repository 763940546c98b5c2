#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"

const struct format *format_by_name(const char *name)
{
	int i;

	for (i = 0; format_aliases[i].alias != NULL; i++)
		if (strcmp(format_aliases[i].alias, name) == 0)
			name = format_aliases[i].name;
	for (i = 0; formats[i] != NULL; i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

static void probe_fill(struct source *src, struct probe *pb,
    unsigned char *tail)
{
	memset(pb, 0, sizeof *pb);
	pb->head = src->head;
	pb->headlen = src->headlen;
	pb->size_known = src->size_known;
	pb->size = src->size;
	if (src->seekable && src->size >= 512 &&
	    source_read_at(src, tail, 512, src->size - 512, "footer") == 0) {
		pb->tail = tail;
		pb->taillen = 512;
	}
	err_clear();
}

int format_probe(struct source *src, const char *forced,
    const struct format **out)
{
	unsigned char tail[512];
	const struct format *best = NULL, *other = NULL;
	struct probe pb;
	int i, bid, best_bid = 0;

	probe_fill(src, &pb, tail);
	if (forced != NULL) {
		const struct format *f = format_by_name(forced);

		if (f == NULL)
			return fail(EXIT_USAGE, "unknown format '%s' (see "
			    "--list-formats)", forced);
		if (f->bid(&pb) <= BID_NONE) {
			const struct format *real;
			const struct foreign *fr = format_foreign(src);

			if (fr != NULL)
				return fail(EXIT_REJECT, "input is not %s (it "
				    "looks like %s, %s)", forced, fr->name,
				    fr->text);
			if (format_probe(src, NULL, &real) == 0)
				return fail(EXIT_REJECT, "input is not %s (it "
				    "looks like %s)", forced, real->name);
			err_clear();
			return fail(EXIT_REJECT, "input is not %s", forced);
		}
		*out = f;
		return 0;
	}
	for (i = 0; formats[i] != NULL; i++) {
		bid = formats[i]->bid(&pb);
		if (bid >= BID_SIGNATURE && best_bid >= BID_SIGNATURE)
			other = formats[i];
		if (bid > best_bid) {
			best_bid = bid;
			best = formats[i];
		}
	}
	if (other != NULL) {
		if (other == best)
			for (i = 0; formats[i] != NULL; i++)
				if (formats[i] != best &&
				    formats[i]->bid(&pb) >= BID_SIGNATURE)
					other = formats[i];
		return fail(EXIT_REJECT, "ambiguous input: it has the "
		    "signatures of both %s and %s; choose one with -f",
		    best->name, other->name);
	}
	if (best == NULL)
		return fail(EXIT_REJECT, "unrecognised input");
	/* Nothing we read claims it: a container we do not read is no disk. */
	if (best_bid < BID_SIGNATURE) {
		const struct foreign *fr = format_foreign(src);

		if (fr != NULL)
			return format_refuse_foreign(fr);
	}
	*out = best;
	return 0;
}

extern const struct format format_raw, format_iso;

/*
 * The one rule for a declared virtual size that is not a multiple of 512
 * (imginfo(1), img2raw(1)): a disk is whole sectors, and no byte the image
 * holds is dropped, so the size is rounded up; the bytes up to the sector
 * boundary are what the image maps there, as for any other byte.  qemu
 * does so for VDI and rounds down for qcow2.  Raw and ISO inputs are their
 * bytes, not a declared size, and keep their length.
 */
static uint64_t image_whole_sectors(const struct image *img)
{
	uint64_t v = img->virtual_size;

	if (img->fmt == &format_raw || img->fmt == &format_iso || v % 512 == 0 ||
	    v > UINT64_MAX - 512)
		return v;
	return v + 512 - v % 512;
}

int image_open(struct image *img, struct source *src, struct stash *st,
    const char *forced, bool inspect)
{
	memset(img, 0, sizeof *img);
	img->src = src;
	img->stash = st;
	img->inspect = inspect;
	img->forced = forced != NULL;
	if (format_probe(src, forced, &img->fmt) < 0)
		return -1;
	if (img->fmt->open(img) < 0)
		goto fail;	/* a reader's state is freed, whatever failed */
	img->virtual_size = image_whole_sectors(img);
	if (img->virtual_size > IMAGE_VSIZE_MAX && image_unsafe(img,
	    "virtual-size", "virtual size %llu is beyond the limit of %llu "
	    "bytes", (unsigned long long)img->virtual_size,
	    (unsigned long long)IMAGE_VSIZE_MAX) < 0)
		goto fail;
	return 0;
fail:
	image_close(img);
	img->fmt = NULL;
	return -1;
}

int image_read(struct image *img, struct emitter *em)
{
	if (img->fmt->read(img, em) < 0)
		return -1;
	return emit_finish(em);
}

/* Once only: a failed image_open has closed already. */
void image_close(struct image *img)
{
	if (img->fmt != NULL && img->fmt->close != NULL && img->priv != NULL)
		img->fmt->close(img);
	img->priv = NULL;
}

int image_unsafe(struct image *img, const char *code, const char *fmt, ...)
{
	struct finding *f;
	va_list ap;
	int i;

	/* One finding per code: two routes to the same fact say it once. */
	for (i = 0; i < img->nfindings && img->inspect; i++)
		if (strcmp(img->findings[i].code, code) == 0)
			return 0;
	if (img->nfindings < FINDINGS_MAX) {
		f = &img->findings[img->nfindings++];
		snprintf(f->code, sizeof f->code, "%s", code);
		va_start(ap, fmt);
		vsnprintf(f->text, sizeof f->text, fmt, ap);
		va_end(ap);
		if (!img->inspect)
			return fail(EXIT_REJECT, "%s: %s", img->fmt->name,
			    f->text);
		return 0;
	}
	return img->inspect ? 0 : fail(EXIT_REJECT, "%s: unsafe image",
	    img->fmt->name);
}

static int defect(struct image *img, const char *code, const char *fmt,
    va_list ap)
{
	char text[512];

	vsnprintf(text, sizeof text, fmt, ap);
	return fail_code(EXIT_REJECT, code, "%s: %s", img->fmt->name, text);
}

int image_bad(struct image *img, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	defect(img, FINDING_MALFORMED, fmt, ap);
	va_end(ap);
	return -1;
}

int image_defect(struct image *img, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	defect(img, code, fmt, ap);
	va_end(ap);
	return -1;
}

/* Re-issue a rejection recorded by the source as this format's error. */
static int name_the_format(struct image *img)
{
	const char *code = err_code();
	char msg[1024];

	if (!err_rejects_image())	/* I/O, or the budget: not the image's */
		return -1;
	snprintf(msg, sizeof msg, "%s", err_msg());
	err_clear();
	return image_defect(img, code ? code : FINDING_MALFORMED, "%s", msg);
}

int image_read_at(struct image *img, void *buf, size_t len, uint64_t off,
    const char *what)
{
	if (source_read_at(img->src, buf, len, off, what) == 0)
		return 0;
	return name_the_format(img);
}

ssize_t image_read_forward(struct image *img, void *buf, size_t len)
{
	ssize_t n = source_read(img->src, buf, len);

	return n >= 0 ? n : name_the_format(img);
}

int image_skip_to(struct image *img, uint64_t off)
{
	if (source_skip_to(img->src, off) == 0)
		return 0;
	return name_the_format(img);
}

int image_check_range(struct image *img, uint64_t off, uint64_t len,
    const char *what)
{
	const struct source *s = img->src;

	if (s->size_known && (off > s->size || len > s->size - off))
		return image_defect(img, FINDING_TRUNCATED, "%s at 0x%llx lies "
		    "past the end of the image", what, (unsigned long long)off);
	return 0;
}

/*
 * Input bytes [off, off + n) to voff in the kernel, when the input is a
 * plain stream and the sink a pipe waiting for them: 0 when done, 1 when
 * they are to be read (nothing done but perhaps a skip to off), -1.
 * A cut input fails as image_read_at() of the same bytes would.
 */
static int emit_spliced(struct image *img, struct emitter *em, uint64_t off,
    size_t n, uint64_t voff, const char *what)
{
	struct source *s = img->src;
	size_t got;
	int fd, rc;

	if (!emit_splice_ready(em, voff, n))
		return 1;
	fd = source_splice_from(s, off, n, what);
	if (fd == -2)
		return 1;
	if (fd < 0)
		return name_the_format(img);
	rc = emit_splice(em, voff, fd, n, &got);
	if (rc != 0)
		return rc;
	return source_spliced(s, off, n, got, what) < 0 ?
	    name_the_format(img) : 0;
}

/*
 * Whether the sink may read [off, off + len) itself: from a plain file
 * that holds it all (a cut image fails here, and as it does from a pipe).
 */
static bool deferrable(const struct source *s, uint64_t off, uint64_t len)
{
	return s->seekable && s->ar == NULL && s->size_known &&
	    off <= s->size && len <= s->size - off;
}

/* Read [off, off + len) and emit it at voff, into the sink's memory if lent. */
static int emit_read(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff, const char *what)
{
	struct source *s = img->src;
	bool defer = deferrable(s, off, len);
	unsigned char *p;
	size_t n;
	int rc;

	while (len > 0) {
		n = len < SIZE_MAX ? len : SIZE_MAX;
		if (defer && emit_defer(em, s->fd, s->base + off, voff, &n,
		    img->fmt->name, off) < 0)
			return -1;
		if (defer && n > 0) {
			source_meter(s, off, n);
			goto next;
		}
		defer = false;	/* the sink does not: read it here */
		n = len < bufsize ? len : bufsize;
		rc = emit_spliced(img, em, off, n, voff, what);
		if (rc < 0)
			return -1;
		if (rc == 1 && emit_buffer(em, voff, &n, &p) < 0)
			return -1;
		if (rc == 1 && p == NULL)
			p = buf;
		if (rc == 1 && (image_read_at(img, p, n, off, what) < 0 ||
		    emit_data(em, voff, p, n) < 0))
			return -1;
next:
		off += n;
		voff += n;
		len -= n;
	}
	return 0;
}

/*
 * From a plain file, the sink may clone the run's whole blocks in the
 * kernel (qemu-img convert -C): only a run the input holds entirely, so
 * that a cut image fails where and as it does from a pipe.
 */
static int emit_cloned(struct image *img, struct emitter *em, uint64_t off,
    uint64_t len, uint64_t voff, uint64_t *from, uint64_t *to)
{
	struct source *s = img->src;

	*from = *to = voff;
	if (!s->seekable || s->ar != NULL || !s->size_known ||
	    off > s->size || len > s->size - off)
		return 0;
	if (emit_clone(em, s->fd, s->base + off, len, voff, from, to) < 0)
		return -1;
	if (*to > *from)
		source_meter(s, off + (*from - voff), *to - *from);
	return 0;
}

/* [off, off + len) of the input: cloned where the sink can, else read. */
static int copy_data(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff, const char *what)
{
	uint64_t from, to;

	if (emit_cloned(img, em, off, len, voff, &from, &to) < 0 ||
	    emit_read(img, em, buf, bufsize, off, from - voff, voff, what) < 0)
		return -1;
	return emit_read(img, em, buf, bufsize, off + (to - voff),
	    voff + len - to, to, what);
}

/*
 * Holes of a plain file are zeros without reading them, as qemu-img's
 * block status has it: a qcow2 made with preallocation=metadata maps
 * every cluster to bytes its file has never held (1 TiB: ten minutes of
 * reading zeros from the kernel, three seconds for qemu-img).  Only a
 * range the file holds entirely: a cut image fails as from a pipe, where
 * the same zeros arrive as data and give the same output.
 */
int image_copy_range(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff, const char *what)
{
	struct source *s = img->src;
	uint64_t n;
	bool hole;

	if (img->walk)
		return image_check_range(img, off, len, what) < 0 ? -1 :
		    emit_zero(em, voff, len);
	if (!deferrable(s, off, len))
		return copy_data(img, em, buf, bufsize, off, len, voff, what);
	for (; len > 0; off += n, voff += n, len -= n) {
		n = source_extent_at(s, off, len, &hole);
		if (hole)
			source_meter(s, off, n);
		if (hole ? emit_zero(em, voff, n) < 0 : copy_data(img, em,
		    buf, bufsize, off, n, voff, what) < 0)
			return -1;
	}
	return 0;
}

int image_emit_range(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff)
{
	return image_copy_range(img, em, buf, bufsize, off, len, voff, "data");
}

size_t format_trailer(const unsigned char *tail, size_t taillen,
    uint64_t data_len)
{
	size_t n;
	int i;

	for (i = 0; formats[i] != NULL; i++)
		if (formats[i]->trailer != NULL &&
		    (n = formats[i]->trailer(tail, taillen, data_len)) > 0)
			return n;
	return 0;
}

int image_stream_hold_tail(struct image *img, struct emitter *em,
    unsigned char *buf, size_t chunk, uint64_t *emitted, size_t *taillen)
{
	uint64_t off = 0;
	size_t have = 0;
	ssize_t n;

	em->size = UINT64_MAX;
	while ((n = image_read_forward(img, buf + have, chunk)) > 0) {
		have += n;
		if (have > STREAM_TAIL) {
			size_t out = have - STREAM_TAIL;

			if (emit_data(em, off, buf, out) < 0)
				return -1;
			off += out;
			memmove(buf, buf + out, STREAM_TAIL);
			have = STREAM_TAIL;
		}
	}
	*emitted = off;
	*taillen = have;
	return n < 0 ? -1 : 0;
}
