#!/usr/bin/env python3
"""mutate.py FORMAT SEED COUNT IMAGE OUTDIR: write COUNT mutants of IMAGE
(a FORMAT image) into OUTDIR as m0000.FORMAT ..., deterministic for SEED.

Each mutant gets one mutation, chosen in turn from:
  flip      1 to 4 bit flips in the image's metadata (or anywhere);
  boundary  a header field set to a boundary value (0, 1, all ones,
            2^31, the file size, off by one, ...);
  duplicate a table entry copied over another (two entries, one block);
  redirect  a table entry pointed at the header, a table, past the end,
            or off its alignment.
Checksummed structures (VHD footer and dynamic header) are re-summed
after a boundary mutation, so the reader judges the value, not the sum.
Prints one line per mutant: its name and what was done."""
import os
import random
import struct
import sys

BE, LE = ">", "<"
FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def get(d, off, size, end):
    if off < 0 or off + size > len(d):
        return None
    return struct.unpack(end + FMT[size], bytes(d[off:off + size]))[0]


def put(d, off, size, end, value):
    if off < 0 or off + size > len(d):
        return False
    d[off:off + size] = struct.pack(end + FMT[size], value % (1 << (8 * size)))
    return True


class Layout:
    """Header fields (name, off, size, endianness), tables (off, entry
    size, count, endianness, unit: bytes per entry value) and metadata
    ranges (where bit flips matter most)."""

    def __init__(self):
        self.fields = []
        self.tables = []
        self.meta = []
        self.fixups = []


