#!/usr/bin/env python3
"""consistency.py FORMAT WORKDIR: file and pipe agree, imginfo and img2raw
agree, and img2raw agrees with qemu-img, over every fixture of FORMAT we
can collect and mutants of them (test/mutate.py, fixed seed).

Fixtures: the fuzz seeds (test/fuzz/seeds/FORMAT.sh), imginfo's safety
set (test/mkimageset.sh, images named NAME.FORMAT.VERDICT), the producer
generators' images of FORMAT (test/producers/gen.py, 4 MiB disks), and
qemu-img images of a patterned disk in each subformat.  Mutants: IMGPIPE_MUTATIONS
per format (default 40), spread over the fixtures.

For each image, from a file and from a pipe:
  imginfo --strict --output=json: same exit status, same finding codes;
  img2raw: same exit status and, on success, the same bytes;
  the gate and the converter agree: imginfo refuses (exit 1) exactly the
  images img2raw refuses;
  where img2raw and qemu-img convert both accept, the same bytes.
Exit 1 if any check fails; prints each failure and a count per check."""
import glob
import json
import os
import shutil
import subprocess
import sys

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


def fixtures(fmt, work):
    fx = os.path.join(work, "fixtures")
    os.makedirs(fx, exist_ok=True)
    seeds = os.path.join(HERE, "fuzz", "seeds", fmt + ".sh")
    if os.path.exists(seeds):
        sh(f"sh '{seeds}' '{fx}'")
    imgset = os.path.join(work, "set")
    if not os.path.isdir(imgset):
        sh(f"sh '{HERE}/mkimageset.sh' '{imgset}'")
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


def run(cmd, stdin_file=None, out=None):
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
    cmd = ["imginfo", "--strict", "--output=json"]
    rc, so, se = run(cmd + ([] if pipe else [img]), img if pipe else None)
    try:
        r = json.loads(so)
        codes = [f["code"] for f in r["safety"]["findings"]]
        vsize = r.get("virtual-size", 0)
        qsize = qemu_img_size(r)
    except (ValueError, KeyError):
        codes, vsize, qsize = None, 0, None
    return rc, codes, vsize, se.strip(), qsize


def qemu_img_size(report):
    """The size qemu-img gives a disk where imginfo documents that it
    differs (a VHD sized by its geometry, img2raw(1)), else None."""
    if not isinstance(report, dict):
        return None
    if "qemu-img-size" in report:
        return int(str(report["qemu-img-size"]).split()[0])
    for v in report.values():
        found = qemu_img_size(v)
        if found is not None:
            return found
    return None


def convert(img, pipe, out):
    cmd = ["img2raw", "-o", out]
    rc, _, se = run(cmd + ([] if pipe else [img]), img if pipe else None)
    return rc, se.strip()


def same_file(a, b):
    return sh(f"cmp -s '{a}' '{b}'") == 0


def check(img, fmt, work, fails):
    """Every disagreement of one image, appended to fails as (check, text)."""
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
    for o in (outf, outp):
        if os.path.exists(o):
            os.unlink(o)
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
        if q[0] == 0 and fi[4] is not None and \
                os.path.getsize(outq) == fi[4] and \
                sh(f"cmp -s -n {fi[4]} '{outf}' '{outq}'") == 0:
            pass    # qemu-img cuts the disk where imginfo says it does
        elif q[0] == 0 and not same_file(outf, outq):
            bad("qemu-bytes", "qemu-img convert gives a different disk "
                f"({os.path.getsize(outq)} bytes, ours "
                f"{os.path.getsize(outf)})")
        if os.path.exists(outq):
            os.unlink(outq)


def main():
    fmt, work = sys.argv[1], sys.argv[2]
    count = int(os.environ.get("IMGPIPE_MUTATIONS", "40"))
    os.makedirs(work, exist_ok=True)
    bases = fixtures(fmt, work)
    what = mutants(fmt, bases, work, count)
    images = [(b, "fixture") for b in bases] + sorted(what.items())
    counts, failed = {}, 0
    for img, desc in images:
        fails = []
        check(img, fmt, work, fails)
        for c, text in fails:
            counts[c] = counts.get(c, 0) + 1
            print(f"{os.path.basename(img)} [{desc}]: {c}: {text}")
        failed += bool(fails)
    print(f"{fmt}: {len(bases)} fixtures, {len(what)} mutants: "
          f"{len(images) - failed} agree, {failed} disagree"
          + "".join(f"; {c} {n}" for c, n in sorted(counts.items())))
    return 1 if failed else 0


sys.exit(main())
