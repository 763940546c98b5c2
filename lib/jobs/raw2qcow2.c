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
#include "imgpipe/raw2qcow2.h"
#include "imgpipe/size.h"
#include "imgpipe/source.h"
#include "imgpipe/stash.h"
#include "imgpipe/zero.h"
#include "fmt/qcow2/qcow2_write.h"

/* Raw bytes read (and compressed) per round: enough work for every thread. */
#define BATCH_BYTES (4u << 20)

/*
 * Clusters read together (runs of them in one read), compressed in
 * parallel, written in order.  The raw buffer has cap slots filled in
 * input order; the n non-zero clusters point at their slots.
 */
struct batch {
	size_t n, cap, nslots;
	size_t first;		/* pass 2: index of its first planned cluster */
	uint64_t cs;
	uint64_t *guest;
	uint32_t *clen;		/* deflate length, 0: store plain */
	unsigned char **rawp;	/* slot of each kept cluster */
	unsigned char *raw;	/* cap slots */
	unsigned char *comp;	/* cap clusters, with -c */
};

/* Writes that continue each other in memory and in the file, joined. */
struct pending {
	const unsigned char *buf;
	size_t len;
	uint64_t off;
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

/*
 * The consumer thread takes filled (and compressed) batches in order and
 * plans, writes or parks them, while the main thread reads the next.
 */
struct job;
struct handoff {
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *full;	/* handed over, not yet taken */
	struct batch *holding;	/* being consumed */
	bool done, failed, started;
	int (*consume)(struct job *j, struct batch *b);
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
	struct batch bufs[2];	/* one filled while the other is written */
	struct batch *b;	/* the one being filled */
	struct handoff ho;
	struct pool pool;
	struct worker_arg *args;
	struct scan sc;
	size_t next_planned;	/* pass 2: next planned cluster to read */
	struct qcow2w_packer pass2_pack;
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
	b->rawp = calloc(b->cap, sizeof *b->rawp);
	b->raw = malloc(b->cap * cs);
	if (compress)
		b->comp = malloc(b->cap * cs);
	if (!b->guest || !b->clen || !b->rawp || !b->raw ||
	    (compress && !b->comp))
		return fail(EXIT_IO, "out of memory");
	return 0;
}

static void batch_free(struct batch *b)
{
	free(b->guest);
	free(b->clen);
	free(b->rawp);
	free(b->raw);
	free(b->comp);
}

static const unsigned char *batch_data(const struct batch *b, size_t i)
{
	return b->clen[i] ? b->comp + i * b->cs : b->rawp[i];
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
	z->next_in = b->rawp[i];
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
		if (start_thread(&p->tid[i], pool_worker, &j->args[i])) {
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
	struct batch *b = j->b;

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

/*
 * Take the k clusters just read into the free slots (len bytes, the
 * first at virtual offset off): keep those that are not all zeros.
 */
static void batch_take_run(struct batch *b, uint64_t off, size_t k,
    uint64_t len)
{
	unsigned char *p = b->raw + b->nslots * b->cs;
	size_t c;

	memset(p + len, 0, k * b->cs - len);
	for (c = 0; c < k; c++, p += b->cs)
		if (!is_zero(p, b->cs)) {
			b->rawp[b->n] = p;
			b->guest[b->n++] = off / b->cs + c;
		}
	b->nslots += k;
}

/* Seekable input: read only the file's data regions (SEEK_DATA/HOLE). */
static int scan_seekable(struct job *j)
{
	struct scan *sc = &j->sc;
	struct batch *b = j->b;
	uint64_t size = j->src.size, s, e, len, next, k;
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
	/* the clusters up to the end of the region, as many as fit */
	k = (sc->data_end - sc->off + b->cs - 1) / b->cs;
	if (k > b->cap - b->nslots)
		k = b->cap - b->nslots;
	len = k * b->cs;
	if (len > size - sc->off)
		len = size - sc->off;
	if (source_read_at(&j->src, b->raw + b->nslots * b->cs, len, sc->off,
	    "input") < 0)
		return -1;
	batch_take_run(b, sc->off, k, len);
	sc->off += k * b->cs;
	return 0;
}

static int scan_stream(struct job *j)
{
	struct scan *sc = &j->sc;
	struct batch *b = j->b;
	size_t k = b->cap - b->nslots;
	ssize_t n;

	n = source_read(&j->src, b->raw + b->nslots * b->cs, k * b->cs);
	if (n < 0)
		return -1;
	sc->input_len += n;
	if (sc->input_len > size_limit(j))
		return too_long(j);
	if ((size_t)n < k * b->cs) {
		sc->eof = true;
		k = (n + b->cs - 1) / b->cs;
	}
	batch_take_run(b, sc->off, k, n);
	sc->off += k * b->cs;
	return 0;
}

/* Fill the batch with the next non-zero clusters of the input. */
static int scan_fill(struct job *j)
{
	j->b->n = 0;
	j->b->nslots = 0;
	while (j->b->nslots < j->b->cap && !j->sc.eof)
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

static int pending_flush(struct job *j, struct pending *pw)
{
	int rc = 0;

	if (pw->len)
		rc = qcow2w_out_write(&j->out, pw->buf, pw->len, pw->off);
	pw->len = 0;
	return rc;
}

/* Write len bytes at off, joined to the pending write when they follow it. */
static int pending_write(struct job *j, struct pending *pw,
    const unsigned char *buf, size_t len, uint64_t off)
{
	if (pw->len && buf == pw->buf + pw->len && off == pw->off + pw->len) {
		pw->len += len;
		return 0;
	}
	if (pending_flush(j, pw) < 0)
		return -1;
	pw->buf = buf;
	pw->len = len;
	pw->off = off;
	return 0;
}

static void *consumer_main(void *arg)
{
	struct job *j = arg;
	struct handoff *h = &j->ho;
	struct batch *b;
	int rc;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->full == NULL && !h->done)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->full == NULL)
			break;
		b = h->holding = h->full;
		h->full = NULL;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		rc = h->failed ? 0 : h->consume(j, b);
		pthread_mutex_lock(&h->mu);
		if (rc < 0)
			h->failed = true;
		h->holding = NULL;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/*
 * Fill and compress batches on this thread, consume them in order on
 * another, so reading and compressing overlap writing.  Only the
 * consumer records errors while it runs; the producer's are recorded
 * after it has stopped.
 */
static int run_batches(struct job *j, int (*fill)(struct job *j),
    bool (*more)(const struct job *j),
    int (*consume)(struct job *j, struct batch *b))
{
	struct handoff *h = &j->ho;
	int cur = 0, rc = 0, failed;

	h->consume = consume;
	h->full = h->holding = NULL;
	h->done = h->failed = false;
	if (start_thread(&h->tid, consumer_main, j) != 0)
		return fail(EXIT_IO, "cannot start a thread");
	while (more(j)) {
		j->b = &j->bufs[cur];
		pthread_mutex_lock(&h->mu);
		while (!h->failed && (h->full == j->b || h->holding == j->b))
			pthread_cond_wait(&h->cv, &h->mu);
		failed = h->failed;
		pthread_mutex_unlock(&h->mu);
		if (failed)
			break;
		if (fill(j) < 0) {
			rc = -1;
			break;
		}
		compress_batch(j);
		pthread_mutex_lock(&h->mu);
		while (!h->failed && h->full != NULL)
			pthread_cond_wait(&h->cv, &h->mu);
		h->full = j->b;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		cur ^= 1;
	}
	pthread_mutex_lock(&h->mu);
	h->done = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->tid, NULL);
	return h->failed || rc < 0 ? -1 : 0;
}

static bool input_left(const struct job *j)
{
	return !j->sc.eof;
}

/* Output seekable: data from cluster 1 as it comes. */
static int consume_write_now(struct job *j, struct batch *b)
{
	struct pending pw = { 0 };
	uint64_t rel;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
		    &rel) < 0 ||
		    pending_write(j, &pw, batch_data(b, i), batch_len(b, i),
		    j->cs + rel) < 0)
			return -1;
	return pending_flush(j, &pw);
}

