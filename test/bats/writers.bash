# Shared by the suites of raw2vhd, raw2vhdx, raw2vdi and raw2ploop:
# `load writers` after `load helpers`.

# The small disks every subformat is written from, four ways each.
WRITER_SIZES="0 1 65541 5000000"

# writer_fixtures: $FIX/dSIZE.raw for each size (data, zero runs, holes,
# a tail that is not a whole sector), $FIX/dSIZE.padded (the disk a
# writer makes of it: whole sectors), and $FIX/g.raw, a disk of 2 GiB and
# 2 MiB with four islands of data (one across 2 GiB, where a signed
# 32-bit byte offset ends, one in the last sector): just past 2 GiB, as
# the suites stream it a dozen times each.
writer_fixtures() {
	local s off
	export FIX=$BATS_FILE_TMPDIR
	for s in $WRITER_SIZES; do
		case $s in
		0) : > "$FIX/d$s.raw" ;;
		1) printf 'x' > "$FIX/d$s.raw" ;;
		*) make_pattern "$FIX/d$s.raw" "$s" ;;
		esac
		cp "$FIX/d$s.raw" "$FIX/d$s.padded"
		truncate -s $(((s + 511) / 512 * 512)) "$FIX/d$s.padded"
	done
	truncate -s 2050M "$FIX/g.raw"
	for off in 0 1000000000 2147483000 $((2050 * 1048576 - 1000)); do
		head -c 300000 < <(yes "island $off") |
			dd of="$FIX/g.raw" bs=1M seek="$off" oflag=seek_bytes \
			conv=notrunc status=none
	done
	truncate -s 2050M "$FIX/g.raw"
}

# four_ways INPUT PROG ARGS...: PROG from a file and from a pipe, into a
# file and into a pipe ($T/ff.img, fp, pf, pp); the four must be the same
# bytes.  The program's own status counts in every way.
four_ways() {
	local in=$1
	shift
	"$@" -o "$T/ff.img" "$in" 2> "$T/ff.err" ||
		{ echo "file to file: $(cat "$T/ff.err")"; return 1; }
	(set -o pipefail; "$@" "$in" 2> /dev/null | cat > "$T/fp.img") ||
		{ echo "file to pipe failed"; return 1; }
	"$@" -o "$T/pf.img" < <(cat "$in") 2> /dev/null ||
		{ echo "pipe to file failed"; return 1; }
	(set -o pipefail; "$@" < <(cat "$in") 2> /dev/null | cat > "$T/pp.img") ||
		{ echo "pipe to pipe failed"; return 1; }
	cmp "$T/ff.img" "$T/fp.img" || { echo "file to pipe differs"; return 1; }
	cmp "$T/ff.img" "$T/pf.img" || { echo "pipe to file differs"; return 1; }
	cmp "$T/ff.img" "$T/pp.img" || { echo "pipe to pipe differs"; return 1; }
}

# xxh FILE|-: the XXH128 of a file or of standard input (cmp is slow on
# streams of GiB; xxhsum is not).
xxh() { xxhsum -H2 "$1" | cut -d' ' -f1; }

# four_ways_big INPUT PROG ARGS...: four_ways for a large sparse disk:
# only the file to file output is kept ($T/ff.img, sparse); the three
# others are compared with it by digest as they stream, not stored.
four_ways_big() {
	local in=$1 want got
	shift
	"$@" -o "$T/ff.img" "$in" 2> "$T/ff.err" ||
		{ echo "file to file: $(cat "$T/ff.err")"; return 1; }
	want=$(xxh "$T/ff.img")
	got=$(set -o pipefail; "$@" "$in" 2> /dev/null | xxh -) ||
		{ echo "file to pipe failed"; return 1; }
	[ "$got" = "$want" ] || { echo "file to pipe differs"; return 1; }
	"$@" -o "$T/pf.img" < <(cat "$in") 2> /dev/null ||
		{ echo "pipe to file failed"; return 1; }
	[ "$(xxh "$T/pf.img")" = "$want" ] || { echo "pipe to file differs"; return 1; }
	rm -f "$T/pf.img"
	got=$(set -o pipefail; "$@" < <(cat "$in") 2> /dev/null | xxh -) ||
		{ echo "pipe to pipe failed"; return 1; }
	[ "$got" = "$want" ] || { echo "pipe to pipe differs"; return 1; }
}

