#!/bin/sh
# Memory from a pipe (issue 15): the worst layouts of issue 15 streamed
# through 'cat x | PROG > /dev/null' with the default budget (32 MiB):
# peak RSS (GNU time), the bytes the parking store held at once, and the
# spill file's peak disk space (st_blocks, as the store reports it with
# IMGPIPE_STASH_STATS=1).  Goals: RSS at most 64 MiB; the spill file at
# most what was parked plus the 1 MiB slack of imgpipe(7).  One run each
# (these take tens of seconds); fixtures by test/memory/layouts.py.
. "$(dirname "$0")/common.sh"

layouts=$(cd "$(dirname "$0")/../memory" && pwd)/layouts.py

# fixture NAME FORMAT LAYOUT DATA UNIT
fixture() {
	if ! [ -s "$BENCH_DIR/$1" ]; then
		python3 "$layouts" "$2" "$3" "$BENCH_DIR/$1.tmp" "$4" "$5" &&
			mv "$BENCH_DIR/$1.tmp" "$BENCH_DIR/$1" || return 1
	fi
	echo "$BENCH_DIR/$1"
}

mib() {
	awk -v b="$1" 'BEGIN { if (b == "") print "-"; else printf "%.1f", b / 1048576 }'
}

# memory_row CASE IMAGE PROG: one run of cat IMAGE | PROG > /dev/null
memory_row() {
	local name=$1 img=$2 prog=$3 err=$BENCH_DIR/.err.$$ tm=$BENCH_DIR/.tm.$$
	local st secs rss stats parked disk excess
	sync
	st=0
	IMGPIPE_STASH_STATS=1 /usr/bin/time -f '%e %M' -o "$tm" \
		sh -c "cat '$img' | $prog > /dev/null" 2> "$err" || st=$?
	secs=$(tail -n 1 "$tm" | cut -d' ' -f1)
	rss=$(tail -n 1 "$tm" | cut -d' ' -f2)
	stats=$(grep 'parking store: budget=' "$err" | tail -n 1)
	parked=$(echo "$stats" | sed -n 's/.* parked_peak=\([0-9]*\).*/\1/p')
	disk=$(echo "$stats" | sed -n 's/.* file_disk_peak=\([0-9]*\).*/\1/p')
	excess=$(echo "$stats" | sed -n 's/.* file_disk_excess_peak=\([0-9]*\).*/\1/p')
	[ "$st" -eq 0 ] || secs="FAILED ($(grep -v 'parking store: budget=' "$err" | head -n 1 | cut -c1-60))"
	printf '| %-52s | %7s | %9s | %10s | %10s | %10s |\n' "$name" "$secs" \
		"$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$(mib "$parked")" "$(mib "$disk")" "$(mib "$excess")"
	rm -f "$err" "$tm"
}

q512=$(fixture mem-qcow2-512-rev-256m.qcow2 qcow2 reverse $((256 << 20)) 512) || exit 1
q4k=$(fixture mem-qcow2-4k-rev-1g.qcow2 qcow2 reverse $((1 << 30)) 4096) || exit 1
qed4k=$(fixture mem-qed-4k-rev-1g.qed qed reverse $((1 << 30)) 4096) || exit 1
qlast=$(fixture mem-qcow2-512-revlast-256m.qcow2 qcow2 reverse-last $((256 << 20)) 512) || exit 1
v1g=$(fixture mem-vmdk-512-gd1g.vmdk vmdk forward-last $((1 << 30)) 512) || exit 1
v2g=$(fixture mem-vmdk-512-gd2g.vmdk vmdk forward-last $((2 << 30)) 512) || exit 1
vs=$(fixture mem-vmdkstream-512-rev-256m.vmdk vmdkstream reverse $((256 << 20)) 512) || exit 1

printf '\n## memory from a pipe: cat x | PROG > /dev/null, --mem 32 MiB (default)\n\n'
printf '| %-52s | %7s | %9s | %10s | %10s | %10s |\n' "case" "s" \
	"RSS (MiB)" "parked MiB" "spill MiB" "over MiB"
printf '|%s|---------|-----------|------------|------------|------------|\n' \
	"$(printf -- '-%.0s' $(seq 54))"
memory_row "qcow2 512 B clusters backwards, 256 MiB: img2raw" "$q512" img2raw
memory_row "qcow2 512 B clusters backwards, 256 MiB: imgsum" "$q512" imgsum
memory_row "qcow2 512 B backwards, tables last, 256 MiB: img2raw" "$qlast" img2raw
memory_row "qcow2 4 KiB clusters backwards, 1 GiB: img2raw" "$q4k" img2raw
memory_row "qed 4 KiB clusters backwards, 1 GiB: img2raw" "$qed4k" img2raw
memory_row "vmdk stream, 512 B grains backwards, 256 MiB: img2raw" "$vs" img2raw
memory_row "vmdk sparse 512 B grains, GD at 1 GiB: img2raw" "$v1g" img2raw
memory_row "vmdk sparse 512 B grains, GD at 2 GiB: img2raw" "$v2g" img2raw
memory_row "qcow2 4 KiB backwards, 1 GiB: img2raw | raw2qcow2" "$q4k" \
	"img2raw | IMGPIPE_STASH_STATS=1 raw2qcow2"
