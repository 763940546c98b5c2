/* Zero detection. */
#ifndef IMGPIPE_ZERO_H
#define IMGPIPE_ZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True when all len bytes are zero. */
bool is_zero(const void *buf, size_t len);

/* A read-only buffer of ZERO_BUF_SIZE zero bytes. */
#define ZERO_BUF_SIZE (1024 * 1024)
extern const unsigned char zero_buf[ZERO_BUF_SIZE];

#endif
