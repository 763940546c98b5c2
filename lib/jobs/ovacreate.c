/*
 * ovacreate's job (include/imgpipe/ovacreate.h).  A tar header gives its
 * member's size before the bytes, and the descriptor, the first member,
 * gives every disk's size: so every disk is converted first, each to a
 * streamOptimized VMDK in an unlinked temporary file, through the writer
 * interface (any reader in, deflated on every core).  The archive is in
 * the order VMware's ovftool writes and DSP0243 names first: descriptor,
 * manifest, disks; so each VMDK is read once to take its digest before
 * the archive starts, and once more as it is copied into the archive.
 * A disk that cannot be read is refused before any byte is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/ovacreate.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/stash.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"
#include "fmt/vmdk/vmdk.h"

/* A member name stays within ustar's 100 bytes with room to spare. */
#define STEM_MAX 80
#define COPY_CHUNK (1u << 20)
#define EXT_MAX 6		/* of an extension stripped: "qcow2", "vhdx" */

struct disk {
	const char *path;	/* the operand: "-" is stdin */
	const char *label;	/* for messages: the path, or "stdin" */
	char *member;		/* NAME.vmdk in the archive */
	int fd;			/* its VMDK: a temporary file, or the disk */
	bool as_is;		/* a streamOptimized VMDK file, copied */
	struct ovf_out_disk out;
	unsigned char digest[DIGEST_MAX];	/* of the VMDK */
};

struct ovajob {
	const struct ovacreate_opts *o;
	struct disk *disks;
	char *vm_name;
	char *ovf_member, *mf_member;
	struct outfile of;
	bool of_open;
	char *ovf;		/* the descriptor */
	size_t ovf_len;
	char *mf;		/* the manifest */
	size_t mf_len, mf_cap;
	struct progress pr;
};

/* ---- names ---- */

/*
 * A file name fit for a member: the base name of path without its
 * compression and image extensions ("web.qcow2.gz" gives "web"; an
 * extension is 1 to EXT_MAX letters or digits), bytes
 * other than letters, digits, '+', '-', '.' and '_' made '_', no leading
 * '.' or '-' (so never ".."), at most STEM_MAX bytes.  NULL when nothing
 * is left.
 */
