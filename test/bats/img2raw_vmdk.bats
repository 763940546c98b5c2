# img2raw: VMware VMDK hosted sparse extents against qemu-img:
# monolithicSparse, streamOptimized as qemu-img writes it and as VMware
# ovftool lays it out (GD at the end, footer), text descriptors rejected.
load helpers

SIZE=5000000	# not a multiple of the 64 KiB grain nor of a sector

setup() {
	make_pattern "$T/disk.raw" $SIZE
}

# vmdk IMAGE [OPTIONS]: convert the pattern, and the oracle's raw of it.
vmdk() {
	qemu-img convert -f raw -O vmdk ${2:+-o "$2"} "$T/disk.raw" "$1"
	qemu-img convert -f vmdk -O raw "$1" "$1.want"
}

# vmware_stream IN OUT [raw]: re-lay qemu-img's streamOptimized output the
# way VMware ovftool writes it: gdOffset GD_AT_END in the header, grains,
# then GT markers and tables, GD marker and directory, footer marker and
# footer, end-of-stream marker; an ovftool-style descriptor.  With "raw",
# grains are recompressed as raw deflate (no zlib wrapper).
vmware_stream() {
	perl "$BATS_TEST_DIRNAME/../vmware_stream.pl" "$@"
}

# tables_at_end IN OUT: a monolithicSparse extent whose GD and GTs come
# after the grains, so a pipe meets data before the table naming it.
tables_at_end() {
	perl - "$1" "$2" <<'EOF'
use strict;
my ($in, $out) = @ARGV;
open(my $fh, '<:raw', $in) or die; local $/; my $d = <$fh>; close $fh;
my ($cap, $grain, $ngte, $gd, $over) = unpack('x12 Q< Q< x16 V x8 Q< Q<', $d);
my $ngts = int((int(($cap + $grain - 1) / $grain) + $ngte - 1) / $ngte);
my $body = $d;
$body .= "\0" x ((512 - length($body) % 512) % 512);
my @newgd;
for my $g (0 .. $ngts - 1) {
	my $at = unpack('V', substr($d, $gd * 512 + 4 * $g, 4));
	push @newgd, length($body) / 512;
	$body .= substr($d, $at * 512, $ngte * 4);
}
$body .= "\0" x ((512 - length($body) % 512) % 512);
my $gdat = length($body) / 512;
$body .= pack('V*', @newgd);
$body .= "\0" x ((512 - length($body) % 512) % 512);
substr($body, $gd * 512, ($over - $gd) * 512) = "\0" x (($over - $gd) * 512);
substr($body, 56, 8) = pack('Q<', $gdat);
open($fh, '>:raw', $out) or die; print $fh $body; close $fh;
EOF
}

@test "vmdk monolithicSparse: byte-identical to qemu-img, four ways" {
	vmdk "$T/m.vmdk"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want" -f vmdk
}

@test "vmdk monolithicSparse: adapter_type, compat6, zeroed_grain, four ways" {
	for o in adapter_type=lsilogic compat6=on zeroed_grain=on \
	    adapter_type=buslogic,compat6=on,zeroed_grain=on; do
		vmdk "$T/m.vmdk" "subformat=monolithicSparse,$o"
		img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want" || { echo "$o"; return 1; }
	done
}

@test "vmdk streamOptimized: byte-identical to qemu-img, four ways" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	[ "$(get_le32 "$T/s.vmdk" 8)" = $((0x30003)) ]
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want"
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want" -f vmdk
}

@test "vmdk streamOptimized: adapter_type and compat6, four ways" {
	for o in adapter_type=lsilogic compat6=on adapter_type=ide,compat6=on; do
		vmdk "$T/s.vmdk" "subformat=streamOptimized,$o"
		img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want" || { echo "$o"; return 1; }
	done
}

@test "vmdk streamOptimized, VMware layout: GD at the end, footer, four ways" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	qemu-img convert -f vmdk -O raw "$T/w.vmdk" "$T/w.want"
	cmp "$T/w.want" "$T/s.vmdk.want"
	img2raw_4ways "$T/w.vmdk" "$T/w.want"
}

@test "vmdk streamOptimized, VMware layout: raw deflate grains, bytes after the stream" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	vmware_stream "$T/s.vmdk" "$T/w.vmdk" raw
	[ "$(od -An -tx1 -j $((0x1000c)) -N1 "$T/w.vmdk" | tr -d ' ')" != 78 ]
	img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want"
	# trailing bytes: no footer in the last 1536 bytes; markers are walked
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	head -c 4096 /dev/zero >> "$T/w.vmdk"
	img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want"
}

