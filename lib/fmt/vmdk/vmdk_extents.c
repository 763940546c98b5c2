/*
 * A VMDK descriptor file: text naming the files that hold the disk
 * (monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs, ...).
 * By default nothing it names is opened and the image is refused with the
 * names: image services have been made to read host files through
 * extents (OSSA-2024-001, CVE-2024-32498).  With --extents (the source's
 * sibling_extents), the descriptor must be a file given by its path, and
 * each extent a bare file name beside it, a regular file (not a link),
 * opened read-only: FLAT and VMFS extents are raw, SPARSE extents hosted
 * sparse extents read as a monolithicSparse is, ZERO extents zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt/vmdk/vmdk_desc.h"
#include "fmt/vmdk/vmdk_info.h"
#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

enum vmdk_extent_kind { VMDK_EXT_FLAT, VMDK_EXT_SPARSE, VMDK_EXT_ZERO };

struct vmdk_file_extent {
	enum vmdk_extent_kind kind;
	uint64_t sectors;		/* its part of the disk */
	uint64_t offset;		/* FLAT: bytes into the file */
	struct source src;
	bool src_open;
	struct image sub;		/* the extent as an image of its own */
	struct format fmt;		/* sub's: names the extent in messages */
	char label[VMDK_NAME_MAX + 24];
	struct vmdk *v;			/* SPARSE */
};

struct vmdk_files {
	struct vmdk_file_extent *x;
	size_t n;
	int dirfd;
};

/* The extent names, quoted and joined, for a message; the first path. */
static void vmdk_extent_names(const struct vmdk_desc *d, char *names,
    size_t nameslen, char *path, size_t pathlen)
{
	char name[80];
	size_t used = 0;

	names[0] = path[0] = '\0';
	for (size_t i = 0; i < d->nextents; i++) {
		const struct vmdk_extent_line *x = &d->extents[i];

		if (!x->has_name)
			continue;
		vmdk_name_printable(name, sizeof name, x->name);
		if (path[0] == '\0' && x->name[0] != '\0' &&
		    !vmdk_name_is_bare(x->name))
			snprintf(path, pathlen, "%s", name);
		if (used + strlen(name) + 5 < nameslen)
			used += snprintf(names + used, nameslen - used, "%s\"%s\"",
			    used ? ", " : "", name);
	}
}

/* Say what the extent names are, and call out names that are paths. */
int vmdk_reject_extents(struct image *img, const struct vmdk_desc *d,
    const char *what)
{
	char names[256], path[80], why[200] = "";

	vmdk_extent_names(d, names, sizeof names, path, sizeof path);
	if (path[0] != '\0')
		snprintf(why, sizeof why, "; extent name \"%s\" is a path "
		    "('/', '\\' or '..')", path);
	else if (strcmp(what, "descriptor file") == 0)
		snprintf(why, sizeof why, " (--extents opens bare names "
		    "beside the descriptor)");
	return image_unsafe(img, "extent-file", "%s (createType \"%s\") "
	    "names extent files %s, which are never opened%s", what,
	    d->create_type[0] ? d->create_type : "?",
	    names[0] ? names : "(none)", why);
}

int vmdk_reject_parent(struct image *img, const struct vmdk_desc *d)
{
	char hint[80];

	vmdk_name_printable(hint, sizeof hint, d->parent_hint);
	if (d->parent_hint[0] != '\0')
		return image_unsafe(img, "parent", "the descriptor names a "
		    "parent disk (parentFileNameHint \"%s\"), which is never "
		    "opened", hint);
	return image_unsafe(img, "parent", "the descriptor names a parent "
	    "disk (parentCID %08x), which is never opened", d->parent_cid);
}

