/*
 * VHDX log replay (MS-VHDX 2.3), in memory and read-only.
 *
 * The log is a circular buffer of 4 KiB sectors.  Each entry: a header
 * ('loge', CRC-32C over the whole entry, length, tail, sequence number,
 * descriptor count, the log GUID, FlushedFileOffset, LastFileOffset),
 * descriptors ('zero': a run to clear; 'desc': one sector to write, its
 * first 8 and last 4 bytes in the descriptor), then one data sector
 * ('data', the sequence number split around the middle 4084 bytes) per
 * 'desc'.  A sequence is entries one after another in the log whose
 * sequence numbers go up by one; it is valid when every entry is, and
 * its last entry (the head) names its first in Tail.  The active
 * sequence is the valid one whose head has the highest sequence number;
 * replaying it means applying its descriptors in order.
 *
 * Here nothing is written: the writes become an overlay of disjoint
 * segments (the last write of a byte wins), put over every read of the
 * BAT, the metadata and the payload.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt/vhdx/vhdx.h"
#include "fmt/vhdx/vhdx_log.h"
#include "imgpipe/crc32c.h"
#include "imgpipe/err.h"
#include "imgpipe/grow.h"

#define SECTOR VHDX_LOG_SECTOR

/* A valid entry at a sector of the log. */
struct entry {
	bool valid;
	uint32_t len;		/* bytes */
	uint32_t tail;		/* log offset of its sequence's first entry */
	uint32_t ndesc;
	uint64_t seq;
	uint64_t flushed, last;
};

/* One write of the active sequence, in replay order. */
struct write {
	uint64_t off, end;
	const unsigned char *data;	/* NULL: zeros */
	size_t order;
};

struct log {
	unsigned char *buf;
	uint64_t len;
	uint64_t nsectors;
	const unsigned char *guid;
	struct entry *entries;	/* one per sector */
};

static const unsigned char *sector_at(const struct log *lg, uint64_t sec)
{
	return lg->buf + sec % lg->nsectors * SECTOR;
}

/* Descriptor i of the entry at sector sec (descriptors never straddle a
 * sector, so never the end of the log). */
static const unsigned char *desc_at(const struct log *lg, uint64_t sec,
    uint32_t i)
{
	uint64_t at = VHDX_LE_HEADER_SIZE + (uint64_t)VHDX_DESC_SIZE * i;

	return sector_at(lg, sec + at / SECTOR) + at % SECTOR;
}

static uint32_t entry_crc(const struct log *lg, uint64_t sec, uint32_t len)
{
	static const unsigned char zero[4];
	const unsigned char *h = sector_at(lg, sec);
	uint32_t crc, n;

	crc = crc32c(0, h, VHDX_LE_CHECKSUM);
	crc = crc32c(crc, zero, 4);
	crc = crc32c(crc, h + VHDX_LE_CHECKSUM + 4, SECTOR - VHDX_LE_CHECKSUM - 4);
	for (n = 1; n < len / SECTOR; n++)
		crc = crc32c(crc, sector_at(lg, sec + n), SECTOR);
	return crc;
}

/* Descriptors and data sectors as MS-VHDX 2.3.1 lays them out. */
static bool descriptors_valid(const struct log *lg, uint64_t sec,
    const struct entry *e)
{
	uint64_t dsec = vhdx_desc_sectors(e->ndesc), ndata = 0;
	uint32_t i;

	if (dsec > e->len / SECTOR)
		return false;
	for (i = 0; i < e->ndesc; i++) {
		const unsigned char *d = desc_at(lg, sec, i);
		bool zero = memcmp(d, VHDX_ZERO_SIGNATURE, 4) == 0;

		if ((!zero && memcmp(d, VHDX_DATA_DESC_SIGNATURE, 4) != 0) ||
		    le64(d + VHDX_DE_SEQUENCE) != e->seq ||
		    le64(d + VHDX_DE_FILE_OFFSET) % SECTOR != 0 ||
		    (zero && le64(d + VHDX_DE_ZERO_LENGTH) % SECTOR != 0))
			return false;
		if (!zero) {
			const unsigned char *s;

			if (dsec + ndata >= e->len / SECTOR)
				return false;
			s = sector_at(lg, sec + dsec + ndata);
			if (memcmp(s, VHDX_DATA_SIGNATURE, 4) != 0 ||
			    le32(s + VHDX_DS_SEQ_HIGH) != (uint32_t)(e->seq >> 32) ||
			    le32(s + VHDX_DS_SEQ_LOW) != (uint32_t)e->seq)
				return false;
			ndata++;
		}
	}
	return dsec + ndata == e->len / SECTOR;
}

