/* ovacreate: an OVA from disks, each converted to a streamOptimized VMDK. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/cli.h"
#include "imgpipe/err.h"
#include "imgpipe/ovacreate.h"
#include "imgpipe/write.h"

enum {
	OPT_OS = 256, OPT_CPUS, OPT_MEMORY, OPT_OVF, OPT_MANIFEST,
	OPT_ADAPTER, OPT_NIC, OPT_HWVERSION, OPT_MEM, OPT_TMPDIR,
};

static void usage(int status)
{
	FILE *f = status ? stderr : stdout;

	fprintf(f, "usage: %s [-p] [-o FILE] [-n NAME] [-f FORMAT] [--os ID|NAME] "
	    "[--cpus N] [--memory SIZE]\n"
	    "       [--ovf 1|2] [--manifest sha256|sha1|sha512] "
	    "[--adapter-type TYPE] [--nic TYPE]\n"
	    "       [--hwversion N] [-l LEVEL] [-j THREADS] [--mem SIZE] "
	    "[--tmpdir DIR] DISK|- ...\n", progname);
	if (status == 0)
		fprintf(f, "Make an OVA of the DISKs (any image the readers "
		    "take; - is stdin), each one\na streamOptimized VMDK, "
		    "with its OVF descriptor and manifest.\n\n"
		    "  -o, --output FILE      the OVA (default stdout), in "
		    "place only when complete\n"
		    "  -n, --name NAME        the virtual machine's name "
		    "(default: the first disk's)\n"
		    "  -f, --format FORMAT    the disks' format (default: "
		    "probed)\n"
		    "      --os ID|NAME       guest OS: a CIM OSType number or "
		    "other, other64 (default),\n"
		    "                         linux, linux32, ubuntu, debian, "
		    "rhel, sles, freebsd\n"
		    "      --cpus N           virtual CPUs (default 1)\n"
		    "      --memory SIZE      memory, whole MiB (default 1G)\n"
		    "      --ovf 1|2          OVF 1.x (default) or 2.0 "
		    "descriptor\n"
		    "      --manifest ALG     sha256 (default), sha1 for old "
		    "importers, or sha512\n"
		    "      --adapter-type T   lsilogic (default), buslogic or "
		    "ide: the disks' controller\n"
		    "      --nic TYPE         e1000 (default) or vmxnet3: the "
		    "network adapter\n"
		    "      --hwversion N      virtual hardware: vmx-N (default "
		    "10)\n"
		    "  -l, --level N          deflate level, 1 to 12 (default "
		    "6)\n"
		    "  -j, --threads N        deflate threads (default: every "
		    "core)\n"
		    "  -p, --progress         show progress on stderr\n"
		    "      --mem SIZE         memory for the parking store "
		    "(default 32M)\n"
		    "      --tmpdir DIR       for the store and the VMDKs "
		    "(default $TMPDIR, /tmp)\n"
		    "  -h, --help             this help\n"
		    "  -V, --version          the version\n");
	exit(status);
}

static struct ovf_os os_of(const char *arg)
{
	const struct ovf_os *os = ovf_os_by_name(arg);
	struct ovf_os any = { NULL, 0, NULL, NULL };

	if (os != NULL)
		return *os;
	if (strspn(arg, "0123456789") != strlen(arg))
		die(EXIT_USAGE, "--os: '%s' is neither a CIM OSType number nor "
		    "one of the names --help lists", arg);
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
		die(EXIT_USAGE, "--memory: '%s' is not a whole number of MiB "
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
		usage(EXIT_USAGE);
	for (i = 0; i < o->ndisks; i++)
		if (strcmp(o->disks[i], "-") == 0 && stdin_seen++)
			die(EXIT_USAGE, "standard input (-) can be only one "
			    "of the disks");
	if (o->ndisks > ovf_disks_max(o->hw.controller))
		die(EXIT_USAGE, "%zu disks: the %s controllers of one virtual "
		    "machine hold at most %zu", o->ndisks,
		    o->hw.controller == OVF_IDE ? "IDE" : "SCSI",
		    ovf_disks_max(o->hw.controller));
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'f' },
		{ "os", required_argument, NULL, OPT_OS },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "ovf", required_argument, NULL, OPT_OVF },
		{ "manifest", required_argument, NULL, OPT_MANIFEST },
		{ "adapter-type", required_argument, NULL, OPT_ADAPTER },
		{ "nic", required_argument, NULL, OPT_NIC },
		{ "hwversion", required_argument, NULL, OPT_HWVERSION },
		{ "level", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 'j' },
		{ "progress", no_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "tmpdir", required_argument, NULL, OPT_TMPDIR },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
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
	while ((c = getopt_long(argc, argv, "o:n:f:l:j:phV", longopts, NULL)) !=
	    -1) {
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
		case 'h': usage(0); break;
		case 'V': cli_version(); return 0;
		default: usage(EXIT_USAGE);
		}
	}
	o.disks = argv + optind;
	o.ndisks = (size_t)(argc - optind);
	check_disks(&o);
	if (ovacreate_run(&o) < 0)
		die_last();
	return 0;
}
