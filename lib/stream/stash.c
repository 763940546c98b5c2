#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/sink.h"
#include "imgpipe/stash.h"

void stash_init(struct stash *st, uint64_t budget, const char *tmpdir)
{
	memset(st, 0, sizeof *st);
	st->budget = budget;
	st->tmpdir = tmpdir;
	st->fd = -1;
}

static const char *tmp_dir(const struct stash *st)
{
	const char *d = st->tmpdir;

	if (d == NULL || *d == '\0')
		d = getenv("TMPDIR");
	if (d == NULL || *d == '\0')
		d = "/tmp";
	return d;
}

/* An unlinked file: nothing to clean up, whatever way we exit. */
static int open_spill(struct stash *st)
{
	const char *dir = tmp_dir(st);
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		st->fd = fd;
		return 0;
	}
#endif
	if (snprintf(path, sizeof path, "%s/imgpipe-stash.XXXXXX", dir) >=
	    (int)sizeof path)
		return fail(EXIT_IO, "temporary directory name too long");
	fd = mkstemp(path);
	if (fd < 0)
		return fail_io(dir, "cannot create a temporary file");
	unlink(path);
	st->fd = fd;
	return 0;
}

int stash_put(struct stash *st, const void *buf, size_t len,
    struct stash_ref *ref)
{
	ref->len = len;
	ref->ptr = NULL;
	ref->off = 0;
	if (len >= UINT32_MAX)
		return fail(EXIT_REJECT, "run too large to stash");
	st->nlive++;
	if (st->mem_used + len <= st->budget) {
		ref->ptr = malloc(len ? len : 1);
		if (ref->ptr != NULL) {
			memcpy(ref->ptr, buf, len);
			st->mem_used += len;
			if (st->mem_used > st->mem_peak)
				st->mem_peak = st->mem_used;
			return 0;
		}
	}
	if (st->fd < 0 && open_spill(st) < 0)
		return -1;
	ref->off = st->file_end;
	if (pwrite_full(st->fd, buf, len, ref->off, "temporary file") < 0)
		return -1;
	st->file_end += len;
	st->file_live += len;
	if (st->file_end > st->file_peak)
		st->file_peak = st->file_end;
	return 0;
}

static void release(struct stash *st, struct stash_ref *ref)
{
	st->nlive--;
	if (ref->ptr != NULL) {
		free(ref->ptr);
		ref->ptr = NULL;
		st->mem_used -= ref->len;
		return;
	}
	st->file_live -= ref->len;
	if (st->file_live == 0 && st->fd >= 0) {
		/* Everything spilled has been taken back: start over. */
		st->file_end = 0;
		if (ftruncate(st->fd, 0) < 0)
			return;
	}
}

int stash_take(struct stash *st, struct stash_ref *ref, void *buf)
{
	size_t done = 0;
	ssize_t n;

	if (ref->ptr != NULL) {
		memcpy(buf, ref->ptr, ref->len);
		release(st, ref);
		return 0;
	}
	while (done < ref->len) {
		n = pread(st->fd, (char *)buf + done, ref->len - done,
		    ref->off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail_errno(EXIT_IO, "read error on temporary "
			    "file");
		done += n;
	}
	release(st, ref);
	return 0;
}

int stash_peek(struct stash *st, const struct stash_ref *ref, void *buf)
{
	size_t done = 0;
	ssize_t n;

	if (ref->ptr != NULL) {
		memcpy(buf, ref->ptr, ref->len);
		return 0;
	}
	while (done < ref->len) {
		n = pread(st->fd, (char *)buf + done, ref->len - done,
		    ref->off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail_errno(EXIT_IO, "read error on temporary "
			    "file");
		done += n;
	}
	return 0;
}

void stash_drop(struct stash *st, struct stash_ref *ref)
{
	release(st, ref);
}

void stash_free(struct stash *st)
{
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
}
