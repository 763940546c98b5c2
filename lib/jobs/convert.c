/* img2raw: probe, open, and let the reader feed a raw sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/convert.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/job.h"
#include "imgpipe/outfile.h"
#include "imgpipe/sink.h"
#include "imgpipe/source.h"
#include "imgpipe/zcopy.h"

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct format *const *)a)->name,
	    (*(const struct format *const *)b)->name);
}

/* Sorted by qemu-img's name, each followed by the Image service's. */
void list_formats(void)
{
	const struct format *sorted[64];
	int i, j, n = 0;

	for (i = 0; formats[i] != NULL && n < 64; i++)
		sorted[n++] = formats[i];
	qsort(sorted, n, sizeof sorted[0], by_name);
	for (i = 0; i < n; i++) {
		printf("%-10s %s\n", sorted[i]->name, sorted[i]->desc);
		for (j = 0; format_aliases[j].alias != NULL; j++)
			if (strcmp(format_aliases[j].name, sorted[i]->name) == 0)
				printf("%-10s the same as %s (the Image service's "
				    "name)\n", format_aliases[j].alias,
				    format_aliases[j].name);
	}
}

static int write_raw(struct image *img, struct stash *st, void *arg)
{
	const char *output = arg;
	struct outfile of;
	struct raw_sink rs;
	struct emitter em;
	int rc;

	if (outfile_replace(&of, output) < 0)
		return -1;
	rc = zcopy_raw(img, of.fd, of.name);
	if (rc <= 0)
		return rc == 0 ? outfile_commit(&of) : (outfile_abort(&of), -1);
	raw_sink_init(&rs, of.fd, of.name);
	raw_sink_async(&rs, img->threads);
	emitter_init(&em, &rs.base, st, img->virtual_size);
	rc = image_read(img, &em);
	emitter_free(&em);
	raw_sink_close(&rs);
	if (rc == 0 && source_drain(img->src) < 0)
		rc = -1;
	if (rc == 0)
		rc = outfile_commit(&of);
	else
		outfile_abort(&of);
	return rc;
}

int convert_to_raw(const struct convert_opts *o)
{
	struct image_job j = { .input = o->input, .format = o->format,
	    .progress = o->progress, .size = o->size, .mem = o->mem,
	    .tmpdir = o->tmpdir, .extents = o->extents,
	    .threads = o->threads };

	return image_job_run(&j, write_raw, (void *)o->output);
}