/* The entry whose header is at sector sec, checked whole. */
static void entry_check(const struct log *lg, uint64_t sec, struct entry *e)
{
	const unsigned char *h = sector_at(lg, sec);

	memset(e, 0, sizeof *e);
	if (memcmp(h, VHDX_LOG_ENTRY_SIGNATURE, 4) != 0 ||
	    memcmp(h + VHDX_LE_LOG_GUID, lg->guid, 16) != 0)
		return;
	e->len = le32(h + VHDX_LE_LENGTH);
	e->tail = le32(h + VHDX_LE_TAIL);
	e->seq = le64(h + VHDX_LE_SEQUENCE);
	e->ndesc = le32(h + VHDX_LE_DESC_COUNT);
	e->flushed = le64(h + VHDX_LE_FLUSHED_OFFSET);
	e->last = le64(h + VHDX_LE_LAST_OFFSET);
	if (e->len == 0 || e->len % SECTOR != 0 || e->len > lg->len ||
	    e->tail % SECTOR != 0 || e->tail >= lg->len || e->seq == 0 ||
	    !descriptors_valid(lg, sec, e) ||
	    le32(h + VHDX_LE_CHECKSUM) != entry_crc(lg, sec, e->len))
		return;
	e->valid = true;
}

/*
 * The sequence that starts at sector start: entries one after another
 * with sequence numbers going up by one, cut back to the last entry whose
 * Tail names start.  Its length in entries, and its head's sector.
 */
static uint32_t sequence_from(const struct log *lg, uint64_t start,
    uint64_t *head)
{
	uint64_t sec = start, used = 0, seq = 0;
	uint32_t n = 0, good = 0;

	while (lg->entries[sec].valid && used < lg->nsectors &&
	    (n == 0 || lg->entries[sec].seq == seq + 1)) {
		const struct entry *e = &lg->entries[sec];

		n++;
		if (e->tail == start * SECTOR) {
			good = n;
			*head = sec;
		}
		seq = e->seq;
		used += e->len / SECTOR;
		sec = (sec + e->len / SECTOR) % lg->nsectors;
		if (sec == start)
			break;
	}
	return used > lg->nsectors ? 0 : good;
}

/* The active sequence: its first sector, head sector and entry count. */
static uint32_t active_sequence(const struct log *lg, uint64_t *first,
    uint64_t *head)
{
	uint64_t s, h = 0, best_seq = 0;
	uint32_t n, best = 0;

	for (s = 0; s < lg->nsectors; s++) {
		if (!lg->entries[s].valid)
			continue;
		n = sequence_from(lg, s, &h);
		if (n > 0 && lg->entries[h].seq > best_seq) {
			best_seq = lg->entries[h].seq;
			best = n;
			*first = s;
			*head = h;
		}
	}
	return best;
}

/* The data sector as it is to be written: leading and trailing bytes
 * back from the descriptor (patched in place, the log is ours). */
static const unsigned char *restore_sector(unsigned char *s,
    const unsigned char *d)
{
	memcpy(s, d + VHDX_DE_LEADING, 8);
	memcpy(s + VHDX_DS_SEQ_LOW, d + VHDX_DE_TRAILING, 4);
	return s;
}

static int add_write(struct image *img, struct write **w, size_t *n,
    size_t *cap, uint64_t off, uint64_t len, const unsigned char *data,
    uint64_t log_off, uint64_t log_len)
{
	if (off < VHDX_MIB || off > UINT64_MAX - len ||
	    (off < log_off + log_len && log_off < off + len))
		return image_bad(img, "log: an entry writes 0x%llx bytes at "
		    "0x%llx, in the header area or the log itself (log "
		    "descriptor)", (unsigned long long)len,
		    (unsigned long long)off);
	if (len == 0)
		return 0;
	switch (grow_array(w, *n, cap, sizeof **w, 64,
	    VHDX_LOG_DESC_MAX * sizeof **w)) {
	case 1:
		return image_bad(img, "log: more than %u descriptors in the "
		    "active sequence", VHDX_LOG_DESC_MAX);
	case -1:
		return -1;
	}
	(*w)[*n] = (struct write){ off, off + len, data, *n };
	(*n)++;
	return 0;
}

/* Every write of the sequence, in replay order. */
static int collect_writes(struct image *img, struct log *lg, uint64_t first,
    uint32_t count, uint64_t log_off, struct write **w, size_t *n)
{
	uint64_t sec = first;
	size_t cap = 0;
	uint32_t k, i;

	*w = NULL;
	*n = 0;
	for (k = 0; k < count; k++) {
		const struct entry *e = &lg->entries[sec];
		uint64_t data_sec = sec + vhdx_desc_sectors(e->ndesc);

		for (i = 0; i < e->ndesc; i++) {
			const unsigned char *d = desc_at(lg, sec, i);
			uint64_t off = le64(d + VHDX_DE_FILE_OFFSET);
			int rc;

			if (memcmp(d, VHDX_ZERO_SIGNATURE, 4) == 0)
				rc = add_write(img, w, n, &cap, off,
				    le64(d + VHDX_DE_ZERO_LENGTH), NULL,
				    log_off, lg->len);
			else
				rc = add_write(img, w, n, &cap, off, SECTOR,
				    restore_sector((unsigned char *)
				    sector_at(lg, data_sec++), d),
				    log_off, lg->len);
			if (rc < 0)
				return -1;
		}
		sec = (sec + e->len / SECTOR) % lg->nsectors;
	}
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct write *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* A max-heap of writes by replay order: the newest covering write wins. */
struct heap {
	const struct write **v;
	size_t n;
};

static void heap_push(struct heap *h, const struct write *w)
{
	size_t i = h->n++;

	while (i > 0 && h->v[(i - 1) / 2]->order < w->order) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = w;
}

static void heap_pop(struct heap *h)
{
	const struct write *last = h->v[--h->n];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && h->v[c + 1]->order > h->v[c]->order)
			c++;
		if (h->v[c]->order <= last->order)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
}

