"""VHD (Virtual PC / Hyper-V / Disk2VHD / VirtualBox / Azure / XenServer /
FreeBSD mkimg) layouts.  See README.md for what each producer writes and
where that was learnt."""

import struct

from common import (SECTOR, KiB, MiB, Rng, Disk, fill_pattern, write_gpt, mbr,
                    vhd_chs, chs_bytes, ones_complement_sum, align_up)

BLOCK = 2 * MiB
FIXED, DYNAMIC = 2, 3


def footer(creator, cver, cos, size, chs, dtype, data_offset, ts, uid,
           orig_size=None):
    f = bytearray(SECTOR)
    c, h, s = chs
    struct.pack_into(">8sIIQI4sI4sQQHBBII16sB", f, 0, b"conectix", 2,
                     0x00010000, data_offset, ts, creator, cver, cos,
                     size if orig_size is None else orig_size, size, c, h, s,
                     dtype, 0, uid.bytes, 0)
    struct.pack_into(">I", f, 64, ones_complement_sum(f))
    return bytes(f)


def dyn_header(table_offset, max_entries, block=BLOCK):
    d = bytearray(1024)
    struct.pack_into(">8sQQIIII", d, 0, b"cxsparse", 0xFFFFFFFFFFFFFFFF,
                     table_offset, 0x00010000, max_entries, block, 0)
    struct.pack_into(">I", d, 36, ones_complement_sum(d))
    return bytes(d)


def vhd_time(seed):
    # seconds since 2000-01-01 00:00 UTC; some day in 2016..2024
    return 0x1E000000 + Rng(seed, "vhdtime").below(0x10000000)


