/* Unit tests of the writers' UUIDs: parsing, version 5, GUID order. */
#include <string.h>

#include "imgpipe/uuid.h"
#include "unit.h"

int main(void)
{
	static const unsigned char want[UUID_LEN] = {
		0x3b, 0xf5, 0xef, 0x1b, 0xba, 0x5b, 0x53, 0xb8,
		0x88, 0x39, 0x31, 0x12, 0x06, 0x75, 0x61, 0x6f,
	};
	unsigned char u[UUID_LEN], g[UUID_LEN];

	/* python3: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, 'imgpipe:'), 'test') */
	uuid_from_name("test", u);
	CHECK(memcmp(u, want, UUID_LEN) == 0);
	CHECK(uuid_parse("3bf5ef1b-ba5b-53b8-8839-31120675616f", g));
	CHECK(memcmp(g, want, UUID_LEN) == 0);
	CHECK(uuid_parse("3BF5EF1B-BA5B-53B8-8839-31120675616F", g));
	CHECK(memcmp(g, want, UUID_LEN) == 0);
	CHECK(!uuid_parse("3bf5ef1b-ba5b-53b8-8839-31120675616", g));
	CHECK(!uuid_parse("3bf5ef1b-ba5b-53b8-8839-31120675616f0", g));
	CHECK(!uuid_parse("3bf5ef1bxba5b-53b8-8839-31120675616f", g));
	CHECK(!uuid_parse("3bf5ef1b-ba5b-53b8-8839-31120675616g", g));
	uuid_to_guid(want, g);
	CHECK(g[0] == 0x1b && g[3] == 0x3b && g[4] == 0x5b && g[5] == 0xba &&
	    g[6] == 0xb8 && g[7] == 0x53 && memcmp(g + 8, want + 8, 8) == 0);
	UNIT_DONE();
}
