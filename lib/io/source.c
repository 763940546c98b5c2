#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "imgpipe/err.h"
#include "imgpipe/fdio.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"

#define SKIP_CHUNK (256 * 1024)
#define SOURCE_PIPE_SIZE (1024 * 1024)
struct kept_span {
	uint64_t a, b;
};

/*
 * Stream bytes kept behind the position, and the spans of them not yet
 * released: one span in the record, more in an array charged to the
 * stash.
 */
struct source_kept {
	uint64_t off;		/* stream offset of ref's first byte */
	struct stash_ref ref;	/* empty: released, waiting to be compacted */
	size_t nspans, capspans;
	struct kept_span one;	/* the spans while there is one (many NULL) */
	struct kept_span *many;	/* ascending, within [off, off + ref.len) */
};

static int capture(struct source *s, uint64_t at, const unsigned char *buf,
    size_t len);
static void kept_free(struct source *s);

/* -p: the meter's total, learnt from the input when the job had none. */
static struct progress *meter_of(struct source *s)
{
	if (s->progress != NULL && s->progress->total == 0)
		progress_total(s->progress, s->meter_total);
	return s->progress;
}

/* -p: input bytes [off, off + n) were read (decoded, unless the meter
 * counts them as they arrive). */
static void meter(struct source *s, uint64_t off, uint64_t n)
{
	if (s->progress != NULL && !s->meter_raw)
		progress_range(meter_of(s), off, n);
}

void source_meter(struct source *s, uint64_t off, uint64_t len)
{
	meter(s, off, len);
}

/*
 * A failed decode is a bad input (1), unless reading under it failed (3).
 * libarchive has no message for some truncations (a gzip trailer cut).
 */
static int filter_error(struct source *s, const char *filter)
{
	const char *msg = archive_error_string(s->ar);

	if (s->filter_errno) {
		errno = s->filter_errno;
		return fail_errno(EXIT_IO, "read error");
	}
	return fail(EXIT_REJECT, "%s stream: %s", filter,
	    msg ? msg : "truncated or corrupt");
}

