/*
 * libFuzzer harness for one image reader (FUZZ_FORMAT, set by fuzz.mk).
 * Each input is read twice: as a seekable file and as a pipe into an
 * in-order sink, with a small stash budget so spilling is exercised too.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imgpipe/emit.h"
#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/sink.h"

static void read_once(const uint8_t *data, size_t size, int stream)
{
	struct sink sk;
	struct source src;
	struct stash st;
	struct image img;
	struct emitter em;
	int fd = memfd_create("fuzz", 0);

	if (fd < 0)
		return;
	null_sink_init(&sk);
	sk.in_order = stream;	/* an in-order sink exercises the parking */
	sk.no_zero_split = false;	/* and zero detection runs */
	if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET)) {
		close(fd);
		return;
	}
	err_clear();
	stash_init(&st, 1 << 20, NULL);
	if (source_open_fd(&src, fd, "fuzz") == 0) {
		if (stream)
			source_force_stream(&src);
		if (image_open(&img, &src, &st, FUZZ_FORMAT, 0) == 0) {
			emitter_init(&em, &sk, &st, img.virtual_size);
			image_read(&img, &em);
			emitter_free(&em);
		}
		image_close(&img);
	}
	source_close(&src);
	stash_free(&st);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_once(data, size, 0);
	read_once(data, size, 1);
	return 0;
}
