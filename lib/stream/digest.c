/*
 * The digest sink: XXH3-128, XXH3-64, XXH64, XXH32 (libxxhash), MD5,
 * SHA-1, SHA-2 (nettle).
 */
#include <nettle/md5.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>

#include "imgpipe/digest.h"
#include "imgpipe/err.h"
#include "imgpipe/zero.h"

/*
 * Zero extents are hashed from the start of zero_buf in pieces this big:
 * small enough to stay in the L1/L2 cache, large enough to amortise the
 * call.  test/bench/imgsum.sh measures the rate over zeros.
 */
#define DIGEST_ZERO_CHUNK (64 * 1024)

const struct digest_algo digest_algos[] = {
	{ DIGEST_XXH128, "xxh128", "XXH128", 16, false, "stdin" },
	{ DIGEST_XXH3, "xxh3", "XXH3", 8, true, "stdin" },
	{ DIGEST_XXH64, "xxh64", "XXH64", 8, false, "stdin" },
	{ DIGEST_SHA256, "sha256", "SHA256", 32, false, "-" },
	{ DIGEST_SHA512, "sha512", "SHA512", 64, false, "-" },
	{ DIGEST_XXH32, "xxh32", "XXH32", 4, false, "stdin" },
	{ DIGEST_MD5, "md5", "MD5", 16, false, "-" },
	{ DIGEST_SHA1, "sha1", "SHA1", 20, false, "-" },
	{ 0, NULL, NULL, 0, false, NULL },
};

typedef XXH_errorcode (*xxh3_update_fn)(XXH3_state_t *, const void *, size_t);

struct digest_state {
	union {
		XXH3_state_t *xxh3;	/* xxh128 and xxh3 */
		XXH64_state_t *xxh64;
		XXH32_state_t *xxh32;
		struct md5_ctx md5;
		struct sha1_ctx sha1;
		struct sha256_ctx sha256;
		struct sha512_ctx sha512;
	} u;
	xxh3_update_fn xxh3_update;	/* the widest XXH3 this CPU runs */
};

const struct digest_algo *digest_algo_by_name(const char *name)
{
	const struct digest_algo *a;

	for (a = digest_algos; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

const struct digest_algo *digest_algo_by_tag(const char *tag)
{
	const struct digest_algo *a;

	for (a = digest_algos; a->name != NULL; a++)
		if (strcmp(a->tag, tag) == 0)
			return a;
	return NULL;
}

/* As xxhsum -c does: 16 digits without a tag is XXH64, not XXH3. */
const struct digest_algo *digest_algo_by_hexlen(size_t hexlen)
{
	switch (hexlen) {
	case 32: return &digest_algos[DIGEST_XXH128];
	case 8: return &digest_algos[DIGEST_XXH32];
	case 16: return &digest_algos[DIGEST_XXH64];
	case 40: return &digest_algos[DIGEST_SHA1];
	case 64: return &digest_algos[DIGEST_SHA256];
	case 128: return &digest_algos[DIGEST_SHA512];
	}
	return NULL;
}

/*
 * XXH3 at the machine's full width.  libxxhash's plain XXH3 entry points
 * are built for baseline x86-64 (SSE2); Debian's shared library also
 * exports the x86 dispatch ones (xxh_x86dispatch.h), which pick AVX2 or
 * AVX-512 at run time as xxhsum does: 2-3x the rate on long inputs, the
 * same digest.  The static archive (libxxhash.a, make static) lacks them,
 * so they are weak references: null there, and the plain ones are used.
 */
#pragma weak XXH3_128bits_update_dispatch
#pragma weak XXH3_64bits_update_dispatch

static xxh3_update_fn xxh3_update_fn_for(enum digest_id id)
{
	if (id == DIGEST_XXH128)
		return XXH3_128bits_update_dispatch != NULL ?
		    XXH3_128bits_update_dispatch : XXH3_128bits_update;
	return XXH3_64bits_update_dispatch != NULL ?
	    XXH3_64bits_update_dispatch : XXH3_64bits_update;
}

static void digest_update(struct digest_sink *ds, const void *buf, size_t len)
{
	struct digest_state *s = ds->state;

	switch (ds->algo->id) {
	case DIGEST_XXH128:
	case DIGEST_XXH3: s->xxh3_update(s->u.xxh3, buf, len); break;
	case DIGEST_XXH64: XXH64_update(s->u.xxh64, buf, len); break;
	case DIGEST_SHA256: sha256_update(&s->u.sha256, len, buf); break;
	case DIGEST_SHA512: sha512_update(&s->u.sha512, len, buf); break;
	case DIGEST_XXH32: XXH32_update(s->u.xxh32, buf, len); break;
	case DIGEST_MD5: md5_update(&s->u.md5, len, buf); break;
	case DIGEST_SHA1: sha1_update(&s->u.sha1, len, buf); break;
	}
	ds->pos += len;
}

static void hex_encode(const unsigned char *p, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[p[i] >> 4];
		hex[2 * i + 1] = digits[p[i] & 15];
	}
	hex[2 * len] = '\0';
}

/* The canonical forms are big-endian: what xxhsum prints by default. */
static void digest_final(struct digest_sink *ds)
{
	struct digest_state *s = ds->state;
	unsigned char out[DIGEST_MAX];
	XXH128_canonical_t c128;
	XXH64_canonical_t c64;
	XXH32_canonical_t c32;

	switch (ds->algo->id) {
	case DIGEST_XXH128:
		XXH128_canonicalFromHash(&c128, XXH3_128bits_digest(s->u.xxh3));
		memcpy(out, c128.digest, sizeof c128.digest);
		break;
	case DIGEST_XXH3:
		XXH64_canonicalFromHash(&c64, XXH3_64bits_digest(s->u.xxh3));
		memcpy(out, c64.digest, sizeof c64.digest);
		break;
	case DIGEST_XXH64:
		XXH64_canonicalFromHash(&c64, XXH64_digest(s->u.xxh64));
		memcpy(out, c64.digest, sizeof c64.digest);
		break;
	case DIGEST_SHA256:
		sha256_digest(&s->u.sha256, SHA256_DIGEST_SIZE, out);
		break;
	case DIGEST_SHA512:
		sha512_digest(&s->u.sha512, SHA512_DIGEST_SIZE, out);
		break;
	case DIGEST_XXH32:
		XXH32_canonicalFromHash(&c32, XXH32_digest(s->u.xxh32));
		memcpy(out, c32.digest, sizeof c32.digest);
		break;
	case DIGEST_MD5: md5_digest(&s->u.md5, MD5_DIGEST_SIZE, out); break;
	case DIGEST_SHA1: sha1_digest(&s->u.sha1, SHA1_DIGEST_SIZE, out); break;
	}
	hex_encode(out, ds->algo->len, ds->hex);
}

static int check_order(struct digest_sink *ds, uint64_t off)
{
	if (off != ds->pos)
		return fail(EXIT_IO, "internal error: digest fed at %llu, "
		    "expected %llu", (unsigned long long)off,
		    (unsigned long long)ds->pos);
	return 0;
}

static int digest_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	struct digest_sink *ds = (struct digest_sink *)sk;

	if (check_order(ds, off) < 0)
		return -1;
	digest_update(ds, buf, len);
	return 0;
}

