/* imginfo's job: what an image really is, and whether it is safe. */
#ifndef IMGPIPE_INFO_H
#define IMGPIPE_INFO_H

#include <stdbool.h>

#define INFO_ALLOW_MAX 32

struct info_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *format;	/* -f: assert the format */
	bool json;
	bool strict;		/* fail (exit 1) when the verdict is unsafe */
	bool no_drain;		/* from a pipe, stop reading once we know */
	bool extents;		/* --extents */
	const char *allow[INFO_ALLOW_MAX];	/* finding codes to accept */
	int nallow;
};

/*
 * Every finding code imginfo reports (imginfo(1) documents each), NULL-
 * terminated: the defect classes of err.h, then the safety findings.
 */
extern const char *const info_finding_codes[];
bool info_finding_known(const char *code);

/* Prints the report; returns -1 with the error recorded on failure. */
int info_run(const struct info_opts *o);

#endif
