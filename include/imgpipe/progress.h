/*
 * Progress on stderr, like pv: "PROG: 1.2 GiB of 4.0 GiB  30%  210.5
 * MiB/s  ETA 0:00:13".  It counts the input, each byte once, whatever
 * the order and however often it is read (a header read twice, a tail
 * probed first).  On a terminal one line is redrawn in place (\r, then
 * clear to its end); otherwise a plain line every few seconds.  Either
 * way a final line ends it, at 100% when the job succeeded and the total
 * was known.
 */
#ifndef IMGPIPE_PROGRESS_H
#define IMGPIPE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

/* Separate runs of input counted; beyond this, the nearest two merge. */
#define PROGRESS_SPANS 16
/* Seconds between lines: redrawn on a terminal, appended elsewhere. */
#define PROGRESS_TTY_INTERVAL 0.5
#define PROGRESS_LOG_INTERVAL 5.0

struct progress_span {
	uint64_t lo, hi;
};

struct progress {
	bool enabled;
	bool tty;		/* stderr is a terminal */
	bool ended;
	uint64_t total;		/* 0 when unknown */
	uint64_t done;		/* input bytes counted */
	uint64_t next;		/* where progress_add() counts from */
	double start, last;	/* seconds, monotonic */
	int nspans;
	struct progress_span spans[PROGRESS_SPANS];	/* counted, sorted */
};

/* total: the input's size, 0 when unknown. */
void progress_start(struct progress *p, bool enabled, uint64_t total);
/* The total, when it is learnt after the start; 0 changes nothing. */
void progress_total(struct progress *p, uint64_t total);
/* n more bytes of a stream, after those counted by progress_add(). */
void progress_add(struct progress *p, uint64_t n);
/* Input bytes [off, off + n) were read; those already counted are not. */
void progress_range(struct progress *p, uint64_t off, uint64_t n);
/*
 * The final line.  The job succeeded when no error is recorded (err.h):
 * then the whole input counts as done.  Again, it does nothing.
 */
void progress_end(struct progress *p);

#endif
