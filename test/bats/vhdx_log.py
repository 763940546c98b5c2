"""VHDX log entries (MS-VHDX 2.3.1) for img2raw_vhdx.bats, under the GUID
0x1122334455667788 (low half), with their CRC-32C.

vhdx_log.py entry IMAGE LOGOFF SEQ TAIL FLUSHED WRITES...
    Write one entry at LOGOFF.  Each WRITE is data:FILEOFF:FROMOFF (the
    sector of IMAGE at FROMOFF, as it is now, to be written at FILEOFF,
    its first 8 bytes patched by $PATCH8 when set) or zero:FILEOFF:LENGTH.
    $BADCRC set: the CRC is spoiled.

vhdx_log.py random IMAGE RAW SEED
    IMAGE is a fixed VHDX of RAW with 1 MiB blocks in a row, as raw2vhdx
    -s fixed writes it.  Make both headers name the log, write one entry
    of 1 to 24 writes (zero runs and data sectors of random bytes, at
    random 4 KiB offsets of the disk, overlapping and across blocks, in
    SEED's order), and apply the same writes to RAW: what a replay must
    give."""

import random
import struct
import sys
import os

GUID = struct.pack("<QQ", 0x1122334455667788, 0)
HEADERS = (65536, 131072)
REGION_TABLE = 196608


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = crc32c_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def data_desc(sec, fileoff, seq):
    """A data descriptor and its data sector, for the 4 KiB sector sec."""
    desc = struct.pack("<4sIQQQ", b"desc", struct.unpack("<I", sec[4092:])[0],
                       struct.unpack("<Q", sec[:8])[0], fileoff, seq)
    data = (b"data" + struct.pack("<I", seq >> 32) + bytes(sec[8:4092]) +
            struct.pack("<I", seq & 0xFFFFFFFF))
    return desc, data


def zero_desc(fileoff, length, seq):
    return struct.pack("<4sIQQQ", b"zero", 0, length, fileoff, seq)


def entry(seq, tail, flushed, descs, datas, bad_crc=False):
    dsec = (64 + 32 * len(descs) + 4095) // 4096
    length = (dsec + len(datas)) * 4096
    e = bytearray(length)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, length, tail, seq,
                     len(descs), 0, GUID, flushed, flushed)
    for i, d in enumerate(descs):
        e[64 + 32 * i:96 + 32 * i] = d
    for i, d in enumerate(datas):
        e[(dsec + i) * 4096:(dsec + i + 1) * 4096] = d
    struct.pack_into("<I", e, 4, crc32c(bytes(e)))
    if bad_crc:
        e[4] ^= 1
    return e


def cmd_entry(img, logoff, seq, tail, flushed, *writes):
    logoff, seq, tail, flushed = map(int, (logoff, seq, tail, flushed))
    descs, datas = [], []
    with open(img, "r+b") as f:
        for w in writes:
            kind, a, b = w.split(":")
            a, b = int(a), int(b)
            if kind == "zero":
                descs.append(zero_desc(a, b, seq))
                continue
            f.seek(b)
            sec = bytearray(f.read(4096))
            if "PATCH8" in os.environ:
                sec[0:8] = struct.pack("<Q", int(os.environ["PATCH8"]))
            d, s = data_desc(sec, a, seq)
            descs.append(d)
            datas.append(s)
        f.seek(logoff)
        f.write(entry(seq, tail, flushed, descs, datas,
                      bool(os.environ.get("BADCRC"))))


def cmd_random(img_path, raw_path, seed):
    rng = random.Random(int(seed))
    img = bytearray(open(img_path, "rb").read())
    raw = bytearray(open(raw_path, "rb").read())
    for h in HEADERS:
        img[h + 48:h + 64] = GUID
        img[h + 4:h + 8] = bytes(4)
        struct.pack_into("<I", img, h + 4, crc32c(bytes(img[h:h + 4096])))
    logoff = struct.unpack_from("<Q", img, HEADERS[0] + 72)[0]
    bat = struct.unpack_from("<Q", img, REGION_TABLE + 32)[0]
    first = struct.unpack_from("<Q", img, bat)[0] >> 20 << 20
    seq, descs, datas = 7, [], []
    for _ in range(rng.randint(1, 24)):
        off = rng.randrange(len(raw) // 4096) * 4096
        if rng.random() < 0.5:
            n = min(rng.choice([1, 1, 2, 7, 256, 300, 800]) * 4096,
                    len(raw) - off)
            descs.append(zero_desc(first + off, n, seq))
            raw[off:off + n] = bytes(n)
        else:
            sec = bytes(rng.getrandbits(8) for _ in range(4096))
            d, s = data_desc(sec, first + off, seq)
            descs.append(d)
            datas.append(s)
            raw[off:off + 4096] = sec
    e = entry(seq, 0, len(img), descs, datas)
    img[logoff:logoff + len(e)] = e
    open(img_path, "wb").write(img)
    open(raw_path, "wb").write(raw)


if __name__ == "__main__":
    {"entry": cmd_entry, "random": cmd_random}[sys.argv[1]](*sys.argv[2:])
