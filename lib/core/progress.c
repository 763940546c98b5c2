#include <stdio.h>
#include <time.h>

#include "imgpipe/progress.h"
#include "imgpipe/size.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void show(struct progress *p, double t, const char *end)
{
	char done[32], rate[32];
	double secs = t - p->start;
	double bps = secs > 0 ? p->done / secs : 0;

	format_size(p->done, done, sizeof done);
	format_size((uint64_t)bps, rate, sizeof rate);
	fprintf(stderr, "\r%12s  %12s/s", done, rate);
	if (p->total && bps > 0 && p->done <= p->total) {
		unsigned eta = (unsigned)((p->total - p->done) / bps);

		fprintf(stderr, "  %3u%%  ETA %u:%02u:%02u",
		    (unsigned)(100.0 * p->done / p->total), eta / 3600,
		    eta / 60 % 60, eta % 60);
	}
	fputs(end, stderr);
	fflush(stderr);
}

void progress_start(struct progress *p, bool enabled, uint64_t total)
{
	p->enabled = enabled;
	p->total = total;
	p->done = 0;
	p->start = p->last = enabled ? now() : 0;
}

void progress_add(struct progress *p, uint64_t n)
{
	double t;

	p->done += n;
	if (!p->enabled)
		return;
	t = now();
	if (t - p->last >= 0.5) {
		p->last = t;
		show(p, t, "   ");
	}
}

void progress_end(struct progress *p)
{
	if (p->enabled)
		show(p, now(), "\n");
}
