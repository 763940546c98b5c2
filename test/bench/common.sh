# Sourced by every test/bench/*.sh.  Fixtures are made once and kept in
# $BENCH_DIR (default /var/tmp/imgpipe-bench); timings are medians of
# $BENCH_RUNS runs (default 3) of whole commands, with the page cache warm
# for every tool alike.
BENCH_DIR=${BENCH_DIR:-/var/tmp/imgpipe-bench}
BENCH_RUNS=${BENCH_RUNS:-3}
# Where outputs go.  BENCH_OUT=/dev/shm (tmpfs) takes the disk's writeback
# out of the measure, which otherwise swings file-writing times 2-6x here.
BENCH_OUT=${BENCH_OUT:-$BENCH_DIR}
: "${IMGPIPE_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/bin}"
export PATH="$IMGPIPE_BIN:$PATH"
mkdir -p "$BENCH_DIR"

# A 4 GiB ext4 disk holding about 1 GiB of real files (from /usr), the
# rest free space: the shape of a typical cloud image.
bench_fixture_raw() {
	local f=$BENCH_DIR/disk4g.raw src
	if ! [ -s "$f" ]; then
		src=$BENCH_DIR/src
		rm -rf "$src" && mkdir -p "$src"
		# ~1 GiB: copy whole directories of /usr until the budget is met
		for d in /usr/share /usr/bin /usr/include /usr/lib/x86_64-linux-gnu /usr/lib; do
			[ "$(du -sm "$src" | cut -f1)" -ge 1000 ] && break
			cp -a "$d" "$src/$(echo "$d" | tr / _)" 2>/dev/null
		done
		mke2fs -q -t ext4 -d "$src" -F "$f.tmp" 4G >/dev/null 2>&1 || return 1
		mv "$f.tmp" "$f"
		rm -rf "$src"
	fi
	echo "$f"
}

# bench_fixture IMAGE_NAME QEMU_IMG_CONVERT_ARGS...: an image made from the
# raw fixture by qemu-img, cached.
bench_fixture() {
	local name=$1 raw
	shift
	raw=$(bench_fixture_raw) || return 1
	if ! [ -s "$BENCH_DIR/$name" ]; then
		qemu-img convert "$@" "$raw" "$BENCH_DIR/$name.tmp" &&
			mv "$BENCH_DIR/$name.tmp" "$BENCH_DIR/$name" || return 1
	fi
	echo "$BENCH_DIR/$name"
}

