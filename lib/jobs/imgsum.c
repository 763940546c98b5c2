/*
 * imgsum: open each image through the readers img2raw uses, emit its
 * virtual disk into a digest sink, and print or check the digest lines
 * in the formats of xxhsum and sha256sum.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/digest.h"
#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/job.h"

static bool is_stdin(const char *path)
{
	return path == NULL || strcmp(path, "-") == 0;
}

struct digest_job {
	const struct digest_algo *algo;
	char *hex;
};

static int digest_emit(struct image *img, struct stash *st, void *arg)
{
	struct digest_job *dj = arg;
	struct digest_sink ds;
	struct emitter em;
	int rc;

	if (digest_sink_init(&ds, dj->algo) < 0)
		return -1;
	emitter_init(&em, &ds.base, st, img->virtual_size);
	rc = image_read(img, &em);
	emitter_free(&em);
	if (rc == 0)
		memcpy(dj->hex, ds.hex, sizeof ds.hex);
	digest_sink_free(&ds);
	return rc;
}

/* The digest of the virtual disk of the image at path into hex. */
static int digest_image(const struct imgsum_opts *o,
    const struct digest_algo *algo, const char *path, char *hex)
{
	struct image_job j = { .input = is_stdin(path) ? NULL : path,
	    .format = o->format, .progress = o->progress, .mem = o->mem,
	    .tmpdir = o->tmpdir, .extents = o->extents };
	struct digest_job dj = { algo, hex };

	return image_job_run(&j, digest_emit, &dj);
}

/*
 * Report the recorded error and clear it for the next file; returns its
 * status.  named: say which file, unless the message already does.
 */
static int report_error(const char *name, bool named)
{
	const char *msg = err_msg();
	size_t n = strlen(name);
	int status = err_status() ? err_status() : EXIT_REJECT;

	if (named && !(strncmp(msg, name, n) == 0 && msg[n] == ':'))
		warnmsg("%s: %s", name, msg);
	else
		warnmsg("%s", msg);
	err_clear();
	return status;
}

/* coreutils: a name with a backslash or newline is escaped, line marked. */
static bool name_needs_escape(const char *name)
{
	return strpbrk(name, "\\\n") != NULL;
}

static void print_name(const char *name)
{
	const char *p;

	if (!name_needs_escape(name)) {
		fputs(name, stdout);
		return;
	}
	for (p = name; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", stdout);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else
			putchar(*p);
	}
}

static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail_errno(EXIT_IO, "write error on stdout");
	return 0;
}

static int print_digest_line(const struct digest_algo *algo, bool tag,
    const char *name, const char *hex)
{
	if (name_needs_escape(name))
		putchar('\\');
	if (tag || algo->always_tag) {
		printf("%s (", algo->tag);
		print_name(name);
		printf(") = %s\n", hex);
	} else {
		printf("%s  ", hex);
		print_name(name);
		putchar('\n');
	}
	return flush_stdout();
}

int imgsum_print(const struct imgsum_opts *o, char *const *paths, int npaths)
{
	const struct digest_algo *algo = o->algo ? o->algo : &digest_algos[0];
	char hex[DIGEST_HEX_MAX];
	const char *path, *name;
	int i, status = 0, st;

	for (i = 0; i < (npaths > 0 ? npaths : 1); i++) {
		path = npaths > 0 ? paths[i] : NULL;
		name = is_stdin(path) ? algo->stdin_name : path;
		if (digest_image(o, algo, path, hex) == 0) {
			if (print_digest_line(algo, o->tag, name, hex) < 0)
				return -1;
			continue;
		}
		st = report_error(is_stdin(path) ? "-" : path, npaths > 1);
		if (status == 0)
			status = st;
	}
	return status;
}

int stdout_close(void)
{
	if (flush_stdout() < 0)
		return -1;
	if (fclose(stdout) != 0)
		return fail_errno(EXIT_IO, "write error on stdout");
	return 0;
}

/* One line of a check list, split in place. */
struct check_line {
	const struct digest_algo *algo;
	const char *hex;
	const char *name;
};

static bool all_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
			return false;
	return true;
}

/* Undo print_name's escapes in place; false on a stray backslash. */
static bool unescape_name(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s != '\\') {
			*w++ = *s;
			continue;
		}
		s++;
		if (*s == '\\')
			*w++ = '\\';
		else if (*s == 'n')
			*w++ = '\n';
		else
			return false;
	}
	*w = '\0';
	return true;
}

/* "XXH128 (NAME) = HEX" */
static bool parse_tag_line(char *line, struct check_line *cl)
{
	char *open = strstr(line, " ("), *close;

	if (open == NULL)
		return false;
	close = strstr(open, ") = ");
	if (close == NULL)
		return false;
	/* the last ") = " ends the name: names may contain one */
	while (strstr(close + 1, ") = ") != NULL)
		close = strstr(close + 1, ") = ");
	*open = '\0';
	*close = '\0';
	cl->algo = digest_algo_by_tag(line);
	cl->name = open + 2;
	cl->hex = close + 4;
	return cl->algo != NULL;
}