# img2raw_back IMAGE RAW: our reader gives RAW back, from a file and a pipe.
img2raw_back() {
	(set -o pipefail; img2raw "$1" | cmp - "$2") ||
		{ echo "$1: img2raw differs or failed"; return 1; }
	(set -o pipefail; img2raw < <(cat "$1") | cmp - "$2") ||
		{ echo "$1: img2raw from a pipe differs or failed"; return 1; }
}

# img2raw_back_big IMAGE RAW [file]: img2raw_back for a large sparse disk:
# img2raw writes a sparse file, which qemu-img compares by its allocation;
# from a pipe too unless the third argument says "file".
img2raw_back_big() {
	local how
	for how in file pipe; do
		if [ "$how" = pipe ] && [ "$3" = file ]; then
			break
		fi
		rm -f "$T/back.raw"
		if [ $how = file ]; then
			img2raw -o "$T/back.raw" "$1"
		else
			img2raw -o "$T/back.raw" < <(cat "$1")
		fi || { echo "$1: img2raw from a $how failed"; return 1; }
		[ "$(stat -c %s "$T/back.raw")" -eq "$(stat -c %s "$2")" ] &&
			qemu-img compare -q -f raw -F raw "$T/back.raw" "$2" ||
			{ echo "$1: img2raw from a $how differs"; return 1; }
	done
	rm -f "$T/back.raw"
}

# qemu_check FORMAT IMAGE: qemu-img check finds nothing to report.
qemu_check() {
	local out
	out=$(qemu-img check -f "$1" "$2" 2>&1) ||
		{ echo "$2: qemu-img check: $out"; return 1; }
	[[ "$out" == "No errors were found on the image."* ]] ||
		{ echo "$2: qemu-img check: $out"; return 1; }
}

# qemu_same FORMAT IMAGE RAW: qemu-img compare finds the same disk.
qemu_same() {
	qemu-img compare -q -f raw -F "$1" "$3" "$2" ||
		{ echo "$2: qemu-img compare differs from $3"; return 1; }
}

# yal_read IMAGE: the whole disk of a VHD or VHDX as libyal's pyvhdi
# reads it, to stdout.
yal_read() {
	/usr/bin/python3 - "$1" <<-'PY'
	import sys, pyvhdi
	h = pyvhdi.file()
	h.open(sys.argv[1])
	size, off = h.get_media_size(), 0
	while off < size:
	    n = min(1 << 20, size - off)
	    sys.stdout.buffer.write(h.read_buffer_at_offset(n, off))
	    off += n
	PY
}

# yal_same IMAGE RAW: vhdiinfo opens it and pyvhdi reads RAW from it.
yal_same() {
	local out
	out=$(vhdiinfo "$1" 2>&1) || { echo "$1: vhdiinfo: $out"; return 1; }
	[[ "$out" == *"Media size"*"($(stat -c %s "$2") bytes)"* ]] ||
		{ echo "$1: vhdiinfo: $out"; return 1; }
	(set -o pipefail; yal_read "$1" | cmp - "$2") ||
		{ echo "$1: pyvhdi differs or failed"; return 1; }
}

# yal_same_big IMAGE RAW: yal_same for a large sparse disk: pyvhdi reads
# every data extent of RAW (SEEK_DATA) and the first, middle and last MiB
# of every hole, and must find the same bytes.
yal_same_big() {
	local out
	out=$(vhdiinfo "$1" 2>&1) || { echo "$1: vhdiinfo: $out"; return 1; }
	[[ "$out" == *"Media size"*"($(stat -c %s "$2") bytes)"* ]] ||
		{ echo "$1: vhdiinfo: $out"; return 1; }
	/usr/bin/python3 - "$1" "$2" <<-'PY' || { echo "$1: pyvhdi differs"; return 1; }
	import os, sys, pyvhdi
	h = pyvhdi.file()
	h.open(sys.argv[1])
	fd = os.open(sys.argv[2], os.O_RDONLY)
	size = os.fstat(fd).st_size
	def same(off, n):
	    while n > 0:
	        k = min(n, 1 << 20)
	        if h.read_buffer_at_offset(k, off) != os.pread(fd, k, off):
	            sys.exit("differs at %d" % off)
	        off, n = off + k, n - k
	off = 0
	while off < size:
	    try:
	        data = os.lseek(fd, off, os.SEEK_DATA)
	    except OSError:
	        data = size
	    for at in (off, (off + data) // 2, data - (1 << 20)):
	        lo = max(off, min(at, data - (1 << 20)))
	        same(lo, min(1 << 20, data - lo))
	    if data >= size:
	        break
	    hole = os.lseek(fd, data, os.SEEK_HOLE)
	    same(data, hole - data)
	    off = hole
	PY
}
