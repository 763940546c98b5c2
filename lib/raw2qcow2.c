/*
 * raw2qcow2's job: read a raw disk cluster by cluster, drop zero clusters,
 * optionally deflate the rest on a pool of threads, and hand them in guest
 * order to the qcow2 writer in one of three layouts:
 *
 *   output seekable       data as it comes from cluster 1, metadata after
 *   output a stream,
 *     input seekable      pass 1 plans (and sizes compressed clusters),
 *                         pass 2 re-reads and writes after the metadata
 *     input a stream      clusters wait in the stash, then the same stream
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "imgpipe/err.h"
#include "imgpipe/format.h"
#include "imgpipe/outfile.h"
#include "imgpipe/progress.h"
#include "imgpipe/qcow2_write.h"
#include "imgpipe/size.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"
#include "imgpipe/zero.h"

/* Raw bytes read (and compressed) per round: enough work for every thread. */
#define BATCH_BYTES (8u << 20)

/* Clusters read together, compressed in parallel, written in order. */
struct batch {
	size_t n, cap;
	uint64_t cs;
	uint64_t *guest;
	uint32_t *clen;		/* deflate length, 0: store plain */
	unsigned char *raw;	/* cap clusters */
	unsigned char *comp;	/* cap clusters, with -c */
};

/* Compression threads; the main thread works too. */
struct pool {
	int nworkers;
	pthread_t *tid;
	z_stream *z;		/* nworkers + 1 streams, the last the main's */
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	struct batch *b;
	size_t next, finished;
	unsigned long gen;
	bool quit;
	bool started;
};

struct worker_arg {
	struct pool *pool;
	z_stream *z;
};

/* Forward scan of the input. */
struct scan {
	uint64_t off;		/* next cluster's virtual offset */
	uint64_t data_end;	/* seekable: end of the current data region */
	uint64_t input_len;	/* bytes of input seen (streams) */
	bool eof;
};

struct job {
	const struct raw2qcow2_opts *o;
	uint64_t cs;
	struct source src;
	struct outfile of;
	struct qcow2w_out out;
	struct stash st;
	struct progress pr;
	struct qcow2w_plan plan;
	struct batch b;
	struct pool pool;
	struct worker_arg *args;
	struct scan sc;
	struct stash_ref *refs;	/* stream to stream: the parked clusters */
	size_t nrefs;
	const char *layout_name;
};

static int batch_init(struct batch *b, uint64_t cs, bool compress,
    int threads)
{
	memset(b, 0, sizeof *b);
	b->cs = cs;
	b->cap = BATCH_BYTES / cs;
	if (b->cap < (size_t)threads * 2)
		b->cap = (size_t)threads * 2;
	b->guest = calloc(b->cap, sizeof *b->guest);
	b->clen = calloc(b->cap, sizeof *b->clen);
	b->raw = malloc(b->cap * cs);
	if (compress)
		b->comp = malloc(b->cap * cs);
	if (!b->guest || !b->clen || !b->raw || (compress && !b->comp))
		return fail(EXIT_IO, "out of memory");
	return 0;
}

static void batch_free(struct batch *b)
{
	free(b->guest);
	free(b->clen);
	free(b->raw);
	free(b->comp);
}

static const unsigned char *batch_data(const struct batch *b, size_t i)
{
	return b->clen[i] ? b->comp + i * b->cs : b->raw + i * b->cs;
}

static size_t batch_len(const struct batch *b, size_t i)
{
	return b->clen[i] ? b->clen[i] : b->cs;
}

/*
 * qemu's qcow2_compress(): raw deflate with a 4 KiB window (windowBits
 * -12), which is what its reader inflates with.  Kept only when it fits
 * in less than a cluster.
 */
static void compress_one(z_stream *z, struct batch *b, size_t i)
{
	deflateReset(z);
	z->next_in = b->raw + i * b->cs;
	z->avail_in = b->cs;
	z->next_out = b->comp + i * b->cs;
	z->avail_out = b->cs - 1;
	if (deflate(z, Z_FINISH) == Z_STREAM_END)
		b->clen[i] = z->total_out;
	else
		b->clen[i] = 0;
}

