/* Arrays that double as they fill. */
#ifndef IMGPIPE_GROW_H
#define IMGPIPE_GROW_H

#include <stddef.h>
#include <stdint.h>	/* SIZE_MAX: no limit */

/*
 * Room for element n of *arrp (an array of *cap elements of elem bytes):
 * when n == *cap the array doubles, to first elements when empty.  0 when
 * there is room; 1, nothing recorded, when the grown array would pass
 * max_bytes (the caller says why that is too much); -1 with "out of
 * memory" recorded.
 */
int grow_array(void *arrp, size_t n, size_t *cap, size_t elem, size_t first,
    size_t max_bytes);

#endif
