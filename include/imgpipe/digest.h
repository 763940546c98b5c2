/*
 * Digests of the virtual disk (imgsum).  The digest sink is an in-order
 * sink: the emitter hands it the disk from offset 0 to the end, data as
 * bytes and zero extents as lengths, which it feeds from zero_buf, so no
 * zeros are ever read from the input.  The digest of an image equals the
 * digest xxhsum or sha256sum print for its raw disk.
 */
#ifndef IMGPIPE_DIGEST_H
#define IMGPIPE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

#define DIGEST_MAX 64			/* bytes: SHA-512 */
#define DIGEST_HEX_MAX (2 * DIGEST_MAX + 1)

enum digest_id {
	DIGEST_XXH128,	/* XXH3-128, the default */
	DIGEST_XXH3,	/* XXH3-64 */
	DIGEST_XXH64,
	DIGEST_SHA256,
	DIGEST_SHA512,
};

struct digest_algo {
	enum digest_id id;
	const char *name;	/* "xxh128", as -a takes it */
	const char *tag;	/* "XXH128", the BSD-style line prefix */
	size_t len;		/* digest bytes */
	/* xxhsum 0.8 prints XXH3-64 only as a BSD-style line. */
	bool always_tag;
	/* What the peer tool calls stdin: "-" (sha256sum) or "stdin" (xxhsum). */
	const char *stdin_name;
};

extern const struct digest_algo digest_algos[];	/* ends with a NULL name */

const struct digest_algo *digest_algo_by_name(const char *name);
const struct digest_algo *digest_algo_by_tag(const char *tag);
/* The algorithm a GNU-style line of hexlen digits means, or NULL. */
const struct digest_algo *digest_algo_by_hexlen(size_t hexlen);

struct digest_state;

struct digest_sink {
	struct sink base;
	const struct digest_algo *algo;
	struct digest_state *state;
	uint64_t pos;			/* bytes digested */
	char hex[DIGEST_HEX_MAX];	/* lower-case hex, set by finish */
};

int digest_sink_init(struct digest_sink *ds, const struct digest_algo *algo);
void digest_sink_free(struct digest_sink *ds);

/* imgsum's job: the options, and the two modes. */
struct imgsum_opts {
	const struct digest_algo *algo;	/* -a; NULL: xxh128, or per check line */
	const char *format;	/* -f, or NULL to probe */
	bool tag;		/* --tag: BSD-style lines */
	bool progress;
	uint64_t mem;		/* stash budget, 0 for the default */
	const char *tmpdir;
	bool extents;		/* --extents */
};

/*
 * Digest each image and print one line for it ("-" or NULL is stdin).
 * Errors are reported on stderr and the next file is done.  Returns the
 * exit status: 0, or the status of the first error; -1 (error recorded,
 * not reported) when writing to stdout fails.
 */
int imgsum_print(const struct imgsum_opts *o, char *const *paths, int npaths);
/*
 * Check the digest lines in list ("-" is stdin), both styles, printing
 * "NAME: OK" or "NAME: FAILED".  Returns the exit status: EXIT_INTEGRITY
 * on any mismatch, else the status of the first file that could not be
 * digested, else EXIT_REJECT when lines were improperly formatted, else 0;
 * -1 as imgsum_print when writing to stdout fails.
 */
int imgsum_check(const struct imgsum_opts *o, const char *list);
/* Flush and close stdout; a write error is EXIT_IO.  0 or -1. */
int stdout_close(void);

#endif