@test "vmdk streamOptimized: grains out of LBA order: qemu layout four ways; GD at the end: pipe to pipe refused" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	# swap the one-sector grains 0 and 1 and their grain table entries
	dd if="$T/s.vmdk" of="$T/g0" bs=512 skip=128 count=1 status=none
	dd if="$T/s.vmdk" of="$T/s.vmdk" bs=512 skip=129 seek=128 count=1 conv=notrunc status=none
	dd if="$T/g0" of="$T/s.vmdk" bs=512 seek=129 count=1 conv=notrunc status=none
	gt=$(($(get_le32 "$T/s.vmdk" $(($(get_le32 "$T/s.vmdk" 56) * 512))) * 512))
	[ "$(get_le32 "$T/s.vmdk" $gt)" = 128 ]
	put_le32 "$T/s.vmdk" $gt 129
	put_le32 "$T/s.vmdk" $((gt + 4)) 128
	# the tables come first: a pipe reads by them, the stash takes the order
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want"
	# the same grain order with the GD at the end: only markers place them
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	img2raw -o "$T/ff.raw" "$T/w.vmdk"
	cmp "$T/ff.raw" "$T/s.vmdk.want"
	cat "$T/w.vmdk" | img2raw -o "$T/pf.raw"
	cmp "$T/pf.raw" "$T/s.vmdk.want"
	expect_reject -i "$T/w.vmdk" 1 vmdk \
		"^grain marker at 0x[0-9a-f]+ \\(LBA 0\\) comes after grains at higher LBAs; write the output to a file" \
		img2raw
}

# qemu-img ends a stream right after its last grain (no end-of-stream
# marker) when the data does not compress to leave padding behind it.
@test "vmdk streamOptimized of incompressible data: no end-of-stream marker, four ways; cuts at a grain are truncated" {
	head -c 3145728 /dev/urandom > "$T/r.raw"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$T/r.raw" "$T/r.vmdk"
	img2raw_4ways "$T/r.vmdk" "$T/r.raw"
	# the last grain's marker: the highest GT entry of the first table
	gt=$(($(get_le32 "$T/r.vmdk" $(($(get_le32 "$T/r.vmdk" 56) * 512))) * 512))
	last=$(od -An -tu4 -v -j "$gt" -N 2048 "$T/r.vmdk" | tr -s ' ' '\n' | sort -n | tail -1)
	[ $((last * 512)) -lt "$(stat -c %s "$T/r.vmdk")" ]
	head -c $((last * 512)) "$T/r.vmdk" > "$T/cut.vmdk"
	# from a pipe the end is not known in advance: the input ends first
	img2raw_rejects vmdk "$T/cut.vmdk" "^grain [0-9]+ at 0x[0-9a-f]+ lies past the end of the image" \
		"^grain marker at 0x[0-9a-f]+: image is truncated$"
}

@test "vmdk: an empty disk is all zeros, both subformats" {
	truncate -s 3M "$T/disk.raw"
	vmdk "$T/m.vmdk"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want"
}

@test "vmdk: zero-grain entries (GTE 1) read as zeros" {
	vmdk "$T/m.vmdk"
	gt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 56) * 512)))
	put_le32 "$T/m.vmdk" $((gt * 512)) 1	# grain 0
	rgt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 48) * 512)))
	put_le32 "$T/m.vmdk" $((rgt * 512)) 1
	cp "$T/m.vmdk.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=65536 count=1 conv=notrunc status=none
	img2raw_4ways "$T/m.vmdk" "$T/want"
}

@test "vmdk monolithicSparse: tables after the grains, pipe keeps data in the stash" {
	vmdk "$T/m.vmdk"
	tables_at_end "$T/m.vmdk" "$T/e.vmdk"
	qemu-img convert -f vmdk -O raw "$T/e.vmdk" "$T/e.want"
	cmp "$T/e.want" "$T/m.vmdk.want"
	img2raw_4ways "$T/e.vmdk" "$T/e.want"
	img2raw_4ways "$T/e.vmdk" "$T/e.want" --mem 64K	# spill to $TMPDIR
}

