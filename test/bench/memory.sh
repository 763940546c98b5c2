#!/bin/sh
# Memory from a pipe (issue 15): the worst layouts of issue 15 streamed
# through 'cat x | PROG > /dev/null' with the default budget (32 MiB):
# peak RSS (GNU time), the parking store's peak memory (counted against
# the budget), the bytes it held at once, and the spill file's peak disk
# space (st_blocks, as the store reports it with IMGPIPE_STASH_STATS=1).
# Goals: RSS at most 64 MiB; store memory at most the budget; the spill
# file at most what was parked plus the 1 MiB slack of imgpipe(7).  One
# run each (these take tens of seconds); fixtures by test/memory/layouts.py.
#
# table.sh sources this file with MEMORY_SH_LIB=1 for its builders and
# mem_row, and prints a smaller set of the same cases (memory_cases).
. "$(dirname "$0")/common.sh"

layouts=$(cd "$(dirname "$0")/../memory" && pwd)/layouts.py
tools=$(cd "$(dirname "$0")/../tools" && pwd)

# fixture NAME FORMAT LAYOUT DATA UNIT: an image by layouts.py, cached
fixture() {
	if ! [ -s "$BENCH_DIR/$1" ]; then
		python3 "$layouts" "$2" "$3" "$BENCH_DIR/$1.tmp" "$4" "$5" &&
			mv "$BENCH_DIR/$1.tmp" "$BENCH_DIR/$1" || return 1
	fi
	echo "$BENCH_DIR/$1"
}

# islands_fixture NAME SIZE: a sparse raw disk of SIZE bytes with five
# data islands of 300000 bytes spread over it (memory.bats' scale case)
islands_fixture() {
	local f=$BENCH_DIR/$1 size=$2 off
	if ! [ -s "$f" ]; then
		rm -f "$f.tmp" && truncate -s "$size" "$f.tmp" || return 1
		for off in 0 $((size / 7 + 4096)) $((size / 3 + 123)) \
		    $((size / 2)) $((size - (1 << 20))); do
			yes "island-$off" | head -c 300000 |
				dd of="$f.tmp" bs=300000 seek="$off" \
				oflag=seek_bytes conv=notrunc status=none || return 1
		done
		mv "$f.tmp" "$f" || return 1
	fi
	echo "$f"
}

# pax_sparse_fixture NAME: an OVA whose disk is a PAX (GNU 1.0) sparse
# member claiming 1 PiB, the OVF declaring 212992 bytes (issue 15: it
# must fail at once, not stream a petabyte)
pax_sparse_fixture() {
	local f=$BENCH_DIR/$1 w=$BENCH_DIR/.pax.$$
	if ! [ -s "$f" ]; then
		mkdir -p "$w" || return 1
		printf '%s\n' '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="disk1.vmdk" ovf:id="f1" ovf:size="212992"/></References><DiskSection><Info>d</Info><Disk ovf:capacity="1073741824" ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection><VirtualSystem ovf:id="b"><Info>b</Info></VirtualSystem></Envelope>' > "$w/x.ovf" &&
		(cd "$w" && python3 "$tools/sparse_ova.py" "$f.tmp" \
		    1125899906842624 x.ovf) &&
		mv "$f.tmp" "$f" || { rm -rf "$w"; return 1; }
		rm -rf "$w"
	fi
	echo "$f"
}

mib() {
	awk -v b="$1" 'BEGIN { if (b == "") print "-"; else printf "%.1f", b / 1048576 }'
}

mem_head() {
	printf '| %-58s | %7s | %9s | %12s | %10s | %10s | %10s |\n' "case" \
		"s" "RSS (MiB)" "store (MiB)" "parked MiB" "spill MiB" \
		"over MiB"
	printf '|%s|---------|-----------|--------------|------------|------------|------------|\n' \
		"$(printf -- '-%.0s' $(seq 60))"
}