/* The whole descriptor file (its head is all a rejection needs). */
static char *vmdk_descriptor_text(struct image *img, size_t *len)
{
	const struct source *src = img->src;
	char *text;

	*len = src->headlen;
	if (src->sibling_extents && src->size_known) {
		if (src->size > VMDK_DESC_MAX) {
			image_bad(img, "descriptor file of %llu bytes is larger "
			    "than the %u-byte limit",
			    (unsigned long long)src->size, VMDK_DESC_MAX);
			return NULL;
		}
		*len = src->size;
	}
	text = malloc(*len + 1);
	if (text == NULL) {
		fail(EXIT_IO, "out of memory");
		return NULL;
	}
	if (*len == src->headlen)
		memcpy(text, src->head, *len);
	else if (image_read_at(img, text, *len, 0, "descriptor") < 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* --extents needs the descriptor's own directory: a path, not a pipe. */
static int vmdk_open_dir(struct image *img, struct vmdk_files *f)
{
	const struct source *src = img->src;
	char *copy;
	struct stat sb;

	if (!src->seekable || src->filter != NULL || src->ar != NULL ||
	    fstat(src->fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    strcmp(src->name, "stdin") == 0)
		return fail(EXIT_USAGE, "--extents opens the files a VMDK "
		    "descriptor names beside it: give the descriptor's path, "
		    "not a pipe");
	copy = strdup(src->name);
	if (copy == NULL)
		return fail(EXIT_IO, "out of memory");
	f->dirfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (f->dirfd < 0)
		return fail_errno(EXIT_IO, "%s: its directory", src->name);
	return 0;
}

static int vmdk_extent_kind(struct image *img, const struct vmdk_extent_line *l,
    enum vmdk_extent_kind *kind)
{
	char type[sizeof l->type];

	if (strcasecmp(l->type, "FLAT") == 0 || strcasecmp(l->type, "VMFS") == 0)
		*kind = VMDK_EXT_FLAT;
	else if (strcasecmp(l->type, "SPARSE") == 0)
		*kind = VMDK_EXT_SPARSE;
	else if (strcasecmp(l->type, "ZERO") == 0)
		*kind = VMDK_EXT_ZERO;
	else {
		/* VMFSSPARSE (COWD), SESPARSE, VMFSRDM, VMFSRAW (devices) */
		vmdk_name_printable(type, sizeof type, l->type);
		return image_bad(img, "extent type %s is not read (FLAT, VMFS, "
		    "SPARSE and ZERO are)", type);
	}
	if (*kind == VMDK_EXT_FLAT && l->offset > UINT64_MAX / VMDK_SECTOR -
	    l->sectors)
		return image_bad(img, "extent offset %llu is out of range",
		    (unsigned long long)l->offset);
	return 0;
}

/* openat(name) beside the descriptor: a bare name, a regular file. */
static int vmdk_open_sibling(struct image *img, struct vmdk_files *f,
    const struct vmdk_extent_line *l, int *fdp)
{
	char name[80];
	struct stat sb;
	int fd;

	vmdk_name_printable(name, sizeof name, l->name);
	if (!vmdk_name_is_bare(l->name) || l->name_cut)
		return image_unsafe(img, "extent-file", "extent name \"%s\" is "
		    "not a bare file name beside the descriptor ('/', '\\', "
		    "'..' or empty), and is never opened", name) < 0 ? -1 : 1;
	fd = openat(f->dirfd, l->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return image_unsafe(img, "extent-file", "extent \"%s\" is a "
		    "symbolic link, which is never followed", name) < 0 ? -1 : 1;
	if (fd < 0)
		return fail_errno(EXIT_IO, "vmdk: extent \"%s\" beside the "
		    "descriptor", name);
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return image_unsafe(img, "extent-file", "extent \"%s\" is not "
		    "a regular file, and is never read", name) < 0 ? -1 : 1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	*fdp = fd;
	return 0;
}

/* The extent as an image of its own, named in messages by its file. */
static void vmdk_sub_image(struct image *img, struct vmdk_file_extent *x,
    const char *name)
{
	char printable[VMDK_NAME_MAX];

	vmdk_name_printable(printable, sizeof printable, name);
	snprintf(x->label, sizeof x->label, "%s: extent \"%s\"",
	    img->fmt->name, printable);
	x->fmt = *img->fmt;
	x->fmt.name = x->label;
	memset(&x->sub, 0, sizeof x->sub);
	x->sub.fmt = &x->fmt;
	x->sub.src = &x->src;
	x->sub.stash = img->stash;
	x->sub.inspect = img->inspect;
}

/* What the extent found that imginfo must show (inspecting). */
static void vmdk_sub_findings(struct image *img, struct vmdk_file_extent *x)
{
	for (int i = 0; i < x->sub.nfindings; i++)
		image_unsafe(img, x->sub.findings[i].code, "extent: %s",
		    x->sub.findings[i].text);
	x->sub.nfindings = 0;
}

static int vmdk_open_flat(struct image *img, struct vmdk_file_extent *x,
    const struct vmdk_extent_line *l)
{
	uint64_t need = (l->offset + l->sectors) * VMDK_SECTOR;

	x->offset = l->offset * VMDK_SECTOR;
	if (x->src.size < need)
		return image_defect(&x->sub, FINDING_TRUNCATED, "%llu sectors "
		    "from sector %llu need %llu bytes; the file has %llu",
		    (unsigned long long)l->sectors,
		    (unsigned long long)l->offset, (unsigned long long)need,
		    (unsigned long long)x->src.size);
	(void)img;
	return 0;
}

static int vmdk_open_sparse_extent(struct image *img,
    struct vmdk_file_extent *x, const struct vmdk_extent_line *l)
{
	int rc;

	if (x->src.headlen < 4 || le32(x->src.head) != VMDK_MAGIC)
		return image_bad(&x->sub, "a SPARSE extent is not a hosted "
		    "sparse extent (no \"KDMV\")");
	x->v = calloc(1, sizeof *x->v);
	if (x->v == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = vmdk_open_sparse(&x->sub, x->v);
	vmdk_sub_findings(img, x);
	if (rc < 0)
		return -1;
	if (x->v->h.capacity != l->sectors)
		return image_bad(&x->sub, "holds %llu sectors, the descriptor "
		    "says %llu", (unsigned long long)x->v->h.capacity,
		    (unsigned long long)l->sectors);
	return 0;
}

static int vmdk_open_extent(struct image *img, struct vmdk_files *f,
    struct vmdk_file_extent *x, const struct vmdk_extent_line *l)
{
	int fd = -1, rc;

	x->sectors = l->sectors;
	if (vmdk_extent_kind(img, l, &x->kind) < 0)
		return -1;
	if (x->kind == VMDK_EXT_ZERO)
		return 0;
	rc = vmdk_open_sibling(img, f, l, &fd);
	if (rc > 0)		/* inspecting: refused, and read as zeros */
		x->kind = VMDK_EXT_ZERO;
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	vmdk_sub_image(img, x, l->name);
	rc = x->kind == VMDK_EXT_FLAT ? source_open_fd_plain(&x->src, fd,
	    x->label) : source_open_fd(&x->src, fd, x->label);
	x->src.owns_fd = true;
	x->src_open = true;
	if (rc < 0)
		return -1;
	/* messages name the descriptor the user gave; the label, the extent */
	err_input(img->src->name);
	if (!x->src.seekable || x->src.filter != NULL)
		return image_bad(&x->sub, "a compressed extent is not read");
	return x->kind == VMDK_EXT_FLAT ? vmdk_open_flat(img, x, l)
	    : vmdk_open_sparse_extent(img, x, l);
}

static int vmdk_open_extents(struct image *img, struct vmdk_files *f,
    const struct vmdk_desc *d)
{
	if (d->bad[0] != '\0')
		return image_bad(img, "descriptor file: %s", d->bad);
	if (d->nextents == 0)
		return image_bad(img, "descriptor file names no extent");
	if (d->total_sectors > IMAGE_VSIZE_MAX / VMDK_SECTOR)
		return image_bad(img, "extents of %llu sectors in all are beyond "
		    "the limit of %llu bytes",
		    (unsigned long long)d->total_sectors, IMAGE_VSIZE_MAX);
	f->x = calloc(d->nextents, sizeof *f->x);
	if (f->x == NULL)
		return fail(EXIT_IO, "out of memory");
	for (size_t i = 0; i < d->nextents; i++) {
		f->n = i + 1;
		if (vmdk_open_extent(img, f, &f->x[i], &d->extents[i]) < 0)
			return -1;
	}
	return 0;
}

/* A text descriptor: the disk is in the files it names. */
int vmdk_open_descriptor_file(struct image *img)
{
	struct vmdk *v = calloc(1, sizeof *v);
	struct vmdk_desc d;
	size_t len;
	char *text;
	int rc;

	if (v == NULL || (v->files = calloc(1, sizeof *v->files)) == NULL) {
		free(v);
		return fail(EXIT_IO, "out of memory");
	}
	v->files->dirfd = -1;
	img->priv = v;
	text = vmdk_descriptor_text(img, &len);
	if (text == NULL)
		return -1;
	rc = vmdk_desc_parse(&d, text, len);
	if (rc == 0)
		vmdk_info(img, text, len, NULL);
	free(text);
	if (rc < 0)
		return -1;
	snprintf(img->subformat, sizeof img->subformat, "%.47s",
	    d.create_type[0] ? d.create_type : "descriptor");
	if (d.total_sectors <= IMAGE_VSIZE_MAX / VMDK_SECTOR)
		img->virtual_size = d.total_sectors * VMDK_SECTOR;
	rc = vmdk_desc_has_parent(&d) ? vmdk_reject_parent(img, &d) : 0;
	if (rc == 0 && !img->src->sibling_extents)
		rc = vmdk_reject_extents(img, &d, "descriptor file");
	else if (rc == 0 && vmdk_open_dir(img, v->files) == 0)
		rc = vmdk_open_extents(img, v->files, &d);
	else if (rc == 0)
		rc = -1;
	vmdk_desc_free(&d);
	return rc;
}

static int vmdk_read_flat(struct image *img, struct vmdk_file_extent *x,
    struct emitter *em, uint64_t vbase, unsigned char *buf)
{
	x->sub.walk = img->walk;
	return image_emit_range(&x->sub, em, buf, VMDK_WINDOW, x->offset,
	    x->sectors * VMDK_SECTOR, vbase);
}

static int vmdk_read_sparse_extent(struct image *img,
    struct vmdk_file_extent *x, struct emitter *em, uint64_t vbase)
{
	int rc;

	x->sub.walk = img->walk;
	x->v->vbase = vbase;
	rc = vmdk_read_sparse(&x->sub, x->v, em);
	vmdk_sub_findings(img, x);
	return rc;
}

/* The extents in order, each at its place on the disk. */
int vmdk_read_files(struct image *img, struct vmdk_files *f,
    struct emitter *em)
{
	unsigned char *buf = NULL;
	uint64_t vbase = 0;
	int rc = 0;

	if (f->x == NULL)
		return image_bad(img, "a descriptor file holds no disk data");
	for (size_t i = 0; i < f->n && rc == 0; i++) {
		struct vmdk_file_extent *x = &f->x[i];

		if (x->kind == VMDK_EXT_FLAT && buf == NULL &&
		    (buf = malloc(VMDK_WINDOW)) == NULL)
			rc = fail(EXIT_IO, "out of memory");
		else if (x->kind == VMDK_EXT_FLAT)
			rc = vmdk_read_flat(img, x, em, vbase, buf);
		else if (x->kind == VMDK_EXT_SPARSE)
			rc = vmdk_read_sparse_extent(img, x, em, vbase);
		vbase += x->sectors * VMDK_SECTOR;
	}
	free(buf);
	return rc;
}

void vmdk_free_files(struct image *img, struct vmdk_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct vmdk_file_extent *x = &f->x[i];

		if (x->v != NULL)
			vmdk_free(&x->sub, x->v);
		if (x->src_open)
			source_close(&x->src);
	}
	(void)img;
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->x);
	free(f);
}
