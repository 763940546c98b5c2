/*
 * Image formats behind one reader interface (the libarchive model): every
 * format bids on the first bytes, the highest bid wins, raw bids 1.  Two
 * signature bids (>= BID_SIGNATURE) from different formats are ambiguous.
 */
#ifndef IMGPIPE_FORMAT_H
#define IMGPIPE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "emit.h"
#include "source.h"
#include "stash.h"

#define BID_NONE 0
#define BID_CATCHALL 1
#define BID_SIGNATURE 100

/* Never allocate more than this for one format's metadata tables. */
#define IMAGE_META_MAX (64ull * 1024 * 1024)
/* Largest virtual size accepted: 64 TiB (qcow2's own limit is 32 MiB L1). */
#define IMAGE_VSIZE_MAX (64ull << 40)

struct probe {
	const unsigned char *head;	/* first bytes of the input */
	size_t headlen;
	const unsigned char *tail;	/* last 512 bytes, seekable input only */
	size_t taillen;
	bool size_known;
	uint64_t size;
};

struct image;

/*
 * Format-specific facts for imginfo, typed as qemu-img info prints them:
 * "compat": "1.1", "refcount-bits": 16, "lazy-refcounts": false, and
 * groups: an item of an array ("extents": [{...}, ...]) or one nested
 * object ("encrypt": {...}).  A reader adds facts with image_detail*()
 * in the order qemu-img prints them; image_detail_item() or
 * image_detail_object() opens a group, whose facts follow until
 * image_detail_end().  The array "snapshots" is qemu's top-level key;
 * every other fact goes in format-specific.data.  Facts beyond
 * DETAILS_MAX are dropped (details_lost counts them).
 */
#define DETAILS_MAX 160

enum detail_type { DETAIL_STR, DETAIL_NUM, DETAIL_BOOL };

struct image_detail {
	char key[32];
	char group[16];		/* "" at the top, else the array or object */
	bool in_array;		/* group is an array (item says which item) */
	int item;
	enum detail_type type;
	char str[96];		/* DETAIL_STR */
	uint64_t num;		/* DETAIL_NUM; DETAIL_BOOL: 0 or 1 */
};

struct image_details {
	struct image_detail d[DETAILS_MAX];
	int n;
	int details_lost;
	char group[16];		/* the open group, "" when none */
	bool in_array;
	int item;		/* the open array's current item */
};

struct format {
	const char *name;	/* "qcow2", as -f takes it */
	const char *desc;	/* one line for --list-formats */
	int (*bid)(const struct probe *pb);
	/* Parse and check metadata; set virtual_size. */
	int (*open)(struct image *img);
	/* Emit every extent of the virtual disk, then return. */
	int (*read)(struct image *img, struct emitter *em);
	void (*close)(struct image *img);
	/*
	 * Optional: the length of this format's trailer if the last taillen
	 * bytes of an input are one for a disk of data_len bytes, else 0;
	 * SIZE_MAX after recording a rejection when they claim to be one but
	 * do not check out (as the format's reader would reject them from a
	 * file).  Only the end of a pipe shows a fixed VHD's footer: the raw
	 * reader asks the table, so no format has to know another.
	 */
	size_t (*trailer)(const unsigned char *tail, size_t taillen,
	    uint64_t data_len);
};

#define FINDINGS_MAX 16

/* Something imginfo reports; for conversion a finding is a rejection. */
struct finding {
	char code[32];		/* "backing-file" */
	char text[200];		/* "image has a backing file 'base.img'" */
};

struct image {
	const struct format *fmt;
	struct source *src;
	struct stash *stash;	/* for readers that park host-ordered data */
	uint64_t virtual_size;
	/* The size is known only once read() is done (raw, fixed VHD, pipe). */
	bool size_late;
	uint64_t cluster_size;	/* 0 when the format has none */
	char subformat[48];	/* "monolithicSparse", "dynamic", "v3" ... */
	bool inspect;		/* imginfo: record findings instead of failing */
	bool verbatim;		/* raw bytes as they are: no VHD footer strip */
	bool forced;		/* -f named the format: no foreign check */
	/*
	 * imginfo from a seekable input: read walks every table with the
	 * checks of a conversion but reads no data; image_emit_range checks
	 * where the data lies and emits zeros.  Readers must not skip a
	 * table or check in this mode, or file and pipe verdicts differ.
	 */
	bool walk;
	/* threads that inflate grains, the caller's included; 0: every
	 * online processor (set after image_open) */
	int threads;
	struct finding findings[FINDINGS_MAX];
	int nfindings;
	/* For imginfo; readers fill what their format has. */
	char backing[256];	/* backing/parent file name, as the image says */
	bool dirty;		/* the image says it was not closed cleanly */
	struct image_details details;	/* format-specific facts */
	bool encrypted;		/* the content is encrypted (qemu's key) */
	char backing_format[32];	/* the backing file's format, if named */
	void *priv;		/* the format's state */
};

