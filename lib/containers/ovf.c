/* OVF descriptor parsing with libxml2 (see include/imgpipe/ovf.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "imgpipe/err.h"
#include "imgpipe/ovf.h"

#define OVF1_NS "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF2_NS "http://schemas.dmtf.org/ovf/envelope/2"
#define VMW_NS "http://www.vmware.com/schema/ovf"
#define VBOX_NS "http://www.virtualbox.org/ovf/machine"
/* The VirtualSystem search gives up below this depth. */
#define OVF_DEPTH_MAX 32

static int ovf_bad(const char *fmt, const char *arg)
{
	return fail(EXIT_REJECT, fmt, arg ? arg : "");
}

static bool is_elem(const xmlNode *n, const char *ns, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns != NULL &&
	    n->ns->href != NULL && strcmp((const char *)n->ns->href, ns) == 0 &&
	    strcmp((const char *)n->name, name) == 0;
}

/* An attribute in namespace ns (or unqualified), as a malloc'd string. */
static char *attr_dup(const xmlNode *n, const char *name, const char *ns)
{
	xmlChar *v = xmlGetNsProp(n, (const xmlChar *)name,
	    (const xmlChar *)ns);
	char *s;

	if (v == NULL)
		v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (v == NULL)
		return NULL;
	s = strdup((const char *)v);
	xmlFree(v);
	return s;
}

/* The text of the first child element ns:name, trimmed, or NULL. */
static char *child_text(const xmlNode *n, const char *ns, const char *name)
{
	const xmlNode *c;
	xmlChar *v;
	char *s, *start, *end;

	for (c = n->children; c != NULL; c = c->next) {
		if (!is_elem(c, ns, name))
			continue;
		v = xmlNodeGetContent(c);
		if (v == NULL)
			return NULL;
		for (start = (char *)v; isspace((unsigned char)*start); start++)
			;
		end = start + strlen(start);
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		s = strndup(start, end - start);
		xmlFree(v);
		return s;
	}
	return NULL;
}

/* Decimal digits only, no sign, no overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (*s - '0');
	}
	*out = n;
	return true;
}

bool ovf_href_ok(const char *href)
{
	if (href == NULL || *href == '\0' || strcmp(href, ".") == 0 ||
	    strcmp(href, "..") == 0)
		return false;
	/* No URL (scheme:), no path, no drive letter, no control bytes. */
	for (; *href; href++)
		if (*href == '/' || *href == '\\' || *href == ':' ||
		    (unsigned char)*href < 0x20)
			return false;
	return true;
}

const char *ovf_format_name(const char *uri)
{
	const char *frag;

	if (uri == NULL)
		return "unknown";
	frag = strrchr(uri, '#');
	frag = frag ? frag + 1 : "";
	if (strcasestr(uri, "vmdk") != NULL) {
		if (strcasecmp(frag, "streamOptimized") == 0)
			return "vmdk streamOptimized";
		if (strcasecmp(frag, "sparse") == 0 ||
		    strcasecmp(frag, "monolithicSparse") == 0)
			return "vmdk monolithicSparse";
		if (strcasecmp(frag, "compressed") == 0)
			return "vmdk compressed";
		return "vmdk";
	}
	if (strcasestr(uri, "vhdx") != NULL)
		return "vhdx";
	/* Microsoft's VHD specification pages, as VirtualBox and Xen cite. */
	if (strcasestr(uri, "vhd") != NULL || strstr(uri, "bb676673") ||
	    strstr(uri, "LinkId=137171"))
		return "vhd";
	if (strcasestr(uri, "vdi") != NULL)
		return "vdi";
	if (strcasestr(uri, "qcow") != NULL)
		return "qcow2";
	if (strcasestr(uri, "raw") != NULL)
		return "raw";
	if (strcasestr(uri, "iso") != NULL)
		return "iso";
	return "unknown";
}

