"""VirtualBox VDI 1.1, FreeBSD mkimg qcow2 (v2) and qcow (v1), Virtuozzo
ploop v2 with format-extension dirty bitmaps, and foreign containers
readers must refuse (Bochs, cloop, Apple DMG, qcow1).  See README.md."""

import base64
import hashlib
import struct
import zlib

from common import SECTOR, KiB, MiB, Rng, Disk, fill_pattern, align_up


# ---------------------------------------------------------------- VDI 1.1

VDI_INFO = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
VDI_FREE, VDI_ZERO = 0xFFFFFFFF, 0xFFFFFFFE


def virtualbox_vdi(name, size, seed):
    """VirtualBox VDI 1.1 (dynamic): '<<< Oracle VM VirtualBox Disk Image
    >>>', signature 0xbeda107f, version 0x00010001, header 400 bytes, block
    map at 1 MiB, data at the next MiB, 1 MiB blocks in write order (block
    0, the last, then the rest), blocks holding only zeros marked
    0xfffffffe (as after compaction), legacy geometry 0/0/0/512."""
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    rng = Rng(seed, "vdi")
    block = MiB
    nblocks = size // block
    off_blocks = MiB
    off_data = align_up(off_blocks + nblocks * 4, MiB)
    bmap = [VDI_FREE] * nblocks
    used = [b for b in range(nblocks) if disk.touched(b * block, block)]
    order = [used[0], used[-1]] + used[1:-1] if len(used) > 2 else used
    data = bytearray()
    n = 0
    for b in order:
        chunk = disk.chunk(b * block, block)
        if not any(chunk):
            bmap[b] = VDI_ZERO
            continue
        bmap[b] = n
        data += chunk
        n += 1
    pre = bytearray(72)
    pre[0:len(VDI_INFO)] = VDI_INFO
    struct.pack_into("<II", pre, 64, 0xBEDA107F, 0x00010001)
    h = bytearray(400)
    struct.pack_into("<III", h, 0, 400, 1, 0)
    struct.pack_into("<II", h, 268, off_blocks, off_data)
    struct.pack_into("<IIII", h, 276, 0, 0, 0, 512)       # legacy geometry
    struct.pack_into("<I", h, 292, 0)
    struct.pack_into("<QIIII", h, 296, size, block, 0, nblocks, n)
    h[320:336] = rng.uuid().bytes_le                        # create
    h[336:352] = rng.uuid().bytes_le                        # modify
    struct.pack_into("<IIII", h, 384, 0, 0, 0, 512)        # LCHS unset
    out = bytearray(off_data)
    out[0:72] = pre
    out[72:472] = h
    out[off_blocks:off_blocks + nblocks * 4] = struct.pack("<%dI" % nblocks, *bmap)
    out += data
    return bytes(out), disk


# ---------------------------------------------------------------- qcow

