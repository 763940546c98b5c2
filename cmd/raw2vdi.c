/* raw2vdi: any disk image (a raw disk included) to a VDI, file or pipe. */
#include "imgpipe/cli.h"
#include "imgpipe/uuid.h"
#include "imgpipe/write.h"
#include "imgpipe/writers.h"

enum { OPT_UUID = WRITE_OPT_FIRST_FREE };

static const struct cli_option options[] = {
	WRITE_CLI_OPTIONS,
	{ 's', "subformat", "SUBFORMAT",
	    "dynamic (the default), or static (fixed)" },
	{ OPT_UUID, "uuid", "UUID", "the disk's unique id (default: derived)" },
	CLI_HELP_VERSION,
	{ 0, NULL, NULL, NULL },
};

static struct vdi_wopts vdi = { .fixed = false };
static unsigned char uuid[UUID_LEN];

static void take_option(int key, const char *arg)
{
	static const char *const subformats[] = { "dynamic", "static",
	    "fixed", NULL };

	switch (key) {
	case 's':
		vdi.fixed = cli_choice("--subformat", arg, subformats) !=
		    subformats[0];
		break;
	case OPT_UUID: vdi.uuid = uuid_option(arg, uuid); break;
	}
}

static const struct write_program program = {
	.summary = "Write a VirtualBox VDI of any disk image (raw too), to a "
	    "file or pipe.",
	.options = options,
	.writer = &writer_vdi,
	.writer_opts = &vdi,
	.unit = "blocks",
	.option = take_option,
};

int main(int argc, char **argv)
{
	return write_main(argc, argv, &program);
}
