/* The format table: one line per file in lib/fmt. */
#include <stddef.h>

#include "imgpipe/format.h"

extern const struct format format_raw, format_iso;
extern const struct format format_qcow2;
extern const struct format format_vpc, format_vhdx;
extern const struct format format_vdi, format_vmdk;
extern const struct format format_qed, format_parallels;

const struct format *const formats[] = {
	&format_iso,
	&format_qcow2,
	&format_vdi,
	&format_vmdk,
	&format_qed,
	&format_parallels,
	&format_vhdx,
	&format_raw,
	&format_vpc,	/* after raw: from a pipe both bid BID_CATCHALL */
	NULL,
};

const struct format_alias format_aliases[] = {
	{ "vhd", "vpc" },		/* OpenStack's disk-format names */
	{ "ploop", "parallels" },
	{ NULL, NULL },
};
