/*
 * What every program shares on its command line: one option table gives
 * getopt_long its table and --help its lines, so --help lists every
 * option; usage errors say what is wrong and point to --help, as GNU
 * tools do; a failed write to stdout is exit status 3 on every path.
 */
#ifndef IMGPIPE_CLI_H
#define IMGPIPE_CLI_H

#include <getopt.h>	/* optarg, optind */
#include <stdint.h>
#include <stdnoreturn.h>

#define IMGPIPE_VERSION "0.1.0"

/* Keys of options without a short letter start here. */
#define CLI_LONG_ONLY 256

struct cli_option {
	int key;		/* the short letter, or >= CLI_LONG_ONLY */
	const char *name;	/* the long name, without "--" */
	const char *arg;	/* the argument's name ("FILE"), NULL: a flag */
	const char *help;	/* one line */
};

/* The last two entries of every table: cli_next() handles them. */
#define CLI_HELP_VERSION \
	{ 'h', "help", NULL, "print this help and exit" }, \
	{ 'V', "version", NULL, "print the version and exit" }

struct cli_program {
	const char *const *usage;	/* synopsis lines after the name, NULL-ended */
	const char *summary;		/* what the program does, one line */
	const struct cli_option *options;	/* ends with a NULL name */
};

/*
 * Sets progname from argv[0] (getopt's messages use it too), installs the
 * signal handlers, and arranges for stdout to be flushed and closed at
 * exit, a failure being "PROG: stdout: write error: ..." and status 3.
 */
void cli_init(int argc, char **argv);
/*
 * getopt_long over prog's options: the next option's key, or -1 after
 * the last (optind is then the first operand).  -h/--help and
 * -V/--version print and exit 0 here; an unknown option or a missing
 * argument is a usage error.
 */
int cli_next(int argc, char **argv, const struct cli_program *prog);
/* The --help text of prog on stdout. */
void cli_help(const struct cli_program *prog);
void cli_version(void);
/* "PROG: what is wrong" and "Try 'PROG --help' ...", then exit 2. */
noreturn void cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* A usage error naming the first operand past max ("extra operand 'b'"). */
void cli_max_operands(int argc, char **argv, int max);
/* Parse a size option or exit with status 2. */
uint64_t cli_size(const char *opt, const char *arg);
/*
 * qemu-img's -o NAME=VALUE names a creation option; ours names the output
 * file.  An -o argument NAME=VALUE[,...] whose NAME qemu-img knows
 * (compat, cluster_size, subformat, ...) is refused as a usage error that
 * points to the program's own option: map pairs qemu-img's names with
 * ours ("compat" with "--compat"), ending with a NULL qemu name; a name
 * not in map is said to have no equivalent.  "./compat=1.1" is a file.
 */
struct cli_qemu_option {
	const char *qemu;	/* "cluster_size" */
	const char *ours;	/* "--cluster-size", or NULL: none */
};

void cli_check_output_name(const char *arg, const struct cli_qemu_option *map);
/* Parse a decimal number from lo to hi or exit with status 2. */
long cli_number(const char *opt, const char *arg, long lo, long hi);
/* The entry of the NULL-terminated choices arg names, or exit with 2. */
const char *cli_choice(const char *opt, const char *arg,
    const char *const *choices);

#endif
