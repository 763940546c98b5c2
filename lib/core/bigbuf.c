/*
 * Why huge pages for buffers: every first touch of a 4 KiB page of ours
 * costs a fault, and on this project's virtual machines a dear one:
 * touching 8 MiB of new memory took 33 ms (16 us a page), and 0.7 ms as
 * four 2 MiB pages.  raw2qcow2 of the 4 GiB disk took 2,363 faults, most
 * of them its two 4 MiB batches; with them huge, 320, and on tmpfs its
 * best and median times fell from 0.39 / 0.43 s to 0.32 / 0.35 s.  The
 * kernel keeps a huge page out of the mapping when it has none to give,
 * and then this is an ordinary mapping.
 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imgpipe/bigbuf.h"

#define HUGE_PAGE ((size_t)2 << 20)
/* The page before the buffer holds the mapping's length, as malloc's
 * header does, so that bigbuf_free needs only the pointer. */
#define HEAD_PAGE ((size_t)4096)

void *bigbuf_alloc(size_t len)
{
	size_t want = ((len ? len : 1) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	size_t span = want + HUGE_PAGE;
	unsigned char *map, *buf, *head;

	if (want < len || span < want)
		return NULL;
	/* A spare huge page: room for the length and a 2 MiB boundary. */
	map = mmap(NULL, span, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	buf = (unsigned char *)(((uintptr_t)map + HEAD_PAGE + HUGE_PAGE - 1) &
	    ~(uintptr_t)(HUGE_PAGE - 1));
	head = buf - HEAD_PAGE;
	if (head > map)
		munmap(map, (size_t)(head - map));
	if (buf + want < map + span)
		munmap(buf + want, (size_t)(map + span - (buf + want)));
	*(size_t *)head = HEAD_PAGE + want;
	/* Best effort: without huge pages the buffer works as well. */
	(void)madvise(buf, want, MADV_HUGEPAGE);
	return buf;
}

void bigbuf_free(void *buf)
{
	unsigned char *head;

	if (buf == NULL)
		return;
	head = (unsigned char *)buf - HEAD_PAGE;
	munmap(head, *(size_t *)head);
}
