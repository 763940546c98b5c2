/*
 * imginfo: probe and open an image in inspect mode, where readers record
 * safety findings instead of failing, add what the format table does not
 * convert but a cloud must recognise, and report.
 */
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/info.h"
#include "imgpipe/sink.h"
#include "imgpipe/stash.h"

const char *const info_finding_codes[] = {
	FINDING_TRUNCATED, FINDING_OUT_OF_RANGE, FINDING_OVERLAP,
	FINDING_SHARED_BLOCK, FINDING_MISALIGNED, FINDING_MALFORMED,
	"ambiguous", "archive", "backing-file", "compression-type", "corrupt",
	"encryption", "extent-file", "external-data-file",
	"incompatible-features", "l1-size", "log-size", "not-a-disk",
	"parent", "unknown-metadata", "unknown-region", "unsupported-format",
	"virtual-size", "vmdk-footer",
	NULL
};

bool info_finding_known(const char *code)
{
	int i;

	for (i = 0; info_finding_codes[i] != NULL; i++)
		if (strcmp(info_finding_codes[i], code) == 0)
			return true;
	return false;
}

/* Findings of imginfo's own, before and after the reader's. */
#define REPORT_FINDINGS_MAX (2 * FINDINGS_MAX)

struct report {
	char format[32];
	const char *filename;
	bool size_known;
	uint64_t virtual_size;
	bool actual_known;
	uint64_t actual_size;
	struct image img;	/* details, cluster size, backing */
	bool opened;		/* a table format's reader opened it */
	int taken;		/* img.findings already copied to findings */
	struct finding findings[REPORT_FINDINGS_MAX];
	int nfindings;
	/* imginfo's own facts (compression, partition table): image_open
	 * zeroes img, so they live in an image of their own */
	struct image own;
};

static void add_finding(struct report *r, const char *code, const char *text)
{
	struct finding *f;

	if (r->nfindings >= REPORT_FINDINGS_MAX)
		return;
	f = &r->findings[r->nfindings++];
	snprintf(f->code, sizeof f->code, "%s", code);
	snprintf(f->text, sizeof f->text, "%s", text);
}

/* The reader's findings not yet in the report, in the order found. */
static void take_reader_findings(struct report *r)
{
	for (; r->taken < r->img.nfindings; r->taken++)
		if (r->nfindings < REPORT_FINDINGS_MAX)
			r->findings[r->nfindings++] =
			    r->img.findings[r->taken];
}

/*
 * The recorded error as a finding: its code, or malformed; 0.  The
 * budget's (ERR_BUDGET) is no finding of the image: it stays recorded,
 * the run fails with it, and -1.
 */
static int add_error_finding(struct report *r)
{
	if (err_is_budget())
		return -1;
	add_finding(r, err_code() ? err_code() : FINDING_MALFORMED,
	    err_msg());
	err_clear();
	return 0;
}

static bool has_mbr(const unsigned char *h, size_t len)
{
	int i, parts = 0;

	if (len < 512 || h[510] != 0x55 || h[511] != 0xaa)
		return false;
	for (i = 0; i < 4; i++) {
		const unsigned char *e = h + 446 + 16 * i;

		if (e[0] != 0 && e[0] != 0x80)
			return false;
		parts += e[4] != 0;
	}
	return parts > 0;
}

static const char *partition_table(const unsigned char *h, size_t len)
{
	if ((len >= 520 && memcmp(h + 512, "EFI PART", 8) == 0) ||
	    (len >= 4104 && memcmp(h + 4096, "EFI PART", 8) == 0))
		return "gpt";
	return has_mbr(h, len) ? "mbr" : NULL;
}

/* A probe of src: its head and, from a seekable input, its last 512 bytes. */
static void probe_of(struct source *src, struct probe *pb,
    unsigned char tail[512])
{
	memset(pb, 0, sizeof *pb);
	pb->head = src->head;
	pb->headlen = src->headlen;
	pb->size_known = src->size_known;
	pb->size = src->size;
	if (src->seekable && src->size >= 512 &&
	    source_read_at(src, tail, 512, src->size - 512, "footer") == 0) {
		pb->tail = tail;
		pb->taillen = 512;
	}
	err_clear();
}

/*
 * Every format with a signature bid on the head beside the chosen one:
 * ambiguous.  The head only, as qemu-img probes: a pipe shows its tail
 * too late, and file and pipe must find the same.
 */
