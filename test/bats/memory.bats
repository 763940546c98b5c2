#!/usr/bin/env bats
# Bounded memory from every pipe (issue 15): worst-case layouts of every
# format streamed through a pipe with the default budget (--mem 32 MiB).
# Each way must give the right bytes, peak RSS at most 64 MiB (GNU time's
# %M), and a spill file within the bytes parked plus the slack imgpipe(7)
# states, as the parking store reports them (IMGPIPE_STASH_STATS: the
# spill file's peak disk space is measured with st_blocks).
#
# Worst cases: data in reverse virtual order (each extent just below the
# last), 512-byte clusters and grains (131072 extents), tables after the
# data they place, blocks in shuffled order.  The images are written by
# test/memory/layouts.py (qcow2, qed, VMDK) and by qemu-io (VHD, VHDX,
# VDI, Parallels).
load helpers

LAYOUTS="$BATS_TEST_DIRNAME/../memory/layouts.py"
RSS_MAX_KIB=65536
# Pipe cases of the scale test read this many bytes of virtual disk
# through a pipe (the file cases take 1 TiB); IMGPIPE_SCALE_PIPE=1T for
# the full size (an hour here).
: "${IMGPIPE_SCALE_PIPE:=4G}"

failed() {
	echo "$*" >&2
	return 1
}

# stat_of NAME: a figure of the parking store's report in $T/m.err
stat_of() {
	grep 'parking store: budget=' "$T/m.err" | tail -n 1 |
		sed -n "s/.* $1=\([0-9]*\).*/\1/p"
}

# within_bounds WHAT: the checks every way ends with
within_bounds() {
	local what=$1 rss disk parked excess slack
	rss=$(tail -n 1 "$T/m.rss")
	[ "$rss" -le "$RSS_MAX_KIB" ] ||
		failed "$what: peak RSS $rss KiB is over $RSS_MAX_KIB KiB"
	disk=$(stat_of file_disk_peak)
	parked=$(stat_of parked_peak)
	excess=$(stat_of file_disk_excess_peak)
	slack=$(stat_of slack)
	[ -n "$disk" ] || failed "$what: no report from the parking store: $(cat "$T/m.err")"
	[ "$disk" -le $((parked + slack)) ] ||
		failed "$what: spill file $disk bytes, parked at most $parked + slack $slack"
	[ "$excess" -le "$slack" ] ||
		failed "$what: spill file $excess bytes over what it held, slack $slack"
	echo "# $what: rss ${rss} KiB, parked $parked, spill file $disk" >&3
}

# pipe_way IMAGE PROG [ARGS...]: cat IMAGE | PROG ARGS | cat > $T/m.out
# (a pipe on both sides), with the default budget; status in $status.
pipe_way() {
	local img=$1
	shift
	run bash -c 'set -o pipefail; cat "$1" |
		IMGPIPE_STASH_STATS=1 /usr/bin/time -f %M -o "$2.rss" "${@:3}" \
		2> "$2.err" | cat > "$2.out"' sh "$img" "$T/m" "$@"
}

# streams IMAGE RAW_MD5 RAW_SUM: img2raw and imgsum from a pipe: right
# bytes, right digest, within the bounds
streams() {
	local img=$1 want=$2 sum=$3
	pipe_way "$img" img2raw
	[ "$status" -eq 0 ] || failed "img2raw: status $status: $(cat "$T/m.err")"
	[ "$(md5sum < "$T/m.out" | cut -d' ' -f1)" = "$want" ] ||
		failed "img2raw: not the raw disk"
	within_bounds "img2raw $(basename "$img")"
	pipe_way "$img" imgsum
	[ "$status" -eq 0 ] || failed "imgsum: status $status: $(cat "$T/m.err")"
	[ "$(cut -d' ' -f1 "$T/m.out")" = "$sum" ] ||
		failed "imgsum: $(cat "$T/m.out"), want $sum"
	within_bounds "imgsum $(basename "$img")"
}

# layout FORMAT LAYOUT DATA UNIT: an image by layouts.py, checked by streams
layout() {
	local fmt=$1 lay=$2 data=$3 unit=$4 want sum
	python3 "$LAYOUTS" "$fmt" "$lay" "$T/img" "$data" "$unit"
	want=$(python3 "$LAYOUTS" raw - - "$data" "$unit" | md5sum | cut -d' ' -f1)
	sum=$(python3 "$LAYOUTS" raw - - "$data" "$unit" | imgsum | cut -d' ' -f1)
	streams "$T/img" "$want" "$sum"
}

