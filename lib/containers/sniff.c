/*
 * Content sniffing for uecsplit.  Each check looks at fixed offsets of
 * the first SNIFF_HEAD bytes and never reads past len.  What is checked:
 *
 *   kernel   bzImage setup header "HdrS" at 0x202; arm64 Image "ARM\x64"
 *            and RISC-V Image "RSC\x05" at 0x38; ARM zImage 0x016f2818 at
 *            0x24; an ELF vmlinux, approximated as an ELF executable with
 *            a PT_LOAD segment in the kernel half of the address space
 *            (>= 0x8000000000000000, or >= 0xc0000000 for 32-bit) or a
 *            PT_NOTE in the head whose note is named "Linux" or "Xen".
 *   ramdisk  cpio newc "070701", crc "070702", odc "070707", binary 0x71c7.
 *   image    ext2/3/4 magic 0xEF53 at 1080; xfs "XFSB" at 0; btrfs
 *            "_BHRfS_M" at 0x10040; GPT "EFI PART" at 512 or 4096; an MBR
 *            (0x55AA at 510) whose four entries look like partitions.
 *
 * gzip, xz, lzma, bzip2, zstd and lz4 content is decompressed in memory
 * (libarchive's filters, at most SNIFF_PEEK bytes of output) and the
 * checks are run on what it starts with: a compressed kernel is a kernel;
 * a compressed cpio, or a compressed file system (a classic initrd), is a
 * ramdisk.
 */
#include <archive.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgpipe/bytes.h"
#include "imgpipe/sniff.h"

/* Decompressed bytes looked at: past the ext superblock and a GPT. */
#define SNIFF_PEEK (8 * 1024)

/* Kernel and cpio headers come in either byte order. */
static uint16_t get16(const unsigned char *p, bool be)
{
	return be ? be16(p) : le16(p);
}

static uint32_t get32(const unsigned char *p, bool be)
{
	return be ? be32(p) : le32(p);
}

static uint64_t get64(const unsigned char *p, bool be)
{
	return be ? be64(p) : le64(p);
}

static bool has_at(const unsigned char *h, size_t len, size_t off,
    const char *magic, size_t mlen)
{
	return len >= off + mlen && memcmp(h + off, magic, mlen) == 0;
}

static void set(struct sniff *out, enum part_role r, const char *what)
{
	out->role = r;
	snprintf(out->what, sizeof out->what, "%s", what);
}

/* The notes in [off, off+n) of the head: is one named Linux or Xen? */
static bool elf_notes_say_linux(const unsigned char *h, size_t len,
    uint64_t off, uint64_t n, bool be)
{
	uint64_t end, namesz, descsz;

	if (off >= len)
		return false;
	end = n < len - off ? off + n : len;
	while (end - off >= 12) {
		namesz = get32(h + off, be);
		descsz = get32(h + off + 4, be);
		off += 12;
		if (namesz > end - off)
			return false;
		if ((namesz == 6 && memcmp(h + off, "Linux", 6) == 0) ||
		    (namesz == 4 && memcmp(h + off, "Xen", 4) == 0))
			return true;
		off += (namesz + 3) & ~3ull;
		if (off > end || descsz > end - off)
			return false;
		off += (descsz + 3) & ~3ull;
	}
	return false;
}

static bool elf_is_vmlinux(const unsigned char *h, size_t len)
{
	bool is64, be;
	uint64_t phoff, kbase, vaddr, poff, psz;
	uint16_t type, entsize, phnum, i;
	const unsigned char *ph;

	if (len < 64 || memcmp(h, "\x7f" "ELF", 4) != 0 ||
	    (h[4] != 1 && h[4] != 2) || (h[5] != 1 && h[5] != 2))
		return false;
	is64 = h[4] == 2;
	be = h[5] == 2;
	type = get16(h + 16, be);
	if (type != 2 && type != 3)	/* ET_EXEC, ET_DYN (relocatable) */
		return false;
	phoff = is64 ? get64(h + 32, be) : get32(h + 28, be);
	entsize = get16(h + (is64 ? 54 : 42), be);
	phnum = get16(h + (is64 ? 56 : 44), be);
	kbase = is64 ? 0x8000000000000000ull : 0xc0000000ull;
	if (entsize < (is64 ? 56 : 32))
		return false;
	for (i = 0; i < phnum; i++) {
		if (phoff >= len || (uint64_t)i * entsize >= len - phoff ||
		    entsize > len - phoff - (uint64_t)i * entsize)
			break;
		ph = h + phoff + (uint64_t)i * entsize;
		vaddr = is64 ? get64(ph + 16, be) : get32(ph + 8, be);
		poff = is64 ? get64(ph + 8, be) : get32(ph + 4, be);
		psz = is64 ? get64(ph + 32, be) : get32(ph + 16, be);
		if (get32(ph, be) == 1 && vaddr >= kbase)
			return true;
		if (get32(ph, be) == 4 &&
		    elf_notes_say_linux(h, len, poff, psz, be))
			return true;
	}
	return false;
}