/* "HEX  NAME" or "HEX *NAME" (coreutils' binary mark) */
static bool parse_gnu_line(char *line, struct check_line *cl,
    const struct digest_algo *forced)
{
	size_t n = strspn(line, "0123456789abcdefABCDEF");

	if (n == 0 || line[n] != ' ' ||
	    (line[n + 1] != ' ' && line[n + 1] != '*') || line[n + 2] == '\0')
		return false;
	cl->algo = forced ? forced : digest_algo_by_hexlen(n);
	if (cl->algo == NULL)
		return false;
	line[n] = '\0';
	cl->hex = line;
	cl->name = line + n + 2;
	return true;
}

static bool parse_check_line(char *line, struct check_line *cl,
    const struct digest_algo *forced)
{
	bool escaped = line[0] == '\\';

	if (escaped)
		line++;
	if (!(parse_gnu_line(line, cl, forced) || parse_tag_line(line, cl)))
		return false;
	if (forced && cl->algo != forced)
		return false;
	if (strlen(cl->hex) != 2 * cl->algo->len ||
	    !all_hex(cl->hex, strlen(cl->hex)) || cl->name[0] == '\0')
		return false;
	return !escaped || unescape_name((char *)cl->name);
}

struct check_counts {
	unsigned long lines, malformed, mismatched, unread;
	int unread_status;	/* of the first file that could not be read */
};

static int print_check_result(const char *name, const char *result)
{
	if (name_needs_escape(name))
		putchar('\\');
	print_name(name);
	printf(": %s\n", result);
	return flush_stdout();
}

/* Recompute one listed digest; -1 only when stdout fails. */
static int check_one(const struct imgsum_opts *o, const struct check_line *cl,
    bool list_is_stdin, struct check_counts *cc)
{
	char hex[DIGEST_HEX_MAX];
	int st;

	if (list_is_stdin && is_stdin(cl->name)) {
		fail(EXIT_USAGE, "-: cannot digest stdin: the list is read "
		    "from it");
	} else if (digest_image(o, cl->algo, cl->name, hex) == 0) {
		if (strcasecmp(hex, cl->hex) == 0)
			return print_check_result(cl->name, "OK");
		cc->mismatched++;
		return print_check_result(cl->name, "FAILED");
	}
	st = report_error(cl->name, true);
	if (cc->unread++ == 0)
		cc->unread_status = st;
	return print_check_result(cl->name, "FAILED open or read");
}

static void warn_count(unsigned long n, const char *one, const char *many)
{
	if (n > 0)
		warnmsg("WARNING: %lu %s", n, n == 1 ? one : many);
}

static int check_status(const char *list, const struct check_counts *cc)
{
	warn_count(cc->malformed, "line is improperly formatted",
	    "lines are improperly formatted");
	warn_count(cc->unread, "listed file could not be read",
	    "listed files could not be read");
	warn_count(cc->mismatched, "computed checksum did NOT match",
	    "computed checksums did NOT match");
	if (cc->lines == 0) {
		warnmsg("%s: no properly formatted checksum lines found", list);
		return EXIT_REJECT;
	}
	if (cc->mismatched > 0)
		return EXIT_INTEGRITY;
	if (cc->unread > 0)
		return cc->unread_status;
	return cc->malformed > 0 ? EXIT_REJECT : 0;
}

static void chomp(char *line, ssize_t *len)
{
	while (*len > 0 && (line[*len - 1] == '\n' || line[*len - 1] == '\r'))
		line[--*len] = '\0';
}

int imgsum_check(const struct imgsum_opts *o, const char *list)
{
	bool list_is_stdin = is_stdin(list);
	FILE *f = list_is_stdin ? stdin : fopen(list, "r");
	struct check_counts cc = { 0 };
	struct check_line cl;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int status;

	if (list_is_stdin)
		list = "-";
	if (f == NULL) {
		fail_errno(EXIT_IO, "%s", list);
		return report_error(list, false);
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		chomp(line, &len);
		if (len == 0 || line[0] == '#')
			continue;
		if (strlen(line) != (size_t)len ||
		    !parse_check_line(line, &cl, o->algo)) {
			cc.malformed++;
			continue;
		}
		cc.lines++;
		if (check_one(o, &cl, list_is_stdin, &cc) < 0) {
			free(line);
			if (!list_is_stdin)
				fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		fail_errno(EXIT_IO, "read error on %s", list);
		status = report_error(list, false);
	} else {
		status = check_status(list, &cc);
	}
	free(line);
	if (!list_is_stdin)
		fclose(f);
	return status;
}
