/* raw2vdi: any disk image (a raw disk included) to a VDI, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_UUID = WRITE_OPT_FIRST_FREE };

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-pv] [-o FILE] [-j THREADS] [-f FORMAT] [-s dynamic|static|fixed] "
	    "[--uuid UUID] [--size SIZE]\n"
	    "       [--mem BYTES] [--tmpdir DIR] [INPUT|-]\n", progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "dynamic", "static",
	    "fixed", NULL };
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ "subformat", required_argument, NULL, 's' },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ NULL, 0, NULL, 0 },
	};
	static unsigned char uuid[UUID_LEN];
	struct vdi_wopts v = { .fixed = false };
	struct write_opts o = {
		.writer = &writer_vdi,
		.writer_opts = &v,
		.threads = 1,
		.unit = "blocks",
	};
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS "s:", longopts,
	    NULL)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 's':
			v.fixed = cli_choice("--subformat", optarg,
			    subformats) != subformats[0];
			break;
		case OPT_UUID: v.uuid = uuid_option(optarg, uuid); break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (!write_operands(&o, argc, argv, optind))
		usage(EXIT_USAGE);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
