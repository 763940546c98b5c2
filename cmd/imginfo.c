/* imginfo: format, sizes, features and a safety verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/info.h"

enum {
	OPT_OUTPUT = CLI_LONG_ONLY, OPT_JSON, OPT_STRICT, OPT_ALLOW, OPT_NO_DRAIN,
	OPT_EXTENTS,
};

static const char *const usage[] = {
	"[OPTION]... [FILE|-]",
	NULL,
};

static const struct cli_option options[] = {
	{ 'f', "format", "FORMAT",
	    "the image's format (default: probed)" },
	{ OPT_OUTPUT, "output", "human|json", "the report's form (default human)" },
	{ OPT_JSON, "json", NULL, "the same as --output=json" },
	{ OPT_STRICT, "strict", NULL,
	    "exit 1 when the verdict is unsafe, after the report" },
	{ OPT_ALLOW, "allow", "FINDING",
	    "accept findings with this code (repeatable)" },
	{ OPT_NO_DRAIN, "no-drain", NULL,
	    "from a pipe, stop reading once the report is known" },
	{ OPT_EXTENTS, "extents", NULL,
	    "a VMDK descriptor may open its extent files beside it" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Tell an image's format, sizes and features, and whether it is safe.",
	options,
};

/* --allow with a code we never report is a typo: say which exist. */
static noreturn void unknown_finding(const char *code)
{
	int i;

	fprintf(stderr, "%s: --allow: unknown finding '%s'; the findings are:",
	    progname, code);
	for (i = 0; info_finding_codes[i] != NULL; i++)
		fprintf(stderr, " %s", info_finding_codes[i]);
	fprintf(stderr, "\nTry '%s --help' for more information.\n",
	    progname);
	err_exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
	struct info_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case OPT_OUTPUT:
			if (strcmp(optarg, "json") == 0)
				o.json = 1;
			else if (strcmp(optarg, "human") == 0)
				o.json = 0;
			else
				cli_usage_error("--output: '%s' is neither human "
				    "nor json", optarg);
			break;
		case OPT_STRICT: o.strict = 1; break;
		case OPT_ALLOW:
			if (!info_finding_known(optarg))
				unknown_finding(optarg);
			if (o.nallow == INFO_ALLOW_MAX)
				cli_usage_error("too many --allow");
			o.allow[o.nallow++] = optarg;
			break;
		case OPT_JSON: o.json = 1; break;
		case OPT_NO_DRAIN: o.no_drain = 1; break;
		case OPT_EXTENTS: o.extents = 1; break;
		}
	}
	cli_max_operands(argc, argv, 1);
	o.input = optind < argc ? argv[optind] : NULL;
	if (o.extents && (o.input == NULL || strcmp(o.input, "-") == 0))
		die(EXIT_USAGE, "--extents opens the files a VMDK descriptor "
		    "names beside it: give the descriptor's path, not a pipe");
	if (info_run(&o) < 0)
		die_last();
	return 0;
}
