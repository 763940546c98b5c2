#include <string.h>

#include "imgpipe/job.h"
#include "imgpipe/progress.h"

int image_job_run(const struct image_job *j,
    int (*fn)(struct image *img, struct stash *st, void *arg), void *arg)
{
	struct source src;
	struct stash st;
	struct image img = { 0 };
	struct progress pr;
	int rc = -1;

	stash_init(&st, j->mem ? j->mem : STASH_DEFAULT_BUDGET, j->tmpdir);
	if ((j->plain ? source_open_plain(&src, j->input)
	    : source_open(&src, j->input)) < 0)
		goto out;
	progress_start(&pr, j->progress, j->size ? j->size : src.meter_total);
	if (j->size)	/* pv -s: the size of what arrives */
		src.meter_raw = src.ar != NULL;
	src.progress = &pr;
	src.sibling_extents = j->extents;
	if (image_open(&img, &src, &st, j->plain ? "raw" : j->format,
	    false) == 0) {
		img.verbatim = j->plain;
		img.threads = j->threads;
		rc = fn(&img, &st, arg);
	}
	progress_end(&pr);
	image_close(&img);
out:
	source_close(&src);
	stash_free(&st);
	return rc;
}
