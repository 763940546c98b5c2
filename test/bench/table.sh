#!/bin/sh
# make bench: one table of same-run ratios against each job's peer tool.
#
# For every job and output place, $BENCH_RUNS rounds; each round runs ours
# and the peer back to back, the order flipped every round, so that what
# the machine is doing weighs on both alike, and gives one ratio (ours /
# peer wall time, below 1 is faster).  The table shows min / median / max
# of those ratios and of both sides' times, the peak RSS of each side
# (the largest process GNU time saw) and the size of each side's output
# file.  Outputs go to tmpfs; BENCH_OUT=DIR (the disk: BENCH_OUT=
# /var/tmp/...) or BENCH_OUTS="DIR ..." picks other places for the rows
# that write a file, BENCH_JOBS="img2raw imgsum ..." (substrings of the
# job names) a subset.  The rows of issue 19's goals: img2raw of an
# uncompressed qcow2 (at most 0.8x qemu-img), of a stream VMDK and of a
# compressed qcow2 (0.35x), imgsum (0.9x xxhsum, 0.4x qemu-img + xxhsum
# for a qcow2), raw2qcow2 -c and raw2vmdk (0.25x qemu-img -c, no larger),
# img2raw pipe -> pipe (1.15x cat | cat of the same input) and the
# headline pipeline (0.7x tar + qemu-img convert).
# Every raw2X writer and subformat has a row against qemu-img convert's
# same subformat; then a table of the writers into and from pipes, which
# qemu-img cannot do: our times, peak RSS and the parking store's use.
# Before each timed command: its output removed, its inputs read into the
# page cache (bench_warm) and sync (not timed), so neither side pays for
# the other's writeback or for an input paged out meanwhile.  Then, for
# a command that writes a file, BENCH_HOT MiB (default 1536) written to
# tmpfs and removed on each CPU (bench_hot_memory), so that neither side's
# new pages are ones the VM's host has taken back; BENCH_HOT=0: not.
# BENCH_PRESENT=1 instead keeps each side's output from its previous run
# (one untimed run makes it first) and times only the rows that write a
# file: the cost of replacing an output already there (sync still runs
# before each one).
# BENCH_SYNC=1 times each command followed by sync, on both sides: the
# time until the output is on the disk (the rows on tmpfs, with nothing
# to write back, are left out).  qemu-img convert leaves its output in
# the page cache whatever the format (its fdatasync calls come while it
# creates the file: strace), while ours waits for the disk as it writes
# (O_DIRECT, write-behind; imgpipe(7)).
BENCH_OUTS=${BENCH_OUTS:-$BENCH_OUT}	# before common.sh gives it a default
. "$(dirname "$0")/common.sh"

BENCH_RUNS=${BENCH_RUNS:-5}
present=${BENCH_PRESENT:-0}
durable=${BENCH_SYNC#0}
only_files=$present	# 1: only the rows that write a file
[ -z "$durable" ] || only_files=1
tmpfs=${BENCH_TMPFS:-/dev/shm/imgpipe-bench}
BENCH_OUTS=${BENCH_OUTS:-$tmpfs}
stats=$BENCH_DIR/.table.$$
trap 'rm -rf "$stats" "$tmpfs/dense2g.raw"; for d in $BENCH_OUTS; do rm -rf "$d"/bench-ours "$d"/bench-peer "$d"/bench-tmp "$d"/bench-tmp.*; done; rm -f "$tmpfs"/bench-hot.*' EXIT
mkdir -p "$stats"

# place DIR: "tmpfs" or "disk", as df sees it.
place() {
	case $(stat -f -c %T "$1") in
	tmpfs|ramfs) echo tmpfs ;;
	*) echo "disk ($(stat -f -c %T "$1"))" ;;
	esac
}

