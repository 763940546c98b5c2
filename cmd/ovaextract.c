/* ovaextract: stream a disk out of an OVA, verifying its manifest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/ova.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-p] [-d N|NAME] [--no-verify] [-o FILE] "
	    "[--mem BYTES] [--tmpdir DIR] [INPUT|-]\n"
	    "       %s -l [--json] [INPUT|-]\n"
	    "       %s -x DIR [--no-verify] [INPUT|-]\n",
	    progname, progname, progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "disk", required_argument, NULL, 'd' },
		{ "extract", required_argument, NULL, 'x' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'J' },
		{ "output", required_argument, NULL, 'o' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ova_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "ld:x:o:phV", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case 'l': o.list = 1; break;
		case 'd': o.disk = optarg; break;
		case 'x': o.extract_dir = optarg; break;
		case 'N': o.no_verify = 1; break;
		case 'J': o.json = 1; break;
		case 'o': o.output = optarg; break;
		case 'p': o.progress = 1; break;
		case 'm': o.mem = cli_size("--mem", optarg); break;
		case 't': o.tmpdir = optarg; break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (argc - optind > 1 || (o.list + (o.extract_dir != NULL) +
	    (o.disk != NULL || o.output != NULL)) > 1 || (o.json && !o.list))
		usage(EXIT_USAGE);
	o.input = optind < argc ? argv[optind] : NULL;
	if (ova_run(&o) < 0)
		die_last();
	return 0;
}
