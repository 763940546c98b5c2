/*
 * The VMDK reader's input: positioned reads through a read-ahead window
 * from a file; from a pipe, forward reads, with every byte passed over
 * kept in the stash (in runs of one grain) in case a table met later
 * names it.  A read past the end says so in the same words both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

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

/* Read up to one grain forward into the stash; the bytes read, or -1. */
static ssize_t vmdk_keep_run(struct image *img, struct vmdk *v, size_t n)
{
	uint64_t pos = img->src->pos;
	struct vmdk_kept *k;
	ssize_t got;

	got = image_read_forward(img, v->run, n);
	if (got <= 0)
		return got;
	if (grow_array(&v->kept, v->nkept, &v->capkept, sizeof *v->kept, 64,
	    SIZE_MAX) < 0)
		return -1;
	k = &v->kept[v->nkept];
	k->host = pos;
	k->taken = false;
	if (stash_put(img->stash, v->run, (size_t)got, &k->ref) < 0)
		return -1;
	v->nkept++;
	return got;
}

/* Go forward to off, where what is, keeping what is passed over. */
int vmdk_pipe_advance(struct image *img, struct vmdk *v, uint64_t off,
    const char *what)
{
	uint64_t pos;

	while ((pos = img->src->pos) < off) {
		size_t n = off - pos < v->grain_bytes ? off - pos
		    : v->grain_bytes;
		ssize_t got = vmdk_keep_run(img, v, n);

		if (got < 0)
			return -1;
		if ((size_t)got < n)
			return vmdk_past_end(img, what, off);
	}
	return 0;
}

/* Keep the rest of a pipe; then its length is known. */
int vmdk_pipe_keep_all(struct image *img, struct vmdk *v)
{
	ssize_t got;

	while ((got = vmdk_keep_run(img, v, v->grain_bytes)) > 0)
		;
	if (got < 0)
		return -1;
	v->end = img->src->pos;
	v->end_known = true;
	return 0;
}

/* The first kept run that ends after host. */
static size_t vmdk_kept_at(const struct vmdk *v, uint64_t host)
{
	size_t lo = 0, hi = v->nkept;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->kept[mid].host + v->kept[mid].ref.len <= host)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Run i into v->kcache (which holds one run, kcached = i + 1). */
static int vmdk_kept_load(struct image *img, struct vmdk *v, size_t i,
    bool take)
{
	struct vmdk_kept *k = &v->kept[i];

	if (v->kcached == i + 1) {
		if (take && !k->taken) {	/* a copy was read: let go */
			stash_drop(img->stash, &k->ref);
			k->taken = true;
		}
		return 0;
	}
	if (k->taken)
		return 1;
	v->kcached = 0;
	if (stash_take(img->stash, &k->ref, v->kcache) < 0)
		return -1;
	/* a table may be read again, so it goes back until taken */
	if (!take && stash_put(img->stash, v->kcache, k->ref.len, &k->ref) < 0)
		return -1;
	k->taken = take;
	v->kcached = i + 1;
	return 0;
}

/*
 * Copy [host, host+len) back from the kept runs.  take: a run leaves the
 * stash when used (grains, taken going forward); otherwise it stays
 * (tables, which may be read in any order).
 */
static int vmdk_kept_copy(struct image *img, struct vmdk *v, uint64_t host,
    unsigned char *out, size_t len, const char *what, bool take)
{
	size_t got = 0, i;
	int rc;

	for (i = vmdk_kept_at(v, host); i < v->nkept && got < len; i++) {
		struct vmdk_kept *k = &v->kept[i];
		uint64_t skip = host + got - k->host;
		size_t n;

		if (k->host > host + got || skip >= k->ref.len)
			break;
		rc = vmdk_kept_load(img, v, i, take);
		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
		n = k->ref.len - skip < len - got ? k->ref.len - skip : len - got;
		memcpy(out + got, v->kcache + skip, n);
		got += n;
	}
	if (got < len)
		return image_bad(img, "%s at 0x%llx lies before data already "
		    "read from the stream and was not kept", what,
		    (unsigned long long)host);
	return 0;
}

int vmdk_take_kept(struct image *img, struct vmdk *v, uint64_t host,
    unsigned char *out, size_t len, const char *what)
{
	return vmdk_kept_copy(img, v, host, out, len, what, true);
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
	if (off < img->src->pos)
		return vmdk_kept_copy(img, v, off, buf, len, what, false);
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

void vmdk_drop_kept(struct image *img, struct vmdk *v)
{
	for (size_t i = 0; i < v->nkept; i++)
		if (!v->kept[i].taken)
			stash_drop(img->stash, &v->kept[i].ref);
	free(v->kept);
	v->kept = NULL;
	v->nkept = v->capkept = 0;
}