/* Called and returns with pool->mu held. */
static void pool_work_locked(struct pool *p, z_stream *z)
{
	struct batch *b = p->b;
	size_t i;

	while (p->next < b->n) {
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		compress_one(z, b, i);
		pthread_mutex_lock(&p->mu);
		if (++p->finished == b->n)
			pthread_cond_signal(&p->done);
	}
}

static void *pool_worker(void *arg)
{
	struct worker_arg *a = arg;
	struct pool *p = a->pool;
	unsigned long seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->gen == seen)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit)
			break;
		seen = p->gen;
		pool_work_locked(p, a->z);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static int pool_start(struct job *j, int level)
{
	struct pool *p = &j->pool;
	int i;

	p->nworkers = j->o->threads - 1;
	p->z = calloc(p->nworkers + 1, sizeof *p->z);
	p->tid = calloc(p->nworkers + 1, sizeof *p->tid);
	j->args = calloc(p->nworkers + 1, sizeof *j->args);
	if (!p->z || !p->tid || !j->args)
		return fail(EXIT_IO, "out of memory");
	for (i = 0; i <= p->nworkers; i++)
		if (deflateInit2(&p->z[i], level, Z_DEFLATED, -12, 9,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			return fail(EXIT_IO, "deflate: cannot initialise");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	p->started = true;
	for (i = 0; i < p->nworkers; i++) {
		j->args[i].pool = p;
		j->args[i].z = &p->z[i];
		if (pthread_create(&p->tid[i], NULL, pool_worker, &j->args[i])) {
			p->nworkers = i;
			break;	/* fewer threads: slower, still correct */
		}
	}
	return 0;
}

static void pool_stop(struct pool *p)
{
	int i;

	if (!p->started)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nworkers; i++)
		pthread_join(p->tid[i], NULL);
	for (i = 0; i <= p->nworkers; i++)
		deflateEnd(&p->z[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	p->started = false;
}

static void compress_batch(struct job *j)
{
	struct pool *p = &j->pool;
	struct batch *b = &j->b;

	if (!j->o->compress) {
		memset(b->clen, 0, b->n * sizeof *b->clen);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->b = b;
	p->next = 0;
	p->finished = 0;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pool_work_locked(p, &p->z[p->nworkers]);
	while (p->finished < b->n)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static uint64_t size_limit(const struct job *j)
{
	return j->o->size_given ? j->o->size : IMAGE_VSIZE_MAX;
}

static int too_long(const struct job *j)
{
	if (j->o->size_given)
		return fail(EXIT_USAGE, "%s is longer than --size %llu",
		    j->src.name, (unsigned long long)j->o->size);
	return fail(EXIT_REJECT, "%s is larger than %llu bytes", j->src.name,
	    (unsigned long long)IMAGE_VSIZE_MAX);
}

/* Keep the cluster in slot b->n unless it is all zeros. */
static void batch_keep_nonzero(struct job *j, uint64_t off)
{
	struct batch *b = &j->b;

	if (!is_zero(b->raw + b->n * b->cs, b->cs))
		b->guest[b->n++] = off / b->cs;
}

/* Seekable input: read only the file's data regions (SEEK_DATA/HOLE). */
static int scan_seekable(struct job *j)
{
	struct scan *sc = &j->sc;
	struct batch *b = &j->b;
	uint64_t size = j->src.size, s, e, len, next;
	int r;

	if (sc->off >= size) {
		sc->eof = true;
		return 0;
	}
	if (sc->off >= sc->data_end) {
		r = source_next_data(&j->src, sc->off, &s, &e);
		if (r < 0)
			return -1;
		if (r == 0) {
			progress_add(&j->pr, size - sc->off);
			sc->off = size;
			sc->eof = true;
			return 0;
		}
		next = s / b->cs * b->cs;
		if (next > sc->off) {
			progress_add(&j->pr, next - sc->off);
			sc->off = next;
		}
		sc->data_end = e;
	}
	len = size - sc->off < b->cs ? size - sc->off : b->cs;
	if (source_read_at(&j->src, b->raw + b->n * b->cs, len, sc->off,
	    "input") < 0)
		return -1;
	memset(b->raw + b->n * b->cs + len, 0, b->cs - len);
	batch_keep_nonzero(j, sc->off);
	sc->off += b->cs;
	return 0;
}

static int scan_stream(struct job *j)
{
	struct scan *sc = &j->sc;
	struct batch *b = &j->b;
	unsigned char *buf = b->raw + b->n * b->cs;
	ssize_t n;

	n = source_read(&j->src, buf, b->cs);
	if (n < 0)
		return -1;
	sc->input_len += n;
	if (sc->input_len > size_limit(j))
		return too_long(j);
	if ((size_t)n < b->cs) {
		sc->eof = true;
		if (n == 0)
			return 0;
		memset(buf + n, 0, b->cs - n);
	}
	batch_keep_nonzero(j, sc->off);
	sc->off += b->cs;
	return 0;
}

/* Fill the batch with the next non-zero clusters of the input. */
static int scan_fill(struct job *j)
{
	j->b.n = 0;
	while (j->b.n < j->b.cap && !j->sc.eof)
		if ((j->src.seekable ? scan_seekable(j) : scan_stream(j)) < 0)
			return -1;
	return 0;
}

/*
 * qemu keeps disk sizes in 512-byte sectors and reads a qcow2 size field
 * rounded down, which would lose a non-aligned tail; like qemu-img, round
 * the virtual size up to a whole sector (the padding reads as zeros).
 */
static uint64_t virtual_size(const struct job *j)
{
	uint64_t n;

	if (j->o->size_given)
		n = j->o->size;
	else
		n = j->src.seekable ? j->src.size : j->sc.input_len;
	return (n + 511) / 512 * 512;
}

/* Output seekable: data from cluster 1 as it comes, metadata at the end. */
static int run_meta_last(struct job *j)
{
	struct batch *b = &j->b;
	uint64_t rel;
	size_t i;

	j->layout_name = "seekable output, metadata last";
	while (!j->sc.eof) {
		if (scan_fill(j) < 0)
			return -1;
		compress_batch(j);
		for (i = 0; i < b->n; i++)
			if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
			    &rel) < 0 ||
			    qcow2w_out_write(&j->out, batch_data(b, i),
			    batch_len(b, i), j->cs + rel) < 0)
				return -1;
	}
	if (qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_LAST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0)
		return -1;
	return qcow2w_out_end(&j->out, j->plan.file_size);
}

/* Write batch b (planned clusters first..first+n) after the metadata. */
static int write_planned(struct job *j, struct qcow2w_packer *pk,
    size_t first)
{
	struct batch *b = &j->b;
	uint64_t rel;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->clen[i] != j->plan.cl[first + i].clen)
			return fail(EXIT_IO, "%s changed while it was being "
			    "read", j->src.name);
		rel = qcow2w_pack(pk, j->cs, b->clen[i]);
		if (qcow2w_out_write(&j->out, batch_data(b, i),
		    batch_len(b, i), j->plan.data_off + rel) < 0)
			return -1;
	}
	return 0;
}

/* Pass 2: read the planned clusters again, compress, write in order. */
static int reread_planned(struct job *j)
{
	struct qcow2w_packer pk = { 0 };
	struct batch *b = &j->b;
	uint64_t off, len, size = j->src.size;
	size_t k = 0, first;

	while (k < j->plan.ncl) {
		first = k;
		for (b->n = 0; b->n < b->cap && k < j->plan.ncl; b->n++, k++) {
			unsigned char *buf = b->raw + b->n * b->cs;

			off = j->plan.cl[k].guest * j->cs;
			len = size - off < j->cs ? size - off : j->cs;
			if (source_read_at(&j->src, buf, len, off, "input") < 0)
				return -1;
			memset(buf + len, 0, j->cs - len);
			b->guest[b->n] = j->plan.cl[k].guest;
		}
		compress_batch(j);
		if (write_planned(j, &pk, first) < 0)
			return -1;
	}
	return 0;
}

/* Output a stream, input seekable: plan, then metadata, then data. */
static int run_two_pass(struct job *j)
{
	struct batch *b = &j->b;
	uint64_t rel;
	size_t i;

	j->layout_name = "stream output, two passes over the input";
	while (!j->sc.eof) {
		if (scan_fill(j) < 0)
			return -1;
		compress_batch(j);
		for (i = 0; i < b->n; i++)
			if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
			    &rel) < 0)
				return -1;
	}
	if (qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_FIRST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0 ||
	    reread_planned(j) < 0)
		return -1;
	return qcow2w_out_end(&j->out, j->plan.file_size);
}

