/* ovacreate: an OVA from disks, each converted to a streamOptimized VMDK. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/ovacreate.h"
#include "imgpipe/write.h"

enum {
	OPT_OS = CLI_LONG_ONLY, OPT_CPUS, OPT_MEMORY, OPT_OVF, OPT_MANIFEST,
	OPT_ADAPTER, OPT_NIC, OPT_HWVERSION, OPT_MEM, OPT_TMPDIR,
};

static const char *const usage[] = {
	"[OPTION]... DISK|-...",
	NULL,
};

static const struct cli_option options[] = {
	{ 'o', "output", "FILE",
	    "the OVA (default stdout), in place only when complete" },
	{ 'n', "name", "NAME", "the machine's name (default: the first "
	    "disk's)" },
	{ 'f', "format", "FORMAT", "the disks' format (default: probed)" },
	{ OPT_OS, "os", "ID|NAME", "guest OS: a CIM OSType or a name "
	    "(default other64)" },
	{ OPT_CPUS, "cpus", "N", "virtual CPUs (default 1)" },
	{ OPT_MEMORY, "memory", "SIZE", "memory, whole MiB (default 1G)" },
	{ OPT_OVF, "ovf", "1|2", "OVF 1.x (default) or 2.0 descriptor" },
	{ OPT_MANIFEST, "manifest", "ALG", "sha256 (default), sha1 or sha512" },
	{ OPT_ADAPTER, "adapter-type", "TYPE",
	    "lsilogic (default), buslogic or ide" },
	{ OPT_NIC, "nic", "TYPE", "e1000 (default) or vmxnet3" },
	{ OPT_HWVERSION, "hwversion", "N", "virtual hardware vmx-N "
	    "(default 10)" },
	{ 'l', "level", "N", "deflate level, 1 to 12 (default 6)" },
	{ 'j', "threads", "N", "deflate threads (default: every core)" },
	{ 'p', "progress", NULL, "show progress on stderr, as pv does" },
	{ OPT_MEM, "mem", "SIZE", "memory for the parking store (default 32M)" },
	{ OPT_TMPDIR, "tmpdir", "DIR", "for the store and the VMDKs "
	    "(default $TMPDIR)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static const struct cli_program program = {
	usage,
	"Make an OVA of the DISKs, each a streamOptimized VMDK, with OVF and "
	"manifest.",
	options,
};

/* --os with a name we do not know: say which we do. */
static noreturn void os_unknown(const char *arg)
{
	char names[512] = "";
	const struct ovf_os *os;
	size_t n = 0;

	for (os = ovf_os_names; os->name != NULL && n < sizeof names; os++)
		n += snprintf(names + n, sizeof names - n, " %s", os->name);
	cli_usage_error("--os: '%s' is neither a CIM OSType number nor one "
	    "of:%s", arg, names);
}

static struct ovf_os os_of(const char *arg)
{
	const struct ovf_os *os = ovf_os_by_name(arg);
	struct ovf_os any = { NULL, 0, NULL, NULL };

	if (os != NULL)
		return *os;
	if (strspn(arg, "0123456789") != strlen(arg))
		os_unknown(arg);
	any.cim_id = (unsigned)cli_number("--os", arg, 0, 65535);
	/* a number the table knows keeps its description and VMware id */
	for (os = ovf_os_names; os->name != NULL; os++)
		if (os->cim_id == any.cim_id)
			return *os;
	return any;
}

static uint64_t memory_mib_of(const char *arg)
{
	uint64_t n = cli_size("--memory", arg);

	if (n == 0 || n % (1u << 20) != 0 || n > (16ull << 40))
		cli_usage_error("--memory: '%s' is not a whole number of MiB "
		    "up to 16T (2048M is 2 GiB)", arg);
	return n >> 20;
}

static enum digest_alg manifest_of(const char *arg)
{
	static const char *const algs[] = { "sha256", "sha1", "sha512", NULL };
	const char *a = cli_choice("--manifest", arg, algs);

	return a == algs[1] ? DIGEST_SHA1 : a == algs[2] ? DIGEST_SHA512 :
	    DIGEST_SHA256;
}

static enum ovf_controller controller_of(const char *arg)
{
	static const char *const types[] = { "lsilogic", "buslogic", "ide",
	    NULL };
	const char *t = cli_choice("--adapter-type", arg, types);

	return t == types[1] ? OVF_BUSLOGIC : t == types[2] ? OVF_IDE :
	    OVF_LSILOGIC;
}

static enum ovf_nic nic_of(const char *arg)
{
	static const char *const types[] = { "e1000", "vmxnet3", NULL };

	return cli_choice("--nic", arg, types) == types[1] ? OVF_VMXNET3 :
	    OVF_E1000;
}

/* One "-" at most, and no more disks than the controllers hold. */
static void check_disks(const struct ovacreate_opts *o)
{
	size_t i;
	int stdin_seen = 0;

	if (o->ndisks < 1)
		cli_usage_error("no DISK: give one or more, or - for stdin");
	for (i = 0; i < o->ndisks; i++)
		if (strcmp(o->disks[i], "-") == 0 && stdin_seen++)
			cli_usage_error("standard input (-) can be only one "
			    "of the disks");
	if (o->ndisks > ovf_disks_max(o->hw.controller))
		cli_usage_error("%zu disks: the %s controllers of one virtual "
		    "machine hold at most %zu", o->ndisks,
		    o->hw.controller == OVF_IDE ? "IDE" : "SCSI",
		    ovf_disks_max(o->hw.controller));
}

int main(int argc, char **argv)
{
	struct ovacreate_opts o = {
		.hw = {
			.version = 1,
			.cpus = 1,
			.memory_mib = 1024,
			.hw_version = 10,
			.controller = OVF_LSILOGIC,
			.nic = OVF_E1000,
		},
		.manifest = DIGEST_SHA256,
		.threads = online_cores(),
		.level = 6,
	};
	int c;

	o.hw.os = *ovf_os_by_name("other64");
	cli_init(argc, argv);
	while ((c = cli_next(argc, argv, &program)) != -1) {
		switch (c) {
		case 'o': o.output = optarg; break;
		case 'n': o.name = optarg; break;
		case 'f': o.format = optarg; break;
		case OPT_OS: o.hw.os = os_of(optarg); break;
		case OPT_CPUS:
			o.hw.cpus = (unsigned)cli_number("--cpus", optarg, 1,
			    768);
			break;
		case OPT_MEMORY: o.hw.memory_mib = memory_mib_of(optarg); break;
		case OPT_OVF:
			o.hw.version = (int)cli_number("--ovf", optarg, 1, 2);
			break;
		case OPT_MANIFEST: o.manifest = manifest_of(optarg); break;
		case OPT_ADAPTER: o.hw.controller = controller_of(optarg); break;
		case OPT_NIC: o.hw.nic = nic_of(optarg); break;
		case OPT_HWVERSION:
			o.hw.hw_version = (unsigned)cli_number("--hwversion",
			    optarg, 4, 99);
			break;
		case 'l': o.level = (int)cli_number("-l", optarg, 1, 12); break;
		case 'j': o.threads = (int)cli_number("-j", optarg, 1, 256); break;
		case 'p': o.progress = true; break;
		case OPT_MEM: o.mem = cli_size("--mem", optarg); break;
		case OPT_TMPDIR: o.tmpdir = optarg; break;
		}
	}
	o.disks = argv + optind;
	o.ndisks = (size_t)(argc - optind);
	check_disks(&o);
	if (ovacreate_run(&o) < 0)
		die_last();
	return 0;
}
