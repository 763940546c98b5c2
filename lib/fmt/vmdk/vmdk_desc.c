/*
 * The VMDK descriptor, read line by line.  What VMware, VirtualBox, qemu,
 * vSphere NFC and FreeBSD mkimg write differs in blanks, quotes, line
 * ends and the "ddb." prefix (see img2raw(1), "Images from other tools");
 * every such line reads the same here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt/vmdk/vmdk.h"
#include "fmt/vmdk/vmdk_desc.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* [*s, *e) without blanks (and a CR) at either end. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && (is_blank((*e)[-1]) || (*e)[-1] == '\r'))
		(*e)--;
}

/* Copy [s, e) to out as a string, cut to outlen - 1; true if cut. */
static bool copy_str(char *out, size_t outlen, const char *s, const char *e)
{
	size_t n = (size_t)(e - s);
	bool cut = n >= outlen;

	if (cut)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return cut;
}

/* A value: blanks trimmed, one pair of double quotes taken off. */
static void unquote(const char **s, const char **e)
{
	const char *q;

	trim(s, e);
	if (*s < *e && **s == '"') {
		(*s)++;
		q = memchr(*s, '"', (size_t)(*e - *s));
		if (q != NULL)
			*e = q;
	}
}

static bool key_is(const char *k, const char *ke, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(ke - k) == n && strncasecmp(k, name, n) == 0;
}

/* A 32-bit hexadecimal number ("ffffffff", "0xFFFFFFFF"), whole. */
static bool parse_hex32(const char *s, const char *e, uint32_t *out)
{
	char buf[24], *end;
	unsigned long long v;

	if (s == e || copy_str(buf, sizeof buf, s, e) || buf[0] == '-' ||
	    buf[0] == '+')
		return false;
	errno = 0;
	v = strtoull(buf, &end, 16);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A decimal number at *p (blanks first), advancing *p past it. */
static bool parse_u64(const char **p, const char *e, uint64_t *out)
{
	uint64_t v = 0;
	const char *s;

	while (*p < e && is_blank(**p))
		(*p)++;
	s = *p;
	while (*p < e && **p >= '0' && **p <= '9') {
		unsigned d = (unsigned)(**p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		(*p)++;
	}
	*out = v;
	return *p > s && (*p == e || is_blank(**p));
}

static void note_bad(struct vmdk_desc *d, const char *s, const char *e,
    const char *why)
{
	char line[80];

	if (d->bad[0] != '\0')
		return;
	copy_str(line, sizeof line, s, e);
	vmdk_name_printable(line, sizeof line, line);
	snprintf(d->bad, sizeof d->bad, "%s: \"%s\"", why, line);
}

/* The word at *p up to a blank. */
static void next_word(const char **p, const char *e, char *out, size_t outlen)
{
	const char *s;

	while (*p < e && is_blank(**p))
		(*p)++;
	s = *p;
	while (*p < e && !is_blank(**p))
		(*p)++;
	copy_str(out, outlen, s, *p);
}

/*
 * ACCESS SECTORS TYPE ["NAME" [OFFSET]].  A line that breaks this grammar
 * still counts as an extent, so that its name is judged all the same.
 */
static int parse_extent(struct vmdk_desc *d, const char *s, const char *e)
{
	struct vmdk_extent_line *x;
	const char *p = s, *ns, *ne;
	int rc;

	rc = grow_array(&d->extents, d->nextents, &d->capextents,
	    sizeof *d->extents, 4, VMDK_EXTENTS_MAX * sizeof *d->extents);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		note_bad(d, s, e, "more than 65536 extents");
		return 0;
	}
	x = &d->extents[d->nextents++];
	memset(x, 0, sizeof *x);
	next_word(&p, e, x->access, sizeof x->access);
	if (!parse_u64(&p, e, &x->sectors))
		note_bad(d, s, e, "extent line without a number of sectors");
	next_word(&p, e, x->type, sizeof x->type);
	while (p < e && is_blank(*p))
		p++;
	if (p < e && *p == '"') {
		ns = ++p;
		ne = memchr(p, '"', (size_t)(e - p));
		p = ne != NULL ? ne + 1 : e;
		if (ne == NULL)
			ne = e;
		x->has_name = true;
	} else {
		ns = p;
		while (p < e && !is_blank(*p))
			p++;
		ne = p;
		x->has_name = ne > ns;
	}
	x->name_cut = copy_str(x->name, sizeof x->name, ns, ne);
	while (p < e && is_blank(*p))
		p++;
	if (p < e && !parse_u64(&p, e, &x->offset))
		note_bad(d, s, e, "extent line with more than a name and an "
		    "offset");
	d->total_sectors = x->sectors > UINT64_MAX - d->total_sectors ?
	    UINT64_MAX : d->total_sectors + x->sectors;
	return 0;
}

static bool is_extent_line(const char *s, const char *e)
{
	static const char *const access[] = { "RW", "RDONLY", "NOACCESS" };

	for (size_t i = 0; i < sizeof access / sizeof access[0]; i++) {
		size_t n = strlen(access[i]);

		if ((size_t)(e - s) > n && strncasecmp(s, access[i], n) == 0 &&
		    is_blank(s[n]))
			return true;
	}
	return false;
}

/* KEY = VALUE; "ddb." keys (and NFC's bare DDB keys) are not used. */
static void parse_key(struct vmdk_desc *d, const char *s, const char *e)
{
	const char *eq = memchr(s, '=', (size_t)(e - s));
	const char *k = s, *ke = eq, *v = eq + 1, *ve = e;

	trim(&k, &ke);
	unquote(&v, &ve);
	if (key_is(k, ke, "createType"))
		copy_str(d->create_type, sizeof d->create_type, v, ve);
	else if (key_is(k, ke, "CID"))
		d->has_cid = parse_hex32(v, ve, &d->cid);
	else if (key_is(k, ke, "parentCID")) {
		d->has_parent_cid = true;
		if (!parse_hex32(v, ve, &d->parent_cid)) {
			/* unreadable: treat as naming a parent, and say so */
			d->parent_cid = 0;
			note_bad(d, s, e, "parentCID is not a hexadecimal number");
		}
	} else if (key_is(k, ke, "parentFileNameHint"))
		copy_str(d->parent_hint, sizeof d->parent_hint, v, ve);
}

int vmdk_desc_parse(struct vmdk_desc *d, const char *text, size_t len)
{
	const char *end = memchr(text, '\0', len), *line = text;

	memset(d, 0, sizeof *d);
	if (end == NULL)
		end = text + len;
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *s = line, *e = nl != NULL ? nl : end;

		line = nl != NULL ? nl + 1 : end;
		trim(&s, &e);
		if (s == e || *s == '#')
			continue;
		if (is_extent_line(s, e)) {
			if (parse_extent(d, s, e) < 0)
				return -1;
		} else if (memchr(s, '=', (size_t)(e - s)) != NULL)
			parse_key(d, s, e);
	}
	return 0;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	free(d->extents);
	d->extents = NULL;
	d->nextents = d->capextents = 0;
}

