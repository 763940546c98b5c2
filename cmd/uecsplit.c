/* uecsplit: a UEC tarball into its kernel, ramdisk and machine image. */
#include <stdlib.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/uec.h"

enum {
	OPT_KERNEL = CLI_LONG_ONLY, OPT_RAMDISK, OPT_IMAGE, OPT_JSON,
	OPT_GLANCE, OPT_SIZE, OPT_MEM, OPT_TMPDIR,
};

static const char *const usage[] = {
	"[OPTION]... [-C DIR] [INPUT|-]",
	"--kernel|--ramdisk|--image [-o FILE] [INPUT|-]",
	NULL,
};

static const struct cli_option options[] = {
	{ 'C', "directory", "DIR", "write the kernel, ramdisk and image into DIR" },
	{ OPT_KERNEL, "kernel", NULL, "write the kernel (AKI) to stdout" },
	{ OPT_RAMDISK, "ramdisk", NULL, "write the ramdisk (ARI) to stdout" },
	{ OPT_IMAGE, "image", NULL, "write the machine image (AMI) to stdout" },
	{ 'o', "output", "FILE",
	    "with --kernel, --ramdisk or --image: to FILE instead" },
	{ OPT_JSON, "json", NULL, "list the parts as JSON" },
	{ OPT_GLANCE, "glance", "NAME",
	    "print the openstack image create commands for NAME" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_SIZE, "size", "SIZE", "the input's size, for -p through a pipe" },
	{ OPT_MEM, "mem", "SIZE",
	    "memory for a part held back from a pipe (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR",
	    "where it spills beyond --mem (default $TMPDIR, /tmp)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Split a UEC tarball into its kernel, ramdisk and machine image.",
	options,
};

static void want(struct uec_opts *o, enum part_role r)
{
	if (o->want != ROLE_NONE && o->want != r)
		cli_usage_error("--kernel, --ramdisk and --image exclude each "
		    "other");
	o->want = r;
}

int main(int argc, char **argv)
{
	struct uec_opts o = { 0 };
	int c;

	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'C': o.dir = optarg; break;
		case OPT_KERNEL: want(&o, ROLE_KERNEL); break;
		case OPT_RAMDISK: want(&o, ROLE_RAMDISK); break;
		case OPT_IMAGE: want(&o, ROLE_IMAGE); break;
		case 'o': o.output = optarg; break;
		case OPT_JSON: o.json = 1; break;
		case OPT_GLANCE: o.glance = optarg; break;
		case 'p': o.progress = 1; break;
		case OPT_SIZE: o.size = cli_size("--size", optarg); break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		}
	}
	cli_max_operands(argc, argv, 1);
	if (o.want != ROLE_NONE && (o.dir || o.json || o.glance))
		cli_usage_error("--%s writes the part to stdout: it takes no -C, "
		    "--json or --glance", role_name(o.want));
	if (o.output && o.want == ROLE_NONE)
		cli_usage_error("-o writes one part: add --kernel, --ramdisk or "
		    "--image (or use -C DIR)");
	o.input = optind < argc ? argv[optind] : NULL;
	if (uec_split(&o) < 0)
		die_last();
	return 0;
}
