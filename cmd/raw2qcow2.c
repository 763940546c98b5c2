/* raw2qcow2: a raw disk (file or pipe) to a qcow2 image (file or pipe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/raw2qcow2.h"

enum {
	OPT_CLUSTER_SIZE = CLI_LONG_ONLY, OPT_COMPAT, OPT_SIZE, OPT_MEM,
	OPT_TMPDIR,
};

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	{ 'o', "output", "FILE",
	    "write to FILE (complete or not at all), not stdout" },
	{ 'c', "compress", NULL, "deflate the clusters, as qemu-img convert -c" },
	{ 'l', "level", "N", "deflate level with -c, 0 to 9 (default 6)" },
	{ 'j', "threads", "N",
	    "compression threads (default: the online processors)" },
	{ OPT_CLUSTER_SIZE, "cluster-size", "SIZE",
	    "a power of two from 4K to 2M (default 64K)" },
	{ OPT_COMPAT, "compat", "1.1|0.10",
	    "qcow2 version 3 (1.1, the default) or 2 (0.10)" },
	{ OPT_SIZE, "size", "SIZE",
	    "the virtual size, if larger than the input's" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_MEM, "mem", "SIZE",
	    "memory for data parked, pipe to pipe (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR",
	    "where it spills beyond --mem (default $TMPDIR, /tmp)" },
	{ 'v', "verbose", NULL, "report the layout, sizes and stash use" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a qcow2 image of a raw disk, from and to files or pipes.",
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

static int number_of(const char *opt, const char *arg, int lo, int hi)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || n < lo || n > hi)
		cli_usage_error("%s: '%s' is not a number from %d to %d", opt,
		    arg, lo, hi);
	return n;
}

static int online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : n;
}

int main(int argc, char **argv)
{
	struct raw2qcow2_opts o = {
		.cluster_bits = QCOW2W_CLUSTER_BITS_DEFAULT,
		.version = 3,
		.level = -1,
		.threads = online_cores(),
	};
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'o':
			cli_check_output_name(optarg, qemu_options);
			o.output = optarg;
			break;
		case 'c': o.compress = true; break;
		case 'l': o.level = number_of("-l", optarg, 0, 9); break;
		case 'j': o.threads = number_of("-j", optarg, 1, 256); break;
		case OPT_CLUSTER_SIZE:
			o.cluster_bits = cluster_bits_of(optarg);
			break;
		case OPT_COMPAT: o.version = version_of(optarg); break;
		case OPT_SIZE:
			o.size = cli_size("--size", optarg);
			o.size_given = true;
			break;
		case 'p': o.progress = true; break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		case 'v': o.stats = true; break;
		}
	}
	cli_max_operands(argc, argv, 1);
	o.input = optind < argc ? argv[optind] : NULL;
	if (raw_to_qcow2(&o) < 0)
		die_last();
	return 0;
}
