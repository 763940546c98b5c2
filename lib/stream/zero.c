#include <stdint.h>
#include <string.h>

#include "imgpipe/zero.h"

/*
 * In .bss, not .rodata where a const array goes: there it would be 1 MiB of
 * zeros stored in every program file (half of a static binary's size).
 */
__attribute__((section(".bss.zero_buf")))
const unsigned char zero_buf[ZERO_BUF_SIZE];

/*
 * Check the first 16 bytes word-wise (most data blocks fail here), then
 * compare the buffer with itself shifted by 16: glibc's memcmp is
 * vectorised, and this runs at memory bandwidth.  test/bench/zero measures
 * it against a plain word loop.
 */
bool is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t a, b;

	if (len < 16) {
		while (len--)
			if (*p++)
				return false;
		return true;
	}
	memcpy(&a, p, 8);
	memcpy(&b, p + 8, 8);
	if (a | b)
		return false;
	return memcmp(p, p + 16, len - 16) == 0;
}