bool vmdk_desc_has_parent(const struct vmdk_desc *d)
{
	return (d->has_parent_cid && d->parent_cid != VMDK_CID_NONE) ||
	    d->parent_hint[0] != '\0';
}

bool vmdk_name_is_bare(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strchr(name, '\\') == NULL && strstr(name, "..") == NULL;
}

void vmdk_name_printable(char *out, size_t outlen, const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (unsigned char)name[i] < 0x20 ||
		    (unsigned char)name[i] > 0x7e ? '?' : name[i];
	out[i] = '\0';
}

/* A line of the first 4 KiB whose key (before '=') is key. */
static bool has_key(const char *p, size_t len, const char *key)
{
	const char *end = p + len, *line = p;

	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *s = line, *e = nl != NULL ? nl : end;
		const char *eq = memchr(s, '=', (size_t)(e - s));

		line = nl != NULL ? nl + 1 : end;
		if (eq == NULL)
			continue;
		e = eq;
		trim(&s, &e);
		if (key_is(s, e, key))
			return true;
	}
	return false;
}

bool vmdk_looks_like_descriptor(const unsigned char *p, size_t len)
{
	static const char sig[] = VMDK_DESC_SIGNATURE;
	const char *t = (const char *)p;
	size_t n = len < 4096 ? len : 4096;

	/* a UTF-8 byte order mark and blank lines may come first */
	if (n >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0) {
		t += 3;
		n -= 3;
	}
	while (n > 0 && (is_blank(*t) || *t == '\r' || *t == '\n')) {
		t++;
		n--;
	}
	if (n >= sizeof sig - 1 && strncasecmp(t, sig, sizeof sig - 1) == 0)
		return true;
	return n >= 64 && memchr(t, 0, n) == NULL &&
	    has_key(t, n, "createType") && has_key(t, n, "version");
}
