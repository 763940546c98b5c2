/*
 * OVF manifests (.mf): lines "SHA256(name)= hex", with or without a space
 * before '=', for SHA1, SHA256 and SHA512; and the streaming digests
 * (nettle) that check members against them.
 */
#ifndef IMGPIPE_MANIFEST_H
#define IMGPIPE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/sha1.h>
#include <nettle/sha2.h>

/* Largest manifest we read, and most entries it may hold. */
#define MANIFEST_MAX (1024 * 1024)
#define MANIFEST_ENTRIES_MAX 4096
#define DIGEST_MAX 64

enum digest_alg { DIGEST_SHA1, DIGEST_SHA256, DIGEST_SHA512, DIGEST_NALGS };

struct manifest_entry {
	char *name;
	enum digest_alg alg;
	unsigned char digest[DIGEST_MAX];
};

struct manifest {
	struct manifest_entry *entries;
	size_t nentries;
};

/*
 * Parse len bytes of manifest text.  Blank lines are skipped; any other
 * line that is not a digest line fails (EXIT_REJECT, "manifest: ...").
 * m is zeroed first; manifest_free() it either way.
 */
int manifest_parse(struct manifest *m, const char *buf, size_t len);
/* The entry for name, or NULL. */
const struct manifest_entry *manifest_find(const struct manifest *m,
    const char *name);
void manifest_free(struct manifest *m);

/* Streaming digests of one member, in any of the algorithms at once. */
struct digest_set {
	bool on[DIGEST_NALGS];
	struct sha1_ctx sha1;
	struct sha256_ctx sha256;
	struct sha512_ctx sha512;
	unsigned char out[DIGEST_NALGS][DIGEST_MAX];
};

const char *digest_alg_name(enum digest_alg alg);	/* "SHA256" */
size_t digest_alg_len(enum digest_alg alg);		/* bytes */
void digest_set_init(struct digest_set *d);		/* none on */
void digest_set_enable(struct digest_set *d, enum digest_alg alg);
void digest_set_update(struct digest_set *d, const void *buf, size_t len);
/* Fill out[] for every algorithm that is on. */
void digest_set_final(struct digest_set *d);

/*
 * Digesting on a thread of its own, while the caller goes on with the
 * bytes (ovaextract writes a member out as its SHA256 is taken): a ring of
 * buffers the caller fills in turn and hands over in order.
 *
 *	while ((buf = digest_pipe_buffer(p)) and n = fill(buf) > 0) {
 *		digest_pipe_feed(p, &set, n);	the thread digests buf
 *		use(buf, n);			meanwhile, read only
 *	}
 *	digest_pipe_wait(p);			set holds every byte fed
 *
 * A buffer comes back from digest_pipe_buffer() once it is digested and
 * the caller has asked for the next one.  Without a thread (none could
 * start) digest_pipe_feed() digests on the caller's.
 */
struct digest_pipe;

/* NULL, an error recorded, when out of memory. */
struct digest_pipe *digest_pipe_new(size_t buf_bytes);
unsigned char *digest_pipe_buffer(struct digest_pipe *p);
void digest_pipe_feed(struct digest_pipe *p, struct digest_set *d,
    size_t len);
void digest_pipe_wait(struct digest_pipe *p);
void digest_pipe_free(struct digest_pipe *p);

#endif
