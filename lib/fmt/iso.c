/* iso: ISO 9660 and UDF media, read as the raw bytes they are. */
#include <string.h>

#include "fmt/fmt.h"

#define VRS_OFFSET 0x8000	/* volume recognition sequence: sector 16 */

static int iso_bid(const struct probe *pb)
{
	const unsigned char *id;

	if (pb->headlen < VRS_OFFSET + 6)
		return BID_NONE;
	id = pb->head + VRS_OFFSET + 1;
	if (memcmp(id, "CD001", 5) == 0 || memcmp(id, "BEA01", 5) == 0 ||
	    memcmp(id, "NSR02", 5) == 0 || memcmp(id, "NSR03", 5) == 0)
		return BID_SIGNATURE;
	return BID_NONE;
}

const struct format format_iso = {
	.name = "iso",
	.desc = "ISO 9660 or UDF optical disc image (passed through as raw)",
	.bid = iso_bid,
	.open = raw_open,
	.read = raw_read,
};
