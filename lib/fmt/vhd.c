/* vhd: Microsoft Virtual Hard Disk (qemu-img's "vpc"). */
#include <string.h>

#include "fmt.h"

#define VHD_TYPE_FIXED 2

/* The checksum is the one's complement of the byte sum, itself excluded. */
static uint32_t vhd_checksum(const unsigned char *p, size_t len, size_t skip)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (i < skip || i >= skip + 4)
			sum += p[i];
	return ~sum;
}

bool vhd_fixed_footer(const unsigned char *p, uint64_t data_len)
{
	return memcmp(p, "conectix", 8) == 0 &&
	    be32(p + 60) == VHD_TYPE_FIXED &&
	    be64(p + 48) == data_len &&
	    be32(p + 64) == vhd_checksum(p, 512, 64);
}
