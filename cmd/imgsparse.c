/* imgsparse: zero runs to holes, or a map of data and zero extents. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/sparse.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-p] [-b BLOCK] [-o FILE] [INPUT|-]\n"
	    "       %s --in-place [-b BLOCK] FILE\n"
	    "       %s --map [--json] [-b BLOCK] [INPUT|-]\n",
	    progname, progname, progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "block", required_argument, NULL, 'b' },
		{ "in-place", no_argument, NULL, 'i' },
		{ "map", no_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sparse_opts o = { .block = 4096 };
	int c, in_place = 0, map = 0, rc;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "o:b:phV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.output = optarg; break;
		case 'b': o.block = cli_size("-b", optarg); break;
		case 'i': in_place = 1; break;
		case 'm': map = 1; break;
		case 'j': o.json = 1; break;
		case 'p': o.progress = 1; break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (argc - optind > 1 || (in_place && map) ||
	    (o.json && !map) || (o.output && (in_place || map)))
		usage(EXIT_USAGE);
	if (o.block < 512 || o.block % 512 != 0 || o.block > (64u << 20))
		die(EXIT_USAGE, "-b: block must be a multiple of 512 up to 64M");
	o.input = optind < argc ? argv[optind] : NULL;
	if (in_place)
		rc = sparse_in_place(&o);
	else if (map)
		rc = sparse_map(&o);
	else
		rc = sparse_copy(&o);
	if (rc < 0)
		die_last();
	return 0;
}
