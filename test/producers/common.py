"""Shared pieces of the producer generators: the test disk, seeded values,
checksums and the CHS rule.  Python 3 standard library only.

The test disk.  Every generator writes the same kind of virtual disk so a
test can compare bytes: data islands (sectors whose text names the
producer and the sector number), explicit zero runs (allocated by the
producer, written as zero bytes) and everything else unallocated.  The
islands sit where readers go wrong: sector 0, across the first 64 KiB
grain boundary, inside a 2 MiB block, across a 2 MiB and a 32 MiB
boundary, and in the very last sectors of the disk (where a backup GPT
header lives, the first thing lost when a reader sizes a VHD by its CHS
geometry).
"""

import hashlib
import struct
import uuid
import zlib

SECTOR = 512
KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB


class Rng:
    """A seeded byte source that gives the same bytes on every Python
    (random.Random's derived functions are not promised stable)."""

    def __init__(self, seed, label=""):
        self.key = ("%s/%s" % (seed, label)).encode()
        self.n = 0

    def bytes(self, count):
        out = b""
        while len(out) < count:
            out += hashlib.sha256(self.key + struct.pack("<Q", self.n)).digest()
            self.n += 1
        return out[:count]

    def u32(self):
        return struct.unpack("<I", self.bytes(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.bytes(8))[0]

    def below(self, n):
        return self.u64() % n if n > 0 else 0

    def uuid(self):
        """A version-4 UUID from the seed."""
        return uuid.UUID(bytes=self.bytes(16), version=4)


class Disk:
    """The virtual disk: raw bytes plus which byte ranges the producer
    allocated (data or explicit zeros).  Unallocated ranges read as zero."""

    def __init__(self, size):
        self.size = size
        self.raw = bytearray(size)
        self.alloc = []          # (offset, length, kind) kind: data|zero

    def put(self, off, data, kind="data"):
        data = bytes(data)
        if off < 0 or off >= self.size:
            return
        data = data[: self.size - off]
        self.raw[off:off + len(data)] = data
        self.alloc.append((off, len(data), kind))

    def zero(self, off, length):
        length = min(length, self.size - off)
        if off < 0 or length <= 0:
            return
        self.raw[off:off + length] = bytes(length)
        self.alloc.append((off, length, "zero"))

    def touched(self, off, length):
        """True if the producer wrote anything (data or zeros) in the range."""
        end = off + length
        for a, n, _ in self.alloc:
            if a < end and off < a + n:
                return True
        return False

    def has_data(self, off, length):
        """True if the range holds a non-zero byte."""
        return any(self.raw[off:off + length])

    def units(self, unit):
        """Indexes of the unit-sized pieces the producer allocated."""
        n = (self.size + unit - 1) // unit
        return [i for i in range(n) if self.touched(i * unit, unit)]

    def chunk(self, off, length):
        """length bytes from off, zero-padded past the end of the disk."""
        b = bytes(self.raw[off:off + length])
        return b + bytes(length - len(b))


def sector_text(producer, lba, seed):
    """One recognisable 512-byte sector."""
    head = ("imgpipe producer=%s seed=%s lba=%d\n" % (producer, seed, lba)).encode()
    fill = bytes(((lba * 7 + i * 13) & 0xff) | 1 for i in range(SECTOR))
    return (head + fill)[:SECTOR]


# gen.py --dense: bytes of one more island, a long run of data (0: none).
DENSE = 0


def fill_pattern(disk, producer, seed, first_lba_reserved=False):
    """Put the islands and zero runs on a disk.  With first_lba_reserved the
    first MiB is left to a partition table written by the caller."""
    size = disk.size
    rng = Rng(seed, "pattern")

    def island(off, length):
        off = off // SECTOR * SECTOR
        length = (length + SECTOR - 1) // SECTOR * SECTOR
        if off >= size:
            return
        length = min(length, size - off)
        data = b"".join(sector_text(producer, (off // SECTOR) + i, seed)
                        for i in range(length // SECTOR))
        disk.put(off, data)

    if not first_lba_reserved:
        island(0, 4 * KiB)                               # sector 0
    island(64 * KiB - 3 * SECTOR, 6 * SECTOR)            # across a grain
    j = rng.below(64) * SECTOR
    island(size * 3 // 8 // MiB * MiB + 300 * KiB + j, 200 * KiB)  # in a block
    zoff = size // 2 // MiB * MiB + 128 * KiB
    if zoff + 256 * KiB < size:
        disk.zero(zoff, 256 * KiB)                       # allocated zeros
    b2 = max(2 * MiB, size * 5 // 8 // (2 * MiB) * (2 * MiB))
    island(b2 - 40 * KiB, 80 * KiB)                      # across 2 MiB
    if size > 40 * MiB:
        island(32 * MiB - 8 * KiB, 16 * KiB)             # across 32 MiB
    island(size - 64 * KiB, 64 * KiB)                    # the last sectors
    if DENSE:
        island(size // 8 // MiB * MiB, DENSE)            # a long data run
    return disk


# ---------------------------------------------------------------- checksums

def _crc32c_table():
    poly = 0x82F63B78
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t.append(c)
    return t


_CRC32C = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as MS-VHDX uses it."""
    crc ^= 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def ones_complement_sum(data):
    """The VHD footer/header checksum: one's complement of the byte sum."""
    return (~sum(data)) & 0xFFFFFFFF


# ---------------------------------------------------------------- geometry

def vhd_chs(size, cap_cyls=65535):
    """CHS per the VHD specification's algorithm (appendix: CHS
    calculation).  Returns (cylinders, heads, sectors).  FreeBSD mkimg caps
    at 65536*16*255 (cap_cyls=65536), everyone else at 65535*16*255."""
    total = size // SECTOR
    if total > cap_cyls * 16 * 255:
        total = cap_cyls * 16 * 255
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = (cth + 1023) // 1024
        if heads < 4:
            heads = 4
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return (cth // heads, heads, spt)


def chs_bytes(chs):
    c, h, s = chs
    return c * h * s * SECTOR


# ---------------------------------------------------------------- partitions

def mbr(partitions, disk_id=0x12345678):
    """A DOS MBR.  partitions: list of (type, first_lba, sectors)."""
    b = bytearray(SECTOR)
    struct.pack_into("<I", b, 440, disk_id)
    for i, (ptype, first, count) in enumerate(partitions):
        e = 446 + 16 * i
        b[e] = 0x80 if i == 0 else 0
        b[e + 1:e + 4] = b"\xfe\xff\xff"       # CHS past 1024 cylinders
        b[e + 4] = ptype
        b[e + 5:e + 8] = b"\xfe\xff\xff"
        struct.pack_into("<II", b, e + 8, first, count)
    b[510:512] = b"\x55\xaa"
    return bytes(b)


def write_gpt(disk, rng, name="imgpipe"):
    """Protective MBR, primary GPT at LBA 1 and the backup GPT in the last
    sectors of the disk, one partition from 1 MiB to the last usable LBA."""
    total = disk.size // SECTOR
    disk_guid = rng.uuid()
    part_guid = rng.uuid()
    linux = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
    first_usable, last_usable = 34, total - 34
    entries = bytearray(128 * 128)
    e = bytearray(128)
    e[0:16] = linux.bytes_le
    e[16:32] = part_guid.bytes_le
    struct.pack_into("<QQQ", e, 32, 2048, last_usable, 0)
    nm = name.encode("utf-16-le")[:72]
    e[56:56 + len(nm)] = nm
    entries[0:128] = e
    ecrc = crc32(bytes(entries))

    def header(my, alt, entries_lba):
        h = bytearray(SECTOR)
        struct.pack_into("<8sIIIIQQQQ16sQIII", h, 0, b"EFI PART", 0x00010000,
                         92, 0, 0, my, alt, first_usable, last_usable,
                         disk_guid.bytes_le, entries_lba, 128, 128, ecrc)
        struct.pack_into("<I", h, 16, crc32(bytes(h[:92])))
        return bytes(h)

    disk.put(0, mbr([(0xEE, 1, min(total - 1, 0xFFFFFFFF))]))
    disk.put(SECTOR, header(1, total - 1, 2))
    disk.put(2 * SECTOR, entries)
    disk.put((total - 33) * SECTOR, entries)
    disk.put((total - 1) * SECTOR, header(total - 1, 1, total - 33))


def align_up(n, a):
    return (n + a - 1) // a * a