# mem_row PROG CASE 'command' [STATUS]: one run of the command (a shell
# command line; every program in it reports its store, the last report
# is shown), which must exit with STATUS (default 0).  Left out unless
# BENCH_JOBS is empty or names PROG or "memory".  Columns: wall seconds,
# peak RSS, the store's peak memory (against the budget), bytes parked at
# once, the spill file's peak disk space and its peak beyond the bytes in it.
mem_row() {
	local prog=$1 name=$2 cmd=$3 want=${4:-0}
	local err=$BENCH_DIR/.err.$$ tm=$BENCH_DIR/.tm.$$
	local st secs rss stats store parked disk excess
	case $BENCH_JOBS in ''|*memory*|*"$prog"*) ;; *) return 0 ;; esac
	sync
	st=0
	IMGPIPE_STASH_STATS=1 /usr/bin/time -f '%e %M' -o "$tm" \
		sh -c "$cmd" 2> "$err" || st=$?
	secs=$(tail -n 1 "$tm" | cut -d' ' -f1)
	rss=$(tail -n 1 "$tm" | cut -d' ' -f2)
	stats=$(grep 'parking store: budget=' "$err" | tail -n 1)
	store=$(echo "$stats" | sed -n 's/.* mem_peak=\([0-9]*\).*/\1/p')
	parked=$(echo "$stats" | sed -n 's/.* parked_peak=\([0-9]*\).*/\1/p')
	disk=$(echo "$stats" | sed -n 's/.* file_disk_peak=\([0-9]*\).*/\1/p')
	excess=$(echo "$stats" | sed -n 's/.* file_disk_excess_peak=\([0-9]*\).*/\1/p')
	if [ "$st" -ne "$want" ]; then
		secs="FAILED ($st: $(grep -v 'parking store: budget=' "$err" | head -n 1 | cut -c1-60))"
	elif [ "$want" -ne 0 ]; then
		secs="$secs, exit $st"
	fi
	printf '| %-58s | %7s | %9s | %12s | %10s | %10s | %10s |\n' "$name" \
		"$secs" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$(mib "$store")" "$(mib "$parked")" "$(mib "$disk")" \
		"$(mib "$excess")"
	rm -f "$err" "$tm"
}

# memory_cases: make bench's memory table (table.sh), a couple of minutes:
# every worst layout at a size that keeps each run to seconds, the 1 TiB
# scale case from a file, the PAX-sparse OVA.
memory_cases() {
	local q512 qlast q4k qed vgd vs big pax o
	q512=$(fixture mem-qcow2-512-rev-64m.qcow2 qcow2 reverse $((64 << 20)) 512) &&
	qlast=$(fixture mem-qcow2-512-revlast-64m.qcow2 qcow2 reverse-last $((64 << 20)) 512) &&
	q4k=$(fixture mem-qcow2-4k-revlast-256m.qcow2 qcow2 reverse-last $((256 << 20)) 4096) &&
	qed=$(fixture mem-qed-4k-revlast-256m.qed qed reverse-last $((256 << 20)) 4096) &&
	vgd=$(fixture mem-vmdk-512-gd256m.vmdk vmdk forward-last $((256 << 20)) 512) &&
	vs=$(fixture mem-vmdkstream-512-rev-64m.vmdk vmdkstream reverse $((64 << 20)) 512) &&
	big=$(islands_fixture mem-islands-1t.raw $((1 << 40))) &&
	pax=$(pax_sparse_fixture mem-pax-sparse-1p.ova) || return 1
	o=${BENCH_TMPFS:-/dev/shm/imgpipe-bench}
	mkdir -p "$o" || return 1
	mem_row img2raw "qcow2 512 B clusters backwards (131072 extents), 64 MiB" \
		"cat '$q512' | img2raw > /dev/null"
	mem_row img2raw "qcow2 512 B clusters backwards, tables last, 64 MiB" \
		"cat '$qlast' | img2raw > /dev/null"
	mem_row imgsum "qcow2 512 B clusters backwards, tables last: imgsum" \
		"cat '$qlast' | imgsum > /dev/null"
	mem_row img2raw "qcow2 4 KiB clusters backwards, tables last, 256 MiB" \
		"cat '$q4k' | img2raw > /dev/null"
	mem_row img2raw "qed 4 KiB clusters backwards, tables last, 256 MiB" \
		"cat '$qed' | img2raw > /dev/null"
	mem_row img2raw "vmdk sparse 512 B grains, GD after 256 MiB" \
		"cat '$vgd' | img2raw > /dev/null"
	mem_row img2raw "vmdk stream, 512 B grain markers backwards, 64 MiB" \
		"cat '$vs' | img2raw > /dev/null"
	mem_row raw2qcow2 "qcow2 4 KiB backwards, tables last: img2raw \\| raw2qcow2" \
		"cat '$q4k' | img2raw | raw2qcow2 > /dev/null"
	mem_row img2raw "1 TiB sparse raw, 5 islands: img2raw file -> file" \
		"img2raw -o '$o/mem-out.raw' '$big'"
	rm -f "$o/mem-out.raw"
	mem_row raw2qcow2 "1 TiB sparse raw, 5 islands: raw2qcow2 file -> pipe" \
		"raw2qcow2 '$big' | cat > /dev/null"
	mem_row raw2qcow2 "1 TiB sparse raw, 5 islands: raw2qcow2 file -> file" \
		"raw2qcow2 -o '$o/mem-out.qcow2' '$big'"
	rm -f "$o/mem-out.qcow2"
	mem_row imgsparse "1 TiB sparse raw, 5 islands: imgsparse --map" \
		"imgsparse --map '$big' > /dev/null"
	mem_row ovaextract "OVA, PAX sparse member claiming 1 PiB: refused" \
		"cat '$pax' | ovaextract > /dev/null" 1
}

