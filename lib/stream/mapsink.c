/* The map printer: a sink that merges extents and prints one per line. */
#include <inttypes.h>

#include "imgpipe/err.h"
#include "imgpipe/sparse.h"

static void print_run(struct map_sink *ms)
{
	const char *kind = ms->run_zero ? "zero" : "data";

	if (!ms->json) {
		fprintf(ms->out, "%" PRIu64 " %" PRIu64 " %s\n", ms->run_off,
		    ms->run_len, kind);
		return;
	}
	/* The shape of qemu-img map --output=json for a raw file. */
	fprintf(ms->out, "%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
	    ", \"depth\": 0, \"present\": true, \"zero\": %s, \"data\": %s, "
	    "\"offset\": %" PRIu64 "}", ms->nprinted ? ",\n" : "[",
	    ms->run_off, ms->run_len, ms->run_zero ? "true" : "false",
	    ms->run_zero ? "false" : "true", ms->run_off);
	ms->nprinted++;
}

static int add_run(struct map_sink *ms, uint64_t off, uint64_t len, bool zero)
{
	if (ms->have && ms->run_zero == zero &&
	    ms->run_off + ms->run_len == off) {
		ms->run_len += len;
		return 0;
	}
	if (ms->have)
		print_run(ms);
	ms->have = true;
	ms->run_zero = zero;
	ms->run_off = off;
	ms->run_len = len;
	return ferror(ms->out) ? fail_io("stdout", "write error")
	    : 0;
}

static int map_write(struct sink *sk, uint64_t off, const void *buf,
    size_t len)
{
	(void)buf;
	return add_run((struct map_sink *)sk, off, len, false);
}

static int map_zero(struct sink *sk, uint64_t off, uint64_t len)
{
	return add_run((struct map_sink *)sk, off, len, true);
}

static int map_finish(struct sink *sk, uint64_t size)
{
	struct map_sink *ms = (struct map_sink *)sk;

	(void)size;
	if (ms->have)
		print_run(ms);
	if (ms->json)
		fputs(ms->nprinted ? "]\n" : "[]\n", ms->out);
	if (fflush(ms->out) != 0 || ferror(ms->out))
		return fail_io("stdout", "write error");
	return 0;
}

void map_sink_init(struct map_sink *ms, FILE *out, bool json)
{
	*ms = (struct map_sink){
		.base = { .in_order = true, .write = map_write, .zero = map_zero,
		    .finish = map_finish },
		.out = out,
		.json = json,
	};
}
