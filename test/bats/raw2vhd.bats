# raw2vhd: fixed, --azure and dynamic, every size and way, read back by
# three readers written by different people: qemu-img (compare; it has no
# check for VHD), libyal's vhdiinfo and pyvhdi, and our own img2raw.
load helpers
load writers

setup_file() { writer_fixtures; }

# footer IMAGE OFFSET BYTES: a big-endian field of the footer (the last
# 512 bytes).
footer() {
	get_be "$1" $(($(stat -c %s "$1") - 512 + $2)) "$3"
}

# chs_bytes IMAGE: the size its CHS geometry gives, what qemu-img 7.2
# sizes a disk by when its creator is not one it knows.
chs_bytes() {
	echo $(($(footer "$1" 56 2) * $(footer "$1" 58 1) * $(footer "$1" 59 1) * 512))
}

# footer_checksum_ok IMAGE: the one's complement of the byte sum of the
# footer, the checksum field (64..67) left out.
footer_checksum_ok() {
	local sum
	sum=$(tail -c 512 "$1" | od -An -v -tu1 | tr -s ' ' '\n' |
		awk 'NF { if (n < 64 || n > 67) s += $1; n++ } END { print s }')
	[ "$(footer "$1" 64 4)" -eq $(((~sum) & 0xffffffff)) ]
}

# check_vhd IMAGE PADDED_RAW TYPE: the footer, then every reader.  qemu-img
# sees the disk cut to its CHS size (raw2vhd(1), CAVEATS), and the whole
# of it when told to size it by current_size.  No reader but ours opens an
# empty fixed disk (its footer alone), and libyal none that is empty.
check_vhd() {
	local img=$1 raw=$2 type=$3 size chs
	size=$(stat -c %s "$raw")
	[ "$(tail -c 512 "$img" | head -c 8)" = conectix ] || { echo "$img: no footer"; return 1; }
	[ "$(footer "$img" 60 4)" -eq "$type" ] || { echo "$img: type"; return 1; }
	[ "$(footer "$img" 48 8)" -eq "$size" ] || { echo "$img: current_size"; return 1; }
	[ "$(tail -c 512 "$img" | head -c 32 | tail -c 4)" = imgp ] || { echo "$img: creator"; return 1; }
	footer_checksum_ok "$img" || { echo "$img: footer checksum"; return 1; }
	img2raw_back "$img" "$raw" || return 1
	[ "$size" -gt 0 ] || [ "$type" -eq 3 ] || return 0
	qemu-img compare -q --image-opts "driver=raw,file.filename=$raw" \
		"driver=vpc,force_size_calc=current_size,file.filename=$img" ||
		{ echo "$img: qemu-img compare (current_size) differs"; return 1; }
	chs=$(chs_bytes "$img")
	[ "$(qemu-img info -f vpc --output=json "$img" |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" -eq "$chs" ] ||
		{ echo "$img: qemu-img does not size it by CHS"; return 1; }
	head -c "$chs" "$raw" > "$T/chs.raw"
	qemu_same vpc "$img" "$T/chs.raw" || return 1
	[ "$size" -gt 0 ] || return 0
	yal_same "$img" "$raw"
}

# matrix TYPE OPTIONS...: each size, four ways, then every reader.
matrix() {
	local type=$1 s
	shift
	for s in $WRITER_SIZES; do
		four_ways "$FIX/d$s.raw" raw2vhd "$@" ||
			{ echo "size $s: raw2vhd $*"; return 1; }
		check_vhd "$T/ff.img" "$FIX/d$s.padded" "$type" ||
			{ echo "size $s: raw2vhd $*"; return 1; }
	done
}

@test "fixed, the default" { matrix 2; }
@test "dynamic, 2 MiB blocks" { matrix 3 -s dynamic; }
@test "dynamic, 512 KiB blocks" { WRITER_SIZES=5000000 matrix 3 -s dynamic --block-size 512K; }

