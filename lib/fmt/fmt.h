/* Shared between the files of lib/fmt, not part of the public interface. */
#ifndef IMGPIPE_FMT_H
#define IMGPIPE_FMT_H

#include "imgpipe/format.h"

/* The raw reader, also used for formats that are raw underneath (iso). */
int raw_open(struct image *img);
int raw_read(struct image *img, struct emitter *em);

/*
 * True when the 512 bytes at p are the footer of a fixed VHD whose data
 * is the data_len bytes before it: a pipe only shows the footer at the end.
 */
bool vhd_fixed_footer(const unsigned char *p, uint64_t data_len);

#endif
