/* raw2vmdk: any disk image (a raw disk included) to a VMDK, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

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
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "subformat", required_argument, NULL, 's' },
		{ "level", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 'j' },
		{ "grain-size", required_argument, NULL, 'G' },
		{ "adapter-type", required_argument, NULL, 'A' },
		{ "hwversion", required_argument, NULL, 'H' },
		{ "toolsversion", required_argument, NULL, 'T' },
		{ "extent-name", required_argument, NULL, 'E' },
		{ "size", required_argument, NULL, 'S' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
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
	while ((c = getopt_long(argc, argv, "o:f:s:l:j:pvhV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'o': o.output = optarg; break;
		case 'f': o.format = optarg; break;
		case 's':
			v.sparse = cli_choice("--subformat", optarg, subformats)
			    == subformats[1];
			break;
		case 'l': v.level = cli_number("-l", optarg, 1, 12); break;
		case 'j': o.threads = cli_number("-j", optarg, 1, 256); break;
		case 'G': v.grain_sectors = grain_sectors_of(optarg); break;
		case 'A':
			v.adapter_type = cli_choice("--adapter-type", optarg,
			    adapters);
			break;
		case 'H':
			v.hw_version = optarg;
			cli_number("--hwversion", optarg, 1, 99);
			break;
		case 'T':
			v.tools_version = optarg;
			cli_number("--toolsversion", optarg, 0, 2147483647);
			break;
		case 'E': v.extent_name = optarg; break;
		case 'S':
			o.size = cli_size("--size", optarg);
			o.size_given = true;
			break;
		case 'p': o.progress = true; break;
		case 'm': o.mem = cli_size("--mem", optarg); break;
		case 't': o.tmpdir = optarg; break;
		case 'v': o.stats = true; break;
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (argc - optind > 1)
		usage(EXIT_USAGE);
	o.input = optind < argc ? argv[optind] : NULL;
	if (v.extent_name == NULL)
		v.extent_name = extent_name_of(o.output);
	if (strpbrk(v.extent_name, "\"\n") != NULL)
		die(EXIT_USAGE, "--extent-name: a name with '\"' or a newline "
		    "cannot be written in a descriptor");
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
