/* img2raw: any supported image to its raw virtual disk. */
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/convert.h"
#include "imgpipe/err.h"

enum { OPT_SIZE = CLI_LONG_ONLY, OPT_MEM, OPT_TMPDIR, OPT_LIST_FORMATS, OPT_EXTENTS };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	"[OPTION]... --extents DESCRIPTOR.vmdk",
	"--list-formats",
	NULL,
};

static const struct cli_option options[] = {
	{ 'f', "format", "FORMAT",
	    "the input's format (default: probed; see --list-formats)" },
	{ 'o', "output", "FILE",
	    "write to FILE (complete or not at all), not stdout" },
	{ 'j', "threads", "N",
	    "inflating threads (default: the online processors)" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_SIZE, "size", "SIZE", "the input's size, for -p through a pipe" },
	{ OPT_MEM, "mem", "SIZE",
	    "memory for data out of order (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR",
	    "where it spills beyond --mem (default $TMPDIR, /tmp)" },
	{ OPT_EXTENTS, "extents", NULL,
	    "a VMDK descriptor may open its extent files beside it" },
	{ OPT_LIST_FORMATS, "list-formats", NULL,
	    "list the formats read, with the Image service's names" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write the raw virtual disk of an image in any supported format.",
	options,
};

int main(int argc, char **argv)
{
	struct convert_opts o = { 0 };
	int c, list = 0;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'o': o.output = optarg; break;
		case 'j': o.threads = (int)cli_number("-j", optarg, 1, 256); break;
		case 'p': o.progress = 1; break;
		case OPT_SIZE: o.size = cli_size("--size", optarg); break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		case OPT_LIST_FORMATS: list = 1; break;
		case OPT_EXTENTS: o.extents = 1; break;
		}
	}
	cli_max_operands(argc, argv, list ? 0 : 1);
	if (list) {
		list_formats();
		return 0;
	}
	o.input = optind < argc ? argv[optind] : NULL;
	if (o.extents && (o.input == NULL || strcmp(o.input, "-") == 0))
		die(EXIT_USAGE, "--extents opens the files a VMDK descriptor "
		    "names beside it: give the descriptor's path, not a pipe");
	if (convert_to_raw(&o) < 0)
		die_last();
	return 0;
}
