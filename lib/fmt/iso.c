/*
 * iso: ISO 9660 and UDF media, read as the raw bytes they are.
 *
 * An ISO 9660 primary volume descriptor declares the volume's length
 * (volume space size times logical block size): an input shorter than
 * that is truncated, from a file (at open) and from a pipe (at its end).
 */
#include <string.h>

#include "fmt/fmt.h"
#include "imgpipe/err.h"

#define VRS_OFFSET 0x8000	/* volume recognition sequence: sector 16 */
#define PVD_TYPE_PRIMARY 1
#define PVD_VOLUME_BLOCKS 80	/* both-endian 32: le32 here, be32 at 84 */
#define PVD_BLOCK_SIZE 128	/* both-endian 16: le16 here, be16 at 130 */
#define PVD_LEN 136		/* what of the descriptor is needed */

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

/* The length the primary volume descriptor declares, or 0 (UDF only). */
static uint64_t iso_volume_bytes(const struct source *src)
{
	const unsigned char *d = src->head + VRS_OFFSET;

	if (src->headlen < VRS_OFFSET + PVD_LEN || d[0] != PVD_TYPE_PRIMARY ||
	    memcmp(d + 1, "CD001", 5) != 0)
		return 0;
	return (uint64_t)le32(d + PVD_VOLUME_BLOCKS) *
	    (d[PVD_BLOCK_SIZE] | d[PVD_BLOCK_SIZE + 1] << 8);
}

static int iso_check_length(struct image *img, uint64_t have)
{
	uint64_t want = iso_volume_bytes(img->src);

	if (want > have)
		return image_defect(img, FINDING_TRUNCATED, "the primary volume "
		    "descriptor declares %llu bytes, the input has only %llu",
		    (unsigned long long)want, (unsigned long long)have);
	return 0;
}

static int iso_open(struct image *img)
{
	if (raw_open(img) < 0)
		return -1;
	return img->src->size_known ? iso_check_length(img, img->src->size) : 0;
}

static int iso_read(struct image *img, struct emitter *em)
{
	if (raw_read(img, em) < 0)
		return -1;
	/* From a pipe the length is known only now. */
	return iso_check_length(img, img->virtual_size);
}

const struct format format_iso = {
	.name = "iso",
	.desc = "ISO 9660 or UDF optical disc image (passed through as raw)",
	.bid = iso_bid,
	.open = iso_open,
	.read = iso_read,
};