@test "vmdk: a grain table differing from its redundant copy is rejected" {
	vmdk "$T/m.vmdk"
	rgt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 48) * 512)))
	put_le32 "$T/m.vmdk" $((rgt * 512 + 4)) 12345
	expect_reject 1 vmdk "^grain table 0 differs from its redundant copy" img2raw "$T/m.vmdk"
}

@test "vmdk: bad magic, grain size 0 or not a power of two" {
	vmdk "$T/m.vmdk"
	put_le32 "$T/m.vmdk" 0 $((0x12345678))
	expect_reject 1 - "^input is not vmdk \\(it looks like raw\\)$" img2raw -f vmdk "$T/m.vmdk"
	expect_reject -i "$T/m.vmdk" 1 - "^input is not vmdk \\(it looks like raw\\)$" img2raw -f vmdk
	for g in 0 3 65536; do
		vmdk "$T/m.vmdk"
		put_le64 "$T/m.vmdk" 20 $g
		img2raw_rejects vmdk "$T/m.vmdk" "^grain size $g sectors is not a power of two"
	done
	vmdk "$T/m.vmdk"
	put_le32 "$T/m.vmdk" 44 0
	img2raw_rejects vmdk "$T/m.vmdk" "0 entries per grain table"
	vmdk "$T/m.vmdk"
	put_le32 "$T/m.vmdk" 4 7
	img2raw_rejects vmdk "$T/m.vmdk" "unsupported version 7"
	vmdk "$T/m.vmdk"
	printf '\n\n' | dd of="$T/m.vmdk" bs=1 seek=75 conv=notrunc status=none
	img2raw_rejects vmdk "$T/m.vmdk" "newline check failed"
}

@test "vmdk: huge declared sizes are rejected" {
	vmdk "$T/m.vmdk"
	put_le64 "$T/m.vmdk" 12 $((1 << 62))
	img2raw_rejects vmdk "$T/m.vmdk" "^capacity of 4611686018427387904 sectors is beyond the limit of 70368744177664 bytes \\(header at 0xc\\)$"
	vmdk "$T/m.vmdk"	# 32 TiB with 1-sector grains: a 256 MiB GD
	put_le64 "$T/m.vmdk" 12 $((1 << 36))
	put_le64 "$T/m.vmdk" 20 1
	img2raw_rejects vmdk "$T/m.vmdk" "^grain directory of 134217728 entries is larger than the 67108864-byte limit \\(header: capacity, grain size\\)$"
	vmdk "$T/m.vmdk"
	put_le64 "$T/m.vmdk" 36 $((1 << 40))
	img2raw_rejects vmdk "$T/m.vmdk" "^descriptor of 1099511627776 sectors at sector 1 is out of range \\(header at 0x1c\\)$"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	put_le32 "$T/s.vmdk" $((0x10008)) $((0x7fffffff))	# grain 0's size
	img2raw_rejects vmdk "$T/s.vmdk" "^grain marker at 0x10000 declares 2147483647 compressed bytes, more than [0-9]+$"
}

@test "vmdk: tables pointing outside the file are rejected" {
	vmdk "$T/m.vmdk"
	put_le64 "$T/m.vmdk" 56 $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" \
		"^grain directory at sector 2147483392 lies past the end of the image \\(header at 0x38\\)$" \
		"^grain directory at 0xfffffe0000 lies past the end of the image \\(0x[0-9a-f]+\\)$"
	vmdk "$T/m.vmdk"
	gd=$(($(get_le32 "$T/m.vmdk" 56) * 512))
	put_le32 "$T/m.vmdk" $gd $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" "^grain directory entry 0 puts a grain table at sector 2147483392, past the end of the image$" \
		"^grain table 0 at 0xfffffe0000 lies past the end of the image \\(0x[0-9a-f]+\\)$"
	vmdk "$T/m.vmdk"
	gt=$(get_le32 "$T/m.vmdk" $gd)
	put_le32 "$T/m.vmdk" $((gt * 512)) $((0x7fffff00))
	rgt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 48) * 512)))
	put_le32 "$T/m.vmdk" $((rgt * 512)) $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" "^grain 0 at 0xfffffe0000 lies past the end of the image \\(grain table entry\\)$" \
		"^grain at 0xfffffe0000 lies past the end of the image$"
}

