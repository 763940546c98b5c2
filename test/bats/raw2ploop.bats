# raw2ploop: Parallels/ploop version 2, 1 MiB clusters, every size and
# way, read back by qemu-img (check and compare) and our own img2raw.
load helpers
load writers

setup_file() { writer_fixtures; }

# check_ploop IMAGE PADDED_RAW: every reader gives the disk back.
check_ploop() {
	local img=$1 raw=$2
	[ "$(head -c 16 "$img")" = WithouFreSpacExt ] || { echo "$img: no magic"; return 1; }
	img2raw_back "$img" "$raw" || return 1
	qemu_check parallels "$img" || return 1
	qemu_same parallels "$img" "$raw"
}

@test "every size, four ways" {
	local s
	for s in $WRITER_SIZES; do
		four_ways "$FIX/d$s.raw" raw2ploop || { echo "size $s"; return 1; }
		check_ploop "$T/ff.img" "$FIX/d$s.padded" || { echo "size $s"; return 1; }
	done
}

@test "the header and BAT of a ploop v2 image, as qemu-img lays them out; clusters in virtual order" {
	make_pattern "$T/in.raw" 5000000
	raw2ploop -o "$T/p.hds" "$T/in.raw"
	[ "$(get_le32 "$T/p.hds" 16)" -eq 2 ]		# version
	[ "$(get_le32 "$T/p.hds" 20)" -eq 16 ]		# heads
	[ "$(get_le32 "$T/p.hds" 24)" -eq 19 ]		# cylinders: sectors / 16 / 32
	[ "$(get_le32 "$T/p.hds" 28)" -eq 2048 ]	# sectors a cluster: 1 MiB
	[ "$(get_le32 "$T/p.hds" 32)" -eq 5 ]		# BAT entries
	[ "$(get_le64 "$T/p.hds" 36)" -eq 9766 ]	# sectors
	[ "$(get_le32 "$T/p.hds" 44)" -eq 0 ]		# closed
	[ "$(get_le32 "$T/p.hds" 48)" -eq 2048 ]	# data at 1 MiB
	[ "$(get_le64 "$T/p.hds" 56)" -eq 0 ]		# no format extension
	# clusters 0, 1, 2 and 4 hold data, at host clusters 1 to 4
	[ "$(od -An -tx1 -j 64 -N 20 "$T/p.hds" | tr -d ' \n')" = 0100000002000000030000000000000004000000 ]
	[ "$(stat -c %s "$T/p.hds")" -eq $((5 * 1048576)) ]
	cmp <(tail -c +$((4 * 1048576 + 1)) "$T/p.hds") <(tail -c +$((4 * 1048576 + 1)) "$T/in.raw"; head -c 242880 /dev/zero)
	[ "$(qemu-img info --output=json "$T/p.hds" | sed -n 's/.*"format": "\(.*\)".*/\1/p')" = parallels ]
}

@test "a disk over 2 GiB with data islands, four ways" {
	four_ways_big "$FIX/g.raw" raw2ploop
	[ "$(du -k "$T/ff.img" | cut -f1)" -lt 20000 ]
	qemu_check parallels "$T/ff.img"
	qemu_same parallels "$T/ff.img" "$FIX/g.raw"
	img2raw_back_big "$T/ff.img" "$FIX/g.raw"
}

@test "zero clusters stay unallocated; work scales with data (64 GiB sparse)" {
	truncate -s 64G "$T/big.raw"
	printf 'data' | dd of="$T/big.raw" bs=1 seek=$((40 << 30)) conv=notrunc status=none
	timeout 60 raw2ploop -o "$T/big.hds" "$T/big.raw"
	[ "$(stat -c %s "$T/big.hds")" -eq $((2 * 1048576)) ]
	[ "$(get_le32 "$T/big.hds" $((64 + 4 * 40960)))" -eq 1 ]
	qemu_check parallels "$T/big.hds"
	qemu_same parallels "$T/big.hds" "$T/big.raw"
	img2raw_back_big "$T/big.hds" "$T/big.raw"
}

@test "the same bytes on every run" {
	raw2ploop -o "$T/1.hds" "$FIX/d5000000.raw"
	raw2ploop -o "$T/2.hds" "$FIX/d5000000.raw"
	cmp "$T/1.hds" "$T/2.hds"
}

@test "any image goes in: a qcow2, a VHDX and a VMDK give the raw's ploop image" {
	local f
	make_pattern "$T/src.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vhdx "$T/src.raw" "$T/in.vhdx"
	qemu-img convert -f raw -O vmdk "$T/src.raw" "$T/in.vmdk"
	raw2ploop -o "$T/want.hds" "$T/src.raw"
	for f in in.qcow2 in.vhdx in.vmdk; do
		(set -o pipefail; raw2ploop "$T/$f" | cmp - "$T/want.hds")
		(set -o pipefail; raw2ploop < <(cat "$T/$f") | cmp - "$T/want.hds")
	done
}

@test "a disk larger than 16 TiB (a BAT our reader reads) is refused before anything is written" {
	run raw2ploop --size 17T -o "$T/big.hds" "$FIX/d1.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"larger than 17592186044416 bytes, the most ploop can hold here"* ]]
	[ ! -e "$T/big.hds" ]
	[ -z "$(raw2ploop --size 17T "$FIX/d1.raw" 2> /dev/null)" ]
}

@test "into a pipe, the image is planned: two passes over a file, the store for a pipe" {
	mkdir "$T/tmp"
	run sh -c 'raw2ploop -v "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/a.hds"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, two passes over the input"* ]]
	run sh -c 'cat "$1" | raw2ploop -v --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$FIX/d5000000.raw" "$T/tmp" "$T/b.hds"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, data parked in the store"* ]]
	[[ "$output" != *"temporary file 0 B"* ]]
	[ -z "$(ls -A "$T/tmp")" ]
	cmp "$T/a.hds" "$T/b.hds"
}

@test "failures: no output file, write errors exit 3, usage errors exit 2" {
	run raw2ploop -o "$T/x.hds" "$T/missing.raw"
	[ "$status" -eq 3 ]
	[ ! -e "$T/x.hds" ]
	run sh -c 'raw2ploop "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"write error"* ]]
	run raw2ploop -s dynamic "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2ploop "$FIX/d1.raw" "$FIX/d1.raw"
	[ "$status" -eq 2 ]
}
