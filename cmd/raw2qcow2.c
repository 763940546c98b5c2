/* raw2qcow2: any disk image (a raw disk included) to qcow2, file or pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_CLUSTER_SIZE = WRITE_OPT_FIRST_FREE, OPT_COMPAT };

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 'c', "compress", NULL, "deflate the clusters, as qemu-img convert -c" },
	{ 'l', "level", "N", "deflate level with -c, 0 to 9 (default 6)" },
	{ OPT_CLUSTER_SIZE, "cluster-size", "SIZE",
	    "a power of two from 4K to 2M (default 64K)" },
	{ OPT_COMPAT, "compat", "1.1|0.10",
	    "qcow2 version 3 (1.1, the default) or 2 (0.10)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a qcow2 image of any disk image (raw too), to a file or pipe.",
	options,
};

/* qemu-img's -o NAME=VALUE: the options we have under our own names. */
static const struct cli_qemu_option qemu_options[] = {
	{ "compat", "--compat" },
	{ "cluster_size", "--cluster-size" },
	{ "size", "--size" },
	{ NULL, NULL },
};

static unsigned cluster_bits_of(const char *arg)
{
	uint64_t n = cli_size("--cluster-size", arg);
	unsigned bits;

	for (bits = QCOW2W_CLUSTER_BITS_MIN; bits <= QCOW2W_CLUSTER_BITS_MAX;
	    bits++)
		if (n == 1ull << bits)
			return bits;
	cli_usage_error("--cluster-size: '%s' is not a power of two from "
	    "4K to 2M", arg);
}

static int version_of(const char *arg)
{
	if (strcmp(arg, "1.1") == 0 || strcmp(arg, "v3") == 0)
		return 3;
	if (strcmp(arg, "0.10") == 0 || strcmp(arg, "v2") == 0)
		return 2;
	cli_usage_error("--compat: '%s' is neither 0.10 nor 1.1", arg);
}

int main(int argc, char **argv)
{
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
	while ((c = cli_next(argc, argv, &program)) != -1) {
		if (write_option(&o, c, optarg))
			continue;
		switch (c) {
		case 'c': q.compress = true; break;
		case 'l': q.level = cli_number("-l", optarg, 0, 9); break;
		case OPT_CLUSTER_SIZE: q.cluster_bits = cluster_bits_of(optarg); break;
		case OPT_COMPAT: q.version = version_of(optarg); break;
		}
	}
	if (o.output != NULL)
		cli_check_output_name(o.output, qemu_options);
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
