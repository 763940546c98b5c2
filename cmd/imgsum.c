/* imgsum: a digest of the virtual disk of images, whatever their format. */
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/convert.h"
#include "imgpipe/imgsum.h"
#include "imgpipe/err.h"

enum {
	OPT_BYTES = CLI_LONG_ONLY, OPT_TAG, OPT_IGNORE_MISSING, OPT_STATUS,
	OPT_STRICT, OPT_SIZE, OPT_MEM, OPT_TMPDIR, OPT_LIST_FORMATS, OPT_EXTENTS,
};

static const char *const usage[] = {
	"[OPTION]... [FILE]...",
	"-c [OPTION]... [LIST]...",
	"--list-formats",
	NULL,
};

static const struct cli_option options[] = {
	{ 'a', "algorithm", "ALGO",
	    "xxh128 (default), xxh{3,64,32}, md5, sha{1,256,512}" },
	{ 'c', "check", NULL, "check the digests listed in the LISTs (or stdin)" },
	{ 'f', "format", "FORMAT",
	    "the images' format (default: probed)" },
	{ OPT_BYTES, "bytes", NULL,
	    "digest the bytes as they are, as sha256sum does" },
	{ OPT_TAG, "tag", NULL, "print BSD-style lines: XXH128 (FILE) = HEX" },
	{ OPT_IGNORE_MISSING, "ignore-missing", NULL,
	    "with -c: say nothing of listed files that do not exist" },
	{ 'q', "quiet", NULL, "with -c: print no OK lines" },
	{ OPT_STATUS, "status", NULL,
	    "with -c: print nothing; the exit status tells" },
	{ OPT_STRICT, "strict", NULL,
	    "with -c: an improperly formatted line is an error" },
	{ 'w', "warn", NULL, "with -c: warn of improperly formatted lines" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_SIZE, "size", "SIZE", "the input's size, for -p through a pipe" },
	{ OPT_MEM, "mem", "SIZE",
	    "memory for data out of order (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR",
	    "where it spills beyond --mem (default $TMPDIR, /tmp)" },
	{ OPT_LIST_FORMATS, "list-formats", NULL,
	    "list the formats read, with the Image service's names" },
	{ OPT_EXTENTS, "extents", NULL,
	    "a VMDK descriptor may open its extent files beside it" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Print or check digests of the virtual disks of images, whatever "
	"their format.",
	options,
};

static void check_only(const struct imgsum_opts *o, bool check)
{
	if (!check && (o->quiet || o->status || o->strict || o->warn ||
	    o->ignore_missing))
		cli_usage_error("--ignore-missing, --quiet, --status, --strict "
		    "and --warn go with -c");
	if (check && o->tag)
		cli_usage_error("--tag prints digests: it does not go with -c");
}

/* --extents opens files beside a descriptor: it needs the descriptor's path. */
static void extents_need_paths(int n, char *const *paths)
{
	int i;

	for (i = 0; i < n || n == 0; i++)
		if (n == 0 || strcmp(paths[i], "-") == 0)
			cli_usage_error("--extents opens the files a VMDK "
			    "descriptor names beside it: give the descriptor's "
			    "path, not a pipe");
}

int main(int argc, char **argv)
{
	struct imgsum_opts o = { 0 };
	int c, status, list = 0;
	bool check = false;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'a':
			o.algo = digest_algo_by_name(optarg);
			if (o.algo == NULL)
				cli_usage_error("unknown algorithm '%s' (xxh128, "
				    "xxh3, xxh64, xxh32, md5, sha1, sha256, "
				    "sha512)", optarg);
			break;
		case 'c': check = true; break;
		case 'f': o.format = optarg; break;
		case OPT_BYTES: o.bytes = true; break;
		case OPT_TAG: o.tag = true; break;
		case OPT_IGNORE_MISSING: o.ignore_missing = true; break;
		case 'q': o.quiet = true; break;
		case OPT_STATUS: o.status = true; break;
		case OPT_STRICT: o.strict = true; break;
		case 'w': o.warn = true; break;
		case 'p': o.progress = true; break;
		case OPT_SIZE: o.size = cli_size("--size", optarg); break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		case OPT_LIST_FORMATS: list = 1; break;
		case OPT_EXTENTS: o.extents = true; break;
		}
	}
	if (list) {
		cli_max_operands(argc, argv, 0);
		list_formats();
		return 0;
	}
	if (o.bytes && o.format != NULL)
		cli_usage_error("--bytes digests the bytes as they are: it "
		    "takes no -f");
	check_only(&o, check);
	if (o.extents && !check)
		extents_need_paths(argc - optind, argv + optind);
	status = check ? imgsum_check(&o, argv + optind, argc - optind)
	    : imgsum_print(&o, argv + optind, argc - optind);
	if (status < 0)
		die_last();
	err_exit(status);
}
