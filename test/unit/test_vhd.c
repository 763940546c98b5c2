/* Unit tests of the VHD and VHDX layout helpers: CRC-32C, CHS geometry,
 * GUID bytes. */
#include <string.h>

#include "fmt/vhd/vhd.h"
#include "fmt/vhdx/vhdx.h"
#include "imgpipe/crc32c.h"
#include "unit.h"

static void test_crc32c(void)
{
	/* RFC 3720 B.4 check values */
	unsigned char buf[32];

	CHECK(crc32c(0, "123456789", 9) == 0xe3069283u);
	memset(buf, 0, sizeof buf);
	CHECK(crc32c(0, buf, sizeof buf) == 0x8a9136aau);
	memset(buf, 0xff, sizeof buf);
	CHECK(crc32c(0, buf, sizeof buf) == 0x62a8ab43u);
	CHECK(crc32c(crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);
	CHECK(crc32c(0, "", 0) == 0);
}

static void test_geometry(void)
{
	struct vhd_chs g = vhd_geometry(64ull * 1024 * 1024 / 512);

	/* 64 MiB: 963/8/17, which qemu-img and VirtualBox write too */
	CHECK(g.cylinders == 963 && g.heads == 8 && g.spt == 17);
	g = vhd_geometry(5ull * 1024 * 1024 * 1024 / 512);
	/* 5 GiB: 10402/16/63 (an Azure footer quoted in qemu 558d8eb7f3) */
	CHECK(g.cylinders == 10402 && g.heads == 16 && g.spt == 63);
	g = vhd_geometry(3ull << 40 >> 9);
	CHECK(g.cylinders == 65535 && g.heads == 16 && g.spt == 255);
	CHECK(vhd_bitmap_size(2u << 20) == 512);
	CHECK(vhd_bitmap_size(512) == 512);
}

static void test_guid(void)
{
	unsigned char b[16];
	static const unsigned char want[16] = { 0x06, 0xa2, 0x7c, 0x8b,
	    0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f,
	    0x88, 0x6e };

	CHECK(vhdx_guid_bytes(VHDX_GUID_METADATA, b) &&
	    memcmp(b, want, 16) == 0);
	CHECK(!vhdx_guid_bytes("8B7CA206-4790", b));
	CHECK(!vhdx_guid_bytes("XB7CA206-4790-4B9A-B8FE-575F050F886E", b));
	CHECK(vhdx_chunk_ratio(512, 32u << 20) == 128);
	CHECK(vhdx_bat_index(128, 128) == 129);
	CHECK(vhdx_desc_sectors(0) == 1 && vhdx_desc_sectors(126) == 1 &&
	    vhdx_desc_sectors(127) == 2);
}

int main(void)
{
	test_crc32c();
	test_geometry();
	test_guid();
	UNIT_DONE();
}
