# img2raw: VirtualBox VDI, static and dynamic, against qemu-img.
load helpers
load formats

SIZE=5000000	# not a multiple of the 1 MiB block nor of a sector

setup() {
	make_pattern "$T/disk.raw" $SIZE
}

# vdi IMAGE [OPTIONS]: convert the pattern, and the oracle's raw of it.
vdi() {
	qemu-img convert -f raw -O vdi ${2:+-o "$2"} "$T/disk.raw" "$1"
	qemu-img convert -f vdi -O raw "$1" "$1.want"
}

@test "vdi dynamic: byte-identical to qemu-img, four ways, probed and -f vdi" {
	vdi "$T/d.vdi"
	img2raw_4ways "$T/d.vdi" "$T/d.vdi.want"
	img2raw_4ways "$T/d.vdi" "$T/d.vdi.want" -f vdi
}

@test "vdi static: byte-identical to qemu-img, four ways" {
	vdi "$T/s.vdi" static=on
	[ "$(get_le32 "$T/s.vdi" $((0x4c)))" = 2 ]
	img2raw_4ways "$T/s.vdi" "$T/s.vdi.want"
}

@test "vdi static, sparse on the host: blocks over holes of the file are zeros, not read (file); the same bytes from a pipe" {
	# qemu-img and VirtualBox leave a static VDI's unwritten blocks as
	# holes; the old reader read all 256 MiB of them from the kernel.
	truncate -s 256M "$T/big.raw"
	make_pattern "$T/p" 1048576
	dd if="$T/p" of="$T/big.raw" bs=1M seek=100 conv=notrunc status=none
	qemu-img convert -f raw -O vdi -o static=on "$T/big.raw" "$T/h.vdi"
	fallocate --dig-holes "$T/h.vdi"
	[ "$(du -k "$T/h.vdi" | cut -f1)" -lt 4096 ]
	holes_not_read "$T/h.vdi" "$T/big.raw"
}

@test "vdi: an empty dynamic disk is all zeros" {
	truncate -s 3M "$T/disk.raw"
	vdi "$T/z.vdi"
	img2raw_4ways "$T/z.vdi" "$T/z.vdi.want"
}

@test "vdi: zero blocks (0xfffffffe) read as zeros" {
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" 512 $((0xfffffffe))	# block 0
	cp "$T/d.vdi.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=1M count=1 conv=notrunc status=none
	img2raw_4ways "$T/d.vdi" "$T/want"
}

@test "vdi: blocks stored out of virtual order, from a pipe too" {
	vdi "$T/d.vdi"
	a=$(get_le32 "$T/d.vdi" 512)
	b=$(get_le32 "$T/d.vdi" 516)
	put_le32 "$T/d.vdi" 512 "$b"
	put_le32 "$T/d.vdi" 516 "$a"
	dd if="$T/d.vdi.want" of="$T/want" bs=1M skip=1 count=1 status=none
	dd if="$T/d.vdi.want" of="$T/want" bs=1M seek=1 count=1 conv=notrunc status=none
	dd if="$T/d.vdi.want" of="$T/want" bs=1M skip=2 seek=2 conv=notrunc status=none
	img2raw_4ways "$T/d.vdi" "$T/want"
	img2raw_4ways "$T/d.vdi" "$T/want" --mem 64K	# stash spills to disk
}

@test "vdi: bad signature and version are rejected" {
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x40)) $((0x12345678))
	expect_reject 1 - "^input is not vdi \\(it looks like raw\\)$" img2raw -f vdi "$T/d.vdi"
	expect_reject -i "$T/d.vdi" 1 - "^input is not vdi \\(it looks like raw\\)$" img2raw -f vdi
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x44)) $((0x00020000))
	img2raw_rejects vdi "$T/d.vdi" "unsupported version 2\\.0"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x4c)) 4
	img2raw_rejects vdi "$T/d.vdi" "image type 4"
}

@test "vdi: block size 0, not a power of two, or huge is rejected" {
	for bs in 0 3000000 $((1 << 30)); do
		vdi "$T/d.vdi"
		put_le32 "$T/d.vdi" $((0x178)) $bs
		img2raw_rejects vdi "$T/d.vdi" "block size $bs is not a power of two"
	done
}

