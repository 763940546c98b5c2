/* raw2vhd: any disk image (a raw disk included) to a VHD, file or pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_AZURE = WRITE_OPT_FIRST_FREE, OPT_BLOCK_SIZE, OPT_UUID };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 's', "subformat", "SUBFORMAT", "fixed (the default) or dynamic" },
	{ OPT_AZURE, "azure", NULL,
	    "a fixed VHD as Azure takes it (size a whole MiB)" },
	{ OPT_BLOCK_SIZE, "block-size", "SIZE",
	    "a dynamic VHD's block: 512K, 1M or 2M (default 2M)" },
	{ OPT_UUID, "uuid", "UUID", "the disk's unique id (default: derived)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a VHD of any disk image (raw too), to a file or pipe.",
	options,
};

static uint32_t block_size_of(const char *arg)
{
	uint64_t n = cli_size("--block-size", arg);

	if (n < (512u << 10) || n > (2u << 20) || (n & (n - 1)) != 0)
		cli_usage_error("--block-size: '%s' is not 512K, 1M or 2M", arg);
	return (uint32_t)n;
}

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "fixed", "dynamic", NULL };
	static unsigned char uuid[UUID_LEN];
	struct vhd_wopts v = { .block_size = 0 };
	struct write_opts o = {
		.writer = &writer_vhd,
		.writer_opts = &v,
		.threads = 1,
		.unit = "grains",
	};
	bool block_given = false;
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 's':
			v.dynamic = cli_choice("--subformat", optarg,
			    subformats) == subformats[1];
			break;
		case OPT_AZURE: v.azure = true; break;
		case OPT_BLOCK_SIZE:
			v.block_size = block_size_of(optarg);
			block_given = true;
			break;
		case OPT_UUID: v.uuid = uuid_option(optarg, uuid); break;
		}
	}
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (v.azure && v.dynamic)
		cli_usage_error("--azure: Azure takes fixed VHDs only");
	if (block_given && !v.dynamic)
		cli_usage_error("--block-size: only a dynamic VHD has blocks");
	if (v.dynamic)
		o.unit = "blocks";
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
