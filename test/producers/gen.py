#!/usr/bin/env python3
"""gen.py PRODUCER OUT [--size N] [--seed S] [--raw OUT.raw]

Writes a deterministic image in the layout, with the quirks, of one real
producer (VMware, VirtualBox, Hyper-V, Disk2vhd, Virtual PC, Azure,
XenServer, FreeBSD mkimg, Virtuozzo), and with --raw the virtual disk a
correct reader must give.  Producers that write more than one file (split
and flat VMware disks) write their extents beside OUT.  Foreign containers
(bochs, cloop, dmg, qcow1, cowd) must be refused by imgpipe; their --raw
is what a reader of that format (qemu-img) gives.  Corrupt images
(hyperv-vhdx-log-badcrc, -badguid) have no --raw: gen.py exits 2.

gen.py --list prints every producer with a one-line summary.
Standard library only.  See README.md."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common     # noqa: E402
import vhd        # noqa: E402
import vmdk       # noqa: E402
import vhdx       # noqa: E402
import others     # noqa: E402

TABLE = {}
REFUSE = set()
for mod in (vmdk, vhd, vhdx, others):
    TABLE.update(mod.PRODUCERS)
    REFUSE |= mod.REFUSE


def parse_size(s):
    mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    s = s.strip().lower()
    if s and s[-1] in mult:
        return int(s[:-1]) * mult[s[-1]]
    return int(s)


def summary(fn):
    doc = (fn.__doc__ or "").strip().split("\n")
    return " ".join(x.strip() for x in doc[:2])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("producer", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--size", type=parse_size, default=None,
                    help="virtual size in bytes (k/m/g suffixes); each "
                         "producer rounds it as the real one does")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--raw", help="also write the expected raw disk here")
    ap.add_argument("--dense", type=parse_size, default=0,
                    help="one more data island of this many bytes at an "
                         "eighth of the disk (k/m/g suffixes): a long run "
                         "of data, as a filled disk has (default none)")
    ap.add_argument("--extent-sectors", type=int, default=None,
                    help="sectors per extent of split VMware disks (VMware: "
                         "4192256), rounded up to 128; smaller values give "
                         "several extents from a small disk")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        for k in sorted(TABLE):
            print("%-28s %s%s" % (k, "[refuse] " if k in REFUSE else "",
                                  summary(TABLE[k][0])))
        return 0
    if not a.producer or not a.out:
        ap.error("PRODUCER and OUT are required (--list shows producers)")
    if a.producer not in TABLE:
        ap.error("unknown producer %r (--list shows them)" % a.producer)
    fn, default_size = TABLE[a.producer]
    base = os.path.basename(a.out)
    vmdk.BASE = base[:-5] if base.endswith(".vmdk") else base
    if a.extent_sectors:
        # VMware's 4192256 is a whole number of 64 KiB grains; keep that
        vmdk.EXTENT_SECTORS = (a.extent_sectors + 127) // 128 * 128
    common.DENSE = a.dense
    size = a.size if a.size is not None else default_size
    img, disk = fn(a.producer, size, a.seed)
    files = img if isinstance(img, dict) else {"": img}
    for suffix, data in files.items():
        path = a.out if suffix == "" else sibling(a.out, suffix)
        with open(path, "wb") as f:
            f.write(data)
    if a.raw:
        if disk is None:
            sys.stderr.write("gen.py: %s: a corrupt image, which every reader "
                             "must refuse; there is no raw disk\n" % a.producer)
            return 2
        with open(a.raw, "wb") as f:
            f.write(disk.raw)
    return 0


def sibling(out, name):
    """Extent files: 'name' is the file name the descriptor uses; it lands
    in OUT's directory."""
    return os.path.join(os.path.dirname(os.path.abspath(out)), name)


if __name__ == "__main__":
    sys.exit(main())
