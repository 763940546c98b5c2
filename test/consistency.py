#!/usr/bin/env python3
"""consistency.py FORMAT WORKDIR: file and pipe agree, imginfo and img2raw
agree, and img2raw agrees with qemu-img, over every fixture of FORMAT we
can collect and mutants of them (test/mutate.py, fixed seed).

Fixtures: the fuzz seeds (test/fuzz/seeds/FORMAT.sh), imginfo's safety
set (test/mkimageset.sh, images named NAME.FORMAT.VERDICT), the producer
generators' images of FORMAT (test/producers/gen.py, 4 MiB disks), and
qemu-img images of a patterned disk in each subformat.  Mutants: IMGPIPE_MUTATIONS
per format (default 200), spread over the fixtures.

For each image, from a file and from a pipe:
  imginfo --strict --output=json: same exit status, same finding codes;
  img2raw: same exit status and, on success, the same bytes;
  the gate and the converter agree: imginfo refuses (exit 1) exactly the
  images img2raw refuses;
  where img2raw and qemu-img convert both accept, the same bytes, but
  for the differences img2raw(1) documents, each excused by name and only
  when the bytes show exactly that difference (qemu_excuse).
Images are checked IMGPIPE_CONSISTENCY_JOBS at a time (default 4: most
of the time is spent waiting for the programs).
Exit 1 if any check fails; prints each failure, each excuse and a count
per check."""
import concurrent.futures
import filecmp
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 14
QEMU_FMT = {"iso": "raw"}
SUBFORMATS = {
    "qcow2": [[], ["-o", "compat=0.10"], ["-c"],
              ["-o", "cluster_size=4096"]],
    "vmdk": [[], ["-o", "subformat=streamOptimized"]],
    "vpc": [[], ["-o", "subformat=fixed"]],
    "vhdx": [[], ["-o", "subformat=fixed"]],
    "vdi": [[], ["-o", "static=on"]],
    "qed": [[]],
    "parallels": [[]],
    "raw": [[]],
    "iso": [],
}
COMPARE_MAX = 256 << 20  # larger disks: statuses only, no byte compare
TIMEOUT = 60
SECTOR = 512


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, **kw).returncode


