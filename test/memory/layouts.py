#!/usr/bin/python3
"""Worst-case layouts for reading from a pipe (issue 15, test/bats/memory.bats).

    layouts.py FORMAT LAYOUT OUT DATA_BYTES UNIT_BYTES
    layouts.py raw - OUT DATA_BYTES UNIT_BYTES      (the raw disk; OUT - : stdout)

FORMAT: qcow2, qed, vmdk (monolithicSparse) or vmdkstream (streamOptimized,
grain markers in LAYOUT's order, then the grain tables, the grain directory
and the footer, as VMware's ovftool writes).  UNIT_BYTES: the cluster or
grain size.  DATA_BYTES of the virtual disk, from offset 0, are data: unit
number i holds the little-endian 64-bit number i + 1 repeated, so every
unit differs and none is zero.  LAYOUT:

  reverse         the tables first, the data units in reverse virtual order
                  (each just below the one before: what qemu-io writing
                  backwards makes, without its hours of writing)
  reverse-last    the data in reverse order, then every table after it
  forward-last    the data in virtual order, then every table after it
                  (a VMDK whose grain directory sits after its grains)
  forward         vmdkstream only: grain markers in virtual order

The virtual size is DATA_BYTES.  Images are checked by qemu-img in the tests
(qemu-img compare against the raw disk); the tests also give the raw disk.
"""
import struct
import sys


