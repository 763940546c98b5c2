#!/bin/sh
# uecsplit against tar: a gzipped UEC tarball whose image is a 1 GiB ext4
# disk holding ~300 MiB of files from /usr (the rest free space).
. "$(dirname "$0")/common.sh"
uec=$BENCH_DIR/uec-1g.tar.gz
if ! [ -s "$uec" ]; then
	w=$BENCH_DIR/uec-src
	rm -rf "$w" && mkdir -p "$w/fs" || exit 1
	for d in /usr/share /usr/bin /usr/lib; do
		[ "$(du -sm "$w/fs" | cut -f1)" -ge 300 ] && break
		cp -a "$d" "$w/fs/$(echo "$d" | tr / _)" 2>/dev/null
	done
	mke2fs -q -t ext4 -d "$w/fs" -F "$w/bench-blank.img" 1G >/dev/null 2>&1 || exit 1
	head -c 8000000 /dev/urandom > "$w/bench-vmlinuz"
	printf '\125\252\0\0HdrS' | dd of="$w/bench-vmlinuz" bs=1 seek=510 conv=notrunc status=none
	(cd "$w/fs" && find . -type f | head -n 200 | cpio -o -H newc --quiet) |
		gzip > "$w/bench-initrd"
	tar -C "$w" -czf "$uec.tmp" bench-blank.img bench-vmlinuz bench-initrd &&
		mv "$uec.tmp" "$uec" || exit 1
	rm -rf "$w"
fi
out=$BENCH_DIR/out.uecsplit
bench_header "uecsplit: UEC tarball, 1 GiB image, gzip ($(du -m "$uec" | cut -f1) MiB)"
bench_row "-C DIR" "rm -rf $out && mkdir $out && uecsplit -C $out $uec" \
	"tar -xzf" "rm -rf $out && mkdir $out && tar -C $out -xzf $uec"
bench_row "--image to a pipe" "uecsplit --image $uec | cat > /dev/null" \
	"tar -xzOf IMAGE" "tar -xzOf $uec bench-blank.img | cat > /dev/null"
bench_row "pipe in, list only" "cat $uec | uecsplit" \
	"tar -tzf" "cat $uec | tar -tzf -"
rm -rf "$out"
