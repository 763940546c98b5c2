# raw2vmdk: streamOptimized and monolithicSparse, every size and way,
# checked by three readers written by different people: qemu-img (check
# and compare), libyal's vmdkinfo and pyvmdk, and our own img2raw.
load helpers

SIZES="0 1 65541 5000000"

setup_file() {
	local s
	export FIX=$BATS_FILE_TMPDIR
	for s in $SIZES; do
		if [ "$s" -eq 0 ]; then
			: > "$FIX/d$s.raw"
		elif [ "$s" -eq 1 ]; then
			printf 'x' > "$FIX/d$s.raw"
		else
			make_pattern "$FIX/d$s.raw" "$s"
		fi
		cp "$FIX/d$s.raw" "$FIX/d$s.padded"
		truncate -s $(((s + 511) / 512 * 512)) "$FIX/d$s.padded"
	done
}

# libyal's reader: the whole virtual disk of a VMDK, to stdout.  libyal
# opens the extent by the name the descriptor gives, in the same folder.
yal_read() {
	local name
	name=$(head -c 4096 "$1" | tr -d '\0' |
		sed -n 's/^R[DONLYW]* [0-9]* SPARSE "\(.*\)"$/\1/p')
	rm -rf "$T/yal"
	mkdir "$T/yal"
	cp "$1" "$T/yal/$name"
	/usr/bin/python3 - "$T/yal/$name" <<-'PY'
	import sys, pyvmdk
	h = pyvmdk.handle()
	h.open(sys.argv[1])
	h.open_extent_data_files()
	size, off = h.get_media_size(), 0
	while off < size:
	    n = min(1 << 20, size - off)
	    sys.stdout.buffer.write(h.read_buffer_at_offset(n, off))
	    off += n
	PY
}

# check_vmdk IMAGE PADDED_RAW SUBFORMAT: every reader gives the disk back.
# Neither qemu-img nor libyal opens a VMDK of capacity 0 (not even qemu-img's
# own): an empty disk is checked by img2raw alone (raw2vmdk(1) says so).
check_vmdk() {
	local img=$1 raw=$2 sub=$3 out
	if [ ! -s "$raw" ]; then
		[ "$(img2raw "$img" | wc -c)" -eq 0 ] || return 1
		[ "$(cat "$img" | img2raw | wc -c)" -eq 0 ] || return 1
		run qemu-img info "$img"
		[[ "$output" == *"Unsupported image type"* ]] || return 1
		return 0
	fi
	out=$(qemu-img check "$img" 2>&1) ||
		{ echo "$img: qemu-img check: $out"; return 1; }
	qemu-img compare -q "$raw" "$img" ||
		{ echo "$img: qemu-img compare differs"; return 1; }
	[ "$(qemu-img info --output=json "$img" |
	    sed -n 's/.*"create-type": "\(.*\)".*/\1/p')" = "$sub" ] ||
		{ echo "$img: not $sub"; return 1; }
	out=$(vmdkinfo "$img" 2>&1) || { echo "$img: vmdkinfo: $out"; return 1; }
	yal_read "$img" | cmp - "$raw" || { echo "$img: pyvmdk differs"; return 1; }
	img2raw "$img" | cmp - "$raw" || { echo "$img: img2raw differs"; return 1; }
	cat "$img" | img2raw | cmp - "$raw" ||
		{ echo "$img: img2raw from a pipe differs"; return 1; }
}

# matrix SUBFORMAT OPTIONS...: each size, four ways, byte for byte the
# same (a file output names itself in the descriptor: --extent-name).
matrix() {
	local sub=$1 s w
	shift
	for s in $SIZES; do
		raw2vmdk -s "$sub" "$@" -o "$T/ff.vmdk" "$FIX/d$s.raw" 2> /dev/null
		( set -o pipefail; raw2vmdk -s "$sub" "$@" "$FIX/d$s.raw" 2> /dev/null | cat > "$T/fp.vmdk" )
		( set -o pipefail; cat "$FIX/d$s.raw" | raw2vmdk -s "$sub" "$@" -o "$T/pf.vmdk" 2> /dev/null )
		( set -o pipefail; cat "$FIX/d$s.raw" | raw2vmdk -s "$sub" "$@" 2> /dev/null | cat > "$T/pp.vmdk" )
		cmp "$T/ff.vmdk" "$T/pf.vmdk"
		cmp "$T/fp.vmdk" "$T/pp.vmdk"
		cmp "$T/ff.vmdk" "$T/pp.vmdk"
		for w in ff fp; do
			check_vmdk "$T/$w.vmdk" "$FIX/d$s.padded" "$sub" ||
				{ echo "size $s, $w, $sub $*"; return 1; }
		done
	done
}

@test "streamOptimized, 64 KiB grains" { matrix streamOptimized --extent-name x.vmdk; }
@test "streamOptimized, 8 KiB grains, -l 1" { matrix streamOptimized --extent-name x.vmdk --grain-size 8K -l 1; }
@test "streamOptimized, 1 MiB grains, one thread" { matrix streamOptimized --extent-name x.vmdk --grain-size 1M -j 1; }
@test "monolithicSparse, 64 KiB grains" { matrix monolithicSparse --extent-name x.vmdk; }
@test "monolithicSparse, 8 KiB grains" { matrix monolithicSparse --extent-name x.vmdk --grain-size 8K; }