# timed 'command' FILE: remove the outputs, warm the inputs, sync, then append
# "WALL USER SYS RSS_KIB" of one run of the command to FILE, and the size
# of the output file it wrote, if any, to FILE.size.
timed() {
	local t=$stats/t f
	[ "$present" = 1 ] || rm -f "$out/bench-ours" "$out/bench-peer"
	rm -f "$out"/bench-tmp.*
	bench_warm "$1"
	sync
	case $1 in *"$out/bench-"*) bench_hot_memory "$tmpfs" ;; esac
	/usr/bin/time -f '%e %U %S %M' -o "$t" sh -c "$1${durable:+ && sync}" \
	    >/dev/null 2>&1 ||
		{ echo "FAILED: $1" >&2; return 1; }
	cat "$t" >> "$2"
	for f in "$out/bench-ours" "$out/bench-peer"; do
		case $1 in *"$f"*) [ -f "$f" ] && stat -c %s "$f" ;; esac
	done > "$2.size"
	return 0
}

# size FILE: the last output size timed saw, in MiB, or "-".
size() {
	awk '{ s = $1 } END { if (NR) printf "%.2f", s / 1048576; else printf "-" }' "$1.size"
}

# mmm FILE COLUMN [SCALE]: "min / median / max" of a column.
mmm() {
	sort -g -k"$2" "$1" | awk -v c="$2" -v s="${3:-1}" -v f="${4:-%.2f}" '
		{ v[NR] = $c * s }
		END { if (!NR) { print "-"; exit }
			printf f " / " f " / " f "\n", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# ratios OURS PEER: per-round "ours/peer wall" and "ours/peer CPU" (user
# + system: what a loaded machine's wall time hides) lines.
ratios() {
	paste -d' ' "$1" "$2" | awk '{
		printf "%.4f %.4f\n", ($5 > 0 ? $1 / $5 : 0),
		    ($6 + $7 > 0 ? ($2 + $3) / ($6 + $7) : 0) }'
}

# row JOB OUTPUT_PLACE PEER_NAME 'our command' 'peer command':
# the commands see $o (our output) and $p (the peer's).
row() {
	local job=$1 where=$2 peer_name=$3 ours=$4 peer=$5 i fo fp
	case $BENCH_JOBS in ''|*"${job%% *}"*) ;; *) return 0 ;; esac
	if [ -n "$durable" ]; then
		# tmpfs has nothing to write back: the plain table's row
		case $where in -|pipe|tmpfs*) return 0 ;; esac
		where="$where, + sync"
	fi
	if [ "$present" = 1 ]; then
		case $where in -|pipe) return 0 ;; esac
		where="$where, present"
		sh -c "$ours" > /dev/null 2>&1 && sh -c "$peer" > /dev/null 2>&1 ||
			{ echo "FAILED: $ours; $peer" >&2; return 1; }
	fi
	fo=$stats/ours fp=$stats/peer
	: > "$fo"
	: > "$fp"
	for i in $(seq "$BENCH_RUNS"); do
		if [ $((i % 2)) = 1 ]; then
			timed "$ours" "$fo" && timed "$peer" "$fp" || return 1
		else
			timed "$peer" "$fp" && timed "$ours" "$fo" || return 1
		fi
	done
	ratios "$fo" "$fp" > "$stats/r"
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$job" "$where" \
		"$peer_name" "$(mmm "$fo" 1)" "$(mmm "$fp" 1)" \
		"$(mmm "$stats/r" 1)" "$(mmm "$stats/r" 2)" \
		"$(awk '$4 > m { m = $4 } END { printf "%.0f", m / 1024 }' "$fo") / $(awk '$4 > m { m = $4 } END { printf "%.0f", m / 1024 }' "$fp")" \
		"$(size "$fo") / $(size "$fp")"
}

