/*
 * uecsplit: a UEC tarball into its kernel (AKI), ramdisk (ARI) and machine
 * image (AMI).  libarchive reads the tarball once, front to back.  Each
 * regular member's first SNIFF_HEAD bytes are read, sniffed, and then,
 * depending on what was asked:
 *
 *   listing   the data is skipped;
 *   -C DIR    every member that may get a role is written, sparse, to an
 *             unnamed temporary in DIR; once every member has been seen
 *             and the roles are settled, the winners are linked in;
 *   --ROLE    a member whose content and name both say ROLE is streamed to
 *             stdout as it is read (nothing later can outrank it); one
 *             that may still lose (its name disagrees, or only its name
 *             speaks) waits in the stash until the end of the tarball.
 *
 * Roles are settled per role: members whose content says it; without one,
 * members whose name says it.  Among several, names that mark extras
 * (loader, floppy) drop out, then names that agree win; more than one
 * left is ambiguous.
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

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/json.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"
#include "imgpipe/uec.h"
#include "imgpipe/zero.h"

#define MEMBERS_MAX 4096	/* UEC tarballs have three to six */
#define CANDIDATES_MAX 16	/* members that may take a role: open files */
#define NAME_MAX_LEN 4096
#define READ_BLOCK (1024 * 1024)
#define STASH_CHUNK (1024 * 1024)
#define STASH_CHUNKS_MAX (4u << 20)
#define HEAD_SLACK (16 * 1024 * 1024)	/* a data block overrunning the head */
#define NROLES (ROLE_EXTRA + 1)

struct chunk {
	uint64_t off;
	struct stash_ref ref;
};

struct member {
	char *path;		/* as the tar names it, for messages */
	char *name;		/* cleaned: the last component */
	uint64_t size;
	bool sparse;
	struct sniff content;
	enum part_role byname;
	enum part_role role;	/* settled: kernel, ramdisk, image or extra */
	bool candidate;
	char *outpath;		/* -C: DIR/name, written but not committed */
	struct outfile of;
	bool has_file;
	bool streamed;		/* --ROLE: already on stdout */
	struct chunk *chunks;	/* --ROLE: waiting in the stash */
	size_t nchunks, capchunks;
	size_t ntaken;		/* chunks already taken back out */
};

/* The tarball, its compression decoded by the core's source. */
struct tar_input {
	struct source src;	/* zeroed until opened: closing is safe */
	unsigned char *buf;
};

/* A run of member data from libarchive: valid until the next read. */
struct block {
	const unsigned char *buf;
	size_t len;
	uint64_t off;
};

struct uec {
	const struct uec_opts *o;
	struct archive *ar;
	struct tar_input in;
	struct progress pr;
	struct stash stash;
	struct member *m;
	size_t n, cap, ncand;
	struct member *chosen[NROLES];
	struct member *streaming;	/* --ROLE: the member sent to out */
	struct outfile out;		/* --ROLE: stdout or -o FILE */
	bool out_open;
	unsigned char *head;
	size_t headcap;
	unsigned char *acc;		/* stash accumulation buffer */
	uint64_t acc_off;
	size_t acc_len;
};

/* ---- reading the tarball ---- */

static la_ssize_t tar_read(struct archive *a, void *data, const void **out)
{
	struct tar_input *in = data;
	ssize_t n = source_read(&in->src, in->buf, READ_BLOCK);

	if (n < 0)
		archive_set_error(a, EIO, "%s", err_msg());
	*out = in->buf;
	return n;
}

/*
 * Only on an uncompressed file: skipped members cost no reads.  Never
 * past the end, so that libarchive sees a truncated member as truncated.
 */
static la_int64_t tar_skip(struct archive *a, void *data, la_int64_t req)
{
	struct tar_input *in = data;
	struct source *s = &in->src;

	(void)a;
	if (!s->seekable || req <= 0 || s->pos >= s->size)
		return 0;
	if ((uint64_t)req > s->size - s->pos)
		req = s->size - s->pos;
	return source_skip_to(s, s->pos + req) < 0 ? 0 : req;
}

