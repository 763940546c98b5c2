#!/bin/sh
# mkimageset.sh DIR: the image set of imginfo's safety suite, in the
# spirit of an image service's format-inspector tests.  Each image is
# named NAME.EXPECTED-FORMAT.EXPECTED-VERDICT.
set -e
d=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$d/tree"
cd "$d"
echo "hello" > tree/hello.txt
truncate -s 4M base.raw
printf 'data' | dd of=base.raw bs=1 seek=1000000 conv=notrunc status=none

qemu-img convert -q -f raw -O qcow2 base.raw plain.qcow2.safe
qemu-img create -q -f qcow2 -b "$PWD/base.raw" -F raw backing.qcow2.unsafe
qemu-img create -q -f qcow2 -o data_file="$PWD/data.bin" datafile.qcow2.unsafe 4M
cp base.raw plain.raw.safe
truncate -s 8M gpt.raw.safe
parted -s gpt.raw.safe mklabel gpt mkpart primary ext4 1MiB 7MiB
xorriso -as mkisofs -quiet -o plain.iso.safe tree 2>/dev/null
truncate -s 8M udf.iso.safe
mkudffs udf.iso.safe >/dev/null 2>&1
# an ISO whose system area (the first 32 KiB) holds a qcow2 header
cp plain.iso.safe qcow2-in-iso.iso.unsafe
dd if=plain.qcow2.safe of=qcow2-in-iso.iso.unsafe bs=512 count=1 conv=notrunc status=none
qemu-img convert -q -f raw -O vmdk base.raw sparse.vmdk.safe
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized base.raw stream.vmdk.safe
# monolithicFlat: the descriptor alone (its -flat file removed: never read)
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw flat.vmdk
mv flat.vmdk flat.vmdk.unsafe
rm -f flat-flat.vmdk
# a descriptor that names /etc/hosts as its flat extent
sed "s|FLAT \"[^\"]*\"|FLAT \"/etc/hosts\"|" \
	flat.vmdk.unsafe > flat-hosts.vmdk.unsafe
grep -q /etc/hosts flat-hosts.vmdk.unsafe
# a monolithicSparse whose embedded descriptor names /etc/hosts
python3 - sparse.vmdk.safe sparse-hosts.vmdk.unsafe <<'PY'
import re, sys
d = bytearray(open(sys.argv[1], "rb").read())
m = re.search(rb'SPARSE "[^"]*"', d)
new = b'SPARSE "/etc/hosts"'
d[m.start():m.start() + len(new)] = new
open(sys.argv[2], "wb").write(d)
PY
# VMware's stream layout: the footer at the end carries the GD (normal) ...
perl "$here/vmware_stream.pl" stream.vmdk.safe footer.vmdk.safe
# ... and one whose footer moves the descriptor elsewhere than the header
cp footer.vmdk.safe footer-moved.vmdk.unsafe
python3 - footer-moved.vmdk.unsafe <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
end = f.seek(0, 2)
f.seek(end - 1024 + 28)           # footer header: descriptorOffset
f.write(struct.pack("<Q", 7))
PY
qemu-img convert -q -f raw -O qed base.raw plain.qed.safe
qemu-img create -q -f qed -b "$PWD/base.raw" -F raw backing.qed.unsafe
rm -rf tree
