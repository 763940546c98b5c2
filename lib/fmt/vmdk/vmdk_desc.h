/*
 * The VMDK descriptor: text, embedded in a sparse extent or a file of its
 * own.  Parsed as tolerantly as VMware and qemu read it: blanks around
 * keys and values, trailing blanks, CRLF, quoted or bare values, comments,
 * DDB keys with or without "ddb."; unknown keys and lines are ignored.
 */
#ifndef IMGPIPE_FMT_VMDK_DESC_H
#define IMGPIPE_FMT_VMDK_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMDK_NAME_MAX 256		/* an extent file name, as we keep it */
#define VMDK_EXTENTS_MAX 65536		/* a 64 TiB disk in 2 GB extents */

/* "RW 4192256 SPARSE "disk-s001.vmdk"" or "RW 9766 FLAT "x-flat.vmdk" 0" */
struct vmdk_extent_line {
	char access[12];		/* RW, RDONLY, NOACCESS */
	uint64_t sectors;
	char type[16];			/* SPARSE, FLAT, VMFS, ZERO, ... */
	char name[VMDK_NAME_MAX];	/* as written; "" when none */
	bool has_name;
	bool name_cut;			/* longer than VMDK_NAME_MAX - 1 */
	uint64_t offset;		/* FLAT: sectors into the file */
};

struct vmdk_desc {
	char create_type[64];
	bool has_cid;
	uint32_t cid;
	bool has_parent_cid;
	uint32_t parent_cid;
	char parent_hint[VMDK_NAME_MAX];	/* parentFileNameHint, or "" */
	struct vmdk_extent_line *extents;
	size_t nextents, capextents;
	uint64_t total_sectors;		/* the extents' sum, capped */
	char bad[160];			/* the first line we could not read */
};

/*
 * Parse text (len bytes; stops at a NUL).  0, or -1 out of memory (the
 * error recorded).  A line that breaks the grammar of a key we use
 * (parentCID that is not hexadecimal, an extent line without a number
 * of sectors) is described in d->bad; the caller decides.
 */
int vmdk_desc_parse(struct vmdk_desc *d, const char *text, size_t len);
void vmdk_desc_free(struct vmdk_desc *d);
/* Does the descriptor say there is a parent disk? */
bool vmdk_desc_has_parent(const struct vmdk_desc *d);
/* A name with no directory in it: not empty, no '/', '\\', "..". */
bool vmdk_name_is_bare(const char *name);
/* name for a message: non-printable bytes as '?', in out. */
void vmdk_name_printable(char *out, size_t outlen, const char *name);
/* Does p (len bytes) read as a descriptor file? For the probe. */
bool vmdk_looks_like_descriptor(const unsigned char *p, size_t len);

#endif
