/*
 * The job of every raw2X program and of ovacreate's disks: any image a
 * reader takes (a raw disk included) to one output format, into a file or
 * a pipe (lib/jobs/write.c).
 */
#ifndef IMGPIPE_WRITE_H
#define IMGPIPE_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "writer.h"

struct write_opts {
	const char *input;	/* NULL or "-": stdin */
	const char *output;	/* NULL or "-": stdout */
	const char *format;	/* the input's format (-f), or NULL to probe */
	const struct writer *writer;
	const void *writer_opts;	/* the writer's own options */
	uint64_t size;		/* virtual size when size_given */
	bool size_given;
	int threads;		/* encoding threads, >= 1 */
	bool threads_given;	/* ... by -j: also the in-place disk's
				   writer threads (lib/jobs/write.c); -j 1
				   writes a file from one thread */
	bool progress;
	uint64_t mem;		/* parking store budget, 0: default */
	const char *tmpdir;
	bool stats;		/* report layout and store use on stderr */
	const char *unit;	/* what the statistics call a grain */
	/*
	 * ovacreate: write into the open file fd (at offset 0) instead of
	 * opening output, which then only names it in messages.
	 */
	bool to_fd;
	int fd;
	struct write_result *result;	/* filled on success when not NULL */
};

/* What was written: the numbers an OVF descriptor gives of a disk. */
struct write_result {
	uint64_t virtual_size;	/* bytes, as written (rounded up to 512) */
	uint64_t data_grains;	/* grains that hold data */
	uint32_t grain;		/* bytes */
};

int write_image(const struct write_opts *o);
/* The processors online, capped: the default for --threads. */
int online_cores(void);

/*
 * The options every raw2X program takes: -o, -f, -j, -p, -v, --size,
 * --mem, --tmpdir (and -h, -V, which cli_next() handles).  write_option()
 * takes one of them into o and returns true, or returns false for an
 * option of the program's own.  The keys of the long-only ones:
 */
enum { WRITE_OPT_SIZE = 0x100, WRITE_OPT_MEM, WRITE_OPT_TMPDIR,
	WRITE_OPT_FIRST_FREE };
/*
 * The same options as cli_option entries (cli.h), with their --help
 * lines: a program's table for cli_next() starts with these, then its
 * own options, then CLI_HELP_VERSION.  WRITE_OPT_SIZE is CLI_LONG_ONLY.
 */
#define WRITE_CLI_OPTIONS \
	{ 'o', "output", "FILE", \
	    "write to FILE (complete or not at all), not stdout" }, \
	{ 'f', "format", "FORMAT", \
	    "the input's format (default: probed)" }, \
	{ 'j', "threads", "N", \
	    "encoding threads (default: the online processors)" }, \
	{ WRITE_OPT_SIZE, "size", "SIZE", \
	    "the virtual size, if larger than the input's" }, \
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" }, \
	{ WRITE_OPT_MEM, "mem", "SIZE", \
	    "memory for data parked, pipe to pipe (default 32M)" }, \
	{ WRITE_OPT_TMPDIR, "tmpdir", "DIR", \
	    "spill beyond --mem there (default $TMPDIR, /tmp)" }, \
	{ 'v', "verbose", NULL, "report the layout, sizes and store use" }

bool write_option(struct write_opts *o, int c, const char *arg);
/* At most one operand, the input; more is a usage error. */
bool write_operands(struct write_opts *o, int argc, char **argv, int optind);

/*
 * A raw2X program, as its main() hands it to write_main(): the program
 * file only wires its own options (cmd/raw2vhd.c).
 */
struct cli_option;
struct cli_qemu_option;

struct write_program {
	const char *summary;	/* --help's line under the usage */
	/* WRITE_CLI_OPTIONS, the program's own, then CLI_HELP_VERSION */
	const struct cli_option *options;
	const struct writer *writer;
	const void *writer_opts;	/* what option() fills in */
	bool threaded;		/* -j defaults to online_cores(), not 1 */
	const char *unit;	/* what -v calls a grain */
	/* qemu-img's names -o would be taken for, or NULL: -o is a file */
	const struct cli_qemu_option *qemu_options;
	/* one of the program's own options (key, optarg), or NULL: none */
	void (*option)(int key, const char *arg);
	/*
	 * Checks across options once the operand is known, and defaults
	 * that depend on the output (o->unit may change): NULL, none.
	 */
	void (*finish)(struct write_opts *o);
};

/*
 * The main() of every raw2X program (lib/jobs/write_main.c): usage
 * "[OPTION]... [INPUT|-]", the shared options and the program's own, at
 * most one operand, then write_image().  Returns 0; an error is reported
 * and exits with its status (2 for usage, as cli.h).
 */
int write_main(int argc, char **argv, const struct write_program *prog);
/*
 * A size option that must be a power of two from lo to hi: the size, or
 * "OPT: 'ARG' is not WANT" and exit 2 (want: "a power of two from 1M to
 * 256M").
 */
uint64_t write_power_of_two(const char *opt, const char *arg, uint64_t lo,
    uint64_t hi, const char *want);

#endif
