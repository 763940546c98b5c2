#!/bin/sh
# Seeds for fuzz_parallels, written into $1: small ploop images from
# qemu-img (4 KiB clusters, written in and out of order) and an old
# "WithoutFreeSpace" image, whose BAT counts sectors.
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
qemu-img create -f parallels -o cluster_size=4K "$d/empty.prl" 1M
yes imgpipe | head -c 40000 > "$t/raw"
truncate -s 300K "$t/raw"
qemu-img convert -f raw -O parallels -o cluster_size=4K "$t/raw" "$d/data.prl"
qemu-img create -f parallels -o cluster_size=4K "$d/shuffled.prl" 2M
qemu-io -f parallels -c "write -P 0x11 1M 4K" -c "write -P 0x22 0 8K" \
	-c "write -P 0x33 512K 4K" "$d/shuffled.prl"
perl -e '
	local $/; my $f = <STDIN>;
	my ($tracks, $n) = unpack "V V", substr($f, 28, 8);
	substr($f, 0, 16) = "WithoutFreeSpace";
	for my $i (0 .. $n - 1) {
		my $v = unpack "V", substr($f, 64 + 4 * $i, 4);
		substr($f, 64 + 4 * $i, 4) = pack "V", $v * $tracks;
	}
	print $f;
' < "$d/data.prl" > "$d/v1.prl"
