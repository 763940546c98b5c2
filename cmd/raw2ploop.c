/*
 * raw2ploop: any disk image (a raw disk included) to a Parallels/ploop
 * image, file or pipe.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-pv] [-o FILE] [-j THREADS] [-f FORMAT] [--size SIZE] "
	    "[--mem BYTES] [--tmpdir DIR]\n"
	    "       [INPUT|-]\n", progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct write_opts o = {
		.writer = &writer_ploop,
		.threads = 1,
		.unit = "clusters",
	};
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS, longopts,
	    NULL)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
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