raw=$(bench_fixture_raw) || exit 1
qcow2=$(bench_fixture disk4g.qcow2 -f raw -O qcow2) || exit 1
# qemu-img writes a stream VMDK at a few MB/s here (one zlib thread):
# the OVA's disk is raw2vmdk's, and the stream row runs on the first
# 64 MiB of the disk (all data).
small=$BENCH_DIR/disk64m.raw
[ -s "$small" ] || { head -c 64M "$raw" > "$small.tmp" && mv "$small.tmp" "$small"; } || exit 1
vmdk=$BENCH_DIR/disk4g-ours-stream.vmdk
[ -s "$vmdk" ] || { raw2vmdk -o "$vmdk" "$raw" || exit 1; }
ova=$BENCH_DIR/disk4g-table.ova
if ! [ -s "$ova" ]; then
	# A bare OVF; the manifest makes ovaextract check the disk's SHA256.
	w=$stats/ova && mkdir -p "$w" && cp "$vmdk" "$w/disk.vmdk" &&
	printf '%s\n' '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="disk.vmdk" ovf:id="f1"/></References><DiskSection><Info>d</Info><Disk ovf:capacity="4294967296" ovf:diskId="d1" ovf:fileRef="f1"/></DiskSection><VirtualSystem ovf:id="b"><Info>b</Info></VirtualSystem></Envelope>' > "$w/x.ovf" &&
	(cd "$w" && sha256sum x.ovf disk.vmdk |
		awk '{ print "SHA256(" $2 ")= " $1 }' > x.mf &&
		tar --format=ustar -cf "$ova.tmp" x.ovf x.mf disk.vmdk) &&
	mv "$ova.tmp" "$ova" && rm -rf "$w" || exit 1
fi

printf '# imgpipe against its peers: %s, %s cores, %s rounds per row\n\n' \
	"$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$BENCH_RUNS"
printf 'Input: a 4 GiB ext4 disk holding ~1 GiB of /usr (%s), cached.\n' \
	"$(du -m "$raw" | cut -f1) MiB allocated"
[ "$present" = 1 ] &&
	printf 'Each output already present (BENCH_PRESENT=1), from its own previous run.\n'
[ -n "$durable" ] &&
	printf 'Each time includes a sync after the command (BENCH_SYNC=1): until the output is on the disk.\n'
[ "${BENCH_HOT:-1536}" -gt 0 ] &&
	printf 'Before each command that writes a file: %s MiB written to tmpfs and removed on each CPU (BENCH_HOT).\n' "${BENCH_HOT:-1536}"
printf 'Load average before: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| job | output | peer | ours s (min / med / max) | peer s (min / med / max) | ours / peer, same round (min / med / max) | CPU ours / peer (min / med / max) | peak RSS MiB (ours / peer) | output MiB (ours / peer) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'

row "imgsum raw, xxh128" "-" "xxhsum -H2" \
	"imgsum -a xxh128 '$raw'" "xxhsum -H2 '$raw'"
# The hash itself: a dense file (no holes to skip) on tmpfs.
dense=$tmpfs/dense2g.raw
case $only_files:$BENCH_JOBS in 0:|0:*imgsum*)
	mkdir -p "$tmpfs" && head -c 2G /dev/urandom > "$dense" || exit 1 ;;
esac
row "imgsum dense 2 GiB (tmpfs), xxh128" "-" "xxhsum -H2" \
	"imgsum -a xxh128 '$dense'" "xxhsum -H2 '$dense'"
row "imgsum dense 2 GiB (tmpfs), xxh3" "-" "xxhsum -H3" \
	"imgsum -a xxh3 '$dense'" "xxhsum -H3 '$dense'"
rm -f "$dense"
# The upload gate (issue 14): imginfo --strict walks a file's tables, as
# qemu-img check does; neither should read the data.
case $only_files:$BENCH_JOBS in 0:|0:*imginfo*)
	# the images of test/bench/imginfo.sh
	for f in qcow2 vmdk vhdx; do
		n=disk4g.$f && [ $f != vmdk ] || n=disk4g-sparse.vmdk
		img=$(bench_fixture "$n" -f raw -O "$f") || exit 1
		row "imginfo --strict $f (file)" "-" "qemu-img check" \
			"imginfo --strict '$img'" "qemu-img check -f $f '$img'"
	done ;;
esac
out=$tmpfs && mkdir -p "$out" && o=$out/bench-ours p=$out/bench-peer
row "imgsum qcow2, xxh128" "-" "qemu-img convert -O raw (tmpfs) + xxhsum -H2" \
	"imgsum -a xxh128 '$qcow2'" \
	"qemu-img convert -O raw '$qcow2' '$out/bench-tmp.raw' && xxhsum -H2 '$out/bench-tmp.raw' && rm '$out/bench-tmp.raw'"
row "img2raw raw -> pipe" "pipe" "cat \\| cat" \
	"img2raw -f raw '$raw' | cat > /dev/null" "cat '$raw' | cat > /dev/null"