def unit_bytes(i, size):
    return struct.pack('<Q', i + 1) * (size // 8)


def order(n, layout):
    return range(n - 1, -1, -1) if layout.startswith('reverse') else range(n)


def write_units(f, n, size, layout, first_host):
    """Write the data units; return host offset of each virtual unit."""
    host = [0] * n
    at = first_host
    for i in order(n, layout):
        host[i] = at
        f.write(unit_bytes(i, size))
        at += size
    return host, at


def pad_to(f, at, align):
    end = (at + align - 1) // align * align
    f.write(b'\0' * (end - at))
    return end


def qcow2(f, layout, data, cs):
    """qcow2 v3: header, [tables,] data, [tables,] refcounts last."""
    bits = cs.bit_length() - 1
    n = data // cs
    per_l2 = cs // 8
    n_l2 = (n + per_l2 - 1) // per_l2
    l1_clusters = (n_l2 * 8 + cs - 1) // cs
    tables_last = layout.endswith('-last')
    meta = l1_clusters + n_l2
    # host cluster numbers: 0 header, then tables or data
    data_first = 1 if tables_last else 1 + meta
    table_first = 1 + n if tables_last else 1
    l1_at = table_first * cs
    l2_at = [(table_first + l1_clusters + j) * cs for j in range(n_l2)]
    total = 1 + meta + n
    # refcount blocks for every cluster, themselves included, at the end
    per_rb = cs // 2
    rbs = 1
    while total + rbs + (rbs * 8 + cs - 1) // cs > rbs * per_rb:
        rbs += 1
    rt_clusters = (rbs * 8 + cs - 1) // cs
    rb_first = total
    rt_first = total + rbs
    all_clusters = total + rbs + rt_clusters
    hdr = struct.pack('>4sIQIIQIIQQIIQQQQII', b'QFI\xfb', 3, 0, 0, bits,
                      data, 0, n_l2, l1_at, rt_first * cs, rt_clusters, 0,
                      0, 0, 0, 0, 4, 104)
    hdr += b'\0' * 8    # end of header extensions
    f.write(hdr + b'\0' * (cs - len(hdr)))

    def tables():
        l2 = bytearray(n_l2 * cs)
        for i in range(n):
            struct.pack_into('>Q', l2, i * 8, host[i] | 1 << 63)
        l1 = bytearray(l1_clusters * cs)
        for j in range(n_l2):
            struct.pack_into('>Q', l1, j * 8, l2_at[j] | 1 << 63)
        f.write(l1)
        f.write(l2)

    if not tables_last:
        # data hosts are known before writing: compute them first
        host = [0] * n
        at = data_first * cs
        for i in order(n, layout):
            host[i] = at
            at += cs
        tables()
        write_units(f, n, cs, layout, data_first * cs)
    else:
        host, _ = write_units(f, n, cs, layout, data_first * cs)
        tables()
    rb = bytearray(rbs * cs)
    for c in range(all_clusters):
        struct.pack_into('>H', rb, c * 2, 1)
    f.write(rb)
    rt = bytearray(rt_clusters * cs)
    for j in range(rbs):
        struct.pack_into('>Q', rt, j * 8, (rb_first + j) * cs)
    f.write(rt)


def qed(f, layout, data, cs):
    """qed: header cluster, [tables,] data, [tables]; table_size 4."""
    ts = 4
    tb = ts * cs
    n = data // cs
    per_l2 = tb // 8
    n_l2 = (n + per_l2 - 1) // per_l2
    if n_l2 > per_l2:
        sys.exit('layouts.py: qed: more L2 tables than one L1 table holds')
    tables_last = layout.endswith('-last')
    data_first = 1 if tables_last else 1 + ts * (1 + n_l2)
    table_first = 1 + n if tables_last else 1
    l1_at = table_first * cs
    hdr = struct.pack('<4sIIIQQQQQII', b'QED\0', cs, ts, 1, 0, 0, 0, l1_at,
                      data, 0, 0)
    f.write(hdr + b'\0' * (cs - len(hdr)))

    def tables():
        l1 = bytearray(tb)
        for j in range(n_l2):
            struct.pack_into('<Q', l1, j * 8, l1_at + (1 + j) * tb)
        l2 = bytearray(n_l2 * tb)
        for i in range(n):
            struct.pack_into('<Q', l2, i * 8, host[i])
        f.write(l1)
        f.write(l2)

    if not tables_last:
        host = [0] * n
        at = data_first * cs
        for i in order(n, layout):
            host[i] = at
            at += cs
        tables()
        write_units(f, n, cs, layout, data_first * cs)
    else:
        host, _ = write_units(f, n, cs, layout, data_first * cs)
        tables()


def vmdk(f, layout, data, gs):
    """monolithicSparse: header, descriptor, grains, then GTs and GD."""
    sec = 512
    n = data // gs
    gsec = gs // sec
    per_gt = 512
    n_gt = (n + per_gt - 1) // per_gt
    overhead = 21
    desc = ('# Disk DescriptorFile\nversion=1\nCID=12345678\n'
            'parentCID=ffffffff\ncreateType="monolithicSparse"\n\n'
            'RW %d SPARSE "worst.vmdk"\n\n'
            'ddb.adapterType = "ide"\n' % (data // sec)).encode()
    if layout.endswith('-last'):
        grains_at = overhead * sec
        host, end = write_units(_Sink(), n, gs, layout, grains_at)
        gt_at = end
        gd_at = gt_at + n_gt * per_gt * 4
    else:
        gd_at = overhead * sec
        gt_at = gd_at + ((n_gt * 4 + sec - 1) // sec) * sec
        grains_at = gt_at + n_gt * per_gt * 4
        host = None
    hdr = struct.pack('<4sIIQQQQIQQQB4sH', b'KDMV', 1, 1, data // sec, gsec,
                      1, 20, per_gt, 0, gd_at // sec, overhead, 0,
                      b'\n \r\n', 0)
    f.write(hdr + b'\0' * (sec - len(hdr)))
    f.write(desc + b'\0' * (20 * sec - len(desc)))

    def tables():
        gt = bytearray(n_gt * per_gt * 4)
        for i in range(n):
            struct.pack_into('<I', gt, i * 4, host[i] // sec)
        gd = bytearray((n_gt * 4 + sec - 1) // sec * sec)
        for j in range(n_gt):
            struct.pack_into('<I', gd, j * 4, (gt_at + j * per_gt * 4) // sec)
        return gt, gd

    if layout.endswith('-last'):
        write_units(f, n, gs, layout, grains_at)
        gt, gd = tables()
        f.write(gt)
        f.write(gd)
    else:
        host = [0] * n
        at = grains_at
        for i in order(n, layout):
            host[i] = at
            at += gs
        gt, gd = tables()
        f.write(gd)
        f.write(gt)
        write_units(f, n, gs, layout, grains_at)


def vmdkstream(f, layout, data, gs):
    """streamOptimized: header, descriptor, grain markers, GTs, GD, footer."""
    import zlib
    sec = 512
    n = data // gs
    gsec = gs // sec
    per_gt = 512
    n_gt = (n + per_gt - 1) // per_gt
    overhead = 128
    desc = ('# Disk DescriptorFile\nversion=1\nCID=12345678\n'
            'parentCID=ffffffff\ncreateType="streamOptimized"\n\n'
            'RDONLY %d SPARSE "worst.vmdk"\n\n'
            'ddb.adapterType = "lsilogic"\n' % (data // sec)).encode()

    def header(gd):
        h = struct.pack('<4sIIQQQQIQQQB4sH', b'KDMV', 3, 0x30001,
                        data // sec, gsec, 1, 1, per_gt, 0, gd, overhead, 0,
                        b'\n \r\n', 1)
        return h + b'\0' * (sec - len(h))

    f.write(header(0xffffffffffffffff))
    f.write(desc + b'\0' * (sec - len(desc)))
    f.write(b'\0' * (overhead - 2) * sec)
    at = overhead
    gte = [0] * n
    for i in order(n, layout):
        c = zlib.compress(unit_bytes(i, gs), 6)
        g = struct.pack('<QI', i * gsec, len(c)) + c
        g += b'\0' * (-len(g) % sec)
        gte[i] = at
        f.write(g)
        at += len(g) // sec
    gtsec = per_gt * 4 // sec
    gd = []
    for j in range(n_gt):
        f.write(struct.pack('<QII', gtsec, 0, 1) + b'\0' * 496)
        at += 1
        gd.append(at)
        e = gte[j * per_gt:(j + 1) * per_gt]
        e += [0] * (per_gt - len(e))
        f.write(struct.pack('<%dI' % per_gt, *e))
        at += gtsec
    gdsec = (n_gt * 4 + sec - 1) // sec
    f.write(struct.pack('<QII', gdsec, 0, 2) + b'\0' * 496)
    at += 1
    gd_at = at
    raw = struct.pack('<%dI' % n_gt, *gd)
    f.write(raw + b'\0' * (gdsec * sec - len(raw)))
    f.write(struct.pack('<QII', 1, 0, 3) + b'\0' * 496)
    f.write(header(gd_at))
    f.write(b'\0' * sec)


def raw(f, layout, data, unit):
    """The virtual disk every layout above holds."""
    for i in range(data // unit):
        f.write(unit_bytes(i, unit))


class _Sink:
    """Counts what would be written (to place tables before writing)."""

    def write(self, b):
        pass


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    fmt, layout, out = sys.argv[1:4]
    data, unit = int(sys.argv[4]), int(sys.argv[5])
    if layout not in ('reverse', 'reverse-last', 'forward-last', 'forward',
                      '-'):
        sys.exit('layouts.py: unknown layout ' + layout)
    if data % unit or unit & (unit - 1):
        sys.exit('layouts.py: DATA_BYTES must be a multiple of UNIT_BYTES, '
                 'a power of two')
    writers = {'qcow2': qcow2, 'qed': qed, 'vmdk': vmdk,
               'vmdkstream': vmdkstream, 'raw': raw}
    if out == '-':
        writers[fmt](sys.stdout.buffer, layout, data, unit)
        return
    with open(out, 'wb', buffering=1 << 20) as f:
        writers[fmt](f, layout, data, unit)


if __name__ == '__main__':
    main()
