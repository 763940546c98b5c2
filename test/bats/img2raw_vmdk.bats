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

# vmdk_rejects IMAGE TEXT: img2raw exits 1 from a file and from a pipe,
# its one message line saying TEXT (a literal part of it).
vmdk_rejects() {
	img2raw_rejects vmdk "$1" "$(ere "$2")"
}

# vmware_stream IN OUT [raw]: re-lay qemu-img's streamOptimized output the
# way VMware ovftool writes it: gdOffset GD_AT_END in the header, grains,
# then GT markers and tables, GD marker and directory, footer marker and
# footer, end-of-stream marker; an ovftool-style descriptor.  With "raw",
# grains are recompressed as raw deflate (no zlib wrapper); "type4" and
# "unknown" add markers (see vmware_stream.pl).
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

# sparse_footer IN OUT [rgd]: a monolithicSparse extent laid out as VMware
# Workstation writes one with a footer: gdOffset GD_AT_END in the header
# (no RGD), grains first, then the GTs and the GD, a footer marker, the
# footer (the header with the real gdOffset) and an end-of-stream marker.
# With "rgd", the RGD flag and rgdOffset GD_AT_END in the header and a
# redundant GD and GTs before the primary ones.
sparse_footer() {
	perl - "$@" <<'EOF'
use strict;
my ($in, $out, $rgd) = @ARGV;
open(my $fh, '<:raw', $in) or die; local $/; my $d = <$fh>; close $fh;
my ($cap, $grain, $ngte, $rgdat, $gd, $over) = unpack('x12 Q< Q< x16 V Q< Q< Q<', $d);
my $ngts = int((int(($cap + $grain - 1) / $grain) + $ngte - 1) / $ngte);
my $body = $d;
substr($body, $rgdat * 512, ($over - $rgdat) * 512) = "\0" x (($over - $rgdat) * 512);
$body .= "\0" x ((512 - length($body) % 512) % 512);
my %at;
for my $kind ($rgd ? ('rgd', 'gd') : ('gd')) {
	my @newgd;
	for my $g (0 .. $ngts - 1) {
		my $t = unpack('V', substr($d, $gd * 512 + 4 * $g, 4));
		push @newgd, length($body) / 512;
		$body .= substr($d, $t * 512, $ngte * 4);
	}
	$body .= "\0" x ((512 - length($body) % 512) % 512);
	$at{$kind} = length($body) / 512;
	$body .= pack('V*', @newgd);
	$body .= "\0" x ((512 - length($body) % 512) % 512);
}
my $footer = substr($d, 0, 512);
substr($footer, 8, 4) = pack('V', $rgd ? 3 : 1);
substr($footer, 48, 16) = pack('Q< Q<', $at{rgd} // 0, $at{gd});
substr($body, 0, 512) = $footer;
substr($body, 48, 16) = ($rgd ? "\xff" x 8 : pack('Q<', 0)) . "\xff" x 8;
$body .= pack('Q< V V', 1, 0, 3) . "\0" x 496 . $footer . "\0" x 512;
open($fh, '>:raw', $out) or die; print $fh $body; close $fh;
EOF
}

# set_descriptor IMAGE TEXTFILE: the embedded descriptor becomes the text
# of TEXTFILE (zero-padded; it must fit the descriptor's sectors).
set_descriptor() {
	perl - "$1" "$2" <<'EOF'
use strict;
my ($img, $txt) = @ARGV;
open(my $fh, '+<:raw', $img) or die; local $/; my $d = <$fh>;
open(my $th, '<:raw', $txt) or die; my $t = <$th>; close $th;
my ($off, $len) = unpack('x28 Q< Q<', $d);
die "descriptor too long" if length($t) > $len * 512;
seek($fh, $off * 512, 0); print $fh $t . "\0" x ($len * 512 - length $t);
close $fh;
EOF
}

# descriptor_of IMAGE: the embedded descriptor's text.
descriptor_of() {
	dd if="$1" bs=512 skip="$(get_le64 "$1" 28)" count="$(get_le64 "$1" 36)" status=none | tr -d '\0'
}

@test "vmdk monolithicSparse: byte-identical to qemu-img, four ways" {
	vmdk "$T/m.vmdk"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want" -f vmdk
}

@test "vmdk monolithicSparse, sparse on the host: grains over holes of the file are zeros, not read (file); the same bytes from a pipe" {
	# Grains written with zeros (a guest that zeroed its disk), then the
	# file made sparse as cp --sparse or rsync -S leave it: the old reader
	# read all 255 MiB of them from the kernel.
	qemu-img create -q -f vmdk "$T/h.vmdk" 256M
	qemu-io -c "write -P 0 0 255M" -c "write -P 0x5a 100M 1M" "$T/h.vmdk" > /dev/null
	fallocate --dig-holes "$T/h.vmdk"
	[ "$(du -k "$T/h.vmdk" | cut -f1)" -lt 4096 ]
	qemu-img convert -f vmdk -O raw "$T/h.vmdk" "$T/h.want"
	holes_not_read "$T/h.vmdk" "$T/h.want"
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

@test "vmdk streamOptimized: grains out of LBA order: qemu layout and GD at the end four ways; below what a pipe was given: refused into a pipe" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	# swap the one-sector grains 0 and 1 and their grain table entries
	dd if="$T/s.vmdk" of="$T/g0" bs=512 skip=128 count=1 status=none
	dd if="$T/s.vmdk" of="$T/s.vmdk" bs=512 skip=129 seek=128 count=1 conv=notrunc status=none
	dd if="$T/g0" of="$T/s.vmdk" bs=512 seek=129 count=1 conv=notrunc status=none
	for dir in 56 48; do	# the GT and its redundant copy
		gt=$(($(get_le32 "$T/s.vmdk" $(($(get_le64 "$T/s.vmdk" $dir) * 512))) * 512))
		[ "$(get_le32 "$T/s.vmdk" $gt)" = 128 ]
		put_le32 "$T/s.vmdk" $gt 129
		put_le32 "$T/s.vmdk" $((gt + 4)) 128
	done
	# the tables come first: a pipe reads by them, the stash takes the order
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want"
	# the same grain order with the GD at the end: only markers place them;
	# grain 0 comes before anything was promised, and waits to be written
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	qemu-img convert -f vmdk -O raw "$T/w.vmdk" "$T/w.want"
	cmp "$T/w.want" "$T/s.vmdk.want"
	img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want"
	# grains 1 and 3, then 0: two grains in order, so the disk below grain 1
	# went into the pipe as zeros before grain 0 came
	vmdk "$T/r.vmdk" subformat=streamOptimized
	for g in 0 1 3; do
		dd if="$T/r.vmdk" of="$T/g$g" bs=512 skip=$((128 + g - g / 3)) count=1 status=none
	done
	cat "$T/g1" "$T/g3" "$T/g0" | dd of="$T/r.vmdk" bs=512 seek=128 conv=notrunc status=none
	for dir in 56 48; do
		gt=$(($(get_le32 "$T/r.vmdk" $(($(get_le64 "$T/r.vmdk" $dir) * 512))) * 512))
		[ "$(get_le32 "$T/r.vmdk" $((gt + 12)))" = 130 ]
		put_le32 "$T/r.vmdk" $gt 130
		put_le32 "$T/r.vmdk" $((gt + 4)) 128
		put_le32 "$T/r.vmdk" $((gt + 12)) 129
	done
	vmware_stream "$T/r.vmdk" "$T/rw.vmdk"
	qemu-img convert -f vmdk -O raw "$T/rw.vmdk" "$T/rw.want"
	cmp "$T/rw.want" "$T/r.vmdk.want"
	img2raw -o "$T/ff.raw" "$T/rw.vmdk"
	cmp "$T/ff.raw" "$T/r.vmdk.want"
	cat "$T/rw.vmdk" | img2raw -o "$T/pf.raw"
	cmp "$T/pf.raw" "$T/r.vmdk.want"
	expect_reject -i "$T/rw.vmdk" 1 vmdk \
		"^grain marker at 0x[0-9a-f]+ \\(LBA 0\\) comes after grains at higher LBAs, below data already written in order; write the output to a file to read a stream in this order$" \
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
	img2raw_rejects vmdk "$T/cut.vmdk" "^grain [0-9]+ at 0x[0-9a-f]+ lies past the end of the image$"
}

@test "vmdk: an empty disk is all zeros, both subformats" {
	truncate -s 3M "$T/disk.raw"
	vmdk "$T/m.vmdk"
	img2raw_4ways "$T/m.vmdk" "$T/m.vmdk.want"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	img2raw_4ways "$T/s.vmdk" "$T/s.vmdk.want"
}

# GTE 1 is a zero grain when the header's flag bit 2 says so (the spec,
# qemu); without it, it names sector 1: a grain over the descriptor and
# the tables behind it.  qemu reads the descriptor's bytes as data; we
# refuse the overlap, from a file and a pipe.
@test "vmdk: zero-grain entries (GTE 1) read as zeros with the zeroed-grain flag, refused as an overlap without it" {
	vmdk "$T/m.vmdk"
	gt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 56) * 512)))
	put_le32 "$T/m.vmdk" $((gt * 512)) 1	# grain 0
	rgt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 48) * 512)))
	put_le32 "$T/m.vmdk" $((rgt * 512)) 1
	cp "$T/m.vmdk" "$T/nf.vmdk"
	put_le32 "$T/m.vmdk" 8 $(($(get_le32 "$T/m.vmdk" 8) | 4))
	cp "$T/m.vmdk.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=65536 count=1 conv=notrunc status=none
	qemu-img convert -f vmdk -O raw "$T/m.vmdk" "$T/q.raw"
	cmp "$T/q.raw" "$T/want"
	img2raw_4ways "$T/m.vmdk" "$T/want"
	qemu-img convert -f vmdk -O raw "$T/nf.vmdk" "$T/nf.raw"
	[ "$(head -c 21 "$T/nf.raw")" = "# Disk DescriptorFile" ]
	vmdk_rejects "$T/nf.vmdk" "grain 0 at 0x200 overlaps grain table 0"
}

