/* raw2qcow2: any disk image (a raw disk included) to qcow2, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_CLUSTER_SIZE = WRITE_OPT_FIRST_FREE, OPT_COMPAT };

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: %s [-cpv] [-o FILE] [-f FORMAT] [-l LEVEL] [-j THREADS] "
	    "[--cluster-size SIZE]\n"
	    "       [--compat 0.10|1.1] [--size SIZE] [--mem BYTES] "
	    "[--tmpdir DIR] [INPUT|-]\n", progname);
	exit(status);
}

static unsigned cluster_bits_of(const char *arg)
{
	uint64_t n = cli_size("--cluster-size", arg);
	unsigned bits;

	for (bits = QCOW2W_CLUSTER_BITS_MIN; bits <= QCOW2W_CLUSTER_BITS_MAX;
	    bits++)
		if (n == 1ull << bits)
			return bits;
	die(EXIT_USAGE, "--cluster-size: '%s' is not a power of two from "
	    "4K to 2M", arg);
}

static int version_of(const char *arg)
{
	if (strcmp(arg, "1.1") == 0 || strcmp(arg, "v3") == 0)
		return 3;
	if (strcmp(arg, "0.10") == 0 || strcmp(arg, "v2") == 0)
		return 2;
	die(EXIT_USAGE, "--compat: '%s' is neither 0.10 nor 1.1", arg);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		WRITE_LONGOPTS,
		{ "compress", no_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "cluster-size", required_argument, NULL, OPT_CLUSTER_SIZE },
		{ "compat", required_argument, NULL, OPT_COMPAT },
		{ NULL, 0, NULL, 0 },
	};
	struct qcow2_wopts q = {
		.cluster_bits = QCOW2W_CLUSTER_BITS_DEFAULT,
		.version = 3,
		.level = -1,
	};
	struct write_opts o = {
		.writer = &writer_qcow2,
		.writer_opts = &q,
		.threads = online_cores(),
		.unit = "clusters",
	};
	int c;

	cli_init(argc, argv);
	while ((c = getopt_long(argc, argv, WRITE_SHORTOPTS "cl:", longopts,
	    NULL)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 'c': q.compress = true; break;
		case 'l': q.level = cli_number("-l", optarg, 0, 9); break;
		case OPT_CLUSTER_SIZE: q.cluster_bits = cluster_bits_of(optarg); break;
		case OPT_COMPAT: q.version = version_of(optarg); break;
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