static bool sniff_kernel(const unsigned char *h, size_t len, struct sniff *out)
{
	if (has_at(h, len, 0x202, "HdrS", 4))
		set(out, ROLE_KERNEL, "bzImage");
	else if (has_at(h, len, 0x38, "ARM\x64", 4))
		set(out, ROLE_KERNEL, "arm64 Image");
	else if (has_at(h, len, 0x38, "RSC\x05", 4))
		set(out, ROLE_KERNEL, "riscv Image");
	else if (len >= 0x28 && get32(h + 0x24, false) == 0x016f2818)
		set(out, ROLE_KERNEL, "arm zImage");
	else if (elf_is_vmlinux(h, len))
		set(out, ROLE_KERNEL, "ELF vmlinux");
	else
		return false;
	return true;
}

static bool sniff_cpio(const unsigned char *h, size_t len, struct sniff *out)
{
	if (has_at(h, len, 0, "070701", 6))
		set(out, ROLE_RAMDISK, "cpio newc");
	else if (has_at(h, len, 0, "070702", 6))
		set(out, ROLE_RAMDISK, "cpio crc");
	else if (has_at(h, len, 0, "070707", 6))
		set(out, ROLE_RAMDISK, "cpio odc");
	else if (len >= 26 && (get16(h, false) == 0x71c7 ||
	    get16(h, true) == 0x71c7))
		set(out, ROLE_RAMDISK, "cpio binary");
	else
		return false;
	return true;
}

static const char *ext_flavour(const unsigned char *sb)
{
	uint32_t compat = get32(sb + 0x5c, false);
	uint32_t incompat = get32(sb + 0x60, false);
	uint32_t ro_compat = get32(sb + 0x64, false);

	/* extents, 64bit, flex_bg; huge_file, gdt_csum, metadata_csum */
	if ((incompat & (0x40 | 0x80 | 0x200)) ||
	    (ro_compat & (0x8 | 0x10 | 0x400)))
		return "ext4";
	return compat & 0x4 ? "ext3" : "ext2";
}

/* Four entries, each empty or a plausible partition, at least one used. */
static bool mbr_looks_partitioned(const unsigned char *h, size_t len)
{
	const unsigned char *e;
	int i, used = 0;

	if (len < 512 || h[510] != 0x55 || h[511] != 0xaa)
		return false;
	for (i = 0; i < 4; i++) {
		e = h + 446 + 16 * i;
		if (e[0] != 0 && e[0] != 0x80)
			return false;
		if (e[4] == 0)
			continue;
		if (get32(e + 8, false) == 0 || get32(e + 12, false) == 0)
			return false;
		used++;
	}
	return used > 0;
}

static bool sniff_image(const unsigned char *h, size_t len, struct sniff *out)
{
	if (len >= 1024 + 0x68 && get16(h + 1080, false) == 0xef53)
		set(out, ROLE_IMAGE, ext_flavour(h + 1024));
	else if (has_at(h, len, 0, "XFSB", 4))
		set(out, ROLE_IMAGE, "xfs");
	else if (has_at(h, len, 0x10040, "_BHRfS_M", 8))
		set(out, ROLE_IMAGE, "btrfs");
	else if (has_at(h, len, 512, "EFI PART", 8) ||
	    has_at(h, len, 4096, "EFI PART", 8))
		set(out, ROLE_IMAGE, "GPT disk");
	else if (mbr_looks_partitioned(h, len))
		set(out, ROLE_IMAGE, "MBR disk");
	else
		return false;
	return true;
}

static bool sniff_plain(const unsigned char *h, size_t len, struct sniff *out)
{
	return sniff_kernel(h, len, out) || sniff_cpio(h, len, out) ||
	    sniff_image(h, len, out);
}

