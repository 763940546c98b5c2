/* A tiny TAP producer for the C unit tests. */
#ifndef IMGPIPE_UNIT_H
#define IMGPIPE_UNIT_H

#include <stdio.h>
#include <stdlib.h>

static int unit_n, unit_failed;

#define CHECK(cond) do { \
	unit_n++; \
	if (cond) \
		printf("ok %d - %s:%d %s\n", unit_n, __FILE__, __LINE__, #cond); \
	else { \
		unit_failed++; \
		printf("not ok %d - %s:%d %s\n", unit_n, __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define UNIT_DONE() return (printf("1..%d\n", unit_n), unit_failed != 0)

#endif
