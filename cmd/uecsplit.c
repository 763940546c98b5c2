/* uecsplit: a UEC tarball into its kernel, ramdisk and machine image. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uec.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-p] [-C DIR] [--json] [--glance NAME] [--mem BYTES] "
	    "[--tmpdir DIR] [INPUT|-]\n"
	    "       %s [-p] --kernel|--ramdisk|--image [-o FILE] [INPUT|-]\n",
	    progname, progname);
	exit(status);
}

static void want(struct uec_opts *o, enum part_role r)
{
	if (o->want != ROLE_NONE && o->want != r)
		die(EXIT_USAGE, "--kernel, --ramdisk and --image exclude "
		    "each other");
	o->want = r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "directory", required_argument, NULL, 'C' },
		{ "kernel", no_argument, NULL, 'K' },
		{ "ramdisk", no_argument, NULL, 'R' },
		{ "image", no_argument, NULL, 'I' },
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "glance", required_argument, NULL, 'g' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct uec_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "C:o:phV", longopts, NULL)) != -1) {
		switch (c) {
		case 'C': o.dir = optarg; break;
		case 'K': want(&o, ROLE_KERNEL); break;
		case 'R': want(&o, ROLE_RAMDISK); break;
		case 'I': want(&o, ROLE_IMAGE); break;
		case 'o': o.output = optarg; break;
		case 'j': o.json = 1; break;
		case 'g': o.glance = optarg; break;
		case 'p': o.progress = 1; break;
		case 'm': o.mem = cli_size("--mem", optarg); break;
		case 't': o.tmpdir = optarg; break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(EXIT_USAGE);
	if (o.want != ROLE_NONE && (o.dir || o.json || o.glance))
		die(EXIT_USAGE, "--%s writes the part to stdout: it takes no "
		    "-C, --json or --glance", role_name(o.want));
	if (o.output && o.want == ROLE_NONE)
		die(EXIT_USAGE, "-o writes one part: add --kernel, --ramdisk "
		    "or --image (or use -C DIR)");
	o.input = optind < argc ? argv[optind] : NULL;
	if (uec_split(&o) < 0)
		die_last();
	return 0;
}