[ "${MEMORY_SH_LIB:-0}" = 1 ] && return 0

q512=$(fixture mem-qcow2-512-rev-256m.qcow2 qcow2 reverse $((256 << 20)) 512) || exit 1
q4k=$(fixture mem-qcow2-4k-rev-1g.qcow2 qcow2 reverse $((1 << 30)) 4096) || exit 1
qed4k=$(fixture mem-qed-4k-rev-1g.qed qed reverse $((1 << 30)) 4096) || exit 1
qlast=$(fixture mem-qcow2-512-revlast-256m.qcow2 qcow2 reverse-last $((256 << 20)) 512) || exit 1
v1g=$(fixture mem-vmdk-512-gd1g.vmdk vmdk forward-last $((1 << 30)) 512) || exit 1
v2g=$(fixture mem-vmdk-512-gd2g.vmdk vmdk forward-last $((2 << 30)) 512) || exit 1
vs=$(fixture mem-vmdkstream-512-rev-256m.vmdk vmdkstream reverse $((256 << 20)) 512) || exit 1

printf '\n## memory from a pipe: cat x | PROG > /dev/null, --mem 32 MiB (default)\n\n'
BENCH_JOBS=
mem_head
mem_row img2raw "qcow2 512 B clusters backwards, 256 MiB: img2raw" \
	"cat '$q512' | img2raw > /dev/null"
mem_row imgsum "qcow2 512 B clusters backwards, 256 MiB: imgsum" \
	"cat '$q512' | imgsum > /dev/null"
mem_row img2raw "qcow2 512 B backwards, tables last, 256 MiB: img2raw" \
	"cat '$qlast' | img2raw > /dev/null"
mem_row img2raw "qcow2 4 KiB clusters backwards, 1 GiB: img2raw" \
	"cat '$q4k' | img2raw > /dev/null"
mem_row img2raw "qed 4 KiB clusters backwards, 1 GiB: img2raw" \
	"cat '$qed4k' | img2raw > /dev/null"
mem_row img2raw "vmdk stream, 512 B grains backwards, 256 MiB: img2raw" \
	"cat '$vs' | img2raw > /dev/null"
mem_row img2raw "vmdk sparse 512 B grains, GD at 1 GiB: img2raw" \
	"cat '$v1g' | img2raw > /dev/null"
mem_row img2raw "vmdk sparse 512 B grains, GD at 2 GiB: img2raw" \
	"cat '$v2g' | img2raw > /dev/null"
mem_row raw2qcow2 "qcow2 4 KiB backwards, 1 GiB: img2raw \\| raw2qcow2" \
	"cat '$q4k' | img2raw | raw2qcow2 > /dev/null"
