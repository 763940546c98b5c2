#!/usr/bin/env python3
"""sparse_ova.py OUT REALSIZE FILES...: an OVA (PAX tar) holding FILES,
then disk1.vmdk as a PAX (GNU 1.0) sparse member of REALSIZE bytes with
4 KiB of data, as GNU tar --sparse writes it, whatever its real size
claims (ovaextract.bats, test/bench/memory.sh)."""
import io
import sys
import tarfile

out, realsize = sys.argv[1], int(sys.argv[2])
data = b"imgpipe!" * 512
smap = b"1\n0\n%d\n" % len(data)
smap += b"\0" * (-len(smap) % 512)
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for f in sys.argv[3:]:
        t.add(f)
    ti = tarfile.TarInfo("GNUSparseFile.0/disk1.vmdk")
    ti.size = len(smap) + len(data)
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                      "GNU.sparse.name": "disk1.vmdk",
                      "GNU.sparse.realsize": str(realsize)}
    t.addfile(ti, io.BytesIO(smap + data))
