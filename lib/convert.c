/* img2raw: probe, open, and let the reader feed a raw sink. */
#include <stdio.h>

#include "imgpipe/convert.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/sink.h"

void list_formats(void)
{
	int i;

	for (i = 0; formats[i] != NULL; i++)
		printf("%-10s %s\n", formats[i]->name, formats[i]->desc);
}

static int write_raw(struct image *img, struct stash *st, const char *output)
{
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
	struct source src;
	struct stash st;
	struct image img = { 0 };
	struct progress pr;
	int rc = -1;

	stash_init(&st, o->mem ? o->mem : STASH_DEFAULT_BUDGET, o->tmpdir);
	if (source_open(&src, o->input) < 0)
		goto out;
	progress_start(&pr, o->progress, src.size_known ? src.size : 0);
	src.progress = &pr;
	if (image_open(&img, &src, &st, o->format, false) == 0)
		rc = write_raw(&img, &st, o->output);
	progress_end(&pr);
	image_close(&img);
out:
	source_close(&src);
	stash_free(&st);
	return rc;
}