@test "the stream is laid out as VMware ovftool lays it out" {
	local ours ref
	python3 "$BATS_TEST_DIRNAME/../producers/gen.py" vmware-ovftool-stream \
		"$T/ref.vmdk" --size 5000192 --raw "$T/ref.raw"
	raw2vmdk -o "$T/ours.vmdk" "$T/ref.raw"
	python3 "$BATS_TEST_DIRNAME/../tools/vmdk_layout.py" "$T/ref.vmdk" > "$T/ref.txt"
	python3 "$BATS_TEST_DIRNAME/../tools/vmdk_layout.py" "$T/ours.vmdk" > "$T/ours.txt"
	# the same header, footer and end; the grains and tables in the
	# same pattern (grains, then their table), then GD, footer, EOS
	diff <(grep -v '^markers\|^keys' "$T/ref.txt") <(grep -v '^markers\|^keys' "$T/ours.txt")
	grep -qx 'version 3' "$T/ours.txt"
	grep -qx 'flags 0x30001' "$T/ours.txt"
	grep -qx 'header gdOffset GD_AT_END' "$T/ours.txt"
	grep -qx 'footer version 3 flags 0x30001 gd at the GD' "$T/ours.txt"
	grep -qx 'after the end-of-stream marker 0 bytes' "$T/ours.txt"
	grep -Eqx 'markers (GRAINS GT )+GD FOOTER EOS' "$T/ours.txt"
	grep -Eqx 'markers (GRAINS GT )+GD FOOTER EOS' "$T/ref.txt"
	# every descriptor key VMware writes, we write
	ref=$(sed -n 's/^keys //p' "$T/ref.txt")
	ours=" $(sed -n 's/^keys //p' "$T/ours.txt") "
	for k in $ref; do
		[[ "$ours" == *" $k "* ]] || { echo "missing key $k"; return 1; }
	done
	qemu-img compare -q "$T/ref.raw" "$T/ours.vmdk"
}

@test "the descriptor carries what VMware products expect" {
	make_pattern "$T/in.raw" 3000000
	raw2vmdk -o "$T/a.vmdk" "$T/in.raw"
	head -c 2048 "$T/a.vmdk" | tail -c 1536 | tr -d '\0' > "$T/desc"
	grep -qx 'createType="streamOptimized"' "$T/desc"
	grep -qx 'parentCID=ffffffff' "$T/desc"
	grep -Eqx 'CID=[0-9a-f]{8}' "$T/desc"
	grep -qx 'RW 5860 SPARSE "a.vmdk"' "$T/desc"
	grep -qx 'ddb.adapterType = "lsilogic"' "$T/desc"
	grep -qx 'ddb.geometry.heads = "255"' "$T/desc"
	grep -qx 'ddb.geometry.sectors = "63"' "$T/desc"
	grep -qx 'ddb.geometry.cylinders = "1"' "$T/desc"
	grep -Eqx 'ddb.longContentID = "[0-9a-f]{32}"' "$T/desc"
	grep -qx 'ddb.virtualHWVersion = "4"' "$T/desc"
	grep -qx 'ddb.toolsVersion = "2147483647"' "$T/desc"
	raw2vmdk --adapter-type ide --hwversion 14 --toolsversion 12352 \
		--extent-name web.vmdk "$T/in.raw" > "$T/b.vmdk"
	head -c 2048 "$T/b.vmdk" | tail -c 1536 | tr -d '\0' > "$T/desc"
	grep -qx 'RW 5860 SPARSE "web.vmdk"' "$T/desc"
	grep -qx 'ddb.adapterType = "ide"' "$T/desc"
	grep -qx 'ddb.geometry.heads = "16"' "$T/desc"
	grep -qx 'ddb.virtualHWVersion = "14"' "$T/desc"
	grep -qx 'ddb.toolsVersion = "12352"' "$T/desc"
	[ "$(qemu-img info --output=json "$T/b.vmdk" | sed -n 's/.*"cid": \([0-9]*\).*/\1/p')" -gt 0 ]
}

@test "the same bytes on every run and for any thread count" {
	make_pattern "$T/in.raw" 9000000
	raw2vmdk -j 1 "$T/in.raw" > "$T/1.vmdk"
	raw2vmdk -j 2 "$T/in.raw" > "$T/2.vmdk"
	raw2vmdk -j 7 "$T/in.raw" > "$T/7.vmdk"
	cat "$T/in.raw" | raw2vmdk > "$T/p.vmdk"
	cmp "$T/1.vmdk" "$T/2.vmdk"
	cmp "$T/1.vmdk" "$T/7.vmdk"
	cmp "$T/1.vmdk" "$T/p.vmdk"
}