@test "vmdk monolithicSparse: tables after the grains, pipe keeps data in the stash" {
	vmdk "$T/m.vmdk"
	tables_at_end "$T/m.vmdk" "$T/e.vmdk"
	qemu-img convert -f vmdk -O raw "$T/e.vmdk" "$T/e.want"
	cmp "$T/e.want" "$T/m.vmdk.want"
	img2raw_4ways "$T/e.vmdk" "$T/e.want"
	img2raw_4ways "$T/e.vmdk" "$T/e.want" --mem 64K	# spill to $TMPDIR
}

@test "vmdk: a 2040 GiB monolithicSparse (127.5 MiB of grain tables, all present) reads at the default budget, file and pipe" {
	# VMware allows 2 TiB; every GT exists from creation.  The reader
	# keeps the grains they place, not the tables (it refused this with
	# "more than the 67108864-byte limit", and from 600 GiB on with
	# "raise --mem").
	qemu-img create -q -f vmdk "$T/big.vmdk" 2040G
	qemu-io -c "write -P 0x5a 1500G 64k" "$T/big.vmdk" > /dev/null
	head -c 65536 /dev/zero | tr '\0' Z > "$T/want"
	img2raw -o "$T/a.raw" "$T/big.vmdk"
	cat "$T/big.vmdk" | img2raw -o "$T/b.raw"
	for f in "$T/a.raw" "$T/b.raw"; do
		[ "$(stat -c %s "$f")" -eq $((2040 << 30)) ]
		cmp -i 1500G:0 -n 65536 "$f" "$T/want"
		[ "$(du -k "$f" | cut -f1)" -lt 1024 ]
	done
	imginfo --strict "$T/big.vmdk" > /dev/null
	imginfo --strict < "$T/big.vmdk" > /dev/null
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
	img2raw_rejects vmdk "$T/s.vmdk" "^grain marker at 0x10000 declares 2147483647 compressed bytes, not 1 to [0-9]+$"
}

