#!/bin/sh
# ovacreate of the 4 GiB / ~1 GiB-data disk against what it replaces:
# qemu-img convert to a streamOptimized VMDK, sha256sum for the manifest,
# tar for the archive (issue 18: at most 0.5x its time).  Both take the
# raw disk and give an OVA with a SHA256 manifest, descriptor first.
. "$(dirname "$0")/common.sh"

raw=$(bench_fixture_raw) || exit 1
qcow2=$(bench_fixture disk4g.qcow2 -f raw -O qcow2) || exit 1
work=$BENCH_OUT/ovacreate-work
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cat > "$work/x.ovf" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>
XML

bench_header "ovacreate: OVA of a 4 GiB disk (~1 GiB data), streamOptimized VMDK, SHA256 manifest"
bench_row "ovacreate -o x.ova disk.raw" \
	"ovacreate --name x -o '$work/x.ova' '$raw'" \
	"qemu-img + sha256sum + tar" \
	"cd '$work' && rm -f disk.vmdk && qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '$raw' disk.vmdk && sha256sum x.ovf disk.vmdk | awk '{ print \"SHA256(\" \$2 \")= \" \$1 }' > x.mf && tar --format=ustar -cf peer.ova x.ovf x.mf disk.vmdk"
bench_row "img2raw disk.qcow2 | ovacreate - > x.ova" \
	"img2raw '$qcow2' | ovacreate --name x - > '$work/p.ova'" "" ""