/* The source's own error (a read error, a corrupt stream) comes first. */
static int tar_error(struct uec *u, const char *what)
{
	const char *msg;

	if (err_status() != 0)
		return -1;
	msg = archive_error_string(u->ar);
	return fail(EXIT_REJECT, "%s: %s", what,
	    msg ? msg : "truncated or damaged tar header");
}

static int tar_open(struct uec *u)
{
	struct source *s = &u->in.src;

	if (source_open(s, u->o->input) < 0)
		return -1;
	progress_start(&u->pr, u->o->progress,
	    u->o->size ? u->o->size : s->meter_total);
	if (u->o->size)	/* pv -s: the size of what arrives */
		s->meter_raw = s->ar != NULL;
	s->progress = &u->pr;
	u->in.buf = malloc(READ_BLOCK);
	u->ar = archive_read_new();
	if (u->in.buf == NULL || u->ar == NULL)
		return fail(EXIT_IO, "out of memory");
	archive_read_support_format_tar(u->ar);
	if (archive_read_open2(u->ar, &u->in, NULL, tar_read, tar_skip,
	    NULL) != ARCHIVE_OK)
		return tar_error(u, "cannot read the tarball");
	return 0;
}

/* 1: a block, 0: end of the member, -1: error (truncated, corrupt). */
static int next_block(struct uec *u, struct member *m, struct block *b)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	r = archive_read_data_block(u->ar, &buf, &len, &off);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r < ARCHIVE_WARN)
		return tar_error(u, m->path);
	if (off < 0)
		return fail(EXIT_REJECT, "%s: negative data offset", m->path);
	b->buf = buf;
	b->len = len;
	b->off = off;
	return 1;
}

/* ---- member names ---- */

/* Rejects ".." anywhere and control characters; the rest is cleaned. */
static int check_name(const char *path)
{
	const char *p;
	size_t n = strlen(path);

	if (n == 0 || n > NAME_MAX_LEN)
		return fail(EXIT_REJECT, "member name empty or too long");
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(EXIT_REJECT, "unsafe member name (control "
			    "characters)");
	for (p = path; p != NULL; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
			return fail(EXIT_REJECT, "unsafe member name '%s'", path);
	}
	return 0;
}

/* The last component: "/abs/x-vmlinuz" and "./x-vmlinuz" are x-vmlinuz. */
static const char *clean_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* ---- the stash, for a part that may still lose its role ---- */

static int stash_flush(struct uec *u, struct member *m)
{
	struct chunk *c;

	if (u->acc_len == 0)
		return 0;
	if (m->nchunks == m->capchunks && m->nchunks >= STASH_CHUNKS_MAX)
		return fail(EXIT_REJECT, "%s: too fragmented to hold back",
		    m->path);
	if (grow_array(&m->chunks, m->nchunks, &m->capchunks,
	    sizeof *m->chunks, 64, SIZE_MAX) < 0)
		return -1;
	c = &m->chunks[m->nchunks];
	c->off = u->acc_off;
	if (stash_put(&u->stash, u->acc, u->acc_len, &c->ref) < 0)
		return -1;
	m->nchunks++;
	u->acc_len = 0;
	return 0;
}