@test "vmdk: tables pointing outside the file are rejected" {
	vmdk "$T/m.vmdk"
	put_le64 "$T/m.vmdk" 56 $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" "^grain directory at 0xfffffe0000 lies past the end of the image$"
	vmdk "$T/m.vmdk"
	gd=$(($(get_le32 "$T/m.vmdk" 56) * 512))
	put_le32 "$T/m.vmdk" $gd $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" "^grain table 0 at 0xfffffe0000 lies past the end of the image$"
	vmdk "$T/m.vmdk"
	gt=$(get_le32 "$T/m.vmdk" $gd)
	put_le32 "$T/m.vmdk" $((gt * 512)) $((0x7fffff00))
	rgt=$(get_le32 "$T/m.vmdk" $(($(get_le32 "$T/m.vmdk" 48) * 512)))
	put_le32 "$T/m.vmdk" $((rgt * 512)) $((0x7fffff00))
	img2raw_rejects vmdk "$T/m.vmdk" "^grain 0 at 0xfffffe0000 lies past the end of the image$"
}

@test "vmdk streamOptimized: bad grains and markers are rejected" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	printf 'garbage!' | dd of="$T/s.vmdk" bs=1 seek=$((0x1000c)) conv=notrunc status=none
	img2raw_rejects vmdk "$T/s.vmdk" "^compressed grain at 0x10000 does not inflate"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	put_le64 "$T/s.vmdk" $((0x10200)) 1	# grain 1's LBA
	img2raw_rejects vmdk "$T/s.vmdk" "^grain marker at 0x10200 has LBA 1, not the start of a grain$"
	vmdk "$T/s.vmdk" subformat=streamOptimized
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	end=$(stat -c %s "$T/w.vmdk")
	# a footer marker of another type is skipped: no footer at all
	put_le32 "$T/w.vmdk" $((end - 1536 + 12)) 9
	vmdk_rejects "$T/w.vmdk" "the stream ends (end-of-stream marker at 0x$(printf %x $((end - 512)))) without the footer"
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	put_le64 "$T/w.vmdk" $((end - 1536)) 2	# footer marker's sectors
	vmdk_rejects "$T/w.vmdk" "footer marker at 0x$(printf %x $((end - 1536))) declares 2 sectors, not 1"
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	# an end-of-stream marker of another type is skipped: the stream is cut
	put_le32 "$T/w.vmdk" $((end - 512 + 12)) 77
	vmdk_rejects "$T/w.vmdk" "marker at 0x$(printf %x "$end")"
}

