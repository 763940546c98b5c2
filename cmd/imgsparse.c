/* imgsparse: zero runs to holes, or a map of data and zero extents. */
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/sparse.h"

enum { OPT_IN_PLACE = CLI_LONG_ONLY, OPT_MAP, OPT_JSON, OPT_SIZE };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	"--in-place [-b BLOCK] FILE",
	"--map [--json] [-b BLOCK] [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	{ 'o', "output", "FILE",
	    "write to FILE (complete or not at all), not stdout" },
	{ 'b', "block", "SIZE",
	    "the zero-detection block, a multiple of 512 (default 4K)" },
	{ OPT_IN_PLACE, "in-place", NULL,
	    "punch holes into FILE's zero blocks; its bytes stay" },
	{ OPT_MAP, "map", NULL, "print the data and zero extents instead" },
	{ OPT_JSON, "json", NULL, "with --map: qemu-img map's JSON" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_SIZE, "size", "SIZE", "the input's size, for -p through a pipe" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Copy a raw disk with its all-zero blocks as holes, or map them.",
	options,
};

static void check_combination(const struct sparse_opts *o, int in_place,
    int map)
{
	if (in_place && map)
		cli_usage_error("--in-place and --map exclude each other");
	if (o->json && !map)
		cli_usage_error("--json goes with --map");
	if (o->output && in_place)
		cli_usage_error("--in-place writes FILE itself: it takes no -o");
	if (o->output && map)
		cli_usage_error("--map prints to stdout: it takes no -o");
	if (o->block < 512 || o->block % 512 != 0 || o->block > (64u << 20))
		cli_usage_error("-b: block must be a multiple of 512 up to 64M");
}

int main(int argc, char **argv)
{
	struct sparse_opts o = { .block = 4096 };
	int c, in_place = 0, map = 0, rc;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'o': o.output = optarg; break;
		case 'b': o.block = cli_size("-b", optarg); break;
		case OPT_IN_PLACE: in_place = 1; break;
		case OPT_MAP: map = 1; break;
		case OPT_JSON: o.json = 1; break;
		case 'p': o.progress = 1; break;
		case OPT_SIZE: o.size = cli_size("--size", optarg); break;
		}
	}
	cli_max_operands(argc, argv, 1);
	check_combination(&o, in_place, map);
	o.input = optind < argc ? argv[optind] : NULL;
	if (in_place && o.input == NULL)
		cli_usage_error("--in-place needs a FILE");
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