def pattern(path, size=3 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
        for off in (0, 65536, 700000, 2 << 20):
            f.seek(off)
            f.write((b"imgpipe-%d " % off) * 3000)


def producer_format(name):
    if "vhdx" in name:
        return "vhdx"
    for key, fmt in (("vhd", "vpc"), ("qcow2", "qcow2"), ("vdi", "vdi"),
                     ("ploop", "parallels"), ("vmware", "vmdk"),
                     ("vmdk", "vmdk"), ("stream", "vmdk"), ("nfc", "vmdk")):
        if key in name:
            return fmt
    return None


def producers(fmt, fx):
    gen = os.path.join(HERE, "producers", "gen.py")
    if not os.path.exists(gen):
        return
    listing = subprocess.run([sys.executable, gen, "--list"],
                             capture_output=True, text=True).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if "[refuse]" in line or producer_format(name) != fmt:
            continue
        sub = os.path.join(fx, "producer-" + name)
        os.makedirs(sub, exist_ok=True)
        subprocess.run([sys.executable, gen, name,
                        os.path.join(sub, f"{name}.{fmt}"), "--size", "4m",
                        "--seed", str(SEED)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def image_set(parent):
    """imginfo's safety set, made once for every format checked under
    parent (made aside and renamed: two runs at once agree on one)."""
    imgset = os.path.join(parent, "set")
    if not os.path.isdir(imgset):
        tmp = tempfile.mkdtemp(prefix="set.", dir=parent)
        sh(f"sh '{HERE}/mkimageset.sh' '{tmp}'")
        try:
            os.rename(tmp, imgset)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return imgset


def fixtures(fmt, work):
    fx = os.path.join(work, "fixtures")
    os.makedirs(fx, exist_ok=True)
    seeds = os.path.join(HERE, "fuzz", "seeds", fmt + ".sh")
    if os.path.exists(seeds):
        sh(f"sh '{seeds}' '{fx}'")
    imgset = image_set(os.path.dirname(os.path.abspath(work)))
    for p in glob.glob(os.path.join(imgset, f"*.{fmt}.*")):
        shutil.copy(p, os.path.join(fx, "set-" + os.path.basename(p)))
    raw = os.path.join(work, "pattern.raw")
    pattern(raw)
    producers(fmt, fx)
    for i, opts in enumerate(SUBFORMATS[fmt]):
        out = os.path.join(fx, f"qemu{i}.{fmt}")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt,
                        *opts, raw, out], check=True)
    if fmt == "iso":
        tree = os.path.join(work, "tree")
        os.makedirs(tree, exist_ok=True)
        shutil.copy(raw, os.path.join(tree, "data"))
        sh(f"xorriso -as mkisofs -quiet -o '{fx}/tree.iso' '{tree}'")
    # a producer's image; not the extents beside a descriptor
    made = glob.glob(os.path.join(fx, "*")) + [
        os.path.join(d, os.path.basename(d)[len("producer-"):] + "." + fmt)
        for d in glob.glob(os.path.join(fx, "producer-*"))]
    return sorted(p for p in made if os.path.isfile(p))


def mutants(fmt, bases, work, count):
    out = os.path.join(work, "mutants")
    what = {}
    per = max(1, -(-count // max(1, len(bases))))
    made = 0
    for b in bases:
        n = min(per, count - made)
        if n <= 0:
            break
        r = subprocess.run([sys.executable, os.path.join(HERE, "mutate.py"),
                            fmt, str(SEED), str(n), b, out],
                           capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            name, desc = line.split("\t", 1)
            what[os.path.join(out, name)] = desc
        made += n
    return what


def run(cmd, stdin_file=None):
    """exit status (124: timeout), stdout text, stderr text"""
    stdin = subprocess.DEVNULL
    cat = None
    if stdin_file is not None:  # a real pipe, as from curl
        cat = subprocess.Popen(["cat", stdin_file], stdout=subprocess.PIPE)
        stdin = cat.stdout
    try:
        r = subprocess.run(cmd, stdin=stdin, capture_output=True,
                           timeout=TIMEOUT)
        rc, so, se = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        rc, so, se = 124, b"", b"timeout"
    if cat is not None:
        cat.stdout.close()
        cat.wait()
    return rc, so.decode(errors="replace"), se.decode(errors="replace")


def info(img, pipe):
    """exit status, finding codes, virtual size, stderr, the report"""
    cmd = ["imginfo", "--strict", "--output=json"]
    rc, so, se = run(cmd + ([] if pipe else [img]), img if pipe else None)
    try:
        r = json.loads(so)
        codes = [f["code"] for f in r["safety"]["findings"]]
        vsize = r.get("virtual-size", 0)
    except (ValueError, KeyError, TypeError):
        r, codes, vsize = None, None, 0
    return rc, codes, vsize, se.strip(), r


def convert(img, pipe, out):
    cmd = ["img2raw", "-o", out]
    rc, _, se = run(cmd + ([] if pipe else [img]), img if pipe else None)
    return rc, se.strip()


def same_file(a, b):
    return filecmp.cmp(a, b, shallow=False)


def same_prefix(a, b, n):
    """The first n bytes of files a and b are equal."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while n > 0:
            k = min(n, 1 << 20)
            x, y = fa.read(k), fb.read(k)
            if x != y or len(x) < k:
                return False
            n -= k
    return True


def format_data(report):
    try:
        return report["format-specific"]["data"]
    except (KeyError, TypeError):
        return {}


def vhd_size_excuse(report, ours, theirs):
    """img2raw(1) vpc: a VHD's size follows a rule per creator; qemu-img
    7.2 sizes every creator but its own list by the CHS geometry.  Excused
    only when imginfo names qemu-img's size (qemu-img-size), qemu-img gives
    exactly that many bytes, our size is what our size-rule gives, one of
    the two sizes is the geometry and the other the current size (or, for
    a fixed disk, the bytes before its footer), and the bytes both have are
    equal."""
    d = format_data(report)
    if "qemu-img-size" not in d or "geometry" not in d:
        return None
    qsize = int(str(d["qemu-img-size"]).split()[0])
    geometry = int(str(d["geometry"]).split("(")[1].split()[0])
    current = int(d.get("current-size", -1)) // SECTOR * SECTOR
    osize, tsize = os.path.getsize(ours), os.path.getsize(theirs)
    rule = d.get("size-rule", "")
    by_rule = {"current_size": current,
               "geometry (creator sizes by CHS)": geometry,
               "the bytes before the footer": report.get("virtual-size")}
    if tsize != qsize or by_rule.get(rule) != osize or osize == tsize:
        return None
    if {osize, tsize} - {geometry, current, report.get("virtual-size")}:
        return None
    if geometry not in (osize, tsize):
        return None
    n = min(osize, tsize)
    if not same_prefix(ours, theirs, n):
        return None
    return (f"size rule: qemu-img sizes this {d.get('creator', '?')} disk "
            f"{tsize} bytes, we {osize} by '{rule}' (img2raw(1) vpc); the "
            f"first {n} bytes are equal")


def vhd_bitmap(img):
    """(BAT, block size) of a dynamic VHD, or None."""
    with open(img, "rb") as f:
        d = f.read(SECTOR)
        if d[:8] != b"conectix":
            return None
        dyn = int.from_bytes(d[16:24], "big")
        f.seek(dyn)
        h = f.read(1024)
        if h[:8] != b"cxsparse":
            return None
        bat_off = int.from_bytes(h[16:24], "big")
        entries = int.from_bytes(h[28:32], "big")
        bs = int.from_bytes(h[32:36], "big")
        f.seek(bat_off)
        raw = f.read(4 * entries)
    bat = [int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4)]
    return bat, bs


def vhd_bitmap_excuse(img, ours, theirs):
    """img2raw(1) vpc: a sector whose bit in its block's sector bitmap is
    clear reads as zeros (the VHD specification; libvhdi does the same);
    qemu-img 7.2 reads the sector's bytes whatever the bitmap says.
    Excused only when the disks have one size and every sector that
    differs is such a sector, zero in ours."""
    layout = vhd_bitmap(img)
    if layout is None or os.path.getsize(ours) != os.path.getsize(theirs):
        return None
    bat, bs = layout
    spb = bs // SECTOR
    clear = 0
    with open(ours, "rb") as fa, open(theirs, "rb") as fb, \
            open(img, "rb") as fi:
        voff = 0
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if not x:
                break
            for at in range(0, len(x), SECTOR) if x != y else ():
                mine = x[at:at + SECTOR]
                if mine == y[at:at + SECTOR]:
                    continue
                blk, bit = divmod((voff + at) // SECTOR, spb)
                if blk >= len(bat) or bat[blk] == 0xffffffff or \
                        mine.count(0) != len(mine):
                    return None
                fi.seek(bat[blk] * SECTOR + bit // 8)
                if fi.read(1)[0] & (0x80 >> (bit % 8)):
                    return None
                clear += 1
            voff += len(x)
    if clear == 0:
        return None
    return (f"sector bitmap: {clear} sectors whose bitmap bit is clear are "
            f"zeros here (VHD specification, libvhdi) and their bytes in "
            f"qemu-img, which ignores the bitmap (img2raw(1) vpc)")


def qemu_excuse(fmt, img, report, ours, theirs):
    """Why qemu-img's disk may differ from ours, or None: a difference
    img2raw(1) documents, and nothing but it."""
    if fmt != "vpc":
        return None
    return vhd_size_excuse(report, ours, theirs) or \
        vhd_bitmap_excuse(img, ours, theirs)


def check(img, fmt, work, fails, excuses):
    """Every disagreement of one image, appended to fails as (check, text);
    documented differences with qemu-img to excuses."""
    def bad(check, text):
        fails.append((check, text))

    fi, pi = info(img, False), info(img, True)
    for way, r in (("file", fi), ("pipe", pi)):
        if r[0] not in (0, 1) or r[1] is None:
            bad("imginfo-crash", f"{way}: exit {r[0]}: {r[3][:200]}")
    if fi[0] != pi[0]:
        bad("imginfo-verdict", f"file exit {fi[0]} {fi[1]}, pipe exit "
            f"{pi[0]} {pi[1]}")
    elif fi[1] != pi[1]:
        bad("imginfo-codes", f"file {fi[1]}, pipe {pi[1]}")
    outf, outp = os.path.join(work, "f.raw"), os.path.join(work, "p.raw")
    big = max(fi[2] or 0, pi[2] or 0) > COMPARE_MAX
    fc, pc = convert(img, False, outf), convert(img, True, outp)
    for way, r in (("file", fc), ("pipe", pc)):
        if r[0] not in (0, 1):
            bad("img2raw-crash", f"{way}: exit {r[0]}: {r[1][:200]}")
    if fc[0] != pc[0]:
        bad("img2raw-verdict", f"file exit {fc[0]} ({fc[1][:150]}), pipe "
            f"exit {pc[0]} ({pc[1][:150]})")
    elif fc[0] == 0 and not big and not same_file(outf, outp):
        bad("img2raw-bytes", "file and pipe give different disks")
    for way, i, c in (("file", fi, fc), ("pipe", pi, pc)):
        if (i[0] == 1) != (c[0] == 1) and i[0] in (0, 1) and c[0] in (0, 1):
            bad("gate-vs-img2raw", f"{way}: imginfo exit {i[0]} {i[1]}, "
                f"img2raw exit {c[0]} ({c[1][:150]})")
    if fc[0] == 0 and not big:
        outq = os.path.join(work, "q.raw")
        q = run(["qemu-img", "convert", "-f", QEMU_FMT.get(fmt, fmt), "-O",
                 "raw", img, outq])
        if q[0] == 0 and not same_file(outf, outq):
            why = qemu_excuse(fmt, img, fi[4], outf, outq)
            if why is not None:
                excuses.append(why)
            else:
                bad("qemu-bytes", "qemu-img convert gives a different disk "
                    f"({os.path.getsize(outq)} bytes, ours "
                    f"{os.path.getsize(outf)})")


def check_in(img, fmt, work):
    """check() in a directory of its own: (fails, excuses)."""
    fails, excuses = [], []
    tmp = tempfile.mkdtemp(prefix="c.", dir=work)
    try:
        check(img, fmt, tmp, fails, excuses)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return fails, excuses


def main():
    fmt, work = sys.argv[1], sys.argv[2]
    count = int(os.environ.get("IMGPIPE_MUTATIONS", "200"))
    jobs = int(os.environ.get("IMGPIPE_CONSISTENCY_JOBS", "4"))
    os.makedirs(work, exist_ok=True)
    bases = fixtures(fmt, work)
    what = mutants(fmt, bases, work, count)
    images = [(b, "fixture") for b in bases] + sorted(what.items())
    counts, failed, excused = {}, 0, 0
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        results = pool.map(lambda i: check_in(i[0], fmt, work), images)
        for (img, desc), (fails, excuses) in zip(images, results):
            for c, text in fails:
                counts[c] = counts.get(c, 0) + 1
                print(f"{os.path.basename(img)} [{desc}]: {c}: {text}")
            for text in excuses:
                print(f"{os.path.basename(img)} [{desc}]: excused: {text}")
            failed += bool(fails)
            excused += bool(excuses)
    print(f"{fmt}: {len(bases)} fixtures, {len(what)} mutants: "
          f"{len(images) - failed} agree ({excused} of them with a "
          f"documented qemu-img difference), {failed} disagree"
          + "".join(f"; {c} {n}" for c, n in sorted(counts.items())))
    return 1 if failed else 0


sys.exit(main())
