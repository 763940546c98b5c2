/* raw2vhd: any disk image (a raw disk included) to a VHD, file or pipe. */
#include "imgpipe/cli.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_AZURE = WRITE_OPT_FIRST_FREE, OPT_BLOCK_SIZE, OPT_UUID };

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

static struct vhd_wopts vhd = { .block_size = 0 };
static unsigned char uuid[UUID_LEN];
static bool block_given;

static void take_option(int key, const char *arg)
{
	static const char *const subformats[] = { "fixed", "dynamic", NULL };

	switch (key) {
	case 's':
		vhd.dynamic = cli_choice("--subformat", arg, subformats) ==
		    subformats[1];
		break;
	case OPT_AZURE: vhd.azure = true; break;
	case OPT_BLOCK_SIZE:
		vhd.block_size = (uint32_t)write_power_of_two("--block-size",
		    arg, 512u << 10, 2u << 20, "512K, 1M or 2M");
		block_given = true;
		break;
	case OPT_UUID: vhd.uuid = uuid_option(arg, uuid); break;
	}
}

static void check_subformat(struct write_opts *o)
{
	if (vhd.azure && vhd.dynamic)
		cli_usage_error("--azure: Azure takes fixed VHDs only");
	if (block_given && !vhd.dynamic)
		cli_usage_error("--block-size: only a dynamic VHD has blocks");
	if (vhd.dynamic)
		o->unit = "blocks";
}

static const struct write_program program = {
	.summary = "Write a VHD of any disk image (raw too), to a file or "
	    "pipe.",
	.options = options,
	.writer = &writer_vhd,
	.writer_opts = &vhd,
	.unit = "grains",
	.option = take_option,
	.finish = check_subformat,
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
