/*
 * imginfo: probe and open an image in inspect mode, where readers record
 * safety findings instead of failing, add what the format table does not
 * convert but a cloud must recognise, and report.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/json.h"
#include "imgpipe/format.h"
#include "imgpipe/info.h"
#include "imgpipe/sink.h"
#include "imgpipe/size.h"
#include "imgpipe/stash.h"

struct report {
	char format[32];
	const char *filename;
	bool size_known;
	uint64_t virtual_size;
	bool actual_known;
	uint64_t actual_size;
	struct image img;	/* findings, details, cluster size, backing */
	bool opened;		/* a table format's reader opened it */
};

static void add_finding(struct report *r, const char *code, const char *text)
{
	struct image *img = &r->img;

	if (img->nfindings < FINDINGS_MAX) {
		snprintf(img->findings[img->nfindings].code,
		    sizeof img->findings[0].code, "%s", code);
		snprintf(img->findings[img->nfindings].text,
		    sizeof img->findings[0].text, "%s", text);
		img->nfindings++;
	}
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

/* A tar (ustar magic at 257): list it to tell Docker and OCI from others. */
static const char *tar_kind(struct source *src)
{
	struct archive *a;
	struct archive_entry *e;
	const char *kind = "tar", *name;
	bool manifest = false, layer = false;

	if (src->headlen < 263 || memcmp(src->head + 257, "ustar", 5) != 0)
		return NULL;
	a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, src->head, src->headlen) != ARCHIVE_OK) {
		archive_read_free(a);
		return kind;
	}
	/* The names at the start are enough for docker save and OCI layouts. */
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (strcmp(name, "oci-layout") == 0) {
			kind = "oci-archive";
			break;
		}
		if (strcmp(name, "manifest.json") == 0 ||
		    strcmp(name, "repositories") == 0)
			manifest = true;
		if (strstr(name, "layer.tar") != NULL ||
		    strncmp(name, "blobs/sha256/", 13) == 0)
			layer = true;
		if (strstr(name, ".ovf") != NULL)
			kind = "ova";
	}
	if (manifest || layer)
		kind = "docker-archive";
	archive_read_free(a);
	return kind;
}

/* Formats we recognise but do not convert.  Returns the name or NULL. */
static const char *foreign_format(struct source *src, const char **why)
{
	const unsigned char *h = src->head;
	size_t len = src->headlen;
	unsigned char tail[512];
	const char *t;

	if (len >= 6 && memcmp(h, "LUKS\xba\xbe", 6) == 0) {
		*why = "encryption";
		return "luks";
	}
	if (len >= 8 && memcmp(h, "QFI\xfb", 4) == 0 && be32(h + 4) == 1) {
		*why = "unsupported-format";
		return "qcow";
	}
	if (src->seekable && src->size >= 512 &&
	    source_read_at(src, tail, 512, src->size - 512, "trailer") == 0 &&
	    memcmp(tail, "koly", 4) == 0) {
		*why = "unsupported-format";
		return "dmg";
	}
	err_clear();
	t = tar_kind(src);
	if (t != NULL)
		*why = strcmp(t, "ova") == 0 ? "archive" : "not-a-disk";
	return t;
}

static const char *foreign_text(const char *fmt)
{
	if (strcmp(fmt, "luks") == 0)
		return "LUKS-encrypted volume: its content cannot be read";
	if (strcmp(fmt, "qcow") == 0)
		return "QCOW version 1 image: not supported";
	if (strcmp(fmt, "dmg") == 0)
		return "Apple disk image (DMG): not supported";
	if (strcmp(fmt, "docker-archive") == 0)
		return "a Docker image archive, not a virtual-machine disk";
	if (strcmp(fmt, "oci-archive") == 0)
		return "an OCI image layout archive, not a virtual-machine disk";
	if (strcmp(fmt, "ova") == 0)
		return "an OVA archive: extract its disks with ovaextract";
	return "a tar archive, not a virtual-machine disk";
}