static int park(struct job *j, size_t i)
{
	struct stash_ref *n;

	if (j->nrefs % 1024 == 0) {
		n = realloc(j->refs, (j->nrefs + 1024) * sizeof *n);
		if (n == NULL)
			return fail(EXIT_IO, "out of memory");
		j->refs = n;
	}
	return stash_put(&j->st, batch_data(&j->b, i), batch_len(&j->b, i),
	    &j->refs[j->nrefs++]);
}

/* Output and input streams: park the data, then the forward stream. */
static int run_stashed(struct job *j)
{
	struct qcow2w_packer pk = { 0 };
	struct batch *b = &j->b;
	uint64_t rel;
	size_t i;

	j->layout_name = "stream output, data parked in the stash";
	while (!j->sc.eof) {
		if (scan_fill(j) < 0)
			return -1;
		compress_batch(j);
		for (i = 0; i < b->n; i++)
			if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
			    &rel) < 0 || park(j, i) < 0)
				return -1;
	}
	if (qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_FIRST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0)
		return -1;
	for (i = 0; i < j->nrefs; i++) {
		uint32_t len = j->refs[i].len;

		rel = qcow2w_pack(&pk, j->cs, j->plan.cl[i].clen);
		if (stash_take(&j->st, &j->refs[i], b->raw) < 0 ||
		    qcow2w_out_write(&j->out, b->raw, len,
		    j->plan.data_off + rel) < 0)
			return -1;
	}
	return qcow2w_out_end(&j->out, j->plan.file_size);
}

