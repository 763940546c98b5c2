#!/bin/sh
# Seeds for fuzz_vhdx: small VHDX images made by qemu-img into $1.  The
# regions start at 1 MiB, past libFuzzer's -max_len, so these exercise
# the identifier, headers and region tables; test/bats/img2raw_vhdx.bats
# covers the rest with crafted images.
dir=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
printf 'imgpipe fuzz seed' > "$tmp/data.raw"
truncate -s 1M "$tmp/data.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=1M "$tmp/data.raw" "$dir/dynamic.vhdx"
qemu-img convert -f raw -O vhdx -o subformat=fixed,block_size=1M "$tmp/data.raw" "$dir/fixed.vhdx"
