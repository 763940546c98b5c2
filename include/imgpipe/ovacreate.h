/*
 * ovacreate: an OVA put together from disks, the reverse of ovaextract.
 * Three parts: the OVF descriptor (lib/containers/ovf_write.c, libxml2's
 * writer), the tar (lib/containers/ova_write.c, libarchive, digests taken
 * as the bytes go out) and the job (lib/jobs/ovacreate.c: every disk to a
 * streamOptimized VMDK through the writer interface, or a streamOptimized
 * VMDK file as it is; then the archive: descriptor, manifest, disks).
 */
#ifndef IMGPIPE_OVACREATE_H
#define IMGPIPE_OVACREATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "manifest.h"

/* ---- the descriptor ---- */

#define OVF_VMDK_STREAM_URI \
	"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

enum ovf_controller { OVF_LSILOGIC, OVF_BUSLOGIC, OVF_IDE };
enum ovf_nic { OVF_E1000, OVF_VMXNET3 };

/* A guest operating system: its CIM OSType and VMware's name for it. */
struct ovf_os {
	const char *name;	/* what --os takes: "linux" */
	unsigned cim_id;	/* CIM_OperatingSystem.OSType: 101 */
	const char *desc;	/* "Linux 64-Bit" */
	const char *vmw;	/* vmw:osType, or NULL */
};

/* The names --os knows, ending with a NULL name. */
extern const struct ovf_os ovf_os_names[];
const struct ovf_os *ovf_os_by_name(const char *name);
/* Text an XML 1.0 descriptor can carry: UTF-8, no control characters. */
bool ovf_text_ok(const char *s);
/* How many disks the controllers of this type can hold. */
size_t ovf_disks_max(enum ovf_controller c);

struct ovf_out_disk {
	const char *href;	/* the member's name */
	uint64_t file_size;	/* bytes of the member */
	uint64_t capacity;	/* bytes of the virtual disk, a multiple of 512 */
	uint64_t populated;	/* bytes of the virtual disk that hold data */
};

struct ovf_appliance {
	int version;		/* 1 (the envelope/1 namespace) or 2 */
	const char *name;	/* the virtual system: ovf:id and Name */
	struct ovf_os os;
	unsigned cpus;
	uint64_t memory_mib;
	unsigned hw_version;	/* VirtualSystemType vmx-NN */
	enum ovf_controller controller;
	enum ovf_nic nic;
	const struct ovf_out_disk *disks;
	size_t ndisks;		/* 1 to ovf_disks_max(controller) */
};

/* The descriptor of a, in *buf (malloc'd, *len bytes, no NUL needed). */
int ovf_write(const struct ovf_appliance *a, char **buf, size_t *len);

/* ---- the archive ---- */

struct archive;

/*
 * A ustar archive (pax headers only where ustar cannot say it: a member
 * of 8 GiB or more) written front to back into fd, a file or a pipe.
 * A member's digest is taken as its bytes go out, when asked for.
 */
struct ova_writer {
	struct archive *ar;
	const char *name;	/* the output, for messages */
	time_t mtime;		/* of every member */
	enum digest_alg alg;
	struct digest_set digest;
	const char *member;	/* the member being written */
	bool digesting;		/* its digest is taken */
	uint64_t left;		/* its bytes still to come */
};

int ova_writer_open(struct ova_writer *w, int fd, const char *name,
    enum digest_alg alg, time_t mtime);
/*
 * A member of size bytes: its header, then ova_member_write()s; its
 * digest taken as the bytes go out when digest is true.
 */
int ova_member_begin(struct ova_writer *w, const char *member, uint64_t size,
    bool digest);
int ova_member_write(struct ova_writer *w, const void *buf, size_t len);
/* All size bytes were written: the member's digest (if taken) into digest. */
int ova_member_end(struct ova_writer *w, unsigned char *digest);
/* The end-of-archive blocks; everything flushed.  Frees w either way. */
int ova_writer_close(struct ova_writer *w);
/* After a failure: frees w, writes nothing more. */
void ova_writer_abort(struct ova_writer *w);

/* ---- the job ---- */

struct ovacreate_opts {
	char *const *disks;	/* the DISK operands; "-" is stdin */
	size_t ndisks;
	const char *output;	/* -o FILE; NULL or "-": stdout */
	const char *name;	/* --name, or NULL: from the first disk */
	const char *format;	/* -f: every disk's format, or NULL to probe */
	struct ovf_appliance hw;	/* what --os, --cpus ... chose */
	enum digest_alg manifest;
	int threads;		/* deflate threads */
	int level;		/* deflate level */
	bool progress;
	uint64_t mem;		/* the parking store's budget, 0: default */
	const char *tmpdir;	/* for the store and the disks' VMDKs */
};

/* Make the OVA; -1 with the error recorded. */
int ovacreate_run(const struct ovacreate_opts *o);

#endif
