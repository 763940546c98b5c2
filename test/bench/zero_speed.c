/*
 * Zero detection, measured: lib/zero.c's is_zero() against a plain
 * 64-bit word loop and a byte loop, over all-zero 4 KiB blocks (the worst
 * case: every byte must be looked at).  Prints GB/s for each.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imgpipe/zero.h"

#define BLOCK 4096
#define TOTAL (8ull << 30)

static bool word_loop(const void *buf, size_t len)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	return true;
}

static bool byte_loop(const void *buf, size_t len)
{
	const volatile unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void measure(const char *name, bool (*f)(const void *, size_t),
    const unsigned char *buf, size_t buflen, uint64_t total)
{
	uint64_t done = 0, zeros = 0;
	double t = now();
	size_t off;

	while (done < total) {
		for (off = 0; off < buflen; off += BLOCK)
			zeros += f(buf + off, BLOCK);
		done += buflen;
	}
	t = now() - t;
	printf("| %-28s | %8.2f GB/s | %s\n", name, total / t / 1e9,
	    zeros == total / BLOCK ? "" : "WRONG");
}

int main(void)
{
	size_t buflen = 1 << 20;	/* stays in cache: measures the CPU */
	unsigned char *buf = calloc(1, buflen);

	if (buf == NULL)
		return 1;
	measure("is_zero (memcmp shift)", is_zero, buf, buflen, TOTAL);
	measure("64-bit word loop", word_loop, buf, buflen, TOTAL);
	measure("byte loop", byte_loop, buf, buflen, TOTAL / 8);
	free(buf);
	return 0;
}