# shuffled FORMAT OPTIONS BLOCK NBLOCKS: qemu-io writes whole blocks in a
# shuffled order, so the block table sends the data out of virtual order
shuffled() {
	local fmt=$1 opts=$2 block=$3 n=$4 want sum
	qemu-img create -q -f "$fmt" ${opts:+-o "$opts"} "$T/img" $((block * n))
	python3 -c '
import random, sys
block, n = int(sys.argv[1]), int(sys.argv[2])
order = list(range(n))
random.Random(15).shuffle(order)
for i in order:
    print("write -P %d %d %d" % (i % 250 + 1, i * block, block))
' "$block" "$n" | qemu-io -t unsafe -f "$fmt" "$T/img" > /dev/null
	qemu-img convert -f "$fmt" -O raw "$T/img" "$T/want.raw"
	want=$(md5sum < "$T/want.raw" | cut -d' ' -f1)
	sum=$(imgsum "$T/want.raw" | cut -d' ' -f1)
	rm -f "$T/want.raw"
	streams "$T/img" "$want" "$sum"
}

# kept_by_source WHAT MIN: the input's retention (source_retain(), in the
# one parking store) held at least MIN bytes at once in the last way: a
# reader that parks input in a store of its own keeps nothing there
kept_by_source() {
	local kept
	kept=$(grep 'source retention: kept_peak=' "$T/m.err" | tail -n 1 |
		sed -n 's/.*kept_peak=\([0-9]*\).*/\1/p')
	[ -n "$kept" ] ||
		failed "$1: nothing kept by the source's retention: $(cat "$T/m.err")"
	[ "$kept" -ge "$2" ] ||
		failed "$1: the source's retention kept $kept bytes, want $2 or more"
	echo "# $1: kept by the source $kept" >&3
}

@test "memory: qcow2, 512-byte clusters written backwards (131072 extents)" {
	layout qcow2 reverse $((64 << 20)) 512
}

@test "memory: qcow2, 512-byte clusters backwards, tables after the data" {
	layout qcow2 reverse-last $((64 << 20)) 512
	# every data cluster comes before the L1 table: all of it is kept
	kept_by_source "qcow2 reverse-last" $(((64 << 20) - (64 << 10)))
}

@test "memory: qcow2, 4 KiB clusters backwards, tables after the data" {
	layout qcow2 reverse-last $((256 << 20)) 4096
	# every data cluster comes before the L1 table: all of it is kept
	kept_by_source "qcow2 reverse-last" $(((256 << 20) - (64 << 10)))
}

@test "memory: qed, 4 KiB clusters written backwards (102400 extents)" {
	layout qed reverse $((400 << 20)) 4096
}

@test "memory: qed, 4 KiB clusters backwards, tables after the data" {
	layout qed reverse-last $((256 << 20)) 4096
}

@test "memory: vmdk monolithicSparse, 512-byte grains backwards (131072 extents)" {
	layout vmdk reverse $((64 << 20)) 512
}

@test "memory: vmdk monolithicSparse, 512-byte grains, grain directory after 64 MiB" {
	layout vmdk forward-last $((64 << 20)) 512
}

# qemu_layout FORMAT LAYOUT DATA UNIT: layout, and qemu-img reading the
# image from a file gives the same disk as layouts.py says
qemu_layout() {
	local fmt=$1 lay=$2 data=$3 unit=$4 want
	layout "$@"
	want=$(python3 "$LAYOUTS" raw - - "$data" "$unit" | md5sum | cut -d' ' -f1)
	qemu-img convert -f vmdk -O raw "$T/img" "$T/qemu.raw"
	[ "$(md5sum < "$T/qemu.raw" | cut -d' ' -f1)" = "$want" ] ||
		failed "qemu-img convert: not the raw disk img2raw gave"
	rm -f "$T/qemu.raw"
}

# Grains met before the table that places them are kept by the source's
# retention in the one parking store (512-byte grains: half a million of
# them, no record each outside the budget); a stream read by its markers
# parks grains that come below higher ones in the emitter's queue.