/* Output seekable: data as it comes, metadata at the end. */
static int run_meta_last(struct job *j)
{
	j->layout_name = "seekable output, metadata last";
	if (run_batches(j, scan_fill, input_left, consume_write_now) < 0 ||
	    qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_LAST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0)
		return -1;
	return qcow2w_out_end(&j->out, j->plan.file_size);
}

static int consume_plan(struct job *j, struct batch *b)
{
	uint64_t rel;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
		    &rel) < 0)
			return -1;
	return 0;
}

/* Pass 2: batch b holds planned clusters b->first...; write them. */
static int consume_planned(struct job *j, struct batch *b)
{
	struct pending pw = { 0 };
	uint64_t rel;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->clen[i] != j->plan.cl[b->first + i].clen)
			return fail(EXIT_IO, "%s changed while it was being "
			    "read", j->src.name);
		rel = qcow2w_pack(&j->pass2_pack, j->cs, b->clen[i]);
		if (pending_write(j, &pw, batch_data(b, i), batch_len(b, i),
		    j->plan.data_off + rel) < 0)
			return -1;
	}
	return pending_flush(j, &pw);
}

/* Planned clusters k.. that follow each other on the disk, up to max. */
static size_t planned_run(const struct qcow2w_plan *p, size_t k, size_t max)
{
	size_t n = 1;

	while (n < max && k + n < p->ncl &&
	    p->cl[k + n].guest == p->cl[k].guest + n)
		n++;
	return n;
}

