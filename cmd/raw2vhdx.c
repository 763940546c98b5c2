/* raw2vhdx: any disk image (a raw disk included) to a VHDX, file or pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_BLOCK_SIZE = WRITE_OPT_FIRST_FREE, OPT_LOGICAL_SECTOR,
	OPT_UUID };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 's', "subformat", "SUBFORMAT", "dynamic (the default) or fixed" },
	{ OPT_BLOCK_SIZE, "block-size", "SIZE",
	    "a power of two from 1M to 256M (default 32M)" },
	{ OPT_LOGICAL_SECTOR, "logical-sector-size", "512|4096",
	    "the disk's logical sector (default 512)" },
	{ OPT_UUID, "uuid", "UUID", "the disk's unique id (default: derived)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a VHDX of any disk image (raw too), to a file or pipe.",
	options,
};

static uint32_t block_size_of(const char *arg)
{
	uint64_t n = cli_size("--block-size", arg);

	if (n < (1u << 20) || n > (256u << 20) || (n & (n - 1)) != 0)
		cli_usage_error("--block-size: '%s' is not a power of two "
		    "from 1M to 256M", arg);
	return (uint32_t)n;
}

static uint32_t sector_size_of(const char *arg)
{
	static const char *const sizes[] = { "512", "4096", NULL };

	return (uint32_t)strtoul(cli_choice("--logical-sector-size", arg,
	    sizes), NULL, 10);
}

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "dynamic", "fixed", NULL };
	static unsigned char uuid[UUID_LEN];
	struct vhdx_wopts x = { .logical_sector = 512 };
	struct write_opts o = {
		.writer = &writer_vhdx,
		.writer_opts = &x,
		.threads = 1,
		.unit = "grains",
	};
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 's':
			x.fixed = cli_choice("--subformat", optarg,
			    subformats) == subformats[1];
			break;
		case OPT_BLOCK_SIZE: x.block_size = block_size_of(optarg); break;
		case OPT_LOGICAL_SECTOR:
			x.logical_sector = sector_size_of(optarg);
			break;
		case OPT_UUID: x.uuid = uuid_option(optarg, uuid); break;
		}
	}
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
