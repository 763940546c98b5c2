/*
 * raw2ploop: any disk image (a raw disk included) to a Parallels/ploop
 * image, file or pipe.
 */
#include "imgpipe/cli.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct write_program program = {
	.summary = "Write a Parallels/ploop v2 image of any disk image (raw "
	    "too), to a file or pipe.",
	.options = options,
	.writer = &writer_ploop,
	.unit = "clusters",
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
