/*
 * The main() every raw2X program shares (include/imgpipe/write.h): the
 * options of write_opts, the program's own through its callback, one
 * operand at most, then write_image().  A program file is its option
 * table and the few lines that take its own options.
 */
#include <stddef.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/write.h"

static const char *const usage[] = {
	"[OPTION]... [INPUT|-]",
	NULL,
};

static void take_options(int argc, char **argv,
    const struct write_program *prog, struct write_opts *o)
{
	const struct cli_program cli = { usage, prog->summary,
	    prog->options };
	int c;

	while ((c = cli_next(argc, argv, &cli)) != -1)
		if (!write_option(o, c, optarg) && prog->option != NULL)
			prog->option(c, optarg);
}

int write_main(int argc, char **argv, const struct write_program *prog)
{
	struct write_opts o = {
		.writer = prog->writer,
		.writer_opts = prog->writer_opts,
		.threads = prog->threaded ? online_cores() : 1,
		.unit = prog->unit,
	};

	cli_init(argc, argv);
	take_options(argc, argv, prog, &o);
	if (o.output != NULL && prog->qemu_options != NULL)
		cli_check_output_name(o.output, prog->qemu_options);
	cli_max_operands(argc, argv, 1);
	write_operands(&o, argc, argv, optind);
	if (prog->finish != NULL)
		prog->finish(&o);
	if (write_image(&o) < 0)
		die_last();
	return 0;
}

uint64_t write_power_of_two(const char *opt, const char *arg, uint64_t lo,
    uint64_t hi, const char *want)
{
	uint64_t n = cli_size(opt, arg);

	if (n < lo || n > hi || (n & (n - 1)) != 0)
		cli_usage_error("%s: '%s' is not %s", opt, arg, want);
	return n;
}