@test "memory: vmdk monolithicSparse, 512-byte grains, grain directory after 256 MiB" {
	qemu_layout vmdk forward-last $((256 << 20)) 512
}

@test "memory: vmdk monolithicSparse, 512-byte grains backwards, tables after them" {
	qemu_layout vmdk reverse-last $((64 << 20)) 512
}

@test "memory: vmdk streamOptimized, 512-byte grain markers backwards, read into a pipe and into a file" {
	local want
	qemu_layout vmdkstream reverse $((64 << 20)) 512
	want=$(python3 "$LAYOUTS" raw - - $((64 << 20)) 512 | md5sum | cut -d' ' -f1)
	run bash -c 'cat "$1" | /usr/bin/time -f %M -o "$2" img2raw -o "$3"' sh \
		"$T/img" "$T/m.rss" "$T/m.out"
	[ "$status" -eq 0 ] || failed "img2raw -o: status $status: $output"
	[ "$(md5sum < "$T/m.out" | cut -d' ' -f1)" = "$want" ] ||
		failed "img2raw -o: not the raw disk"
	[ "$(tail -n 1 "$T/m.rss")" -le "$RSS_MAX_KIB" ] ||
		failed "img2raw -o: peak RSS $(tail -n 1 "$T/m.rss") KiB"
}

# The VMDK reader's tables (GD, GTs: 4 bytes a grain) and its grains
# sorted by place (8 bytes a grain, 4 more while a pipe is read) are
# bookkeeping of the one budget: 131072 grains of 512 bytes take 1.5 MiB
# of it.  Past the budget: refused, as the store refuses, file and pipe.
@test "memory: vmdk 512-byte grains, the tables and the sorted grain list are charged to --mem" {
	# 8 bytes a grain for the list by place (the GTs are read, not kept)
	local want peak
	python3 "$LAYOUTS" vmdk forward-last "$T/img" $((64 << 20)) 512
	want=$(python3 "$LAYOUTS" raw - - $((64 << 20)) 512 | md5sum | cut -d' ' -f1)
	run img2raw --mem 1M -o "$T/m.out" "$T/img"
	[ "$status" -eq 1 ] || failed "file, --mem 1M: status $status: $output"
	[ "$output" = "img2raw: $T/img: parking store: the bookkeeping of what waits to be placed needs more than the memory budget of 1.0 MiB; raise --mem" ] ||
		failed "file, --mem 1M: $output"
	run bash -c 'cat "$1" | img2raw --mem 1M > /dev/null' sh "$T/img"
	[ "$status" -eq 1 ] || failed "pipe, --mem 1M: status $status: $output"
	[ "$output" = "img2raw: stdin: parking store: the bookkeeping of what waits to be placed needs more than the memory budget of 1.0 MiB; raise --mem" ] ||
		failed "pipe, --mem 1M: $output"
	# within a budget that holds them, counted in the store's peak
	run bash -c 'IMGPIPE_STASH_STATS=1 img2raw --mem 4M "$1" 2> "$2.err" |
		md5sum' sh "$T/img" "$T/m"
	[ "$status" -eq 0 ] || failed "file, --mem 4M: $(cat "$T/m.err")"
	[ "${output%% *}" = "$want" ] || failed "file, --mem 4M: not the raw disk"
	peak=$(stat_of mem_peak)
	[ "$peak" -ge $((131072 * 8)) ] ||
		failed "file, --mem 4M: store peak $peak, the tables uncounted"
	[ "$peak" -le $((4 << 20)) ] || failed "file, --mem 4M: store peak $peak"
	pipe_way "$T/img" img2raw --mem 4M
	[ "$status" -eq 0 ] || failed "pipe, --mem 4M: $(cat "$T/m.err")"
	[ "$(md5sum < "$T/m.out" | cut -d' ' -f1)" = "$want" ] ||
		failed "pipe, --mem 4M: not the raw disk"
	peak=$(stat_of mem_peak)
	[ "$peak" -le $((4 << 20)) ] || failed "pipe, --mem 4M: store peak $peak"
}