/* Every format with a signature bid; more than one is ambiguous. */
static void check_ambiguous(struct report *r, struct source *src,
    const struct format *chosen)
{
	unsigned char tail[512];
	struct probe pb = { .head = src->head, .headlen = src->headlen,
	    .size_known = src->size_known, .size = src->size };
	const char *pt = partition_table(src->head, src->headlen);
	char text[200];
	int i;

	if (src->seekable && src->size >= 512 &&
	    source_read_at(src, tail, 512, src->size - 512, "footer") == 0) {
		pb.tail = tail;
		pb.taillen = 512;
	}
	err_clear();
	for (i = 0; formats[i] != NULL; i++) {
		if (formats[i] == chosen ||
		    formats[i]->bid(&pb) < BID_SIGNATURE)
			continue;
		snprintf(text, sizeof text, "the input has the signatures of "
		    "both %s and %s", chosen->name, formats[i]->name);
		add_finding(r, "ambiguous", text);
	}
	/* GPT or MBR plus another format's header; ISO hybrids are normal. */
	if (pt != NULL && strcmp(chosen->name, "raw") != 0 &&
	    strcmp(chosen->name, "iso") != 0) {
		snprintf(text, sizeof text, "a %s partition table inside a %s "
		    "image", pt, chosen->name);
		add_finding(r, "ambiguous", text);
	}
	if (pt != NULL)
		image_detail(&r->img, "partition-table", "%s", pt);
}

static const struct format *choose(struct source *src, const char *forced)
{
	const struct format *f;

	unsigned char tail[512];
	struct probe pb = { .head = src->head, .headlen = src->headlen,
	    .size_known = src->size_known, .size = src->size };
	int i;

	if (format_probe(src, forced, &f) == 0)
		return f;
	if (forced != NULL || strstr(err_msg(), "ambiguous") == NULL)
		return NULL;
	/* Ambiguous: describe the first signature bidder; the finding names
	 * both (check_ambiguous). */
	err_clear();
	if (src->seekable && src->size >= 512 &&
	    source_read_at(src, tail, 512, src->size - 512, "footer") == 0) {
		pb.tail = tail;
		pb.taillen = 512;
	}
	err_clear();
	for (i = 0; formats[i] != NULL; i++)
		if (formats[i]->bid(&pb) >= BID_SIGNATURE)
			return formats[i];
	return NULL;
}

static void open_table_format(struct report *r, struct source *src,
    struct stash *st, const char *forced)
{
	const struct format *f;
	struct image *img = &r->img;
	int nfound;

	f = choose(src, forced);
	if (f == NULL)
		return;
	snprintf(r->format, sizeof r->format, "%s", f->name);
	if (forced == NULL)
		check_ambiguous(r, src, f);
	nfound = img->nfindings;
	{
		/* image_open zeroes img: keep what we found so far */
		struct finding keep[FINDINGS_MAX];
		struct image_detail kd[DETAILS_MAX];
		int nd = img->ndetails;

		memcpy(keep, img->findings, sizeof keep);
		memcpy(kd, img->details, sizeof kd);
		if (image_open(img, src, st, f->name, true) < 0) {
			const char *m = err_msg();

			memmove(img->findings + nfound, img->findings,
			    sizeof img->findings[0] * (FINDINGS_MAX - nfound));
			memcpy(img->findings, keep, sizeof keep[0] * nfound);
			img->nfindings = nfound;
			add_finding(r, err_code() ? err_code() :
			    FINDING_MALFORMED, m);
			err_clear();
		} else {
			int n = img->nfindings < FINDINGS_MAX - nfound
			    ? img->nfindings : FINDINGS_MAX - nfound;

			memmove(img->findings + nfound, img->findings,
			    sizeof img->findings[0] * n);
			memcpy(img->findings, keep, sizeof keep[0] * nfound);
			img->nfindings = nfound + n;
			r->opened = true;
			r->size_known = img->virtual_size > 0 ||
			    src->size_known;
			r->virtual_size = img->virtual_size;
		}
		if (img->ndetails + nd <= DETAILS_MAX) {
			memmove(img->details + nd, img->details,
			    sizeof kd[0] * img->ndetails);
			memcpy(img->details, kd, sizeof kd[0] * nd);
			img->ndetails += nd;
		}
	}
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

