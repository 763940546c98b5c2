/*
 * raw2ploop: any disk image (a raw disk included) to a Parallels/ploop
 * image, file or pipe.
 */
#include <stdio.h>
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a Parallels/ploop v2 image of any disk image (raw too), to a file or pipe.",
	options,
};

int main(int argc, char **argv)
{
	struct write_opts o = {
		.writer = &writer_ploop,
		.threads = 1,
		.unit = "clusters",
	};
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		}
	}
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