/* Keep the non-zero 4 KiB blocks of [off, off+len), in runs. */
static int stash_data(struct uec *u, struct member *m, uint64_t off,
    const unsigned char *buf, size_t len)
{
	size_t n;

	while (len > 0) {
		n = EMIT_ZERO_BLOCK - off % EMIT_ZERO_BLOCK;
		if (n > len)
			n = len;
		if (is_zero(buf, n)) {
			if (stash_flush(u, m) < 0)
				return -1;
		} else {
			if ((u->acc_len > 0 && u->acc_off + u->acc_len != off) ||
			    u->acc_len + n > STASH_CHUNK)
				if (stash_flush(u, m) < 0)
					return -1;
			if (u->acc_len == 0)
				u->acc_off = off;
			memcpy(u->acc + u->acc_len, buf, n);
			u->acc_len += n;
		}
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static void stash_release(struct uec *u, struct member *m)
{
	size_t i;

	for (i = m->ntaken; i < m->nchunks; i++)
		stash_drop(&u->stash, &m->chunks[i].ref);
	free(m->chunks);
	m->chunks = NULL;
	m->nchunks = m->capchunks = m->ntaken = 0;
}

/* ---- writing a part ---- */

/* Data goes to em, or to the stash when em is NULL. */
static int feed(struct uec *u, struct member *m, struct emitter *em,
    uint64_t off, const unsigned char *buf, size_t len)
{
	if (em == NULL)
		return stash_data(u, m, off, buf, len);
	if (emit_upto(em, off) < 0 || emit_data(em, off, buf, len) < 0)
		return -1;
	return 0;
}

/* What read_head saw: the head, a block past it, and whether more follow. */
struct head {
	size_t covered;		/* head[0, covered) holds blocks read */
	size_t sniff_len;	/* bytes to sniff: covered, or zero-filled */
	bool has_carry;
	struct block carry;
	bool more;
};

/* The head grows past SNIFF_HEAD only for a block that overruns it. */
static int head_reserve(struct uec *u, size_t len)
{
	unsigned char *p;

	if (len <= u->headcap)
		return 0;
	p = realloc(u->head, len);
	if (p == NULL)
		return fail(EXIT_IO, "out of memory");
	u->head = p;
	u->headcap = len;
	return 0;
}

static int read_head(struct uec *u, struct member *m, struct head *h)
{
	struct block b;
	int r;

	memset(h, 0, sizeof *h);
	h->more = true;
	while (h->covered < SNIFF_HEAD) {
		r = next_block(u, m, &b);
		if (r < 0)
			return -1;
		if (r == 0) {
			h->more = false;
			break;
		}
		if (b.off >= SNIFF_HEAD) {
			h->carry = b;
			h->has_carry = true;
			break;
		}
		if (b.off < h->covered || b.len > HEAD_SLACK)
			return fail(EXIT_REJECT, "%s: data blocks out of "
			    "order", m->path);
		if (head_reserve(u, b.off + b.len) < 0)
			return -1;
		memset(u->head + h->covered, 0, b.off - h->covered);
		memcpy(u->head + b.off, b.buf, b.len);
		h->covered = b.off + b.len;
	}
	h->sniff_len = m->size < SNIFF_HEAD ? m->size : SNIFF_HEAD;
	if (h->covered > h->sniff_len)
		h->sniff_len = h->covered;
	if (h->covered < h->sniff_len)
		memset(u->head + h->covered, 0, h->sniff_len - h->covered);
	return 0;
}

static int copy_rest(struct uec *u, struct member *m, struct emitter *em,
    const struct head *h)
{
	struct block b;
	int r;

	if (feed(u, m, em, 0, u->head, h->covered) < 0)
		return -1;
	if (h->has_carry && feed(u, m, em, h->carry.off, h->carry.buf,
	    h->carry.len) < 0)
		return -1;
	while (h->more && (r = next_block(u, m, &b)) != 0) {
		if (r < 0 || feed(u, m, em, b.off, b.buf, b.len) < 0)
			return -1;
	}
	if (em == NULL)
		return stash_flush(u, m);
	return emit_finish(em);
}

static int copy_to_fd(struct uec *u, struct member *m, int fd,
    const char *name, const struct head *h)
{
	struct raw_sink rs;
	struct emitter em;
	int rc;

	raw_sink_init(&rs, fd, name);
	emitter_init(&em, &rs.base, &u->stash, m->size);
	rc = copy_rest(u, m, &em, h);
	emitter_free(&em);
	return rc;
}

/* -C: into an unnamed temporary in DIR, linked in if it wins its role. */
static int write_candidate(struct uec *u, struct member *m,
    const struct head *h)
{
	if (asprintf(&m->outpath, "%s/%s", u->o->dir, m->name) < 0) {
		m->outpath = NULL;
		return fail(EXIT_IO, "out of memory");
	}
	if (outfile_open(&m->of, m->outpath) < 0)
		return -1;
	m->has_file = true;
	return copy_to_fd(u, m, m->of.fd, m->outpath, h);
}

/* Replay a held-back part from the stash to stdout. */
static int replay_stashed(struct uec *u, struct member *m)
{
	struct raw_sink rs;
	struct emitter em;
	unsigned char *buf = malloc(STASH_CHUNK);
	int rc = 0;

	if (buf == NULL)
		return fail(EXIT_IO, "out of memory");
	raw_sink_init(&rs, u->out.fd, u->out.name);
	emitter_init(&em, &rs.base, &u->stash, m->size);
	while (m->ntaken < m->nchunks && rc == 0) {
		struct chunk *c = &m->chunks[m->ntaken++];

		rc = stash_take(&u->stash, &c->ref, buf);
		if (rc == 0)
			rc = feed(u, m, &em, c->off, buf, c->ref.len);
	}
	if (rc == 0)
		rc = emit_finish(&em);
	emitter_free(&em);
	free(buf);
	return rc;
}

/* ---- one member ---- */

static enum part_role provisional_role(const struct member *m)
{
	if (m->content.role != ROLE_NONE)
		return m->content.role;
	if (m->byname != ROLE_EXTRA)
		return m->byname;
	return ROLE_NONE;
}

/* --ROLE: stream now, hold back, or skip. */
static int route_wanted(struct uec *u, struct member *m, const struct head *h)
{
	enum part_role want = u->o->want;
	size_t i;

	if (provisional_role(m) != want)
		return 0;
	if (m->content.role == want && m->byname == want) {
		if (u->streaming != NULL)
			return 0;	/* ambiguous: fails when settling */
		/* Nothing held back can outrank this one now. */
		for (i = 0; i < u->n; i++)
			stash_release(u, &u->m[i]);
		u->streaming = m;
		m->streamed = true;
		return copy_to_fd(u, m, u->out.fd, u->out.name, h);
	}
	if (u->streaming != NULL)
		return 0;		/* cannot outrank the streamed one */
	return copy_rest(u, m, NULL, h);
}

static struct member *member_new(struct uec *u, const char *path)
{
	struct member *m;

	if (u->n == MEMBERS_MAX) {
		fail(EXIT_REJECT, "more than %d members",
		    MEMBERS_MAX);
		return NULL;
	}
	if (grow_array(&u->m, u->n, &u->cap, sizeof *u->m, 16, SIZE_MAX) < 0)
		return NULL;
	m = &u->m[u->n];
	memset(m, 0, sizeof *m);
	m->path = strdup(path);
	m->name = m->path ? strdup(clean_name(path)) : NULL;
	if (m->name == NULL) {
		free(m->path);
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	u->n++;
	return m;
}

static const char *special_kind(struct archive_entry *ent)
{
	if (archive_entry_hardlink(ent) != NULL)
		return "hard link";
	switch (archive_entry_filetype(ent)) {
	case AE_IFLNK: return "symbolic link";
	case AE_IFCHR: case AE_IFBLK: return "device";
	case AE_IFIFO: return "fifo";
	case AE_IFSOCK: return "socket";
	default: return "special file";
	}
}

static int read_regular(struct uec *u, struct member *m)
{
	struct head h;

	if (read_head(u, m, &h) < 0)
		return -1;
	sniff_content(u->head, h.sniff_len, &m->content);
	m->byname = sniff_name(m->name);
	m->candidate = provisional_role(m) != ROLE_NONE;
	if (m->candidate && ++u->ncand > CANDIDATES_MAX)
		return fail(EXIT_REJECT, "more than %d members could be "
		    "a kernel, ramdisk or image",
		    CANDIDATES_MAX);
	if (u->o->want != ROLE_NONE)
		return route_wanted(u, m, &h);
	if (u->o->dir != NULL && m->candidate)
		return write_candidate(u, m, &h);
	return 0;	/* the next header skips the rest */
}

static int read_member(struct uec *u, struct archive_entry *ent)
{
	const char *path = archive_entry_pathname(ent);
	struct member *m;

	if (path == NULL)
		return fail(EXIT_REJECT, "member without a name");
	if (check_name(path) < 0)
		return -1;
	if (archive_entry_filetype(ent) == AE_IFDIR &&
	    archive_entry_hardlink(ent) == NULL)
		return 0;
	if (*clean_name(path) == '\0' || strcmp(clean_name(path), ".") == 0)
		return fail(EXIT_REJECT, "unsafe member name '%s'", path);
	if ((m = member_new(u, path)) == NULL)
		return -1;
	m->byname = ROLE_EXTRA;
	if (archive_entry_filetype(ent) != AE_IFREG ||
	    archive_entry_hardlink(ent) != NULL) {
		/* Never created, never followed: reported as an extra. */
		snprintf(m->content.what, sizeof m->content.what, "%s",
		    special_kind(ent));
		warnmsg("%s: skipping %s '%s'", u->in.src.name, m->content.what,
		    path);
		return 0;
	}
	if (archive_entry_size(ent) < 0)
		return fail(EXIT_REJECT, "%s: bad size",
		    path);
	if ((uint64_t)archive_entry_size(ent) > UEC_MEMBER_MAX)
		return fail(EXIT_REJECT, "%s claims %llu bytes, more than "
		    "the %llu a disk may have", path,
		    (unsigned long long)archive_entry_size(ent), UEC_MEMBER_MAX);
	m->size = archive_entry_size(ent);
	m->sparse = archive_entry_sparse_count(ent) > 0;
	return read_regular(u, m);
}

static int read_tarball(struct uec *u)
{
	struct archive_entry *ent;
	int r;

	while ((r = archive_read_next_header(u->ar, &ent)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN)
		if (read_member(u, ent) < 0)
			return -1;
	if (r != ARCHIVE_EOF)
		return tar_error(u, "not a readable tarball");
	/*
	 * libarchive ends at the tar's end marker, or quietly where a cut
	 * took it away; a compressed stream is whole only if read to its
	 * trailer.
	 */
	return source_drain(&u->in.src);
}

/* ---- settling the roles ---- */

static int ambiguous(enum part_role r, struct member **c, size_t n)
{
	char list[1024] = "";
	size_t i, len = 0;

	for (i = 0; i < n && len < sizeof list; i++)
		len += snprintf(list + len, sizeof list - len, "%s'%s' (%s)",
		    i ? ", " : "", c[i]->path, c[i]->content.what);
	return fail(EXIT_REJECT, "more than one %s: %s",
	    role_name(r), list);
}

/* Keep the candidates for which keep() holds, if any does. */
static size_t narrow(struct member **c, size_t n, enum part_role r,
    bool (*keep)(const struct member *, enum part_role))
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (keep(c[i], r))
			k++;
	if (k == 0 || k == n)
		return n;
	for (i = 0, k = 0; i < n; i++)
		if (keep(c[i], r))
			c[k++] = c[i];
	return k;
}

static bool name_not_extra(const struct member *m, enum part_role r)
{
	(void)r;
	return m->byname != ROLE_EXTRA;
}

static bool name_agrees(const struct member *m, enum part_role r)
{
	return m->byname == r;
}

static int settle_role(struct uec *u, enum part_role r)
{
	struct member *c[CANDIDATES_MAX], *all[CANDIDATES_MAX];
	size_t i, n = 0, nall;

	for (i = 0; i < u->n; i++)
		if (u->m[i].candidate && u->m[i].content.role == r)
			c[n++] = &u->m[i];
	if (n == 0)
		for (i = 0; i < u->n; i++)
			if (u->m[i].candidate &&
			    u->m[i].content.role == ROLE_NONE &&
			    u->m[i].byname == r)
				c[n++] = &u->m[i];
	memcpy(all, c, n * sizeof *c);
	nall = n;
	n = narrow(c, n, r, name_not_extra);
	n = narrow(c, n, r, name_agrees);
	if (n > 1)
		return ambiguous(r, all, nall);
	if (n == 1) {
		u->chosen[r] = c[0];
		c[0]->role = r;
	}
	return 0;
}

static int settle_roles(struct uec *u)
{
	size_t i, j;
	enum part_role r;

	for (i = 0; i < u->n; i++)
		u->m[i].role = ROLE_EXTRA;
	for (r = ROLE_KERNEL; r <= ROLE_IMAGE; r++)
		if (settle_role(u, r) < 0)
			return -1;
	if (u->chosen[ROLE_IMAGE] == NULL)
		return fail(EXIT_REJECT, "no machine image (a file system "
		    "or a partitioned disk) among %zu members",
		    u->n);
	if (u->o->want != ROLE_NONE && u->chosen[u->o->want] == NULL)
		return fail(EXIT_REJECT, "no %s in the tarball", role_name(u->o->want));
	for (i = ROLE_KERNEL; i <= ROLE_IMAGE; i++)
		for (j = i + 1; j <= ROLE_IMAGE; j++)
			if (u->chosen[i] && u->chosen[j] &&
			    strcmp(u->chosen[i]->name, u->chosen[j]->name) == 0)
				return fail(EXIT_REJECT, "two parts named "
				    "'%s'", u->chosen[i]->name);
	return 0;
}

/* ---- results ---- */

static int commit_parts(struct uec *u)
{
	size_t i;

	for (i = 0; i < u->n; i++) {
		struct member *m = &u->m[i];

		if (!m->has_file)
			continue;
		m->has_file = false;
		if (m->role == ROLE_EXTRA)
			outfile_abort(&m->of);
		else if (outfile_commit(&m->of) < 0)
			return -1;
	}
	return 0;
}

static void print_sh_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fputc('\'', f);
}

static const char *part_file(const struct uec *u, const struct member *m)
{
	return u->o->dir ? m->outpath : m->name;
}

/* One `openstack image create` per part; the AMI points at the others. */
static void print_glance_command(FILE *f, const struct uec *u,
    enum part_role r)
{
	const struct member *m = u->chosen[r];
	const char *fmt = role_disk_format(r);

	if (r == ROLE_KERNEL)
		fputs("KERNEL_ID=$(openstack image create -f value -c id ", f);
	else if (r == ROLE_RAMDISK)
		fputs("RAMDISK_ID=$(openstack image create -f value -c id ", f);
	else
		fputs("openstack image create ", f);
	fprintf(f, "--disk-format %s --container-format %s ", fmt, fmt);
	if (r == ROLE_IMAGE && u->chosen[ROLE_KERNEL])
		fputs("--property kernel_id=\"$KERNEL_ID\" ", f);
	if (r == ROLE_IMAGE && u->chosen[ROLE_RAMDISK])
		fputs("--property ramdisk_id=\"$RAMDISK_ID\" ", f);
	fputs("--file ", f);
	print_sh_quoted(f, part_file(u, m));
	fputc(' ', f);
	if (r == ROLE_IMAGE) {
		print_sh_quoted(f, u->o->glance);
	} else {
		char *label = NULL;

		if (asprintf(&label, "%s-%s", u->o->glance, role_name(r)) > 0)
			print_sh_quoted(f, label);
		free(label);
		fputc(')', f);
	}
}

static void print_text(const struct uec *u)
{
	enum part_role r;
	size_t i;

	for (r = ROLE_KERNEL; r <= ROLE_IMAGE; r++)
		if (u->chosen[r])
			printf("%s %s %s %llu\n", role_name(r),
			    role_disk_format(r), u->chosen[r]->name,
			    (unsigned long long)u->chosen[r]->size);
	for (i = 0; i < u->n; i++)
		if (u->m[i].role == ROLE_EXTRA)
			printf("extra - %s %llu\n", u->m[i].name,
			    (unsigned long long)u->m[i].size);
	if (u->o->glance == NULL)
		return;
	for (r = ROLE_KERNEL; r <= ROLE_IMAGE; r++)
		if (u->chosen[r]) {
			print_glance_command(stdout, u, r);
			putchar('\n');
		}
}

static json_t *member_json(const struct uec *u, const struct member *m)
{
	json_t *j = json_object();

	jsonout_set(j, "role", json_string(role_name(m->role)));
	if (m->role != ROLE_EXTRA) {
		jsonout_set(j, "disk-format",
		    json_string(role_disk_format(m->role)));
		jsonout_set(j, "container-format",
		    json_string(role_disk_format(m->role)));
	}
	jsonout_set(j, "name", jsonout_text(m->name));
	jsonout_set(j, "member", jsonout_text(m->path));
	jsonout_set(j, "size", jsonout_size(true, m->size));
	jsonout_set(j, "sparse", json_boolean(m->sparse));
	jsonout_set(j, "content", jsonout_text(m->content.what));
	if (u->o->dir && m->role != ROLE_EXTRA)
		jsonout_set(j, "path", jsonout_text(m->outpath));
	return j;
}

static json_t *glance_json(const struct uec *u)
{
	json_t *cmds = json_array();
	enum part_role r;
	char *cmd;
	size_t len;
	FILE *f;

	for (r = ROLE_KERNEL; r <= ROLE_IMAGE && cmds != NULL; r++) {
		cmd = NULL;
		if (!u->chosen[r] || (f = open_memstream(&cmd, &len)) == NULL)
			continue;
		print_glance_command(f, u, r);
		fclose(f);
		json_array_append_new(cmds, jsonout_text(cmd));
		free(cmd);
	}
	return cmds;
}

static int print_json(const struct uec *u)
{
	json_t *root = json_object(), *parts = json_array();
	json_t *extras = json_array();
	enum part_role r;
	size_t i;

	for (r = ROLE_KERNEL; r <= ROLE_IMAGE && parts != NULL; r++)
		if (u->chosen[r])
			json_array_append_new(parts,
			    member_json(u, u->chosen[r]));
	for (i = 0; i < u->n && extras != NULL; i++)
		if (u->m[i].role == ROLE_EXTRA)
			json_array_append_new(extras, member_json(u, &u->m[i]));
	jsonout_set(root, "parts", parts);
	jsonout_set(root, "extras", extras);
	if (u->o->glance)
		jsonout_set(root, "glance", glance_json(u));
	return jsonout_print(root);
}

/* ---- the job ---- */

static int check_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return fail_io(dir, NULL);
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return fail_io(dir, NULL);
	}
	return 0;
}