static int add_seg(struct vhdx_overlay *ov, size_t *cap, uint64_t off,
    uint64_t end, const struct write *w)
{
	const unsigned char *data = w->data ? w->data + (off - w->off) : NULL;
	struct vhdx_seg *prev = ov->nsegs ? &ov->segs[ov->nsegs - 1] : NULL;

	if (prev != NULL && prev->end == off && data == NULL &&
	    prev->data == NULL) {
		prev->end = end;
		return 0;
	}
	if (grow_array(&ov->segs, ov->nsegs, cap, sizeof *ov->segs, 64,
	    SIZE_MAX) != 0)
		return -1;
	ov->segs[ov->nsegs++] = (struct vhdx_seg){ off, end, data };
	return 0;
}

/* Sweep the writes by offset: each stretch belongs to its newest write. */
static int build_segments(struct vhdx_overlay *ov, struct write *w, size_t n)
{
	struct heap h = { malloc((n + 1) * sizeof *h.v), 0 };
	size_t i = 0, cap = 0;
	uint64_t pos;
	int rc = 0;

	if (h.v == NULL)
		return fail(EXIT_IO, "out of memory");
	qsort(w, n, sizeof *w, by_start);
	pos = n ? w[0].off : 0;
	while (rc == 0 && (i < n || h.n > 0)) {
		uint64_t next;

		if (h.n == 0 && pos < w[i].off)
			pos = w[i].off;
		while (i < n && w[i].off == pos)
			heap_push(&h, &w[i++]);
		while (h.n > 0 && h.v[0]->end <= pos)
			heap_pop(&h);
		if (h.n == 0)
			continue;
		next = h.v[0]->end;
		if (i < n && w[i].off < next)
			next = w[i].off;
		rc = add_seg(ov, &cap, pos, next, h.v[0]);
		pos = next;
	}
	free(h.v);
	return rc;
}

int vhdx_log_replay(struct image *img, unsigned char *buf, uint64_t log_len,
    uint64_t log_off, const unsigned char guid[16],
    struct vhdx_overlay *ov)
{
	struct log lg = { buf, log_len, log_len / SECTOR, guid, NULL };
	struct write *w = NULL;
	uint64_t s, first = 0, head = 0;
	size_t n = 0;
	int rc = -1;

	memset(ov, 0, sizeof *ov);
	lg.entries = calloc(lg.nsectors + 1, sizeof *lg.entries);
	if (lg.entries == NULL)
		return fail(EXIT_IO, "out of memory");
	for (s = 0; s < lg.nsectors; s++)
		entry_check(&lg, s, &lg.entries[s]);
	ov->nentries = active_sequence(&lg, &first, &head);
	if (ov->nentries == 0) {
		image_bad(img, "log: the header names a log, but no valid "
		    "sequence of entries carries its GUID (checksums, "
		    "sequence numbers and tail checked; log at 0x%llx)",
		    (unsigned long long)log_off);
		goto out;
	}
	ov->seq_first = lg.entries[first].seq;
	ov->seq_last = lg.entries[head].seq;
	ov->flushed = lg.entries[head].flushed;
	ov->last = lg.entries[head].last;
	if (collect_writes(img, &lg, first, ov->nentries, log_off, &w, &n) < 0 ||
	    build_segments(ov, w, n) < 0)
		goto out;
	rc = 0;
out:
	free(w);
	free(lg.entries);
	return rc;
}

/* The index of the first segment ending after off. */
static size_t first_after(const struct vhdx_overlay *ov, uint64_t off)
{
	size_t lo = 0, hi = ov->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ov->segs[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct vhdx_seg *vhdx_overlay_find(const struct vhdx_overlay *ov,
    uint64_t off, uint64_t end)
{
	size_t i = first_after(ov, off);

	return i < ov->nsegs && ov->segs[i].off < end ? &ov->segs[i] : NULL;
}

void vhdx_overlay_patch(const struct vhdx_overlay *ov, unsigned char *buf,
    uint64_t off, size_t len)
{
	uint64_t end = off + len;
	size_t lo = first_after(ov, off);

	for (; lo < ov->nsegs && ov->segs[lo].off < end; lo++) {
		const struct vhdx_seg *g = &ov->segs[lo];
		uint64_t a = g->off > off ? g->off : off;
		uint64_t b = g->end < end ? g->end : end;

		if (g->data != NULL)
			memcpy(buf + (a - off), g->data + (a - g->off), b - a);
		else
			memset(buf + (a - off), 0, b - a);
	}
}

void vhdx_overlay_free(struct vhdx_overlay *ov)
{
	free(ov->segs);
	memset(ov, 0, sizeof *ov);
}
