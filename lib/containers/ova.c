/*
 * ovaextract's job (see include/imgpipe/ova.h).
 *
 * One pass over the tar does everything: the descriptor and the manifest
 * are read into memory (both bounded), every other member streams through
 * the digests of the manifest and on to its destination: the output (the
 * chosen disk, gunzipped and its chunks joined), a file in the -x
 * directory, or nowhere.  The verdict comes at the end, when every member
 * and every manifest line has been seen.
 *
 * The OVF should come first.  When it does not and the input seeks, a
 * first pass finds it and a second one does the work; from a pipe, the
 * members before it are parked in the stash and replayed once it is read.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/json.h"
#include "imgpipe/manifest.h"
#include "imgpipe/outfile.h"
#include "imgpipe/ova.h"
#include "imgpipe/ovf.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"

#define OVA_BUF (1024 * 1024)

enum member_kind { MEMBER_OVF, MEMBER_MANIFEST, MEMBER_CERT, MEMBER_DATA };

/* What we saw of one archive member. */
struct member {
	char *name;
	enum member_kind kind;
	uint64_t size;
	bool digested;
	struct digest_set dg;
	char *part;		/* -x: its temporary name in the directory */
	char *path;		/* -x: DIR/NAME, for messages */
};

/* A data member that came before the OVF, from a pipe. */
struct parked {
	size_t member;
	struct stash_ref *refs;
	size_t nrefs, next;
};

/* Per OVF File: what the archive held of it. */
struct file_seen {
	bool seen;
	uint64_t stored;	/* bytes of its member(s) */
	uint64_t nchunks;
	uint64_t last_chunk;	/* size of the latest chunk */
};

/* The chosen disk on its way out. */
struct disk_out {
	int file;		/* index into ovf.files, -1 before the OVF */
	struct outfile of;
	bool open;
	bool gzip;
	z_stream z;
	bool z_ready, z_done;
	uint64_t inflated;
	unsigned char hold[OVA_HOLDBACK];
	size_t holdlen;
};

struct ova_job {
	const struct ova_opts *o;
	struct source src;
	struct stash stash;
	struct progress pr;
	struct archive *ar;
	uint64_t feed_off;	/* seekable input: next byte for libarchive */
	unsigned char *feedbuf, *buf, *zbuf;
	struct digest_pipe *digester;	/* members' digests, on a thread */
	bool have_ovf;
	struct ovf ovf;
	char *ovf_name;
	struct file_seen *seen;	/* ovf.nfiles */
	bool have_mf;
	struct manifest mf;
	char *mf_name;
	bool cert_reported;
	struct member *members;
	size_t nmembers;
	struct parked *parked;
	size_t nparked;
	uint64_t parked_bytes;
	struct disk_out out;
	int dirfd;
	int failures;
};

