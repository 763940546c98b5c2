/* UUIDs: parsed, derived from a name (RFC 4122 section 4.3), reordered. */
#include <nettle/sha1.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/uuid.h"

/*
 * imgpipe's namespace: the version 5 UUID of the URL "imgpipe:" in the
 * RFC's URL namespace (6ba7b811-9dad-11d1-80b4-00c04fd430c8).
 */
static const unsigned char url_namespace[UUID_LEN] = {
	0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
	0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool uuid_parse(const char *text, unsigned char out[UUID_LEN])
{
	size_t i, n = 0;
	int hi, lo;

	if (strlen(text) != UUID_TEXT_LEN)
		return false;
	for (i = 0; i < UUID_TEXT_LEN; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i++] != '-')
				return false;
			continue;
		}
		hi = hexval(text[i]);
		lo = hexval(text[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[n++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	return n == UUID_LEN;
}

static void v5(const unsigned char ns[UUID_LEN], const char *name,
    unsigned char out[UUID_LEN])
{
	struct sha1_ctx ctx;
	unsigned char digest[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, UUID_LEN, ns);
	sha1_update(&ctx, strlen(name), (const uint8_t *)name);
	sha1_digest(&ctx, sizeof digest, digest);
	memcpy(out, digest, UUID_LEN);
	out[6] = (unsigned char)((out[6] & 0x0f) | 0x50);	/* version 5 */
	out[8] = (unsigned char)((out[8] & 0x3f) | 0x80);	/* RFC 4122 */
}

void uuid_from_name(const char *name, unsigned char out[UUID_LEN])
{
	unsigned char ns[UUID_LEN];

	v5(url_namespace, "imgpipe:", ns);
	v5(ns, name, out);
}

void uuid_to_guid(const unsigned char in[UUID_LEN],
    unsigned char out[UUID_LEN])
{
	static const int order[UUID_LEN] = { 3, 2, 1, 0, 5, 4, 7, 6,
	    8, 9, 10, 11, 12, 13, 14, 15 };
	unsigned char t[UUID_LEN];
	int i;

	for (i = 0; i < UUID_LEN; i++)
		t[i] = in[order[i]];
	memcpy(out, t, UUID_LEN);
}

const unsigned char *uuid_option(const char *arg,
    unsigned char out[UUID_LEN])
{
	if (!uuid_parse(arg, out))
		die(EXIT_USAGE, "--uuid: '%s' is not a UUID "
		    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", arg);
	return out;
}