# Issue 13: vSphere writes markers of type 4 (undocumented; VirtualBox's
# VMDK_MARKER_UNSPECIFIED) now and then.  Before, a pipe refused them
# ("unknown marker type 4"), as it refused any other metadata marker.
@test "vmdk stream: a type-4 marker and a marker of unknown type are skipped, four ways" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	for opt in type4 unknown "type4 unknown"; do
		vmware_stream "$T/s.vmdk" "$T/w.vmdk" $opt
		qemu-img convert -f vmdk -O raw "$T/w.vmdk" "$T/w.want"
		cmp "$T/w.want" "$T/s.vmdk.want"
		img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want" || { echo "$opt"; return 1; }
		run sh -c 'cat "$1" | imginfo --strict -' sh "$T/w.vmdk"
		[ "$status" -eq 0 ] || { echo "$opt: $output"; return 1; }
	done
	# type 4 is one sector whatever its value, as VirtualBox reads it
	vmware_stream "$T/s.vmdk" "$T/w.vmdk" type4
	at=$(grep -obUaP '\x04\x00\x00\x00\x00{496}' "$T/w.vmdk" | head -1 | cut -d: -f1)
	[ "$(get_le32 "$T/w.vmdk" "$at")" = 4 ]
	put_le64 "$T/w.vmdk" $((at - 12)) 7
	img2raw_4ways "$T/w.vmdk" "$T/s.vmdk.want"
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
	img2raw_rejects vmdk flat.vmdk '^descriptor file \(createType "monolithicFlat"\) names extent files "disk-flat\.vmdk", which are never opened \(--extents opens bare names beside the descriptor\)$'
	sed -e 's/monolithicFlat/twoGbMaxExtentSparse/' \
	    -e 's/RW 9766 FLAT "disk-flat.vmdk" 0/RW 4000 SPARSE "disk-s001.vmdk"\nRW 5766 SPARSE "disk-s002.vmdk"/' \
	    flat.vmdk > two.vmdk
	img2raw_rejects vmdk two.vmdk '^descriptor file \(createType "twoGbMaxExtentSparse"\) names extent files "disk-s001\.vmdk", "disk-s002\.vmdk", which are never opened \(--extents opens bare names beside the descriptor\)$'
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
	# qemu-img's stream is cut in imginfo_cuts.bats and test 8 here
	vmdk "$T/s.vmdk" subformat=streamOptimized
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"
	run truncation_check "$T/w.vmdk"
	echo "$output"
	[ "$status" -eq 0 ]
}

# Issue 13: what other producers write in a descriptor reads as qemu's
# does.  Each variant fails on the reader before the tolerant parser
# (trailing blanks and 0x in parentCID: "names a parent disk").
@test "vmdk descriptor: trailing blanks, CRLF, blanks around =, bare and quoted values, comments, DDB keys with or without ddb., unknown keys, four ways" {
	vmdk "$T/m.vmdk"
	descriptor_of "$T/m.vmdk" > "$T/qemu.txt"
	# VMware ovftool/ESXi: a blank ends the header lines and the DDB title
	sed -e 's/^\(version=1\|CID=.*\|parentCID=ffffffff\|createType=.*\|# The Disk Data Base\)$/& /' \
	    "$T/qemu.txt" > "$T/ovftool.txt"
	grep -q '^parentCID=ffffffff $' "$T/ovftool.txt"
	# Windows line ends throughout
	sed -e 's/$/\r/' "$T/qemu.txt" > "$T/crlf.txt"
	# blanks around '=', bare and quoted values, 0x and upper case
	sed -e 's/^parentCID=ffffffff$/  parentCID =  "0xFFFFFFFF"  /' \
	    -e 's/^createType="monolithicSparse"$/createType = monolithicSparse/' \
	    -e 's/^CID=/CID = /' "$T/qemu.txt" > "$T/blanks.txt"
	# vSphere NFC's DDB keys without ddb., comments, keys we do not know
	sed -e 's/^ddb\.//' -e 's/^#DDB$/#DDB\n# a comment = with an equals sign\nnfcSourceCID = "1a2b3c4d"\nisNativeSnapshot="no"\nencoding="UTF-8"\nsomeFutureKey = 42\nthis line is nothing at all/' \
	    "$T/qemu.txt" > "$T/nfc.txt"
	# VirtualBox: key="value" with no blanks, '# The disk Data Base '
	sed -e 's/ = /=/' -e 's/^# The Disk Data Base$/# The disk Data Base /' \
	    "$T/qemu.txt" > "$T/vbox.txt"
	# FreeBSD mkimg: no blank lines, CID 0, an empty extent file name
	sed -e '/^$/d' -e 's/^CID=.*/CID=00000000/' -e 's/SPARSE "m.vmdk"/SPARSE ""/' \
	    "$T/qemu.txt" > "$T/mkimg.txt"
	for v in ovftool crlf blanks nfc vbox mkimg; do
		cp "$T/m.vmdk" "$T/$v.vmdk"
		set_descriptor "$T/$v.vmdk" "$T/$v.txt"
		img2raw_4ways "$T/$v.vmdk" "$T/m.vmdk.want" || { echo "$v"; return 1; }
		run imginfo --strict "$T/$v.vmdk"
		[ "$status" -eq 0 ] || { echo "$v: $output"; return 1; }
	done
}

