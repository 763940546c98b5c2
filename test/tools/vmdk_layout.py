#!/usr/bin/env python3
"""vmdk_layout.py FILE: the structure of a streamOptimized VMDK, one fact a
line, so that two producers' streams can be compared: header fields, the
order of its markers (runs of grains collapsed), the footer and the
descriptor's keys.  Written from the VMDK 5.0 specification for the tests
of raw2vmdk; independent of imgpipe's code."""
import re
import struct
import sys

SECTOR = 512
NAMES = {0: "EOS", 1: "GT", 2: "GD", 3: "FOOTER", 4: "TYPE4"}


def header(b):
    (magic, version, flags, capacity, grain, doff, dsize, ngte, rgd, gd,
     overhead) = struct.unpack_from("<4sIIQQQQIQQQ", b, 0)
    assert magic == b"KDMV", "no VMDK magic"
    return dict(version=version, flags=flags, capacity=capacity, grain=grain,
                doff=doff, dsize=dsize, ngte=ngte, rgd=rgd, gd=gd,
                overhead=overhead)


def main(path):
    d = open(path, "rb").read()
    h = header(d)
    gd_at_end = h["gd"] == 0xFFFFFFFFFFFFFFFF
    print("version %d" % h["version"])
    print("flags 0x%x" % h["flags"])
    print("grain %d gtes %d" % (h["grain"], h["ngte"]))
    print("descriptor at sector %d" % h["doff"])
    print("header gdOffset %s" % ("GD_AT_END" if gd_at_end else "set"))
    desc = d[h["doff"] * SECTOR:(h["doff"] + h["dsize"]) * SECTOR]
    desc = desc.split(b"\0", 1)[0].decode()
    keys = set()
    for line in desc.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9_.]+)\s*=", line)
        if m:
            keys.add(m.group(1))
        elif re.match(r"(RW|RDONLY)\s+\d+\s+SPARSE\s+\"", line):
            keys.add("extent:SPARSE")
    print("keys " + " ".join(sorted(keys)))
    off = h["overhead"] * SECTOR
    seq, footer, gd_sector = [], None, None
    while off + SECTOR <= len(d):
        val, size = struct.unpack_from("<QI", d, off)
        if size:
            if not seq or seq[-1] != "GRAINS":
                seq.append("GRAINS")
            off += (12 + size + SECTOR - 1) // SECTOR * SECTOR
            continue
        mtype = struct.unpack_from("<I", d, off + 12)[0]
        seq.append(NAMES.get(mtype, "?%d" % mtype))
        if mtype == 2:
            gd_sector = off // SECTOR + 1
        if mtype == 3:
            footer = header(d[off + SECTOR:off + 2 * SECTOR])
        off += SECTOR + (val * SECTOR if mtype in (1, 2, 3) else 0)
        if mtype == 0:
            break
    print("markers " + " ".join(x for x in seq if x != "TYPE4"))
    if footer:
        print("footer version %d flags 0x%x gd %s" % (
            footer["version"], footer["flags"],
            "at the GD" if footer["gd"] == gd_sector else "elsewhere"))
    print("after the end-of-stream marker %d bytes" % (len(d) - off))


main(sys.argv[1])