/* Read from below the head: the fd (stream or positioned) or the filter. */
static ssize_t read_lower(struct source *s, void *buf, size_t len)
{
	size_t done = 0;
	la_ssize_t n;

	if (s->ar == NULL) {
		ssize_t r = s->seekable
		    ? fd_pread_full(s->fd, buf, len, s->base + s->pos)
		    : fd_read_full(s->fd, buf, len);
		if (r < 0)
			return fail_errno(EXIT_IO, "read error");
		return r;
	}
	while (done < len) {
		n = archive_read_data(s->ar, (char *)buf + done, len - done);
		if (n < 0)
			return filter_error(s, s->filter);
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static int fill_head(struct source *s)
{
	ssize_t n;

	s->head = malloc(SOURCE_HEAD_MAX);
	if (s->head == NULL)
		return fail(EXIT_IO, "out of memory");
	if (s->seekable && s->ar == NULL) {
		n = fd_pread_full(s->fd, s->head, SOURCE_HEAD_MAX, s->base);
		if (n < 0)
			return fail_errno(EXIT_IO, "read error");
	} else {
		n = read_lower(s, s->head, SOURCE_HEAD_MAX);
		if (n < 0)
			return -1;
	}
	s->headlen = n;
	return 0;
}

static const char *compression_of(const unsigned char *p, size_t len)
{
	if (len >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)
		return "gzip";
	if (len >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0)
		return "xz";
	if (len >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0)
		return "zstd";
	if (len >= 10 && memcmp(p, "BZh", 3) == 0 && p[3] >= '1' &&
	    p[3] <= '9' && memcmp(p + 4, "1AY&SY", 6) == 0)
		return "bzip2";
	return NULL;
}

/* libarchive pulls the compressed bytes: first our head, then the fd. */
struct filter_feed {
	struct source *s;
	unsigned char *head;
	size_t headlen;
	bool head_done;
	unsigned char buf[SKIP_CHUNK];
};

static la_ssize_t feed_read(struct archive *a, void *data, const void **out)
{
	struct filter_feed *f = data;
	ssize_t n;

	(void)a;
	if (!f->head_done) {
		f->head_done = true;
		*out = f->head;
		n = f->headlen;
	} else {
		do
			n = read(f->s->fd, f->buf, sizeof f->buf);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			f->s->filter_errno = errno;
		*out = f->buf;
	}
	if (n > 0)
		f->s->raw_in += n;
	if (n > 0 && f->s->progress != NULL && f->s->meter_raw)
		progress_range(meter_of(f->s), 0, f->s->raw_in);
	return n;
}

static int feed_close(struct archive *a, void *data)
{
	struct filter_feed *f = data;

	(void)a;
	free(f->head);
	free(f);
	return ARCHIVE_OK;
}

/* The meter of a compressed input: see meter_raw in source.h. */
static void set_meter_compressed(struct source *s, const char *name)
{
	unsigned long long n = ZSTD_CONTENTSIZE_UNKNOWN;

	s->meter_raw = true;
	s->meter_total = s->size_known ? s->size : 0;
	if (s->size_known || strcmp(name, "zstd") != 0)
		return;
	n = ZSTD_getFrameContentSize(s->head, s->headlen);
	if (n != ZSTD_CONTENTSIZE_UNKNOWN && n != ZSTD_CONTENTSIZE_ERROR &&
	    n > 0) {
		s->meter_raw = false;
		s->meter_total = n;
	}
}

static int open_filter(struct source *s, const char *name)
{
	struct filter_feed *f = calloc(1, sizeof *f);
	struct archive_entry *ent;

	if (f == NULL)
		return fail(EXIT_IO, "out of memory");
	if (s->seekable && lseek(s->fd, s->base + s->headlen, SEEK_SET) < 0) {
		free(f);
		return fail_errno(EXIT_IO, "seek error");
	}
	f->s = s;
	set_meter_compressed(s, name);
	f->head = s->head;
	f->headlen = s->headlen;
	s->head = NULL;
	s->headlen = 0;
	s->filter = name;
	s->ar = archive_read_new();
	if (s->ar == NULL)
		return fail(EXIT_IO, "out of memory");
	archive_read_support_filter_all(s->ar);
	archive_read_support_format_raw(s->ar);
	if (archive_read_open(s->ar, f, NULL, feed_read, feed_close) !=
	    ARCHIVE_OK ||
	    archive_read_next_header(s->ar, &ent) != ARCHIVE_OK)
		return filter_error(s, name);
	s->seekable = false;
	s->size_known = false;
	s->size = 0;
	s->pos = 0;
	return fill_head(s);
}

static int open_fd(struct source *s, int fd, const char *name, bool decode)
{
	struct stat st;
	off_t cur, end;
	const char *comp;

	memset(s, 0, sizeof *s);
	s->keep_from = SOURCE_RETAIN_NONE;
	s->fd = fd;
	s->name = name;
	err_input(name);
	if (fstat(fd, &st) < 0)
		return fail_io(name, NULL);
	if (S_ISDIR(st.st_mode)) {
		/* what read(2) would say: as a file that cannot be read */
		errno = EISDIR;
		return fail_io(name, NULL);
	}
	/* A larger pipe: fewer wake-ups of both ends (best effort). */
	if (S_ISFIFO(st.st_mode))
		fcntl(fd, F_SETPIPE_SZ, SOURCE_PIPE_SIZE);
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		cur = lseek(fd, 0, SEEK_CUR);
		end = lseek(fd, 0, SEEK_END);
		if (cur >= 0 && end >= cur) {
			s->seekable = true;
			s->base = cur;
			s->size = end - cur;
			s->size_known = true;
			s->meter_total = s->size;
		}
	}
	if (fill_head(s) < 0)
		return -1;
	comp = decode ? compression_of(s->head, s->headlen) : NULL;
	if (comp != NULL)
		return open_filter(s, comp);
	return 0;
}

int source_open_fd(struct source *s, int fd, const char *name)
{
	return open_fd(s, fd, name, true);
}

int source_open_fd_plain(struct source *s, int fd, const char *name)
{
	return open_fd(s, fd, name, false);
}

static int open_path(struct source *s, const char *path, bool decode)
{
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		return open_fd(s, 0, "stdin", decode);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		memset(s, 0, sizeof *s);
		s->fd = -1;
		s->keep_from = SOURCE_RETAIN_NONE;
		err_input(path);
		return fail_io(path, NULL);
	}
	if (open_fd(s, fd, path, decode) < 0) {
		s->owns_fd = true;
		return -1;
	}
	s->owns_fd = true;
	return 0;
}