# A pipe into a pipe: the peer moves the qcow2's bytes, we the whole disk.
row "img2raw qcow2 pipe -> pipe" "pipe" "cat \\| cat of the qcow2" \
	"cat '$qcow2' | img2raw | cat > /dev/null" \
	"cat '$qcow2' | cat | cat > /dev/null"
# Inflate on every core: qemu-img's stream VMDK and compressed qcow2.
case $BENCH_JOBS in ''|*img2raw*)
	vmdk_qemu=$(bench_fixture disk4g.vmdk -f raw -O vmdk -o subformat=streamOptimized) &&
	qcow2_c=$(bench_fixture disk4g-c.qcow2 -f raw -O qcow2 -c) || exit 1
	row "img2raw vmdk streamOptimized -> raw" "$(place "$out")" "qemu-img convert -O raw" \
		"img2raw -o '$o' '$vmdk_qemu'" "qemu-img convert -O raw '$vmdk_qemu' '$p'"
	row "img2raw qcow2 -c -> raw" "$(place "$out")" "qemu-img convert -O raw" \
		"img2raw -o '$o' '$qcow2_c'" "qemu-img convert -O raw '$qcow2_c' '$p'" ;;
esac
row "raw2qcow2 -c" "$(place "$out")" "qemu-img convert -c -O qcow2" \
	"raw2qcow2 -c -o '$o' '$raw'" "qemu-img convert -c -O qcow2 '$raw' '$p'"
# The headline: an OVA's stream VMDK to a qcow2 through pipes, against
# extracting the VMDK with tar and converting it.
row "ovaextract \\| img2raw \\| raw2qcow2" "$(place "$out")" "tar -xf + qemu-img convert -O qcow2" \
	"ovaextract '$ova' | img2raw | raw2qcow2 > '$o'" \
	"tar -xOf '$ova' disk.vmdk > '$out/bench-tmp.vmdk' && qemu-img convert -O qcow2 '$out/bench-tmp.vmdk' '$p' && rm -f '$out/bench-tmp.vmdk'"
row "raw2vmdk streamOptimized, 64 MiB disk" "$(place "$out")" \
	"qemu-img convert -O vmdk -o subformat=streamOptimized" \
	"raw2vmdk -o '$o' '$small'" \
	"qemu-img convert -O vmdk -o subformat=streamOptimized '$small' '$p'"
for out in $BENCH_OUTS; do
	mkdir -p "$out" || exit 1
	o=$out/bench-ours p=$out/bench-peer w=$(place "$out")
	row "img2raw qcow2 -> raw" "$w" "qemu-img convert -O raw" \
		"img2raw -o '$o' '$qcow2'" "qemu-img convert -O raw '$qcow2' '$p'"
	row "img2raw raw -> raw" "$w" "cp" \
		"img2raw -f raw -o '$o' '$raw'" "cp '$raw' '$p'"
	row "raw2qcow2" "$w" "qemu-img convert -O qcow2" \
		"raw2qcow2 -o '$o' '$raw'" "qemu-img convert -O qcow2 '$raw' '$p'"
	row "raw2vmdk monolithicSparse" "$w" "qemu-img convert -O vmdk" \
		"raw2vmdk -s monolithicSparse -o '$o' '$raw'" \
		"qemu-img convert -O vmdk '$raw' '$p'"
	row "ovaextract (checks SHA256)" "$w" "tar -xOf" \
		"ovaextract -o '$o' '$ova'" "tar -xOf '$ova' disk.vmdk > '$p'"
	# each subformat against qemu-img's, both with their defaults
	# otherwise (qemu-img's VHDX blocks for 4 GiB are 16 MiB, ours 32 MiB
	# as Hyper-V's: a row with --block-size 16M too)
	while IFS='|' read -r job cmd peer; do
		row "$job" "$w" "qemu-img convert -O $peer" "$cmd -o '$o' '$raw'" \
			"qemu-img convert -f raw -O $peer '$raw' '$p'"
	done <<-EOF
	raw2vhd (fixed)|raw2vhd|vpc -o subformat=fixed
	raw2vhd -s dynamic|raw2vhd -s dynamic|vpc
	raw2vhdx (dynamic)|raw2vhdx|vhdx
	raw2vhdx --block-size 16M|raw2vhdx --block-size 16M|vhdx
	raw2vhdx -s fixed|raw2vhdx -s fixed|vhdx -o subformat=fixed
	raw2vdi (dynamic)|raw2vdi|vdi
	raw2vdi -s static|raw2vdi -s static|vdi -o static=on
	raw2ploop|raw2ploop|parallels
	EOF