static const char *compression_name(const unsigned char *h, size_t len)
{
	if (has_at(h, len, 0, "\x1f\x8b", 2))
		return "gzip";
	if (has_at(h, len, 0, "\xfd" "7zXZ\0", 6))
		return "xz";
	if (has_at(h, len, 0, "\x5d\0\0", 3))
		return "lzma";
	if (has_at(h, len, 0, "BZh", 3))
		return "bzip2";
	if (has_at(h, len, 0, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (has_at(h, len, 0, "\x04\x22\x4d\x18", 4) ||
	    has_at(h, len, 0, "\x02\x21\x4c\x18", 4))
		return "lz4";
	return NULL;
}

/*
 * Decompress the start of h into out (at most SNIFF_PEEK bytes).  The head
 * is usually a truncated stream: what decoded before the error counts.
 */
static size_t peek_decompressed(const unsigned char *h, size_t len,
    unsigned char *out)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	size_t got = 0;
	la_ssize_t n;

	if (a == NULL)
		return 0;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, h, len) == ARCHIVE_OK &&
	    archive_read_next_header(a, &ent) == ARCHIVE_OK) {
		while (got < SNIFF_PEEK) {
			n = archive_read_data(a, out + got, SNIFF_PEEK - got);
			if (n <= 0)
				break;
			got += n;
		}
	}
	archive_read_free(a);
	return got;
}

static void sniff_compressed(const unsigned char *h, size_t len,
    const char *comp, struct sniff *out)
{
	unsigned char *inner = malloc(SNIFF_PEEK);
	struct sniff in = { ROLE_NONE, "" };
	size_t n;

	set(out, ROLE_NONE, comp);
	if (inner == NULL)
		return;
	n = peek_decompressed(h, len, inner);
	if (sniff_plain(inner, n, &in)) {
		/* A compressed file system is a classic initrd, not a disk. */
		out->role = in.role == ROLE_KERNEL ? ROLE_KERNEL : ROLE_RAMDISK;
		snprintf(out->what, sizeof out->what, "%s %s", comp, in.what);
	} else {
		snprintf(out->what, sizeof out->what, "%s data", comp);
	}
	free(inner);
}

void sniff_content(const unsigned char *head, size_t len, struct sniff *out)
{
	const char *comp;

	if (sniff_plain(head, len, out))
		return;
	comp = compression_name(head, len);
	if (comp != NULL) {
		sniff_compressed(head, len, comp, out);
		return;
	}
	if (len >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0)
		set(out, ROLE_NONE, "ELF (not a kernel)");
	else
		set(out, ROLE_NONE, len == 0 ? "empty" : "data");
}

static bool name_has(const char *lower, const char *word)
{
	return strstr(lower, word) != NULL;
}

static bool name_ends(const char *lower, const char *suffix)
{
	size_t n = strlen(lower), m = strlen(suffix);

	return n >= m && strcmp(lower + n - m, suffix) == 0;
}

enum part_role sniff_name(const char *name)
{
	const char *base = strrchr(name, '/');
	char lower[256];
	size_t i;

	base = base ? base + 1 : name;
	for (i = 0; base[i] != '\0' && i < sizeof lower - 1; i++)
		lower[i] = tolower((unsigned char)base[i]);
	lower[i] = '\0';
	if (name_has(lower, "readme") || name_has(lower, "loader") ||
	    name_has(lower, "floppy") || name_has(lower, "license") ||
	    name_ends(lower, ".txt") || name_ends(lower, ".asc") ||
	    name_ends(lower, ".sig") || name_has(lower, "sums") ||
	    name_ends(lower, ".md5") || name_ends(lower, ".sha256"))
		return ROLE_EXTRA;
	if (name_has(lower, "vmlinuz") || name_has(lower, "vmlinux") ||
	    name_has(lower, "bzimage") || name_has(lower, "kernel"))
		return ROLE_KERNEL;
	if (name_has(lower, "initrd") || name_has(lower, "initramfs") ||
	    name_has(lower, "ramdisk"))
		return ROLE_RAMDISK;
	if (name_ends(lower, ".img") || name_ends(lower, ".raw"))
		return ROLE_IMAGE;
	return ROLE_NONE;
}

const char *role_name(enum part_role r)
{
	static const char *const names[] = {
		[ROLE_NONE] = "unknown", [ROLE_KERNEL] = "kernel",
		[ROLE_RAMDISK] = "ramdisk", [ROLE_IMAGE] = "image",
		[ROLE_EXTRA] = "extra",
	};

	return names[r];
}

const char *role_disk_format(enum part_role r)
{
	return r == ROLE_KERNEL ? "aki" : r == ROLE_RAMDISK ? "ari"
	    : r == ROLE_IMAGE ? "ami" : "-";
}
