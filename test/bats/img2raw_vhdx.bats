# img2raw: VHDX, fixed and dynamic, several block sizes, against qemu-img.
load helpers

SIZE=6000000
MIB=1048576
RT1=196608	# region tables at 192 KiB and 256 KiB, headers at 64 and 128 KiB
RT2=262144

setup() {
	make_pattern "$T/disk.raw" $SIZE
}

# vhdx IMAGE OPTIONS: convert the pattern, and the oracle's raw.
vhdx() {
	qemu-img convert -f raw -O vhdx -o "$2" "$T/disk.raw" "$1"
	qemu-img convert -f vhdx -O raw "$1" "$1.want"
}

# crc FILE OFFSET LENGTH: set the CRC-32C at OFFSET+4 of the structure,
# as every VHDX header, region table and log entry has it.
crc() {
	perl -e '
		my ($f, $off, $len) = @ARGV;
		open(my $h, "+<", $f) or die "$f: $!";
		binmode $h;
		seek($h, $off, 0); read($h, my $b, $len) == $len or die "short";
		substr($b, 4, 4) = "\0\0\0\0";
		my @t;
		for my $i (0 .. 255) {
			my $c = $i;
			$c = $c & 1 ? ($c >> 1) ^ 0x82f63b78 : $c >> 1 for 1 .. 8;
			$t[$i] = $c;
		}
		my $crc = 0xffffffff;
		$crc = $t[($crc ^ $_) & 0xff] ^ ($crc >> 8) for unpack("C*", $b);
		seek($h, $off + 4, 0); print $h pack("V", $crc ^ 0xffffffff);
		close $h or die;
	' "$@"
}

# Both headers, fixed up after a change: ONE_HEADER_FIELD VALUE BYTES.
patch_headers() {
	local h
	for h in 65536 131072; do
		put_le "$T/x.vhdx" $((h + $1)) "$2" "$3"
		crc "$T/x.vhdx" $h 4096
	done
}

bat_off() { get_le64 "$T/x.vhdx" $((RT1 + 32)); }	# qemu: BAT entry first
meta_off() { get_le64 "$T/x.vhdx" $((RT1 + 64)); }

@test "vhdx dynamic, block sizes 1M 8M 32M: byte-identical, four ways" {
	for bs in 1M 8M 32M; do
		vhdx "$T/d.vhdx" "subformat=dynamic,block_size=$bs"
		img2raw_4ways "$T/d.vhdx" "$T/d.vhdx.want"
	done
}

@test "vhdx fixed, block sizes 1M 8M 32M: byte-identical, four ways" {
	for bs in 1M 8M 32M; do
		vhdx "$T/f.vhdx" "subformat=fixed,block_size=$bs"
		img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want"
		img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want" -f vhdx
	done
}

@test "vhdx: default block size and a 4 MiB log, four ways" {
	vhdx "$T/d.vhdx" "subformat=dynamic,log_size=4M"
	img2raw_4ways "$T/d.vhdx" "$T/d.vhdx.want"
	vhdx "$T/f.vhdx" "subformat=fixed,log_size=8M,block_size=2M"
	img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want"
}

@test "vhdx: an empty dynamic disk is all zeros" {
	truncate -s 64M "$T/zero.raw"
	qemu-img convert -f raw -O vhdx "$T/zero.raw" "$T/z.vhdx"
	qemu-img convert -f vhdx -O raw "$T/z.vhdx" "$T/z.want"
	img2raw_4ways "$T/z.vhdx" "$T/z.want"
}

@test "vhdx: BAT and metadata after the data, from a pipe via the stash" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	end=$(stat -c %s "$T/x.vhdx")
	bat=$(bat_off) meta=$(meta_off)
	dd if="$T/x.vhdx" of="$T/x.vhdx" bs=$MIB skip=$((bat / MIB)) seek=$((end / MIB)) count=1 conv=notrunc status=none
	dd if="$T/x.vhdx" of="$T/x.vhdx" bs=$MIB skip=$((meta / MIB)) seek=$((end / MIB + 1)) count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/x.vhdx" bs=$MIB seek=$((bat / MIB)) count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/x.vhdx" bs=$MIB seek=$((meta / MIB)) count=1 conv=notrunc status=none
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 32)) "$end" 8
		put_le "$T/x.vhdx" $((rt + 64)) $((end + MIB)) 8
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want"
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want" --mem 1M
}

@test "vhdx: blocks stored out of virtual order" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	bat=$(bat_off)
	a=$(get_le64 "$T/x.vhdx" "$bat")
	b=$(get_le64 "$T/x.vhdx" $((bat + 8)))
	put_le "$T/x.vhdx" "$bat" "$b" 8
	put_le "$T/x.vhdx" $((bat + 8)) "$a" 8
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB skip=1 count=1 status=none
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB seek=1 count=1 conv=notrunc status=none
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB skip=2 seek=2 conv=notrunc status=none
	img2raw_4ways "$T/x.vhdx" "$T/want"
}

