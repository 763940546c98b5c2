/* img2raw: probe, open, and let the reader feed a raw sink. */
#include <stdio.h>

#include "imgpipe/convert.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/job.h"
#include "imgpipe/outfile.h"
#include "imgpipe/sink.h"

void list_formats(void)
{
	int i;

	for (i = 0; formats[i] != NULL; i++)
		printf("%-10s %s\n", formats[i]->name, formats[i]->desc);
	for (i = 0; format_aliases[i].alias != NULL; i++)
		printf("%-10s the same as %s (the Image service's name)\n",
		    format_aliases[i].alias, format_aliases[i].name);
}

static int write_raw(struct image *img, struct stash *st, void *arg)
{
	const char *output = arg;
	struct outfile of;
	struct raw_sink rs;
	struct emitter em;
	int rc;

	if (outfile_open(&of, output) < 0)
		return -1;
	raw_sink_init(&rs, of.fd, of.name);
	raw_sink_async(&rs);
	emitter_init(&em, &rs.base, st, img->virtual_size);
	rc = image_read(img, &em);
	emitter_free(&em);
	raw_sink_close(&rs);
	if (rc == 0)
		rc = outfile_commit(&of);
	else
		outfile_abort(&of);
	return rc;
}

int convert_to_raw(const struct convert_opts *o)
{
	struct image_job j = { .input = o->input, .format = o->format,
	    .progress = o->progress, .mem = o->mem, .tmpdir = o->tmpdir };

	return image_job_run(&j, write_raw, (void *)o->output);
}
