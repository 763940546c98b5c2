/* imginfo: format, sizes, features and a safety verdict. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/info.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-f FORMAT] [--output human|json] [--json] [--strict] "
	    "[--allow FINDING]... [--no-drain] [--extents] [FILE|-]\n",
	    progname);
	exit(status);
}

/* --allow with a code we never report is a typo: say which exist. */
static noreturn void unknown_finding(const char *code)
{
	int i;

	fprintf(stderr, "%s: --allow: unknown finding '%s'; the findings are:",
	    progname, code);
	for (i = 0; info_finding_codes[i] != NULL; i++)
		fprintf(stderr, " %s", info_finding_codes[i]);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'O' },
		{ "json", no_argument, NULL, 'j' },
		{ "strict", no_argument, NULL, 's' },
		{ "allow", required_argument, NULL, 'a' },
		{ "no-drain", no_argument, NULL, 'n' },
		{ "extents", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct info_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, "f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.format = optarg; break;
		case 'O':
			if (strcmp(optarg, "json") == 0)
				o.json = 1;
			else if (strcmp(optarg, "human") == 0)
				o.json = 0;
			else
				usage(EXIT_USAGE);
			break;
		case 'j': o.json = 1; break;
		case 's': o.strict = 1; break;
		case 'a':
			if (!info_finding_known(optarg))
				unknown_finding(optarg);
			if (o.nallow == INFO_ALLOW_MAX)
				die(EXIT_USAGE, "too many --allow");
			o.allow[o.nallow++] = optarg;
			break;
		case 'n': o.no_drain = 1; break;
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
	if (info_run(&o) < 0)
		die_last();
	return 0;
}
