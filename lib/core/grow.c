#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/grow.h"

int grow_array(void *arrp, size_t n, size_t *cap, size_t elem, size_t first,
    size_t max_bytes)
{
	size_t want = *cap ? 2 * *cap : first;
	void *p;

	if (n < *cap)
		return 0;
	if (want > max_bytes / elem)
		return 1;
	memcpy(&p, arrp, sizeof p);
	p = realloc(p, want * elem);
	if (p == NULL)
		return fail(EXIT_IO, "out of memory");
	memcpy(arrp, &p, sizeof p);
	*cap = want;
	return 0;
}
