#!/bin/sh
# Seeds for fuzz_vdi, written into $1: qemu-img's empty dynamic and static
# images, and a hand-made image with 4 KiB blocks (allocated, free, zero
# and out-of-order entries) that fits libFuzzer's -max_len.
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
truncate -s 3M "$t/raw"
qemu-img convert -f raw -O vdi "$t/raw" "$d/empty.vdi"
truncate -s 64K "$t/raw"
qemu-img convert -f raw -O vdi -o static=on "$t/raw" "$d/static.vdi"
perl -e '
	my $h = "<<< imgpipe fuzz seed >>>\n";
	$h .= "\0" x (0x40 - length $h);
	$h .= pack("V V V V V", 0xbeda107f, 0x00010001, 0x180, 1, 0);
	$h .= "\0" x 256;
	$h .= pack("V V V V V V V", 512, 1024, 0, 0, 0, 512, 0);
	$h .= pack("Q< V V V V", 8 * 4096 - 100, 4096, 0, 8, 3);
	$h .= "\0" x (512 - length $h);
	my $map = pack("V8", 2, 0xffffffff, 0, 0xfffffffe, 1, (0xffffffff) x 3);
	$map .= "\0" x (512 - length $map);
	my $data = join "", map { chr(65 + $_) x 4096 } 0 .. 2;
	print $h, $map, $data;
' > "$d/blocks.vdi"
