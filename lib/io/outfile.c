#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "imgpipe/err.h"
#include "imgpipe/grow.h"
#include "imgpipe/outfile.h"

/*
 * Named temporaries to remove if we exit or are killed first.  The list
 * changes only with the cleanup signals blocked, and threads we start
 * block them for good (start_thread), so the handler, which runs on the
 * main thread, never sees the list half changed.
 */
struct temp {
	int dirfd;
	const char *name;
};
static struct temp *temps;
static size_t ntemps, temps_cap;
static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP };

void temp_hold(sigset_t *old)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < sizeof cleanup_signals / sizeof cleanup_signals[0]; i++)
		sigaddset(&set, cleanup_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void temp_release(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int temp_register(int dirfd, const char *name)
{
	sigset_t old;
	int rc;

	temp_hold(&old);
	rc = grow_array(&temps, ntemps, &temps_cap, sizeof *temps, 8, SIZE_MAX);
	if (rc == 0)
		temps[ntemps++] = (struct temp){ dirfd, name };
	temp_release(&old);
	return rc;
}

void temp_forget(const char *name)
{
	sigset_t old;
	size_t i;

	temp_hold(&old);
	for (i = 0; i < ntemps; i++)
		if (temps[i].name == name) {
			temps[i] = temps[--ntemps];
			break;
		}
	temp_release(&old);
}

static void remove_temps(void)
{
	size_t i;

	for (i = 0; i < ntemps; i++)
		unlinkat(temps[i].dirfd, temps[i].name, 0);
}

static void on_signal(int sig)
{
	remove_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

void signals_init(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof cleanup_signals / sizeof cleanup_signals[0]; i++)
		sigaction(cleanup_signals[i], &sa, NULL);
	/* A closed pipe is a write error (exit 3), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	atexit(remove_temps);
}

int start_thread(pthread_t *tid, void *(*fn)(void *), void *arg)
{
	sigset_t old;
	int rc;

	temp_hold(&old);
	rc = pthread_create(tid, NULL, fn, arg);
	temp_release(&old);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	d = strndup(path, slash - path);
	return d;
}

/*
 * outfile_open() keeps the file it replaces whole until the rename, but
 * gives back its cached pages now: freed pages are the cheapest the kernel
 * can hand the new output (see remove_replaced), and the old file is
 * still on disk.
 */
static int open_replaced(const char *path)
{
	return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* fd (from open_replaced; -1: nothing to do) is closed. */
static void drop_replaced_cache(int fd)
{
	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

/*
 * The last close of a removed file frees its pages, one by one: 0.07 s
 * for 1.3 GB on tmpfs, which the new output waited for.  Where the file
 * system has room for the old file twice over, that close runs on a
 * thread of its own while the output starts: img2raw of the bench's 4
 * GiB qcow2 over its output on tmpfs, 8 alternating rounds, medians 0.53
 * s against 0.57 s (qemu-img 0.62 s).  Elsewhere, and for a file
 * under RELEASE_BEHIND_MIN, it goes first, so that replacing a file
 * still never needs room for two.
 */
#define RELEASE_BEHIND_MIN ((uint64_t)64 << 20)

static void *release_main(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

static bool release_behind(int fd)
{
	struct statvfs sv;
	struct stat st;
	uint64_t used;

	if (fstat(fd, &st) < 0 || fstatvfs(fd, &sv) < 0)
		return false;
	used = (uint64_t)st.st_blocks * 512;
	return used >= RELEASE_BEHIND_MIN &&
	    (uint64_t)sv.f_bavail * sv.f_frsize / 2 >= used;
}

static void release_replaced(int fd)
{
	pthread_t tid;

	if (release_behind(fd) &&
	    start_thread(&tid, release_main, (void *)(intptr_t)fd) == 0)
		pthread_detach(tid);
	else
		close(fd);
}

/*
 * outfile_replace() removes the file -o names as the output starts, as tar
 * and install do; the new one gets the name only on success, so a failed
 * run leaves no file at all rather than one that looks complete, and
 * replacing a file never needs room for two.  That room is memory on
 * tmpfs, where keeping the old file made the new output take fresh pages
 * beside it; on this project's virtual machines a page the guest has left
 * free for a few seconds has gone back to the host (free page reporting),
 * and its first write costs a host fault: img2raw of a qcow2 over a 4 GiB
 * output present on tmpfs ran 1.0-10.7 s, and runs 0.8-1.1 s this way.
 * qemu-img truncates the old file for the same reason.
 */
static void remove_replaced(const char *path)
{
	int fd = open_replaced(path);

	if (unlink(path) < 0 && errno != ENOENT)
		drop_replaced_cache(fd);	/* it stays until the rename */
	else if (fd >= 0)
		release_replaced(fd);
}

static int open_output(struct outfile *of, const char *path,
    bool remove_old)
{
	struct stat st;
	sigset_t held;
	bool exists;
	char *dir;
	mode_t mask;

	memset(of, 0, sizeof *of);
	if (path == NULL || strcmp(path, "-") == 0) {
		of->fd = 1;
		of->name = "stdout";
		if (isatty(1))
			return fail(EXIT_USAGE, "refusing to write image data "
			    "to a terminal; use -o FILE or a redirection");
		return 0;
	}
	of->name = path;
	exists = stat(path, &st) == 0;
	if (exists && !S_ISREG(st.st_mode)) {
		/* A device or FIFO is written in place, never replaced. */
		of->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (of->fd < 0)
			return fail_io(path, NULL);
		return 0;
	}
	of->path = path;
	if (exists && remove_old)
		remove_replaced(path);
	else if (exists)
		drop_replaced_cache(open_replaced(path));
	dir = dir_of(path);
	if (dir == NULL)
		return fail(EXIT_IO, "out of memory");
	mask = umask(0);
	umask(mask);
#ifdef O_TMPFILE
	of->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666 & ~mask);
	if (of->fd >= 0) {
		of->unnamed = true;
		free(dir);
		return 0;
	}
#endif
	if (asprintf(&of->tmppath, "%s/.%s.XXXXXX", dir,
	    strrchr(path, '/') ? strrchr(path, '/') + 1 : path) < 0) {
		free(dir);
		return fail(EXIT_IO, "out of memory");
	}
	free(dir);
	temp_hold(&held);
	of->fd = mkstemp(of->tmppath);
	if (of->fd < 0)
		fail_io(path, "cannot create");
	else if (temp_register(AT_FDCWD, of->tmppath) < 0) {
		close(of->fd);
		unlink(of->tmppath);
		of->fd = -1;
	}
	temp_release(&held);
	if (of->fd < 0) {
		free(of->tmppath);
		of->tmppath = NULL;
		return -1;
	}
	fchmod(of->fd, 0666 & ~mask);
	return 0;
}

int outfile_open(struct outfile *of, const char *path)
{
	return open_output(of, path, false);
}

int outfile_replace(struct outfile *of, const char *path)
{
	return open_output(of, path, true);
}

static int link_unnamed(struct outfile *of)
{
	char proc[64], *tmp = NULL;
	int i;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", of->fd);
	/* linkat will not replace an existing file: link a new name, rename. */
	for (i = 0; i < 100; i++) {
		free(tmp);
		if (asprintf(&tmp, "%s.%d.%d.tmp", of->path, (int)getpid(), i) < 0)
			return fail(EXIT_IO, "out of memory");
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
			break;
		if (errno != EEXIST) {
			fail_io(of->path, "cannot create");
			free(tmp);
			return -1;
		}
	}
	if (rename(tmp, of->path) < 0) {
		fail_io(of->path, "cannot create");
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

int outfile_commit(struct outfile *of)
{
	int rc = 0;

	if (of->path == NULL) {
		if (of->fd > 2 && close(of->fd) < 0)
			rc = fail_io(of->name, "write error");
		return rc;
	}
	if (of->unnamed)
		rc = link_unnamed(of);
	else if (rename(of->tmppath, of->path) < 0)
		rc = fail_io(of->path, "cannot rename into place");
	if (close(of->fd) < 0 && rc == 0)
		rc = fail_io(of->path, "write error");
	of->fd = -1;
	if (of->tmppath != NULL) {
		if (rc < 0)
			unlink(of->tmppath);
		temp_forget(of->tmppath);
		free(of->tmppath);
		of->tmppath = NULL;
	}
	return rc;
}

void outfile_abort(struct outfile *of)
{
	if (of->path == NULL || of->fd < 0) {
		if (of->fd > 2)
			close(of->fd);
		return;
	}
	close(of->fd);
	of->fd = -1;
	if (of->tmppath != NULL) {
		unlink(of->tmppath);
		temp_forget(of->tmppath);
		free(of->tmppath);
		of->tmppath = NULL;
	}
}
