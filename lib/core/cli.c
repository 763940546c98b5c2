#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/outfile.h"
#include "imgpipe/size.h"

#define CLI_OPTIONS_MAX 64
#define HELP_COLUMN_MAX 30

/*
 * gnulib's close_stdout: a write error on stdout, even one only fflush or
 * fclose sees, is an error of the program.  A stdout closed before we
 * started (EBADF, nothing written) is not, and a program already failing
 * has said why (often this very error).
 */
static void close_stdout(void)
{
	int failed_before = ferror(stdout), closed, saved;

	errno = 0;
	closed = fclose(stdout) == 0;
	saved = errno;
	if (closed && !failed_before)
		return;
	if (!closed && !failed_before && saved == EBADF)
		return;
	if (err_exiting() != 0)
		_exit(err_exiting());
	if (saved != 0)
		fprintf(stderr, "%s: stdout: write error: %s\n", progname,
		    strerror(saved));
	else
		fprintf(stderr, "%s: stdout: write error\n", progname);
	_exit(EXIT_IO);
}

void cli_init(int argc, char **argv)
{
	const char *slash;

	if (argc > 0 && argv[0] != NULL) {
		slash = strrchr(argv[0], '/');
		progname = slash ? slash + 1 : argv[0];
		argv[0] = (char *)progname;	/* getopt's messages */
	}
	signals_init();
	atexit(close_stdout);
}

void cli_version(void)
{
	printf("%s (imgpipe) %s\n", progname, IMGPIPE_VERSION);
}

noreturn void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", progname);
	err_exit(EXIT_USAGE);
}

void cli_max_operands(int argc, char **argv, int max)
{
	if (argc - optind > max)
		cli_usage_error("extra operand '%s'", argv[optind + max]);
}

uint64_t cli_size(const char *opt, const char *arg)
{
	uint64_t n;

	if (parse_size(arg, &n) < 0)
		cli_usage_error("%s: invalid size '%s'", opt, arg);
	return n;
}

/* "  -f, --format=FORMAT" or "      --mem=SIZE" */
static int option_spec(const struct cli_option *o, char *buf, size_t len)
{
	char letter[8] = "    ";

	if (o->key < CLI_LONG_ONLY)
		snprintf(letter, sizeof letter, "-%c, ", o->key);
	return snprintf(buf, len, "  %s--%s%s%s", letter, o->name,
	    o->arg ? "=" : "", o->arg ? o->arg : "");
}

void cli_help(const struct cli_program *prog)
{
	const struct cli_option *o;
	char spec[96];
	int i, n, col = 0;

	for (i = 0; prog->usage[i] != NULL; i++)
		printf("%s %s %s\n", i == 0 ? "Usage:" : "  or: ", progname,
		    prog->usage[i]);
	printf("%s\n\n", prog->summary);
	for (o = prog->options; o->name != NULL; o++) {
		n = option_spec(o, spec, sizeof spec);
		if (n > col && n <= HELP_COLUMN_MAX)
			col = n;
	}
	for (o = prog->options; o->name != NULL; o++) {
		n = option_spec(o, spec, sizeof spec);
		printf("%s%*s%s\n", spec, n < col ? col - n + 2 : 2, "",
		    o->help);
	}
	printf("\nSee %s(1).\n", progname);
}

/* getopt_long's table and short-option string, built from prog once. */
struct getopt_tables {
	const struct cli_program *prog;
	struct option longopts[CLI_OPTIONS_MAX + 1];
	char shortopts[2 * CLI_OPTIONS_MAX + 1];
};

static void build_tables(struct getopt_tables *t,
    const struct cli_program *prog)
{
	const struct cli_option *o;
	size_t n = 0, s = 0;

	memset(t, 0, sizeof *t);
	t->prog = prog;
	for (o = prog->options; o->name != NULL && n < CLI_OPTIONS_MAX; o++) {
		t->longopts[n++] = (struct option){ o->name,
		    o->arg ? required_argument : no_argument, NULL, o->key };
		if (o->key < CLI_LONG_ONLY) {
			t->shortopts[s++] = (char)o->key;
			if (o->arg)
				t->shortopts[s++] = ':';
		}
	}
}

int cli_next(int argc, char **argv, const struct cli_program *prog)
{
	static struct getopt_tables t;
	int c;

	if (t.prog != prog)
		build_tables(&t, prog);
	c = getopt_long(argc, argv, t.shortopts, t.longopts, NULL);
	switch (c) {
	case 'h':
		cli_help(prog);
		err_exit(0);
	case 'V':
		cli_version();
		err_exit(0);
	case '?':
	case ':':
		/* getopt said what is wrong */
		fprintf(stderr, "Try '%s --help' for more information.\n",
		    progname);
		err_exit(EXIT_USAGE);
	}
	return c;
}

/* Every creation option qemu-img has for the formats we read and write. */
static const char *const qemu_img_options[] = {
	"adapter_type", "backing_file", "backing_fmt", "block_size",
	"block_state_zero", "cluster_size", "compat", "compat6",
	"compression_type", "data_file", "data_file_raw", "encrypt.format",
	"encryption", "extended_l2", "force_size", "hwversion",
	"lazy_refcounts", "log_size", "preallocation", "refcount_bits",
	"size", "static", "subformat", "table_size", "toolsversion",
	"zeroed_grain", NULL,
};

static bool is_qemu_img_option(const char *name)
{
	int i;

	if (strncmp(name, "encrypt.", 8) == 0)
		return true;
	for (i = 0; qemu_img_options[i] != NULL; i++)
		if (strcmp(qemu_img_options[i], name) == 0)
			return true;
	return false;
}

void cli_check_output_name(const char *arg, const struct cli_qemu_option *map)
{
	const char *eq = strchr(arg, '=');
	char name[64];
	size_t len;
	int i;

	if (eq == NULL || strchr(arg, '/') != NULL)
		return;
	len = eq - arg;
	if (len == 0 || len >= sizeof name)
		return;
	memcpy(name, arg, len);
	name[len] = '\0';
	if (!is_qemu_img_option(name))
		return;
	for (i = 0; map != NULL && map[i].qemu != NULL; i++)
		if (strcmp(map[i].qemu, name) == 0 && map[i].ours != NULL)
			cli_usage_error("-o %s: -o names the output file; for "
			    "qemu-img's %s use %s (or write ./%s for a file of "
			    "that name)", arg, name, map[i].ours, arg);
	cli_usage_error("-o %s: -o names the output file; qemu-img's %s has "
	    "no equivalent in %s (or write ./%s for a file of that name)",
	    arg, name, progname, arg);
}

long cli_number(const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || n < lo || n > hi)
		cli_usage_error("%s: '%s' is not a number from %ld to %ld",
		    opt, arg, lo, hi);
	return n;
}

const char *cli_choice(const char *opt, const char *arg,
    const char *const *choices)
{
	size_t i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(arg, choices[i]) == 0)
			return choices[i];
	fprintf(stderr, "%s: %s: '%s' is not one of:", progname, opt, arg);
	for (i = 0; choices[i] != NULL; i++)
		fprintf(stderr, " %s", choices[i]);
	fprintf(stderr, "\nTry '%s --help' for more information.\n",
	    progname);
	err_exit(EXIT_USAGE);
}