static void check_ambiguous(struct report *r, struct source *src,
    const struct format *chosen)
{
	struct probe pb = { .head = src->head, .headlen = src->headlen,
	    .size_known = src->size_known, .size = src->size };
	char text[200];
	int i;

	for (i = 0; formats[i] != NULL; i++) {
		if (formats[i] == chosen ||
		    formats[i]->bid(&pb) < BID_SIGNATURE)
			continue;
		snprintf(text, sizeof text, "the input has the signatures of "
		    "both %s and %s", chosen->name, formats[i]->name);
		add_finding(r, "ambiguous", text);
	}
}

/*
 * Whether f's own header starts the input, where a partition table
 * would be: f bids on the first sector alone.  Not so for raw, an ISO
 * (its descriptors start at 32 KiB) or a fixed VHD (a footer at the end:
 * the disk itself starts the file, partition table and all).
 */
static bool header_at_zero(const struct format *f, const struct source *src)
{
	struct probe pb = { .head = src->head,
	    .headlen = src->headlen < 512 ? src->headlen : 512,
	    .size_known = true, .size = src->headlen };

	return f->bid(&pb) >= BID_SIGNATURE;
}

/* GPT or MBR: a fact; inside a container whose header is at 0, ambiguous. */
static void check_partition_table(struct report *r, struct source *src,
    const struct format *f)
{
	const char *pt = partition_table(src->head, src->headlen);
	char text[200];

	if (pt == NULL)
		return;
	image_detail(&r->own, "partition-table", "%s", pt);
	if (!header_at_zero(f, src))
		return;
	snprintf(text, sizeof text, "a %s partition table inside a %s image",
	    pt, f->name);
	add_finding(r, "ambiguous", text);
}

static const struct format *choose(struct source *src, const char *forced)
{
	const struct format *f;
	unsigned char tail[512];
	struct probe pb;
	int i;

	if (format_probe(src, forced, &f) == 0)
		return f;
	if (forced != NULL || strstr(err_msg(), "ambiguous") == NULL)
		return NULL;
	/* Ambiguous: describe the first signature bidder; the finding names
	 * both (check_ambiguous). */
	err_clear();
	probe_of(src, &pb, tail);
	for (i = 0; formats[i] != NULL; i++)
		if (formats[i]->bid(&pb) >= BID_SIGNATURE)
			return formats[i];
	return NULL;
}

static void open_table_format(struct report *r, struct source *src,
    struct stash *st, const char *forced)
{
	const struct format *f = choose(src, forced);
	struct image *img = &r->img;

	if (f == NULL)
		return;
	snprintf(r->format, sizeof r->format, "%s", f->name);
	if (forced == NULL)
		check_ambiguous(r, src, f);
	check_partition_table(r, src, f);
	if (image_open(img, src, st, f->name, true) < 0) {
		take_reader_findings(r);
		add_error_finding(r);
		return;
	}
	take_reader_findings(r);
	r->opened = true;
	img->forced = forced != NULL;	/* chosen, not named */
	r->size_known = img->virtual_size > 0 || src->size_known;
	r->virtual_size = img->virtual_size;
}

static bool allowed(const struct info_opts *o, const char *code)
{
	int i;

	for (i = 0; i < o->nallow; i++)
		if (strcmp(o->allow[i], code) == 0)
			return true;
	return false;
}

static bool is_unsafe(const struct info_opts *o, const struct report *r)
{
	int i;

	for (i = 0; i < r->nfindings; i++)
		if (!allowed(o, r->findings[i].code))
			return true;
	return false;
}

/* ---- JSON, through jansson: always valid, escaped by the library ---- */

/*
 * s as a JSON string; bytes that are not UTF-8 become '?'.
 */
