/* CRC-32C (Castagnoli), the checksum of VHDX (MS-VHDX 2.2). */
#ifndef IMGPIPE_CRC32C_H
#define IMGPIPE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue crc (0 to start) over len bytes: crc32c(crc32c(0, a), b) is
 * the CRC of a followed by b.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
