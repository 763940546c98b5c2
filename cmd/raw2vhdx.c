/* raw2vhdx: any disk image (a raw disk included) to a VHDX, file or pipe. */
#include <getopt.h>
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

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-pv] [-o FILE] [-j THREADS] [-f FORMAT] [-s dynamic|fixed] "
	    "[--block-size SIZE]\n"
	    "       [--logical-sector-size 512|4096] [--uuid UUID] "
	    "[--size SIZE] [--mem BYTES]\n"
	    "       [--tmpdir DIR] [INPUT|-]\n", progname);
	exit(status);
}

static uint32_t block_size_of(const char *arg)
{
	uint64_t n = cli_size("--block-size", arg);

	if (n < (1u << 20) || n > (256u << 20) || (n & (n - 1)) != 0)
		die(EXIT_USAGE, "--block-size: '%s' is not a power of two "
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
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ "subformat", required_argument, NULL, 's' },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ "logical-sector-size", required_argument, NULL,
		    OPT_LOGICAL_SECTOR },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ NULL, 0, NULL, 0 },
	};
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
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS "s:", longopts,
	    NULL)) != -1) {
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
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	if (!write_operands(&o, argc, argv, optind))
		usage(EXIT_USAGE);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