@test "dynamic: footer copy, dynamic header, BAT, blocks of bitmap and data, footer" {
	local bat
	make_pattern "$T/in.raw" 5000000
	raw2vhd -s dynamic -o "$T/d.vhd" "$T/in.raw"
	# the footer copy at 0 is the footer at the end
	cmp <(head -c 512 "$T/d.vhd") <(tail -c 512 "$T/d.vhd")
	[ "$(get_be64 "$T/d.vhd" 16)" -eq 512 ]		# data offset: the header
	[ "$(head -c 520 "$T/d.vhd" | tail -c 8)" = cxsparse ]
	[ "$(get_be64 "$T/d.vhd" $((512 + 16)))" -eq 1536 ]	# the BAT
	[ "$(get_be32 "$T/d.vhd" $((512 + 28)))" -eq 3 ]	# entries
	[ "$(get_be32 "$T/d.vhd" $((512 + 32)))" -eq 2097152 ]	# block size
	# three blocks with data, in order, each a bitmap of ones then data
	bat=$(od -An -tx1 -j 1536 -N 12 "$T/d.vhd" | tr -d ' \n')
	[ "$bat" = 000000040000100500002006 ]
	[ "$(od -An -v -tx1 -j 2048 -N 512 "$T/d.vhd" | tr -d ' \nf')" = "" ]
	cmp <(tail -c +$((2048 + 512 + 1)) "$T/d.vhd" | head -c 2097152) \
		<(head -c 2097152 "$T/in.raw")
	[ "$(stat -c %s "$T/d.vhd")" -eq $((2048 + 3 * (512 + 2097152) + 512)) ]
}

@test "--azure: fixed, size a multiple of 1 MiB, exact current_size, valid checksum; stderr says so" {
	local size
	run raw2vhd --azure -o "$T/a.vhd" "$FIX/d5000000.raw"
	[ "$status" -eq 0 ]
	[ "$output" = "raw2vhd: virtual size 5000000 rounded up to 5242880 (a multiple of 1 MiB, as Azure requires)" ]
	size=$(($(stat -c %s "$T/a.vhd") - 512))
	[ $((size % 1048576)) -eq 0 ]
	[ "$size" -eq 5242880 ]
	[ "$(footer "$T/a.vhd" 48 8)" -eq "$size" ]	# current_size
	[ "$(footer "$T/a.vhd" 40 8)" -eq "$size" ]	# original_size
	[ "$(footer "$T/a.vhd" 60 4)" -eq 2 ]		# fixed
	[ "$(footer "$T/a.vhd" 16 8)" -eq -1 ]		# no data offset
	footer_checksum_ok "$T/a.vhd"
	# CHS by the specification's algorithm: 10240 sectors: 17 sectors
	# per track, 4 heads, 150 cylinders
	[ "$(footer "$T/a.vhd" 56 2)/$(footer "$T/a.vhd" 58 1)/$(footer "$T/a.vhd" 59 1)" = 150/4/17 ]
	cp "$FIX/d5000000.raw" "$T/want.raw"
	truncate -s 5242880 "$T/want.raw"
	check_vhd "$T/a.vhd" "$T/want.raw" 2
	four_ways "$FIX/d5000000.raw" raw2vhd --azure
	cmp "$T/ff.img" "$T/a.vhd"
	# a size already a multiple of 1 MiB is kept, and nothing is said
	head -c 3145728 "$FIX/d5000000.raw" > "$T/3m.raw"
	run raw2vhd --azure -o "$T/b.vhd" "$T/3m.raw"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(stat -c %s "$T/b.vhd")" -eq $((3145728 + 512)) ]
}

@test "CHS geometry per the specification's appendix" {
	local size want
	# sizes in sectors and the geometry the appendix's algorithm gives
	# (5 GiB: 10402/16/63, as in the footer of a VHD exported from Azure
	# that qemu's commit 558d8eb7f3 quotes); at and above 65535*16*255
	# sectors, the maximum
	for want in 10240:150/4/17 2097152:2080/16/63 10485760:10402/16/63 \
		266338304:65278/16/255 267382800:65535/16/255 \
		4278190080:65535/16/255; do
		size=${want%%:*}
		truncate -s $((size * 512)) "$T/z.raw"
		raw2vhd -o "$T/z.vhd" "$T/z.raw"
		[ "$(footer "$T/z.vhd" 56 2)/$(footer "$T/z.vhd" 58 1)/$(footer "$T/z.vhd" 59 1)" = "${want#*:}" ] ||
			{ echo "$size sectors: $(footer "$T/z.vhd" 56 2)/$(footer "$T/z.vhd" 58 1)/$(footer "$T/z.vhd" 59 1)"; return 1; }
	done
}