@test "vmdk streamOptimized: bad grains and markers are rejected" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	printf 'garbage!' | dd of="$T/s.vmdk" bs=1 seek=$((0x1000c)) conv=notrunc status=none
	img2raw_rejects vmdk "$T/s.vmdk" "^compressed grain at 0x10000 does not inflate"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	put_le64 "$T/s.vmdk" $((0x10200)) 1	# grain 1's LBA
	img2raw_rejects vmdk "$T/s.vmdk" "^grain marker at 0x10200 has LBA 1, not the start of a grain within the capacity$"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	end=$(stat -c %s "$T/w.vmdk")
	put_le32 "$T/w.vmdk" $((end - 1536 + 12)) 9	# footer marker type
	img2raw_rejects vmdk "$T/w.vmdk" "^unknown marker type 9 at 0x[0-9a-f]+$"
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	put_le32 "$T/w.vmdk" $((end - 512 + 12)) 77	# end-of-stream marker type
	expect_reject -i "$T/w.vmdk" 1 vmdk "^unknown marker type 77 at 0x[0-9a-f]+$" img2raw
}

@test "vmdk: text descriptors are rejected, the files they name never opened" {
	cd "$T"
	mkfifo disk-flat.vmdk	# opening it would block: the timeout would fail
	cat > flat.vmdk <<-'EOF'
	# Disk DescriptorFile
	version=1
	CID=fffffffe
	parentCID=ffffffff
	createType="monolithicFlat"

	# Extent description
	RW 9766 FLAT "disk-flat.vmdk" 0
	EOF
	img2raw_rejects vmdk flat.vmdk '^descriptor file \(createType "monolithicFlat"\) names extent files "disk-flat\.vmdk", which are never opened$'
	sed -e 's/monolithicFlat/twoGbMaxExtentSparse/' \
	    -e 's/RW 9766 FLAT "disk-flat.vmdk" 0/RW 4000 SPARSE "disk-s001.vmdk"\nRW 5766 SPARSE "disk-s002.vmdk"/' \
	    flat.vmdk > two.vmdk
	img2raw_rejects vmdk two.vmdk '^descriptor file \(createType "twoGbMaxExtentSparse"\) names extent files "disk-s001\.vmdk", "disk-s002\.vmdk", which are never opened$'
	sed -e 's/monolithicFlat/vmfs/' -e 's|"disk-flat.vmdk"|"../../etc/shadow"|' \
	    flat.vmdk > evil.vmdk
	img2raw_rejects vmdk evil.vmdk 'createType "vmfs".*extent name "\.\./\.\./etc/shadow" is a path'
	sed -e 's|"disk-flat.vmdk"|"/dev/sda"|' flat.vmdk > abs.vmdk
	img2raw_rejects vmdk abs.vmdk 'extent name "/dev/sda" is a path'
}

@test "vmdk: embedded descriptors naming other files or a parent are rejected" {
	vmdk "$T/m.vmdk"
	sed -i 's/createType="monolithicSparse"/createType="twoGbMaxExtentSparse"/' "$T/m.vmdk"
	img2raw_rejects vmdk "$T/m.vmdk" '^embedded descriptor \(createType "twoGbMaxExtentSparse"\) names extent files "m\.vmdk", which are never opened$'
	vmdk "$T/m.vmdk"
	sed -i 's|RW 9766 SPARSE "m.vmdk"|RW 9766 SPARSE "../x/m.vmdk"\nRW 10 ZERO|' "$T/m.vmdk"
	img2raw_rejects vmdk "$T/m.vmdk" 'extent name "\.\./x/m\.vmdk" is a path'
	vmdk "$T/m.vmdk"
	sed -i 's/parentCID=ffffffff/parentCID=12345678/' "$T/m.vmdk"
	img2raw_rejects vmdk "$T/m.vmdk" "names a parent disk"
}

@test "vmdk: in virtual order nothing is parked: no stash file needed" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want" --mem 64K --tmpdir "$T/none"
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want" --mem 64K --tmpdir "$T/none"
	vmdk "$T/m.vmdk"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want" --mem 64K --tmpdir "$T/none"
}

@test "vmdk: truncated images fail cleanly at many points" {
	vmdk "$T/m.vmdk"
	run truncation_check "$T/m.vmdk"
	echo "$output"
	[ "$status" -eq 0 ]
	vmdk "$T/s.vmdk" subformat=streamOptimized
	run truncation_check "$T/s.vmdk"
	echo "$output"
	[ "$status" -eq 0 ]
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	run truncation_check "$T/w.vmdk"
	echo "$output"
	[ "$status" -eq 0 ]
}
