/* raw2vmdk: any disk image (a raw disk included) to a VMDK, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_GRAIN_SIZE = WRITE_OPT_FIRST_FREE, OPT_ADAPTER_TYPE,
	OPT_HWVERSION, OPT_TOOLSVERSION, OPT_EXTENT_NAME };

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-pv] [-o FILE] [-f FORMAT] [-s SUBFORMAT] [-l LEVEL] "
	    "[-j THREADS]\n"
	    "       [--grain-size SIZE] [--adapter-type TYPE] "
	    "[--hwversion N] [--toolsversion N]\n"
	    "       [--extent-name NAME] [--size SIZE] [--mem BYTES] "
	    "[--tmpdir DIR] [INPUT|-]\n", progname);
	exit(status);
}

static uint32_t grain_sectors_of(const char *arg)
{
	uint64_t n = cli_size("--grain-size", arg);

	if (n < 8192 || n > (1u << 20) || (n & (n - 1)) != 0)
		die(EXIT_USAGE, "--grain-size: '%s' is not a power of two from "
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
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ "subformat", required_argument, NULL, 's' },
		{ "level", required_argument, NULL, 'l' },
		{ "grain-size", required_argument, NULL, OPT_GRAIN_SIZE },
		{ "adapter-type", required_argument, NULL, OPT_ADAPTER_TYPE },
		{ "hwversion", required_argument, NULL, OPT_HWVERSION },
		{ "toolsversion", required_argument, NULL, OPT_TOOLSVERSION },
		{ "extent-name", required_argument, NULL, OPT_EXTENT_NAME },
		{ NULL, 0, NULL, 0 },
	};
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
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS "s:l:", longopts,
	    NULL)) != -1) {
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
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (!write_operands(&o, argc, argv, optind))
		usage(EXIT_USAGE);
	if (v.extent_name == NULL)
		v.extent_name = extent_name_of(o.output);
	if (strpbrk(v.extent_name, "\"\n") != NULL)
		die(EXIT_USAGE, "--extent-name: a name with '\"' or a newline "
		    "cannot be written in a descriptor");
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