@test "a disk over 2 GiB with data islands, fixed and dynamic, four ways" {
	local s
	for s in fixed dynamic; do
		four_ways_big "$FIX/g.raw" raw2vhd -s $s || { echo "$s"; return 1; }
		[ "$(du -k "$T/ff.img" | cut -f1)" -lt 20000 ]
		qemu-img compare -q --image-opts "driver=raw,file.filename=$FIX/g.raw" \
			"driver=vpc,force_size_calc=current_size,file.filename=$T/ff.img"
		img2raw_back_big "$T/ff.img" "$FIX/g.raw"
		yal_same_big "$T/ff.img" "$FIX/g.raw"
	done
}

@test "zero blocks stay unallocated; work scales with data (64 GiB sparse)" {
	truncate -s 64G "$T/big.raw"
	printf 'data' | dd of="$T/big.raw" bs=1 seek=$((40 << 30)) conv=notrunc status=none
	timeout 60 raw2vhd -s dynamic -o "$T/big.vhd" "$T/big.raw"
	[ "$(stat -c %s "$T/big.vhd")" -eq $((1536 + 32768 * 4 + 512 + 2097152 + 512)) ]
	timeout 60 raw2vhd -o "$T/bigf.vhd" "$T/big.raw"
	[ "$(du -k "$T/bigf.vhd" | cut -f1)" -lt 100 ]
	img2raw_back_big "$T/big.vhd" "$T/big.raw"
	# a fixed disk is the data: the 4 bytes at 40 GiB (reading 64 GiB
	# back would cost the suite's whole budget; the islands test reads
	# fixed disks back)
	[ "$(dd if="$T/bigf.vhd" bs=1 skip=$((40 << 30)) count=4 status=none)" = data ]
	[ "$(stat -c %s "$T/bigf.vhd")" -eq $(((64 << 30) + 512)) ]
}

@test "the same bytes on every run; --uuid sets the footer's UUID" {
	raw2vhd -s dynamic -o "$T/1.vhd" "$FIX/d5000000.raw"
	raw2vhd -s dynamic -o "$T/2.vhd" "$FIX/d5000000.raw"
	cmp "$T/1.vhd" "$T/2.vhd"
	[ "$(footer "$T/1.vhd" 24 4)" -eq 0 ]	# timestamp: no clock
	raw2vhd -s dynamic --uuid 0123abcd-4567-89ab-cdef-0123456789AB \
		-o "$T/u.vhd" "$FIX/d5000000.raw"
	[ "$(tail -c 512 "$T/u.vhd" | od -An -tx1 -j 68 -N 16 | tr -d ' \n')" = 0123abcd456789abcdef0123456789ab ]
	cmp <(head -c 512 "$T/u.vhd") <(tail -c 512 "$T/u.vhd")
	# another size, another UUID
	raw2vhd -s dynamic -o "$T/3.vhd" "$FIX/d65541.raw"
	[ "$(tail -c 512 "$T/1.vhd" | od -An -tx1 -j 68 -N 16)" != "$(tail -c 512 "$T/3.vhd" | od -An -tx1 -j 68 -N 16)" ]
}

@test "any image goes in: a qcow2, a VHDX and a VMDK give the raw's VHD" {
	local f s
	make_pattern "$T/src.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vhdx "$T/src.raw" "$T/in.vhdx"
	qemu-img convert -f raw -O vmdk "$T/src.raw" "$T/in.vmdk"
	for s in fixed dynamic; do
		raw2vhd -s $s -o "$T/want.vhd" "$T/src.raw"
		for f in in.qcow2 in.vhdx in.vmdk; do
			(set -o pipefail; raw2vhd -s $s "$T/$f" | cmp - "$T/want.vhd")
			(set -o pipefail; raw2vhd -s $s < <(cat "$T/$f") | cmp - "$T/want.vhd")
		done
	done
}

@test "a size that is not a multiple of 512 is rounded up, and stderr says so" {
	run raw2vhd -s dynamic -o "$T/x.vhd" "$FIX/d65541.raw"
	[ "$status" -eq 0 ]
	[ "$output" = "raw2vhd: virtual size 65541 rounded up to 66048 (a multiple of 512 bytes)" ]
	run raw2vhd --azure -o "$T/a.vhd" "$FIX/d65541.raw"
	[ "$status" -eq 0 ]
	[ "$output" = "raw2vhd: virtual size 65541 rounded up to 1048576 (a multiple of 1 MiB, as Azure requires)" ]
}

