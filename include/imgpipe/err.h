/* Errors, messages and exit statuses (DESIGN.md "Messages and exit status"). */
#ifndef IMGPIPE_ERR_H
#define IMGPIPE_ERR_H

#include <stdnoreturn.h>

enum exit_status {
	EXIT_OK = 0,
	EXIT_REJECT = 1,	/* input malformed, unsupported, unsafe, truncated */
	EXIT_USAGE = 2,
	EXIT_IO = 3,		/* read or write error, full disk, closed pipe */
	EXIT_INTEGRITY = 4,	/* digest mismatch */
};

extern const char *progname;

/*
 * Library functions report failure by returning -1 after recording one
 * error: a status and a message without the program name.  The first
 * error recorded wins until err_clear(), so the root cause is reported.
 */
int fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like fail(), appending ": strerror(errno)". */
int fail_errno(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int err_status(void);
const char *err_msg(void);
void err_clear(void);

void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print the recorded error as "progname: message" and exit with its status. */
noreturn void die_last(void);

#endif
