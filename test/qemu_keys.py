#!/usr/bin/env python3
"""qemu_keys.py OURS.json QEMU.json MANPAGE: every key qemu-img info
--output=json prints is in ours with the same value, or its path is
listed in MANPAGE's DIFFERENCES FROM QEMU-IMG section (as `.It Cm PATH`,
array indices written []).  Prints each unexplained difference; exit 1
if there is one."""
import json
import re
import sys


def flatten(v, path, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(x, f"{path}.{k}" if path else k, out)
    elif isinstance(v, list):
        out[path + ".length"] = len(v)
        for i, x in enumerate(v):
            flatten(x, f"{path}[{i}]", out)
    else:
        out[path] = v


def documented(manpage):
    text = open(manpage).read()
    m = re.search(r"^\.Sh DIFFERENCES FROM QEMU-IMG$(.*?)^\.Sh ", text,
                  re.M | re.S)
    if not m:
        sys.exit("no DIFFERENCES FROM QEMU-IMG section in " + manpage)
    return set(re.findall(r"^\.It Cm (\S+)", m.group(1), re.M))


def main():
    ours, qemu = {}, {}
    flatten(json.load(open(sys.argv[1])), "", ours)
    flatten(json.load(open(sys.argv[2])), "", qemu)
    allowed = documented(sys.argv[3])
    bad = 0
    for path, want in qemu.items():
        general = re.sub(r"\[\d+\]", "[]", path)
        if general.endswith(".length"):
            general = general[:-len(".length")]
        if ours.get(path, object()) == want and (
                type(ours.get(path)) is type(want)):
            continue
        if general in allowed:
            continue
        print(f"{path}: qemu-img {want!r}, imginfo "
              f"{ours.get(path, '(absent)')!r}")
        bad = 1
    return bad


sys.exit(main())
