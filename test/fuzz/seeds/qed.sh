#!/bin/sh
# Seeds for fuzz_qed, written into $1: small QED images from qemu-img with
# 4 KiB clusters (data, zero clusters, data before its L2 table, several
# tables) that fit libFuzzer's -max_len.
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img create -f qed -o cluster_size=4K "$d/empty.qed" 1M
yes imgpipe | head -c 40000 > "$t/raw"
truncate -s 300K "$t/raw"
qemu-img convert -f raw -O qed -o cluster_size=4K,table_size=2 "$t/raw" "$d/data.qed"
qemu-img create -f qed -o cluster_size=4K,table_size=2 "$d/shuffled.qed" 9M
qemu-io -f qed -c "write -P 0x11 8M 4K" -c "write -P 0x22 0 8K" \
	-c "write -z 16K 4K" -c "write -P 0x33 4M 4K" "$d/shuffled.qed"