/* Pass 2: read the next planned clusters again, runs in one read each. */
static int fill_planned(struct job *j)
{
	struct batch *b = j->b;
	uint64_t off, len, size = j->src.size;
	size_t run, c, k = j->next_planned;

	b->first = k;
	b->n = b->nslots = 0;
	while (b->nslots < b->cap && k < j->plan.ncl) {
		unsigned char *buf = b->raw + b->nslots * b->cs;

		run = planned_run(&j->plan, k, b->cap - b->nslots);
		off = j->plan.cl[k].guest * j->cs;
		if (off >= size)
			return fail(EXIT_IO, "%s changed while it was being "
			    "read", j->src.name);
		len = run * j->cs;
		if (len > size - off)
			len = size - off;
		if (source_read_at(&j->src, buf, len, off, "input") < 0)
			return -1;
		memset(buf + len, 0, run * j->cs - len);
		for (c = 0; c < run; c++, k++) {
			b->rawp[b->n] = buf + c * j->cs;
			b->guest[b->n++] = j->plan.cl[k].guest;
		}
		b->nslots += run;
	}
	j->next_planned = k;
	return 0;
}

static bool planned_left(const struct job *j)
{
	return j->next_planned < j->plan.ncl;
}

/* Output a stream, input seekable: plan, then metadata, then data. */
static int run_two_pass(struct job *j)
{
	j->layout_name = "stream output, two passes over the input";
	if (run_batches(j, scan_fill, input_left, consume_plan) < 0 ||
	    qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_FIRST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0 ||
	    run_batches(j, fill_planned, planned_left, consume_planned) < 0)
		return -1;
	return qcow2w_out_end(&j->out, j->plan.file_size);
}

static int consume_park(struct job *j, struct batch *b)
{
	struct stash_ref *n;
	uint64_t rel;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (j->nrefs % 1024 == 0) {
			n = realloc(j->refs, (j->nrefs + 1024) * sizeof *n);
			if (n == NULL)
				return fail(EXIT_IO, "out of memory");
			j->refs = n;
		}
		if (qcow2w_plan_add(&j->plan, b->guest[i], b->clen[i],
		    &rel) < 0 ||
		    stash_put(&j->st, batch_data(b, i), batch_len(b, i),
		    &j->refs[j->nrefs++]) < 0)
			return -1;
	}
	return 0;
}

/* Output and input streams: park the data, then the forward stream. */
static int run_stashed(struct job *j)
{
	struct qcow2w_packer pk = { .fill_back = j->plan.pack.fill_back };
	unsigned char *buf = j->bufs[0].raw;
	uint64_t rel;
	size_t i;

	j->layout_name = "stream output, data parked in the stash";
	if (run_batches(j, scan_fill, input_left, consume_park) < 0 ||
	    qcow2w_plan_finish(&j->plan, virtual_size(j), QCOW2W_META_FIRST) <
	    0 || qcow2w_write_metadata(&j->plan, &j->out) < 0)
		return -1;
	for (i = 0; i < j->nrefs; i++) {
		uint32_t len = j->refs[i].len;

		rel = qcow2w_pack(&pk, j->cs, j->plan.cl[i].clen);
		if (stash_take(&j->st, &j->refs[i], buf) < 0 ||
		    qcow2w_out_write(&j->out, buf, len,
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
	if (batch_init(&j->bufs[0], j->cs, o->compress, o->threads) < 0 ||
	    batch_init(&j->bufs[1], j->cs, o->compress, o->threads) < 0)
		return -1;
	j->b = &j->bufs[0];
	if (o->compress && pool_start(j, o->level) < 0)
		return -1;
	if (outfile_open(&j->of, o->output) < 0)
		return -1;
	qcow2w_out_init(&j->out, j->of.fd, j->of.name);
	/* positioned writes can fill compressed space back, like qemu */
	j->plan.pack.fill_back = j->out.seekable;
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
	qcow2w_plan_init(&j.plan, o->cluster_bits, o->version, false);
	pthread_mutex_init(&j.ho.mu, NULL);
	pthread_cond_init(&j.ho.cv, NULL);
	j.ho.started = true;
	if (source_open(&j.src, o->input) == 0) {
		progress_start(&j.pr, o->progress,
		    j.src.size_known ? j.src.size : 0);
		j.src.progress = &j.pr;
		rc = run(&j);
		progress_end(&j.pr);
	}
	pool_stop(&j.pool);
	for (i = 0; rc < 0 && i < j.nrefs; i++)
		stash_drop(&j.st, &j.refs[i]);
	free(j.refs);
	free(j.pool.z);
	free(j.pool.tid);
	free(j.args);
	batch_free(&j.bufs[0]);
	batch_free(&j.bufs[1]);
	if (j.ho.started) {
		pthread_mutex_destroy(&j.ho.mu);
		pthread_cond_destroy(&j.ho.cv);
	}
	qcow2w_plan_free(&j.plan);
	source_close(&j.src);
	stash_free(&j.st);
	return rc;
}