/* Member names in messages: no terminal control bytes. */
static const char *printable(const char *s)
{
	static char buf[256];
	size_t i;

	for (i = 0; s[i] && i + 1 < sizeof buf; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n > m && strcasecmp(s + n - m, suf) == 0;
}

/* ---- libarchive over the source ------------------------------------- */

static la_ssize_t feed_read(struct archive *a, void *data, const void **out)
{
	struct ova_job *j = data;
	ssize_t n;

	*out = j->feedbuf;
	if (!j->src.seekable) {
		n = source_read(&j->src, j->feedbuf, OVA_BUF);
		if (n < 0)
			archive_set_error(a, EIO, "%s", err_msg());
		return n;
	}
	n = j->src.size - j->feed_off < OVA_BUF ? j->src.size - j->feed_off
	    : OVA_BUF;
	do
		n = pread(j->src.fd, j->feedbuf, n, j->src.base + j->feed_off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fail_errno(EXIT_IO, "read error");
		archive_set_error(a, EIO, "%s", err_msg());
		return -1;
	}
	progress_range(&j->pr, j->feed_off, n);
	j->feed_off += n;
	return n;
}

/* Seekable input: members we do not read cost nothing. */
static la_int64_t feed_skip(struct archive *a, void *data, la_int64_t req)
{
	struct ova_job *j = data;
	uint64_t n;

	(void)a;
	if (!j->src.seekable || req <= 0)
		return 0;
	n = j->src.size - j->feed_off < (uint64_t)req
	    ? j->src.size - j->feed_off : (uint64_t)req;
	progress_range(&j->pr, j->feed_off, n);
	j->feed_off += n;
	return n;
}

static int tar_open(struct ova_job *j)
{
	j->feed_off = 0;
	j->ar = archive_read_new();
	if (j->ar == NULL)
		return fail(EXIT_IO, "out of memory");
	archive_read_support_format_tar(j->ar);
	archive_read_set_callback_data(j->ar, j);
	archive_read_set_read_callback(j->ar, feed_read);
	archive_read_set_skip_callback(j->ar, feed_skip);
	if (archive_read_open1(j->ar) != ARCHIVE_OK)
		return fail(EXIT_REJECT, "not a tar archive (%s)",
		    archive_error_string(j->ar));
	return 0;
}

static void tar_close(struct ova_job *j)
{
	if (j->ar != NULL)
		archive_read_free(j->ar);
	j->ar = NULL;
}

static int tar_error(struct ova_job *j, const char *what)
{
	return fail(EXIT_REJECT, "%s: %s", what,
	    archive_error_string(j->ar) ? archive_error_string(j->ar)
	    : "read error");
}

/* ---- where member bytes come from ---------------------------------- */

struct puller {
	ssize_t (*pull)(struct ova_job *j, void *ctx, void *buf, size_t len);
	void *ctx;
	const char *name;
};

static ssize_t pull_tar(struct ova_job *j, void *ctx, void *buf, size_t len)
{
	la_ssize_t n = archive_read_data(j->ar, buf, len);

	(void)ctx;
	if (n < 0)
		return tar_error(j, "reading a member");
	return n;
}

static ssize_t pull_parked(struct ova_job *j, void *ctx, void *buf,
    size_t len)
{
	struct parked *p = ctx;
	struct stash_ref *r;

	(void)len;		/* every run is at most OVA_BUF */
	if (p->next == p->nrefs)
		return 0;
	r = &p->refs[p->next++];
	if (stash_take(&j->stash, r, buf) < 0)
		return -1;
	return r->len;
}

/* ---- the disk going out -------------------------------------------- */

/* Write all but the last OVA_HOLDBACK bytes seen so far. */
static int out_write(struct disk_out *d, const unsigned char *buf, size_t len)
{
	size_t total = d->holdlen + len, flush;

	if (total <= OVA_HOLDBACK) {
		memcpy(d->hold + d->holdlen, buf, len);
		d->holdlen = total;
		return 0;
	}
	flush = total - OVA_HOLDBACK;
	if (flush <= d->holdlen) {
		if (write_full(d->of.fd, d->hold, flush, d->of.name) < 0)
			return -1;
		memmove(d->hold, d->hold + flush, d->holdlen - flush);
		memcpy(d->hold + d->holdlen - flush, buf, len);
	} else {
		if (write_full(d->of.fd, d->hold, d->holdlen, d->of.name) < 0 ||
		    write_full(d->of.fd, buf, flush - d->holdlen,
		    d->of.name) < 0)
			return -1;
		memcpy(d->hold, buf + flush - d->holdlen, OVA_HOLDBACK);
	}
	d->holdlen = OVA_HOLDBACK;
	return 0;
}

static int out_gunzip(struct ova_job *j, const unsigned char *buf,
    size_t len, const char *name)
{
	struct disk_out *d = &j->out;
	int zr;

	if (!d->z_ready) {
		memset(&d->z, 0, sizeof d->z);
		if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
			return fail(EXIT_IO, "out of memory");
		d->z_ready = true;
	}
	d->z.next_in = (unsigned char *)buf;
	d->z.avail_in = len;
	while (d->z.avail_in > 0) {
		if (d->z_done) {
			/* Concatenated gzip members make one file. */
			inflateReset(&d->z);
			d->z_done = false;
		}
		d->z.next_out = j->zbuf;
		d->z.avail_out = OVA_BUF;
		zr = inflate(&d->z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END)
			return fail(EXIT_REJECT, "%s: corrupt gzip data (%s)",
			    printable(name), d->z.msg ? d->z.msg : "inflate");
		d->z_done = zr == Z_STREAM_END;
		d->inflated += OVA_BUF - d->z.avail_out;
		if (out_write(d, j->zbuf, OVA_BUF - d->z.avail_out) < 0)
			return -1;
	}
	/* Output may still be pending with all input consumed. */
	while (!d->z_done) {
		d->z.next_out = j->zbuf;
		d->z.avail_out = OVA_BUF;
		zr = inflate(&d->z, Z_NO_FLUSH);
		if (zr == Z_BUF_ERROR)
			break;
		if (zr != Z_OK && zr != Z_STREAM_END)
			return fail(EXIT_REJECT, "%s: corrupt gzip data (%s)",
			    printable(name), d->z.msg ? d->z.msg : "inflate");
		d->z_done = zr == Z_STREAM_END;
		d->inflated += OVA_BUF - d->z.avail_out;
		if (out_write(d, j->zbuf, OVA_BUF - d->z.avail_out) < 0)
			return -1;
		if (d->z.avail_out != 0)
			break;
	}
	return 0;
}

/* ---- one data member ------------------------------------------------- */

static void choose_digests(struct ova_job *j, struct member *m)
{
	const struct manifest_entry *e;
	int a;

	digest_set_init(&m->dg);
	if (j->o->no_verify)
		return;
	if (j->have_mf) {
		e = manifest_find(&j->mf, m->name);
		if (e != NULL)
			digest_set_enable(&m->dg, e->alg);
		return;
	}
	/* The manifest is still to come: we do not know its algorithm. */
	for (a = 0; a < DIGEST_NALGS; a++)
		digest_set_enable(&m->dg, a);
}

/* Chunks of a chunked File must come in order and be full but the last. */
static int note_file_part(struct ova_job *j, struct member *m, int fi)
{
	const struct ovf_file *f = &j->ovf.files[fi];
	struct file_seen *s = &j->seen[fi];
	char want[32];

	if (f->chunk_size && strcmp(m->name, f->href) != 0) {
		snprintf(want, sizeof want, ".%09llu",
		    (unsigned long long)s->nchunks);
		if (strcmp(m->name + strlen(f->href), want) != 0)
			return fail(EXIT_REJECT, "%s: chunk out of order "
			    "(expected %s%s)", printable(m->name), f->href,
			    want);
		if (m->size > f->chunk_size || (s->nchunks > 0 &&
		    s->last_chunk != f->chunk_size))
			return fail(EXIT_REJECT, "%s: chunks of %s are not "
			    "%llu bytes each", printable(m->name), f->href,
			    (unsigned long long)f->chunk_size);
	} else if (s->seen) {
		return fail(EXIT_REJECT, "%s: file appears twice",
		    printable(m->name));
	}
	s->seen = true;
	s->nchunks++;
	s->last_chunk = m->size;
	s->stored += m->size;
	return 0;
}

static int open_part(struct ova_job *j, struct member *m)
{
	sigset_t held;
	int fd;

	if (asprintf(&m->part, ".ovaextract-%zu.part",
	    (size_t)(m - j->members)) < 0)
		return fail(EXIT_IO, "out of memory");
	if (m->path == NULL && asprintf(&m->path, "%s/%s", j->o->extract_dir,
	    printable(m->name)) < 0) {
		m->path = NULL;
		return fail(EXIT_IO, "out of memory");
	}
	temp_hold(&held);
	fd = openat(j->dirfd, m->part, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_io(m->path, "cannot create");
	else if (temp_register(j->dirfd, m->part) < 0) {
		close(fd);
		unlinkat(j->dirfd, m->part, 0);
		fd = -1;
	}
	temp_release(&held);
	if (fd < 0) {
		free(m->part);
		m->part = NULL;
	}
	return fd;
}

/*
 * A member larger than its File declares (with the chunks before it) is
 * refused before it is read: a sparse member's header may claim any size,
 * and its holes would stream as zeros.  A gzip File may declare its
 * compressed or its uncompressed size, both at least the member's.
 */
static int check_declared_size(struct ova_job *j, const struct member *m,
    int fi)
{
	const struct ovf_file *f = &j->ovf.files[fi];
	uint64_t before = j->seen[fi].stored;

	if (!f->has_size || (m->size <= f->size && before <= f->size - m->size))
		return 0;
	return fail(EXIT_REJECT, "%s: the member holds %llu bytes, more "
	    "than the %llu the OVF References declare", printable(m->name),
	    (unsigned long long)(before + m->size),
	    (unsigned long long)f->size);
}

/* Stream one member through its digests to where it goes. */
static int stream_member(struct ova_job *j, struct member *m,
    struct puller *in)
{
	int fi = j->have_ovf ? ovf_file_by_href(&j->ovf, m->name) : -1;
	bool to_out = fi >= 0 && fi == j->out.file;
	int fd = -1, rc = 0;
	uint64_t got = 0;
	unsigned char *buf;
	ssize_t n;

	if (fi >= 0 && (check_declared_size(j, m, fi) < 0 ||
	    note_file_part(j, m, fi) < 0))
		return -1;
	choose_digests(j, m);
	if (j->o->extract_dir != NULL && (fd = open_part(j, m)) < 0)
		return -1;
	for (;;) {
		buf = digest_pipe_buffer(j->digester);
		if ((n = in->pull(j, in->ctx, buf, OVA_BUF)) <= 0)
			break;
		got += n;
		if (got > m->size) {
			rc = fail(EXIT_REJECT, "%s: more data than the member's "
			    "header declares", printable(m->name));
			break;
		}
		digest_pipe_feed(j->digester, &m->dg, n);
		if (fd >= 0)
			rc = write_full(fd, buf, n, m->path);
		else if (to_out && j->out.gzip)
			rc = out_gunzip(j, buf, n, m->name);
		else if (to_out)
			rc = out_write(&j->out, buf, n);
		if (rc < 0)
			break;
	}
	digest_pipe_wait(j->digester);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = fail_io(m->path, "write error");
	if (n < 0 || rc < 0)
		return -1;
	if (got != m->size)
		return fail(EXIT_REJECT, "%s: member is truncated",
		    printable(m->name));
	digest_set_final(&m->dg);
	m->digested = true;
	return 0;
}

/* ---- members read whole: the descriptor and the manifest ------------ */

/* -x: the descriptor and manifest are extracted too. */
static int save_part(struct ova_job *j, struct member *m, const char *text)
{
	int fd = open_part(j, m), rc;

	if (fd < 0)
		return -1;
	rc = write_full(fd, text, m->size, m->path);
	if (close(fd) < 0 && rc == 0)
		rc = fail_io(m->path, "write error");
	return rc;
}

static int read_small(struct ova_job *j, struct member *m, size_t max,
    char **out)
{
	struct puller in = { pull_tar, NULL, m->name };
	char *text;
	size_t got = 0;
	ssize_t n;

	if (m->size > max)
		return fail(EXIT_REJECT, "%s: %llu bytes is more than the %zu "
		    "allowed", printable(m->name),
		    (unsigned long long)m->size, max);
	text = malloc(m->size + 1);
	if (text == NULL)
		return fail(EXIT_IO, "out of memory");
	while (got < m->size &&
	    (n = in.pull(j, NULL, text + got, m->size - got)) > 0)
		got += n;
	if (got != m->size) {
		free(text);
		return err_status() ? -1 : fail(EXIT_REJECT, "%s: member is "
		    "truncated", printable(m->name));
	}
	text[got] = '\0';
	*out = text;
	if (j->o->extract_dir != NULL && !j->o->list &&
	    save_part(j, m, text) < 0) {
		free(text);
		return -1;
	}
	return 0;
}

static int select_disk(struct ova_job *j);
static int replay_parked(struct ova_job *j);

static int take_descriptor(struct ova_job *j, struct member *m)
{
	char *text;
	int rc = 0;

	if (j->ovf_name != NULL && strcmp(j->ovf_name, m->name) != 0)
		return fail(EXIT_REJECT, "%s: a second OVF descriptor",
		    printable(m->name));
	if (read_small(j, m, OVF_DESCRIPTOR_MAX, &text) < 0)
		return -1;
	choose_digests(j, m);
	digest_set_update(&m->dg, text, m->size);
	digest_set_final(&m->dg);
	m->digested = true;
	if (!j->have_ovf) {
		rc = ovf_parse(&j->ovf, text, m->size);
		j->ovf_name = strdup(m->name);
		j->seen = calloc(j->ovf.nfiles + 1, sizeof *j->seen);
		if (rc == 0 && (j->ovf_name == NULL || j->seen == NULL))
			rc = fail(EXIT_IO, "out of memory");
		j->have_ovf = rc == 0;
		if (rc == 0 && !j->o->list && j->o->extract_dir == NULL)
			rc = select_disk(j);
	}
	free(text);
	return rc;
}

static int take_manifest(struct ova_job *j, struct member *m)
{
	char *text;
	int rc;

	if (j->have_mf)
		return fail(EXIT_REJECT, "%s: a second manifest",
		    printable(m->name));
	if (read_small(j, m, MANIFEST_MAX, &text) < 0)
		return -1;
	rc = manifest_parse(&j->mf, text, m->size);
	free(text);
	if (rc < 0)
		return -1;
	j->have_mf = true;
	j->mf_name = strdup(m->name);
	return j->mf_name ? 0 : fail(EXIT_IO, "out of memory");
}

/* ---- parking members that came before the OVF (pipe) --------------- */

static int park_member(struct ova_job *j, struct member *m)
{
	struct parked *p = &j->parked[j->nparked];
	struct puller in = { pull_tar, NULL, m->name };
	size_t cap = 0;
	char msg[600];
	ssize_t n;

	if (m->size > OVA_PREFACE_MAX - j->parked_bytes)
		return fail(EXIT_REJECT, "the OVF descriptor is not the "
		    "first member, and from a pipe no more than %llu GiB "
		    "before it can be buffered; give the OVA as a file",
		    OVA_PREFACE_MAX >> 30);
	memset(p, 0, sizeof *p);
	p->member = m - j->members;
	j->nparked++;
	while ((n = in.pull(j, NULL, j->buf, OVA_BUF)) > 0) {
		if (grow_array(&p->refs, p->nrefs, &cap, sizeof *p->refs, 16,
		    SIZE_MAX) < 0)
			return -1;
		if (stash_put(&j->stash, j->buf, n, &p->refs[p->nrefs]) < 0) {
			snprintf(msg, sizeof msg, "%s%s%s", err_file(),
			    *err_file() ? ": " : "", err_msg());
			err_clear();
			return fail(EXIT_IO, "the OVF descriptor is not the "
			    "first member and %s cannot be buffered until it "
			    "comes: %s", printable(m->name), msg);
		}
		p->nrefs++;
		j->parked_bytes += n;
	}
	return n < 0 ? -1 : 0;
}

static int replay_parked(struct ova_job *j)
{
	struct puller in = { pull_parked, NULL, NULL };
	size_t i;

	for (i = 0; i < j->nparked; i++) {
		in.ctx = &j->parked[i];
		in.name = j->members[j->parked[i].member].name;
		if (stream_member(j, &j->members[j->parked[i].member], &in) < 0)
			return -1;
		free(j->parked[i].refs);
		j->parked[i].refs = NULL;
	}
	j->nparked = 0;
	return 0;
}

/* ---- the archive, member by member ----------------------------------- */

enum pass { PASS_WORK, PASS_FIND_OVF };

static void forget_members(struct ova_job *j)
{
	size_t i;

	for (i = 0; i < j->nmembers; i++) {
		free(j->members[i].name);
		temp_forget(j->members[i].part);
		free(j->members[i].part);
		free(j->members[i].path);
	}
	j->nmembers = 0;
	if (j->have_mf)
		manifest_free(&j->mf);
	j->have_mf = false;
	free(j->mf_name);
	j->mf_name = NULL;
}

/* Only plain regular files with plain names: nothing can land elsewhere. */
static int check_entry(struct ova_job *j, struct archive_entry *e,
    const char **name)
{
	const char *p = archive_entry_pathname(e);
	mode_t type = archive_entry_filetype(e);
	size_t i;

	if (p == NULL)
		return fail(EXIT_REJECT, "a member has no name");
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	*name = p;
	if (type == AE_IFDIR && (*p == '\0' || strcmp(p, ".") == 0))
		return 1;	/* "./", as tar -C dir . writes: harmless */
	if (type != AE_IFREG || archive_entry_hardlink(e) != NULL)
		return fail(EXIT_REJECT, "member '%s' is not a regular "
		    "file (%s): refused", printable(p),
		    type == AE_IFLNK ? "a symbolic link"
		    : archive_entry_hardlink(e) ? "a hard link"
		    : type == AE_IFDIR ? "a directory" : "a device or fifo");
	if (!ovf_href_ok(p))
		return fail(EXIT_REJECT, "member name '%s' is not a plain "
		    "file name (absolute paths, '..' and directories are "
		    "refused)", printable(p));
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return fail(EXIT_REJECT, "member '%s' has no size",
		    printable(p));
	if ((uint64_t)archive_entry_size(e) > OVA_MEMBER_MAX)
		return fail(EXIT_REJECT, "member '%s' claims %llu bytes, "
		    "more than the %llu a disk may have",
		    printable(p), (unsigned long long)archive_entry_size(e),
		    OVA_MEMBER_MAX);
	for (i = 0; i < j->nmembers; i++)
		if (strcmp(j->members[i].name, p) == 0)
			return fail(EXIT_REJECT, "member '%s' appears "
			    "twice", printable(p));
	if (j->nmembers == OVA_MEMBERS_MAX)
		return fail(EXIT_REJECT, "more than %d members", OVA_MEMBERS_MAX);
	return 0;
}

static struct member *add_member(struct ova_job *j, const char *name,
    struct archive_entry *e)
{
	struct member *m = &j->members[j->nmembers];

	memset(m, 0, sizeof *m);
	m->name = strdup(name);
	if (m->name == NULL)
		return fail(EXIT_IO, "out of memory"), NULL;
	m->size = archive_entry_size(e);
	m->kind = has_suffix(name, ".ovf") ? MEMBER_OVF
	    : has_suffix(name, ".mf") ? MEMBER_MANIFEST
	    : has_suffix(name, ".cert") ? MEMBER_CERT : MEMBER_DATA;
	j->nmembers++;
	return m;
}

/* 1: stop the pass (found what it looks for, or must start over). */
static int take_member(struct ova_job *j, struct member *m, enum pass pass)
{
	struct puller in = { pull_tar, NULL, m->name };
	bool extracting = j->o->extract_dir != NULL;

	switch (m->kind) {
	case MEMBER_OVF:
		if (take_descriptor(j, m) < 0)
			return -1;
		if (j->o->list || pass == PASS_FIND_OVF)
			return 1;
		return extracting ? 0 : replay_parked(j);
	case MEMBER_MANIFEST:
		if (pass == PASS_FIND_OVF || j->o->list)
			return 0;
		if (take_manifest(j, m) < 0)
			return -1;
		return 0;
	case MEMBER_CERT:
		if (pass == PASS_FIND_OVF || j->o->list)
			return 0;
		if (!j->cert_reported)
			warnmsg("%s: %s: certificate present; not "
			    "validated", j->src.name, printable(m->name));
		j->cert_reported = true;
		return stream_member(j, m, &in);
	case MEMBER_DATA:
		if (pass == PASS_FIND_OVF || j->o->list)
			return 0;
		if (j->have_ovf || extracting)
			return stream_member(j, m, &in);
		if (j->src.seekable)
			return 1;	/* find the OVF first, then start over */
		return park_member(j, m);
	}
	return 0;
}

/* 0: the archive is done; 1: the pass stopped early (see take_member). */
static int read_pass(struct ova_job *j, enum pass pass)
{
	struct archive_entry *e;
	const char *name = NULL;
	struct member *m;
	int r;

	if (tar_open(j) < 0)
		return -1;
	for (;;) {
		r = archive_read_next_header(j->ar, &e);
		if (r == ARCHIVE_EOF) {
			r = 0;
			break;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			r = j->nmembers == 0 && archive_file_count(j->ar) <= 1
			    ? tar_error(j, "not a tar archive")
			    : tar_error(j, "bad tar archive");
			break;
		}
		r = check_entry(j, e, &name);
		if (r == 1)
			continue;
		if (r < 0 || (m = add_member(j, name, e)) == NULL) {
			r = -1;
			break;
		}
		r = take_member(j, m, pass);
		if (r != 0)
			break;
	}
	tar_close(j);
	return r;
}

static int select_disk(struct ova_job *j)
{
	const struct ovf *o = &j->ovf;
	const char *want = j->o->disk;
	const struct ovf_disk *d = NULL;
	unsigned long n;
	char *end;
	size_t i;

	if (o->ndisks == 0)
		return fail(EXIT_REJECT, "%s: the OVF lists no disks",
		    printable(j->ovf_name));
	if (want == NULL) {
		d = &o->disks[0];
	} else if (*want >= '0' && *want <= '9') {
		n = strtoul(want, &end, 10);
		if (*end != '\0' || n < 1 || n > o->ndisks)
			return fail(EXIT_USAGE, "-d %s: the OVF lists %zu "
			    "disk%s", want, o->ndisks, o->ndisks > 1 ? "s" : "");
		d = &o->disks[n - 1];
	} else {
		for (i = 0; i < o->ndisks && d == NULL; i++)
			if (strcmp(o->disks[i].id, want) == 0 ||
			    (o->disks[i].file >= 0 && strcmp(want,
			    o->files[o->disks[i].file].href) == 0))
				d = &o->disks[i];
		if (d == NULL)
			return fail(EXIT_USAGE, "-d %s: no disk has that id or "
			    "file name (see -l)", want);
	}
	if (d->file < 0)
		return fail(EXIT_REJECT, "disk %s is an empty disk: it has no "
		    "file", printable(d->id));
	j->out.file = d->file;
	j->out.gzip = o->files[d->file].gzip;
	return 0;
}

/* ---- the verdict ------------------------------------------------------ */

static void report(struct ova_job *j, const char *name, const char *what)
{
	warnmsg("%s: %s: %s", j->src.name, printable(name), what);
	j->failures++;
}

/* Every File of References is in the archive, with its declared size. */
static void check_files(struct ova_job *j)
{
	const struct ovf_file *f;
	char what[160];
	size_t i;

	for (i = 0; i < j->ovf.nfiles; i++) {
		f = &j->ovf.files[i];
		if (!j->seen[i].seen) {
			report(j, f->href, "referenced by the OVF but not in "
			    "the archive");
			continue;
		}
		/* For gzip files the size is the compressed one; some
		 * writers give the uncompressed one, accept both. */
		if (!f->has_size || f->size == j->seen[i].stored ||
		    (f->gzip && (int)i == j->out.file &&
		    f->size == j->out.inflated))
			continue;
		snprintf(what, sizeof what, "the archive holds %llu bytes, "
		    "the OVF References declare %llu",
		    (unsigned long long)j->seen[i].stored,
		    (unsigned long long)f->size);
		report(j, f->href, what);
	}
}

static bool member_named(const struct ova_job *j, const char *name)
{
	size_t i;

	for (i = 0; i < j->nmembers; i++)
		if (strcmp(j->members[i].name, name) == 0)
			return true;
	return false;
}

static void check_manifest(struct ova_job *j)
{
	const struct manifest_entry *e;
	const struct member *m;
	char what[160];
	size_t i;

	for (i = 0; i < j->nmembers; i++) {
		m = &j->members[i];
		if (m->kind == MEMBER_MANIFEST)
			continue;
		e = manifest_find(&j->mf, m->name);
		if (e == NULL) {
			if (m->kind != MEMBER_CERT)
				report(j, m->name, "not listed in the manifest");
			continue;
		}
		if (!m->digested || !m->dg.on[e->alg] ||
		    memcmp(m->dg.out[e->alg], e->digest,
		    digest_alg_len(e->alg)) != 0) {
			snprintf(what, sizeof what, "%s digest mismatch: "
			    "FAILED", digest_alg_name(e->alg));
			report(j, m->name, what);
		}
	}
	for (i = 0; i < j->mf.nentries; i++)
		if (!member_named(j, j->mf.entries[i].name))
			report(j, j->mf.entries[i].name, "listed in the "
			    "manifest but not in the archive");
}

static int finish(struct ova_job *j)
{
	if (!j->have_ovf)
		return fail(EXIT_REJECT, "no OVF descriptor (.ovf member) "
		    "in the archive: not an OVA");
	if (j->out.gzip && j->seen[j->out.file].seen && !j->out.z_done)
		return fail(EXIT_REJECT, "%s: gzip data is truncated",
		    printable(j->ovf.files[j->out.file].href));
	check_files(j);
	if (!j->o->no_verify && !j->have_mf)
		warnmsg("%s: no manifest in the archive: nothing verified",
		    j->src.name);
	else if (!j->o->no_verify)
		check_manifest(j);
	if (j->failures > 0)
		return fail(EXIT_INTEGRITY, "verification FAILED (%d "
		    "problem%s above)%s", j->failures,
		    j->failures > 1 ? "s" : "",
		    j->out.open && j->out.of.path == NULL
		    ? "; the disk on standard output is incomplete" : "");
	return 0;
}

/* -x: all or nothing. */
static int settle_parts(struct ova_job *j, bool keep)
{
	struct member *m;
	size_t i;
	int rc = 0;

	for (i = 0; i < j->nmembers; i++) {
		m = &j->members[i];
		if (m->part == NULL)
			continue;
		if (keep && rc == 0 &&
		    renameat(j->dirfd, m->part, j->dirfd, m->name) < 0)
			rc = fail_io(m->path, "cannot rename into place");
		if (!keep || rc < 0)
			unlinkat(j->dirfd, m->part, 0);
		temp_forget(m->part);
	}
	return rc;
}

static int settle_output(struct ova_job *j, int rc)
{
	struct disk_out *d = &j->out;

	if (d->z_ready)
		inflateEnd(&d->z);
	d->z_ready = false;
	if (j->o->extract_dir != NULL && j->dirfd >= 0)
		return settle_parts(j, rc == 0) < 0 ? -1 : rc;
	if (!d->open)
		return rc;
	d->open = false;
	if (rc == 0 && write_full(d->of.fd, d->hold, d->holdlen,
	    d->of.name) == 0 && outfile_commit(&d->of) == 0)
		return 0;
	outfile_abort(&d->of);
	return -1;
}

/* ---- -l ---------------------------------------------------------------- */

static json_t *disk_json(const struct ovf *o, size_t i)
{
	const struct ovf_disk *d = &o->disks[i];
	const struct ovf_file *f = d->file >= 0 ? &o->files[d->file] : NULL;
	json_t *j = json_object();

	jsonout_set(j, "index", json_integer(i + 1));
	jsonout_set(j, "id", jsonout_text(d->id));
	jsonout_set(j, "file", jsonout_text(f ? f->href : NULL));
	jsonout_set(j, "file-size", jsonout_size(f && f->has_size,
	    f ? f->size : 0));
	jsonout_set(j, "format", jsonout_text(d->format));
	jsonout_set(j, "format-uri", jsonout_text(d->format_uri));
	jsonout_set(j, "capacity", jsonout_size(d->has_capacity, d->capacity));
	jsonout_set(j, "capacity-raw", jsonout_text(d->capacity_raw));
	jsonout_set(j, "capacity-units", jsonout_text(d->units_raw));
	jsonout_set(j, "populated-size", jsonout_size(d->has_populated,
	    d->populated));
	jsonout_set(j, "compression", jsonout_text(f && f->gzip ? "gzip"
	    : NULL));
	jsonout_set(j, "chunk-size", jsonout_size(f && f->chunk_size,
	    f ? f->chunk_size : 0));
	return j;
}

/* An object of two or three strings, or null when all are NULL. */
static json_t *strings_or_null(const char *k1, const char *v1, const char *k2,
    const char *v2, const char *k3, const char *v3)
{
	json_t *j;

	if (!v1 && !v2 && !v3)
		return json_null();
	j = json_object();
	jsonout_set(j, k1, jsonout_text(v1));
	jsonout_set(j, k2, jsonout_text(v2));
	if (k3 != NULL)
		jsonout_set(j, k3, jsonout_text(v3));
	return j;
}

static int list_json(const struct ova_job *j)
{
	const struct ovf *o = &j->ovf;
	json_t *root = json_object(), *disks = json_array();
	size_t i;

	jsonout_set(root, "descriptor", jsonout_text(j->ovf_name));
	jsonout_set(root, "ovf-version", json_integer(o->version));
	jsonout_set(root, "virtual-system", strings_or_null("id", o->system_id,
	    "name", o->system_name, NULL, NULL));
	jsonout_set(root, "operating-system", strings_or_null("id", o->os_id,
	    "description", o->os_desc, "type", o->os_type));
	for (i = 0; i < o->ndisks && disks != NULL; i++)
		json_array_append_new(disks, disk_json(o, i));
	jsonout_set(root, "disks", disks);
	return jsonout_print(root);
}

static const char *or_dash(const char *s)
{
	return s && *s ? printable(s) : "-";
}

static void list_text(const struct ova_job *j)
{
	const struct ovf *o = &j->ovf;
	const struct ovf_disk *d;
	const struct ovf_file *f;
	char cap[32], pop[32];
	size_t i;

	printf("descriptor: %s (OVF %d.x)\n", printable(j->ovf_name),
	    o->version);
	if (o->system_id || o->system_name)
		printf("virtual system: %s", or_dash(o->system_id)),
		printf(" (%s)\n", or_dash(o->system_name));
	if (o->os_id || o->os_desc || o->os_type)
		printf("operating system: %s", or_dash(o->os_desc)),
		printf(" (id %s,", or_dash(o->os_id)),
		printf(" type %s)\n", or_dash(o->os_type));
	printf("%-3s %-16s %-24s %-22s %14s %14s %s\n", "#", "ID", "FILE",
	    "FORMAT", "CAPACITY", "POPULATED", "COMPRESSION");
	for (i = 0; i < o->ndisks; i++) {
		d = &o->disks[i];
		f = d->file >= 0 ? &o->files[d->file] : NULL;
		snprintf(cap, sizeof cap, "%llu",
		    (unsigned long long)d->capacity);
		snprintf(pop, sizeof pop, "%llu",
		    (unsigned long long)d->populated);
		printf("%-3zu %-16s", i + 1, or_dash(d->id));
		printf(" %-24s", or_dash(f ? f->href : NULL));
		printf(" %-22s %14s %14s %s%s\n", d->format,
		    d->has_capacity ? cap : "?", d->has_populated ? pop : "-",
		    f && f->gzip ? "gzip" : "-",
		    f && f->chunk_size ? " chunked" : "");
	}
}

static int list_disks(struct ova_job *j)
{
	if (!j->have_ovf)
		return fail(EXIT_REJECT, "no OVF descriptor (.ovf member) "
		    "in the archive: not an OVA");
	if (j->o->json)
		return list_json(j);
	list_text(j);
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail_io("stdout", "write error");
	return 0;
}

/* ---- the job ------------------------------------------------------------ */

static int open_extract_dir(struct ova_job *j)
{
	const char *dir = j->o->extract_dir;

	if (mkdir(dir, 0777) < 0 && errno != EEXIST)
		return fail_io(dir, "cannot create");
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0)
		return fail_io(dir, NULL);
	return 0;
}

static int run_passes(struct ova_job *j)
{
	int rc = read_pass(j, PASS_WORK);

	if (j->o->list)
		return rc < 0 ? -1 : list_disks(j);
	if (rc == 1) {
		/* Seekable, and a disk came before the OVF: find it first. */
		forget_members(j);
		rc = read_pass(j, PASS_FIND_OVF);
		if (rc == 1) {
			forget_members(j);
			rc = read_pass(j, PASS_WORK);
		}
	}
	return rc < 0 ? -1 : finish(j);
}

static void job_free(struct ova_job *j)
{
	size_t i;

	for (i = 0; i < j->nparked; i++)
		free(j->parked[i].refs);
	forget_members(j);
	ovf_free(&j->ovf);
	free(j->ovf_name);
	free(j->seen);
	free(j->members);
	free(j->parked);
	free(j->feedbuf);
	free(j->buf);
	free(j->zbuf);
	digest_pipe_free(j->digester);
	if (j->dirfd >= 0)
		close(j->dirfd);
	source_close(&j->src);
	stash_free(&j->stash);
}

int ova_run(const struct ova_opts *o)
{
	struct ova_job *j = calloc(1, sizeof *j);
	int rc = -1;

	if (j == NULL)
		return fail(EXIT_IO, "out of memory");
	j->o = o;
	j->out.file = -1;
	j->dirfd = -1;
	stash_init(&j->stash, o->mem ? o->mem : STASH_DEFAULT_BUDGET,
	    o->tmpdir);
	j->members = calloc(OVA_MEMBERS_MAX, sizeof *j->members);
	j->parked = calloc(OVA_MEMBERS_MAX, sizeof *j->parked);
	j->feedbuf = malloc(OVA_BUF);
	j->buf = malloc(OVA_BUF);
	j->zbuf = malloc(OVA_BUF);
	if (!j->members || !j->parked || !j->feedbuf || !j->buf || !j->zbuf) {
		fail(EXIT_IO, "out of memory");
		goto out;
	}
	if ((j->digester = digest_pipe_new(OVA_BUF)) == NULL)
		goto out;
	if (source_open(&j->src, o->input) < 0)
		goto out;
	progress_start(&j->pr, o->progress && !o->list,
	    o->size ? o->size : j->src.meter_total);
	if (o->size)	/* pv -s: the size of what arrives */
		j->src.meter_raw = j->src.ar != NULL;
	if (!j->src.seekable)
		j->src.progress = &j->pr;
	if (o->no_verify && !o->list)
		warnmsg("--no-verify: the manifest is not checked");
	if (o->extract_dir != NULL && !o->list) {
		if (open_extract_dir(j) < 0)
			goto out;
	} else if (!o->list) {
		if (outfile_open(&j->out.of, o->output) < 0)
			goto out;
		j->out.open = true;
	}
	rc = run_passes(j);
	rc = settle_output(j, rc);
	progress_end(&j->pr);
out:
	job_free(j);
	free(j);
	return rc;
}
