/*
 * VMDK facts for imginfo, as qemu-img info (7.2) prints them: cid,
 * parent-cid, create-type, and the extents with qemu's keys (compressed,
 * virtual-size, filename, cluster-size, format).  Describes only: the
 * reader judges the descriptor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/vmdk/vmdk_info.h"

#define VMDK_INFO_EXTENTS_MAX 16
#define VMDK_SECTOR 512u

/* The value of "key=value" on the line at p, unquoted, or "". */
static void desc_value(const char *p, size_t linelen, char *out,
    size_t outlen)
{
	const char *eq = memchr(p, '=', linelen), *end = p + linelen;
	size_t n;

	out[0] = '\0';
	if (eq == NULL)
		return;
	for (p = eq + 1; p < end && (*p == ' ' || *p == '\t' || *p == '"');)
		p++;
	for (n = 0; p + n < end && p[n] != '"' && p[n] != '\r'; n++)
		;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static bool line_is(const char *p, const char *key)
{
	size_t n = strlen(key);

	return strncmp(p, key, n) == 0 &&
	    (p[n] == '=' || p[n] == ' ' || p[n] == '\t');
}

/* "RW 8192 FLAT "name" 0": one extent of a descriptor file. */
static void extent_line(struct image *img, const char *p, size_t linelen)
{
	char line[512], *q, *e, type[32] = "";
	unsigned long long sectors;

	if (linelen >= sizeof line)
		linelen = sizeof line - 1;
	memcpy(line, p, linelen);
	line[linelen] = '\0';
	q = line + strcspn(line, " \t");
	sectors = strtoull(q, &q, 10);
	q += strspn(q, " \t");
	snprintf(type, sizeof type, "%.*s", (int)strcspn(q, " \t\""), q);
	q = strchr(q, '"');
	e = q != NULL ? strchr(q + 1, '"') : NULL;
	if (e != NULL)
		*e = '\0';
	for (char *c = q != NULL ? q + 1 : line; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	image_detail_item(img, "extents");
	if (sectors <= UINT64_MAX / VMDK_SECTOR)
		image_detail_num(img, "virtual-size", sectors * VMDK_SECTOR);
	image_detail(img, "filename", "%s", q != NULL ? q + 1 : "");
	image_detail(img, "format", "%s", type);
	image_detail_end(img);
}

static void sparse_extent(struct image *img,
    const struct vmdk_info_sparse *s)
{
	image_detail_item(img, "extents");
	if (s->compressed)
		image_detail_bool(img, "compressed", true);
	image_detail_num(img, "virtual-size", s->capacity_bytes);
	image_detail(img, "filename", "%s", img->src->name ? img->src->name
	    : "-");
	image_detail_num(img, "cluster-size", s->grain_bytes);
	image_detail(img, "format", "%s", "");
	image_detail_end(img);
}

static bool is_extent_line(const char *p)
{
	return strncmp(p, "RW ", 3) == 0 || strncmp(p, "RDONLY ", 7) == 0 ||
	    strncmp(p, "NOACCESS ", 9) == 0;
}

static void vmdk_info_text(struct image *img, const char *text,
    const struct vmdk_info_sparse *sparse)
{
	char cid[32] = "", parent[32] = "", type[64] = "";
	const char *line, *p;
	size_t len;
	int extents = 0;

	for (line = text; *line != '\0'; line += len + (line[len] == '\n')) {
		len = strcspn(line, "\n");
		p = line + strspn(line, " \t");
		len -= (size_t)(p - line);
		line = p;
		if (line_is(p, "CID"))
			desc_value(p, len, cid, sizeof cid);
		else if (line_is(p, "parentCID"))
			desc_value(p, len, parent, sizeof parent);
		else if (line_is(p, "createType"))
			desc_value(p, len, type, sizeof type);
	}
	/* qemu reads the CIDs as hex (sscanf %x); absent, they are 0 */
	image_detail_num(img, "cid", strtoul(cid, NULL, 16) & 0xffffffffu);
	image_detail_num(img, "parent-cid",
	    strtoul(parent, NULL, 16) & 0xffffffffu);
	image_detail(img, "create-type", "%s", type[0] ? type
	    : sparse != NULL ? "monolithicSparse" : "");
	if (sparse != NULL) {
		sparse_extent(img, sparse);
		return;
	}
	for (line = text; *line != '\0'; line += len + (line[len] == '\n')) {
		len = strcspn(line, "\n");
		p = line + strspn(line, " \t");
		if (is_extent_line(p) && extents++ < VMDK_INFO_EXTENTS_MAX)
			extent_line(img, p, len - (size_t)(p - line));
	}
}

void vmdk_info(struct image *img, const void *desc, size_t desclen,
    const struct vmdk_info_sparse *sparse)
{
	char *text;

	if (!img->inspect)
		return;
	text = malloc(desclen + 1);
	if (text == NULL)
		return;
	memcpy(text, desc, desclen);
	text[desclen] = '\0';
	vmdk_info_text(img, text, sparse);
	free(text);
}
