#!/bin/sh
# Seeds for fuzz_uec: small UEC tarballs (plain, ustar and pax --sparse)
# and the bare signatures the sniffer knows.
d=$1 w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
head -c 2048 /dev/urandom > "$w/x-vmlinuz"
printf '\125\252\0\0HdrS' | dd of="$w/x-vmlinuz" bs=1 seek=510 conv=notrunc status=none
mkdir "$w/r" && echo hi > "$w/r/motd"
(cd "$w/r" && echo motd | cpio -o -H newc --quiet) | gzip > "$w/x-initrd"
truncate -s 1M "$w/x.img" && mke2fs -q -F -t ext2 "$w/x.img" 1M >/dev/null 2>&1
tar -C "$w" -cf "$d/ustar.tar" x-vmlinuz x-initrd x.img
tar -C "$w" --format=posix --sparse -cf "$d/pax.tar" x.img x-initrd
cp "$w/x-vmlinuz" "$d/bzimage"
cp "$w/x-initrd" "$d/initrd.gz"
head -c 2048 "$w/x.img" > "$d/ext2.head"
