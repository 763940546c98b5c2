/* img2raw: any supported image to its raw virtual disk. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/convert.h"
#include "imgpipe/err.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-p] [-f FORMAT] [-o FILE] [--mem BYTES] "
	    "[--tmpdir DIR] [INPUT|-]\n"
	    "       %s [options] --extents DESCRIPTOR.vmdk\n"
	    "       %s --list-formats\n", progname, progname, progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "list-formats", no_argument, NULL, 'L' },
		{ "extents", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct convert_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "f:o:phV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'o': o.output = optarg; break;
		case 'p': o.progress = 1; break;
		case 'm': o.mem = cli_size("--mem", optarg); break;
		case 't': o.tmpdir = optarg; break;
		case 'L': list_formats(); return 0;
		case 'E': o.extents = 1; break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(EXIT_USAGE);
	o.input = optind < argc ? argv[optind] : NULL;
	if (o.extents && (o.input == NULL || strcmp(o.input, "-") == 0))
		die(EXIT_USAGE, "--extents opens the files a VMDK descriptor "
		    "names beside it: give the descriptor's path, not a pipe");
	if (convert_to_raw(&o) < 0)
		die_last();
	return 0;
}