static json_t *json_text(const char *s)
{
	json_t *j = json_stringn(s, strlen(s));
	char *copy;
	size_t i;

	if (j != NULL)
		return j;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (i = 0; copy[i]; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_stringn(copy, strlen(copy));
	free(copy);
	return j;
}

static json_t *detail_value(const struct image_detail *d)
{
	switch (d->type) {
	case DETAIL_NUM:
		return json_integer((json_int_t)d->num);
	case DETAIL_BOOL:
		return json_boolean(d->num);
	default:
		return json_text(d->str);
	}
}

/* The object a fact goes in: data itself, an array item or an object. */
static json_t *detail_parent(json_t *data, json_t *root,
    const struct image_detail *d)
{
	json_t *where = strcmp(d->group, "snapshots") == 0 ? root : data;
	json_t *g, *item;

	if (d->group[0] == '\0')
		return data;
	g = json_object_get(where, d->group);
	if (g == NULL) {
		g = d->in_array ? json_array() : json_object();
		json_object_set_new(where, d->group, g);
	}
	if (!d->in_array)
		return g;
	while (json_array_size(g) <= (size_t)d->item)
		json_array_append_new(g, json_object());
	item = json_array_get(g, d->item);
	return item;
}

static void details_to_json(const struct image_details *ds, json_t *data,
    json_t *root)
{
	const struct image_detail *d;
	int i;

	for (i = 0; i < ds->n; i++) {
		d = &ds->d[i];
		json_object_set_new(detail_parent(data, root, d), d->key,
		    detail_value(d));
	}
}

static json_t *findings_json(const struct info_opts *o,
    const struct report *r)
{
	json_t *list = json_array(), *f;
	int i;

	for (i = 0; i < r->nfindings; i++) {
		f = json_object();
		json_object_set_new(f, "code", json_text(r->findings[i].code));
		json_object_set_new(f, "text", json_text(r->findings[i].text));
		json_object_set_new(f, "allowed",
		    json_boolean(allowed(o, r->findings[i].code)));
		json_array_append_new(list, f);
	}
	return list;
}

static bool has_format_specific(const struct report *r)
{
	return r->img.subformat[0] || r->img.details.n || r->own.details.n;
}

static json_t *format_specific_json(const struct report *r, json_t *root)
{
	json_t *fs = json_object(), *data = json_object();

	details_to_json(&r->img.details, data, root);
	if (r->img.subformat[0])
		json_object_set_new(data, "subformat",
		    json_text(r->img.subformat));
	details_to_json(&r->own.details, data, root);
	json_object_set_new(fs, "type", json_text(r->format));
	json_object_set_new(fs, "data", data);
	return fs;
}

/* qemu-img info's keys where they exist, then our "safety". */
static json_t *report_json(const struct info_opts *o, const struct report *r)
{
	const struct image *img = &r->img;
	json_t *root = json_object(), *safety = json_object();

	json_object_set_new(root, "filename", json_text(r->filename));
	json_object_set_new(root, "format", json_text(r->format));
	if (r->size_known)
		json_object_set_new(root, "virtual-size",
		    json_integer((json_int_t)r->virtual_size));
	if (r->actual_known)
		json_object_set_new(root, "actual-size",
		    json_integer((json_int_t)r->actual_size));
	if (img->cluster_size)
		json_object_set_new(root, "cluster-size",
		    json_integer((json_int_t)img->cluster_size));
	if (img->encrypted)
		json_object_set_new(root, "encrypted", json_true());
	if (img->backing[0])
		json_object_set_new(root, "backing-filename",
		    json_text(img->backing));
	if (img->backing_format[0])
		json_object_set_new(root, "backing-filename-format",
		    json_text(img->backing_format));
	if (r->opened)
		json_object_set_new(root, "dirty-flag",
		    json_boolean(img->dirty));
	if (has_format_specific(r))
		json_object_set_new(root, "format-specific",
		    format_specific_json(r, root));
	json_object_set_new(safety, "verdict",
	    json_text(is_unsafe(o, r) ? "unsafe" : "safe"));
	json_object_set_new(safety, "findings", findings_json(o, r));
	json_object_set_new(root, "safety", safety);
	return root;
}

static int print_json(const struct info_opts *o, const struct report *r)
{
	json_t *root = report_json(o, r);
	int rc = json_dumpf(root, stdout, JSON_INDENT(4));

	json_decref(root);
	putchar('\n');
	return rc == 0 ? 0 : fail_io("stdout", "write error");
}

/* ---- human output, in the look of qemu-img info ---- */

/* qemu's size_to_str(): three significant digits, "4 MiB", "1.5 GiB". */
static char *qemu_size(uint64_t n, char *buf, size_t buflen)
{
	static const char *const suffix[] = { "", "Ki", "Mi", "Gi", "Ti",
	    "Pi", "Ei" };
	double unit = 1;
	int i = 0;

	while (i < 6 && (double)n >= 1000 * unit) {
		unit *= 1024;
		i++;
	}
	snprintf(buf, buflen, "%0.3g %sB", (double)n / unit, suffix[i]);
	return buf;
}

/* qemu-img's human names: "refcount-bits" is "refcount bits". */
static void print_key(const char *key, int indent)
{
	printf("%*s", indent, "");
	for (; *key; key++)
		putchar(*key == '-' ? ' ' : *key);
	printf(":");
}

static void print_value(const struct image_detail *d)
{
	switch (d->type) {
	case DETAIL_NUM:
		printf(" %llu\n", (unsigned long long)d->num);
		break;
	case DETAIL_BOOL:
		printf(" %s\n", d->num ? "true" : "false");
		break;
	default:
		printf(" %s\n", d->str);
	}
}

/* Facts in order; a group's name where it starts, an item's index. */
static void print_details(const struct image_details *ds)
{
	const struct image_detail *d, *prev = NULL;
	int i;

	for (i = 0; i < ds->n; i++, prev = d) {
		d = &ds->d[i];
		if (strcmp(d->group, "snapshots") == 0)
			continue;	/* the snapshot list, printed before */
		if (d->group[0] == '\0') {
			print_key(d->key, 4);
			print_value(d);
			continue;
		}
		if (prev == NULL || strcmp(prev->group, d->group) != 0) {
			print_key(d->group, 4);
			putchar('\n');
		}
		if (d->in_array && (prev == NULL || strcmp(prev->group,
		    d->group) != 0 || prev->item != d->item))
			printf("        [%d]:\n", d->item);
		print_key(d->key, d->in_array ? 12 : 8);
		print_value(d);
	}
}

/* A snapshot's fact by key, 0 or "" when absent. */
static const struct image_detail *snapshot_fact(const struct image_details *ds,
    int item, const char *key)
{
	int i;

	for (i = 0; i < ds->n; i++)
		if (strcmp(ds->d[i].group, "snapshots") == 0 &&
		    ds->d[i].item == item && strcmp(ds->d[i].key, key) == 0)
			return &ds->d[i];
	return NULL;
}

static uint64_t snapshot_num(const struct image_details *ds, int item,
    const char *key)
{
	const struct image_detail *d = snapshot_fact(ds, item, key);

	return d != NULL ? d->num : 0;
}

/* qemu-img's snapshot table (bdrv_snapshot_dump). */
static void print_snapshot(const struct image_details *ds, int item)
{
	const struct image_detail *id = snapshot_fact(ds, item, "id"),
	    *name = snapshot_fact(ds, item, "name"),
	    *icount = snapshot_fact(ds, item, "icount");
	uint64_t clock_ns = snapshot_num(ds, item, "vm-clock-sec") *
	    1000000000ull + snapshot_num(ds, item, "vm-clock-nsec");
	time_t date = (time_t)snapshot_num(ds, item, "date-sec");
	char size[32], datestr[32] = "", clock[48], count[24] = "";
	struct tm tm;

	qemu_size(snapshot_num(ds, item, "vm-state-size"), size, sizeof size);
	if (localtime_r(&date, &tm) != NULL)
		strftime(datestr, sizeof datestr, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof clock, "%02llu:%02llu:%02llu.%03llu",
	    (unsigned long long)(clock_ns / 3600000000000ull),
	    (unsigned long long)(clock_ns / 60000000000ull % 60),
	    (unsigned long long)(clock_ns / 1000000000ull % 60),
	    (unsigned long long)(clock_ns / 1000000ull % 1000));
	if (icount != NULL)
		snprintf(count, sizeof count, "%llu",
		    (unsigned long long)icount->num);
	printf("%-9s %-16s %8s%20s%13s%11s\n", id ? id->str : "",
	    name ? name->str : "", size, datestr, clock, count);
}

static void print_snapshots(const struct image_details *ds)
{
	int i, items = 0;

	for (i = 0; i < ds->n; i++)
		if (strcmp(ds->d[i].group, "snapshots") == 0 &&
		    ds->d[i].item >= items)
			items = ds->d[i].item + 1;
	if (items == 0)
		return;
	printf("Snapshot list:\n%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG",
	    "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (i = 0; i < items; i++)
		print_snapshot(ds, i);
}

static void print_human(const struct info_opts *o, const struct report *r)
{
	const struct image *img = &r->img;
	char buf[32];
	int i;

	printf("image: %s\nfile format: %s\n", r->filename, r->format);
	if (r->size_known)
		printf("virtual size: %s (%llu bytes)\n",
		    qemu_size(r->virtual_size, buf, sizeof buf),
		    (unsigned long long)r->virtual_size);
	if (r->actual_known)
		printf("disk size: %s\n",
		    qemu_size(r->actual_size, buf, sizeof buf));
	if (img->encrypted)
		printf("encrypted: yes\n");
	if (img->cluster_size)
		printf("cluster_size: %llu\n",
		    (unsigned long long)img->cluster_size);
	if (img->backing[0])
		printf("backing file: %s\n", img->backing);
	if (img->backing_format[0])
		printf("backing file format: %s\n", img->backing_format);
	print_snapshots(&img->details);
	if (has_format_specific(r)) {
		printf("Format specific information:\n");
		if (img->subformat[0])
			printf("    subformat: %s\n", img->subformat);
		print_details(&img->details);
		print_details(&r->own.details);
	}
	printf("safety: %s\n", is_unsafe(o, r) ? "unsafe" : "safe");
	for (i = 0; i < r->nfindings; i++)
		printf("    %s: %s%s\n", r->findings[i].code,
		    r->findings[i].text,
		    allowed(o, r->findings[i].code) ? " (allowed)" : "");
}

/*
 * Read the image through its reader, so that every table gets the checks
 * of a conversion.  From a pipe the stream has to be read to its end
 * anyway (so the writer gets no SIGPIPE), and the end shows what only it
 * can (a VMDK footer, truncation, a raw size).  From a file the reader
 * walks its tables (img->walk) and reads no data.
 */
static int read_through(struct report *r, struct stash *st)
{
	struct image *img = &r->img;
	struct emitter em;
	struct sink null;
	int rc;

	null_sink_init(&null);
	emitter_init(&em, &null, st, img->virtual_size ? img->virtual_size
	    : UINT64_MAX);
	em.zero_block = 0;
	rc = image_read(img, &em);
	take_reader_findings(r);
	if (rc < 0) {
		rc = add_error_finding(r);
	} else {
		r->virtual_size = img->virtual_size;
		r->size_known = true;
	}
	emitter_free(&em);
	return rc;
}

static void inspect(const struct info_opts *o, struct report *r,
    struct source *src, struct stash *st)
{
	const struct foreign *foreign = format_foreign(src);
	struct stat sb;

	if (src->filter != NULL)
		image_detail(&r->own, "compression", "%s", src->filter);
	if (src->seekable && src->ar == NULL && fstat(src->fd, &sb) == 0 &&
	    S_ISREG(sb.st_mode)) {
		r->actual_known = true;
		r->actual_size = (uint64_t)sb.st_blocks * 512;
	}
	if (foreign != NULL && o->format == NULL) {
		snprintf(r->format, sizeof r->format, "%s", foreign->name);
		add_finding(r, foreign->code, foreign->text);
		return;
	}
	open_table_format(r, src, st, o->format);
	if (!r->opened && r->format[0] == '\0')
		snprintf(r->format, sizeof r->format, "unknown");
}

/* --strict: the first finding not allowed, by code and text. */
static int reject_unsafe(const struct info_opts *o, const struct report *r)
{
	int i;

	for (i = 0; i < r->nfindings; i++)
		if (!allowed(o, r->findings[i].code))
			break;
	return fail_code(EXIT_REJECT, r->findings[i].code, "unsafe: %s: %s",
	    r->findings[i].code, r->findings[i].text);
}

static int print_report(const struct info_opts *o, const struct report *r)
{
	if (o->json) {
		if (print_json(o, r) < 0)
			return -1;
	} else {
		print_human(o, r);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail_io("stdout", "write error");
	return 0;
}

int info_run(const struct info_opts *o)
{
	struct report *r;
	struct source src;
	struct stash st;
	int rc = 0;

	/* the report holds two images' facts: too big for the stack */
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return fail_errno(EXIT_IO, "out of memory");
	r->filename = o->input && strcmp(o->input, "-") ? o->input : "-";
	stash_init(&st, STASH_DEFAULT_BUDGET, NULL);
	if (source_open(&src, o->input) < 0) {
		source_close(&src);
		stash_free(&st);
		free(r);
		return -1;
	}
	src.sibling_extents = o->extents;
	inspect(o, r, &src, &st);
	if (err_status() != 0)	/* -f named no format, or the budget */
		rc = -1;
	else if (o->format && format_by_name(o->format) != NULL &&
	    strcmp(format_by_name(o->format)->name, r->format) != 0)
		rc = fail(EXIT_REJECT, "input is not %s (it is %s)", o->format,
		    r->format);
	if (rc == 0 && r->opened && src.seekable) {
		/* walk every table as a conversion would, reading no data */
		r->img.walk = true;
		rc = read_through(r, &st);
	} else if (rc == 0 && !src.seekable && !o->no_drain) {
		if (r->opened)
			rc = read_through(r, &st);
		if (rc == 0)
			rc = source_drain(&src);
	}
	if (rc == 0)
		rc = print_report(o, r);
	if (rc == 0 && o->strict && is_unsafe(o, r))
		rc = reject_unsafe(o, r);
	if (r->opened)
		image_close(&r->img);
	source_close(&src);
	stash_free(&st);
	free(r);
	return rc;
}
