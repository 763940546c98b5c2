#!/bin/sh
# Seeds for fuzz_vpc: small fixed and dynamic VHDs made by qemu-img into $1.
# libFuzzer keeps the first 1 MiB of each (-max_len), which holds every
# header, the BAT and the first block's bitmap.
dir=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
printf 'imgpipe fuzz seed' > "$tmp/data.raw"
truncate -s 60K "$tmp/data.raw"
qemu-img convert -f raw -O vpc -o subformat=fixed "$tmp/data.raw" "$dir/fixed.vhd"
qemu-img convert -f raw -O vpc -o subformat=dynamic "$tmp/data.raw" "$dir/dynamic.vhd"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$tmp/data.raw" "$dir/dynamic-fs.vhd"
truncate -s 60K "$tmp/zero.raw"
qemu-img convert -f raw -O vpc "$tmp/zero.raw" "$dir/empty.vhd"
