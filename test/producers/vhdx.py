"""VHDX layouts of Hyper-V (Windows Server 2012) and Disk2vhd, and Hyper-V
images whose log needs replay (valid, torn, with a sequence gap) or whose
log is corrupt (bad checksum, wrong GUID).  Per MS-VHDX; what the real
producers put where is in README.md.

The expected raw disk is computed by replaying the log (as MS-VHDX
describes) into a copy of the file and reading that copy with the small
reader at the end of this module, so generator and expectation cannot
drift apart."""

import struct
import uuid

from common import SECTOR, KiB, MiB, Rng, Disk, fill_pattern, crc32c, align_up

G_BAT = uuid.UUID("2dc27766-f623-4200-9d64-115e9bfd4a08")
G_META = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e")
G_FILE_PARAMS = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b")
G_VDISK_SIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8")
G_PAGE83 = uuid.UUID("beca12ab-b2e6-4523-93ef-c309e000c746")
G_LOGICAL = uuid.UUID("8141bf1d-a96f-4709-ba47-f233a8faab5f")
G_PHYSICAL = uuid.UUID("cda348c7-445d-4471-9cc9-e9885251c556")

NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED, FULLY_PRESENT, PARTIAL = 0, 1, 2, 3, 6, 7
LOG_OFFSET, LOG_LENGTH = 1 * MiB, 1 * MiB


def g(u):
    return u.bytes_le


def file_identifier(creator):
    b = bytearray(64 * KiB)
    b[0:8] = b"vhdxfile"
    c = creator.encode("utf-16-le")
    b[8:8 + len(c)] = c
    return b


def vhdx_header(seq, fw, dw, log_guid):
    h = bytearray(4 * KiB)
    struct.pack_into("<4sIQ16s16s16sHHIQ", h, 0, b"head", 0, seq, g(fw), g(dw),
                     g(log_guid), 0, 1, LOG_LENGTH, LOG_OFFSET)
    struct.pack_into("<I", h, 4, crc32c(bytes(h)))
    return bytes(h)


def region_table(entries):
    r = bytearray(64 * KiB)
    struct.pack_into("<4sIII", r, 0, b"regi", 0, len(entries), 0)
    for i, (guid, off, length, req) in enumerate(entries):
        struct.pack_into("<16sQII", r, 16 + 32 * i, g(guid), off, length, req)
    struct.pack_into("<I", r, 4, crc32c(bytes(r)))
    return bytes(r)


def metadata_region(items, length=1 * MiB):
    """items: list of (guid, flags, value bytes, offset within region)."""
    m = bytearray(length)
    struct.pack_into("<8sHH", m, 0, b"metadata", 0, len(items))
    for i, (guid, flags, val, off) in enumerate(items):
        struct.pack_into("<16sIII", m, 32 + 32 * i, g(guid), off, len(val), flags)
        m[off:off + len(val)] = val
    return m


def chunk_ratio(block, logical=512):
    return (1 << 23) * logical // block


def bat_index(block_no, cr):
    return block_no + block_no // cr


