/*
 * What a file is, from its first bytes: a Linux kernel, an initramfs or
 * initrd, or a machine image (file system or partitioned disk).  Used by
 * uecsplit to give each member of a UEC tarball its role; the name only
 * breaks ties (sniff_name).
 */
#ifndef IMGPIPE_SNIFF_H
#define IMGPIPE_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/* Enough for every signature we look at (btrfs is at 0x10040). */
#define SNIFF_HEAD (256 * 1024)

enum part_role {
	ROLE_NONE,	/* nothing recognised */
	ROLE_KERNEL,
	ROLE_RAMDISK,
	ROLE_IMAGE,
	ROLE_EXTRA,	/* names only: README, loader, floppy */
};

struct sniff {
	enum part_role role;
	char what[48];	/* "bzImage", "gzip cpio newc", "ext4", "MBR disk" */
};

/*
 * Classify the first len bytes of a file (len may be less than
 * SNIFF_HEAD for a short file).  Compressed content is decompressed in
 * memory, up to a small limit, to look at what it starts with.
 */
void sniff_content(const unsigned char *head, size_t len, struct sniff *out);
/* The role a file name suggests: *vmlinuz*, *initrd*, *.img, README... */
enum part_role sniff_name(const char *name);

const char *role_name(enum part_role r);	/* "kernel", "ramdisk" ... */
const char *role_disk_format(enum part_role r);	/* "aki", "ari", "ami" */

#endif