static const char *skip_spaces(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* "byte", "byte * 2^20", "byte * 10^9", and the OVF 0.9 word units. */
static bool units_multiplier(const char *u, uint64_t *mult)
{
	static const struct { const char *name; uint64_t mult; } words[] = {
		{ "KiloBytes", 1ull << 10 }, { "MegaBytes", 1ull << 20 },
		{ "GigaBytes", 1ull << 30 }, { "TeraBytes", 1ull << 40 },
	};
	unsigned long base, exp, i;
	char *end;
	uint64_t m = 1;

	if (u == NULL) {
		*mult = 1;
		return true;
	}
	u = skip_spaces(u);
	for (i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcasecmp(u, words[i].name) == 0) {
			*mult = words[i].mult;
			return true;
		}
	if (strncmp(u, "byte", 4) != 0)
		return false;
	u = skip_spaces(u + 4);
	if (*u == '\0') {
		*mult = 1;
		return true;
	}
	if (*u != '*')
		return false;
	u = skip_spaces(u + 1);
	if (!isdigit((unsigned char)*u))
		return false;
	base = strtoul(u, &end, 10);
	if (*end != '^' || (base != 2 && base != 10) ||
	    !isdigit((unsigned char)end[1]))
		return false;
	exp = strtoul(end + 1, &end, 10);
	if (*skip_spaces(end) != '\0' || exp > 63)
		return false;
	for (i = 0; i < exp; i++) {
		if (m > UINT64_MAX / base)
			return false;
		m *= base;
	}
	*mult = m;
	return true;
}

int ovf_capacity_bytes(const char *capacity, const char *units,
    uint64_t *out)
{
	uint64_t n, mult;

	if (!parse_u64(capacity, &n) || !units_multiplier(units, &mult) ||
	    (mult != 0 && n > UINT64_MAX / mult))
		return -1;
	*out = n * mult;
	return 0;
}

int ovf_file_by_href(const struct ovf *o, const char *name)
{
	size_t i, hl;

	for (i = 0; i < o->nfiles; i++) {
		if (strcmp(o->files[i].href, name) == 0)
			return (int)i;
		hl = strlen(o->files[i].href);
		if (o->files[i].chunk_size && strncmp(o->files[i].href, name,
		    hl) == 0 && name[hl] == '.' && strlen(name + hl) == 10 &&
		    strspn(name + hl + 1, "0123456789") == 9)
			return (int)i;
	}
	return -1;
}

static int read_file_elem(struct ovf *o, const xmlNode *n, const char *ns)
{
	struct ovf_file *f = &o->files[o->nfiles];
	char *size = attr_dup(n, "size", ns);
	char *comp = attr_dup(n, "compression", ns);
	char *chunk = attr_dup(n, "chunkSize", ns);
	int rc = 0;

	memset(f, 0, sizeof *f);
	o->nfiles++;
	f->id = attr_dup(n, "id", ns);
	f->href = attr_dup(n, "href", ns);
	if (f->id == NULL || f->href == NULL)
		rc = ovf_bad("OVF: a File element has no id or href%s", NULL);
	else if (!ovf_href_ok(f->href))
		rc = ovf_bad("OVF: file href '%s' is not a plain member name "
		    "(URLs and paths are refused)", f->href);
	else if (size != NULL && !(f->has_size = parse_u64(size, &f->size)))
		rc = ovf_bad("OVF: file size '%s' is not a number", size);
	else if (comp != NULL && strcmp(comp, "gzip") != 0 &&
	    strcmp(comp, "identity") != 0 && *comp != '\0')
		rc = ovf_bad("OVF: unsupported file compression '%s'", comp);
	else if (chunk != NULL && (!parse_u64(chunk, &f->chunk_size) ||
	    f->chunk_size == 0))
		rc = ovf_bad("OVF: chunk size '%s' is not a positive number",
		    chunk);
	f->gzip = comp != NULL && strcmp(comp, "gzip") == 0;
	free(size);
	free(comp);
	free(chunk);
	return rc;
}

static int read_references(struct ovf *o, const xmlNode *refs, const char *ns)
{
	const xmlNode *c;
	size_t i;

	for (c = refs->children; c != NULL; c = c->next) {
		if (!is_elem(c, ns, "File"))
			continue;
		if (o->nfiles == OVF_FILES_MAX)
			return ovf_bad("OVF: more than %s files", "1024");
		if (read_file_elem(o, c, ns) < 0)
			return -1;
		for (i = 0; i + 1 < o->nfiles; i++)
			if (strcmp(o->files[i].id, o->files[o->nfiles - 1].id) ==
			    0 || strcmp(o->files[i].href,
			    o->files[o->nfiles - 1].href) == 0)
				return ovf_bad("OVF: file '%s' is referenced "
				    "twice", o->files[i].href);
	}
	return 0;
}

static int file_by_id(const struct ovf *o, const char *id)
{
	size_t i;

	for (i = 0; i < o->nfiles; i++)
		if (strcmp(o->files[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int read_disk_elem(struct ovf *o, const xmlNode *n, const char *ns)
{
	struct ovf_disk *d = &o->disks[o->ndisks];
	char *ref = attr_dup(n, "fileRef", ns);
	char *pop = attr_dup(n, "populatedSize", ns);
	int rc = 0;

	memset(d, 0, sizeof *d);
	o->ndisks++;
	d->file = -1;
	d->id = attr_dup(n, "diskId", ns);
	d->format_uri = attr_dup(n, "format", ns);
	d->format = ovf_format_name(d->format_uri);
	d->capacity_raw = attr_dup(n, "capacity", ns);
	d->units_raw = attr_dup(n, "capacityAllocationUnits", ns);
	d->has_capacity = ovf_capacity_bytes(d->capacity_raw, d->units_raw,
	    &d->capacity) == 0;
	d->has_populated = parse_u64(pop, &d->populated);
	if (d->id == NULL)
		rc = ovf_bad("OVF: a Disk element has no diskId%s", NULL);
	else if (ref != NULL && (d->file = file_by_id(o, ref)) < 0)
		rc = ovf_bad("OVF: disk fileRef '%s' names no File in "
		    "References", ref);
	free(ref);
	free(pop);
	return rc;
}

static int read_disk_section(struct ovf *o, const xmlNode *sec, const char *ns)
{
	const xmlNode *c;

	for (c = sec->children; c != NULL; c = c->next) {
		if (!is_elem(c, ns, "Disk"))
			continue;
		if (o->ndisks == OVF_DISKS_MAX)
			return ovf_bad("OVF: more than %s disks", "1024");
		if (read_disk_elem(o, c, ns) < 0)
			return -1;
	}
	return 0;
}

/* The first OperatingSystemSection that says anything; later ones are
 * not read (a second one's strings would replace, and leak, the first's). */
static void read_os_section(struct ovf *o, const xmlNode *sec, const char *ns)
{
	if (o->os_id != NULL || o->os_desc != NULL || o->os_type != NULL)
		return;
	o->os_id = attr_dup(sec, "id", ns);
	o->os_desc = child_text(sec, ns, "Description");
	o->os_type = attr_dup(sec, "osType", VMW_NS);
	if (o->os_type == NULL)
		o->os_type = child_text(sec, VBOX_NS, "OSType");
}

static const xmlNode *find_virtual_system(const xmlNode *n, const char *ns,
    int depth)
{
	const xmlNode *c, *vs;

	if (depth > OVF_DEPTH_MAX)
		return NULL;
	for (c = n->children; c != NULL; c = c->next) {
		if (is_elem(c, ns, "VirtualSystem"))
			return c;
		if (c->type == XML_ELEMENT_NODE &&
		    (vs = find_virtual_system(c, ns, depth + 1)) != NULL)
			return vs;
	}
	return NULL;
}

static void read_virtual_system(struct ovf *o, const xmlNode *env,
    const char *ns)
{
	const xmlNode *vs = find_virtual_system(env, ns, 0), *c;

	if (vs == NULL)
		return;
	o->system_id = attr_dup(vs, "id", ns);
	o->system_name = child_text(vs, ns, "Name");
	for (c = vs->children; c != NULL; c = c->next)
		if (is_elem(c, ns, "OperatingSystemSection"))
			read_os_section(o, c, ns);
}

static int read_envelope(struct ovf *o, const xmlNode *env)
{
	const char *ns;
	const xmlNode *c;

	if (env == NULL || env->ns == NULL || env->ns->href == NULL ||
	    strcmp((const char *)env->name, "Envelope") != 0)
		return ovf_bad("OVF: the root element is not an OVF Envelope%s",
		    NULL);
	ns = (const char *)env->ns->href;
	if (strcmp(ns, OVF1_NS) == 0)
		o->version = 1;
	else if (strcmp(ns, OVF2_NS) == 0)
		o->version = 2;
	else
		return ovf_bad("OVF: unsupported envelope namespace '%s' "
		    "(OVF 1.x and 2.x are read)", ns);
	o->files = calloc(OVF_FILES_MAX, sizeof *o->files);
	o->disks = calloc(OVF_DISKS_MAX, sizeof *o->disks);
	if (o->files == NULL || o->disks == NULL)
		return fail(EXIT_IO, "out of memory");
	/* References first: Disk elements name its Files. */
	for (c = env->children; c != NULL; c = c->next)
		if (is_elem(c, ns, "References") &&
		    read_references(o, c, ns) < 0)
			return -1;
	for (c = env->children; c != NULL; c = c->next)
		if (is_elem(c, ns, "DiskSection") &&
		    read_disk_section(o, c, ns) < 0)
			return -1;
	read_virtual_system(o, env, ns);
	return 0;
}

int ovf_parse(struct ovf *o, const char *buf, size_t len)
{
	xmlDoc *doc;
	const xmlError *e;
	int rc;

	memset(o, 0, sizeof *o);
	if (len > OVF_DESCRIPTOR_MAX)
		return fail(EXIT_REJECT, "OVF: descriptor of %zu bytes is "
		    "larger than the %u bytes allowed", len,
		    OVF_DESCRIPTOR_MAX);
	/* No network, no external DTD, no entity substitution. */
	doc = xmlReadMemory(buf, (int)len, "descriptor.ovf", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL) {
		e = xmlGetLastError();
		return fail(EXIT_REJECT, "OVF: not well-formed XML (line %d: "
		    "%.*s)", e ? e->line : 0, e && e->message ?
		    (int)strcspn(e->message, "\n") : 11,
		    e && e->message ? e->message : "parse error");
	}
	rc = read_envelope(o, xmlDocGetRootElement(doc));
	xmlFreeDoc(doc);
	return rc;
}

void ovf_free(struct ovf *o)
{
	size_t i;

	for (i = 0; i < o->nfiles; i++) {
		free(o->files[i].id);
		free(o->files[i].href);
	}
	for (i = 0; i < o->ndisks; i++) {
		free(o->disks[i].id);
		free(o->disks[i].format_uri);
		free(o->disks[i].capacity_raw);
		free(o->disks[i].units_raw);
	}
	free(o->files);
	free(o->disks);
	free(o->system_id);
	free(o->system_name);
	free(o->os_id);
	free(o->os_desc);
	free(o->os_type);
	memset(o, 0, sizeof *o);
}
