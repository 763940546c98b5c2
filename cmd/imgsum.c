/* imgsum: a digest of the virtual disk of images, whatever their format. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/convert.h"
#include "imgpipe/digest.h"
#include "imgpipe/err.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-p] [-a ALGO] [-f FORMAT] [--tag] [--mem BYTES] "
	    "[--tmpdir DIR] [--extents] [FILE...|-]\n"
	    "       %s [-p] [-a ALGO] [-f FORMAT] -c LIST|-\n"
	    "       %s --list-formats\n"
	    "ALGO: xxh128 (default), xxh3, xxh64, sha256, sha512\n",
	    progname, progname, progname);
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "algorithm", required_argument, NULL, 'a' },
		{ "check", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "tag", no_argument, NULL, 'T' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "list-formats", no_argument, NULL, 'L' },
		{ "extents", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct imgsum_opts o = { 0 };
	const char *check = NULL;
	int c, status;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "a:c:f:phV", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			o.algo = digest_algo_by_name(optarg);
			if (o.algo == NULL)
				die(EXIT_USAGE, "unknown algorithm '%s' (xxh128, "
				    "xxh3, xxh64, sha256, sha512)", optarg);
			break;
		case 'c': check = optarg; break;
		case 'f': o.format = optarg; break;
		case 'T': o.tag = 1; break;
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
	if (check != NULL && optind < argc)
		usage(EXIT_USAGE);
	if (o.extents && check == NULL && optind == argc)
		die(EXIT_USAGE, "--extents opens the files a VMDK descriptor "
		    "names beside it: give the descriptor's path, not a pipe");
	for (int i = optind; o.extents && i < argc; i++)
		if (strcmp(argv[i], "-") == 0)
			die(EXIT_USAGE, "--extents opens the files a VMDK "
			    "descriptor names beside it: give the descriptor's "
			    "path, not a pipe");
	status = check != NULL ? imgsum_check(&o, check)
	    : imgsum_print(&o, argv + optind, argc - optind);
	if (stdout_close() < 0 || status < 0)
		die_last();
	return status;
}
