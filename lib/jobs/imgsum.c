/*
 * imgsum: open each image through the readers img2raw uses, emit its
 * virtual disk into a digest sink, and print or check the digest lines
 * in the formats of sha256sum and xxhsum.  -c follows coreutils: the same
 * lines accepted, the same verdicts, warnings and messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/imgsum.h"
#include "imgpipe/job.h"
#include "imgpipe/source.h"

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
		rc = source_drain(img->src);
	if (rc == 0)
		memcpy(dj->hex, ds.hex, sizeof ds.hex);
	digest_sink_free(&ds);
	return rc;
}

/* The digest of the virtual disk (or the bytes) at path into hex. */
static int digest_image(const struct imgsum_opts *o,
    const struct digest_algo *algo, const char *path, char *hex)
{
	struct image_job j = { .input = is_stdin(path) ? NULL : path,
	    .format = o->format, .plain = o->bytes, .progress = o->progress,
	    .size = o->size, .mem = o->mem, .tmpdir = o->tmpdir, .extents = o->extents };
	struct digest_job dj = { algo, hex };

	return image_job_run(&j, digest_emit, &dj);
}

/* Report the recorded error and clear it for the next file; returns its
 * status. */
static int report_error(void)
{
	int status = err_status() ? err_status() : EXIT_REJECT;

	err_report();
	err_clear();
	return status;
}

/* coreutils: a name with a backslash, newline or CR is escaped, the line
 * marked with a leading backslash. */
static bool name_needs_escape(const char *name)
{
	return strpbrk(name, "\\\n\r") != NULL;
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
		else if (*p == '\r')
			fputs("\\r", stdout);
		else
			putchar(*p);
	}
}

static int flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail_io("stdout", "write error");
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
		st = report_error();
		if (status == 0)
			status = st;
	}
	return status;
}

/* ---- -c ---------------------------------------------------------------- */

/* One line of a check list, split in place. */
struct check_line {
	const struct digest_algo *algo;
	char *hex;
	char *name;
	bool tagged;		/* "TAG (NAME) = HEX" */
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool all_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '\0' || !strchr("0123456789abcdefABCDEF", s[i]))
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
		else if (*s == 'r')
			*w++ = '\r';
		else
			return false;
	}
	*w = '\0';
	return true;
}

/* The algorithm whose tag s starts with, followed by " (" or "(". */
static const struct digest_algo *tag_at(const char *s,
    const struct digest_algo *forced, size_t *taglen)
{
	const struct digest_algo *a;
	size_t n;

	for (a = digest_algos; a->name != NULL; a++) {
		n = strlen(a->tag);
		if ((forced == NULL || a == forced) &&
		    strncmp(s, a->tag, n) == 0 &&
		    (s[n] == '(' || (s[n] == ' ' && s[n + 1] == '('))) {
			*taglen = n;
			return a;
		}
	}
	return NULL;
}

/* Any tag, to tell a tag line of another algorithm from a digest. */
static bool starts_with_a_tag(const char *s)
{
	size_t n;

	return tag_at(s, NULL, &n) != NULL;
}

/* "TAG (NAME) = HEX", the name ending at the last ')' (BSD's md5 does
 * not escape names). */
static bool parse_tag_line(char *s, struct check_line *cl, bool escaped)
{
	char *close = strrchr(s, ')');

	if (close == NULL)
		return false;
	*close = '\0';
	cl->name = s;
	if (escaped && !unescape_name(s))
		return false;
	s = close + 1;
	while (is_blank(*s))
		s++;
	if (*s++ != '=')
		return false;
	while (is_blank(*s))
		s++;
	cl->hex = s;
	return true;
}

/*
 * "HEX  NAME", "HEX *NAME", or "HEX NAME" (BSD's reversed form; never
 * mixed with the others in one run, as coreutils has it).
 */
static bool parse_digest_line(char *s, struct check_line *cl,
    const struct digest_algo *forced, bool escaped)
{
	static int reversed = -1;
	size_t n = strspn(s, "0123456789abcdefABCDEF");

	if (!is_blank(s[n]))
		return false;
	cl->algo = forced ? forced : digest_algo_by_hexlen(n);
	if (cl->algo == NULL || n != 2 * cl->algo->len)
		return false;
	s[n] = '\0';
	cl->hex = s;
	s += n + 1;
	if (strlen(s) == 1 || (*s != ' ' && *s != '*')) {
		if (reversed == 0)
			return false;
		reversed = 1;
	} else if (reversed != 1) {
		reversed = 0;
		s++;
	}
	cl->name = s;
	if (*s == '\0')
		return false;
	return !escaped || unescape_name(s);
}

/* coreutils' split_3, for every algorithm: -a fixes the algorithm, else
 * the tag or the number of digits chooses it. */
static bool parse_check_line(char *s, struct check_line *cl,
    const struct digest_algo *forced)
{
	bool escaped;
	size_t taglen;

	while (is_blank(*s))
		s++;
	escaped = *s == '\\';
	if (escaped)
		s++;
	cl->algo = tag_at(s, forced, &taglen);
	cl->tagged = cl->algo != NULL;
	if (cl->algo != NULL) {
		s += taglen;
		if (*s == ' ')
			s++;
		if (!parse_tag_line(s + 1, cl, escaped))
			return false;
	} else if (starts_with_a_tag(s) ||
	    !parse_digest_line(s, cl, forced, escaped)) {
		return false;
	}
	return strlen(cl->hex) == 2 * cl->algo->len &&
	    all_hex(cl->hex, strlen(cl->hex));
}

