/* ovaextract: stream a disk out of an OVA, verifying its manifest. */
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/ova.h"

enum { OPT_NO_VERIFY = CLI_LONG_ONLY, OPT_JSON, OPT_SIZE, OPT_MEM, OPT_TMPDIR };

static const char *const usage[] = {
	"[OPTION]... [-d N|NAME] [-o FILE] [ARCHIVE|-]",
	"-t [--json] [ARCHIVE|-]",
	"-x [-C DIR] [ARCHIVE|-]",
	NULL,
};

static const struct cli_option options[] = {
	{ 'f', "file", "ARCHIVE", "the OVA to read (or the operand; default stdin)" },
	{ 't', "list", NULL, "list the disks the OVF describes" },
	{ 'l', "list", NULL, "the same as -t" },
	{ 'x', "extract", NULL, "extract every member (into -C DIR)" },
	{ 'C', "directory", "DIR",
	    "with -x: into DIR, created if missing (default .)" },
	{ 'O', "to-stdout", NULL, "write the disk to stdout (the default)" },
	{ 'd', "disk", "N|NAME",
	    "the disk: its number in -t, id or file name (default 1)" },
	{ 'o', "output", "FILE",
	    "write the disk to FILE, in place only on success" },
	{ OPT_NO_VERIFY, "no-verify", NULL, "do not check the manifest" },
	{ OPT_JSON, "json", NULL, "with -t: the list as JSON" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_SIZE, "size", "SIZE", "the input's size, for -p through a pipe" },
	{ OPT_MEM, "mem", "SIZE",
	    "memory for members before the OVF (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR",
	    "where they spill beyond --mem (default $TMPDIR, /tmp)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Write a disk of an OVA, list its disks or extract it, checking its "
	"manifest.",
	options,
};

/* The modes of tar: -t, -x, or one disk out (-O, the default). */
static void check_combination(const struct ova_opts *o, bool extract,
    bool to_stdout, const char *dir)
{
	if (o->list + extract > 1)
		cli_usage_error("-t and -x exclude each other");
	if (o->list && (o->disk || o->output || to_stdout))
		cli_usage_error("-t lists the disks: it takes no -d, -o or -O");
	if (extract && !to_stdout && (o->disk || o->output))
		cli_usage_error("-x extracts every member: it takes no -d or "
		    "-o (add -O to write one disk)");
	if (dir != NULL && !extract && !o->list)
		cli_usage_error("-C DIR goes with -x");
	if (to_stdout && o->output)
		cli_usage_error("-O and -o exclude each other");
	if (o->json && !o->list)
		cli_usage_error("--json goes with -t");
}

int main(int argc, char **argv)
{
	struct ova_opts o = { 0 };
	const char *dir = NULL, *file = NULL;
	bool extract = false, to_stdout = false;
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 't':
		case 'l': o.list = 1; break;
		case 'x': extract = true; break;
		case 'C': dir = optarg; break;
		case 'O': to_stdout = true; break;
		case 'd': o.disk = optarg; break;
		case 'o': o.output = optarg; break;
		case OPT_NO_VERIFY: o.no_verify = 1; break;
		case OPT_JSON: o.json = 1; break;
		case 'p': o.progress = 1; break;
		case OPT_SIZE: o.size = cli_size("--size", optarg); break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		}
	}
	cli_max_operands(argc, argv, file ? 0 : 1);
	check_combination(&o, extract, to_stdout, dir);
	/* tar -xO writes to stdout: the disk, here */
	if (extract && !to_stdout)
		o.extract_dir = dir ? dir : ".";
	o.input = file ? file : optind < argc ? argv[optind] : NULL;
	if (ova_run(&o) < 0)
		die_last();
	return 0;
}