# bench_warm 'shell command': read into the page cache the data of the
# fixtures the command names (files in $BENCH_DIR, not the bench-* outputs),
# holes left out.  Why before every command: the machines here page out
# file pages idle for about a minute (DAMON's pageout scheme, 128 MiB/s),
# so an input cached when the table began may be on the disk again by its
# row, and whichever side ran first paid for reading it.
bench_warm() {
	printf '%s\n' "$1" | grep -o "$BENCH_DIR/[^' ]*" | sort -u |
	while read -r f; do
		case ${f##*/} in bench-*) continue ;; esac
		[ -f "$f" ] && printf '%s\0' "$f"
	done | python3 -c '
import os, sys
buf = bytearray(1 << 20)
for path in sys.stdin.read().split("\0")[:-1]:
    fd = os.open(path, os.O_RDONLY)
    off, end = 0, os.fstat(fd).st_size
    while off < end:
        try:
            off = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        hole = os.lseek(fd, off, os.SEEK_HOLE)
        while off < hole:
            off += max(os.preadv(fd, [buf], off), 1)
        off = hole
    os.close(fd)
'
}

# bench_hot_memory DIR: just before a timed command that writes a file,
# write BENCH_HOT MiB (default 1536) into DIR (tmpfs) on each CPU and
# remove it there, so that the command's new pages are ones the host still
# backs.  Why: this VM gives memory left free for a second or so back to
# its host (README, "On tmpfs"), and the first touch of such a page is a
# host fault.  dd of 1.3 GB into a new ext4 file took 0.34 s right after
# an equal file was removed, 1.1-1.4 s one to four seconds later and 2.5 s
# eight seconds later (2026-12-03); which of these a run met was a race
# with the removal, warm and sync before it, and it fell on either side.
# Pages a CPU frees stay on its own free list, where its next allocations
# find them: hence one writer per CPU.  BENCH_HOT=0 leaves it out.
bench_hot_memory() {
	local mib=${BENCH_HOT:-1536} cpu
	[ "$mib" -gt 0 ] || return 0
	mkdir -p "$1" || return 1
	for cpu in $(seq 0 $(($(nproc) - 1))); do
		taskset -c "$cpu" sh -c 'head -c "$1" /dev/zero > "$2" && rm "$2"' \
		    sh "${mib}M" "$1/bench-hot.$cpu" &
	done
	wait
}

# time_once 'shell command' FILE: append "SECONDS MAX_RSS_KIB" to FILE.
# Each run starts with no dirty pages left by the one before (sync, not
# timed): otherwise the kernel's writeback of the last output lands on
# whoever runs next, and file-writing times swing 2-6x.
time_once() {
	local out=$BENCH_DIR/.time.$$
	bench_warm "$1"
	sync
	/usr/bin/time -f '%e %M' -o "$out" sh -c "$1" >/dev/null 2>&1 ||
		{ echo "FAILED: $1" >&2; rm -f "$out"; return 1; }
	cat "$out" >> "$2"
	rm -f "$out"
}

# median FILE: "MEDIAN_SECONDS MAX_RSS_KIB" of the runs in FILE.
median() {
	sort -n "$1" | awk '{ t[NR] = $1; if ($2 > m) m = $2 }
		END { if (NR) print t[int((NR + 1) / 2)], m; else print "nan 0" }'
}

# bench_time 'shell command': "MEDIAN_SECONDS MAX_RSS_KIB" over
# $BENCH_RUNS runs.  RSS is the largest process GNU time saw.
bench_time() {
	local f=$BENCH_DIR/.runs.$$ i
	: > "$f"
	for i in $(seq "$BENCH_RUNS"); do
		time_once "$1" "$f" || { rm -f "$f"; echo "nan 0"; return 1; }
	done
	median "$f"
	rm -f "$f"
}

# bench_header TITLE: a table's title and column heads.
bench_header() {
	printf '\n## %s\n\n' "$1"
	printf '| %-44s | %9s | %9s | %-24s | %6s | %9s |\n' \
		"case" "ours (s)" "peer (s)" "peer" "ratio" "RSS (MiB)"
	printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 46))" \
		"-----------" "-----------" "$(printf -- '-%.0s' $(seq 26))" \
		"--------" "-----------"
}

# bench_row CASE 'our command' PEER_NAME 'peer command': runs both,
# alternating (ours, peer, ours, peer, ...) so that the state of the page
# cache and the machine weighs on both alike, and prints a table row;
# ratio = ours / peer (below 1 is faster than the peer).
bench_row() {
	local name=$1 ours=$2 peer_name=$3 peer=$4 fo fp i
	fo=$BENCH_DIR/.ours.$$ fp=$BENCH_DIR/.peer.$$
	: > "$fo"
	: > "$fp"
	for i in $(seq "$BENCH_RUNS"); do
		time_once "$ours" "$fo"
		[ -z "$peer" ] || time_once "$peer" "$fp"
	done
	set -- $(median "$fo") $(median "$fp")
	rm -f "$fo" "$fp"
	printf '| %-44s | %9s | %9s | %-24s | %6s | %9s |\n' "$name" "$1" "$3" \
		"$peer_name" "$(awk -v a="$1" -v b="$3" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
		"$(awk -v k="$2" 'BEGIN { printf "%.1f", k / 1024 }')"
}