static int digest_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	struct digest_sink *ds = (struct digest_sink *)sk;

	if (check_order(ds, off) < 0)
		return -1;
	while (len > 0) {
		size_t n = len < DIGEST_ZERO_CHUNK ? len : DIGEST_ZERO_CHUNK;

		digest_update(ds, zero_buf, n);
		len -= n;
	}
	return 0;
}

static int digest_finish(struct sink *sk, uint64_t size)
{
	struct digest_sink *ds = (struct digest_sink *)sk;

	if (ds->pos != size)
		return fail(EXIT_IO, "internal error: digest ended at %llu of "
		    "%llu", (unsigned long long)ds->pos,
		    (unsigned long long)size);
	digest_final(ds);
	return 0;
}

static int digest_state_init(struct digest_sink *ds)
{
	struct digest_state *s = ds->state;

	switch (ds->algo->id) {
	case DIGEST_XXH128:
	case DIGEST_XXH3:
		s->u.xxh3 = XXH3_createState();
		if (s->u.xxh3 == NULL)
			return fail(EXIT_IO, "out of memory");
		s->xxh3_update = xxh3_update_fn_for(ds->algo->id);
		if (ds->algo->id == DIGEST_XXH128)
			XXH3_128bits_reset(s->u.xxh3);
		else
			XXH3_64bits_reset(s->u.xxh3);
		break;
	case DIGEST_XXH64:
		s->u.xxh64 = XXH64_createState();
		if (s->u.xxh64 == NULL)
			return fail(EXIT_IO, "out of memory");
		XXH64_reset(s->u.xxh64, 0);
		break;
	case DIGEST_SHA256: sha256_init(&s->u.sha256); break;
	case DIGEST_SHA512: sha512_init(&s->u.sha512); break;
	case DIGEST_XXH32:
		s->u.xxh32 = XXH32_createState();
		if (s->u.xxh32 == NULL)
			return fail(EXIT_IO, "out of memory");
		XXH32_reset(s->u.xxh32, 0);
		break;
	case DIGEST_MD5: md5_init(&s->u.md5); break;
	case DIGEST_SHA1: sha1_init(&s->u.sha1); break;
	}
	return 0;
}

int digest_sink_init(struct digest_sink *ds, const struct digest_algo *algo)
{
	memset(ds, 0, sizeof *ds);
	ds->base.in_order = true;
	/*
	 * Zeros cost the hash the same from zero_buf as from the data, so
	 * scanning data for zero blocks would only add a pass over memory.
	 * Zero extents still come from the readers' maps and holes.
	 */
	ds->base.no_zero_split = true;
	ds->base.write = digest_write;
	ds->base.zero = digest_zero;
	ds->base.finish = digest_finish;
	ds->algo = algo;
	ds->state = calloc(1, sizeof *ds->state);
	if (ds->state == NULL)
		return fail(EXIT_IO, "out of memory");
	if (digest_state_init(ds) < 0) {
		free(ds->state);
		ds->state = NULL;
		return -1;
	}
	return 0;
}

void digest_sink_free(struct digest_sink *ds)
{
	if (ds->state == NULL)
		return;
	if (ds->algo->id == DIGEST_XXH128 || ds->algo->id == DIGEST_XXH3)
		XXH3_freeState(ds->state->u.xxh3);
	else if (ds->algo->id == DIGEST_XXH64)
		XXH64_freeState(ds->state->u.xxh64);
	else if (ds->algo->id == DIGEST_XXH32)
		XXH32_freeState(ds->state->u.xxh32);
	free(ds->state);
	ds->state = NULL;
}
