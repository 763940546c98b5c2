/* raw2vdi: any disk image (a raw disk included) to a VDI, file or pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_UUID = WRITE_OPT_FIRST_FREE };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 's', "subformat", "SUBFORMAT",
	    "dynamic (the default), or static (fixed)" },
	{ OPT_UUID, "uuid", "UUID", "the disk's unique id (default: derived)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a VirtualBox VDI of any disk image (raw too), to a file or pipe.",
	options,
};

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "dynamic", "static",
	    "fixed", NULL };
	static unsigned char uuid[UUID_LEN];
	struct vdi_wopts v = { .fixed = false };
	struct write_opts o = {
		.writer = &writer_vdi,
		.writer_opts = &v,
		.threads = 1,
		.unit = "blocks",
	};
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 's':
			v.fixed = cli_choice("--subformat", optarg,
			    subformats) != subformats[0];
			break;
		case OPT_UUID: v.uuid = uuid_option(optarg, uuid); break;
		}
	}
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