def qcow2(d):
    L = Layout()
    for name, off, size in (("version", 4, 4), ("backing_off", 8, 8),
                            ("backing_len", 16, 4), ("cluster_bits", 20, 4),
                            ("size", 24, 8), ("crypt", 32, 4),
                            ("l1_size", 36, 4), ("l1_off", 40, 8),
                            ("rt_off", 48, 8), ("rt_clusters", 56, 4),
                            ("nb_snapshots", 60, 4), ("snapshots_off", 64, 8),
                            ("incompat", 72, 8), ("compat", 80, 8),
                            ("autoclear", 88, 8), ("refcount_order", 96, 4),
                            ("header_len", 100, 4)):
        L.fields.append((name, off, size, BE))
    cb = get(d, 20, 4, BE) or 16
    cs = 1 << min(max(cb, 9), 21)
    l1_size, l1_off = get(d, 36, 4, BE), get(d, 40, 8, BE)
    rt_off, rt_cl = get(d, 48, 8, BE), get(d, 56, 4, BE)
    L.meta.append((0, min(cs, len(d))))
    if l1_off and l1_size:
        L.tables.append((l1_off, 8, min(l1_size, 4096), BE))
        L.meta.append((l1_off, l1_size * 8))
        for i in range(min(l1_size, 64)):
            e = get(d, l1_off + 8 * i, 8, BE)
            if e:
                l2 = e & 0x00fffffffffffe00
                L.tables.append((l2, 8, cs // 8, BE))
                L.meta.append((l2, cs))
    if rt_off and rt_cl:
        L.tables.append((rt_off, 8, rt_cl * cs // 8, BE))
        L.meta.append((rt_off, rt_cl * cs))
    return L


def vmdk(d):
    L = Layout()
    for name, off, size in (("version", 4, 4), ("flags", 8, 4),
                            ("capacity", 12, 8), ("grain", 20, 8),
                            ("desc_off", 28, 8), ("desc_size", 36, 8),
                            ("gtes", 44, 4), ("rgd_off", 48, 8),
                            ("gd_off", 56, 8), ("overhead", 64, 8),
                            ("compress", 77, 2)):
        L.fields.append((name, off, size, LE))
    L.meta.append((0, 512))
    gd = get(d, 56, 8, LE)
    if gd == (1 << 64) - 1 and len(d) >= 1536:
        foot = len(d) - 1024
        for name, off, size in (("footer_gd_off", 56, 8),
                                ("footer_capacity", 12, 8)):
            L.fields.append((name, foot + off, size, LE))
        gd = get(d, foot + 56, 8, LE)
        L.meta.append((len(d) - 1536, 1536))
    cap, grain = get(d, 12, 8, LE) or 0, get(d, 20, 8, LE) or 128
    gtes = get(d, 44, 4, LE) or 512
    ngt = max(1, -(-cap // max(grain * gtes, 1)))
    for g in (gd, get(d, 48, 8, LE)):
        if g and g * 512 < len(d):
            L.tables.append((g * 512, 4, min(ngt, 4096), LE))
            L.meta.append((g * 512, ngt * 4))
            for i in range(min(ngt, 32)):
                gt = get(d, g * 512 + 4 * i, 4, LE)
                if gt:
                    L.tables.append((gt * 512, 4, gtes, LE))
                    L.meta.append((gt * 512, gtes * 4))
    desc = get(d, 28, 8, LE)
    if desc:
        L.meta.append((desc * 512, 512))
    return L


def vhd_checksum(d, off, length, at):
    s = sum(d[off:off + length]) - sum(d[off + at:off + at + 4])
    put(d, off + at, 4, BE, ~s & 0xffffffff)


def vpc(d):
    L = Layout()
    foot = len(d) - 512
    for base in (0, foot):
        if bytes(d[base:base + 8]) != b"conectix":
            continue
        for name, off, size in (("features", 8, 4), ("version", 12, 4),
                                ("data_off", 16, 8), ("orig_size", 40, 8),
                                ("cur_size", 48, 8), ("geometry", 56, 4),
                                ("type", 60, 4)):
            L.fields.append((name, base + off, size, BE))
        L.fixups.append((base, 512, 64))
        L.meta.append((base, 512))
    dyn = get(d, 16, 8, BE)
    if dyn is not None and dyn < len(d) and bytes(d[dyn:dyn + 8]) == b"cxsparse":
        for name, off, size in (("dyn_data_off", 8, 8), ("bat_off", 16, 8),
                                ("bat_entries", 28, 4), ("block_size", 32, 4)):
            L.fields.append((name, dyn + off, size, BE))
        L.fixups.append((dyn, 1024, 36))
        L.meta.append((dyn, 1024))
        bat, n = get(d, dyn + 16, 8, BE), get(d, dyn + 28, 4, BE)
        if bat is not None and n:
            L.tables.append((bat, 4, min(n, 65536), BE))
            L.meta.append((bat, n * 4))
    return L


def vhdx(d):
    L = Layout()
    L.meta += [(0, 64 * 1024 * 5)]
    for rt in (192 * 1024, 256 * 1024):
        n = get(d, rt + 8, 4, LE) or 0
        for i in range(min(n, 16)):
            e = rt + 16 + 32 * i
            guid = bytes(d[e:e + 16])
            off, length = get(d, e + 16, 8, LE), get(d, e + 24, 4, LE)
            if guid == bytes.fromhex("6677c22d23f600429d64115e9bfd4a08") \
                    and off and rt == 192 * 1024:
                L.tables.append((off, 8, min(length // 8, 65536), LE))
                L.meta.append((off, length))
    return L


def vdi(d):
    L = Layout()
    for name, off, size in (("version", 0x44, 4), ("header_size", 0x48, 4),
                            ("type", 0x4c, 4), ("flags", 0x50, 4),
                            ("bmap_off", 0x154, 4), ("data_off", 0x158, 4),
                            ("sector_size", 0x168, 4), ("disk_size", 0x170, 8),
                            ("block_size", 0x178, 4), ("block_extra", 0x17c, 4),
                            ("blocks", 0x180, 4), ("allocated", 0x184, 4)):
        L.fields.append((name, off, size, LE))
    L.meta.append((0, 512))
    bmap, n = get(d, 0x154, 4, LE), get(d, 0x180, 4, LE)
    if bmap and n:
        L.tables.append((bmap, 4, min(n, 65536), LE))
        L.meta.append((bmap, n * 4))
    return L


def qed(d):
    L = Layout()
    for name, off, size in (("cluster_size", 4, 4), ("table_size", 8, 4),
                            ("header_size", 12, 4), ("features", 16, 8),
                            ("compat", 24, 8), ("autoclear", 32, 8),
                            ("l1_off", 40, 8), ("image_size", 48, 8),
                            ("backing_off", 56, 4), ("backing_len", 60, 4)):
        L.fields.append((name, off, size, LE))
    cs, ts = get(d, 4, 4, LE) or 65536, get(d, 8, 4, LE) or 4
    n = min(cs * ts // 8, 1 << 16)
    L.meta.append((0, 4096))
    l1 = get(d, 40, 8, LE)
    if l1:
        L.tables.append((l1, 8, n, LE))
        L.meta.append((l1, n * 8))
        for i in range(min(n, 64)):
            e = get(d, l1 + 8 * i, 8, LE)
            if e:
                L.tables.append((e, 8, n, LE))
                L.meta.append((e, n * 8))
    return L


def parallels(d):
    L = Layout()
    for name, off, size in (("version", 16, 4), ("heads", 20, 4),
                            ("cylinders", 24, 4), ("tracks", 28, 4),
                            ("bat_entries", 32, 4), ("sectors", 36, 8),
                            ("inuse", 44, 4), ("data_off", 48, 4),
                            ("flags", 52, 4), ("ext_off", 56, 8)):
        L.fields.append((name, off, size, LE))
    n = get(d, 32, 4, LE) or 0
    L.tables.append((64, 4, min(n, 65536), LE))
    L.meta.append((0, 64 + 4 * n))
    return L


def iso(d):
    L = Layout()
    p = 0x8000
    for name, off, size, end in (("space_le", 80, 4, LE), ("space_be", 84, 4, BE),
                                 ("block_le", 128, 2, LE), ("block_be", 130, 2, BE),
                                 ("path_le", 132, 4, LE), ("root_lba", 158, 4, LE)):
        L.fields.append((name, p + off, size, end))
    L.meta.append((p, 2048 * 4))
    return L


def raw(d):
    L = Layout()
    L.meta.append((0, min(len(d), 4096)))
    return L


LAYOUTS = {"qcow2": qcow2, "vmdk": vmdk, "vpc": vpc, "vhdx": vhdx,
           "vdi": vdi, "qed": qed, "parallels": parallels, "iso": iso,
           "raw": raw}


def boundary_values(d, size):
    top = (1 << (8 * size)) - 1
    vals = [0, 1, 2, 7, 511, 512, 513, 4096, top, top - 1, top >> 1,
            (top >> 1) + 1, len(d), len(d) + 1, len(d) - 1, len(d) // 512,
            len(d) // 512 + 1, 1 << 20, 1 << 30]
    return [v & top for v in vals]


def live_entries(d, table):
    off, esize, n, end = table
    unused = (0, None, (1 << (8 * esize)) - 1)  # VHD and VDI: all ones
    return [i for i in range(n)
            if get(d, off + i * esize, esize, end) not in unused]


def m_flip(d, L, rng):
    nbits = rng.randint(1, 4)
    what = []
    for _ in range(nbits):
        if L.meta and rng.random() < 0.8:
            off, length = rng.choice(L.meta)
            pos = off + rng.randrange(max(1, min(length, len(d) - off)))
        else:
            pos = rng.randrange(len(d))
        if pos >= len(d):
            continue
        bit = rng.randrange(8)
        d[pos] ^= 1 << bit
        what.append(f"{pos:#x}.{bit}")
    return "flip " + ",".join(what)


def m_boundary(d, L, rng):
    if not L.fields:
        return m_flip(d, L, rng)
    name, off, size, end = rng.choice(L.fields)
    v = rng.choice(boundary_values(d, size))
    put(d, off, size, end, v)
    for base, length, at in L.fixups:
        vhd_checksum(d, base, length, at)
    return f"boundary {name}={v:#x}"


def m_duplicate(d, L, rng):
    tables = [t for t in L.tables if len(live_entries(d, t)) >= 1]
    if not tables:
        return m_boundary(d, L, rng)
    t = rng.choice(tables)
    off, esize, n, end = t
    live = live_entries(d, t)
    src = rng.choice(live)
    near = set(live) | set(range(min(n, 64)))
    dst = rng.choice([i for i in sorted(near) if i != src] or [src])
    put(d, off + dst * esize, esize, end, get(d, off + src * esize, esize, end))
    return f"duplicate entry {src}->{dst} of table at {off:#x}"


def m_redirect(d, L, rng):
    tables = [t for t in L.tables if live_entries(d, t)]
    if not tables:
        return m_boundary(d, L, rng)
    t = rng.choice(tables)
    off, esize, n, end = t
    i = rng.choice(live_entries(d, t))
    old = get(d, off + i * esize, esize, end)
    meta_off = rng.choice(L.meta)[0] if L.meta else 0
    scale = 512 if esize == 4 else 1
    choices = [0, 1, old + 1, old + 512 // scale, meta_off // scale,
               off // scale, len(d) // scale, (len(d) + 4096) // scale,
               (1 << (8 * esize)) - 1, old ^ (1 << rng.randrange(8 * esize))]
    if esize == 8:  # keep the flag bits of qcow2/vhdx-style entries
        choices += [(old & ~0x00fffffffffffe00) | (meta_off & 0x00fffffffffffe00),
                    (old & ~0x00fffffffffffe00) | (len(d) & 0x00fffffffffffe00)]
    v = rng.choice(choices)
    put(d, off + i * esize, esize, end, v)
    return f"redirect entry {i} of table at {off:#x}: {old:#x}->{v:#x}"


MUTATIONS = [m_flip, m_boundary, m_duplicate, m_redirect]


def main():
    fmt, seed, count, image, outdir = sys.argv[1:6]
    base = bytearray(open(image, "rb").read())
    layout = LAYOUTS[fmt]
    rng = random.Random(f"{seed}:{os.path.basename(image)}")
    os.makedirs(outdir, exist_ok=True)
    stem = os.path.basename(image)
    for k in range(int(count)):
        d = bytearray(base)
        what = MUTATIONS[k % len(MUTATIONS)](d, layout(d), rng)
        name = f"{stem}.m{k:04d}"
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(d)
        print(f"{name}\t{what}")


if __name__ == "__main__":
    main()
