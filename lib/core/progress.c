#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/progress.h"
#include "imgpipe/size.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void hms(char *buf, size_t len, double secs)
{
	unsigned long s = secs > 0 ? (unsigned long)(secs + 0.5) : 0;

	snprintf(buf, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
}

/* "PROG: 1.0 GiB of 2.0 GiB  50%  200.0 MiB/s  ETA 0:00:05" */
static void format_line(const struct progress *p, double t, bool final,
    char *line, size_t len)
{
	uint64_t done = p->total && p->done > p->total ? p->total : p->done;
	double secs = t - p->start, bps = secs > 0 ? done / secs : 0;
	char a[32], b[32], c[32];
	size_t n;

	format_size(done, a, sizeof a);
	n = snprintf(line, len, "%s: %s", progname, a);
	if (p->total && n < len)
		n += snprintf(line + n, len - n, " of %s %3u%%",
		    format_size(p->total, b, sizeof b),
		    (unsigned)(100.0 * done / p->total));
	if (n < len)
		n += snprintf(line + n, len - n, "  %s/s",
		    format_size((uint64_t)bps, c, sizeof c));
	if (final)
		hms(a, sizeof a, secs);
	else if (p->total && bps > 0)
		hms(a, sizeof a, (p->total - done) / bps);
	if (n < len && (final || (p->total && bps > 0)))
		snprintf(line + n, len - n, "  %s %s", final ? "in" : "ETA", a);
}

static void show(struct progress *p, double t, bool final)
{
	char line[200];

	format_line(p, t, final, line, sizeof line);
	if (p->tty)
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
	else
		fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void progress_start(struct progress *p, bool enabled, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->enabled = enabled;
	p->total = total;
	if (!enabled)
		return;
	p->tty = isatty(2);
	p->start = p->last = now();
}

void progress_total(struct progress *p, uint64_t total)
{
	if (total != 0)
		p->total = total;
}

static void tick(struct progress *p)
{
	double t;

	if (!p->enabled || p->ended)
		return;
	t = now();
	if (t - p->last >= (p->tty ? PROGRESS_TTY_INTERVAL
	    : PROGRESS_LOG_INTERVAL)) {
		p->last = t;
		show(p, t, false);
	}
}

/* Spans i and i + 1 become one; what lay between them counts. */
static void merge_next(struct progress *p, int i)
{
	struct progress_span *s = p->spans;

	if (s[i + 1].lo > s[i].hi)
		p->done += s[i + 1].lo - s[i].hi;
	if (s[i + 1].hi > s[i].hi) {
		p->done -= s[i + 1].lo < s[i].hi ? s[i].hi - s[i + 1].lo : 0;
		s[i].hi = s[i + 1].hi;
	} else {
		p->done -= s[i + 1].hi - s[i + 1].lo;
	}
	memmove(&s[i + 1], &s[i + 2], (p->nspans - i - 2) * sizeof *s);
	p->nspans--;
}

/* Merge span i with its neighbours while they touch it. */
static void settle(struct progress *p, int i)
{
	while (i + 1 < p->nspans && p->spans[i + 1].lo <= p->spans[i].hi)
		merge_next(p, i);
	while (i > 0 && p->spans[i].lo <= p->spans[i - 1].hi)
		merge_next(p, --i);
}

/* Room for one more span: the two nearest ones merge. */
static void make_room(struct progress *p)
{
	uint64_t gap, best = UINT64_MAX;
	int i, at = 0;

	for (i = 0; i + 1 < p->nspans; i++) {
		gap = p->spans[i + 1].lo - p->spans[i].hi;
		if (gap < best) {
			best = gap;
			at = i;
		}
	}
	merge_next(p, at);
}

static void count_range(struct progress *p, uint64_t lo, uint64_t hi)
{
	struct progress_span *s = p->spans;
	int i = p->nspans;

	/* The usual case: reading on from where the last span ends. */
	if (i > 0 && lo >= s[i - 1].lo && lo <= s[i - 1].hi) {
		if (hi > s[i - 1].hi) {
			p->done += hi - s[i - 1].hi;
			s[i - 1].hi = hi;
		}
		return;
	}
	while (i > 0 && s[i - 1].lo > lo)
		i--;
	if (p->nspans == PROGRESS_SPANS) {
		make_room(p);
		count_range(p, lo, hi);
		return;
	}
	memmove(&s[i + 1], &s[i], (p->nspans - i) * sizeof *s);
	s[i] = (struct progress_span){ lo, hi };
	p->nspans++;
	p->done += hi - lo;
	settle(p, i);
}

void progress_range(struct progress *p, uint64_t off, uint64_t n)
{
	if (!p->enabled || n == 0)
		return;
	count_range(p, off, off + n < off ? UINT64_MAX : off + n);
	tick(p);
}

void progress_add(struct progress *p, uint64_t n)
{
	uint64_t off = p->next;

	p->next += n;
	progress_range(p, off, n);
}

void progress_end(struct progress *p)
{
	if (!p->enabled || p->ended)
		return;
	if (err_status() == 0 && p->total != 0)
		p->done = p->total;
	show(p, now(), true);
	p->ended = true;
}
