#!/usr/bin/env python3
"""oracles.py [PRODUCER...] [--dir D]

Generates each producer's image and asks the test-time oracles about it:
qemu-img (info, convert -O raw, check) and libyal (vmdkinfo, vhdiinfo,
qcowinfo, and the pyvmdk/pyvhdi/pyqcow bindings of the system python3 for
content).  Prints one line per producer and reader: accepted or not, and
whether the bytes equal gen.py --raw (or by how much they differ).  This
is how the table in README.md was made; it is not a test suite."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402

FAMILY = {  # producer prefix/name -> (qemu format, libyal tool, py module)
    "vhd": ("vpc", "vhdiinfo", "pyvhdi"),
    "vhdx": ("vhdx", "vhdiinfo", "pyvhdi"),
    "vmdk": ("vmdk", "vmdkinfo", "pyvmdk"),
    "qcow2": ("qcow2", "qcowinfo", "pyqcow"),
    "qcow1": ("qcow", "qcowinfo", "pyqcow"),
    "vdi": ("vdi", None, None),
    "ploop": ("parallels", None, None),
    "bochs": ("bochs", None, None),
    "cloop": ("cloop", None, None),
    "dmg": ("dmg", None, None),
}


def family(p):
    if p.endswith("-vhdx") or p.startswith("hyperv-vhdx"):
        return "vhdx"
    if p.endswith("-vhd") or p.endswith("-vhdf"):
        return "vhd"
    if p.startswith(("vmware", "vsphere", "virtualbox-ovf", "mkimg-vmdk", "cowd")):
        return "vmdk"
    for k in ("qcow2", "qcow1", "vdi", "ploop", "bochs", "cloop", "dmg"):
        if k in p:
            return k
    return "?"


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       **kw)
    return r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def compare(got_path, raw_path):
    if raw_path is None or not os.path.exists(raw_path):
        return "no --raw"
    a = open(got_path, "rb").read()
    b = open(raw_path, "rb").read()
    if a == b:
        return "equal (%d bytes)" % len(b)
    n = min(len(a), len(b))
    first = next((i for i in range(0, n, 512) if a[i:i + 512] != b[i:i + 512]),
                 None)
    s = "DIFFER: got %d bytes, want %d" % (len(a), len(b))
    if len(a) != len(b):
        s += " (%+d)" % (len(a) - len(b))
    if first is not None:
        s += ", first differing sector at byte %d" % first
    elif len(a) != len(b):
        s += ", common prefix equal"
    return s


PYREAD = r"""
import sys
mod = __import__(sys.argv[1])
f = mod.file() if hasattr(mod, 'file') else mod.handle()
f.open(sys.argv[2])
if hasattr(f, 'open_extent_data_files'):
    f.open_extent_data_files()
size = f.get_media_size()
out = open(sys.argv[3], 'wb')
off = 0
while off < size:
    n = min(1 << 20, size - off)
    out.write(f.read_buffer_at_offset(n, off))
    off += n
out.close()
print(size)
"""


def check(p, d):
    ext = {"vmdk": ".vmdk", "dmg": ".dmg"}.get(family(p), ".img")
    img = os.path.join(d, p + ext)
    raw = os.path.join(d, p + ".raw")
    st = gen.main([p, img, "--raw", raw]) if True else 0
    if st:
        raw = None
    fam = family(p)
    qfmt, tool, pymod = FAMILY.get(fam, (None, None, None))
    lines = []
    rc, out, err = run(["qemu-img", "info", "--output=human", img])
    fmt = next((l.split(":", 1)[1].strip() for l in out.splitlines()
                if l.startswith("file format")), "?")
    vs = next((l.split(":", 1)[1].strip() for l in out.splitlines()
               if l.startswith("virtual size")), "?")
    lines.append("qemu-img info: %s" % ("format %s, virtual size %s" % (fmt, vs)
                                        if rc == 0 else "REFUSED: " + err.strip().splitlines()[-1]))
    if fmt == "raw" and qfmt in ("vpc", "dmg"):
        # qemu probes a fixed VHD (footer only at the end) and a DMG as raw
        rc, out, err = run(["qemu-img", "info", "-f", qfmt, img])
        vs = next((l.split(":", 1)[1].strip() for l in out.splitlines()
                   if l.startswith("virtual size")), "?")
        lines.append("qemu-img info -f %s: %s" % (qfmt, ("virtual size " + vs) if rc == 0
                                                 else "REFUSED: " + err.strip().splitlines()[-1]))
        rc, out, err = run(["qemu-img", "convert", "-f", qfmt, "-O", "raw", img,
                            os.path.join(d, p + ".qemu.raw")])
        lines.append("qemu-img convert -f %s: %s" % (qfmt, compare(os.path.join(d, p + ".qemu.raw"), raw)
                                                     if rc == 0 else "REFUSED: " + err.strip()))
    out_raw = os.path.join(d, p + ".qemu.raw")
    cmd = ["qemu-img", "convert", "-O", "raw", img, out_raw]
    rc, out, err = run(cmd)
    if rc == 0:
        lines.append("qemu-img convert: %s" % compare(out_raw, raw))
    else:
        lines.append("qemu-img convert: REFUSED: %s" % err.strip().splitlines()[-1])
    if qfmt in ("qcow2", "vdi", "vhdx", "vmdk", "parallels", "qcow"):
        rc, out, err = run(["qemu-img", "check", "-f", qfmt, img])
        last = (out + err).strip().splitlines()
        lines.append("qemu-img check: rc=%d %s" % (rc, last[-1] if last else ""))
    if fam == "vhdx" and raw and "log" in p:
        cp = os.path.join(d, p + ".replayed")
        shutil.copy(img, cp)
        rc, out, err = run(["qemu-img", "check", "-r", "all", "-f", "vhdx", cp])
        rc2, _, err2 = run(["qemu-img", "convert", "-O", "raw", cp, out_raw])
        lines.append("qemu-img check -r all (replay on a copy) rc=%d, then "
                     "convert: %s" % (rc, compare(out_raw, raw) if rc2 == 0
                                      else "REFUSED " + err2.strip()))
        os.unlink(cp)
    if os.path.exists(out_raw):
        os.unlink(out_raw)
    if tool:
        rc, out, err = run([tool, img])
        msg = (out + err).strip().splitlines()
        size_line = next((l.strip() for l in msg if "size" in l.lower()
                          and "media" in l.lower()), "")
        lines.append("%s: %s" % (tool, ("ok " + size_line) if rc == 0 else
                                 "REFUSED: " + (msg[-1] if msg else "")))
        yl = os.path.join(d, p + ".yal.raw")
        rc, out, err = run(["/usr/bin/python3", "-c", PYREAD, pymod, img, yl])
        if rc == 0:
            lines.append("%s: %s" % (pymod, compare(yl, raw)))
        else:
            lines.append("%s: REFUSED: %s" % (pymod, (err.strip().splitlines() or ["?"])[-1]))
        if os.path.exists(yl):
            os.unlink(yl)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("producers", nargs="*")
    ap.add_argument("--dir")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="producers.")
    os.makedirs(d, exist_ok=True)
    names = a.producers or sorted(gen.TABLE)
    for p in names:
        print("== %s" % p)
        for l in check(p, d):
            print("   " + l)
        sys.stdout.flush()
        for f in os.listdir(d):
            if f.startswith(p):
                os.unlink(os.path.join(d, f))
    if not a.dir:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