	for (i = 0; i < r->img.nfindings; i++)
		if (!allowed(o, r->img.findings[i].code))
			return true;
	return false;
}

static void print_json(const struct info_opts *o, const struct report *r)
{
	const struct image *img = &r->img;
	int i;

	printf("{\n    \"filename\": ");
	json_string(stdout, r->filename);
	printf(",\n    \"format\": ");
	json_string(stdout, r->format);
	if (r->size_known)
		printf(",\n    \"virtual-size\": %llu",
		    (unsigned long long)r->virtual_size);
	if (r->actual_known)
		printf(",\n    \"actual-size\": %llu",
		    (unsigned long long)r->actual_size);
	if (img->cluster_size)
		printf(",\n    \"cluster-size\": %llu",
		    (unsigned long long)img->cluster_size);
	if (img->backing[0]) {
		printf(",\n    \"backing-filename\": ");
		json_string(stdout, img->backing);
	}
	if (r->opened)
		printf(",\n    \"dirty-flag\": %s", img->dirty ? "true" : "false");
	if (img->subformat[0] || img->ndetails) {
		printf(",\n    \"format-specific\": {\n        \"type\": ");
		json_string(stdout, r->format);
		printf(",\n        \"data\": {");
		for (i = 0; i < img->ndetails; i++) {
			printf("%s\n            ", i ? "," : "");
			json_string(stdout, img->details[i].key);
			printf(": ");
			json_string(stdout, img->details[i].value);
		}
		if (img->subformat[0]) {
			printf("%s\n            \"subformat\": ",
			    img->ndetails ? "," : "");
			json_string(stdout, img->subformat);
		}
		printf("\n        }\n    }");
	}
	printf(",\n    \"safety\": {\n        \"verdict\": \"%s\",\n"
	    "        \"findings\": [", is_unsafe(o, r) ? "unsafe" : "safe");
	for (i = 0; i < img->nfindings; i++) {
		printf("%s\n            { \"code\": ", i ? "," : "");
		json_string(stdout, img->findings[i].code);
		printf(", \"text\": ");
		json_string(stdout, img->findings[i].text);
		printf(", \"allowed\": %s }",
		    allowed(o, img->findings[i].code) ? "true" : "false");
	}
	printf("%s]\n    }\n}\n", img->nfindings ? "\n        " : "");
}

static void print_human(const struct info_opts *o, const struct report *r)
{
	const struct image *img = &r->img;
	char buf[32];
	int i;

	printf("image: %s\nfile format: %s\n", r->filename, r->format);
	if (r->size_known)
		printf("virtual size: %s (%llu bytes)\n",
		    format_size(r->virtual_size, buf, sizeof buf),
		    (unsigned long long)r->virtual_size);
	if (r->actual_known)
		printf("disk size: %s\n",
		    format_size(r->actual_size, buf, sizeof buf));
	if (img->cluster_size)
		printf("cluster_size: %llu\n",
		    (unsigned long long)img->cluster_size);
	if (img->backing[0])
		printf("backing file: %s\n", img->backing);
	if (img->subformat[0] || img->ndetails) {
		printf("Format specific information:\n");
		if (img->subformat[0])
			printf("    subformat: %s\n", img->subformat);
		for (i = 0; i < img->ndetails; i++)
			printf("    %s: %s\n", img->details[i].key,
			    img->details[i].value);
	}
	printf("safety: %s\n", is_unsafe(o, r) ? "unsafe" : "safe");
	for (i = 0; i < img->nfindings; i++)
		printf("    %s: %s%s\n", img->findings[i].code,
		    img->findings[i].text,
		    allowed(o, img->findings[i].code) ? " (allowed)" : "");
}