static int uec_prepare(struct uec *u)
{
	if (u->o->dir != NULL && check_dir(u->o->dir) < 0)
		return -1;
	if (u->o->want != ROLE_NONE) {
		if (outfile_open(&u->out, u->o->output) < 0)
			return -1;
		u->out_open = true;
	}
	u->headcap = SNIFF_HEAD + READ_BLOCK;
	u->head = malloc(u->headcap);
	u->acc = malloc(STASH_CHUNK);
	if (u->head == NULL || u->acc == NULL)
		return fail(EXIT_IO, "out of memory");
	return tar_open(u);
}

static int uec_finish(struct uec *u)
{
	struct member *m;

	if (u->o->want != ROLE_NONE) {
		m = u->chosen[u->o->want];
		if (!m->streamed && replay_stashed(u, m) < 0)
			return -1;
		u->out_open = false;
		return outfile_commit(&u->out);
	}
	if (commit_parts(u) < 0)
		return -1;
	if (u->o->json)
		return print_json(u);
	print_text(u);
	if (fflush(stdout) == EOF || ferror(stdout))
		return fail_io("stdout", "write error");
	return 0;
}

static void uec_free(struct uec *u)
{
	size_t i;

	for (i = 0; i < u->n; i++) {
		struct member *m = &u->m[i];

		if (m->has_file)
			outfile_abort(&m->of);
		stash_release(u, m);
		free(m->outpath);
		free(m->path);
		free(m->name);
	}
	free(u->m);
	if (u->out_open)
		outfile_abort(&u->out);
	if (u->ar != NULL)
		archive_read_free(u->ar);
	source_close(&u->in.src);
	free(u->in.buf);
	free(u->head);
	free(u->acc);
	stash_free(&u->stash);
}

int uec_split(const struct uec_opts *o)
{
	struct uec u;
	int rc;

	memset(&u, 0, sizeof u);
	u.o = o;
	stash_init(&u.stash, o->mem ? o->mem : STASH_DEFAULT_BUDGET, o->tmpdir);
	rc = uec_prepare(&u);
	if (rc == 0)
		rc = read_tarball(&u);
	progress_end(&u.pr);
	if (rc == 0)
		rc = settle_roles(&u);
	if (rc == 0)
		rc = uec_finish(&u);
	uec_free(&u);
	return rc;
}
