#!/bin/sh
# ovaextract on an OVA holding the 4 GiB / ~1 GiB-data disk as a
# streamOptimized VMDK with a SHA256 manifest, against tar + sha256sum,
# and the whole pipeline against tar -xf + qemu-img convert.
. "$(dirname "$0")/common.sh"

vmdk=$(bench_fixture disk4g.vmdk -f raw -O vmdk -o subformat=streamOptimized) || exit 1
ova=$BENCH_DIR/disk4g.ova
work=$BENCH_DIR/ova-work
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
if ! [ -s "$ova" ]; then
	cp "$vmdk" "$work/disk.vmdk"
	cat > "$work/x.ovf" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="disk.vmdk" ovf:id="file1" ovf:size="$(stat -c %s "$vmdk")"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="4294967296" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="bench"><Info>bench</Info></VirtualSystem>
</Envelope>
XML
	(cd "$work" && sha256sum x.ovf disk.vmdk |
		awk '{ print "SHA256(" $2 ")= " $1 }' > x.mf &&
		tar --format=ustar -cf "$ova.tmp" x.ovf x.mf disk.vmdk) &&
		mv "$ova.tmp" "$ova" || exit 1
	rm -f "$work/disk.vmdk"
fi

bench_header "ovaextract: OVA with a streamOptimized VMDK (4 GiB, ~1 GiB data), SHA256 manifest"
bench_row "ovaextract x.ova > disk.vmdk (verified)" \
	"ovaextract '$ova' > '$work/d.vmdk'" \
	"tar -xOf + sha256sum" "tar -xOf '$ova' disk.vmdk > '$work/d.vmdk' && sha256sum '$work/d.vmdk'"
bench_row "ovaextract | img2raw | raw2qcow2 > x.qcow2" \
	"rm -f '$work/x.qcow2'; ovaextract '$ova' | img2raw | raw2qcow2 > '$work/x.qcow2'" \
	"tar -xf + qemu-img convert" "rm -f '$work/x.qcow2'; tar -C '$work' -xf '$ova' disk.vmdk && qemu-img convert -O qcow2 '$work/disk.vmdk' '$work/x.qcow2'"