/*
 * Read the image through its reader, so that every table gets the checks
 * of a conversion.  From a pipe the stream has to be read to its end
 * anyway (so the writer gets no SIGPIPE), and the end shows what only it
 * can (a VMDK footer, truncation, a raw size).  From a file the reader
 * walks its tables (img->walk) and reads no data.
 */
static void read_through(struct report *r, struct stash *st)
{
	struct image *img = &r->img;
	struct emitter em;
	struct sink null;
	const char *m;

	null_sink_init(&null);
	emitter_init(&em, &null, st, img->virtual_size ? img->virtual_size
	    : UINT64_MAX);
	em.zero_block = 0;
	if (image_read(img, &em) < 0) {
		m = err_msg();
		add_finding(r, err_code() ? err_code() : FINDING_MALFORMED,
		    m);
		err_clear();
	} else {
		r->virtual_size = img->virtual_size;
		r->size_known = true;
	}
	emitter_free(&em);
}

/* From a pipe, read to the end so the writer does not get SIGPIPE. */
static int drain(struct source *src)
{
	static unsigned char buf[1 << 16];
	ssize_t n;

	while ((n = source_read(src, buf, sizeof buf)) > 0)
		;
	return n < 0 ? -1 : 0;
}

static void inspect(const struct info_opts *o, struct report *r,
    struct source *src, struct stash *st)
{
	const char *why = NULL, *foreign = foreign_format(src, &why);
	struct stat sb;

	if (src->filter != NULL)
		image_detail(&r->img, "compression", "%s", src->filter);
	if (src->seekable && src->ar == NULL && fstat(src->fd, &sb) == 0 &&
	    S_ISREG(sb.st_mode)) {
		r->actual_known = true;
		r->actual_size = (uint64_t)sb.st_blocks * 512;
	}
	if (foreign != NULL && o->format == NULL) {
		snprintf(r->format, sizeof r->format, "%s", foreign);
		add_finding(r, why, foreign_text(foreign));
		return;
	}
	open_table_format(r, src, st, o->format);
	if (!r->opened && r->format[0] == '\0')
		snprintf(r->format, sizeof r->format, "unknown");
}

int info_run(const struct info_opts *o)
{
	struct report r;
	struct source src;
	struct stash st;
	int rc = 0;

	memset(&r, 0, sizeof r);
	r.filename = o->input && strcmp(o->input, "-") ? o->input : "-";
	stash_init(&st, STASH_DEFAULT_BUDGET, NULL);
	if (source_open(&src, o->input) < 0) {
		source_close(&src);
		return -1;
	}
	src.sibling_extents = o->extents;
	inspect(o, &r, &src, &st);
	if (err_status() != 0)	/* -f named no format: a usage error */
		rc = -1;
	else if (o->format && strcmp(o->format, r.format) != 0)
		rc = fail(EXIT_REJECT, "input is not %s (it is %s)", o->format,
		    r.format);
	if (rc == 0 && r.opened && src.seekable) {
		/* walk every table as a conversion would, reading no data */
		r.img.walk = true;
		read_through(&r, &st);
	} else if (rc == 0 && !src.seekable && !o->no_drain) {
		if (r.opened)
			read_through(&r, &st);
		rc = drain(&src);
	}
	if (rc == 0) {
		if (o->json)
			print_json(o, &r);
		else
			print_human(o, &r);
		if (fflush(stdout) != 0 || ferror(stdout))
			rc = fail_errno(EXIT_IO, "write error on stdout");
	}
	if (rc == 0 && o->strict && is_unsafe(o, &r))
		rc = fail(EXIT_REJECT, "%s: unsafe: %s", r.filename,
		    r.img.findings[0].text);
	if (r.opened)
		image_close(&r.img);
	source_close(&src);
	stash_free(&st);
	return rc;
}
