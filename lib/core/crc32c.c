/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
 *
 * Written here because no library we can take via pkg-config has it:
 * zlib and libdeflate have only the other CRC-32 (the gzip polynomial),
 * and Debian 12's one CRC-32C library with a .pc file, ISA-L
 * (libisal-dev), ships no static archive, which `make static` needs.
 * VHDX checksums only metadata (headers, region tables, log entries), so
 * a byte-at-a-time table is fast enough.
 */
#include <pthread.h>

#include "imgpipe/crc32c.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_fill(void)
{
	uint32_t i, c;
	int k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;

	pthread_once(&table_once, table_fill);
	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}