class Layout:
    """A VHDX file under construction (a bytearray) and its parameters."""

    def __init__(self, vsize, block, logical, physical, meta_off, bat_off,
                 region_order, meta_order, creator, rng, data_start=4 * MiB):
        self.vsize, self.block = vsize, block
        self.logical, self.physical = logical, physical
        self.meta_off, self.bat_off = meta_off, bat_off
        self.rng = rng
        self.nblocks = (vsize + block - 1) // block
        self.cr = chunk_ratio(block, logical)
        nbat = self.nblocks + (self.nblocks - 1) // self.cr
        self.bat_len = align_up(nbat * 8, MiB)
        self.bat = [0] * nbat
        self.f = bytearray(data_start)
        self.f[0:64 * KiB] = file_identifier(creator)
        regions = {"bat": (G_BAT, bat_off, self.bat_len, 1),
                   "meta": (G_META, meta_off, 1 * MiB, 1)}
        rt = region_table([regions[k] for k in region_order])
        self.f[192 * KiB:256 * KiB] = rt
        self.f[256 * KiB:320 * KiB] = rt
        vals = {"params": (G_FILE_PARAMS, 4, struct.pack("<II", block, 0)),
                "size": (G_VDISK_SIZE, 6, struct.pack("<Q", vsize)),
                "page83": (G_PAGE83, 6, g(rng.uuid())),
                "logical": (G_LOGICAL, 6, struct.pack("<I", logical)),
                "physical": (G_PHYSICAL, 6, struct.pack("<I", physical))}
        items = []
        for key, off in meta_order:
            guid, flags, val = vals[key]
            items.append((guid, flags, val, off))
        self.f[meta_off:meta_off + MiB] = metadata_region(items)
        self.next = data_start

    def set_bat(self, block_no, state, file_off=0):
        self.bat[bat_index(block_no, self.cr)] = (file_off // MiB) << 20 | state

    def bat_bytes(self):
        b = bytearray(self.bat_len)
        for i, e in enumerate(self.bat):
            struct.pack_into("<Q", b, 8 * i, e)
        return b

    def add_block(self, block_no, data):
        off = self.next
        self.f += bytes(off + self.block - len(self.f))
        self.f[off:off + len(data)] = data
        self.next += self.block
        self.set_bat(block_no, FULLY_PRESENT, off)
        return off

    def finish(self, headers):
        self.f[self.bat_off:self.bat_off + self.bat_len] = self.bat_bytes()
        for at, h in zip((64 * KiB, 128 * KiB), headers):
            self.f[at:at + 4 * KiB] = h
        return self.f


# ------------------------------------------------------------------ the log

def log_entry(seq, log_guid, tail, flushed, last, writes, zeros):
    """One log entry.  writes: list of (file_offset, 4096 bytes);
    zeros: list of (file_offset, length)."""
    ndesc = len(writes) + len(zeros)
    desc_secs = (64 + 32 * ndesc + 4095) // 4096
    length = (desc_secs + len(writes)) * 4096
    e = bytearray(length)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, length, tail, seq,
                     ndesc, 0, g(log_guid), flushed, last)
    p = 64
    for off, n in zeros:
        struct.pack_into("<4sIQQQ", e, p, b"zero", 0, n, off, seq)
        p += 32
    for i, (off, data) in enumerate(writes):
        assert len(data) == 4096 and off % 4096 == 0
        struct.pack_into("<4sIQQQ", e, p, b"desc",
                         struct.unpack("<I", data[4092:4096])[0],
                         struct.unpack("<Q", data[0:8])[0], off, seq)
        p += 32
        s = (desc_secs + i) * 4096
        e[s:s + 4] = b"data"
        struct.pack_into("<I", e, s + 4, seq >> 32)
        e[s + 8:s + 4092] = data[8:4092]
        struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
    struct.pack_into("<I", e, 4, crc32c(bytes(e)))
    return bytes(e)


def parse_entry(log, off):
    """A log entry at off if its header and checksum are valid, else None."""
    if off + 64 > len(log) or log[off:off + 4] != b"loge":
        return None
    (_, csum, length, tail, seq, ndesc, _, lg, flushed,
     last) = struct.unpack_from("<4sIIIQII16sQQ", log, off)
    if length % 4096 or length == 0 or off + length > len(log):
        return None
    e = bytearray(log[off:off + length])
    e[4:8] = b"\0\0\0\0"
    if crc32c(bytes(e)) != csum:
        return None
    return dict(off=off, length=length, tail=tail, seq=seq, ndesc=ndesc,
                guid=uuid.UUID(bytes_le=bytes(lg)), flushed=flushed, last=last)


def active_sequence(log, log_guid):
    """MS-VHDX 2.3.3: the valid sequence with the highest sequence number
    whose last entry's tail names its first entry.  Returns entries."""
    best = []
    for start in range(0, len(log), 4096):
        seq = []
        off = start
        while True:
            e = parse_entry(log, off)
            if e is None or e["guid"] != log_guid:
                break
            if seq and e["seq"] != seq[-1]["seq"] + 1:
                break
            seq.append(e)
            off = (off + e["length"]) % len(log)
            if off == start:
                break
        while seq and seq[-1]["tail"] != start:
            seq.pop()
        if seq and (not best or seq[-1]["seq"] > best[-1]["seq"]):
            best = seq
    return best


