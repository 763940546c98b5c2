/* raw2vmdk: any disk image (a raw disk included) to a VMDK, file or pipe. */
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_GRAIN_SIZE = WRITE_OPT_FIRST_FREE, OPT_ADAPTER_TYPE,
	OPT_HWVERSION, OPT_TOOLSVERSION, OPT_EXTENT_NAME };

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 's', "subformat", "SUBFORMAT",
	    "streamOptimized (the default) or monolithicSparse" },
	{ 'l', "level", "N", "deflate level, 1 to 12 (default 6)" },
	{ OPT_GRAIN_SIZE, "grain-size", "SIZE",
	    "a power of two from 8K to 1M (default 64K)" },
	{ OPT_ADAPTER_TYPE, "adapter-type", "TYPE",
	    "lsilogic (the default), ide, buslogic or legacyESX" },
	{ OPT_HWVERSION, "hwversion", "N",
	    "ddb.virtualHWVersion (default 4)" },
	{ OPT_TOOLSVERSION, "toolsversion", "N",
	    "ddb.toolsVersion (default 2147483647)" },
	{ OPT_EXTENT_NAME, "extent-name", "NAME",
	    "the extent's name (default: the output's)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

/* qemu-img's -o NAME=VALUE: the options we have under our own names. */
static const struct cli_qemu_option qemu_options[] = {
	{ "subformat", "--subformat" },
	{ "adapter_type", "--adapter-type" },
	{ "hwversion", "--hwversion" },
	{ "toolsversion", "--toolsversion" },
	{ "size", "--size" },
	{ NULL, NULL },
};

static struct vmdk_wopts vmdk = {
	.grain_sectors = 128,
	.level = 6,
	.adapter_type = "lsilogic",
	.hw_version = "4",
	.tools_version = "2147483647",
};

static void take_option(int key, const char *arg)
{
	static const char *const subformats[] = { "streamOptimized",
	    "monolithicSparse", NULL };
	static const char *const adapters[] = { "lsilogic", "ide", "buslogic",
	    "legacyESX", NULL };

	switch (key) {
	case 's':
		vmdk.sparse = cli_choice("--subformat", arg, subformats) ==
		    subformats[1];
		break;
	case 'l': vmdk.level = cli_number("-l", arg, 1, 12); break;
	case OPT_GRAIN_SIZE:
		vmdk.grain_sectors = (uint32_t)(write_power_of_two(
		    "--grain-size", arg, 8192, 1u << 20, "a power of two from "
		    "8K to 1M (the specification wants more than 4K)") / 512);
		break;
	case OPT_ADAPTER_TYPE:
		vmdk.adapter_type = cli_choice("--adapter-type", arg, adapters);
		break;
	case OPT_HWVERSION:
		cli_number("--hwversion", arg, 1, 99);
		vmdk.hw_version = arg;
		break;
	case OPT_TOOLSVERSION:
		cli_number("--toolsversion", arg, 0, 2147483647);
		vmdk.tools_version = arg;
		break;
	case OPT_EXTENT_NAME: vmdk.extent_name = arg; break;
	}
}

/* The extent's name in the descriptor: the output's own, as qemu-img. */
static const char *extent_name_of(const char *output)
{
	const char *slash;

	if (output == NULL || strcmp(output, "-") == 0)
		return "disk.vmdk";
	slash = strrchr(output, '/');
	return slash ? slash + 1 : output;
}

static void name_extent(struct write_opts *o)
{
	if (vmdk.extent_name == NULL)
		vmdk.extent_name = extent_name_of(o->output);
	if (strpbrk(vmdk.extent_name, "\"\n") != NULL)
		cli_usage_error("--extent-name: a name with '\"' or a newline "
		    "cannot be written in a descriptor");
}

static const struct write_program program = {
	.summary = "Write a VMDK of any disk image (raw too), to a file or "
	    "pipe.",
	.options = options,
	.writer = &writer_vmdk,
	.writer_opts = &vmdk,
	.threaded = true,
	.unit = "grains",
	.qemu_options = qemu_options,
	.option = take_option,
	.finish = name_extent,
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
