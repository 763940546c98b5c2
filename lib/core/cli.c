#include <stdio.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/outfile.h"
#include "imgpipe/size.h"

void cli_init(int argc, char **argv)
{
	const char *slash;

	if (argc > 0 && argv[0] != NULL) {
		slash = strrchr(argv[0], '/');
		progname = slash ? slash + 1 : argv[0];
	}
	signals_init();
}

void cli_version(void)
{
	printf("%s (imgpipe) %s\n", progname, IMGPIPE_VERSION);
}

uint64_t cli_size(const char *opt, const char *arg)
{
	uint64_t n;

	if (parse_size(arg, &n) < 0)
		die(EXIT_USAGE, "%s: invalid size '%s'", opt, arg);
	return n;
}
