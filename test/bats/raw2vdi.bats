# raw2vdi: dynamic and static, every size and way, read back by qemu-img
# (check and compare) and our own img2raw.
load helpers
load writers

setup_file() { writer_fixtures; }

# check_vdi IMAGE PADDED_RAW: every reader gives the disk back.
check_vdi() {
	local img=$1 raw=$2
	[ "$(get_le32 "$img" 64)" -eq $((0xbeda107f)) ] || { echo "$img: no signature"; return 1; }
	img2raw_back "$img" "$raw" || return 1
	qemu_check vdi "$img" || return 1
	qemu_same vdi "$img" "$raw"
}

# matrix OPTIONS...: each size, four ways, then every reader.
matrix() {
	local s
	for s in $WRITER_SIZES; do
		four_ways "$FIX/d$s.raw" raw2vdi "$@" ||
			{ echo "size $s: raw2vdi $*"; return 1; }
		check_vdi "$T/ff.img" "$FIX/d$s.padded" ||
			{ echo "size $s: raw2vdi $*"; return 1; }
	done
}

@test "dynamic, the default" { matrix; }
@test "static" { matrix -s static; }
@test "-s fixed is static" {
	raw2vdi -s fixed -o "$T/f.vdi" "$FIX/d65541.raw"
	raw2vdi -s static -o "$T/s.vdi" "$FIX/d65541.raw"
	cmp "$T/f.vdi" "$T/s.vdi"
}

# hdr FILE OFFSET BYTES: a little-endian header field.
hdr() { get_le "$1" "$2" "$3"; }

@test "a VDI 1.1 header laid out as VirtualBox lays it out; blocks in virtual order" {
	local i
	make_pattern "$T/in.raw" 5000000
	raw2vdi -o "$T/d.vdi" "$T/in.raw"
	[ "$(head -c 64 "$T/d.vdi" | tr -d '\0')" = "<<< imgpipe VM Virtual Disk Image >>>" ]
	[ "$(hdr "$T/d.vdi" $((0x44)) 4)" -eq $((0x00010001)) ]	# version 1.1
	[ "$(hdr "$T/d.vdi" $((0x48)) 4)" -eq 400 ]		# header size
	[ "$(hdr "$T/d.vdi" $((0x4c)) 4)" -eq 1 ]		# dynamic
	[ "$(hdr "$T/d.vdi" $((0x154)) 4)" -eq 1048576 ]	# block map
	[ "$(hdr "$T/d.vdi" $((0x158)) 4)" -eq 2097152 ]	# data
	[ "$(hdr "$T/d.vdi" $((0x168)) 4)" -eq 512 ]		# sector size
	[ "$(hdr "$T/d.vdi" $((0x170)) 8)" -eq 5000192 ]	# disk size
	[ "$(hdr "$T/d.vdi" $((0x178)) 4)" -eq 1048576 ]	# block size
	[ "$(hdr "$T/d.vdi" $((0x180)) 4)" -eq 5 ]		# blocks
	[ "$(hdr "$T/d.vdi" $((0x184)) 4)" -eq 4 ]		# allocated
	[ "$(od -An -tx1 -j $((0x188)) -N 16 "$T/d.vdi" | tr -d ' \n0')" != "" ]	# creation UUID
	[ "$(od -An -tx1 -j $((0x198)) -N 16 "$T/d.vdi" | tr -d ' \n0')" != "" ]	# modification UUID
	[ "$(od -An -v -tx1 -j $((0x1a8)) -N 32 "$T/d.vdi" | tr -d ' \n0')" = "" ]	# no parent
	# blocks 0, 1, 2 and 4 hold data (3 is free), host blocks 0 to 3
	[ "$(od -An -tx1 -j 1048576 -N 20 "$T/d.vdi" | tr -d ' \n')" = 000000000100000002000000ffffffff03000000 ]
	[ "$(stat -c %s "$T/d.vdi")" -eq $((6 * 1048576)) ]
	# static: every block, in place
	raw2vdi -s static -o "$T/s.vdi" "$T/in.raw"
	[ "$(hdr "$T/s.vdi" $((0x4c)) 4)" -eq 2 ]
	[ "$(hdr "$T/s.vdi" $((0x184)) 4)" -eq 5 ]
}

@test "blocks without data are free; a block map over many blocks" {
	truncate -s 3G "$T/in.raw"
	printf 'b' | dd of="$T/in.raw" bs=1 seek=$((2000 << 20)) conv=notrunc status=none
	(set -o pipefail; raw2vdi "$T/in.raw" | cat > "$T/d.vdi")
	[ "$(hdr "$T/d.vdi" $((0x158)) 4)" -eq $((2 * 1048576)) ]	# 12 KiB map
	[ "$(hdr "$T/d.vdi" $((0x184)) 4)" -eq 1 ]
	[ "$(hdr "$T/d.vdi" 1048576 4)" -eq $((0xffffffff)) ]
	[ "$(hdr "$T/d.vdi" $((1048576 + 4 * 2000)) 4)" -eq 0 ]
	[ "$(stat -c %s "$T/d.vdi")" -eq $((3 * 1048576)) ]
	qemu_check vdi "$T/d.vdi"
	qemu_same vdi "$T/d.vdi" "$T/in.raw"
}

