/*
 * Output files that never look complete after a failure: -o FILE is
 * written under a temporary name (or as an unnamed O_TMPFILE) in the same
 * directory and renamed into place by outfile_commit().  Named temporaries
 * are removed on exit and on SIGINT, SIGTERM and SIGHUP.
 */
#ifndef IMGPIPE_OUTFILE_H
#define IMGPIPE_OUTFILE_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

struct outfile {
	int fd;
	const char *path;	/* final name; NULL for stdout or a device */
	const char *name;	/* for messages: path or "stdout" */
	char *tmppath;		/* named temporary, or NULL */
	bool unnamed;		/* O_TMPFILE: linked in on commit */
};

/*
 * path NULL or "-": standard output.  A regular file already at path stays
 * whole until outfile_commit() renames the new one over it.
 */
int outfile_open(struct outfile *of, const char *path);
/*
 * The same, but a regular file already at path is removed now (as tar and
 * install do), its space and memory free for the new one: for callers that
 * have read their input's header, so a wrong input leaves it alone.
 */
int outfile_replace(struct outfile *of, const char *path);
/* Close (checking for write errors) and move into place. */
int outfile_commit(struct outfile *of);
/* Remove the temporary; output to stdout is left as it is. */
void outfile_abort(struct outfile *of);

/* Install the signal handlers that remove temporaries; ignore SIGPIPE. */
void signals_init(void);
/*
 * A named temporary of the caller's (name relative to dirfd, kept by the
 * caller until temp_forget), removed if we exit or are killed first.
 */
int temp_register(int dirfd, const char *name);
/*
 * Around creating a named temporary and registering it: the cleanup
 * signals wait in between, so that a kill never finds it created but not
 * yet registered, and leaves it behind.
 */
void temp_hold(sigset_t *old);
void temp_release(const sigset_t *old);
void temp_forget(const char *name);
/* pthread_create, with the cleanup signals blocked in the new thread. */
int start_thread(pthread_t *tid, void *(*fn)(void *), void *arg);

#endif
