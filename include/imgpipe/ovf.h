/*
 * OVF descriptors (DMTF DSP0243, OVF 1.x and 2.x): the files an OVA
 * references and the disks built from them.  Elements and attributes are
 * matched by namespace URI, never by prefix, so VMware (vmw:) and
 * VirtualBox (vbox:) dialects read the same.
 */
#ifndef IMGPIPE_OVF_H
#define IMGPIPE_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest descriptor we parse; real ones are a few tens of KiB. */
#define OVF_DESCRIPTOR_MAX (4u * 1024 * 1024)
#define OVF_FILES_MAX 1024
#define OVF_DISKS_MAX 1024

struct ovf_file {
	char *id;		/* ovf:id, what Disk/@fileRef names */
	char *href;		/* a plain member name (checked) */
	bool has_size;
	uint64_t size;		/* ovf:size: bytes as stored (sum of chunks) */
	bool gzip;		/* ovf:compression="gzip" */
	uint64_t chunk_size;	/* ovf:chunkSize, 0 when not chunked */
};

struct ovf_disk {
	char *id;		/* ovf:diskId */
	int file;		/* index into files, -1 for an empty disk */
	char *format_uri;	/* ovf:format */
	const char *format;	/* short name: "vmdk streamOptimized" */
	char *capacity_raw;	/* ovf:capacity as written */
	char *units_raw;	/* ovf:capacityAllocationUnits, or NULL */
	bool has_capacity;	/* capacity_raw and units understood */
	uint64_t capacity;	/* bytes */
	bool has_populated;
	uint64_t populated;	/* ovf:populatedSize, bytes */
};

struct ovf {
	int version;		/* 1 or 2: the envelope namespace */
	struct ovf_file *files;
	size_t nfiles;
	struct ovf_disk *disks;	/* DiskSection order */
	size_t ndisks;
	char *system_id;	/* first VirtualSystem: ovf:id */
	char *system_name;	/* its Name element */
	char *os_id;		/* OperatingSystemSection ovf:id (CIM code) */
	char *os_desc;		/* its Description */
	char *os_type;		/* vmw:osType or vbox:OSType */
};

/*
 * Parse a descriptor of len bytes.  Fails (EXIT_REJECT, "OVF: ...") on a
 * malformed descriptor, a namespace that is neither OVF 1.x nor 2.x, an
 * href that is not a plain member name, a Disk naming no File, or an
 * unsupported compression.  o is zeroed first; ovf_free() it either way.
 */
int ovf_parse(struct ovf *o, const char *buf, size_t len);
void ovf_free(struct ovf *o);

/* True when href names an archive member: no URL, no path, no "..". */
bool ovf_href_ok(const char *href);
/* "vmdk streamOptimized", "vhd", "raw" ...; "unknown" when not known. */
const char *ovf_format_name(const char *uri);
/*
 * capacity in bytes from ovf:capacity and ovf:capacityAllocationUnits
 * ("byte", "byte * 2^20", "byte * 10^9"; NULL is bytes).  0 or -1.
 */
int ovf_capacity_bytes(const char *capacity, const char *units,
    uint64_t *out);
/* The File whose href is name, or whose chunks name.NNNNNNNNN are. */
int ovf_file_by_href(const struct ovf *o, const char *name);

#endif
