/*
 * uecsplit's job: read a UEC tarball (kernel, ramdisk and machine image,
 * optionally compressed) once, front to back, and give each member a role
 * by its content first and its name second (sniff.h).
 */
#ifndef IMGPIPE_UEC_H
#define IMGPIPE_UEC_H

#include <stdbool.h>
#include <stdint.h>

#include "sniff.h"

/*
 * Largest member, by its real size (a sparse member's is in its header,
 * checked before a byte of it is read): what a disk may be.
 */
#define UEC_MEMBER_MAX (64ull << 40)

struct uec_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *dir;	/* -C: write the parts here, or NULL */
	enum part_role want;	/* --kernel/--ramdisk/--image: that part to
				   stdout; ROLE_NONE: list the parts */
	const char *output;	/* -o: the part to this file, not stdout */
	bool json;		/* the listing as JSON */
	const char *glance;	/* --glance NAME, or NULL */
	bool progress;
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	uint64_t mem;		/* stash budget, 0 for the default */
	const char *tmpdir;
};

/*
 * Split (or list) the tarball.  A part that must go to stdout but whose
 * role is not settled when it starts (its name disagrees with its content,
 * so a later member could win the role) waits in the stash: memory up to
 * the budget, then $TMPDIR.
 */
int uec_split(const struct uec_opts *o);

#endif
