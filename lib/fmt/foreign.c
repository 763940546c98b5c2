/*
 * Containers imgpipe recognises but does not read: every signature with a
 * probe in QEMU's block drivers that has no reader here (Bochs, cloop,
 * DMG, QCOW version 1, VMware's COWD, LUKS), and archives that are not
 * disks (tar, OVA, Docker and OCI image archives).  Probing refuses them,
 * naming them, instead of passing their container bytes off as a raw
 * disk; -f raw copies them as they are.  imginfo names them the same way.
 */
#include <archive.h>
#include <archive_entry.h>
#include <string.h>

#include "fmt/fmt.h"
#include "imgpipe/err.h"

#define FOREIGN_TAIL 512	/* DMG's koly trailer: the last 512 bytes */

static const struct foreign foreign_formats[] = {
	{ "bochs", "unsupported-format", "a Bochs disk image" },
	{ "cloop", "unsupported-format", "a cloop compressed loop image" },
	{ "dmg", "unsupported-format", "an Apple disk image (DMG)" },
	{ "qcow", "unsupported-format", "a QCOW version 1 image" },
	{ "cowd", "unsupported-format",
	    "a VMware COWD sparse disk (ESX 2 and GSX)" },
	{ "luks", "encryption", "a LUKS-encrypted volume, whose content "
	    "cannot be read" },
	{ "tar", "not-a-disk", "a tar archive, not a virtual-machine disk" },
	{ "ova", "archive", "an OVA archive (extract its disks with "
	    "ovaextract)" },
	{ "docker-archive", "not-a-disk", "a Docker image archive, not a "
	    "virtual-machine disk" },
	{ "oci-archive", "not-a-disk", "an OCI image layout archive, not a "
	    "virtual-machine disk" },
};

static const struct foreign *foreign_named(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof foreign_formats / sizeof foreign_formats[0];
	    i++)
		if (strcmp(foreign_formats[i].name, name) == 0)
			return &foreign_formats[i];
	return NULL;
}

static bool head_is(const unsigned char *h, size_t len, size_t off,
    const void *magic, size_t mlen)
{
	return len >= off + mlen && memcmp(h + off, magic, mlen) == 0;
}

/* QEMU block/bochs.c: the magic, then "Redolog" (growing, v1 or v2). */
static bool is_bochs(const unsigned char *h, size_t len)
{
	return head_is(h, len, 0, "Bochs Virtual HD Image", 23) &&
	    head_is(h, len, 32, "Redolog", 8);
}

/* QEMU block/cloop.c: the shell preamble of a V2.0 image. */
static bool is_cloop(const unsigned char *h, size_t len)
{
	static const char preamble[] = "#!/bin/sh\n#V2.0 Format\n"
	    "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

	return head_is(h, len, 0, preamble, sizeof preamble - 1);
}

/* QEMU block/qcow.c: "QFI\xfb", version 1 (qcow2 reads 2 and 3). */
static bool is_qcow1(const unsigned char *h, size_t len)
{
	return head_is(h, len, 0, "QFI\xfb", 4) && len >= 8 && be32(h + 4) == 1;
}

/* QEMU block/vmdk.c: VMDK3_MAGIC, the COWDisk header of ESX 2 / GSX. */
static bool is_cowd(const unsigned char *h, size_t len)
{
	return head_is(h, len, 0, "COWD", 4);
}

/* QEMU block/crypto.c (qcrypto_block_luks_has_format): LUKS magic. */
static bool is_luks(const unsigned char *h, size_t len)
{
	return head_is(h, len, 0, "LUKS\xba\xbe", 6);
}

/* QEMU block/dmg.c: a UDIF image ends in its 512-byte "koly" trailer. */
static bool is_dmg_trailer(const unsigned char *tail, size_t taillen)
{
	return taillen >= FOREIGN_TAIL &&
	    memcmp(tail + taillen - FOREIGN_TAIL, "koly", 4) == 0;
}

/* A tar (ustar magic at 257): its first names tell Docker, OCI, OVA. */
static const char *tar_kind(const unsigned char *h, size_t len)
{
	struct archive *a;
	struct archive_entry *e;
	const char *kind = "tar", *name;
	bool manifest = false, layer = false;

	if (!head_is(h, len, 257, "ustar", 5))
		return NULL;
	a = archive_read_new();
	if (a == NULL)
		return kind;
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, h, len) != ARCHIVE_OK) {
		archive_read_free(a);
		return kind;
	}
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (name == NULL)
			continue;
		if (strcmp(name, "oci-layout") == 0) {
			kind = "oci-archive";
			break;
		}
		if (strcmp(name, "manifest.json") == 0 ||
		    strcmp(name, "repositories") == 0)
			manifest = true;
		if (strstr(name, "layer.tar") != NULL ||
		    strncmp(name, "blobs/sha256/", 13) == 0)
			layer = true;
		if (strstr(name, ".ovf") != NULL)
			kind = "ova";
	}
	if (strcmp(kind, "oci-archive") != 0 && (manifest || layer))
		kind = "docker-archive";
	archive_read_free(a);
	return kind;
}

const struct foreign *format_foreign_head(const unsigned char *h, size_t len)
{
	const char *t;

	if (is_bochs(h, len))
		return foreign_named("bochs");
	if (is_cloop(h, len))
		return foreign_named("cloop");
	if (is_qcow1(h, len))
		return foreign_named("qcow");
	if (is_cowd(h, len))
		return foreign_named("cowd");
	if (is_luks(h, len))
		return foreign_named("luks");
	t = tar_kind(h, len);
	return t != NULL ? foreign_named(t) : NULL;
}

const struct foreign *format_foreign_trailer(const unsigned char *tail,
    size_t taillen)
{
	return is_dmg_trailer(tail, taillen) ? foreign_named("dmg") : NULL;
}

const struct foreign *format_foreign(struct source *src)
{
	unsigned char tail[FOREIGN_TAIL];
	const struct foreign *f = format_foreign_head(src->head, src->headlen);

	if (f != NULL || !src->seekable || !src->size_known ||
	    src->size < FOREIGN_TAIL)
		return f;
	if (source_read_at(src, tail, sizeof tail, src->size - sizeof tail,
	    "trailer") == 0)
		f = format_foreign_trailer(tail, sizeof tail);
	err_clear();
	return f;
}

int format_refuse_foreign(const struct foreign *f)
{
	return fail_code(EXIT_REJECT, f->code, "%s: the input is %s, which "
	    "imgpipe does not read; -f raw copies its bytes as they are",
	    f->name, f->text);
}