@test "vmdk descriptor: a parent stays refused however it is written" {
	vmdk "$T/m.vmdk"
	descriptor_of "$T/m.vmdk" > "$T/qemu.txt"
	i=0
	for edit in 's/^parentCID=ffffffff$/parentCID=1234abcd /' \
	    's/^parentCID=ffffffff$/parentCID = "0x1"\r/' \
	    's/^parentCID=ffffffff$/parentCID=fffffffe/' \
	    's/^parentCID=ffffffff$/parentCID=not-hex/' \
	    's/^createType=.*/&\nparentFileNameHint="base.vmdk"/' \
	    's/^createType=.*/&\n parentFileNameHint = \/etc\/passwd /'; do
		i=$((i + 1))
		sed -e "$edit" "$T/qemu.txt" > "$T/p$i.txt"
		cp "$T/m.vmdk" "$T/p$i.vmdk"
		set_descriptor "$T/p$i.vmdk" "$T/p$i.txt"
		vmdk_rejects "$T/p$i.vmdk" "the descriptor names a parent disk" || { echo "$edit"; return 1; }
		run imginfo --strict "$T/p$i.vmdk"
		[ "$status" -eq 1 ]
		[[ "$output" == *"parent: the descriptor names a parent disk"* ]]
	done
}

# Issue 13: the descriptor's createType and the header's flags agree.
# Before, a streamOptimized descriptor over a header without the
# compressed-grain and marker flags was read by its tables as plain
# grains: markers and zlib bytes came out as the disk, exit 0.
@test "vmdk: createType and the header's flags must agree, file and pipe" {
	vmdk "$T/s.vmdk" subformat=streamOptimized
	cp "$T/s.vmdk" "$T/x.vmdk"
	put_le32 "$T/x.vmdk" 8 3		# NL test, RGD: no compression
	vmdk_rejects "$T/x.vmdk" "the descriptor says streamOptimized but the header's flags 0x3 do not say compressed grains with markers (header at 0x8)"
	put_le "$T/x.vmdk" 77 0 2		# and no compressAlgorithm either
	vmdk_rejects "$T/x.vmdk" "the descriptor says streamOptimized but the header's flags 0x3"
	cp "$T/s.vmdk" "$T/x.vmdk"
	put_le32 "$T/x.vmdk" 8 $((0x10003))	# compressed, no markers
	vmdk_rejects "$T/x.vmdk" "the descriptor says streamOptimized but the header's flags 0x10003"
	vmware_stream "$T/s.vmdk" "$T/w.vmdk"	# GD at the end: the same
	put_le32 "$T/w.vmdk" 8 1
	vmdk_rejects "$T/w.vmdk" "the descriptor says streamOptimized but the header's flags 0x1"
	# without a descriptor saying so, the header's own disagreements
	vmdk "$T/m.vmdk"
	put_le "$T/m.vmdk" 77 1 2
	vmdk_rejects "$T/m.vmdk" "compressAlgorithm is deflate but the header's flags 0x3 do not say compressed grains"
	descriptor_of "$T/x.vmdk" | sed 's/streamOptimized/monolithicSparse/' > "$T/d.txt"
	set_descriptor "$T/x.vmdk" "$T/d.txt"
	put_le "$T/x.vmdk" 77 1 2
	vmdk_rejects "$T/x.vmdk" "compressed grains without markers (flags 0x10003) are not supported"
	# the reverse that stays readable: each grain's marker names its LBA
	cp "$T/s.vmdk" "$T/y.vmdk"
	set_descriptor "$T/y.vmdk" "$T/d.txt"
	qemu-img convert -f vmdk -O raw "$T/y.vmdk" "$T/y.want"
	cmp "$T/y.want" "$T/s.vmdk.want"
	img2raw_4ways "$T/y.vmdk" "$T/s.vmdk.want"
	run imginfo "$T/y.vmdk"
	[[ "$output" == *"subformat: streamOptimized"* ]]
}