@test "a disk larger than 2040 GiB is refused before anything is written" {
	local s
	truncate -s 2041G "$T/huge.raw"
	for s in fixed dynamic; do
		run raw2vhd -s $s -o "$T/big.vhd" "$T/huge.raw"
		[ "$status" -eq 1 ]
		[[ "$output" == *"larger than 2190433320960 bytes, the most vhd can hold"* ]]
		[ ! -e "$T/big.vhd" ]
		run raw2vhd -s $s --size 2041G "$FIX/d1.raw"
		[ "$status" -eq 1 ]
		[ -z "$(raw2vhd -s $s --size 2041G "$FIX/d1.raw" 2> /dev/null)" ]
	done
	# the largest is taken
	run raw2vhd -s dynamic --size 2040G -o "$T/max.vhd" "$FIX/d1.raw"
	[ "$status" -eq 0 ]
	[ "$(footer "$T/max.vhd" 48 8)" -eq 2190433320960 ]
}

@test "into a pipe, a dynamic disk is planned: two passes over a file, the store for a pipe" {
	mkdir "$T/tmp"
	run sh -c 'raw2vhd -v -s dynamic "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/a.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, two passes over the input"* ]]
	run sh -c 'cat "$1" | raw2vhd -v -s dynamic --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$FIX/d5000000.raw" "$T/tmp" "$T/b.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, data parked in the store"* ]]
	[[ "$output" != *"temporary file 0 B"* ]]
	[ -z "$(ls -A "$T/tmp")" ]
	cmp "$T/a.vhd" "$T/b.vhd"
	# a fixed disk goes straight through, even from a pipe
	run sh -c 'cat "$1" | raw2vhd -v | cat > "$2"' sh "$FIX/d5000000.raw" "$T/c.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: straight through"* ]]
	[[ "$output" == *"stash peak memory 0 B"* ]]
}

@test "a fixed VHD, a fixed VHDX, a static VDI: the disk placed as img2raw places it, a raw file's data runs copied whole, holes kept; the same bytes every way" {
	local p
	make_islands "$T/in.raw"
	for p in raw2vhd "raw2vhdx -s fixed" "raw2vdi -s static"; do
		rm -f "$T"/*.img
		run $p -v -o "$T/k.img" "$T/in.raw"
		[ "$status" -eq 0 ] || { echo "$p: $output"; return 1; }
		[[ "$output" == *"layout: straight through, the data runs copied whole"* ]]
		[ "$(du -k "$T/k.img" | cut -f1)" -lt 8000 ]
		img2raw -o "$T/back.raw" "$T/k.img"
		cmp "$T/in.raw" "$T/back.raw"
		# from a pipe (the size given: a VHDX's or VDI's tables come first)
		run sh -c 'cat "$1/in.raw" | $2 -v --size 40M -o "$1/p.img"' sh "$T" "$p"
		[ "$status" -eq 0 ] || { echo "$p: $output"; return 1; }
		[[ "$output" == *"layout: straight through, the disk in place"* ]]
		cmp "$T/k.img" "$T/p.img"
		[ "$(du -k "$T/p.img" | cut -f1)" -lt 8000 ]
		# into a pipe, from the file and from a pipe
		run bash -c 'set -o pipefail; $2 "$1/in.raw" | cat > "$1/s.img"' sh "$T" "$p"
		[ "$status" -eq 0 ]
		cmp "$T/k.img" "$T/s.img"
		run bash -c 'set -o pipefail; cat "$1/in.raw" | $2 --size 40M | cat > "$1/t.img"' sh "$T" "$p"
		[ "$status" -eq 0 ]
		cmp "$T/k.img" "$T/t.img"
	done
}

@test "failures: no output file, write errors exit 3, usage errors exit 2" {
	run raw2vhd -o "$T/x.vhd" "$T/missing.raw"
	[ "$status" -eq 3 ]
	[ ! -e "$T/x.vhd" ]
	run sh -c 'raw2vhd "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"write error"* ]]
	run sh -c 'raw2vhd -s dynamic "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	run raw2vhd -s sparse "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhd -s dynamic --azure "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	[[ "$output" == *"Azure takes fixed VHDs only"* ]]
	run raw2vhd --block-size 512K "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhd -s dynamic --block-size 4M "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhd --uuid 0123 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhd "$FIX/d1.raw" "$FIX/d1.raw"
	[ "$status" -eq 2 ]
}
