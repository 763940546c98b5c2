#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/size.h"

int parse_size(const char *s, uint64_t *out)
{
	const char *units = "KMGTPE";
	const char *u;
	char *end;
	unsigned long long n;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return fail(EXIT_USAGE, "invalid size '%s'", s ? s : "");
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return fail(EXIT_USAGE, "invalid size '%s'", s);
	if (*end != '\0') {
		u = strchr(units, *end >= 'a' ? *end - 32 : *end);
		if (u == NULL)
			return fail(EXIT_USAGE, "invalid size '%s'", s);
		shift = 10 * (int)(u - units + 1);
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B')
			end++;
		if (*end != '\0')
			return fail(EXIT_USAGE, "invalid size '%s'", s);
	}
	if (shift && n > (~0ull >> shift))
		return fail(EXIT_USAGE, "size '%s' is too large", s);
	*out = (uint64_t)n << shift;
	return 0;
}

char *format_size(uint64_t n, char *buf, int buflen)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	int i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, buflen, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, buflen, "%.1f %s", v, units[i]);
	return buf;
}