@test "zero grains stay unallocated; work scales with data (64 GiB sparse)" {
	truncate -s 64G "$T/big.raw"
	printf 'data' | dd of="$T/big.raw" bs=1 seek=$((40 << 30)) conv=notrunc status=none
	timeout 30 raw2vmdk -o "$T/big.vmdk" "$T/big.raw"
	[ "$(stat -c %s "$T/big.vmdk")" -lt 2000000 ]
	qemu-img map --output=json "$T/big.vmdk" | grep -c '"data": true' | grep -qx 1
	timeout 60 raw2vmdk -s monolithicSparse -o "$T/bigs.vmdk" "$T/big.raw"
	[ "$(du -k "$T/bigs.vmdk" | cut -f1)" -lt 20000 ]
	[ "$(imgsum "$T/bigs.vmdk" | cut -d' ' -f1)" = "$(imgsum "$T/big.raw" | cut -d' ' -f1)" ]
}

@test "a 3 GiB disk with data islands, streams and sparse, file and pipe" {
	local off
	truncate -s 3G "$T/g.raw"
	for off in 0 1000000000 2147483648 3221225000; do
		yes "island $off" | head -c 300000 |
			dd of="$T/g.raw" bs=1 seek=$off conv=notrunc status=none
	done
	truncate -s 3G "$T/g.raw"
	raw2vmdk -o "$T/g.vmdk" "$T/g.raw"
	raw2vmdk -s monolithicSparse "$T/g.raw" | cat > "$T/gs.vmdk"
	qemu-img compare -q "$T/g.raw" "$T/g.vmdk"
	qemu-img compare -q "$T/g.raw" "$T/gs.vmdk"
	qemu-img check -q "$T/gs.vmdk"
	vmdkinfo "$T/g.vmdk" > /dev/null
	vmdkinfo "$T/gs.vmdk" > /dev/null
	cat "$T/g.vmdk" | img2raw | cmp - "$T/g.raw"
}

@test "any image goes in: a qcow2, a VHDX and a VMDK give the raw's VMDK" {
	local f
	make_pattern "$T/src.raw" 4194304
	raw2vmdk "$T/src.raw" > "$T/want.vmdk"
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vhdx "$T/src.raw" "$T/in.vhdx"
	qemu-img convert -f raw -O vmdk "$T/src.raw" "$T/in.vmdk"
	for f in in.qcow2 in.vhdx in.vmdk; do
		raw2vmdk "$T/$f" | cmp - "$T/want.vmdk"
		cat "$T/$f" | raw2vmdk | cmp - "$T/want.vmdk"
	done
}

@test "a size that is not a multiple of 512 is rounded up, and stderr says so" {
	run raw2vmdk -o "$T/x.vmdk" "$FIX/d65541.raw"
	[ "$status" -eq 0 ]
	[ "$output" = "raw2vmdk: virtual size 65541 rounded up to 66048 (a multiple of 512 bytes)" ]
	[ "$(qemu-img info --output=json "$T/x.vmdk" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' | head -1)" -eq 66048 ]
}

@test "a disk larger than VMDK addresses is refused before anything is written" {
	run raw2vmdk --size 3T -o "$T/big.vmdk" "$FIX/d1.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"larger than 2199023255040 bytes, the most vmdk can hold"* ]]
	[ ! -e "$T/big.vmdk" ]
	[ "$(raw2vmdk --size 3T "$FIX/d1.raw" 2> /dev/null | wc -c)" -eq 0 ]
}

@test "failures: no output file, write errors exit 3, usage errors exit 2" {
	run raw2vmdk -o "$T/x.vmdk" "$T/missing.raw"
	[ "$status" -eq 3 ]
	[ ! -e "$T/x.vmdk" ]
	run sh -c 'raw2vmdk "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"write error"* ]]
	run raw2vmdk -s flat "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vmdk --grain-size 4K "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vmdk --adapter-type scsi "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vmdk --extent-name 'a"b' "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vmdk "$FIX/d1.raw" "$FIX/d1.raw"
	[ "$status" -eq 2 ]
}

@test "a stream goes straight through when the size is known first; else it is parked" {
	make_pattern "$T/in.raw" 5000000
	qemu-img convert -f raw -O qcow2 "$T/in.raw" "$T/in.qcow2"
	run sh -c 'cat "$1" | raw2vmdk -v | cat > "$2"' sh "$T/in.qcow2" "$T/q.vmdk"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: straight through"* ]]
	run sh -c 'cat "$1" | raw2vmdk -v | cat > "$2"' sh "$T/in.raw" "$T/s.vmdk"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, data parked in the store"* ]]
	run sh -c 'raw2vmdk -v "$1" | cat > "$2"' sh "$T/in.raw" "$T/s2.vmdk"
	[[ "$output" == *"layout: straight through"* ]]
	cmp "$T/s.vmdk" "$T/s2.vmdk"
	cmp "$T/s.vmdk" "$T/q.vmdk"
	mkdir "$T/tmp"
	run sh -c 'cat "$1" | raw2vmdk -v -s monolithicSparse --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$T/in.raw" "$T/tmp" "$T/m.vmdk"
	[ "$status" -eq 0 ]
	[[ "$output" != *"temporary file 0 B"* ]]
	[ -z "$(ls -A "$T/tmp")" ]
	qemu-img compare -q "$T/in.raw" "$T/m.vmdk"
}