static void report(const struct job *j)
{
	char mem[32], tmp[32], out[32];

	format_size(j->st.mem_peak, mem, sizeof mem);
	format_size(j->st.file_peak, tmp, sizeof tmp);
	format_size(j->plan.file_size, out, sizeof out);
	fprintf(stderr, "%s: layout: %s; %zu clusters allocated; image %s; "
	    "stash peak memory %s, temporary file %s\n", progname,
	    j->layout_name, j->plan.ncl, out, mem, tmp);
}

static int run(struct job *j)
{
	const struct raw2qcow2_opts *o = j->o;

	if (j->src.size_known && o->size_given && j->src.size > o->size)
		return too_long(j);
	if (j->src.size_known && j->src.size > IMAGE_VSIZE_MAX)
		return too_long(j);
	if (batch_init(&j->b, j->cs, o->compress, o->threads) < 0)
		return -1;
	if (o->compress && pool_start(j, o->level) < 0)
		return -1;
	if (outfile_open(&j->of, o->output) < 0)
		return -1;
	qcow2w_out_init(&j->out, j->of.fd, j->of.name);
	if ((j->out.seekable ? run_meta_last(j) : j->src.seekable ?
	    run_two_pass(j) : run_stashed(j)) < 0) {
		outfile_abort(&j->of);
		return -1;
	}
	if (outfile_commit(&j->of) < 0)
		return -1;
	if (o->stats)
		report(j);
	return 0;
}

int raw_to_qcow2(const struct raw2qcow2_opts *o)
{
	struct job j;
	size_t i;
	int rc = -1;

	memset(&j, 0, sizeof j);
	j.o = o;
	j.cs = 1ull << o->cluster_bits;
	stash_init(&j.st, o->mem ? o->mem : STASH_DEFAULT_BUDGET, o->tmpdir);
	qcow2w_plan_init(&j.plan, o->cluster_bits, o->version);
	if (source_open(&j.src, o->input) == 0) {
		progress_start(&j.pr, o->progress,
		    j.src.size_known ? j.src.size : 0);
		j.src.progress = &j.pr;
		rc = run(&j);
		progress_end(&j.pr);
	}
	pool_stop(&j.pool);
	for (i = 0; rc < 0 && i < j.nrefs; i++)
		if (j.refs[i].ptr != NULL)
			stash_drop(&j.st, &j.refs[i]);
	free(j.refs);
	free(j.pool.z);
	free(j.pool.tid);
	free(j.args);
	batch_free(&j.b);
	qcow2w_plan_free(&j.plan);
	source_close(&j.src);
	stash_free(&j.st);
	return rc;
}
