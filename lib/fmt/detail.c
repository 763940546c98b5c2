/*
 * Format-specific facts for imginfo (struct image_details in format.h):
 * typed, in the order a reader gives them, grouped into array items and
 * nested objects, so imginfo can print them as qemu-img info does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "imgpipe/format.h"

/* The next free fact, in the open group; NULL (and counted) when full. */
static struct image_detail *detail_new(struct image *img, const char *key,
    enum detail_type type)
{
	struct image_details *ds = &img->details;
	struct image_detail *d;

	if (ds->n >= DETAILS_MAX) {
		ds->details_lost++;
		return NULL;
	}
	d = &ds->d[ds->n++];
	memset(d, 0, sizeof *d);
	snprintf(d->key, sizeof d->key, "%s", key);
	snprintf(d->group, sizeof d->group, "%s", ds->group);
	d->in_array = ds->in_array;
	d->item = ds->item;
	d->type = type;
	return d;
}

void image_detail(struct image *img, const char *key, const char *fmt, ...)
{
	struct image_detail *d = detail_new(img, key, DETAIL_STR);
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->str, sizeof d->str, fmt, ap);
	va_end(ap);
}

void image_detail_num(struct image *img, const char *key, uint64_t value)
{
	struct image_detail *d = detail_new(img, key, DETAIL_NUM);

	if (d != NULL)
		d->num = value;
}

void image_detail_bool(struct image *img, const char *key, bool value)
{
	struct image_detail *d = detail_new(img, key, DETAIL_BOOL);

	if (d != NULL)
		d->num = value;
}

/* Items of one array are numbered from 0 in the order they are opened. */
void image_detail_item(struct image *img, const char *array)
{
	struct image_details *ds = &img->details;
	int i, items = 0;

	for (i = 0; i < ds->n; i++)
		if (ds->d[i].in_array && strcmp(ds->d[i].group, array) == 0 &&
		    ds->d[i].item >= items)
			items = ds->d[i].item + 1;
	snprintf(ds->group, sizeof ds->group, "%s", array);
	ds->in_array = true;
	ds->item = items;
}

void image_detail_object(struct image *img, const char *object)
{
	struct image_details *ds = &img->details;

	snprintf(ds->group, sizeof ds->group, "%s", object);
	ds->in_array = false;
	ds->item = 0;
}

void image_detail_end(struct image *img)
{
	struct image_details *ds = &img->details;

	ds->group[0] = '\0';
	ds->in_array = false;
	ds->item = 0;
}