@test "a disk over 2 GiB with data islands, dynamic and static, four ways" {
	local s
	for s in dynamic static; do
		four_ways_big "$FIX/g.raw" raw2vdi -s $s || { echo "$s"; return 1; }
		[ "$(du -k "$T/ff.img" | cut -f1)" -lt 20000 ]
		qemu_check vdi "$T/ff.img"
		qemu_same vdi "$T/ff.img" "$FIX/g.raw"
		img2raw_back_big "$T/ff.img" "$FIX/g.raw"
	done
}

@test "zero blocks stay unallocated; work scales with data (64 GiB sparse)" {
	truncate -s 64G "$T/big.raw"
	printf 'data' | dd of="$T/big.raw" bs=1 seek=$((40 << 30)) conv=notrunc status=none
	timeout 60 raw2vdi -o "$T/big.vdi" "$T/big.raw"
	[ "$(stat -c %s "$T/big.vdi")" -eq $((2 * 1048576 + 1048576)) ]
	timeout 60 raw2vdi -s static -o "$T/bigs.vdi" "$T/big.raw"
	[ "$(du -k "$T/bigs.vdi" | cut -f1)" -lt 5000 ]
	qemu_same vdi "$T/big.vdi" "$T/big.raw"
	img2raw_back_big "$T/big.vdi" "$T/big.raw"
	# a static image is its data after offData: the 4 bytes at 40 GiB
	# (reading 64 GiB back would cost the suite's whole budget; the
	# islands test reads static images back)
	[ "$(dd if="$T/bigs.vdi" bs=1 skip=$(($(get_le32 "$T/bigs.vdi" 344) + (40 << 30))) count=4 status=none)" = data ]
}

@test "the same bytes on every run; --uuid sets the creation UUID" {
	raw2vdi -o "$T/1.vdi" "$FIX/d5000000.raw"
	raw2vdi -o "$T/2.vdi" "$FIX/d5000000.raw"
	cmp "$T/1.vdi" "$T/2.vdi"
	raw2vdi --uuid 0123abcd-4567-89ab-cdef-0123456789ab -o "$T/u.vdi" "$FIX/d5000000.raw"
	# RTUUID: its first three fields little-endian
	[ "$(od -An -tx1 -j $((0x188)) -N 16 "$T/u.vdi" | tr -d ' \n')" = cdab23016745ab89cdef0123456789ab ]
	[ "$(qemu-img info --output=json "$T/u.vdi" | tr -d ' \n' | grep -o '"virtual-size":[0-9]*')" = '"virtual-size":5000192' ]
	# another disk, other UUIDs
	raw2vdi -o "$T/3.vdi" "$FIX/d65541.raw"
	[ "$(od -An -tx1 -j $((0x188)) -N 32 "$T/1.vdi")" != "$(od -An -tx1 -j $((0x188)) -N 32 "$T/3.vdi")" ]
}

@test "any image goes in: a qcow2, a VHDX and a VMDK give the raw's VDI" {
	local f
	make_pattern "$T/src.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vhdx "$T/src.raw" "$T/in.vhdx"
	qemu-img convert -f raw -O vmdk "$T/src.raw" "$T/in.vmdk"
	raw2vdi -o "$T/want.vdi" "$T/src.raw"
	for f in in.qcow2 in.vhdx in.vmdk; do
		(set -o pipefail; raw2vdi "$T/$f" | cmp - "$T/want.vdi")
		(set -o pipefail; raw2vdi < <(cat "$T/$f") | cmp - "$T/want.vdi")
	done
}

@test "a disk larger than 16 TiB (a block map our reader reads) is refused before anything is written" {
	run raw2vdi --size 17T -o "$T/big.vdi" "$FIX/d1.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"larger than 17592186044416 bytes, the most vdi can hold here"* ]]
	[ ! -e "$T/big.vdi" ]
	[ -z "$(raw2vdi --size 17T "$FIX/d1.raw" 2> /dev/null)" ]
	# an input image whose disk is too large (a 17 TiB raw file is more
	# than ext4 holds; a qcow2 of that size is a few KiB)
	qemu-img create -q -f qcow2 "$T/huge.qcow2" 17T
	run raw2vdi -o "$T/big.vdi" "$T/huge.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"larger than 17592186044416 bytes, the most vdi can hold here"* ]]
	[ ! -e "$T/big.vdi" ]
}

@test "into a pipe, a dynamic image is planned: two passes over a file, the store for a pipe" {
	mkdir "$T/tmp"
	run sh -c 'raw2vdi -v "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/a.vdi"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, two passes over the input"* ]]
	run sh -c 'cat "$1" | raw2vdi -v --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$FIX/d5000000.raw" "$T/tmp" "$T/b.vdi"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, data parked in the store"* ]]
	[[ "$output" != *"temporary file 0 B"* ]]
	[ -z "$(ls -A "$T/tmp")" ]
	cmp "$T/a.vdi" "$T/b.vdi"
	run sh -c 'raw2vdi -v -s static "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/c.vdi"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: straight through"* ]]
}

@test "failures: no output file, write errors exit 3, usage errors exit 2" {
	run raw2vdi -o "$T/x.vdi" "$T/missing.raw"
	[ "$status" -eq 3 ]
	[ ! -e "$T/x.vdi" ]
	run sh -c 'raw2vdi "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"write error"* ]]
	run raw2vdi -s sparse "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vdi --uuid 0123abcd-4567-89ab-cdef-0123456789a "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vdi "$FIX/d1.raw" "$FIX/d1.raw"
	[ "$status" -eq 2 ]
}
