/*
 * A VMDK descriptor file: text naming the files that hold the disk
 * (monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs, ...).
 * Nothing it names is opened; the image is refused with the names.
 */
#include <stdio.h>
#include <string.h>

#include "fmt/vmdk/vmdk_desc.h"
#include "fmt/vmdk/vmdk_int.h"
#include "imgpipe/err.h"

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

/* A text descriptor: the disk is in the files it names. */
int vmdk_open_descriptor_file(struct image *img)
{
	struct vmdk_desc d;
	int rc;

	if (vmdk_desc_parse(&d, (const char *)img->src->head,
	    img->src->headlen) < 0)
		return -1;
	snprintf(img->subformat, sizeof img->subformat, "%.47s",
	    d.create_type[0] ? d.create_type : "descriptor");
	if (d.total_sectors <= IMAGE_VSIZE_MAX / VMDK_SECTOR)
		img->virtual_size = d.total_sectors * VMDK_SECTOR;
	rc = vmdk_desc_has_parent(&d) ? vmdk_reject_parent(img, &d) : 0;
	if (rc == 0)
		rc = vmdk_reject_extents(img, &d, "descriptor file");
	vmdk_desc_free(&d);
	return rc;
}