# Issue 13: VMware Workstation writes monolithicSparse extents whose GD
# comes last, named by a footer.  Before, both ways refused them ("gdOffset
# is GD_AT_END but the image has no compressed grains with markers").
@test "vmdk monolithicSparse with its GD at the end and a footer: four ways, the stash from a pipe" {
	vmdk "$T/m.vmdk"
	for opt in "" rgd; do
		sparse_footer "$T/m.vmdk" "$T/f.vmdk" $opt
		[ "$(get_le64 "$T/f.vmdk" 56)" = 18446744073709551615 ]
		qemu-img convert -f vmdk -O raw "$T/f.vmdk" "$T/f.want"
		cmp "$T/f.want" "$T/m.vmdk.want"
		img2raw_4ways "$T/f.vmdk" "$T/m.vmdk.want" || { echo "$opt"; return 1; }
		img2raw_4ways "$T/f.vmdk" "$T/m.vmdk.want" --mem 64K || { echo "$opt --mem"; return 1; }
		for way in file pipe; do
			if [ $way = file ]; then run imginfo --strict "$T/f.vmdk"
			else run sh -c 'cat "$1" | imginfo --strict -' sh "$T/f.vmdk"; fi
			[ "$status" -eq 0 ] || { echo "$opt $way: $output"; return 1; }
		done
	done
}

@test "vmdk monolithicSparse with a footer: no footer, a bad footer, a footer moving the descriptor, file and pipe" {
	vmdk "$T/m.vmdk"
	sparse_footer "$T/m.vmdk" "$T/f.vmdk"
	end=$(stat -c %s "$T/f.vmdk")
	cp "$T/f.vmdk" "$T/x.vmdk"
	head -c 512 /dev/zero >> "$T/x.vmdk"	# something after the end
	vmdk_rejects "$T/x.vmdk" "gdOffset is GD_AT_END but the image does not end with a footer marker, a footer and an end-of-stream marker"
	head -c $((end - 512)) "$T/f.vmdk" > "$T/x.vmdk"	# no end-of-stream
	vmdk_rejects "$T/x.vmdk" "does not end with a footer marker"
	cp "$T/f.vmdk" "$T/x.vmdk"
	put_le64 "$T/x.vmdk" $((end - 1024 + 56)) $((0x7fffff00))
	vmdk_rejects "$T/x.vmdk" "grain directory at 0xfffffe0000 lies past the end of the image"
	cp "$T/f.vmdk" "$T/x.vmdk"
	put_le64 "$T/x.vmdk" $((end - 1024 + 12)) 12345	# capacity
	vmdk_rejects "$T/x.vmdk" "the footer disagrees with the header"
	cp "$T/f.vmdk" "$T/x.vmdk"
	put_le64 "$T/x.vmdk" $((end - 1024 + 28)) 2	# descriptor offset
	vmdk_rejects "$T/x.vmdk" "the footer moves the descriptor from sector 1 to sector 2"
	run sh -c 'cat "$1" | imginfo -' sh "$T/x.vmdk"
	[[ "$output" == *"vmdk-footer: the footer moves the descriptor"* ]]
}

# gen PRODUCER OUT [gen.py options]: a producer's image and OUT.raw.
gen() {
	local p=$1 out=$2
	shift 2
	python3 "$BATS_TEST_DIRNAME/../producers/gen.py" "$p" "$out" --raw "$out.raw" "$@"
}

# Issue 13: VMware Workstation's default disks are a descriptor and
# sibling extent files.  Before, --extents did not exist: every one was
# refused ("which are never opened").
@test "vmdk split and flat disks: refused by default, read with --extents by img2raw, imgsum and imginfo" {
	cd "$T"
	for p in vmware-workstation-split vmware-flat vmware-split-flat vmware-esxi-vmfs; do
		mkdir "$p" && cd "$p"
		gen "$p" "d.vmdk" --size 20M --extent-sectors 16384
		run img2raw -o out.raw d.vmdk
		[ "$status" -eq 1 ]
		[[ "$output" == *"which are never opened (--extents opens bare names beside the descriptor)" ]]
		run imginfo --strict d.vmdk
		[ "$status" -eq 1 ]
		[[ "$output" == *"extent-file: descriptor file"* ]]
		img2raw --extents -o out.raw d.vmdk
		cmp out.raw d.vmdk.raw
		img2raw --extents d.vmdk | cmp - d.vmdk.raw
		qemu-img convert -f vmdk -O raw d.vmdk q.raw
		cmp q.raw d.vmdk.raw
		[ "$(imgsum --extents d.vmdk | cut -d' ' -f1)" = "$(imgsum d.vmdk.raw | cut -d' ' -f1)" ]
		run imginfo --strict --extents d.vmdk
		[ "$status" -eq 0 ] || { echo "$p: $output"; return 1; }
		[[ "$output" == *"virtual size: "*"($(stat -c %s d.vmdk.raw) bytes)"* ]]
		# the descriptor's own directory, not the working directory
		cd "$T"
		img2raw --extents "$p/d.vmdk" | cmp - "$p/d.vmdk.raw"
	done
	ls vmware-workstation-split/d-s00[12].vmdk vmware-split-flat/d-f00[12].vmdk
}