/* What one list gave. */
struct check_counts {
	unsigned long proper, malformed, mismatched, unread, verified;
	unsigned long mismatched_32;	/* of 32-digit lines read as XXH128 */
};

/* What the whole run gave, for the exit status. */
struct check_run {
	const struct imgsum_opts *o;
	bool mismatch;
	int unread_status;	/* of the first listed file not digested */
	bool list_unreadable;
	bool format_failure;	/* no proper line, nothing verified, --strict */
};

static int print_verdict(const struct imgsum_opts *o, const char *name,
    const char *verdict, bool ok)
{
	if (o->status || (ok && o->quiet))
		return 0;
	if (name_needs_escape(name))
		putchar('\\');
	print_name(name);
	printf(": %s\n", verdict);
	return flush_stdout();
}

static bool is_missing(const char *name)
{
	struct stat st;

	return !is_stdin(name) && stat(name, &st) < 0 && errno == ENOENT;
}

/* Recompute one listed digest; -1 only when stdout fails. */
static int check_one(struct check_run *run, const struct check_line *cl,
    bool list_is_stdin, struct check_counts *cc)
{
	const struct imgsum_opts *o = run->o;
	char hex[DIGEST_HEX_MAX];
	int st;

	if (o->ignore_missing && is_missing(cl->name))
		return 0;
	if (list_is_stdin && is_stdin(cl->name)) {
		fail_file(EXIT_USAGE, "-", "cannot digest stdin: the list is "
		    "read from it");
	} else if (digest_image(o, cl->algo, cl->name, hex) == 0) {
		cc->verified++;
		if (strcasecmp(hex, cl->hex) == 0)
			return print_verdict(o, cl->name, "OK", true);
		cc->mismatched++;
		if (o->algo == NULL && cl->algo->id == DIGEST_XXH128 &&
		    !cl->tagged)
			cc->mismatched_32++;
		run->mismatch = true;
		return print_verdict(o, cl->name, "FAILED", false);
	}
	st = report_error();
	if (run->unread_status == 0)
		run->unread_status = st;
	cc->unread++;
	return print_verdict(o, cl->name, "FAILED open or read", false);
}

static void warn_count(unsigned long n, const char *one, const char *many)
{
	if (n > 0)
		warnmsg("WARNING: %lu %s", n, n == 1 ? one : many);
}

static void list_verdict(struct check_run *run, const char *list,
    const struct check_counts *cc)
{
	const struct imgsum_opts *o = run->o;

	if (cc->proper == 0) {
		warnmsg("%s: no properly formatted checksum lines found", list);
		run->format_failure = true;
		return;
	}
	if (!o->status) {
		warn_count(cc->malformed, "line is improperly formatted",
		    "lines are improperly formatted");
		warn_count(cc->unread, "listed file could not be read",
		    "listed files could not be read");
		warn_count(cc->mismatched, "computed checksum did NOT match",
		    "computed checksums did NOT match");
		if (cc->mismatched_32 > 0)
			warnmsg("%s: 32-digit lines are read as XXH128 (xxhsum "
			    "-H2); for md5sum's, add -a md5", list);
	}
	if (o->ignore_missing && cc->verified == 0 && cc->unread == 0 &&
	    cc->mismatched == 0) {
		warnmsg("%s: no file was verified", list);
		run->format_failure = true;
	}
	if (o->strict && cc->malformed > 0)
		run->format_failure = true;
}

static void chomp(char *line, ssize_t *len)
{
	if (*len > 0 && line[*len - 1] == '\n')
		line[--*len] = '\0';
	if (*len > 0 && line[*len - 1] == '\r')
		line[--*len] = '\0';
}

static void warn_malformed(const struct imgsum_opts *o, const char *list,
    unsigned long lineno)
{
	if (o->warn && !o->status)
		warnmsg("%s: %lu: improperly formatted %s%schecksum line", list,
		    lineno, o->algo ? o->algo->tag : "", o->algo ? " " : "");
}

/* One list; -1 only when stdout fails. */
static int check_list(struct check_run *run, const char *list)
{
	bool list_is_stdin = is_stdin(list);
	FILE *f = list_is_stdin ? stdin : fopen(list, "r");
	struct check_counts cc = { 0 };
	unsigned long lineno = 0;
	struct check_line cl;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	if (list_is_stdin)
		list = "stdin";
	if (f == NULL) {
		fail_io(list, NULL);
		report_error();
		run->list_unreadable = true;
		return 0;
	}
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		chomp(line, &len);
		if (len == 0 || line[0] == '#')
			continue;
		if (strlen(line) != (size_t)len ||
		    !parse_check_line(line, &cl, run->o->algo)) {
			cc.malformed++;
			warn_malformed(run->o, list, lineno);
			continue;
		}
		cc.proper++;
		rc = check_one(run, &cl, list_is_stdin, &cc);
	}
	if (rc == 0 && ferror(f)) {
		fail_io(list, "read error");
		report_error();
		run->list_unreadable = true;
	} else if (rc == 0) {
		list_verdict(run, list, &cc);
	}
	free(line);
	if (!list_is_stdin)
		fclose(f);
	return rc;
}

int imgsum_check(const struct imgsum_opts *o, char *const *lists, int nlists)
{
	struct check_run run = { .o = o };
	int i;

	for (i = 0; i < (nlists > 0 ? nlists : 1); i++)
		if (check_list(&run, nlists > 0 ? lists[i] : NULL) < 0)
			return -1;
	if (run.mismatch)
		return EXIT_INTEGRITY;
	if (run.unread_status != 0)
		return run.unread_status;
	if (run.list_unreadable)
		return EXIT_IO;
	return run.format_failure ? EXIT_REJECT : 0;
}
