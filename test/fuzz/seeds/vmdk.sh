#!/bin/sh
# Seeds for fuzz_vmdk, written into $1: small monolithicSparse and
# streamOptimized extents made by qemu-img (zeroed grains too), and a text
# descriptor naming extent files.
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
truncate -s 1M "$t/raw"
printf 'imgpipe fuzz seed' | dd of="$t/raw" bs=1 seek=0 conv=notrunc status=none
printf 'tail' | dd of="$t/raw" bs=1 seek=700000 conv=notrunc status=none
qemu-img convert -f raw -O vmdk "$t/raw" "$d/sparse.vmdk"
qemu-img convert -f raw -O vmdk -o zeroed_grain=on "$t/raw" "$d/zeroed.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$t/raw" "$d/stream.vmdk"
cat > "$d/flat.vmdk" <<'DESC'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="twoGbMaxExtentFlat"

# Extent description
RW 2048 FLAT "a-f001.vmdk" 0
RW 2048 FLAT "../b-f002.vmdk" 0
DESC
