#!/bin/sh
# Seeds for fuzz_qcow2, written into $1: small qcow2 images from qemu-img
# that fit libFuzzer's -max_len: v2 and v3, 512 B and 4 KiB clusters,
# zlib and zstd compressed clusters, extended L2, zero clusters, a
# snapshot, and an L1 table moved after the data.
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
yes imgpipe | head -c 40000 > "$t/raw"
truncate -s 300K "$t/raw"
qemu-img create -f qcow2 -o cluster_size=4k "$d/empty.qcow2" 1M
qemu-img convert -f raw -O qcow2 -o compat=0.10,cluster_size=512 "$t/raw" "$d/v2-512.qcow2"
qemu-img convert -f raw -O qcow2 -o cluster_size=4k "$t/raw" "$d/v3-4k.qcow2"
qemu-img convert -c -f raw -O qcow2 -o cluster_size=4k "$t/raw" "$d/zlib.qcow2"
qemu-img convert -c -f raw -O qcow2 -o cluster_size=4k,compression_type=zstd "$t/raw" "$d/zstd.qcow2"
qemu-img convert -f raw -O qcow2 -o cluster_size=16k,extended_l2=on "$t/raw" "$d/subcl.qcow2"
qemu-io -c 'write -P 7 1k 1k' -c 'write -z 40k 2k' "$d/subcl.qcow2"
qemu-img create -f qcow2 -o cluster_size=4k "$d/shuffled.qcow2" 600K
qemu-io -c 'write -P 1 500k 4k' -c 'write -P 2 0 8k' -c 'write -z 16k 4k' \
	-c 'write -c -P 3 200k 4k' "$d/shuffled.qcow2"
qemu-img snapshot -c s1 "$d/shuffled.qcow2"
qemu-io -c 'write -P 4 0 4k' "$d/shuffled.qcow2"
qemu-img convert -f raw -O qcow2 -o cluster_size=512 "$t/raw" "$d/moved-l1.qcow2"
qemu-img resize "$d/moved-l1.qcow2" 2M
qemu-io -c 'write -P 5 1M 4k' "$d/moved-l1.qcow2"
