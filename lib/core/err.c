#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"

const char *progname = "imgpipe";

#define ERR_FILE_MAX 1024

static int last_status;
static char last_msg[1024];
static char last_file[ERR_FILE_MAX];	/* what the error is about, or "" */
static const char *last_code;	/* a finding code (imginfo(1)), or NULL */
static char input_name[ERR_FILE_MAX];	/* err_input(), or "" */
/* raw2qcow2's writing thread may fail while the reading one does. */
static pthread_mutex_t record_mu = PTHREAD_MUTEX_INITIALIZER;

/* The file an error is about: the one named, else the input, unless it
 * is a usage error (about the command line). */
static void set_file(int status, const char *file)
{
	if (file == NULL && status != EXIT_USAGE)
		file = input_name;
	snprintf(last_file, sizeof last_file, "%s", file ? file : "");
}

static int record(int status, const char *code, const char *file,
    int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	size_t n;

	pthread_mutex_lock(&record_mu);
	if (last_status == 0) {	/* keep the first, root-cause error */
		last_status = status;
		last_code = code;
		set_file(status, file);
		vsnprintf(last_msg, sizeof last_msg, fmt, ap);
		n = strlen(last_msg);
		if (with_errno && n < sizeof last_msg)
			snprintf(last_msg + n, sizeof last_msg - n, "%s%s",
			    n ? ": " : "", strerror(saved));
	}
	pthread_mutex_unlock(&record_mu);
	return -1;
}

int fail(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, NULL, NULL, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_code(int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, code, NULL, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_errno(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, NULL, NULL, 1, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_file(int status, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(status, NULL, file ? file : "", 0, fmt, ap);
	va_end(ap);
	return -1;
}

/* record() with no arguments to format */
static int record_plain(int status, const char *file, int with_errno,
    const char *msg, ...) __attribute__((format(printf, 4, 5)));

static int record_plain(int status, const char *file, int with_errno,
    const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	record(status, NULL, file, with_errno, msg, ap);
	va_end(ap);
	return -1;
}

int fail_io(const char *file, const char *what)
{
	return record_plain(EXIT_IO, file ? file : "", 1, "%s",
	    what ? what : "");
}

void err_input(const char *name)
{
	snprintf(input_name, sizeof input_name, "%s", name ? name : "");
}

int err_status(void) { return last_status; }
const char *err_msg(void) { return last_msg; }
const char *err_file(void) { return last_file; }
const char *err_code(void) { return last_code; }

bool err_is_budget(void)
{
	return last_code != NULL && strcmp(last_code, ERR_BUDGET) == 0;
}

bool err_rejects_image(void)
{
	return last_status == EXIT_REJECT && !err_is_budget();
}

void err_clear(void)
{
	last_status = 0;
	last_code = NULL;
	last_msg[0] = '\0';
	last_file[0] = '\0';
}

void err_report(void)
{
	if (last_file[0] != '\0')
		fprintf(stderr, "%s: %s: %s\n", progname, last_file,
		    last_msg[0] ? last_msg : "unknown error");
	else
		fprintf(stderr, "%s: %s\n", progname,
		    last_msg[0] ? last_msg : "unknown error");
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

	err_report();
	err_exit(status);
}

void err_save(struct err_saved *s)
{
	pthread_mutex_lock(&record_mu);
	s->status = last_status;
	s->code = last_code;
	snprintf(s->file, sizeof s->file, "%s", last_file);
	snprintf(s->msg, sizeof s->msg, "%s", last_msg);
	pthread_mutex_unlock(&record_mu);
}

void err_restore(const struct err_saved *s)
{
	pthread_mutex_lock(&record_mu);
	last_status = s->status;
	last_code = s->code;
	snprintf(last_file, sizeof last_file, "%s", s->file);
	snprintf(last_msg, sizeof last_msg, "%s", s->msg);
	pthread_mutex_unlock(&record_mu);
}
