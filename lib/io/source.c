#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/source.h"

#define SKIP_CHUNK (256 * 1024)
#define SOURCE_PIPE_SIZE (1024 * 1024)

static ssize_t fd_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static ssize_t fd_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
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
		return fail_errno(EXIT_IO, "read error on %s", s->name);
	}
	return fail(EXIT_REJECT, "%s: %s stream: %s", s->name, filter,
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
			return fail_errno(EXIT_IO, "read error on %s", s->name);
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
			return fail_errno(EXIT_IO, "read error on %s", s->name);
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
		return f->headlen;
	}
	do
		n = read(f->s->fd, f->buf, sizeof f->buf);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		f->s->filter_errno = errno;
	*out = f->buf;
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

static int open_filter(struct source *s, const char *name)
{
	struct filter_feed *f = calloc(1, sizeof *f);
	struct archive_entry *ent;

	if (f == NULL)
		return fail(EXIT_IO, "out of memory");
	if (s->seekable && lseek(s->fd, s->base + s->headlen, SEEK_SET) < 0) {
		free(f);
		return fail_errno(EXIT_IO, "seek on %s", s->name);
	}
	f->s = s;
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
	s->fd = fd;
	s->name = name;
	if (fstat(fd, &st) < 0)
		return fail_errno(EXIT_IO, "%s", name);
	if (S_ISDIR(st.st_mode))
		return fail(EXIT_USAGE, "%s is a directory", name);
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
		return fail_errno(EXIT_IO, "%s", path);
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
	if (s->progress)
		progress_add(s->progress, done);
	return done;
}

int source_skip_to(struct source *s, uint64_t off)
{
	unsigned char buf[SKIP_CHUNK];
	ssize_t n;

	if (off < s->pos)
		return fail(EXIT_REJECT, "%s: cannot go back to offset 0x%llx "
		    "in a stream", s->name, (unsigned long long)off);
	if (s->seekable) {
		if (off > s->size)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "%s: truncated", s->name);
		if (s->progress)
			progress_add(s->progress, off - s->pos);
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
			    "%s: truncated at offset 0x%llx", s->name,
			    (unsigned long long)s->pos);
	}
	return 0;
}

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
			return fail_errno(EXIT_IO, "read error on %s", s->name);
		if ((size_t)n < len)
			return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
			    "%s at 0x%llx: image is truncated", what,
			    (unsigned long long)off);
		if (s->progress)
			progress_add(s->progress, len);
		return 0;
	}
	if (off < s->pos)
		return fail(EXIT_REJECT, "%s at 0x%llx lies behind data already "
		    "read from the stream", what, (unsigned long long)off);
	if (source_skip_to(s, off) < 0) {
		if (err_status() != EXIT_REJECT)
			return -1;
		err_clear();
		return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
		    "%s at 0x%llx lies past the end of the image", what,
		    (unsigned long long)off);
	}
	n = source_read(s, buf, len);
	if (n < 0)
		return -1;
	if ((size_t)n < len)
		return fail_code(EXIT_REJECT, FINDING_TRUNCATED,
		    "%s at 0x%llx: image is truncated", what,
		    (unsigned long long)off);
	return 0;
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
