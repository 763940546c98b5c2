/* raw2qcow2: any disk image (a raw disk included) to qcow2, file or pipe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

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

static int number_of(const char *opt, const char *arg, int lo, int hi)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || n < lo || n > hi)
		die(EXIT_USAGE, "%s: '%s' is not a number from %d to %d", opt,
		    arg, lo, hi);
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "compress", no_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 'j' },
		{ "cluster-size", required_argument, NULL, 'C' },
		{ "compat", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 'S' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
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
	while ((c = getopt_long(argc, argv, "o:f:cl:j:pvhV", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case 'o': o.output = optarg; break;
		case 'f': o.format = optarg; break;
		case 'c': q.compress = true; break;
		case 'l': q.level = number_of("-l", optarg, 0, 9); break;
		case 'j': o.threads = number_of("-j", optarg, 1, 256); break;
		case 'C': q.cluster_bits = cluster_bits_of(optarg); break;
		case 'P': q.version = version_of(optarg); break;
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
	if (write_image(&o) < 0)
		die_last();
	return 0;
}
