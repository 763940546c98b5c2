"""mutate.py FORMAT IMAGE WORKDIR N: mutated copies of IMAGE (fixed seed)
through img2raw and imginfo, from a file and from a pipe.  Each must give
the same exit status, output bytes, verdict and finding codes both ways;
where img2raw and qemu-img both accept one, the same bytes.  Mutations:
bit flips in the metadata, boundary values in header fields, and table
entries duplicated or redirected into metadata, past the end, off their
alignment.  Exit 1 naming every disagreement."""

import json
import os
import random
import struct
import subprocess
import sys

FMT, IMAGE, WORK, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
BASE = open(IMAGE, "rb").read()
SIZE = len(BASE)
rng = random.Random(0x1d6e5)


def u(fmt, off):
    return struct.unpack_from(fmt, BASE, off)[0]


# Per format: header fields (offset, struct format) and table entries
# (offset, struct format, unit in bytes, metadata offsets to point at).
def qcow2_layout():
    cs = 1 << u(">I", 20)
    l1_off, l1_n = u(">Q", 40), u(">I", 36)
    fields = [(o, f) for o, f in [(8, ">Q"), (20, ">I"), (24, ">Q"), (36, ">I"),
                                  (40, ">Q"), (48, ">Q"), (56, ">I"), (60, ">I"),
                                  (64, ">Q")]]
    l2s = [u(">Q", l1_off + 8 * i) & 0x00fffffffffffe00 for i in range(l1_n)]
    entries = [(l1_off + 8 * i, ">Q") for i in range(l1_n) if l2s[i]]
    for t in l2s:
        if t and t + cs <= SIZE:
            entries += [(t + 8 * j, ">Q") for j in range(cs // 8)
                        if u(">Q", t + 8 * j)]
    meta = [0, l1_off, u(">Q", 48)] + [t for t in l2s if t]
    return fields, entries, cs, meta, 0x8000000000000000


def qed_layout():
    cs, ts = u("<I", 4), u("<I", 8)
    l1 = u("<Q", 40)
    fields = [(4, "<I"), (8, "<I"), (12, "<I"), (16, "<Q"), (40, "<Q"), (48, "<Q")]
    tb = cs * ts
    l2s = [u("<Q", l1 + 8 * i) for i in range(tb // 8) if l1 + 8 * i + 8 <= SIZE]
    entries = [(l1 + 8 * i, "<Q") for i, t in enumerate(l2s) if t]
    for t in l2s:
        if t > 1 and t + tb <= SIZE:
            entries += [(t + 8 * j, "<Q") for j in range(tb // 8)
                        if u("<Q", t + 8 * j) > 1]
    return fields, entries, cs, [0, l1] + [t for t in l2s if t], 0


def vdi_layout():
    fields = [(0x44, "<I"), (0x48, "<I"), (0x4c, "<I"), (0x154, "<I"),
              (0x158, "<I"), (0x170, "<Q"), (0x178, "<I"), (0x17c, "<I"),
              (0x180, "<I"), (0x184, "<I")]
    bmap, n = u("<I", 0x154), u("<I", 0x180)
    entries = [(bmap + 4 * i, "<I") for i in range(n)]
    # entries count blocks: metadata values are indexes, not offsets
    return fields, entries, 1, [0, u("<I", 0x184), 0xfffffffe], 0


def parallels_layout():
    fields = [(16, "<I"), (28, "<I"), (32, "<I"), (36, "<Q"), (44, "<I"),
              (48, "<I"), (56, "<Q")]
    n = u("<I", 32)
    v2 = BASE[:16] == b"WithouFreSpacExt"
    entries = [(64 + 4 * i, "<I") for i in range(n) if u("<I", 64 + 4 * i)]
    unit = u("<I", 28) * 512 if v2 else 512
    return fields, entries, unit, [0, 1], 0


LAYOUTS = {"qcow2": qcow2_layout, "qed": qed_layout, "vdi": vdi_layout,
           "parallels": parallels_layout}
QEMU = {"qcow2": "qcow2", "qed": "qed", "vdi": "vdi", "parallels": "parallels"}


def put(buf, off, fmt, v):
    size = struct.calcsize(fmt)
    v &= (1 << (8 * size)) - 1
    struct.pack_into(fmt, buf, off, v)


def mutants():
    fields, entries, unit, meta, flags = LAYOUTS[FMT]()
    metaend = max([o for o, _ in entries] + [4096]) + 8
    out = []
    for k in range(N):
        b = bytearray(BASE)
        kind = k % 4
        if kind == 0:                   # bit flips in the metadata
            for _ in range(rng.randint(1, 3)):
                o = rng.randrange(min(metaend, SIZE))
                b[o] ^= 1 << rng.randrange(8)
            what = "flip"
        elif kind == 1:                 # a header field at a boundary
            o, f = rng.choice(fields)
            bits = 8 * struct.calcsize(f)
            v = rng.choice([0, 1, 511, 512, 513, SIZE, SIZE - 1, SIZE + 512,
                            (1 << bits) - 1, 1 << (bits - 1),
                            u(f, o) + 1, u(f, o) - 1, u(f, o) * 2])
            put(b, o, f, v)
            what = "field %#x=%#x" % (o, v & ((1 << bits) - 1))
        elif kind == 2 and len(entries) >= 2:   # an entry duplicated
            (a, f), (c, _) = rng.sample(entries, 2)
            put(b, c, f, u(f, a))
            what = "dup %#x->%#x" % (a, c)
        elif entries:                   # an entry redirected
            o, f = rng.choice(entries)
            old = u(f, o)
            v = rng.choice([m // unit for m in meta] +
                           [(SIZE + unit) // unit, (SIZE - 1) // unit,
                            old + 1 if unit > 1 else old + 1000,
                            (old & ~flags) + 512 // max(1, unit) or 1])
            put(b, o, f, v | (old & flags))
            what = "redirect %#x=%#x" % (o, v)
        else:
            continue
        out.append((what, bytes(b)))
    return out


def run(args, data=None, path=None):
    if path is not None:
        p = subprocess.run(args + [path], capture_output=True, timeout=60)
    else:
        p = subprocess.run(args + ["-"], input=data, capture_output=True,
                           timeout=60)
    return p.returncode, p.stdout, p.stderr


def verdict(out):
    try:
        d = json.loads(out)["safety"]
    except (ValueError, KeyError):
        return None
    return d["verdict"], [f["code"] for f in d["findings"]]


def main():
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, "m.img")
    bad = 0
    for what, data in mutants():
        with open(path, "wb") as f:
            f.write(data)
        fs, fo, fe = run(["img2raw"], path=path)
        ps, po, pe = run(["img2raw"], data=data)
        if fs not in (0, 1) or ps not in (0, 1):
            print("%s: img2raw crashed: file %d pipe %d %s" % (what, fs, ps,
                  fe.decode(errors="replace")))
            bad += 1
            continue
        if fs != ps or (fs == 0 and fo != po):
            print("%s: img2raw file %d pipe %d: %s | %s" % (what, fs, ps,
                  fe.decode(errors="replace").strip(),
                  pe.decode(errors="replace").strip()))
            bad += 1
            continue
        fi = verdict(run(["imginfo", "--output", "json"], path=path)[1])
        pi = verdict(run(["imginfo", "--output", "json"], data=data)[1])
        if fi != pi or fi is None:
            print("%s: imginfo file %s pipe %s" % (what, fi, pi))
            bad += 1
            continue
        if fs == 0:
            q = subprocess.run(["qemu-img", "convert", "-f", QEMU[FMT], "-O",
                                "raw", path, path + ".q"], capture_output=True,
                               timeout=60)
            if q.returncode == 0:
                with open(path + ".q", "rb") as f:
                    q = f.read()
                # img2raw(1) VIRTUAL SIZES: qemu rounds a qcow2 down
                if len(q) < len(fo) <= len(q) + 512 and fo.startswith(q):
                    q = fo
                if q != fo:
                    print("%s: bytes differ from qemu-img's" % what)
                    bad += 1
    print("%d mutants, %d disagreements" % (N, bad))
    sys.exit(1 if bad else 0)


main()
