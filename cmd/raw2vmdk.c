/* raw2vmdk: any disk image (a raw disk included) to a VMDK, file or pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_GRAIN_SIZE = WRITE_OPT_FIRST_FREE, OPT_ADAPTER_TYPE,
	OPT_HWVERSION, OPT_TOOLSVERSION, OPT_EXTENT_NAME };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

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

static const struct cli_program program = {
	usage,
	"Write a VMDK of any disk image (raw too), to a file or pipe.",
	options,
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

static uint32_t grain_sectors_of(const char *arg)
{
	uint64_t n = cli_size("--grain-size", arg);

	if (n < 8192 || n > (1u << 20) || (n & (n - 1)) != 0)
		cli_usage_error("--grain-size: '%s' is not a power of two from "
		    "8K to 1M (the specification wants more than 4K)", arg);
	return n / 512;
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

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "streamOptimized",
	    "monolithicSparse", NULL };
	static const char *const adapters[] = { "lsilogic", "ide", "buslogic",
	    "legacyESX", NULL };
	struct vmdk_wopts v = {
		.grain_sectors = 128,
		.level = 6,
		.adapter_type = "lsilogic",
		.hw_version = "4",
		.tools_version = "2147483647",
	};
	struct write_opts o = {
		.writer = &writer_vmdk,
		.writer_opts = &v,
		.threads = online_cores(),
		.unit = "grains",
	};
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 's':
			v.sparse = cli_choice("--subformat", optarg, subformats)
			    == subformats[1];
			break;
		case 'l': v.level = cli_number("-l", optarg, 1, 12); break;
		case OPT_GRAIN_SIZE: v.grain_sectors = grain_sectors_of(optarg); break;
		case OPT_ADAPTER_TYPE:
			v.adapter_type = cli_choice("--adapter-type", optarg,
			    adapters);
			break;
		case OPT_HWVERSION:
			cli_number("--hwversion", optarg, 1, 99);
			v.hw_version = optarg;
			break;
		case OPT_TOOLSVERSION:
			cli_number("--toolsversion", optarg, 0, 2147483647);
			v.tools_version = optarg;
			break;
		case OPT_EXTENT_NAME: v.extent_name = optarg; break;
		}
	}
	if (o.output != NULL)
		cli_check_output_name(o.output, qemu_options);
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (v.extent_name == NULL)
		v.extent_name = extent_name_of(o.output);
	if (strpbrk(v.extent_name, "\"\n") != NULL)
		cli_usage_error("--extent-name: a name with '\"' or a newline "
		    "cannot be written in a descriptor");
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
