/* raw: the disk itself.  Holes in the input file are skipped, not read. */
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "imgpipe/err.h"

extern const struct format format_raw;

/*
 * 128 KiB, cp's size: each chunk is scanned for zeros, then copied, and
 * stays in cache between the two.  Measured on a 4 GiB dense disk to a
 * file: 1.01 s against 1.20 s at 256 KiB (1 MiB was slower still); to a
 * pipe, 256 KiB was 5% faster.
 */
#define RAW_CHUNK (128 * 1024)

static int raw_bid(const struct probe *pb)
{
	(void)pb;
	return BID_CATCHALL;
}

int raw_open(struct image *img)
{
	img->virtual_size = img->src->size_known ? img->src->size : 0;
	img->size_late = !img->src->size_known;
	return 0;
}

static int read_seekable(struct image *img, struct emitter *em,
    unsigned char *buf)
{
	struct source *src = img->src;
	uint64_t off = 0, start, end;
	int r;

	while ((r = source_next_data(src, off, &start, &end)) > 0) {
		/* Nothing comes below start: in-order sinks need not park. */
		if (emit_upto(em, start) < 0)
			return -1;
		for (off = start; off < end;) {
			size_t n = end - off < RAW_CHUNK ? end - off : RAW_CHUNK;

			if (source_read_at(src, buf, n, off, "data") < 0 ||
			    emit_data(em, off, buf, n) < 0)
				return -1;
			off += n;
		}
	}
	return r;
}

/*
 * From a pipe the length is known only at the end, and the last bytes may
 * be another format's trailer (a fixed VHD's footer), so they are held
 * back until then and the format table is asked.
 */
static int read_stream(struct image *img, struct emitter *em,
    unsigned char *buf)
{
	const struct foreign *fr;
	uint64_t off;
	size_t have;

	if (image_stream_hold_tail(img, em, buf, RAW_CHUNK, &off, &have) < 0)
		return -1;
	/* Only the end of a pipe shows a DMG's trailer: refuse it there. */
	if (!img->forced && img->fmt == &format_raw &&
	    (fr = format_foreign_trailer(buf, have)) != NULL)
		return format_refuse_foreign(fr);
	if (!img->verbatim && img->fmt == &format_raw) {
		size_t t = format_trailer(buf, have, off);

		if (t == SIZE_MAX)
			return -1;	/* a trailer that does not check out */
		have -= t;
	}
	if (emit_data(em, off, buf, have) < 0)
		return -1;
	img->virtual_size = em->size = off + have;
	return 0;
}

int raw_read(struct image *img, struct emitter *em)
{
	unsigned char *buf;
	int rc;

	/* Walking a file: the disk is the file, no table to check. */
	if (img->walk && img->src->seekable)
		return 0;
	buf = malloc(RAW_CHUNK + STREAM_TAIL);
	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = img->src->seekable ? read_seekable(img, em, buf)
	    : read_stream(img, em, buf);
	free(buf);
	return rc;
}

const struct format format_raw = {
	.name = "raw",
	.desc = "raw disk image (anything no other format claims)",
	.bid = raw_bid,
	.open = raw_open,
	.read = raw_read,
};
