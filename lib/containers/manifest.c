/* OVF manifest parsing and streaming digests (see imgpipe/manifest.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/manifest.h"

static const struct {
	const char *name;
	size_t len;
} algs[DIGEST_NALGS] = {
	[DIGEST_SHA1] = { "SHA1", SHA1_DIGEST_SIZE },
	[DIGEST_SHA256] = { "SHA256", SHA256_DIGEST_SIZE },
	[DIGEST_SHA512] = { "SHA512", SHA512_DIGEST_SIZE },
};

const char *digest_alg_name(enum digest_alg alg) { return algs[alg].name; }
size_t digest_alg_len(enum digest_alg alg) { return algs[alg].len; }

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2*len hex digits, then only blanks. */
static bool parse_hex(const char *s, const char *end, unsigned char *out,
    size_t len)
{
	size_t i;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	if ((size_t)(end - s) != 2 * len)
		return false;
	for (i = 0; i < len; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hexval((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = hi << 4 | lo;
	}
	return true;
}

static int line_bad(int lineno, const char *why)
{
	return fail(EXIT_REJECT, "manifest: line %d: %s", lineno, why);
}

/* "ALG(name)= hex" or "ALG (name) = hex": one entry. */
static int parse_line(struct manifest *m, const char *s, const char *end,
    int lineno)
{
	struct manifest_entry *e = &m->entries[m->nentries];
	const char *open, *close, *eq;
	int a;

	open = memchr(s, '(', end - s);
	for (eq = end; eq > s && eq[-1] != '='; eq--)
		;
	if (open == NULL || eq == s)
		return line_bad(lineno, "not a digest line");
	for (close = eq - 1; close > open && (close[-1] == ' ' ||
	    close[-1] == '\t'); close--)
		;
	if (close <= open + 1 || close[-1] != ')')
		return line_bad(lineno, "not a digest line");
	close--;
	for (a = 0; a < DIGEST_NALGS; a++) {
		size_t n = strlen(algs[a].name);
		const char *p = s + n;

		if ((size_t)(open - s) < n || strncasecmp(s, algs[a].name, n))
			continue;
		while (p < open && (*p == ' ' || *p == '\t'))
			p++;
		if (p == open)
			break;
	}
	if (a == DIGEST_NALGS)
		return line_bad(lineno, "unknown digest algorithm (SHA1, "
		    "SHA256 and SHA512 are read)");
	e->alg = a;
	if (!parse_hex(eq, end, e->digest, algs[a].len))
		return line_bad(lineno, "the digest is not the right number "
		    "of hex digits");
	e->name = strndup(open + 1, close - open - 1);
	if (e->name == NULL)
		return fail(EXIT_IO, "out of memory");
	if (memchr(e->name, '\0', close - open - 1) != NULL ||
	    manifest_find(m, e->name) != NULL) {
		free(e->name);
		return line_bad(lineno, "a name is listed twice or holds a "
		    "NUL byte");
	}
	m->nentries++;
	return 0;
}

int manifest_parse(struct manifest *m, const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len, *nl, *p;
	int lineno = 0;

	memset(m, 0, sizeof *m);
	if (len > MANIFEST_MAX)
		return fail(EXIT_REJECT, "manifest: %zu bytes is more than "
		    "the %d allowed", len, MANIFEST_MAX);
	m->entries = calloc(MANIFEST_ENTRIES_MAX, sizeof *m->entries);
	if (m->entries == NULL)
		return fail(EXIT_IO, "out of memory");
	for (; s < end; s = nl + 1) {
		nl = memchr(s, '\n', end - s);
		if (nl == NULL)
			nl = end;
		lineno++;
		for (p = s; p < nl && isspace((unsigned char)*p); p++)
			;
		if (p == nl)
			continue;
		if (m->nentries == MANIFEST_ENTRIES_MAX)
			return line_bad(lineno, "too many entries");
		if (parse_line(m, p, nl, lineno) < 0)
			return -1;
	}
	return 0;
}

const struct manifest_entry *manifest_find(const struct manifest *m,
    const char *name)
{
	size_t i;

	for (i = 0; i < m->nentries; i++)
		if (strcmp(m->entries[i].name, name) == 0)
			return &m->entries[i];
	return NULL;
}

void manifest_free(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nentries; i++)
		free(m->entries[i].name);
	free(m->entries);
	memset(m, 0, sizeof *m);
}

void digest_set_init(struct digest_set *d)
{
	memset(d->on, 0, sizeof d->on);
}

void digest_set_enable(struct digest_set *d, enum digest_alg alg)
{
	if (d->on[alg])
		return;
	d->on[alg] = true;
	switch (alg) {
	case DIGEST_SHA1: sha1_init(&d->sha1); break;
	case DIGEST_SHA256: sha256_init(&d->sha256); break;
	default: sha512_init(&d->sha512); break;
	}
}

void digest_set_update(struct digest_set *d, const void *buf, size_t len)
{
	if (d->on[DIGEST_SHA1])
		sha1_update(&d->sha1, len, buf);
	if (d->on[DIGEST_SHA256])
		sha256_update(&d->sha256, len, buf);
	if (d->on[DIGEST_SHA512])
		sha512_update(&d->sha512, len, buf);
}

void digest_set_final(struct digest_set *d)
{
	if (d->on[DIGEST_SHA1])
		sha1_digest(&d->sha1, SHA1_DIGEST_SIZE, d->out[DIGEST_SHA1]);
	if (d->on[DIGEST_SHA256])
		sha256_digest(&d->sha256, SHA256_DIGEST_SIZE,
		    d->out[DIGEST_SHA256]);
	if (d->on[DIGEST_SHA512])
		sha512_digest(&d->sha512, SHA512_DIGEST_SIZE,
		    d->out[DIGEST_SHA512]);
}
