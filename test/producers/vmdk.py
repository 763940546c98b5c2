"""VMDK layouts of VMware (ovftool/ESXi streams, Workstation sparse and
split, flat and vmfs descriptors, vSphere NFC), VirtualBox (stream for OVF
export) and FreeBSD mkimg, plus VMware's old COWD sparse (to be refused).
See README.md for what each producer writes and where that was learnt."""

import struct
import zlib

from common import SECTOR, MiB, Rng, Disk, fill_pattern, align_up

MAGIC = b"KDMV"
GD_AT_END = 0xFFFFFFFFFFFFFFFF
F_NL, F_RGD, F_ZERO_GRAIN = 1, 2, 4
F_COMPRESSED, F_MARKERS = 1 << 16, 1 << 17
M_EOS, M_GT, M_GD, M_FOOTER, M_UNSPECIFIED = 0, 1, 2, 3, 4
GRAIN = 128                      # sectors (64 KiB)
NGTE = 512
TWO_GB_EXTENT = 4192256          # sectors in each twoGbMax extent

# set by gen.py: the file name the descriptor gives the disk and the
# sectors per extent for split disks (Workstation: 4192256).
BASE = "disk"
EXTENT_SECTORS = TWO_GB_EXTENT


def header(version, flags, capacity, grain, desc_off, desc_size, rgd, gd,
           overhead, compress=0, unclean=0):
    h = bytearray(SECTOR)
    struct.pack_into("<4sIIQQQQIQQQB4sH", h, 0, MAGIC, version, flags,
                     capacity, grain, desc_off, desc_size, NGTE, rgd, gd,
                     overhead, unclean, b"\n \r\n", compress)
    return bytes(h)


def marker(val, mtype):
    m = bytearray(SECTOR)
    struct.pack_into("<QII", m, 0, val, 0, mtype)
    return bytes(m)


def pad512(b):
    return bytes(b) + bytes(-len(b) % SECTOR)


def cid_of(seed):
    return Rng(seed, "cid").u32() | 1


def long_content_id(seed, cid):
    return Rng(seed, "lcid").bytes(12).hex() + "%08x" % cid


def vmware_uuid(seed):
    b = Rng(seed, "ddbuuid").bytes(16)
    b = b"\x60\x00\xc2" + b[3:]
    h = ["%02x" % x for x in b]
    return " ".join(h[:8]) + "-" + " ".join(h[8:])