@test "vdi: huge declared sizes are rejected" {
	vdi "$T/d.vdi"	# 2^30 blocks: a 4 GiB block map
	put_le32 "$T/d.vdi" $((0x180)) $((1 << 30))
	img2raw_rejects vdi "$T/d.vdi" "block map of 1073741824 blocks"
	vdi "$T/d.vdi"	# disk size 1 PiB with only 5 blocks
	put_le32 "$T/d.vdi" $((0x174)) $((1 << 18))
	img2raw_rejects vdi "$T/d.vdi" "disk size 1125899911842816 exceeds the 5 blocks"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x184)) 1000
	img2raw_rejects vdi "$T/d.vdi" "1000 blocks allocated of only 5"
}

@test "vdi: block map and data offsets outside the file are rejected" {
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x154)) $((0x7ffffe00))
	img2raw_rejects vdi "$T/d.vdi" "data offset 0x400 overlaps the block map"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x158)) $((0x7ffffe00))
	img2raw_rejects vdi "$T/d.vdi" "0x7ffffe00 lies past the end of the image"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x154)) 256
	img2raw_rejects vdi "$T/d.vdi" "block map offset 0x100 or data offset 0x400 is not sector-aligned"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" $((0x154)) 0
	img2raw_rejects vdi "$T/d.vdi" "block map offset 0x0 overlaps the header"
}

@test "vdi: a block map entry outside the file is rejected" {
	vdi "$T/d.vdi"	# 4 blocks in the file; say 5 are allocated
	put_le32 "$T/d.vdi" $((0x184)) 5
	put_le32 "$T/d.vdi" 516 4
	# from a pipe the end is not known in advance: the input ends first
	img2raw_rejects vdi "$T/d.vdi" \
		"^block map entry 1 names host block 4, past the end of the image \\(block map at 0x204\\)$" \
		"^data block at 0x400400: image is truncated$"
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" 516 $((0x10000000))
	img2raw_rejects vdi "$T/d.vdi" "block map entry 1 names host block 268435456, past the 4 allocated blocks"
}

@test "vdi: in virtual order nothing is parked: no stash file needed" {
	vdi "$T/d.vdi"
	img2raw_4ways "$T/d.vdi" "$T/d.vdi.want" --mem 64K --tmpdir "$T/none"
}

@test "vdi: truncated images fail cleanly at many points" {
	vdi "$T/d.vdi"
	run truncation_check "$T/d.vdi" 16
	echo "$output"
	[ "$status" -eq 0 ]
	vdi "$T/s.vdi" static=on
	run truncation_check "$T/s.vdi" 16
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "vdi: two block map entries naming one host block are shared-block, file and pipe" {
	vdi "$T/d.vdi"
	put_le32 "$T/d.vdi" 516 "$(get_le32 "$T/d.vdi" 512)"
	img2raw_rejects vdi "$T/d.vdi" "host block 0 is named by two block map entries, the second 1"
	codes_both "$T/d.vdi" shared-block
}

# The whole-sector rule: qemu gives 512 bytes here too.
@test "vdi: a disk size of 128 bytes is one whole sector, from a file and a pipe" {
	vdi "$T/d.vdi"
	put_le64 "$T/d.vdi" $((0x170)) 128
	sized "$T/d.vdi" 512
	head -c 512 "$T/disk.raw" > "$T/want"
	img2raw_4ways "$T/d.vdi" "$T/want"
	qemu-img convert -f vdi -O raw "$T/d.vdi" "$T/q.raw"
	cmp "$T/want" "$T/q.raw"
}

@test "vdi: imginfo --strict fails every one of 24 cuts, file and pipe alike" {
	vdi "$T/d.vdi"
	cuts_check "$T/d.vdi" 24
	vdi "$T/s.vdi" static=on
	cuts_check "$T/s.vdi" 24
}

@test "vdi: mutated images agree from a file and a pipe, and with qemu-img" {
	vdi "$T/d.vdi"
	run mutants_check vdi "$T/d.vdi" 32
	echo "$output"
	[ "$status" -eq 0 ]
}
