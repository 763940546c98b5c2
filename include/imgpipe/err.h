/* Errors, messages and exit statuses (DESIGN.md "Messages and exit status"). */
#ifndef IMGPIPE_ERR_H
#define IMGPIPE_ERR_H

#include <stdbool.h>
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
 * Finding codes: the class of a defect in an image, the same whichever way
 * the image arrives (imginfo(1) documents each).  Safety findings (a
 * backing file, encryption, ...) have codes of their own in the readers.
 */
#define FINDING_TRUNCATED	"truncated"	/* ends before what it declares */
#define FINDING_OUT_OF_RANGE	"out-of-range"	/* points outside its area */
#define FINDING_OVERLAP		"overlap"	/* two structures share bytes */
#define FINDING_SHARED_BLOCK	"shared-block"	/* two entries, one block */
#define FINDING_MISALIGNED	"misaligned"	/* not on its boundary */
#define FINDING_MALFORMED	"malformed"	/* a value the format forbids */

/*
 * Not a finding: the run needs more memory than the parking store's
 * budget (--mem) allows.  A limit of this run, not a defect of the image:
 * it exits 1 with the store's message from a file and from a pipe, and no
 * reader names it as its format's fault (err_rejects_image()).
 */
#define ERR_BUDGET		"budget"

/*
 * Library functions report failure by returning -1 after recording one
 * error: a status, the file it is about and a message without the program
 * name.  The first error recorded wins until err_clear(), so the root
 * cause is reported.  Messages print as "PROGRAM: FILE: message"
 * (DESIGN.md): FILE is the current input (err_input) unless the error
 * names another (fail_file, fail_io); a usage error names none.
 */
int fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Like fail(), appending ": strerror(errno)". */
int fail_errno(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Like fail(), also recording the class of defect: a finding code of
 * format.h (FINDING_TRUNCATED, ...), a string constant.
 */
int fail_code(int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * An error about file rather than the input: an output, a directory, a
 * list.  file NULL: about no file.
 */
int fail_file(int status, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * An I/O error on file (EXIT_IO): "what: strerror(errno)", or the
 * system's reason alone when what is NULL ("No such file or directory").
 */
int fail_io(const char *file, const char *what);
/*
 * The input that errors recorded from now on are about: the source sets
 * it when it opens ("stdin" for standard input); NULL: none.
 */
void err_input(const char *name);
int err_status(void);
const char *err_msg(void);
/* The file the recorded error is about, or "". */
const char *err_file(void);
/* The recorded error on stderr: "progname: file: message". */
void err_report(void);
/* The finding code of the recorded error (or ERR_BUDGET), or NULL. */
const char *err_code(void);
/* The recorded error is the budget's refusal (ERR_BUDGET): no image's. */
bool err_is_budget(void);
/*
 * The recorded error is a rejection of the image (EXIT_REJECT), one a
 * reader may name as its format's: not the budget's (ERR_BUDGET).
 */
bool err_rejects_image(void);
void err_clear(void);
/*
 * The recorded error, kept aside: a reader that finds an error while
 * earlier work is still pending (a batch of grains not yet inflated)
 * saves it, clears it, finishes the earlier work, and restores it only
 * if that work raised none, so the first error in the image's order wins.
 */
struct err_saved {
	int status;
	const char *code;
	char file[1024];
	char msg[1024];
};
void err_save(struct err_saved *s);
void err_restore(const struct err_saved *s);

void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* err_report(), then exit with the recorded status. */
noreturn void die_last(void);
/*
 * exit(status), remembering status for the exit handlers: cli_init's
 * check of stdout keeps a failure's status and turns a success into 3.
 */
noreturn void err_exit(int status);
/* The status err_exit() was given, or 0. */
int err_exiting(void);

#endif
