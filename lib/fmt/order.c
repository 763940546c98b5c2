/* For readers that go through a pipe in file order, not virtual order. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fmt/fmt.h"
#include "imgpipe/err.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool sorted_u64(const uint64_t *v, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (v[i - 1] > v[i])
			return false;
	return true;
}

/*
 * Most images lay out their tables in order (VMware, qemu and VirtualBox
 * allocate at the end of the file), so one linear pass usually spares the
 * O(n log n) sort.  An empty list may have no array (qsort's NULL).
 */
void sort_u64(uint64_t *v, size_t n)
{
	if (n > 1 && !sorted_u64(v, n))
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

/*
 * Two bits per host unit: free, metadata or data.  The map grows with the
 * highest unit claimed, up to HOST_CLAIMS_MAX bytes: 2^28 units, 128 GiB
 * of 512-byte clusters, 16 TiB of 64 KiB ones, 512 TiB of 2 MiB ones.
 * Units beyond are not tracked, from a file and from a pipe alike (a pipe
 * does not know the input's size, and a file's end is checked apart).
 */
#define HOST_CLAIMS_MAX IMAGE_META_MAX

static unsigned claim_state(const struct host_claims *c, uint64_t u)
{
	return c->bits[u / 4] >> (u % 4 * 2) & 3;
}

static int claims_cover(struct host_claims *c, uint64_t end_unit)
{
	uint64_t bytes = end_unit / 4 + 1, cap;
	unsigned char *b;

	if (bytes > HOST_CLAIMS_MAX)
		bytes = HOST_CLAIMS_MAX;
	if (bytes <= c->nbytes)
		return 0;
	cap = c->nbytes ? c->nbytes : 4096;
	while (cap < bytes)
		cap *= 2;
	if (cap > HOST_CLAIMS_MAX)
		cap = HOST_CLAIMS_MAX;
	b = realloc(c->bits, cap);
	if (b == NULL)
		return fail(EXIT_IO, "out of memory");
	memset(b + c->nbytes, 0, cap - c->nbytes);
	c->bits = b;
	c->nbytes = cap;
	return 0;
}

int host_claim(struct image *img, struct host_claims *c, uint64_t off,
    uint64_t len, enum host_use use, const char *what)
{
	uint64_t u, first, last;
	unsigned prev;

	if (len == 0)
		return 0;
	first = off / c->unit;
	last = (off + len - 1) / c->unit;
	if (claims_cover(c, last) < 0)
		return -1;
	for (u = first; u <= last && u / 4 < c->nbytes; u++) {
		prev = claim_state(c, u);
		if (prev == HOST_DATA && use == HOST_DATA)
			return image_defect(img, FINDING_SHARED_BLOCK, "%s at "
			    "0x%llx is referenced twice", what,
			    (unsigned long long)off);
		if (prev != HOST_FREE)
			return image_defect(img, FINDING_OVERLAP, "%s at 0x%llx "
			    "overlaps %s", what, (unsigned long long)off,
			    prev == HOST_DATA ? "data" : "metadata");
		c->bits[u / 4] |= use << (u % 4 * 2);
	}
	return 0;
}

void host_claims_free(struct host_claims *c)
{
	free(c->bits);
	c->bits = NULL;
	c->nbytes = 0;
}