def mkimg_qcow(name, size, seed, version):
    """FreeBSD mkimg's qcow writer (usr.bin/mkimg/qcow.c), versions 1 and 2."""
    log2 = 12 if version == 1 else 16
    cs = 1 << log2
    size = align_up(size, cs)
    disk = fill_pattern(Disk(size), name, seed)

    def rc(x):
        return align_up(x, cs) >> log2
    clstr_imgsz = size >> log2
    clstr_l2tbls = rc(clstr_imgsz * 8)
    clstr_l1tblsz = rc(clstr_l2tbls * 8)
    nclstrs = clstr_imgsz + clstr_l2tbls + clstr_l1tblsz + 1
    rcblks = rctblsz = 0
    while True:
        n = rcblks + rctblsz
        rcblks = rc((nclstrs + n) * 2)
        rctblsz = rc(rcblks * 8)
        if n >= rcblks + rctblsz:
            break
    l1clno = 1
    hdr = bytearray(cs)
    struct.pack_into(">IIQIIQ", hdr, 0, 0x514649FB, version, 0, 0,
                     log2 if version == 2 else 0, size)
    if version == 1:
        flags = 0
        l2clno = l1clno + clstr_l1tblsz
        struct.pack_into(">BBHIQ", hdr, 32, log2, log2 - 3, 0, 0, cs * l1clno)
        rcclno = 0
    else:
        flags = 1 << 63
        rcclno = l1clno + clstr_l1tblsz
        l2clno = rcclno + rctblsz
        refcnt_clstrs = rc(rcblks * 8)
        struct.pack_into(">IIQQII", hdr, 32, 0, clstr_l2tbls, cs * l1clno,
                         cs * rcclno, refcnt_clstrs, 0)
    ofs = cs * l2clno
    nclstrs = 1 + clstr_l1tblsz + rctblsz
    l1 = [0] * (clstr_l1tblsz * cs // 8)
    bpc = cs // 8                       # entries per L2 table
    has = [disk.touched(n * cs, cs) for n in range(clstr_imgsz)]
    for n in range(clstr_imgsz):
        if has[n]:
            nclstrs += 1
            i = n >> (log2 - 3)
            if l1[i] == 0:
                l1[i] = ofs + flags
                ofs += cs
                nclstrs += 1
    out = bytearray(hdr)
    out += struct.pack(">%dQ" % len(l1), *l1)
    rcblks = 0
    while True:
        n = rcblks
        rcblks = rc((nclstrs + n) * 2)
        if n >= rcblks:
            break
    if rcclno:
        rct = [0] * (rctblsz * cs // 8)
        for n in range(rcblks):
            rct[n] = ofs
            ofs += cs
            nclstrs += 1
        out += struct.pack(">%dQ" % len(rct), *rct)
    for i in range(clstr_l2tbls):
        if l1[i] == 0:
            continue
        l2 = [0] * bpc
        for j in range(bpc):
            n = i * bpc + j
            if n >= clstr_imgsz:
                break
            if has[n]:
                l2[j] = ofs + flags
                ofs += cs
        out += struct.pack(">%dQ" % bpc, *l2)
    if rcclno:
        blk = bytearray(rcblks * cs)
        for n in range(nclstrs):
            struct.pack_into(">H", blk, 2 * n, 1)
        out += blk
    for n in range(clstr_imgsz):
        if has[n]:
            out += disk.chunk(n * cs, cs)
    return bytes(out), disk


def mkimg_qcow2(name, size, seed):
    """FreeBSD mkimg -f qcow2: version 2, 64 KiB clusters, header cluster
    with no extensions, L1 at cluster 1, refcount table, L2 tables, refcount
    blocks, then data; COPIED flag on every L1/L2 entry; size rounded to a
    cluster; an L1 entry for every L2 table the disk could need."""
    return mkimg_qcow(name, size, seed, 2)


def qcow1(name, size, seed):
    """QCOW version 1 as FreeBSD mkimg -f qcow writes it (4 KiB clusters):
    a container readers must refuse."""
    return mkimg_qcow(name, size, seed, 1)


# ---------------------------------------------------------------- ploop

EXT_MAGIC = 0xAB234CEF23DCEA87
BITMAP_MAGIC = 0x20385FAE252CB34A


def ploop_v2(name, size, seed):
    """Virtuozzo ploop v2: 'WithouFreSpacExt', 1 MiB clusters (tracks =
    2048), inuse 'v2.1' (closed), data_off 2048, BAT in cluster units, and
    a format extension (ext_off) holding one dirty bitmap (64 KiB
    granularity) whose data cluster follows the data, as in qemu's
    parallels-with-bitmap sample."""
    cs_sec = 2048
    cs = cs_sec * SECTOR
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    rng = Rng(seed, "ploop")
    nb = size // SECTOR
    nbat = (nb + cs_sec - 1) // cs_sec
    data_off = align_up(64 + 4 * nbat, cs) // SECTOR
    used = [c for c in range(nbat) if disk.touched(c * cs, cs)]
    order = [used[0], used[-1]] + used[1:-1] if len(used) > 2 else used
    bat = [0] * nbat
    next_cl = data_off // cs_sec
    data = bytearray()
    for c in order:
        bat[c] = next_cl
        data += disk.chunk(c * cs, cs)
        next_cl += 1
    # dirty bitmap: one bit per 64 KiB granule, set where the islands are
    gran = 128                                   # sectors
    ngran = (nb + gran - 1) // gran
    bits = bytearray((ngran + 7) // 8)
    for i in range(ngran):
        if disk.has_data(i * gran * SECTOR, gran * SECTOR):
            bits[i // 8] |= 1 << (i % 8)
    l1_size = (ngran + cs * 8 - 1) // (cs * 8)
    l1 = []
    bm_clusters = bytearray()
    for k in range(l1_size):
        part = bits[k * cs:(k + 1) * cs]
        if not any(part):
            l1.append(0)
        else:
            l1.append((next_cl + len(bm_clusters) // cs) * cs_sec)
            bm_clusters += part + bytes(cs - len(part))
    ext_cl = next_cl + len(bm_clusters) // cs
    feat = struct.pack("<Q16sII", nb, rng.uuid().bytes, gran, l1_size)
    feat += struct.pack("<%dQ" % l1_size, *l1)
    body = struct.pack("<QQII", BITMAP_MAGIC, 0, len(feat), 0) + feat
    body += bytes(-len(body) % 8)
    body += struct.pack("<QQII", 0, 0, 0, 0)                 # end of features
    body += bytes(cs - 24 - len(body))
    ext = struct.pack("<Q", EXT_MAGIC) + hashlib.md5(body).digest() + body
    hdr = bytearray(data_off * SECTOR)
    struct.pack_into("<16sIIIIIQIIIQ", hdr, 0, b"WithouFreSpacExt", 2, 16,
                     nb // (16 * 32), cs_sec, nbat, nb, 0x312E3276, data_off,
                     0, ext_cl * cs_sec)
    struct.pack_into("<%dI" % nbat, hdr, 64, *bat)
    return bytes(hdr) + bytes(data) + bytes(bm_clusters) + ext, disk


def ploop_v1(name, size, seed):
    """Parallels/ploop v1 'WithoutFreeSpace' as ploop wrote it in 2014
    (qemu's parallels-v1 sample): 64 KiB clusters, BAT in sectors, inuse 0,
    data_off 128."""
    cs_sec = 128
    cs = cs_sec * SECTOR
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    nb = size // SECTOR
    nbat = nb // cs_sec
    data_off = align_up(64 + 4 * nbat, cs) // SECTOR
    bat = [0] * nbat
    pos = data_off
    data = bytearray()
    for c in range(nbat):
        if disk.touched(c * cs, cs):
            bat[c] = pos
            pos += cs_sec
            data += disk.chunk(c * cs, cs)
    hdr = bytearray(data_off * SECTOR)
    struct.pack_into("<16sIIIIIQIIIQ", hdr, 0, b"WithoutFreeSpace", 2, 16,
                     nb // (16 * 32), cs_sec, nbat, nb, 0, data_off, 0, 0)
    struct.pack_into("<%dI" % nbat, hdr, 64, *bat)
    return bytes(hdr) + bytes(data), disk


# ---------------------------------------------------------------- foreign

def bochs(name, size, seed):
    """Bochs growing redolog ('Bochs Virtual HD Image', 'Redolog',
    'Growing', version 0x00020000, 512-byte header, 4 KiB extents, one
    bitmap sector per extent), laid out as qemu's empty.bochs sample with
    the extents that hold data allocated.  Refuse."""
    extent = 4 * KiB
    size = align_up(size, extent)
    disk = fill_pattern(Disk(size), name, seed)
    n_cat = align_up(size // extent, 512)
    hdr = bytearray(512)
    hdr[0:32] = b"Bochs Virtual HD Image".ljust(32, b"\0")
    hdr[32:48] = b"Redolog".ljust(16, b"\0")
    hdr[48:64] = b"Growing".ljust(16, b"\0")
    struct.pack_into("<IIIIIIQ", hdr, 64, 0x00020000, 512, n_cat, 1, extent,
                     0, size)
    cat = [0xFFFFFFFF] * n_cat
    data = bytearray()
    for i in range(size // extent):
        if disk.has_data(i * extent, extent):
            cat[i] = len(data) // (extent + SECTOR)
            data += b"\xff" * SECTOR + disk.chunk(i * extent, extent)
    return bytes(hdr) + struct.pack("<%dI" % n_cat, *cat) + bytes(data), disk


CLOOP_PREAMBLE = (b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && "
                  b"mount -r -t iso9660 /dev/cloop $1\nexit $?\n")


def cloop(name, size, seed):
    """cloop V2.0 (Knoppix compressed loop): the shell preamble of qemu's
    simple-pattern.cloop, big-endian block size and count, n+1 offsets,
    zlib blocks.  Refuse."""
    block = 64 * KiB
    size = align_up(size, block)
    disk = fill_pattern(Disk(size), name, seed)
    n = size // block
    blocks = [zlib.compress(disk.chunk(i * block, block), 9) for i in range(n)]
    head = CLOOP_PREAMBLE.ljust(128, b"\0") + struct.pack(">II", block, n)
    offs = [len(head) + 8 * (n + 1)]
    for b in blocks:
        offs.append(offs[-1] + len(b))
    return head + struct.pack(">%dQ" % (n + 1), *offs) + b"".join(blocks), disk


def dmg(name, size, seed):
    """Apple UDIF (.dmg): zlib data fork, an XML plist with one 'blkx'
    (mish) table, and the 512-byte 'koly' trailer at the end, as in qemu's
    simple-dmg.dmg.  Refuse."""
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    secs = size // SECTOR
    chunk_secs = 2048
    fork = bytearray()
    chunks = []
    for s in range(0, secs, chunk_secs):
        raw = disk.chunk(s * SECTOR, chunk_secs * SECTOR)
        if not any(raw):
            chunks.append((2, s, chunk_secs, len(fork), 0))
            continue
        c = zlib.compress(raw)
        chunks.append((0x80000005, s, chunk_secs, len(fork), len(c)))
        fork += c
    chunks.append((0xFFFFFFFF, secs, 0, len(fork), 0))
    mish = struct.pack(">4sIQQQII24x", b"mish", 1, 0, secs, 0, 0x208, 0)
    mish += struct.pack(">II128x", 2, 32)          # checksum: CRC32, empty
    mish += struct.pack(">I", len(chunks))
    for t, s, n, off, ln in chunks:
        mish += struct.pack(">IIQQQQ", t, 0, s, n, off, ln)
    plist = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
             "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
             "<plist version=\"1.0\">\n<dict>\n\t<key>resource-fork</key>\n"
             "\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n\t\t\t<dict>\n"
             "\t\t\t\t<key>Attributes</key>\n\t\t\t\t<string>0x0050</string>\n"
             "\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n%s\n\t\t\t\t</data>\n"
             "\t\t\t\t<key>ID</key>\n\t\t\t\t<string>0</string>\n"
             "\t\t\t\t<key>Name</key>\n\t\t\t\t<string>whole disk (Apple_HFS : 0)</string>\n"
             "\t\t\t</dict>\n\t\t</array>\n\t</dict>\n</dict>\n</plist>\n"
             % base64.b64encode(mish).decode()).encode()
    koly = bytearray(512)
    struct.pack_into(">4sIIIQQQQQII", koly, 0, b"koly", 4, 512, 1, 0, 0,
                     len(fork), 0, 0, 1, 1)
    struct.pack_into(">QQ", koly, 0xD8, len(fork), len(plist))
    struct.pack_into(">Q", koly, 0x1EC, secs)
    return bytes(fork) + plist + bytes(koly), disk


# containers imgpipe must name and refuse; --raw is what a reader of the
# format (qemu-img) gives, for the day one is added
REFUSE = {"qcow1", "bochs", "cloop", "dmg"}

PRODUCERS = {
    "virtualbox-vdi": (virtualbox_vdi, 64 * MiB),
    "mkimg-qcow2": (mkimg_qcow2, 63 * MiB + 100 * KiB),
    "ploop-v2": (ploop_v2, 64 * MiB),
    "ploop-v1": (ploop_v1, 16 * MiB),
    "qcow1": (qcow1, 16 * MiB),
    "bochs": (bochs, 16 * MiB),
    "cloop": (cloop, 4 * MiB),
    "dmg": (dmg, 4 * MiB),
}