def lsilogic_chs(sectors):
    """VMware's geometry for SCSI disks: 255/63 when big, 64/32 when small
    (ESXi 6.7 descriptor of a 16 MiB disk: 16/64/32)."""
    if sectors < 64 * 32 * 1024:
        return (sectors // (64 * 32), 64, 32)
    return (min(sectors // (255 * 63), 65535), 255, 63)


# -------------------------------------------------------------- stream VMDK

def stream(disk, desc, seed, *, version=3, zlevel=1, type4_after_first_gt=False,
           overhead=128, grain_marker_lba_only=False):
    """A streamOptimized extent as VMware and VirtualBox write it: header
    with gdOffset GD_AT_END, descriptor at sector 1, grains from
    overhead on (all-zero grains omitted), one GT after each group of 512
    grains that has any grain, then GD, footer and end-of-stream markers."""
    capacity = align_up(disk.size, GRAIN * SECTOR) // SECTOR
    desc_b = pad512(desc.encode())
    ngrains = capacity // GRAIN
    ngd = (ngrains + NGTE - 1) // NGTE
    flags = F_NL | F_COMPRESSED | F_MARKERS
    hdr = header(version, flags, capacity, GRAIN, 1, len(desc_b) // SECTOR, 0,
                 GD_AT_END, overhead, compress=1)
    out = bytearray(hdr + desc_b)
    out += bytes(overhead * SECTOR - len(out))
    gd = [0] * ngd
    type4_done = False
    for g in range(ngd):
        gt = [0] * NGTE
        any_grain = False
        for i in range(NGTE):
            n = g * NGTE + i
            if n >= ngrains:
                break
            off = n * GRAIN * SECTOR
            data = disk.chunk(off, GRAIN * SECTOR)
            if not any(data):
                continue
            comp = zlib.compress(data, zlevel)
            gt[i] = len(out) // SECTOR
            out += pad512(struct.pack("<QI", n * GRAIN, len(comp)) + comp)
            any_grain = True
        if not any_grain:
            continue
        out += marker(NGTE * 4 // SECTOR, M_GT)
        gd[g] = len(out) // SECTOR
        out += struct.pack("<%dI" % NGTE, *gt)
        if type4_after_first_gt and not type4_done:
            # vSphere's undocumented marker type 4: a lone metadata marker
            # with a zero sector count (VirtualBox skips it as one sector).
            out += marker(0, M_UNSPECIFIED)
            type4_done = True
    gd_secs = (ngd * 4 + SECTOR - 1) // SECTOR
    out += marker(gd_secs, M_GD)
    gd_sector = len(out) // SECTOR
    out += pad512(struct.pack("<%dI" % ngd, *gd))
    out += marker(1, M_FOOTER)
    out += header(version, flags, capacity, GRAIN, 1, len(desc_b) // SECTOR, 0,
                  gd_sector, overhead, compress=1)
    out += marker(0, M_EOS)
    return bytes(out)


def vmware_stream_desc(name, capacity, cid, seed, *, trailing=" "):
    """The descriptor of iotest-version3.vmdk (qemu sample, a VMware-made
    stream): every header line and the DDB title end with a blank."""
    c, h, s = (min(capacity // (255 * 63), 65535), 255, 63)
    t = trailing
    return ("# Disk DescriptorFile\n"
            "version=1%s\n"
            "CID=%08x%s\n"
            "parentCID=ffffffff%s\n"
            "createType=\"streamOptimized\"%s\n"
            "\n"
            "# Extent description\n"
            "RDONLY %d SPARSE \"%s\"\n"
            "\n"
            "# The Disk Data Base%s\n"
            "#DDB\n"
            "\n"
            "ddb.adapterType = \"lsilogic\"\n"
            "ddb.geometry.cylinders = \"%d\"\n"
            "ddb.geometry.heads = \"%d\"\n"
            "ddb.geometry.sectors = \"%d\"\n"
            "ddb.longContentID = \"%s\"\n"
            "ddb.virtualHWVersion = \"8\"\n"
            % (t, cid, t, t, t, capacity, name, t, c, h, s,
               Rng(seed, "lcid").bytes(16).hex()))


def vmware_ovftool_stream(name, size, seed):
    """VMware ovftool/ESXi stream: version 3, flags 0x30001, blanks at the
    end of descriptor lines, GD_AT_END + footer, zlib level 1, a type-4
    marker after the first grain table (vSphere)."""
    disk = fill_pattern(Disk(align_up(size, GRAIN * SECTOR)), name, seed)
    capacity = disk.size // SECTOR
    desc = vmware_stream_desc(BASE + ".vmdk", capacity, cid_of(seed), seed)
    return stream(disk, desc, seed, zlevel=1, type4_after_first_gt=True), disk


def vsphere_nfc(name, size, seed):
    """vSphere NFC export: a stream whose DDB keys lack the 'ddb.' prefix
    and which carries nfcSourceCID (layout as ovftool's)."""
    disk = fill_pattern(Disk(align_up(size, GRAIN * SECTOR)), name, seed)
    capacity = disk.size // SECTOR
    cid = cid_of(seed)
    c, h, s = lsilogic_chs(capacity)
    desc = ("# Disk DescriptorFile\n"
            "version=1\n"
            "encoding=\"UTF-8\"\n"
            "CID=%08x\n"
            "parentCID=ffffffff\n"
            "createType=\"streamOptimized\"\n"
            "\n"
            "# Extent description\n"
            "RDONLY %d SPARSE \"%s\"\n"
            "\n"
            "# The Disk Data Base \n"
            "#DDB\n"
            "\n"
            "adapterType = \"lsilogic\"\n"
            "geometry.cylinders = \"%d\"\n"
            "geometry.heads = \"%d\"\n"
            "geometry.sectors = \"%d\"\n"
            "longContentID = \"%s\"\n"
            "nfcSourceCID = \"%08x\"\n"
            "uuid = \"%s\"\n"
            "virtualHWVersion = \"14\"\n"
            % (cid, capacity, BASE + ".vmdk", c, h, s,
               long_content_id(seed, cid), Rng(seed, "srccid").u32(),
               vmware_uuid(seed)))
    return stream(disk, desc, seed, zlevel=1), disk


def virtualbox_ovf_stream(name, size, seed):
    """VirtualBox OVF export: stream version 3, flags 0x30001, key="value"
    without blanks, '# The disk Data Base ' (lower-case d, trailing blank),
    ddb.uuid.* keys, zlib default level, GD_AT_END + footer."""
    disk = fill_pattern(Disk(align_up(size, GRAIN * SECTOR)), name, seed)
    capacity = disk.size // SECTOR
    rng = Rng(seed, "vbox")
    cyl = min(capacity // (16 * 63), 16383)
    zero = "00000000-0000-0000-0000-000000000000"
    desc = ("# Disk DescriptorFile\n"
            "version=1\n"
            "CID=%08x\n"
            "parentCID=ffffffff\n"
            "createType=\"streamOptimized\"\n"
            "\n"
            "# Extent description\n"
            "RDONLY %d SPARSE \"%s\"\n"
            "\n"
            "# The disk Data Base \n"
            "#DDB\n"
            "\n"
            "ddb.virtualHWVersion = \"4\"\n"
            "ddb.adapterType=\"ide\"\n"
            "ddb.uuid.image=\"%s\"\n"
            "ddb.uuid.modification=\"%s\"\n"
            "ddb.uuid.parent=\"%s\"\n"
            "ddb.uuid.parentmodification=\"%s\"\n"
            "ddb.geometry.cylinders=\"%d\"\n"
            "ddb.geometry.heads=\"16\"\n"
            "ddb.geometry.sectors=\"63\"\n"
            % (cid_of(seed), capacity, BASE + ".vmdk", rng.uuid(),
               rng.uuid(), zero, zero, cyl))
    return stream(disk, desc, seed, zlevel=6), disk


# ------------------------------------------------------- hosted sparse VMDK

def hosted_sparse(disk, desc, *, grain=GRAIN, version=1, flags=F_NL | F_RGD,
                  desc_sectors=20, footer=False, start=0, sectors=None,
                  same_rgd=False, preallocate=False):
    """A hosted sparse extent (Workstation).  The extent covers disk sectors
    [start, start+sectors).  Without footer: header, descriptor, RGD, RGTs,
    GD, GTs, grains.  With footer (gdOffset = GD_AT_END): header and
    descriptor, grains, then RGTs, RGD, GTs, GD, footer marker, footer,
    end-of-stream marker."""
    if sectors is None:
        sectors = disk.size // SECTOR - start
    capacity = sectors
    ngrains = (capacity + grain - 1) // grain
    ngd = (ngrains + NGTE - 1) // NGTE
    gd_secs = (ngd * 4 + SECTOR - 1) // SECTOR
    gt_secs = NGTE * 4 // SECTOR
    desc_b = pad512(desc.encode()) if desc else b""
    if desc and len(desc_b) < desc_sectors * SECTOR:
        desc_b += bytes(desc_sectors * SECTOR - len(desc_b))
    dsecs = len(desc_b) // SECTOR
    used = []
    for n in range(ngrains):
        off = (start + n * grain) * SECTOR
        if preallocate or disk.touched(off, grain * SECTOR):
            used.append(n)

    def tables(first_sector, rgd_too):
        """Places the (R)GD and its GTs from first_sector on: returns
        {kind: (gd sector, [gt sectors])} and the next free sector."""
        sec = first_sector
        res = {}
        for kind in (("rgd", "gd") if rgd_too else ("gd",)):
            gd_at = sec
            sec += gd_secs
            gts = []
            for g in range(ngd):
                gts.append(sec)
                sec += gt_secs
            res[kind] = (gd_at, gts)
        return res, sec

    def emit_tables(res, gt_entries):
        out = bytearray()
        for kind in ("rgd", "gd"):
            if kind not in res:
                continue
            gd_at, gts = res[kind]
            out += pad512(struct.pack("<%dI" % ngd, *gts))
            for g in range(ngd):
                out += struct.pack("<%dI" % NGTE,
                                   *gt_entries[g * NGTE:(g + 1) * NGTE])
        return bytes(out)

    if not footer:
        rgd_too = bool(flags & F_RGD) and not same_rgd
        res, end = tables(1 + dsecs, rgd_too)
        overhead = align_up(end, grain)
        sec = overhead
        gte = [0] * (ngd * NGTE)
        grains = bytearray()
        for n in used:
            gte[n] = sec
            grains += disk.chunk((start + n * grain) * SECTOR, grain * SECTOR)
            sec += grain
        gd_at = res["gd"][0]
        rgd_at = res["rgd"][0] if rgd_too else (gd_at if flags & F_RGD else 0)
        out = bytearray(header(version, flags, capacity, grain,
                               1 if desc else 0, dsecs, rgd_at, gd_at,
                               overhead))
        out += desc_b
        out += emit_tables(res, gte)
        out += bytes(overhead * SECTOR - len(out))
        if preallocate:
            # mkimg writes the whole disk after the tables (holes where zero)
            out += disk.raw[start * SECTOR:(start + capacity) * SECTOR]
            out += bytes(ngrains * grain * SECTOR - capacity * SECTOR)
        else:
            out += grains
        return bytes(out)

    # GD_AT_END: grains first, tables and footer last
    overhead = align_up(1 + dsecs, grain)
    sec = overhead
    gte = [0] * (ngd * NGTE)
    grains = bytearray()
    for n in used:
        gte[n] = sec
        grains += disk.chunk((start + n * grain) * SECTOR, grain * SECTOR)
        sec += grain
    res, end = tables(sec, bool(flags & F_RGD))
    gd_at = res["gd"][0]
    rgd_at = res["rgd"][0] if flags & F_RGD else 0
    out = bytearray(header(version, flags, capacity, grain, 1, dsecs,
                           GD_AT_END if flags & F_RGD else 0, GD_AT_END,
                           overhead))
    out += desc_b
    out += bytes(overhead * SECTOR - len(out))
    out += grains
    out += emit_tables(res, gte)
    out += marker(1, M_FOOTER)
    out += header(version, flags, capacity, grain, 1, dsecs, rgd_at, gd_at,
                  overhead)
    out += marker(0, M_EOS)
    return bytes(out)


def workstation_desc(create_type, extents, capacity, seed, adapter="lsilogic",
                     hw="9"):
    """A Workstation descriptor as in libvmdk's tests/data/descriptor_file.1
    (Workstation 9): encoding windows-1252, CID fffffffe,
    isNativeSnapshot, '# The Disk Data Base ' with a trailing blank, DDB in
    Workstation's order."""
    cid = 0xfffffffe
    c, h, s = (min(capacity // (16 * 63), 16383), 16, 63) if adapter == "ide" \
        else lsilogic_chs(capacity)
    return ("# Disk DescriptorFile\n"
            "version=1\n"
            "encoding=\"windows-1252\"\n"
            "CID=%08x\n"
            "parentCID=ffffffff\n"
            "isNativeSnapshot=\"no\"\n"
            "createType=\"%s\"\n"
            "\n"
            "# Extent description\n"
            "%s"
            "\n"
            "# The Disk Data Base \n"
            "#DDB\n"
            "\n"
            "ddb.virtualHWVersion = \"%s\"\n"
            "ddb.longContentID = \"%s\"\n"
            "ddb.uuid = \"%s\"\n"
            "ddb.geometry.cylinders = \"%d\"\n"
            "ddb.geometry.heads = \"%d\"\n"
            "ddb.geometry.sectors = \"%d\"\n"
            "ddb.adapterType = \"%s\"\n"
            % (cid, create_type, "".join(x + "\n" for x in extents), hw,
               long_content_id(seed, cid), vmware_uuid(seed), c, h, s, adapter))


def workstation_sparse(name, size, seed):
    """monolithicSparse with a footer: header gdOffset GD_AT_END (no
    redundant GD), uncompressed grains first, grain tables and directory at
    the end, then footer marker, footer, end-of-stream marker."""
    disk = fill_pattern(Disk(align_up(size, MiB)), name, seed)
    cap = disk.size // SECTOR
    desc = workstation_desc("monolithicSparse",
                            ["RW %d SPARSE \"%s.vmdk\"" % (cap, BASE)], cap, seed)
    return hosted_sparse(disk, desc, footer=True, flags=F_NL), disk


def workstation_split(name, size, seed):
    """VMware Workstation twoGbMaxExtentSparse: a text descriptor and
    NAME-s001.vmdk... sparse extents of 4192256 sectors (the last shorter),
    each extent without an embedded descriptor."""
    disk = fill_pattern(Disk(align_up(size, MiB)), name, seed)
    cap = disk.size // SECTOR
    files, lines = {}, []
    n, start = 1, 0
    while start < cap:
        secs = min(EXTENT_SECTORS, cap - start)
        fname = "%s-s%03d.vmdk" % (BASE, n)
        lines.append("RW %d SPARSE \"%s\"" % (secs, fname))
        files[fname] = hosted_sparse(disk, "", start=start, sectors=secs,
                                     desc_sectors=0)
        start += secs
        n += 1
    files[""] = workstation_desc("twoGbMaxExtentSparse", lines, cap, seed).encode()
    return files, disk


def workstation_flat(name, size, seed):
    """VMware Workstation monolithicFlat: a text descriptor and one
    NAME-flat.vmdk holding the raw disk ("RW n FLAT "name" 0")."""
    disk = fill_pattern(Disk(align_up(size, SECTOR)), name, seed)
    cap = disk.size // SECTOR
    fname = "%s-flat.vmdk" % BASE
    desc = workstation_desc("monolithicFlat",
                            ["RW %d FLAT \"%s\" 0" % (cap, fname)], cap, seed)
    return {"": desc.encode(), fname: bytes(disk.raw)}, disk


def workstation_split_flat(name, size, seed):
    """VMware Workstation twoGbMaxExtentFlat: NAME-f001.vmdk... raw
    extents of 4192256 sectors, the last shorter."""
    disk = fill_pattern(Disk(align_up(size, SECTOR)), name, seed)
    cap = disk.size // SECTOR
    files, lines = {}, []
    n, start = 1, 0
    while start < cap:
        secs = min(EXTENT_SECTORS, cap - start)
        fname = "%s-f%03d.vmdk" % (BASE, n)
        lines.append("RW %d FLAT \"%s\" 0" % (secs, fname))
        files[fname] = bytes(disk.raw[start * SECTOR:(start + secs) * SECTOR])
        start += secs
        n += 1
    files[""] = workstation_desc("twoGbMaxExtentFlat", lines, cap, seed).encode()
    return files, disk


def esxi_vmfs(name, size, seed):
    """ESXi 6.7 'vmfs' disk: descriptor byte for byte as quoted in
    OSInside/kiwi issue 2144 (sorted DDB keys, uuid with 60 00 C2, trailing
    blank after the DDB title) and a NAME-flat.vmdk raw extent."""
    disk = fill_pattern(Disk(align_up(size, SECTOR)), name, seed)
    cap = disk.size // SECTOR
    cid = 0xfffffffe
    c, h, s = lsilogic_chs(cap)
    fname = "%s-flat.vmdk" % BASE
    desc = ("# Disk DescriptorFile\n"
            "version=1\n"
            "encoding=\"UTF-8\"\n"
            "CID=%08x\n"
            "parentCID=ffffffff\n"
            "createType=\"vmfs\"\n"
            "\n"
            "# Extent description\n"
            "RW %d VMFS \"%s\"\n"
            "\n"
            "# The Disk Data Base \n"
            "#DDB\n"
            "\n"
            "ddb.adapterType = \"lsilogic\"\n"
            "ddb.geometry.cylinders = \"%d\"\n"
            "ddb.geometry.heads = \"%d\"\n"
            "ddb.geometry.sectors = \"%d\"\n"
            "ddb.longContentID = \"%s\"\n"
            "ddb.uuid = \"%s\"\n"
            "ddb.virtualHWVersion = \"14\"\n"
            % (cid, cap, fname, c, h, s, long_content_id(seed, cid),
               vmware_uuid(seed)))
    return {"": desc.encode(), fname: bytes(disk.raw)}, disk


def mkimg_vmdk(name, size, seed):
    """FreeBSD mkimg -f vmdk: monolithicSparse version 1, flags NL|RGD with
    rgdOffset == gdOffset (one directory serves as both), 8 KiB grains,
    size rounded up to 1 MiB, CID 0, an empty extent file name, no blank
    lines, geometry 0/0/0, every grain allocated (the disk follows the
    tables whole, zeros as holes)."""
    disk = fill_pattern(Disk(align_up(size, MiB)), name, seed)
    cap = disk.size // SECTOR
    desc = ("# Disk DescriptorFile\n"
            "version=1\n"
            "CID=00000000\n"
            "parentCID=ffffffff\n"
            "createType=\"monolithicSparse\"\n"
            "# Extent description\n"
            "RW %d SPARSE \"\"\n"
            "# The Disk Data Base\n"
            "#DDB\n"
            "ddb.adapterType = \"ide\"\n"
            "ddb.geometry.cylinders = \"0\"\n"
            "ddb.geometry.heads = \"0\"\n"
            "ddb.geometry.sectors = \"0\"\n" % cap)
    img = hosted_sparse(disk, desc, grain=16, desc_sectors=0, same_rgd=True,
                        preallocate=True)
    return img, disk


def cowd(name, size, seed):
    """VMware's old COWD sparse (ESX vmfsSparse / GSX redo logs): magic
    'COWD', the 2048-byte COWDisk_Header (root geometry, generation, name,
    description), grain directory at sector 4, 4096-entry grain tables,
    1-sector grains.  A container readers must refuse (never as raw)."""
    size = align_up(size, MiB)
    disk = fill_pattern(Disk(size), name, seed)
    secs = size // SECTOR
    grain = 1
    ngd = (secs + 4096 * grain - 1) // (4096 * grain)
    gd_off = 4
    gd_secs = (ngd * 4 + SECTOR - 1) // SECTOR
    sec = gd_off + gd_secs
    gd = []
    gts = bytearray()
    data = bytearray()
    # tables first (one GT of 16 KiB per GD entry that has data), then data
    touched = [g for g in range(ngd) if disk.has_data(g * 4096 * SECTOR, 4096 * SECTOR)]
    gt_secs = 4096 * 4 // SECTOR
    data_sec = sec + len(touched) * gt_secs
    for g in range(ngd):
        if g not in touched:
            gd.append(0)
            continue
        gd.append(sec)
        sec += gt_secs
        gt = [0] * 4096
        for i in range(4096):
            lba = g * 4096 + i
            if lba < secs and disk.has_data(lba * SECTOR, SECTOR):
                gt[i] = data_sec
                data += disk.chunk(lba * SECTOR, SECTOR)
                data_sec += 1
        gts += struct.pack("<4096I", *gt)
    h = bytearray(2048)
    struct.pack_into("<4sIIIIIII", h, 0, b"COWD", 1, 3, secs, grain, gd_off,
                     ngd, data_sec)
    c = min(secs // (16 * 63), 65535)
    struct.pack_into("<III", h, 32, c, 16, 63)
    struct.pack_into("<I", h, 1060, 1)                    # generation
    nm = ("%s.vmdk" % BASE).encode()[:59]
    h[1064:1064 + len(nm)] = nm
    return (bytes(h) + pad512(struct.pack("<%dI" % ngd, *gd)) + bytes(gts)
            + bytes(data)), disk


REFUSE = {"cowd"}

PRODUCERS = {
    "vmware-ovftool-stream": (vmware_ovftool_stream, 64 * MiB),
    "vsphere-nfc": (vsphere_nfc, 64 * MiB),
    "virtualbox-ovf-stream": (virtualbox_ovf_stream, 64 * MiB),
    "vmware-workstation-sparse": (workstation_sparse, 64 * MiB),
    "vmware-workstation-split": (workstation_split, 64 * MiB),
    "vmware-flat": (workstation_flat, 16 * MiB),
    "vmware-split-flat": (workstation_split_flat, 16 * MiB),
    "vmware-esxi-vmfs": (esxi_vmfs, 16 * MiB),
    "mkimg-vmdk": (mkimg_vmdk, 63 * MiB),
    "cowd": (cowd, 16 * MiB),
}
