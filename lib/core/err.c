#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"

const char *progname = "imgpipe";

static int last_status;
static char last_msg[1024];
static const char *last_code;	/* a finding code (imginfo(1)), or NULL */
/* raw2qcow2's writing thread may fail while the reading one does. */
static pthread_mutex_t record_mu = PTHREAD_MUTEX_INITIALIZER;

static int record(int status, const char *code, int with_errno,
    const char *fmt, va_list ap)
{
	int saved = errno;
	size_t n;

	pthread_mutex_lock(&record_mu);
	if (last_status == 0) {	/* keep the first, root-cause error */
		last_status = status;
		last_code = code;
		vsnprintf(last_msg, sizeof last_msg, fmt, ap);
		n = strlen(last_msg);
		if (with_errno && n < sizeof last_msg)
			snprintf(last_msg + n, sizeof last_msg - n, ": %s",
			    strerror(saved));
	}
	pthread_mutex_unlock(&record_mu);
	return -1;
}

int fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, NULL, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_code(int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, code, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_errno(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, NULL, 1, fmt, ap);
	va_end(ap);
	return -1;
}

int err_status(void) { return last_status; }
const char *err_msg(void) { return last_msg; }
const char *err_code(void) { return last_code; }

void err_clear(void)
{
	last_status = 0;
	last_code = NULL;
	last_msg[0] = '\0';
}

void warnmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int exiting;

void err_exit(int status)
{
	exiting = status;
	exit(status);
}

int err_exiting(void)
{
	return exiting;
}

void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	err_exit(status);
}

void die_last(void)
{
	int status = last_status ? last_status : EXIT_REJECT;

	fprintf(stderr, "%s: %s\n", progname,
	    last_msg[0] ? last_msg : "unknown error");
	err_exit(status);
}