def dynamic(disk, current_size, creator, cver, cos, chs, seed, *,
            order=None, bat_pad="sector", bitmap="sectors",
            allocate_all=False, extra_after_bat=None, cap_entries=None,
            bat_fill=b"\xff"):
    """A dynamic VHD.  disk: the virtual disk (its size may be smaller than
    current_size, for creators whose disk is the CHS geometry).
    order(list of block numbers) -> list: the order blocks lie in the file.
    bat_pad: 'sector' pad the BAT to 512 bytes; 'zero4k' zero-pad to 4 KiB
    (Virtual PC); 'ff4k' pad with 0xFF so the first block's data is 4 KiB
    aligned (Hyper-V 2012 R2).
    bitmap: 'ones' every bitmap all set (mkimg, Disk2VHD), 'sectors' one bit
    per sector the producer wrote.
    extra_after_bat(bat_end) -> (bytes, next_free): XenServer's batmap."""
    rng = Rng(seed, "vhd")
    uid = rng.uuid()
    ts = vhd_time(seed)
    nblocks = cap_entries or (current_size + BLOCK - 1) // BLOCK
    ftr = footer(creator, cver, cos, current_size, chs, DYNAMIC, SECTOR, ts, uid)
    table_offset = 3 * SECTOR
    bat_bytes = nblocks * 4
    if bat_pad == "sector":
        bat_end = table_offset + align_up(bat_bytes, SECTOR)
    elif bat_pad == "zero4k":
        bat_end = align_up(table_offset + bat_bytes, 4 * KiB)
    elif bat_pad == "ff4k":
        bat_end = align_up(table_offset + bat_bytes + SECTOR, 4 * KiB) - SECTOR
    else:
        raise ValueError(bat_pad)
    extra = b""
    data_start = bat_end
    if extra_after_bat:
        extra, data_start = extra_after_bat(bat_end, nblocks)
    if allocate_all:
        used = list(range(nblocks))
    else:
        used = [b for b in range(nblocks) if disk.touched(b * BLOCK, BLOCK)]
    seq = order(used) if order else used
    bat = [0xFFFFFFFF] * nblocks
    body = bytearray()
    pos = data_start
    for b in seq:
        bat[b] = pos // SECTOR
        off = b * BLOCK
        data = disk.chunk(off, BLOCK) if off < disk.size else bytes(BLOCK)
        if bitmap == "ones" or allocate_all:
            bm = b"\xff" * SECTOR
        else:
            bits = bytearray(SECTOR)
            for s in range(BLOCK // SECTOR):
                if disk.touched(off + s * SECTOR, SECTOR):
                    bits[s // 8] |= 0x80 >> (s % 8)
            bm = bytes(bits)
        body += bm + data
        pos += SECTOR + BLOCK
    out = bytearray()
    out += ftr
    out += dyn_header(table_offset, nblocks)
    out += b"".join(struct.pack(">I", x) for x in bat)
    # mkimg, VirtualBox and Hyper-V fill the rest of the BAT area with
    # 0xFF (unused entries); Virtual PC and Disk2vhd leave zeros.
    out += (b"\x00" if bat_pad == "zero4k" else bat_fill) * (bat_end - len(out))
    if extra_after_bat:
        out += extra
        out += bytes(data_start - len(out))
    out += body
    out += ftr
    return bytes(out)


def fixed(disk_bytes, current_size, creator, cver, cos, chs, seed,
          orig_size=None):
    rng = Rng(seed, "vhd")
    uid = rng.uuid()
    ts = vhd_time(seed)
    data = bytes(disk_bytes) + bytes(current_size - len(disk_bytes))
    return data + footer(creator, cver, cos, current_size, chs, FIXED,
                         0xFFFFFFFFFFFFFFFF, ts, uid, orig_size)


# ------------------------------------------------------------------ producers

def virtualpc(name, size, seed):
    """Virtual PC: 'vpc ' 0x00010000 'Wi2k' (as in qemu's
    virtualpc-dynamic.vhd).  The disk is its CHS geometry."""
    chs = vhd_chs(size)
    disk = fill_pattern(Disk(chs_bytes(chs)), name, seed)
    img = dynamic(disk, size, b"vpc ", 0x00010000, b"Wi2k", chs, seed,
                  bat_pad="zero4k")
    return img, disk


def hyperv(name, size, seed):
    """Hyper-V (Windows Server 2012 R2): 'win ' 0x00060003 'Wi2k', BAT
    padded with 0xFF so the first block's data is 4 KiB aligned."""
    disk = fill_pattern(Disk(size), name, seed)
    img = dynamic(disk, size, b"win ", 0x00060003, b"Wi2k", vhd_chs(size), seed,
                  bat_pad="ff4k")
    return img, disk


def disk2vhd(name, size, seed):
    """Disk2vhd: 'd2v\\0' (NUL, not blank) 0x00010000 'Wi2k', geometry
    always 65535/16/255, every block allocated, bitmaps all set, the last
    two blocks written right after block 0."""
    disk = fill_pattern(Disk(size), name, seed)

    def order(used):
        if len(used) < 4:
            return used
        return [used[0]] + used[-2:] + used[1:-2]
    img = dynamic(disk, size, b"d2v\x00", 0x00010000, b"Wi2k", (65535, 16, 255),
                  seed, order=order, bitmap="ones", allocate_all=True,
                  bat_fill=b"\x00")
    return img, disk


def virtualbox(name, size, seed):
    """VirtualBox: 'vbox' VBOX_VERSION (major<<16|minor, 6.1 = 0x00060001)
    'Wi2k', current_size exact, CHS by the spec (smaller), blocks appended in
    write order.  A GPT disk, so the backup header sits in the last sector."""
    disk = fill_pattern(Disk(size), name, seed)
    write_gpt(disk, Rng(seed, "gpt"))

    def order(used):
        return [used[0], used[-1]] + used[1:-1] if len(used) > 2 else used
    img = dynamic(disk, size, b"vbox", 0x00060001, b"Wi2k", vhd_chs(size), seed,
                  order=order)
    return img, disk


def mkimg(name, size, seed):
    """FreeBSD mkimg -f vhd: '*img' 0x00010000 'FBSD', size rounded up to
    2 MiB, CHS by the spec (cap 65536 cylinders), BAT and bitmaps 0xFF."""
    size = align_up(size, BLOCK)
    disk = fill_pattern(Disk(size), name, seed)
    write_gpt(disk, Rng(seed, "gpt"), "freebsd-ufs")
    # mkimg caps at 65536 cylinders and stores them in 16 bits: from
    # 65536*16*255 sectors (~127.5 GiB) on, the footer says 0 cylinders
    c, h, s = vhd_chs(size, cap_cyls=65536)
    img = dynamic(disk, size, b"*img", 0x00010000, b"FBSD",
                  (c & 0xFFFF, h, s), seed, bitmap="ones")
    return img, disk


def mkimg_fixed(name, size, seed):
    """FreeBSD mkimg -f vhdf: size rounded up to whole CHS cylinders, so
    CHS and current_size agree."""
    want = size
    while True:
        chs = vhd_chs(size, cap_cyls=65536)
        size = chs_bytes(chs)
        if size >= want:
            break
        size += chs[1] * chs[2] * SECTOR
    disk = fill_pattern(Disk(size), name, seed)
    write_gpt(disk, Rng(seed, "gpt"), "freebsd-ufs")
    return fixed(disk.raw, size, b"*img", 0x00010000, b"FBSD", chs, seed), disk


def xenserver(name, size, seed):
    """XenServer blktap (vhd-util): 'tap\\0' 0x00010003, host OS 0, size
    rounded up to 2 MiB, a 'tdbatmap' header and batmap after the BAT."""
    size = align_up(size, BLOCK)
    disk = fill_pattern(Disk(size), name, seed)
    used = set(b for b in range((size + BLOCK - 1) // BLOCK)
               if disk.touched(b * BLOCK, BLOCK))

    def batmap(bat_end, nblocks):
        map_bytes = (nblocks + 7) // 8
        map_secs = max(1, (map_bytes + SECTOR - 1) // SECTOR)
        m = bytearray(map_secs * SECTOR)
        for b in used:       # every block we write is written whole
            m[b // 8] |= 0x80 >> (b % 8)
        h = bytearray(SECTOR)
        csum = (~sum(m)) & 0xFFFFFFFF
        struct.pack_into(">8sQIII", h, 0, b"tdbatmap", bat_end + SECTOR,
                         map_secs, 0x00010002, csum)
        data = bytes(h) + bytes(m)
        return data, bat_end + len(data)
    img = dynamic(disk, size, b"tap\x00", 0x00010003, b"\x00\x00\x00\x00",
                  vhd_chs(size), seed, bitmap="ones", extra_after_bat=batmap)
    return img, disk


def azure(name, size, seed):
    """A VHD exported from Azure: fixed, 'wa\\0\\0' 0x00070000 'Wi2k' (footer
    shown in qemu commit 558d8eb7f3), size a whole number of MiB, MBR with
    one partition at 1 MiB.  Uploads to Azure have the same layout with the
    uploader's creator (qemu 'qem2', Hyper-V 'win ')."""
    size = align_up(size, MiB)
    disk = Disk(size)
    fill_pattern(disk, name, seed, first_lba_reserved=True)
    disk.put(0, mbr([(0x83, 2048, size // SECTOR - 2048)]))
    return fixed(disk.raw, size, b"wa\x00\x00", 0x00070000, b"Wi2k",
                 vhd_chs(size), seed), disk


REFUSE = set()

PRODUCERS = {
    "virtualpc-vhd": (virtualpc, 64 * MiB),
    "hyperv-vhd": (hyperv, 64 * MiB),
    "disk2vhd-vhd": (disk2vhd, 20 * MiB + 768 * KiB),
    "virtualbox-vhd": (virtualbox, 64 * MiB),
    "mkimg-vhd": (mkimg, 63 * MiB),
    "mkimg-vhdf": (mkimg_fixed, 63 * MiB),
    "xenserver-vhd": (xenserver, 63 * MiB),
    "azure-fixed-vhd": (azure, 64 * MiB),
}
