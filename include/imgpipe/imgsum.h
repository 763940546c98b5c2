/*
 * imgsum's job: digests of the virtual disk of images, printed and
 * checked in the line formats of sha256sum (coreutils) and xxhsum.
 */
#ifndef IMGPIPE_IMGSUM_H
#define IMGPIPE_IMGSUM_H

#include <stdbool.h>
#include <stdint.h>

#include "digest.h"

struct imgsum_opts {
	const struct digest_algo *algo;	/* -a; NULL: xxh128, or per check line */
	const char *format;	/* -f, or NULL to probe */
	bool bytes;		/* --bytes: the input's bytes, not decoded */
	bool tag;		/* --tag: BSD-style lines */
	/* -c, as sha256sum -c: */
	bool ignore_missing;	/* no verdict for a file that does not exist */
	bool quiet;		/* no OK lines */
	bool status;		/* no verdicts, no warnings: the status tells */
	bool strict;		/* an improperly formatted line fails */
	bool warn;		/* warn of each improperly formatted line */
	bool progress;
	uint64_t size;		/* --size: the input's size for -p, or 0 */
	uint64_t mem;		/* stash budget, 0 for the default */
	const char *tmpdir;
	bool extents;		/* --extents */
};

/*
 * Digest each image and print one line for it (no path or "-" is stdin).
 * Errors are reported on stderr and the next file is done.  Returns the
 * exit status: 0, or the status of the first error; -1 (error recorded,
 * not reported) when writing to stdout fails.
 */
int imgsum_print(const struct imgsum_opts *o, char *const *paths, int npaths);
/*
 * Check the digest lines of each list (no list or "-" is stdin), as
 * sha256sum -c does: "NAME: OK", "NAME: FAILED", "NAME: FAILED open or
 * read", and the same warnings.  Returns the exit status: EXIT_INTEGRITY
 * when a digest did not match; else the status of the first listed file
 * that could not be digested (EXIT_IO, EXIT_REJECT); else EXIT_IO when a
 * list could not be read; else EXIT_REJECT for a list without a proper
 * line, nothing verified with --ignore-missing, or a bad line with
 * --strict; else 0.  -1 as imgsum_print when writing to stdout fails.
 */
int imgsum_check(const struct imgsum_opts *o, char *const *lists, int nlists);

#endif
