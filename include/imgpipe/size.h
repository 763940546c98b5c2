/* Size arguments: "512", "64K", "1M", "4G", "2T" (binary multiples). */
#ifndef IMGPIPE_SIZE_H
#define IMGPIPE_SIZE_H

#include <stdint.h>

/* 0 on success, -1 (error recorded, EXIT_USAGE) when s is not a size. */
int parse_size(const char *s, uint64_t *out);
/* "1.5 GiB" into buf; returns buf. */
char *format_size(uint64_t n, char *buf, int buflen);

#endif