int source_open(struct source *s, const char *path)
{
	return open_path(s, path, true);
}

int source_open_plain(struct source *s, const char *path)
{
	return open_path(s, path, false);
}

void source_force_stream(struct source *s)
{
	if (s->seekable && s->ar == NULL) {
		/* Match the invariant of streams: the fd is past the head. */
		lseek(s->fd, s->base + s->headlen, SEEK_SET);
	}
	s->seekable = false;
	s->size_known = false;
}

void source_close(struct source *s)
{
	const char *stats = getenv("IMGPIPE_STASH_STATS");

	/* what a reader left to the source's retention (memory.bats) */
	if (s->keep_stash != NULL && stats != NULL && *stats != '\0')
		fprintf(stderr, "%s: source retention: kept_peak=%llu\n",
		    progname, (unsigned long long)s->kept_peak);
	kept_free(s);
	if (s->ar != NULL)
		archive_read_free(s->ar);
	s->ar = NULL;
	free(s->head);
	s->head = NULL;
	if (s->owns_fd && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

ssize_t source_read(struct source *s, void *buf, size_t len)
{
	uint64_t from = s->pos;
	size_t done = 0;
	ssize_t n;

	if (s->pos < s->headlen) {
		done = s->headlen - s->pos;
		if (done > len)
			done = len;
		memcpy(buf, s->head + s->pos, done);
		s->pos += done;
	}
	if (done < len && !s->raw_eof) {
		n = read_lower(s, (char *)buf + done, len - done);
		if (n < 0)
			return -1;
		if ((size_t)n < len - done)
			s->raw_eof = true;
		s->pos += n;
		done += n;
	}
	meter(s, s->pos - done, done);
	if (capture(s, from, buf, done) < 0)
		return -1;
	return done;
}

int source_drain(struct source *s)
{
	unsigned char buf[SKIP_CHUNK];
	ssize_t n;

	if (s->seekable)
		return 0;
	source_retain_stop(s);
	while ((n = source_read(s, buf, sizeof buf)) > 0)
		;
	return n < 0 ? -1 : 0;
}

int source_rewind(struct source *s)
{
	if (!s->seekable || s->ar != NULL)
		return fail(EXIT_IO, "cannot read the input twice");
	s->pos = 0;	/* seekable reads are positioned at base + pos */
	s->raw_eof = false;
	return 0;
}

int source_skip_to(struct source *s, uint64_t off)
{
	unsigned char buf[SKIP_CHUNK];
	ssize_t n;

	if (off < s->pos)
		return fail(EXIT_REJECT, "cannot go back to offset 0x%llx in a "
		    "stream", (unsigned long long)off);
	if (s->seekable) {
		if (off > s->size)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "truncated");
		meter(s, s->pos, off - s->pos);
		s->pos = off;
		return 0;
	}
	while (s->pos < off) {
		uint64_t want = off - s->pos;

		n = source_read(s, buf, want < sizeof buf ? want : sizeof buf);
		if (n < 0)
			return -1;
		if (n == 0)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "truncated at offset 0x%llx",
			    (unsigned long long)s->pos);
	}
	return 0;
}

/*
 * Stream forward to off for the bytes what names: an input that ends
 * before off is the image's truncation, in source_read_at()'s words.
 */
static int skip_to_named(struct source *s, uint64_t off, const char *what)
{
	if (source_skip_to(s, off) == 0)
		return 0;
	if (!err_rejects_image())	/* a read error, or the budget */
		return -1;
	err_clear();
	return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
	    "%s at 0x%llx lies past the end of the image", what,
	    (unsigned long long)off);
}

/*
 * Bytes of [off, off + len) behind the stream position, from the head or
 * what was kept: how many were copied (stopping at pos), or -1.
 */
static ssize_t read_behind(struct source *s, unsigned char *buf, size_t len,
    uint64_t off, const char *what);

