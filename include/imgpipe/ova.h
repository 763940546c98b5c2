/*
 * ovaextract's job: read an OVA (a tar of an OVF descriptor, a manifest,
 * maybe a certificate, and disk files) once, front to back, from a file or
 * a pipe, with libarchive; stream one disk out, list the disks, or extract
 * every member into a directory, checking the manifest as the bytes pass.
 */
#ifndef IMGPIPE_OVA_H
#define IMGPIPE_OVA_H

#include <stdbool.h>
#include <stdint.h>

/* Members one archive may hold. */
#define OVA_MEMBERS_MAX 4096
/*
 * Largest member, by its real size (a sparse member's is in its header):
 * what a disk may be (IMAGE_VSIZE_MAX).  A member may not be larger than
 * the OVF References declare either; both are checked from the header,
 * before a byte of the member is read.
 */
#define OVA_MEMBER_MAX (64ull << 40)
/*
 * From a pipe, members that come before the OVF descriptor are buffered
 * (memory budget, then $TMPDIR) up to this many bytes in all.
 */
#define OVA_PREFACE_MAX (64ull << 30)
/*
 * The last bytes of a disk written to standard output are held back until
 * the whole archive has been verified: a failed check leaves the stream
 * visibly truncated, not merely followed by an exit status.
 */
#define OVA_HOLDBACK (64 * 1024)

struct ova_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *output;	/* -o FILE; NULL or "-": stdout */
	const char *disk;	/* -d N (1-based) or NAME (file or disk id) */
	const char *extract_dir;	/* -x DIR */
	bool list;		/* -l */
	bool json;		/* --json with -l */
	bool no_verify;
	bool progress;
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	uint64_t mem;		/* stash budget, 0: the default */
	const char *tmpdir;
};

/* Do what o asks; -1 with the error recorded (EXIT_INTEGRITY on a check). */
int ova_run(const struct ova_opts *o);

#endif