@test "vhdx: one bad header or region table: the other copy is used" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((65536 + 4)) 1 4
	put_le "$T/x.vhdx" $((RT1 + 4)) 1 4
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want"
}

@test "vhdx: bad CRCs of both headers are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((65536 + 4)) 1 4
	put_le "$T/x.vhdx" $((131072 + 4)) 1 4
	img2raw_rejects vhdx "$T/x.vhdx" "^neither header is valid \\(signature 'head', version 1 and CRC-32C checked at 0x10000 and 0x20000\\)$"
}

@test "vhdx: bad CRCs of both region tables are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((RT1 + 4)) 1 4
	put_le "$T/x.vhdx" $((RT2 + 4)) 1 4
	img2raw_rejects vhdx "$T/x.vhdx" "^neither region table is valid \\(signature 'regi' and CRC-32C checked at 0x30000 and 0x40000\\)$"
}

@test "vhdx: a BAT entry pointing outside the file is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" $(((1 << 40) | 6)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 at 0x10000000000 lies past the end of the image \\(BAT entry\\)$" \
		"^data at 0x10000000000 lies past the end of the image$"	# the same, from a pipe
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" $(((2 << 20) | 6)) 8	# onto the BAT itself
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 at 0x200000 overlaps the .+ \\(BAT entry\\)$"
}

@test "vhdx: partially present blocks and unknown states are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" 7 1
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 is partially present, which only a differencing disk may be \\(BAT entry state\\)$"
	put_le "$T/x.vhdx" "$(bat_off)" 5 1
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 has unknown state 5 \\(BAT entry state\\)$"
}

@test "vhdx: huge declared sizes are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65544)) $((1 << 50)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^virtual size 1125899906842624 is beyond the limit of 70368744177664 bytes \\(virtual disk size\\)$"
	# within the limit, but far more blocks than the BAT region holds
	put_le "$T/x.vhdx" $(($(meta_off) + 65544)) $((1 << 45)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^BAT region of 1048576 bytes is too small for 4194304 blocks \\(region table BAT length\\)$"
	# a block size that is no power of two
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65536)) 3000000 4
	img2raw_rejects vhdx "$T/x.vhdx" "^block size 3000000 is not a power of two from 1 MiB to 256 MiB \\(file parameters block_size\\)$"
	# a region table entry far past the end
	vhdx "$T/x.vhdx" "subformat=dynamic"
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 32)) $((1 << 50)) 8
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_rejects vhdx "$T/x.vhdx" "^BAT region at 0x4000000000000 lies past the end of the image$" \
		"image is truncated$"	# from a pipe the input ends first
}

@test "vhdx: a differencing disk is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65540)) 2 4
	img2raw_rejects vhdx "$T/x.vhdx" "^differencing disk: its data depends on the parent disk 'unnamed', which is never opened \\(file parameters has_parent\\)$"
}

@test "vhdx: a log that needs replay is rejected; a stale log GUID is not" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	guid=$((0x1122334455667788))
	patch_headers 48 "$guid" 8
	# no entry carries the GUID: nothing to replay
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want"
	# one valid entry at the start of the log (1 MiB)
	log=$(get_le64 "$T/x.vhdx" $((65536 + 72)))
	printf 'loge' | dd of="$T/x.vhdx" bs=1 seek="$log" conv=notrunc status=none
	put_le "$T/x.vhdx" $((log + 8)) 4096 4
	put_le "$T/x.vhdx" $((log + 32)) "$guid" 8
	put_le "$T/x.vhdx" $((log + 40)) 0 8
	crc "$T/x.vhdx" "$log" 4096
	img2raw_rejects vhdx "$T/x.vhdx" "^the log has entries that must be replayed before the image can be read \\(log entry at 0x100000\\)"
}

@test "vhdx: an unknown required region is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 8)) 3 4
		printf 'unknown region!!' | dd of="$T/x.vhdx" bs=1 seek=$((rt + 80)) conv=notrunc status=none
		put_le "$T/x.vhdx" $((rt + 96)) $((8 * MIB)) 8
		put_le "$T/x.vhdx" $((rt + 104)) $MIB 4
		put_le "$T/x.vhdx" $((rt + 108)) 1 4
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_rejects vhdx "$T/x.vhdx" "^unknown required region in the region table \\(entry 2\\)$"
}

@test "vhdx: truncated images fail cleanly at many points" {
	# run: truncation_check expects failing commands not to stop it
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	run truncation_check "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	vhdx "$T/x.vhdx" "subformat=fixed,block_size=1M"
	run truncation_check "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
}
