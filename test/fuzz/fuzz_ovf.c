/* libFuzzer harness for the OVF descriptor parser (lib/ovf.c). */
#include <stdint.h>
#include <stdio.h>

#include "imgpipe/err.h"
#include "imgpipe/ovf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ovf o;
	size_t i;
	char buf[32];

	err_clear();
	if (ovf_parse(&o, (const char *)data, size) == 0) {
		/* Touch what -l prints. */
		for (i = 0; i < o.ndisks; i++)
			if (o.disks[i].file >= 0)
				snprintf(buf, sizeof buf, "%s %llu",
				    o.files[o.disks[i].file].href,
				    (unsigned long long)o.disks[i].capacity);
		for (i = 0; i < o.nfiles; i++)
			ovf_file_by_href(&o, o.files[i].href);
	}
	ovf_free(&o);
	return 0;
}
