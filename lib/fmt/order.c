/* For readers that go through a pipe in file order, not virtual order. */
#include <stdlib.h>

#include "fmt/fmt.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u64);
}

uint32_t *lowest_after(const uint64_t *order, uint64_t n, uint32_t none)
{
	uint32_t *lowest = malloc((n + 1) * sizeof *lowest);
	uint64_t i;

	if (lowest == NULL)
		return NULL;
	lowest[n] = none;
	for (i = n; i-- > 0;)
		lowest[i] = (uint32_t)order[i] < lowest[i + 1]
		    ? (uint32_t)order[i] : lowest[i + 1];
	return lowest;
}