# Past the budget while a reader reads through the source's retention (a
# VMDK's grain directory after its grains, from a pipe): the store's
# refusal is a limit of the run, not the format's defect, so file and
# pipe give the same message and status (it once read "stdin: vmdk:
# parking store: ..."); a qcow2 whose tables come last, which a file
# converts in 256 KiB, is refused from a pipe by the budget, not as cut.
@test "memory: past --mem, file and pipe give the store's message and status, naming no format" {
	local msg="parking store: the bookkeeping of what waits to be placed needs more than the memory budget of 256.0 KiB; raise --mem"
	local prog
	python3 "$LAYOUTS" vmdk forward-last "$T/img" $((64 << 20)) 512
	for prog in img2raw imgsum; do
		run bash -c '"$1" --mem 256K "$2" > /dev/null' sh "$prog" "$T/img"
		[ "$status" -eq 1 ] || failed "$prog file: status $status: $output"
		[ "$output" = "$prog: $T/img: $msg" ] || failed "$prog file: $output"
		run bash -c 'cat "$2" | "$1" --mem 256K > /dev/null' sh "$prog" "$T/img"
		[ "$status" -eq 1 ] || failed "$prog pipe: status $status: $output"
		[ "$output" = "$prog: stdin: $msg" ] || failed "$prog pipe: $output"
	done
	python3 "$LAYOUTS" qcow2 forward-last "$T/img" $((64 << 20)) 512
	run img2raw --mem 256K -o "$T/m.out" "$T/img"
	[ "$status" -eq 0 ] || failed "qcow2 file: status $status: $output"
	run bash -c 'cat "$1" | img2raw --mem 256K > /dev/null' sh "$T/img"
	[ "$status" -eq 1 ] || failed "qcow2 pipe: status $status: $output"
	[ "$output" = "img2raw: stdin: $msg" ] || failed "qcow2 pipe: $output"
}

@test "memory: vpc (VHD) dynamic, 2 MiB blocks shuffled" {
	shuffled vpc "" $((2 << 20)) 128
}

@test "memory: vhdx, 1 MiB blocks shuffled" {
	shuffled vhdx block_size=1M $((1 << 20)) 256
}

@test "memory: vdi, 1 MiB blocks shuffled" {
	shuffled vdi "" $((1 << 20)) 256
}

@test "memory: parallels, 1 MiB clusters shuffled" {
	shuffled parallels cluster_size=1M $((1 << 20)) 256
}

@test "memory: parallels, 4 KiB clusters shuffled (16384 extents)" {
	shuffled parallels cluster_size=4K 4096 16384
}

# islands FILE SIZE: a sparse raw disk of SIZE bytes with data islands
# spread over it (a first and a last byte among them)
islands() {
	local f=$1 size=$2 off
	rm -f "$f"
	truncate -s "$size" "$f"
	for off in 0 $((size / 7 + 4096)) $((size / 3 + 123)) $((size / 2)) \
	    $((size - (1 << 20))); do
		yes "island-$off" | head -c 300000 |
			dd of="$f" bs=300000 seek="$off" oflag=seek_bytes \
			conv=notrunc status=none
	done
	truncate -s "$size" "$f"
}

# file_way PROG ARGS...: PROG ARGS > $T/m.out with the default budget,
# RSS measured
file_way() {
	run bash -c 'IMGPIPE_STASH_STATS=1 /usr/bin/time -f %M -o "$1.rss" \
		"${@:2}" 2> "$1.err" > "$1.out"' sh "$T/m" "$@"
}

same_islands() {
	local a=$1 b=$2 size=$3 off
	[ "$(stat -c %s "$b")" -eq "$size" ] || failed "$b: wrong size"
	for off in 0 $((size / 7 + 4096)) $((size / 3 + 123)) $((size / 2)) \
	    $((size - (1 << 20))); do
		cmp -s <(dd if="$a" bs=1M skip="$off" count=1 iflag=skip_bytes status=none) \
		    <(dd if="$b" bs=1M skip="$off" count=1 iflag=skip_bytes status=none) ||
			failed "$b: differs near $off"
	done
}

