/* libFuzzer harness for the OVF manifest parser (lib/manifest.c). */
#include <stdint.h>

#include "imgpipe/err.h"
#include "imgpipe/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	struct digest_set d;
	size_t i;

	err_clear();
	if (manifest_parse(&m, (const char *)data, size) == 0)
		for (i = 0; i < m.nentries; i++)
			manifest_find(&m, m.entries[i].name);
	manifest_free(&m);
	digest_set_init(&d);
	digest_set_enable(&d, DIGEST_SHA256);
	digest_set_update(&d, data, size);
	digest_set_final(&d);
	return 0;
}
