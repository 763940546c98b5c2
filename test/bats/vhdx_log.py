"""VHDX log entries (MS-VHDX 2.3.1) for img2raw_vhdx.bats, under the GUID
0x1122334455667788 (low half), built and replayed by the producers' VHDX
module (test/producers/vhdx.py), which the Hyper-V fixtures use.

vhdx_log.py crc FILE OFFSET LENGTH
    Set the CRC-32C at OFFSET+4 of the LENGTH-byte structure at OFFSET,
    as every VHDX header, region table and log entry has it.

vhdx_log.py entry IMAGE LOGOFF SEQ TAIL FLUSHED WRITES...
    Write one entry at LOGOFF.  Each WRITE is data:FILEOFF:FROMOFF (the
    sector of IMAGE at FROMOFF, as it is now, to be written at FILEOFF,
    its first 8 bytes patched by $PATCH8 when set) or zero:FILEOFF:LENGTH
    (zero runs are replayed first).  $BADCRC set: the CRC is spoiled.

vhdx_log.py random IMAGE RAW SEED
    IMAGE is a VHDX of 1 MiB blocks, every one present and in a row, as
    raw2vhdx -s fixed writes it.  Make both headers name the log and write
    one entry of 1 to 24 writes (zero runs and data sectors of random
    bytes, at random 4 KiB offsets of the disk, overlapping and across
    blocks, in SEED's order); RAW becomes what the producers' replay of
    IMAGE reads."""

import os
import random
import struct
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "producers"))
from common import crc32c  # noqa: E402
import vhdx  # noqa: E402

GUID = uuid.UUID(bytes_le=struct.pack("<QQ", 0x1122334455667788, 0))
HEADERS = (65536, 131072)
REGION_TABLE = 196608


def set_crc(buf, off, length):
    """The CRC-32C of buf[off:off + length], its field at off + 4 zeroed."""
    buf[off + 4:off + 8] = bytes(4)
    struct.pack_into("<I", buf, off + 4, crc32c(bytes(buf[off:off + length])))


def cmd_crc(path, off, length):
    off, length = int(off), int(length)
    with open(path, "r+b") as f:
        f.seek(off)
        b = bytearray(f.read(length))
        if len(b) != length:
            sys.exit("short")
        set_crc(b, 0, length)
        f.seek(off)
        f.write(b)


def cmd_entry(img, logoff, seq, tail, flushed, *spec):
    logoff, seq, tail, flushed = map(int, (logoff, seq, tail, flushed))
    writes, zeros = [], []
    with open(img, "r+b") as f:
        for w in spec:
            kind, a, b = w.split(":")
            a, b = int(a), int(b)
            if kind == "zero":
                zeros.append((a, b))
                continue
            f.seek(b)
            sec = bytearray(f.read(4096))
            if "PATCH8" in os.environ:
                sec[0:8] = struct.pack("<Q", int(os.environ["PATCH8"]))
            writes.append((a, bytes(sec)))
        e = bytearray(vhdx.log_entry(seq, GUID, tail, flushed, flushed,
                                     writes, zeros))
        if os.environ.get("BADCRC"):
            e[4] ^= 1
        f.seek(logoff)
        f.write(e)


def cmd_random(img_path, raw_path, seed):
    rng = random.Random(int(seed))
    img = bytearray(open(img_path, "rb").read())
    for h in HEADERS:
        img[h + 48:h + 64] = GUID.bytes_le
        set_crc(img, h, 4096)
    loglen, logoff = struct.unpack_from("<IQ", img, HEADERS[0] + 68)
    bat = struct.unpack_from("<Q", img, REGION_TABLE + 32)[0]
    first = struct.unpack_from("<Q", img, bat)[0] >> 20 << 20
    vsize = os.path.getsize(raw_path)
    writes, zeros = [], []
    for _ in range(rng.randint(1, 24)):
        off = first + rng.randrange(vsize // 4096) * 4096
        if rng.random() < 0.5:
            n = rng.choice([1, 1, 2, 7, 256, 300, 800]) * 4096
            zeros.append((off, min(n, first + vsize - off)))
        else:
            writes.append((off, bytes(rng.getrandbits(8)
                                      for _ in range(4096))))
    e = vhdx.log_entry(7, GUID, 0, len(img), len(img), writes, zeros)
    img[logoff:logoff + len(e)] = e
    open(img_path, "wb").write(img)
    vhdx.replay(img, logoff, loglen, GUID)
    open(raw_path, "wb").write(vhdx.read_raw(img))


if __name__ == "__main__":
    {"crc": cmd_crc, "entry": cmd_entry,
     "random": cmd_random}[sys.argv[1]](*sys.argv[2:])