@test "memory: scale, a 1 TiB sparse raw disk with data islands, from a file" {
	local size=$((1 << 40))
	islands "$T/big.raw" $size
	file_way img2raw -o "$T/out.raw" "$T/big.raw"
	[ "$status" -eq 0 ] || failed "img2raw: $(cat "$T/m.err")"
	within_bounds "img2raw 1 TiB file -> file"
	same_islands "$T/big.raw" "$T/out.raw" $size
	[ "$(stat -c %b "$T/out.raw")" -lt 65536 ] || failed "img2raw: holes filled"
	rm -f "$T/out.raw"
	file_way imgsparse -o "$T/out.raw" "$T/big.raw"
	[ "$status" -eq 0 ] || failed "imgsparse: $(cat "$T/m.err")"
	within_bounds "imgsparse 1 TiB file -> file"
	same_islands "$T/big.raw" "$T/out.raw" $size
	rm -f "$T/out.raw"
	file_way imgsparse --map "$T/big.raw"
	[ "$status" -eq 0 ] || failed "imgsparse --map: $(cat "$T/m.err")"
	within_bounds "imgsparse --map 1 TiB file"
	[ "$(grep -c data "$T/m.out")" -eq 5 ] || failed "imgsparse --map: $(cat "$T/m.out")"
}

@test "memory: scale, a sparse raw disk with data islands through pipes ($IMGPIPE_SCALE_PIPE)" {
	local size sum
	size=$(numfmt --from=iec "$IMGPIPE_SCALE_PIPE")
	islands "$T/big.raw" "$size"
	file_way imgsum "$T/big.raw"
	[ "$status" -eq 0 ] || failed "imgsum: $(cat "$T/m.err")"
	within_bounds "imgsum $IMGPIPE_SCALE_PIPE file"
	sum=$(imgsum "$T/big.raw" | cut -d' ' -f1)
	pipe_way "$T/big.raw" imgsum
	[ "$status" -eq 0 ] || failed "imgsum: $(cat "$T/m.err")"
	[ "$(cut -d' ' -f1 "$T/m.out")" = "$sum" ] || failed "imgsum from a pipe differs"
	within_bounds "imgsum $IMGPIPE_SCALE_PIPE pipe"
	run bash -c 'set -o pipefail; cat "$1" |
		IMGPIPE_STASH_STATS=1 /usr/bin/time -f %M -o "$2.rss" img2raw \
		2> "$2.err" | imgsum' sh "$T/big.raw" "$T/m"
	[ "$status" -eq 0 ] || failed "img2raw | imgsum: $(cat "$T/m.err")"
	[ "$(echo "$output" | cut -d' ' -f1)" = "$sum" ] || failed "img2raw pipe -> pipe differs"
	within_bounds "img2raw $IMGPIPE_SCALE_PIPE pipe -> pipe"
	run bash -c 'set -o pipefail; img2raw "$1" |
		IMGPIPE_STASH_STATS=1 /usr/bin/time -f %M -o "$2.rss" imgsparse \
		2> "$2.err" | imgsum' sh "$T/big.raw" "$T/m"
	[ "$status" -eq 0 ] || failed "img2raw | imgsparse | imgsum: $(cat "$T/m.err")"
	[ "$(echo "$output" | cut -d' ' -f1)" = "$sum" ] || failed "imgsparse pipe -> pipe differs"
	within_bounds "imgsparse $IMGPIPE_SCALE_PIPE pipe -> pipe"
}

# QED's records of the clusters it parks before their L2 tables (and its
# heap of what lies ahead) are bookkeeping of the one budget: 16384
# clusters of 4 KiB take about 400 KiB of it.  Below that: refused, as the
# store refuses; at 1 MiB the disk comes out whole.
@test "memory: qed 4 KiB clusters backwards, its parked records are charged to --mem" {
	local want
	python3 "$LAYOUTS" qed reverse "$T/img" $((64 << 20)) 4096
	want=$(python3 "$LAYOUTS" raw - - $((64 << 20)) 4096 | md5sum | cut -d' ' -f1)
	run bash -c 'cat "$1" | img2raw --mem 512K > /dev/null' sh "$T/img"
	[ "$status" -eq 1 ] || failed "pipe, --mem 512K: status $status: $output"
	[ "$output" = "img2raw: stdin: parking store: the bookkeeping of what waits to be placed needs more than the memory budget of 512.0 KiB; raise --mem" ] ||
		failed "pipe, --mem 512K: $output"
	run bash -c 'cat "$1" | img2raw --mem 1M | md5sum' sh "$T/img"
	[ "$status" -eq 0 ] || failed "pipe, --mem 1M: status $status: $output"
	[ "${output%% *}" = "$want" ] || failed "pipe, --mem 1M: not the raw disk"
}