extern const struct format *const formats[];	/* NULL-terminated */

/* Other names -f takes: the Image service's (vhd = vpc, ploop = parallels). */
struct format_alias {
	const char *alias;
	const char *name;
};
extern const struct format_alias format_aliases[];	/* NULL-terminated */

/* By its name or an alias. */
const struct format *format_by_name(const char *name);

/*
 * A container imgpipe recognises but does not read (Bochs, cloop, DMG,
 * QCOW version 1, COWD, LUKS, archives): probing refuses it unless
 * -f raw is given, and imginfo names it.
 */
struct foreign {
	const char *name;	/* "bochs": imginfo's "file format" */
	const char *code;	/* its finding: "unsupported-format", ... */
	const char *text;	/* "a Bochs disk image" */
};
/* From the first bytes of an input, or NULL. */
const struct foreign *format_foreign_head(const unsigned char *head,
    size_t headlen);
/* From its last bytes (a DMG's trailer), or NULL. */
const struct foreign *format_foreign_trailer(const unsigned char *tail,
    size_t taillen);
/* Head, and the tail when the input is seekable, or NULL. */
const struct foreign *format_foreign(struct source *src);
/* Record the refusal of f (EXIT_REJECT, with f's code); returns -1. */
int format_refuse_foreign(const struct foreign *f);
/*
 * Choose the format of src (whose head is filled).  forced: the -f name or
 * NULL.  Fails with EXIT_REJECT on ambiguity or when forced does not bid,
 * with EXIT_USAGE when forced names no format.
 */
int format_probe(struct source *src, const char *forced,
    const struct format **out);

/* Probe (unless forced), then open.  img is zeroed first. */
int image_open(struct image *img, struct source *src, struct stash *st,
    const char *forced, bool inspect);
int image_read(struct image *img, struct emitter *em);
void image_close(struct image *img);

/*
 * Report a safety finding.  Converting: records the error "FORMAT: text"
 * (EXIT_REJECT) and returns -1.  Inspecting: records the finding and
 * returns 0 so the reader can go on where it is able to.
 */
int image_unsafe(struct image *img, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Record a format-specific fact for imginfo: a string (printf-formatted),
 * a number or a boolean (see struct image_details). */
void image_detail(struct image *img, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void image_detail_num(struct image *img, const char *key, uint64_t value);
void image_detail_bool(struct image *img, const char *key, bool value);
/* Open a new item of the array named array ("extents"), or the nested
 * object named object ("encrypt"); the facts that follow go in it until
 * image_detail_end(). */
void image_detail_item(struct image *img, const char *array);
void image_detail_object(struct image *img, const char *object);
void image_detail_end(struct image *img);
/*
 * A defect: records "FORMAT: text" with EXIT_REJECT and the finding code
 * (FINDING_TRUNCATED, ... of err.h), returns -1.  image_bad() is a
 * FINDING_MALFORMED defect.  imginfo reports the code as its finding.
 */
int image_defect(struct image *img, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int image_bad(struct image *img, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * source_read_at(), source_read() and source_skip_to() for readers: a
 * rejection (truncated, past the end) names the format, as every reader
 * message does: "qcow2: L2 table at 0x30000 lies past the end of the image".
 */
int image_read_at(struct image *img, void *buf, size_t len, uint64_t off,
    const char *what);
ssize_t image_read_forward(struct image *img, void *buf, size_t len);
int image_skip_to(struct image *img, uint64_t off);
/*
 * A truncation defect unless input bytes [off, off + len) exist (when the
 * input's size is known): the message a read of them would give.
 */
int image_check_range(struct image *img, uint64_t off, uint64_t len,
    const char *what);
/*
 * Copy input bytes [off, off + len) to virtual offset voff through buf
 * (bufsize bytes), in the source's order: for runs a table maps 1:1.
 * In walk mode, checks the range and emits zeros instead.
 */
int image_emit_range(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff);
/*
 * The same, what naming the bytes in messages ("data cluster").  From a
 * plain pipe into a pipe the bytes go in the kernel (splice), never
 * through buf: the same output, and a cut input fails with the message
 * image_read_at() gives, when it has already moved what there was.
 */
int image_copy_range(struct image *img, struct emitter *em,
    unsigned char *buf, size_t bufsize, uint64_t off, uint64_t len,
    uint64_t voff, const char *what);

#endif
