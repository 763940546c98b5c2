/*
 * libFuzzer harness for uecsplit: the content sniffer on the raw bytes,
 * then the whole job on them as a tarball (listing, and --image to
 * /dev/null through a 64 KiB stash so held-back parts spill).
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/sniff.h"
#include "imgpipe/uec.h"

static void run_uec(int fd, enum part_role want)
{
	char path[64];
	struct uec_opts o = { 0 };

	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	o.input = path;
	o.want = want;
	o.output = want != ROLE_NONE ? "/dev/null" : NULL;
	o.mem = 64 * 1024;
	err_clear();
	uec_split(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sniff s;
	int fd;

	sniff_content(data, size, &s);
	fd = memfd_create("fuzz-uec", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		run_uec(fd, ROLE_NONE);
		run_uec(fd, ROLE_IMAGE);
	}
	close(fd);
	return 0;
}