@test "vmdk --extents: a pipe is a usage error" {
	cd "$T"
	gen vmware-flat d.vmdk --size 1M
	for cmd in "img2raw --extents" "imgsum --extents" "imginfo --extents"; do
		run sh -c "$cmd < d.vmdk"
		[ "$status" -eq 2 ] || { echo "$cmd: $status $output"; return 1; }
		[[ "$output" == *"--extents opens the files a VMDK descriptor names beside it: give the descriptor's path, not a pipe"* ]]
		run sh -c "cat d.vmdk | $cmd -"
		[ "$status" -eq 2 ]
	done
	run sh -c 'cat d.vmdk | img2raw --extents /dev/stdin > /dev/null'	# a path to a pipe
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"give the descriptor's path, not a pipe"* ]]
}

@test "vmdk --extents: only bare names of regular files beside the descriptor, opened read-only" {
	cd "$T"
	gen vmware-flat d.vmdk --size 1M
	sed 's/"d-flat.vmdk"/"x-flat.vmdk"/' d.vmdk > x.vmdk
	expect_no() {	# DESCRIPTOR PATTERN [STATUS]
		run timeout 10 img2raw --extents -o out.raw "$1"
		echo "$status $output"
		[ "$status" -eq "${3:-1}" ] && [[ "$output" == "img2raw: $1: vmdk: "*$2* ]] || return 1
		[ ! -e out.raw ]
	}
	ln -s d-flat.vmdk x-flat.vmdk
	expect_no x.vmdk 'extent "x-flat.vmdk" is a symbolic link, which is never followed'
	rm x-flat.vmdk && mkfifo x-flat.vmdk	# opening it to read would block
	expect_no x.vmdk 'extent "x-flat.vmdk" is not a regular file'
	rm x-flat.vmdk && mkdir x-flat.vmdk
	expect_no x.vmdk 'extent "x-flat.vmdk" is not a regular file'
	rmdir x-flat.vmdk
	expect_no x.vmdk 'extent "x-flat.vmdk" beside the descriptor: No such file or directory' 3
	for name in /etc/passwd ../d-flat.vmdk sub/d-flat.vmdk 'sub\\d-flat.vmdk' ''; do
		sed "s|\"d-flat.vmdk\"|\"$name\"|" d.vmdk > x.vmdk
		expect_no x.vmdk "is not a bare file name beside the descriptor" || { echo "$name"; return 1; }
	done
	run imginfo --extents x.vmdk
	[[ "$output" == *"extent-file: extent name"* ]]
	# the file must hold every sector the descriptor gives the extent
	head -c 1000000 d-flat.vmdk > short-flat.vmdk
	sed 's/"d-flat.vmdk"/"short-flat.vmdk"/' d.vmdk > x.vmdk
	expect_no x.vmdk 'extent "short-flat.vmdk": 2048 sectors from sector 0 need 1048576 bytes; the file has 1000000'
	sed 's/"d-flat.vmdk" 0/"d-flat.vmdk" 1/' d.vmdk > x.vmdk
	expect_no x.vmdk 'need 1049088 bytes; the file has 1048576'
	# types that name devices or other formats, a parent
	for t in VMFSRDM VMFSRAW VMFSSPARSE SESPARSE; do
		sed "s/ FLAT / $t /" d.vmdk > x.vmdk
		expect_no x.vmdk "extent type $t is not read" || return 1
	done
	sed 's/^parentCID=ffffffff/parentCID=1234abcd/' d.vmdk > x.vmdk
	expect_no x.vmdk "the descriptor names a parent disk"
	# a sparse extent must be one and hold what the descriptor says
	gen vmware-workstation-split s.vmdk --size 2M
	sed 's/"s-s001.vmdk"/"d-flat.vmdk"/' s.vmdk > x.vmdk
	expect_no x.vmdk 'extent "d-flat.vmdk": a SPARSE extent is not a hosted sparse extent'
	sed 's/^RW 4096 SPARSE/RW 4000 SPARSE/' s.vmdk > x.vmdk
	grep -q '^RW 4000 SPARSE' x.vmdk
	expect_no x.vmdk 'extent "s-s001.vmdk": holds 4096 sectors, the descriptor says 4000'
	# extents are read-only: nothing changed, nothing created
	sha256sum d-flat.vmdk s-s001.vmdk > before
	img2raw --extents d.vmdk > /dev/null
	img2raw --extents s.vmdk > /dev/null
	sha256sum -c before
}

