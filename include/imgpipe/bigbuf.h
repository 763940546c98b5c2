/*
 * Buffers of a megabyte or more that a program fills again and again
 * (writers' batches, img2raw's slots, inflated grains): whole 2 MiB pages
 * where the kernel offers transparent huge pages.
 */
#ifndef IMGPIPE_BIGBUF_H
#define IMGPIPE_BIGBUF_H

#include <stddef.h>

/* len bytes, zero when new; NULL when out of memory. */
void *bigbuf_alloc(size_t len);

/* Give back what bigbuf_alloc gave; NULL is fine. */
void bigbuf_free(void *buf);

#endif