int source_read_at(struct source *s, void *buf, size_t len, uint64_t off,
    const char *what)
{
	ssize_t n;

	if (s->seekable) {
		if (off > s->size || len > s->size - off)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "%s at 0x%llx lies past the end of the image",
			    what, (unsigned long long)off);
		n = fd_pread_full(s->fd, buf, len, s->base + off);
		if (n < 0)
			return fail_errno(EXIT_IO, "read error");
		if ((size_t)n < len)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "%s at 0x%llx: image is truncated", what,
			    (unsigned long long)off);
		meter(s, off, len);
		return 0;
	}
	if (off < s->pos) {
		n = read_behind(s, buf, len, off, what);
		if (n < 0)
			return -1;
		if ((size_t)n == len)
			return 0;
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	if (skip_to_named(s, off, what) < 0)
		return -1;
	n = source_read(s, buf, len);
	if (n < 0)
		return -1;
	if ((size_t)n < len)
		return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
		    "%s at 0x%llx: image is truncated", what,
		    (unsigned long long)off);
	return 0;
}

/* The end of a source_read_at() whose bytes the stream did not have. */
static int stream_cut_at(uint64_t off, const char *what)
{
	return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
	    "%s at 0x%llx: image is truncated", what, (unsigned long long)off);
}

static bool splice_ok(const struct source *s, uint64_t off, size_t len)
{
	int flags;

	if (s->seekable || s->ar != NULL || s->raw_eof || off < s->pos ||
	    off < s->headlen || len == 0)
		return false;
	/* source_retain() would keep what passes */
	if (!s->keep_stopped && s->keep_from < off + len)
		return false;
	flags = fcntl(s->fd, F_GETFL);
	return flags >= 0 && !(flags & O_NONBLOCK);
}

int source_splice_from(struct source *s, uint64_t off, size_t len,
    const char *what)
{
	if (!splice_ok(s, off, len))
		return -2;
	if (skip_to_named(s, off, what) < 0)
		return -1;
	/* skipping may have met the end, or started keeping */
	return s->raw_eof || !splice_ok(s, off, len) ? -2 : s->fd;
}

int source_spliced(struct source *s, uint64_t off, size_t len, size_t got,
    const char *what)
{
	s->pos += got;
	meter(s, off, got);
	if (got == len)
		return 0;
	s->raw_eof = true;
	return stream_cut_at(off, what);
}