# same_verdict IMAGE: img2raw and imginfo --strict say the same from a file
# and from a pipe: status, message line, finding codes; the same bytes
# where img2raw reads it.
same_verdict() {
	local img=$1 fst=0 pst=0 ist=0 jst=0
	timeout 20 img2raw -o "$T/sv-f.raw" "$img" 2> "$T/sv-f.err" || fst=$?
	timeout 20 img2raw < <(cat "$img") > "$T/sv-p.raw" 2> "$T/sv-p.err" || pst=$?
	# the same message but for the input's name (the path, or stdin)
	sed -i "s|^img2raw: $img: |img2raw: |" "$T/sv-f.err"
	sed -i "s|^img2raw: stdin: |img2raw: |" "$T/sv-p.err"
	[ "$fst" = "$pst" ] || { echo "img2raw: file $fst, pipe $pst"; cat "$T/sv-f.err" "$T/sv-p.err"; return 1; }
	cmp "$T/sv-f.err" "$T/sv-p.err" || { cat "$T/sv-f.err" "$T/sv-p.err"; return 1; }
	if [ "$fst" = 0 ]; then cmp "$T/sv-f.raw" "$T/sv-p.raw" || return 1; fi
	rm -f "$T/sv-f.raw"
	timeout 20 imginfo --strict --output=json "$img" > "$T/sv-f.json" 2>&1 || ist=$?
	timeout 20 imginfo --strict --output=json < <(cat "$img") > "$T/sv-p.json" 2>&1 || jst=$?
	[ "$ist" = "$jst" ] || { echo "imginfo: file $ist, pipe $jst"; return 1; }
	[ "$ist" = "$fst" ] || { echo "imginfo $ist, img2raw $fst"; return 1; }
	[ "$(grep -o '"code": "[^"]*"' "$T/sv-f.json")" = "$(grep -o '"code": "[^"]*"' "$T/sv-p.json")" ] ||
		{ echo "finding codes differ"; cat "$T/sv-f.json" "$T/sv-p.json"; return 1; }
	echo "$fst $(cat "$T/sv-f.err")"
}

# Issue 13: streams as VMware ovftool/ESXi and VirtualBox export them,
# Workstation's monolithicSparse with a footer, FreeBSD mkimg's sparse
# extent (test/producers): the producer's disk from a file and a pipe, to
# a file and a pipe, as qemu-img reads it; imginfo calls them safe both
# ways.  Cut inside a grain, a grain table, the directory, the footer and
# before the end-of-stream marker, each is refused with the same message
# and finding from a file and a pipe.
@test "vmdk producers: ovftool and VirtualBox streams, Workstation sparse with a footer, mkimg: file and pipe agree, whole and cut" {
	for p in vmware-ovftool-stream virtualbox-ovf-stream vmware-workstation-sparse mkimg-vmdk; do
		gen "$p" "$T/$p.vmdk" --size 4M
		img2raw_4ways "$T/$p.vmdk" "$T/$p.vmdk.raw" || { echo "$p"; return 1; }
		qemu-img convert -f vmdk -O raw "$T/$p.vmdk" "$T/q.raw"
		cmp "$T/q.raw" "$T/$p.vmdk.raw"
		run same_verdict "$T/$p.vmdk"
		[ "$status" -eq 0 ] && [ "$output" = "0 " ] || { echo "$p: $output"; return 1; }
		grep -q '"verdict": "safe"' "$T/sv-f.json" || { echo "$p"; cat "$T/sv-f.json"; return 1; }
	done
	for p in vmware-ovftool-stream vmware-workstation-sparse; do
		size=$(stat -c %s "$T/$p.vmdk")
		for n in $((0x10000 + 100)) $((size / 2)) $((size - 2048 - 100)) $((size - 1024 + 100)) $((size - 512)); do
			head -c "$n" "$T/$p.vmdk" > "$T/cut.vmdk"
			run same_verdict "$T/cut.vmdk"
			echo "$p cut at $n: $output"
			[ "$status" -eq 0 ]
			[[ "$output" == "1 img2raw: vmdk: "* ]]
		done
	done
}
