#include <stdio.h>
#include <stdlib.h>
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

long cli_number(const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || n < lo || n > hi)
		die(EXIT_USAGE, "%s: '%s' is not a number from %ld to %ld", opt,
		    arg, lo, hi);
	return n;
}

const char *cli_choice(const char *opt, const char *arg,
    const char *const *choices)
{
	size_t i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(arg, choices[i]) == 0)
			return choices[i];
	fprintf(stderr, "%s: %s: '%s' is not one of:", progname, opt, arg);
	for (i = 0; choices[i] != NULL; i++)
		fprintf(stderr, " %s", choices[i]);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}