def replay(f, log_off, log_len, log_guid):
    """Apply the active sequence to f (a bytearray); return entry count."""
    log = bytes(f[log_off:log_off + log_len])
    seq = active_sequence(log, log_guid)
    for e in seq:
        o = e["off"]
        desc_secs = (64 + 32 * e["ndesc"] + 4095) // 4096
        di = 0
        for k in range(e["ndesc"]):
            d = o + 64 + 32 * k
            sig = log[d:d + 4]
            if sig == b"zero":
                _, _, n, foff, _ = struct.unpack_from("<4sIQQQ", log, d)
                f[foff:foff + n] = bytes(n)
            elif sig == b"desc":
                _, trail, lead, foff, _ = struct.unpack_from("<4sIQQQ", log, d)
                s = o + (desc_secs + di) * 4096
                data = (struct.pack("<Q", lead) + log[s + 8:s + 4092]
                        + struct.pack("<I", trail))
                if len(f) < foff + 4096:
                    f += bytes(foff + 4096 - len(f))
                f[foff:foff + 4096] = data
                di += 1
    if seq and len(f) < seq[-1]["last"]:
        f += bytes(seq[-1]["last"] - len(f))
    return len(seq)


def read_raw(f):
    """The virtual disk of a VHDX with a clean (or already replayed) log."""
    hs = []
    for at in (64 * KiB, 128 * KiB):
        h = bytearray(f[at:at + 4096])
        csum = struct.unpack_from("<I", h, 4)[0]
        h[4:8] = b"\0\0\0\0"
        if h[0:4] == b"head" and crc32c(bytes(h)) == csum:
            hs.append(struct.unpack_from("<Q", h, 8)[0])
    rt = f[192 * KiB:256 * KiB]
    n = struct.unpack_from("<I", rt, 8)[0]
    regions = {}
    for i in range(n):
        gu, off, ln, _ = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
        regions[uuid.UUID(bytes_le=bytes(gu))] = (off, ln)
    moff = regions[G_META][0]
    cnt = struct.unpack_from("<H", f, moff + 10)[0]
    meta = {}
    for i in range(cnt):
        gu, off, ln, _ = struct.unpack_from("<16sIII", f, moff + 32 + 32 * i)
        meta[uuid.UUID(bytes_le=bytes(gu))] = bytes(f[moff + off:moff + off + ln])
    block = struct.unpack("<I", meta[G_FILE_PARAMS][:4])[0]
    vsize = struct.unpack("<Q", meta[G_VDISK_SIZE])[0]
    logical = struct.unpack("<I", meta[G_LOGICAL])[0]
    cr = chunk_ratio(block, logical)
    boff = regions[G_BAT][0]
    out = bytearray(vsize)
    for b in range((vsize + block - 1) // block):
        e = struct.unpack_from("<Q", f, boff + 8 * bat_index(b, cr))[0]
        if e & 7 in (FULLY_PRESENT, PARTIAL):
            fo = (e >> 20) * MiB
            n = min(block, vsize - b * block)
            out[b * block:b * block + n] = f[fo:fo + n]
    return out


# ------------------------------------------------------------------ producers

def hyperv_layout(disk, seed, rng):
    """Hyper-V 2012: 32 MiB blocks, metadata at 2 MiB, BAT at 3 MiB (region
    table lists the BAT first), blocks from 4 MiB in virtual order, every
    block never written is PAYLOAD_BLOCK_ZERO (as in qemu's
    iotest-dynamic-1G.vhdx)."""
    L = Layout(disk.size, 32 * MiB, 512, 4096, 2 * MiB, 3 * MiB,
               ("bat", "meta"),
               (("params", 0x10000), ("size", 0x10008), ("logical", 0x10010),
                ("physical", 0x10014), ("page83", 0x10018)),
               "Microsoft Windows 6.2.9200.16384", rng)
    return L


def stale_log(rng, at_seq):
    """Old entries left in the log by an earlier session, as in the
    sample: a 4 KiB entry without descriptors, then one with a BAT write,
    both under a log GUID no header names any more."""
    old = rng.uuid()
    e1 = log_entry(at_seq, old, 0, 4 * MiB, 4 * MiB, [], [])
    bat_sector = bytes(4096)
    e2 = log_entry(at_seq + 1, old, 0, 0, 100 * MiB,
                   [(3 * MiB, bat_sector)], [])
    return e1 + e2


def hyperv_vhdx(name, size, seed):
    """Hyper-V (Windows Server 2012) dynamic VHDX, clean: 32 MiB blocks,
    headers with sequence numbers n and n+1, log GUID zero, stale log
    entries from an earlier session still in the log region."""
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    rng = Rng(seed, "vhdx")
    L = hyperv_layout(disk, seed, rng)
    for b in range(L.nblocks):
        if disk.touched(b * L.block, L.block):
            L.add_block(b, disk.chunk(b * L.block, L.block))
        else:
            L.set_bat(b, ZERO)
    log = stale_log(rng, 0x3CA93A920D190A97)
    L.f[LOG_OFFSET:LOG_OFFSET + len(log)] = log
    fw, dw = rng.uuid(), rng.uuid()
    zero = uuid.UUID(int=0)
    f = L.finish([vhdx_header(14, fw, dw, zero), vhdx_header(15, fw, dw, zero)])
    return bytes(f), disk


def hyperv_dirty(name, size, seed, variant):
    """Build a Hyper-V VHDX left with a log to replay.  The log's active
    sequence is entry A (the data sectors of the last block's island and
    the BAT sector that maps the last block) and entry B (a zero
    descriptor that clears stale bytes in an allocated block).  Without
    replay the last block reads as zero and the stale bytes show; with A
    alone the last block is there and the stale bytes show; with A and B
    the disk is whole.  The three results differ.  The disk needs two
    blocks, so it is at least 33 MiB."""
    size = max(align_up(size, MiB), 33 * MiB)
    disk = fill_pattern(Disk(size), name, seed)
    rng = Rng(seed, "vhdx")
    L = hyperv_layout(disk, seed, rng)
    last = L.nblocks - 1
    offs = {}
    for b in range(L.nblocks):
        if b == last:
            continue
        if disk.touched(b * L.block, L.block):
            offs[b] = L.add_block(b, disk.chunk(b * L.block, L.block))
        else:
            L.set_bat(b, ZERO)
    # the last block: allocated in the file (the file was extended before
    # the crash) but its BAT entry and its data are only in the log
    L.set_bat(last, ZERO)
    last_off = L.next
    L.f += bytes(last_off + L.block - len(L.f))
    L.next += L.block
    writes = []
    base = last * L.block
    for s in range(0, L.block, 4096):
        if base + s < disk.size and disk.has_data(base + s, 4096):
            writes.append((last_off + s, disk.chunk(base + s, 4096)))
    # stale bytes in an allocated block, in a 4 KiB run the disk has as zero
    b1 = min(offs)
    for s in range(L.block - 4096, 0, -4096):
        if not disk.has_data(b1 * L.block + s, 4096):
            stale_at = offs[b1] + s
            break
    L.f[stale_at:stale_at + 4096] = (b"STALE DATA BEFORE LOG REPLAY\n" * 200)[:4096]
    # the BAT sector as it must be after replay
    final_bat = list(L.bat)
    L.set_bat(last, FULLY_PRESENT, last_off)
    after = L.bat_bytes()
    L.bat = final_bat
    bat_index_last = bat_index(last, L.cr) * 8
    sector = bat_index_last // 4096 * 4096
    bat_write = (L.bat_off + sector, bytes(after[sector:sector + 4096]))
    log_guid = rng.uuid()
    fsize = len(L.f)
    seq0 = 0x1F6A2C3D00000000 + Rng(seed, "logseq").below(1 << 24)
    A = (writes + [bat_write], [])
    B = ([], [(stale_at, 4096)])
    entries = []
    if variant in ("log", "torn", "gap"):
        a = log_entry(seq0, log_guid, 0, fsize, fsize, *A)
        b_seq = seq0 + (2 if variant == "gap" else 1)
        b = bytearray(log_entry(b_seq, log_guid, 0, fsize, fsize, *B))
        if variant == "torn":
            b[4] ^= 0x5A        # checksum no longer matches: a torn write
        entries = [a, bytes(b)]
    elif variant in ("badcrc", "badguid"):
        guid = rng.uuid() if variant == "badguid" else log_guid
        one = bytearray(log_entry(seq0, guid, 0, fsize, fsize,
                                  A[0] + B[0], B[1]))
        if variant == "badcrc":
            one[4] ^= 0x5A
        entries = [bytes(one)]
    log = b"".join(entries)
    log += stale_log(rng, seq0 - 50)
    L.f[LOG_OFFSET:LOG_OFFSET + len(log)] = log
    fw, dw = rng.uuid(), rng.uuid()
    zero = uuid.UUID(int=0)
    f = L.finish([vhdx_header(14, fw, dw, zero),
                  vhdx_header(15, fw, dw, log_guid)])
    if variant in ("badcrc", "badguid"):
        return bytes(f), None
    g2 = bytearray(f)
    n = replay(g2, LOG_OFFSET, LOG_LENGTH, log_guid)
    assert n == (2 if variant == "log" else 1), (variant, n)
    raw = read_raw(g2)
    if variant == "log":
        assert raw == disk.raw, "replay does not give the disk"
    out = Disk(len(raw))
    out.raw = raw
    return bytes(f), out


def disk2vhd_vhdx(name, size, seed):
    """Disk2vhd VHDX: creator 'd2v', two identical headers (sequence 1,
    same checksum), region table listing metadata before the BAT, 2 MiB
    blocks, 512-byte physical sectors, metadata values in another order,
    every block allocated: block 0, then the last, then the rest; 512 zero
    bytes after the last block."""
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    rng = Rng(seed, "vhdx")
    L = Layout(size, 2 * MiB, 512, 512, 2 * MiB, 3 * MiB, ("meta", "bat"),
               (("params", 0x10000), ("size", 0x10008), ("logical", 0x10020),
                ("physical", 0x10024), ("page83", 0x10010)),
               "d2v", rng)
    # every block is allocated (the sample's 128 blocks of 2 MiB cover all
    # of its 256 MiB), block 0 first, then the last, then the rest
    used = list(range(L.nblocks))
    order = [used[0], used[-1]] + used[1:-1] if len(used) > 2 else used
    for b in order:
        L.add_block(b, disk.chunk(b * L.block, L.block))
    fw, dw = rng.uuid(), rng.uuid()
    zero = uuid.UUID(int=0)
    h = vhdx_header(1, fw, dw, zero)
    f = L.finish([h, h])
    f += bytes(SECTOR)
    return bytes(f), disk


def variant(v):
    def fn(name, size, seed):
        return hyperv_dirty(name, size, seed, v)
    fn.__doc__ = {
        "log": "Hyper-V VHDX after an unclean shutdown: a valid log (two "
               "entries) that maps the last block and clears stale bytes; "
               "--raw is the replayed disk.",
        "torn": "Hyper-V VHDX whose last log entry is torn (bad checksum): "
                "only the first entry replays; --raw is that.",
        "gap": "Hyper-V VHDX whose second log entry skips a sequence "
               "number: only the first entry replays; --raw is that.",
        "badcrc": "Hyper-V VHDX whose only log entry has a bad checksum "
                  "while the header asks for replay: corrupt, refuse.",
        "badguid": "Hyper-V VHDX whose log entry has a GUID other than the "
                   "header's LogGuid: nothing to replay, corrupt, refuse.",
    }[v]
    return fn


REFUSE = {"hyperv-vhdx-log-badcrc", "hyperv-vhdx-log-badguid"}

PRODUCERS = {
    "hyperv-vhdx": (hyperv_vhdx, 100 * MiB),
    "hyperv-vhdx-log": (variant("log"), 100 * MiB),
    "hyperv-vhdx-log-torn": (variant("torn"), 100 * MiB),
    "hyperv-vhdx-log-gap": (variant("gap"), 100 * MiB),
    "hyperv-vhdx-log-badcrc": (variant("badcrc"), 100 * MiB),
    "hyperv-vhdx-log-badguid": (variant("badguid"), 100 * MiB),
    "disk2vhd-vhdx": (disk2vhd_vhdx, 48 * MiB),
}
