/*
 * The tar of an OVA (include/imgpipe/ovacreate.h), written with
 * libarchive into a file or a pipe.  DSP0243 asks for POSIX ustar;
 * libarchive's restricted pax writer gives exactly that for every member
 * ustar can describe and adds a pax header only to one it cannot (8 GiB
 * or more), which GNU tar, bsdtar and Python's tarfile read.  Members are
 * regular files, mode 0644, owned by root, all with one mtime.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/ovacreate.h"

static int ar_fail(struct ova_writer *w)
{
	int e = archive_errno(w->ar);
	const char *msg = archive_error_string(w->ar);

	if (e > 0) {
		errno = e;
		return fail_errno(EXIT_IO, "write error on %s", w->name);
	}
	return fail(EXIT_IO, "write error on %s: %s", w->name,
	    msg ? msg : "tar writer failed");
}

int ova_writer_open(struct ova_writer *w, int fd, const char *name,
    enum digest_alg alg, time_t mtime)
{
	memset(w, 0, sizeof *w);
	w->name = name;
	w->mtime = mtime;
	w->alg = alg;
	w->ar = archive_write_new();
	if (w->ar == NULL)
		return fail(EXIT_IO, "out of memory");
	/*
	 * libarchive pads the last block to 10240 bytes into a pipe and not
	 * into a regular file; padded to whole 512-byte records either way,
	 * a file and a pipe get the same bytes.
	 */
	if (archive_write_set_format_pax_restricted(w->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->ar, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(w->ar, fd) != ARCHIVE_OK) {
		ar_fail(w);
		ova_writer_abort(w);
		return -1;
	}
	return 0;
}

int ova_member_begin(struct ova_writer *w, const char *member, uint64_t size,
    bool digest)
{
	struct archive_entry *e = archive_entry_new();
	int rc;

	if (e == NULL)
		return fail(EXIT_IO, "out of memory");
	archive_entry_set_pathname(e, member);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, w->mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	rc = archive_write_header(w->ar, e);
	archive_entry_free(e);
	if (rc != ARCHIVE_OK)
		return ar_fail(w);
	w->member = member;
	w->left = size;
	w->digesting = digest;
	digest_set_init(&w->digest);
	if (digest)
		digest_set_enable(&w->digest, w->alg);
	return 0;
}

int ova_member_write(struct ova_writer *w, const void *buf, size_t len)
{
	const char *p = buf;
	la_ssize_t n;

	if (len > w->left)
		return fail(EXIT_IO, "%s: %s grew while it was archived",
		    w->name, w->member);
	digest_set_update(&w->digest, buf, len);
	w->left -= len;
	while (len > 0) {
		n = archive_write_data(w->ar, p, len);
		if (n <= 0)
			return ar_fail(w);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ova_member_end(struct ova_writer *w, unsigned char *digest)
{
	if (w->left != 0)
		return fail(EXIT_IO, "%s: %s shrank while it was archived",
		    w->name, w->member);
	if (archive_write_finish_entry(w->ar) != ARCHIVE_OK)
		return ar_fail(w);
	digest_set_final(&w->digest);
	if (w->digesting && digest != NULL)
		memcpy(digest, w->digest.out[w->alg], digest_alg_len(w->alg));
	w->member = NULL;
	return 0;
}

int ova_writer_close(struct ova_writer *w)
{
	int rc = 0;

	if (archive_write_close(w->ar) != ARCHIVE_OK)
		rc = ar_fail(w);
	archive_write_free(w->ar);
	w->ar = NULL;
	return rc;
}

void ova_writer_abort(struct ova_writer *w)
{
	if (w->ar == NULL)
		return;
	/* Nothing more reaches the output: no end blocks after a failure. */
	archive_write_fail(w->ar);
	archive_write_free(w->ar);
	w->ar = NULL;
}