int source_next_data(struct source *s, uint64_t off, uint64_t *start,
    uint64_t *end)
{
	off_t d, h;

	if (!s->seekable || s->ar != NULL || off >= s->size)
		return off < s->size ? (*start = off, *end = s->size, 1) : 0;
	d = lseek(s->fd, s->base + off, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return 0;
	if (d < 0) {
		*start = off;
		*end = s->size;
		return 1;
	}
	h = lseek(s->fd, d, SEEK_HOLE);
	if (h < 0)
		h = s->base + s->size;
	*start = d - s->base;
	*end = (uint64_t)h - s->base < s->size ? (uint64_t)h - s->base : s->size;
	return *start < *end;
}

uint64_t source_extent_at(struct source *s, uint64_t off, uint64_t len,
    bool *hole)
{
	uint64_t start, end, n;

	*hole = false;
	if (!s->seekable || s->ar != NULL)
		return len;
	if (off < s->map_from || off >= s->map_end) {
		switch (source_next_data(s, off, &start, &end)) {
		case 0:		/* only a hole remains */
			start = end = s->size;
			break;
		case 1:
			break;
		default:	/* say all is data */
			return len;
		}
		s->map_from = off;
		s->map_data = start;
		s->map_end = end > start ? end : start;
		if (off >= s->map_end)
			return len;
	}
	*hole = off < s->map_data;
	n = (*hole ? s->map_data : s->map_end) - off;
	return n < len ? n : len;
}

/* ---- retention ---- */

/* The last live kept piece that starts at or below off, or NULL. */
static struct source_kept *kept_find(const struct source *s, uint64_t off)
{
	size_t lo = s->kept_first, hi = s->nkept, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->kept[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo > s->kept_first && s->kept[lo - 1].ref.len == 0)
		lo--;
	return lo > s->kept_first ? &s->kept[lo - 1] : NULL;
}

static ssize_t read_behind(struct source *s, unsigned char *buf, size_t len,
    uint64_t off, const char *what)
{
	const struct source_kept *k;
	uint64_t x;
	size_t done = 0, n;

	while (done < len && (x = off + done) < s->pos) {
		k = x < s->headlen ? NULL : kept_find(s, x);
		if (x < s->headlen) {
			n = s->headlen - x;
			if (n > len - done)
				n = len - done;
			memcpy(buf + done, s->head + x, n);
		} else if (k != NULL && x < k->off + k->ref.len) {
			n = k->off + k->ref.len - x;
			if (n > len - done)
				n = len - done;
			if (stash_read(s->keep_stash, &k->ref, x - k->off,
			    buf + done, n) < 0)
				return -1;
		} else {
			return fail(EXIT_REJECT, "%s at 0x%llx lies behind data "
			    "already read from the stream", what,
			    (unsigned long long)off);
		}
		done += n;
	}
	return done;
}

/* Room for one more kept piece at the end; its index. */
static int kept_new(struct source *s, uint64_t off)
{
	struct source_kept *k;

	if (stash_grow_array(s->keep_stash, &s->kept, s->nkept, &s->capkept,
	    sizeof *s->kept, 64) < 0)
		return -1;
	k = &s->kept[s->nkept++];
	memset(k, 0, sizeof *k);
	k->off = off;
	return 0;
}

static struct kept_span *spans(struct source_kept *k)
{
	return k->many != NULL ? k->many : &k->one;
}

/* Room for one more span. */
static int span_room(struct source *s, struct source_kept *k)
{
	if (k->many == NULL && k->nspans == 0)
		return 0;
	if (k->many == NULL) {
		k->capspans = 0;
		if (stash_grow_array(s->keep_stash, &k->many, 0, &k->capspans,
		    sizeof *k->many, 4) < 0)
			return -1;
		k->many[0] = k->one;
		return 0;
	}
	return stash_grow_array(s->keep_stash, &k->many, k->nspans,
	    &k->capspans, sizeof *k->many, 4);
}

static void spans_free(struct source *s, struct source_kept *k)
{
	if (k->many != NULL)
		stash_charge(s->keep_stash, -(int64_t)(k->capspans *
		    sizeof *k->many + STASH_MALLOC_OVERHEAD));
	free(k->many);
	k->many = NULL;
	k->nspans = k->capspans = 0;
}

static int kept_add_span(struct source *s, struct source_kept *k, uint64_t a,
    uint64_t b)
{
	struct kept_span *sp = spans(k);

	if (k->nspans > 0 && sp[k->nspans - 1].b == a) {
		sp[k->nspans - 1].b = b;
		return 0;
	}
	if (span_room(s, k) < 0)
		return -1;
	sp = spans(k);
	sp[k->nspans].a = a;
	sp[k->nspans++].b = b;
	return 0;
}

/* Bytes [at, at + len) have just passed the stream position (in buf). */
static int capture(struct source *s, uint64_t at, const unsigned char *buf,
    size_t len)
{
	uint64_t x, end = at + len, room;
	struct source_kept *k;
	size_t n;

	if (s->keep_from == SOURCE_RETAIN_NONE || s->keep_stopped ||
	    s->seekable)
		return 0;
	x = at > s->keep_from ? at : s->keep_from;
	if (x < s->headlen)
		x = s->headlen;
	while (x < end) {
		k = s->nkept > s->kept_first ? &s->kept[s->nkept - 1] : NULL;
		if (k == NULL || k->ref.len == 0 ||
		    k->off + k->ref.len != x || x % SOURCE_KEPT_PIECE == 0) {
			if (kept_new(s, x) < 0)
				return -1;
			k = &s->kept[s->nkept - 1];
		}
		room = SOURCE_KEPT_PIECE - x % SOURCE_KEPT_PIECE;
		n = end - x < room ? end - x : room;
		if (stash_append(s->keep_stash, &k->ref, buf + (x - at), n) < 0 ||
		    kept_add_span(s, k, x, x + n) < 0)
			return -1;
		s->kept_bytes += n;
		if (s->kept_bytes > s->kept_peak)
			s->kept_peak = s->kept_bytes;
		x += n;
	}
	return 0;
}

/* Forget released pieces at the front; squeeze the array when half is. */
static void kept_tidy(struct source *s)
{
	size_t i, j;

	while (s->kept_first < s->nkept && s->kept[s->kept_first].ref.len == 0) {
		s->kept_first++;
		s->kept_dead--;
	}
	if (s->kept_first == s->nkept) {
		s->nkept = s->kept_first = s->kept_dead = 0;
		return;
	}
	if (s->kept_dead < 64 && s->kept_first < 1024)
		return;
	if (2 * (s->kept_dead + s->kept_first) < s->nkept)
		return;
	for (i = s->kept_first, j = 0; i < s->nkept; i++)
		if (s->kept[i].ref.len > 0)
			s->kept[j++] = s->kept[i];
	s->nkept = j;
	s->kept_first = s->kept_dead = 0;
}

static void kept_drop(struct source *s, struct source_kept *k)
{
	s->kept_bytes -= k->ref.len;
	stash_drop(s->keep_stash, &k->ref);
	spans_free(s, k);
	s->kept_dead++;
}

/*
 * Take [a, b) out of the piece's unreleased spans.  When splitting a span
 * finds no memory for one more, the bytes stay kept (and -1 is returned
 * with nothing recorded: a release never fails).
 */
static int spans_remove(struct source *s, struct source_kept *k, uint64_t a,
    uint64_t b)
{
	struct kept_span *sp = spans(k);
	size_t i, j;

	for (i = 0; i < k->nspans; i++) {
		uint64_t sa = sp[i].a, sb = sp[i].b;

		if (b <= sa || a >= sb)
			continue;
		if (a > sa && b < sb) {
			if (span_room(s, k) < 0) {
				err_clear();
				return -1;
			}
			sp = spans(k);
			memmove(&sp[i + 1], &sp[i], (k->nspans - i) * sizeof *sp);
			k->nspans++;
			sp[i].b = a;
			sp[i + 1].a = b;
			return 0;
		}
		if (a > sa)
			sp[i].b = a;
		else if (b < sb)
			sp[i].a = b;
		else
			sp[i].a = sp[i].b;	/* emptied */
	}
	for (i = j = 0; i < k->nspans; i++)
		if (sp[i].a < sp[i].b)
			sp[j++] = sp[i];
	k->nspans = j;
	return 0;
}

static void kept_release(struct source *s, struct source_kept *k, uint64_t a,
    uint64_t b)
{
	struct kept_span *sp;
	uint64_t n;

	if (spans_remove(s, k, a, b) < 0)
		return;
	if (k->nspans == 0) {
		kept_drop(s, k);
		return;
	}
	/* give back the released bytes at either end at once */
	sp = spans(k);
	if (sp[0].a > k->off) {
		n = sp[0].a - k->off;
		stash_drop_head(s->keep_stash, &k->ref, n);
		k->off += n;
		s->kept_bytes -= n;
	}
	n = k->off + k->ref.len - sp[k->nspans - 1].b;
	if (n > 0) {
		stash_drop_tail(s->keep_stash, &k->ref, n);
		s->kept_bytes -= n;
	}
}

void source_release(struct source *s, uint64_t off, uint64_t len)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	struct source_kept *k;
	size_t i;

	if (s->seekable || s->nkept == s->kept_first || len == 0)
		return;
	k = kept_find(s, off);
	i = k != NULL ? (size_t)(k - s->kept) : s->kept_first;
	for (; i < s->nkept && s->kept[i].off < end; i++) {
		k = &s->kept[i];
		if (k->ref.len > 0 && k->off + k->ref.len > off)
			kept_release(s, k, off, end);
	}
	kept_tidy(s);
}

int source_retain(struct source *s, struct stash *st, uint64_t off)
{
	if (s->seekable)
		return 0;
	if (s->keep_stash != NULL && s->keep_stash != st)
		kept_free(s);
	s->keep_stash = st;
	if (off > 0)
		source_release(s, 0, off);
	s->keep_from = off;
	s->keep_stopped = false;
	if (off == SOURCE_RETAIN_NONE)
		kept_free(s);
	return 0;
}

void source_retain_stop(struct source *s)
{
	s->keep_stopped = true;
}

/* Release everything kept and the index. */
static void kept_free(struct source *s)
{
	size_t i;

	for (i = s->kept_first; i < s->nkept; i++) {
		stash_drop(s->keep_stash, &s->kept[i].ref);
		spans_free(s, &s->kept[i]);
	}
	if (s->capkept > 0)
		stash_charge(s->keep_stash, -(int64_t)(s->capkept *
		    sizeof *s->kept + STASH_MALLOC_OVERHEAD));
	free(s->kept);
	s->kept = NULL;
	s->nkept = s->capkept = s->kept_first = s->kept_dead = 0;
	s->kept_bytes = 0;
}
