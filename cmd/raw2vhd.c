/* raw2vhd: any disk image (a raw disk included) to a VHD, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_AZURE = WRITE_OPT_FIRST_FREE, OPT_BLOCK_SIZE, OPT_UUID };

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-pv] [-o FILE] [-j THREADS] [-f FORMAT] [-s fixed|dynamic] "
	    "[--azure]\n"
	    "       [--block-size SIZE] [--uuid UUID] [--size SIZE] "
	    "[--mem BYTES] [--tmpdir DIR]\n"
	    "       [INPUT|-]\n", progname);
	exit(status);
}

static uint32_t block_size_of(const char *arg)
{
	uint64_t n = cli_size("--block-size", arg);

	if (n < (512u << 10) || n > (2u << 20) || (n & (n - 1)) != 0)
		die(EXIT_USAGE, "--block-size: '%s' is not 512K, 1M or 2M", arg);
	return (uint32_t)n;
}

int main(int argc, char **argv)
{
	static const char *const subformats[] = { "fixed", "dynamic", NULL };
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ "subformat", required_argument, NULL, 's' },
		{ "azure", no_argument, NULL, OPT_AZURE },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ NULL, 0, NULL, 0 },
	};
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
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS "s:", longopts,
	    NULL)) != -1) {
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
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (!write_operands(&o, argc, argv, optind))
		usage(EXIT_USAGE);
	if (v.azure && v.dynamic)
		die(EXIT_USAGE, "--azure: Azure takes fixed VHDs only");
	if (block_given && !v.dynamic)
		die(EXIT_USAGE, "--block-size: only a dynamic VHD has blocks");
	if (v.dynamic)
		o.unit = "blocks";
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
