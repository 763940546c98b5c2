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
	DIGEST_XXH32,
	DIGEST_MD5,
	DIGEST_SHA1,
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
/*
 * The algorithm a GNU-style line of hexlen digits means, or NULL: as
 * xxhsum -c reads them (32 digits are XXH128, 16 are XXH64, 8 XXH32),
 * and 40, 64 and 128 are SHA-1, SHA-256 and SHA-512.
 */
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

#endif