done

# solo JOB 'command' 'the command with -v, stderr to $stats/v': a row of
# the pipe table (no peer).  The -v run, untimed, gives the layout and
# the parking store's peaks.
solo() {
	local job=$1 f=$stats/solo i
	case $pipe_jobs in ''|*"${job%%[ ,]*}"*) ;; *) return 0 ;; esac
	: > "$f"
	for i in $(seq "$BENCH_RUNS"); do
		timed "$2" "$f" || return 1
	done
	rm -rf "$tmpd" && mkdir -p "$tmpd" && sh -c "$3" || return 1
	printf '| %s | %s | %s | %s | %s | %s |\n' "$job" "$(mmm "$f" 1)" \
		"$(awk '$4 > m { m = $4 } END { printf "%.0f", m / 1024 }' "$f")" \
		"$(sed -n 's/.*stash peak memory \([^,]*\),.*/\1/p' "$stats/v")" \
		"$(sed -n 's/.*temporary file \(.*\)$/\1/p' "$stats/v")" \
		"$(sed -n 's/.*layout: \([^;]*\);.*/\1/p' "$stats/v")"
}

# The writers into a pipe (cat > /dev/null) from the file and from a pipe
# (cat FILE |); the store spills to the first output place.  BENCH_PIPES=0
# leaves them out.
tmpd=${BENCH_OUTS%% *}/bench-tmp
pipe_jobs=$BENCH_JOBS
[ "${BENCH_PIPES:-1}" = 0 ] || [ "$only_files" = 1 ] && pipe_jobs=none
case $pipe_jobs in ''|*raw2*)
	printf '\n| writer, into a pipe (qemu-img cannot) | ours s (min / med / max) | peak RSS MiB | store peak memory | temporary file peak | layout |\n'
	printf '|---|---|---|---|---|---|\n' ;;
esac
for cmd in "raw2vhd" "raw2vhd --azure" "raw2vhd -s dynamic" "raw2vhdx" \
    "raw2vhdx -s fixed" "raw2vdi" "raw2vdi -s static" "raw2ploop"; do
	solo "$cmd, file -> pipe" "$cmd '$raw' | cat > /dev/null" \
		"$cmd -v '$raw' 2> '$stats/v' | cat > /dev/null"
	solo "$cmd, pipe -> pipe" \
		"cat '$raw' | $cmd --tmpdir '$tmpd' | cat > /dev/null" \
		"cat '$raw' | $cmd -v --tmpdir '$tmpd' 2> '$stats/v' | cat > /dev/null"
done
rm -rf "$tmpd"
printf '\nLoad average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

# The memory cases of issue 15, built by memory.sh's builders: the worst
# layouts read from a pipe with the default budget (tables after the data,
# data backwards, 512-byte clusters and grains), the 1 TiB sparse scale
# case from a file, and the PAX-sparse OVA that must fail at once.  One
# run each (about a minute and a half here, plus a minute to build the
# fixtures the first time): peak RSS, the parking store's peak memory
# against the 32 MiB budget, the bytes parked at once and the temporary
# file's peak disk space, and its peak beyond the bytes in it.  BENCH_JOBS
# picks rows by program name ("memory": all of them); BENCH_MEMORY=0
# leaves the table out.
MEMORY_SH_LIB=1
. "$(dirname "$0")/memory.sh"
case ${BENCH_MEMORY:-1}$only_files:$BENCH_JOBS in
0*:*|*1:*) ;;
*:|*memory*|*img2raw*|*imgsum*|*raw2qcow2*|*imgsparse*|*ovaextract*)
	printf '\n## memory: peak RSS and temporary file, --mem 32 MiB (default)\n\n'
	printf 'Load average before: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	mem_head
	memory_cases || echo "memory cases: a fixture could not be built" >&2
	printf '\nLoad average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" ;;
esac