static bool ext_chars(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static char *member_stem(const char *path)
{
	static const char *const packed[] = { ".gz", ".xz", ".zst", ".bz2",
	    NULL };
	const char *base = strrchr(path, '/'), *dot;
	size_t n, i;
	char *s;

	base = base ? base + 1 : path;
	n = strlen(base);
	for (i = 0; packed[i] != NULL; i++)
		if (n > strlen(packed[i]) && strcmp(base + n - strlen(packed[i]),
		    packed[i]) == 0)
			n -= strlen(packed[i]);
	/* an extension is a few letters or digits: "..x" keeps its dots */
	dot = memrchr(base, '.', n);
	if (dot != NULL && dot > base && n - (size_t)(dot - base) - 1 >= 1 &&
	    n - (size_t)(dot - base) - 1 <= EXT_MAX && ext_chars(dot + 1,
	    n - (size_t)(dot - base) - 1))
		n = dot - base;
	if (n > STEM_MAX)
		n = STEM_MAX;
	if ((s = strndup(base, n)) == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("+-._", s[i]) != NULL) || (i == 0 &&
		    (s[i] == '.' || s[i] == '-')))
			s[i] = '_';
	if (*s == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

static bool name_taken(char *const *names, size_t n, const char *name)
{
	size_t i;

	/* case-blind: the archive may be unpacked where case is */
	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

/* stem + ext, or stem-2 + ext, stem-3 + ext ... not among names. */
static char *unique_name(char *const *names, size_t n, const char *stem,
    const char *ext)
{
	char *s = NULL;
	unsigned k;

	for (k = 1; k < 100000; k++) {
		free(s);
		if ((k == 1 ? asprintf(&s, "%s%s", stem, ext) :
		    asprintf(&s, "%s-%u%s", stem, k, ext)) < 0)
			return NULL;
		if (!name_taken(names, n, s))
			return s;
	}
	free(s);
	return NULL;
}

/* The virtual system's name, and the members' names. */
static int name_members(struct ovajob *j)
{
	const struct ovacreate_opts *o = j->o;
	size_t n = o->ndisks, i;
	char **names = calloc(n + 2, sizeof *names);
	char *stem = NULL, disk_stem[32];
	int rc = -1;

	if (names == NULL)
		return fail(EXIT_IO, "out of memory");
	/* without --name, the first disk's stem, as ovftool takes the VM's */
	if (o->name != NULL)
		j->vm_name = strdup(o->name);
	else if (strcmp(o->disks[0], "-") != 0)
		j->vm_name = member_stem(o->disks[0]);
	if (j->vm_name == NULL && (j->vm_name = strdup("vm")) == NULL)
		goto out;
	if ((stem = member_stem(j->vm_name)) == NULL &&
	    (stem = strdup("vm")) == NULL)
		goto out;
	names[0] = j->ovf_member = unique_name(names, 0, stem, ".ovf");
	names[1] = j->mf_member = unique_name(names, 1, stem, ".mf");
	for (i = 0; i < n && names[0] && names[1]; i++) {
		char *s = strcmp(o->disks[i], "-") == 0 ? NULL :
		    member_stem(o->disks[i]);

		snprintf(disk_stem, sizeof disk_stem, "-disk%zu", i + 1);
		if (s == NULL && asprintf(&s, "%.*s%s", STEM_MAX - 12, stem,
		    disk_stem) < 0)
			s = NULL;
		if (s == NULL)
			goto out;
		j->disks[i].member = names[i + 2] = unique_name(names, i + 2,
		    s, ".vmdk");
		free(s);
		if (names[i + 2] == NULL)
			goto out;
	}
	rc = names[0] && names[1] ? 0 : -1;
out:
	free(stem);
	free(names);	/* the names belong to j */
	return rc < 0 ? fail(EXIT_IO, "out of memory") : 0;
}

/* ---- errors of one disk: "DISK: what" ---- */

static int disk_failed(const struct disk *d)
{
	const char *code = err_code();
	int status = err_status();
	char *msg;

	/* the error is about this disk: the message names its file once */
	if (strcmp(err_file(), d->label) == 0)
		return -1;
	msg = strdup(err_msg());
	if (msg != NULL) {
		err_clear();
		err_input(d->label);
		fail_code(status ? status : EXIT_REJECT, code, "%s", msg);
	}
	free(msg);
	return -1;
}

/* A file that is a streamOptimized VMDK byte for byte (not compressed). */
static bool is_stream_vmdk(const struct image *img)
{
	return img->fmt != NULL && strcmp(img->fmt->name, "vmdk") == 0 &&
	    strcmp(img->subformat, VMDK_TYPE_STREAM) == 0 &&
	    img->src->filter == NULL && img->src->seekable;
}

/*
 * Every disk on a file is opened and probed before the first is
 * converted, so that a missing or unknown third disk fails at once, not
 * after the first two.
 */
static int probe_disks(struct ovajob *j)
{
	const struct ovacreate_opts *o = j->o;
	struct source src;
	struct stash st;
	struct image img;
	size_t i;
	int rc = 0;

	for (i = 0; i < o->ndisks && rc == 0; i++) {
		if (strcmp(o->disks[i], "-") == 0)
			continue;
		stash_init(&st, o->mem ? o->mem : STASH_DEFAULT_BUDGET,
		    o->tmpdir);
		memset(&img, 0, sizeof img);
		if (source_open(&src, o->disks[i]) < 0 ||
		    image_open(&img, &src, &st, o->format, false) < 0)
			rc = disk_failed(&j->disks[i]);
		else
			j->disks[i].as_is = is_stream_vmdk(&img);
		image_close(&img);
		source_close(&src);
		stash_free(&st);
	}
	return rc;
}

/* ---- every disk to a VMDK in a temporary file ---- */

static const char *temp_dir(const char *dir)
{
	if (dir == NULL || *dir == '\0')
		dir = getenv("TMPDIR");
	return dir == NULL || *dir == '\0' ? "/tmp" : dir;
}

/* An unlinked file: gone whatever way we exit. */
static int open_temp(const char *tmpdir)
{
	const char *dir = temp_dir(tmpdir);
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	if (snprintf(path, sizeof path, "%s/ovacreate.XXXXXX", dir) >=
	    (int)sizeof path)
		return fail(EXIT_IO, "temporary directory name too long");
	fd = mkstemp(path);
	if (fd < 0)
		return fail_errno(EXIT_IO, "cannot create a temporary file in "
		    "%s", dir);
	unlink(path);
	return fd;
}

static const char *adapter_type(enum ovf_controller c)
{
	return c == OVF_IDE ? "ide" : c == OVF_BUSLOGIC ? "buslogic" :
	    "lsilogic";
}

/* Counts the bytes of data a whole read of an image delivers. */
struct count_sink {
	struct sink base;
	uint64_t data;
};

static int count_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	(void)off;
	(void)buf;
	((struct count_sink *)sk)->data += len;
	return 0;
}

static int count_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	(void)sk;
	(void)off;
	(void)len;
	return 0;
}

static int count_finish(struct sink *sk, uint64_t size)
{
	(void)sk;
	(void)size;
	return 0;
}

/*
 * A streamOptimized VMDK goes in as it is: read whole once through the
 * VMDK reader (every marker, table and grain inflated and checked, the
 * data counted for populatedSize), then copied from the same descriptor.
 */
static int take_as_is(struct ovajob *j, struct disk *d)
{
	const struct ovacreate_opts *o = j->o;
	struct count_sink cs = { { .in_order = false, .write = count_write,
	    .zero = count_zero, .finish = count_finish }, 0 };
	struct source src;
	struct stash st;
	struct image img;
	struct emitter em;
	struct stat sb;
	int rc;

	if ((d->fd = open(d->path, O_RDONLY | O_CLOEXEC)) < 0)
		return fail_io(d->label, NULL);
	memset(&img, 0, sizeof img);
	stash_init(&st, o->mem ? o->mem : STASH_DEFAULT_BUDGET, o->tmpdir);
	rc = source_open_fd(&src, d->fd, d->path);
	if (rc == 0)
		rc = image_open(&img, &src, &st, o->format, false);
	if (rc == 0 && !is_stream_vmdk(&img))
		rc = fail_file(EXIT_IO, d->label, "changed while it was read");
	if (rc == 0) {
		emitter_init(&em, &cs.base, &st, img.virtual_size);
		rc = image_read(&img, &em);
		emitter_free(&em);
	}
	if (rc == 0) {
		d->out.capacity = img.virtual_size;
		d->out.populated = cs.data;
	}
	image_close(&img);
	source_close(&src);
	stash_free(&st);
	if (rc < 0)
		return disk_failed(d);
	if (fstat(d->fd, &sb) < 0)
		return fail_io(d->label, NULL);
	d->out.href = d->member;
	d->out.file_size = (uint64_t)sb.st_size;
	return 0;
}

static int convert_disk(struct ovajob *j, struct disk *d)
{
	const struct ovacreate_opts *o = j->o;
	struct vmdk_wopts v = {
		.grain_sectors = 128,
		.level = o->level,
		.adapter_type = adapter_type(o->hw.controller),
		.hw_version = "4",
		.tools_version = "2147483647",
		.extent_name = d->member,
	};
	struct write_result r;
	struct write_opts w = {
		.input = d->path, .output = d->member, .format = o->format,
		.writer = &writer_vmdk, .writer_opts = &v,
		.threads = o->threads, .progress = o->progress, .mem = o->mem,
		.tmpdir = o->tmpdir, .unit = "grains",
		.to_fd = true, .result = &r,
	};
	struct stat st;

	if (d->as_is)
		return take_as_is(j, d);
	if ((d->fd = w.fd = open_temp(o->tmpdir)) < 0 || write_image(&w) < 0)
		return disk_failed(d);
	if (r.virtual_size == 0)
		return fail_file(EXIT_REJECT, d->label,
		    "the disk is empty (0 bytes)");
	if (fstat(d->fd, &st) < 0)
		return fail_io(d->label, "temporary file");
	d->out.href = d->member;
	d->out.file_size = (uint64_t)st.st_size;
	d->out.capacity = r.virtual_size;
	d->out.populated = r.data_grains * r.grain;
	if (d->out.populated > d->out.capacity)
		d->out.populated = d->out.capacity;
	return 0;
}

/* The chunk of d's VMDK at off (< its size) into buf: its length, or -1. */
static ssize_t temp_chunk(const struct disk *d, unsigned char *buf,
    uint64_t off)
{
	uint64_t left = d->out.file_size - off;
	ssize_t n;

	do
		n = pread(d->fd, buf, left < COPY_CHUNK ? left : COPY_CHUNK,
		    off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail_io(d->label, "read error on its temporary file");
	if (n == 0)
		return fail_file(EXIT_IO, d->label, "its temporary file was "
		    "cut short");
	return n;
}

/* The VMDK's digest, for the manifest that goes before it. */
static int digest_disk(struct ovajob *j, struct disk *d, unsigned char *buf)
{
	struct digest_set ds;
	uint64_t off = 0, size = d->out.file_size;
	ssize_t n;

	digest_set_init(&ds);
	digest_set_enable(&ds, j->o->manifest);
	while (off < size) {
		if ((n = temp_chunk(d, buf, off)) < 0)
			return -1;
		digest_set_update(&ds, buf, (size_t)n);
		off += n;
		progress_add(&j->pr, n);
	}
	digest_set_final(&ds);
	memcpy(d->digest, ds.out[j->o->manifest],
	    digest_alg_len(j->o->manifest));
	return 0;
}

/* ---- the archive ---- */

static int manifest_add(struct ovajob *j, const char *member,
    const unsigned char *digest)
{
	enum digest_alg alg = j->o->manifest;
	size_t len = digest_alg_len(alg), need, i;
	char *p;

	need = j->mf_len + strlen(member) + 2 * len + 16;
	if (need > j->mf_cap) {
		p = realloc(j->mf, need * 2);
		if (p == NULL)
			return fail(EXIT_IO, "out of memory");
		j->mf = p;
		j->mf_cap = need * 2;
	}
	p = j->mf + j->mf_len;
	p += sprintf(p, "%s(%s)= ", digest_alg_name(alg), member);
	for (i = 0; i < len; i++)
		p += sprintf(p, "%02x", digest[i]);
	*p++ = '\n';
	j->mf_len = p - j->mf;
	return 0;
}

static int add_buffer(struct ovajob *j, struct ova_writer *w,
    const char *member, const char *buf, size_t len, bool listed)
{
	unsigned char digest[DIGEST_MAX];

	if (ova_member_begin(w, member, len, listed) < 0 ||
	    ova_member_write(w, buf, len) < 0 ||
	    ova_member_end(w, digest) < 0)
		return -1;
	progress_add(&j->pr, len);
	return listed ? manifest_add(j, member, digest) : 0;
}

/* The VMDK from its temporary file, its digest taken before. */
static int add_disk(struct ovajob *j, struct ova_writer *w, struct disk *d,
    unsigned char *buf)
{
	uint64_t off = 0, size = d->out.file_size;
	ssize_t n;

	if (ova_member_begin(w, d->member, size, false) < 0)
		return -1;
	while (off < size) {
		if ((n = temp_chunk(d, buf, off)) < 0 ||
		    ova_member_write(w, buf, (size_t)n) < 0)
			return -1;
		off += n;
		progress_add(&j->pr, n);
	}
	return ova_member_end(w, NULL);
}

/* Members' times: $SOURCE_DATE_EPOCH for reproducible builds, else now. */
static time_t archive_time(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long t;

	if (s != NULL && *s != '\0') {
		errno = 0;
		t = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0' && t >= 0)
			return (time_t)t;
	}
	return time(NULL);
}

static int write_archive(struct ovajob *j)
{
	const struct ovacreate_opts *o = j->o;
	struct ova_writer w;
	unsigned char *buf = malloc(COPY_CHUNK);
	uint64_t total = j->ovf_len;
	size_t i;
	int rc = -1;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < o->ndisks; i++)
		total += 2 * j->disks[i].out.file_size;	/* digest, copy */
	progress_start(&j->pr, o->progress, total);
	for (i = 0; i < o->ndisks; i++)
		if (digest_disk(j, &j->disks[i], buf) < 0)
			goto out;
	if (ova_writer_open(&w, j->of.fd, j->of.name, o->manifest,
	    archive_time()) < 0)
		goto out;
	/* descriptor, manifest, disks: the manifest lists them in that order */
	if (add_buffer(j, &w, j->ovf_member, j->ovf, j->ovf_len, true) < 0)
		goto fail;
	for (i = 0; i < o->ndisks; i++)
		if (manifest_add(j, j->disks[i].member, j->disks[i].digest) < 0)
			goto fail;
	if (add_buffer(j, &w, j->mf_member, j->mf, j->mf_len, false) < 0)
		goto fail;
	for (i = 0; i < o->ndisks; i++)
		if (add_disk(j, &w, &j->disks[i], buf) < 0)
			goto fail;
	rc = ova_writer_close(&w);
	goto out;
fail:
	ova_writer_abort(&w);
out:
	progress_end(&j->pr);
	free(buf);
	return rc;
}

/* ---- the whole ---- */

static int describe(struct ovajob *j)
{
	struct ovf_appliance a = j->o->hw;
	struct ovf_out_disk *d = calloc(j->o->ndisks, sizeof *d);
	size_t i;
	int rc;

	if (d == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < j->o->ndisks; i++)
		d[i] = j->disks[i].out;
	a.name = j->vm_name;
	a.disks = d;
	a.ndisks = j->o->ndisks;
	rc = ovf_write(&a, &j->ovf, &j->ovf_len);
	free(d);
	return rc;
}

static int run(struct ovajob *j)
{
	size_t i;

	if (name_members(j) < 0 || probe_disks(j) < 0)
		return -1;
	/* before the long part: a terminal or an unwritable -o fails now */
	if (outfile_replace(&j->of, j->o->output) < 0)
		return -1;
	j->of_open = true;
	for (i = 0; i < j->o->ndisks; i++)
		if (convert_disk(j, &j->disks[i]) < 0)
			return -1;
	if (describe(j) < 0 || write_archive(j) < 0)
		return -1;
	j->of_open = false;
	return outfile_commit(&j->of);
}

int ovacreate_run(const struct ovacreate_opts *o)
{
	struct ovajob j;
	size_t i;
	int rc;

	if (o->name != NULL && !ovf_text_ok(o->name))
		return fail(EXIT_USAGE, "--name: a name must be UTF-8 text "
		    "without control characters");
	memset(&j, 0, sizeof j);
	j.o = o;
	j.disks = calloc(o->ndisks ? o->ndisks : 1, sizeof *j.disks);
	if (j.disks == NULL)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i < o->ndisks; i++) {
		j.disks[i].path = o->disks[i];
		j.disks[i].label = strcmp(o->disks[i], "-") == 0 ? "stdin" :
		    o->disks[i];
		j.disks[i].fd = -1;
	}
	rc = run(&j);
	if (j.of_open)
		outfile_abort(&j.of);
	for (i = 0; i < o->ndisks; i++) {
		if (j.disks[i].fd >= 0)
			close(j.disks[i].fd);
		free(j.disks[i].member);
	}
	free(j.disks);
	free(j.vm_name);
	free(j.ovf_member);
	free(j.mf_member);
	free(j.ovf);
	free(j.mf);
	return rc;
}
