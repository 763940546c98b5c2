/* raw2qcow2: any disk image (a raw disk included) to qcow2, file or pipe. */
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_CLUSTER_SIZE = WRITE_OPT_FIRST_FREE, OPT_COMPAT };

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 'c', "compress", NULL, "deflate the clusters, as qemu-img convert -c" },
	{ 'l', "level", "N", "deflate level with -c, 0 to 12 (default 1)" },
	{ OPT_CLUSTER_SIZE, "cluster-size", "SIZE",
	    "a power of two from 4K to 2M (default 64K)" },
	{ OPT_COMPAT, "compat", "1.1|0.10",
	    "qcow2 version 3 (1.1, the default) or 2 (0.10)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

/* qemu-img's -o NAME=VALUE: the options we have under our own names. */
static const struct cli_qemu_option qemu_options[] = {
	{ "compat", "--compat" },
	{ "cluster_size", "--cluster-size" },
	{ "size", "--size" },
	{ NULL, NULL },
};

static struct qcow2_wopts qcow2 = {
	.cluster_bits = QCOW2W_CLUSTER_BITS_DEFAULT,
	.version = 3,
	.level = -1,
};

static unsigned cluster_bits_of(const char *arg)
{
	uint64_t n = write_power_of_two("--cluster-size", arg,
	    1ull << QCOW2W_CLUSTER_BITS_MIN, 1ull << QCOW2W_CLUSTER_BITS_MAX,
	    "a power of two from 4K to 2M");
	unsigned bits = QCOW2W_CLUSTER_BITS_MIN;

	while (n > 1ull << bits)
		bits++;
	return bits;
}

static int version_of(const char *arg)
{
	if (strcmp(arg, "1.1") == 0 || strcmp(arg, "v3") == 0)
		return 3;
	if (strcmp(arg, "0.10") == 0 || strcmp(arg, "v2") == 0)
		return 2;
	cli_usage_error("--compat: '%s' is neither 0.10 nor 1.1", arg);
}

static void take_option(int key, const char *arg)
{
	switch (key) {
	case 'c': qcow2.compress = true; break;
	case 'l': qcow2.level = cli_number("-l", arg, 0, 12); break;
	case OPT_CLUSTER_SIZE: qcow2.cluster_bits = cluster_bits_of(arg); break;
	case OPT_COMPAT: qcow2.version = version_of(arg); break;
	}
}

static const struct write_program program = {
	.summary = "Write a qcow2 image of any disk image (raw too), to a "
	    "file or pipe.",
	.options = options,
	.writer = &writer_qcow2,
	.writer_opts = &qcow2,
	.threaded = true,
	.unit = "clusters",
	.qemu_options = qemu_options,
	.option = take_option,
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
