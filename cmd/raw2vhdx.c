/* raw2vhdx: any disk image (a raw disk included) to a VHDX, file or pipe. */
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_BLOCK_SIZE = WRITE_OPT_FIRST_FREE, OPT_LOGICAL_SECTOR,
	OPT_UUID };

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

static struct vhdx_wopts vhdx = { .logical_sector = 512 };
static unsigned char uuid[UUID_LEN];

static uint32_t sector_size_of(const char *arg)
{
	static const char *const sizes[] = { "512", "4096", NULL };

	return (uint32_t)strtoul(cli_choice("--logical-sector-size", arg,
	    sizes), NULL, 10);
}

static void take_option(int key, const char *arg)
{
	static const char *const subformats[] = { "dynamic", "fixed", NULL };

	switch (key) {
	case 's':
		vhdx.fixed = cli_choice("--subformat", arg, subformats) ==
		    subformats[1];
		break;
	case OPT_BLOCK_SIZE:
		vhdx.block_size = (uint32_t)write_power_of_two("--block-size",
		    arg, 1u << 20, 256u << 20, "a power of two from 1M to 256M");
		break;
	case OPT_LOGICAL_SECTOR: vhdx.logical_sector = sector_size_of(arg); break;
	case OPT_UUID: vhdx.uuid = uuid_option(arg, uuid); break;
	}
}

static const struct write_program program = {
	.summary = "Write a VHDX of any disk image (raw too), to a file or "
	    "pipe.",
	.options = options,
	.writer = &writer_vhdx,
	.writer_opts = &vhdx,
	.unit = "grains",
	.option = take_option,
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
