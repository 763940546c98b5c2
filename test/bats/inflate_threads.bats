#!/usr/bin/env bats
# Compressed grains (stream VMDK) and clusters (qcow2 -c) are inflated in
# batches on every core (lib/stream/inflate_pool.c): the output, and the
# message and status of a bad grain, are the same with one thread and
# with many, and the first bad grain in the image's order is the one
# named, even when a later one is bad too or a later check fails.
load helpers

# 20 MiB of compressible, distinct text, then holes: ~320 grains, more
# than one batch.
setup() {
	seq 1 3000000 | head -c $((20 << 20)) > "$T/disk.raw"
	truncate -s 24M "$T/disk.raw"
}

# grains IMAGE: "OFFSET LENGTH" of each compressed grain or cluster's
# deflated bytes, in the file's order (VMDK: by markers; qcow2: by L2).
grains() {
	python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb').read()
if f[:4] == b'QFI\xfb':
    cb = struct.unpack_from('>I', f, 20)[0]
    l1n, l1o = struct.unpack_from('>IQ', f, 36)
    x = 62 - (cb - 8)
    for i in range(l1n):
        l2 = struct.unpack_from('>Q', f, l1o + 8 * i)[0] & ((1 << 56) - 512)
        for j in range(l2 and (1 << cb) // 8):
            e = struct.unpack_from('>Q', f, l2 + 8 * j)[0]
            if e >> 62 & 1:
                host = e & ((1 << x) - 1)
                n = ((e >> x) & ((1 << (cb - 8)) - 1)) + 1
                print(host, n * 512 - (host & 511))
else:
    off = struct.unpack_from('<Q', f, 64)[0] * 512	# overHead
    while off + 512 <= len(f):
        val, size, typ = struct.unpack_from('<QII', f, off)
        if size:
            print(off + 12, size)
            off = (off + 12 + size + 511) // 512 * 512
        elif typ == 0:
            break
        else:
            off += (val + 1) * 512
PY
}

# nth_grain IMAGE N: "OFFSET LENGTH" of grain N (from 0).
nth_grain() {
	grains "$1" | sed -n "$(($2 + 1))p"
}

# garble IMAGE OFFSET: deflated bytes no decoder takes.
garble() {
	printf '\377\377\377\377\377\377\377\377' |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# same_with_threads IMAGE: img2raw -j 1 and -j 4 exit alike, say the same
# on stderr and write the same bytes (or none); status in $status, the
# message in $output.
same_with_threads() {
	local st1 st4
	rm -f "$T/j1.raw" "$T/j4.raw"
	run img2raw -j 1 -o "$T/j1.raw" "$1"
	st1=$status
	printf '%s\n' "$output" > "$T/j1.err"
	run img2raw -j 4 -o "$T/j4.raw" "$1"
	st4=$status
	printf '%s\n' "$output" > "$T/j4.err"
	[ "$st1" -eq "$st4" ] || { echo "status $st1 with -j 1, $st4 with -j 4"; return 1; }
	echo "$st1" > "$T/status"
	diff "$T/j1.err" "$T/j4.err"
	if [ "$st1" -eq 0 ]; then
		cmp "$T/j1.raw" "$T/j4.raw"
	else
		[ ! -e "$T/j1.raw" ] && [ ! -e "$T/j4.raw" ]
	fi
}

# same_from_a_pipe IMAGE: img2raw -j 1 and -j 4 from a pipe into a pipe
# exit and say as same_with_threads found from the file, and write the
# same bytes.
same_from_a_pipe() {
	local j
	for j in 1 4; do
		run sh -c 'img2raw -j "$1" < "$2" > "$3"' sh "$j" "$1" "$T/p$j.raw"
		[ "$status" -eq "$(cat "$T/status")" ] ||
			{ echo "-j $j from a pipe: status $status"; return 1; }
		printf '%s\n' "$output" | sed "s|: stdin: |: $1: |" | diff "$T/j1.err" -
	done
	cmp "$T/p1.raw" "$T/p4.raw"
}

@test "inflate threads: a stream VMDK (qemu-img's, read by tables) gives the same disk with 1 and 4 threads" {
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$T/disk.raw" "$T/q.vmdk"
	[ "$(grains "$T/q.vmdk" | wc -l)" -gt 256 ]
	same_with_threads "$T/q.vmdk"
	[ "$status" -eq 0 ]
	cmp "$T/j4.raw" "$T/disk.raw"
}

@test "inflate threads: a stream VMDK (raw2vmdk's, read by markers, from a file and a pipe) gives the same disk with 1 and 4 threads" {
	raw2vmdk -o "$T/o.vmdk" "$T/disk.raw"
	[ "$(grains "$T/o.vmdk" | wc -l)" -gt 256 ]
	same_with_threads "$T/o.vmdk"
	[ "$status" -eq 0 ]
	cmp "$T/j4.raw" "$T/disk.raw"
	same_from_a_pipe "$T/o.vmdk"
	cmp "$T/p4.raw" "$T/disk.raw"
}

@test "inflate threads: a compressed qcow2, deflate and zstd, gives the same disk with 1 and 4 threads" {
	local t
	for t in zlib zstd; do
		qemu-img convert -c -f raw -O qcow2 -o compression_type=$t \
			"$T/disk.raw" "$T/c.qcow2"
		[ "$(grains "$T/c.qcow2" | wc -l)" -gt 256 ]
		same_with_threads "$T/c.qcow2"
		[ "$status" -eq 0 ]
		cmp "$T/j4.raw" "$T/disk.raw"
	done
}

# bad_grain_in_the_middle IMAGE MESSAGE_REGEX_PREFIX: grain 150 (the
# second batch) garbled, then grain 40 (the first) too: each time the
# first bad one is named, alike with 1 and 4 threads.
bad_grain_in_the_middle() {
	local img=$1 what=$2 g150 g40
	set -- $(nth_grain "$img" 150)
	g150=$1
	garble "$img" "$g150"
	same_with_threads "$img"
	[ "$status" -eq 1 ]
	[[ $output =~ ^img2raw:\ .*:\ $what ]] || { echo "$output"; return 1; }
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
	cp "$T/j1.err" "$T/g150.err"
	set -- $(nth_grain "$img" 40)
	g40=$1
	garble "$img" "$g40"
	same_with_threads "$img"
	[ "$status" -eq 1 ]
	! diff -q "$T/g150.err" "$T/j1.err" > /dev/null
}

@test "inflate threads: a stream VMDK with a bad grain in the middle says so alike with 1 and 4 threads (tables)" {
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$T/disk.raw" "$T/q.vmdk"
	bad_grain_in_the_middle "$T/q.vmdk" "vmdk: compressed grain at 0x[0-9a-f]+ does not inflate: "
}

@test "inflate threads: a stream VMDK with a bad grain in the middle says so alike with 1 and 4 threads (markers, file and pipe)" {
	raw2vmdk -o "$T/o.vmdk" "$T/disk.raw"
	bad_grain_in_the_middle "$T/o.vmdk" "vmdk: compressed grain at 0x[0-9a-f]+ does not inflate: "
	same_from_a_pipe "$T/o.vmdk"
}

@test "inflate threads: a compressed qcow2 with a bad cluster in the middle says so alike with 1 and 4 threads" {
	qemu-img convert -c -f raw -O qcow2 "$T/disk.raw" "$T/c.qcow2"
	bad_grain_in_the_middle "$T/c.qcow2" "qcow2: compressed cluster at 0x[0-9a-f]+ \\(virtual 0x[0-9a-f]+\\) does not decompress to 65536 bytes \\(deflate\\)$"
}

@test "inflate threads: a bad grain is named before a later marker that fails its check (markers, file and pipe)" {
	local g m
	raw2vmdk -o "$T/o.vmdk" "$T/disk.raw"
	set -- $(nth_grain "$T/o.vmdk" 100)
	g=$1
	set -- $(nth_grain "$T/o.vmdk" 105)
	m=$(($1 - 12))
	garble "$T/o.vmdk" "$g"
	put_le64 "$T/o.vmdk" "$m" 3	# grain 105's LBA: not a grain's start
	same_with_threads "$T/o.vmdk"
	[ "$status" -eq 1 ]
	[[ $output == *"compressed grain at $(printf '0x%x' $((g - 12))) does not inflate"* ]] ||
		{ echo "$output"; return 1; }
	same_from_a_pipe "$T/o.vmdk"
	# and with the grain whole, the marker is what is wrong
	raw2vmdk -o "$T/o.vmdk" "$T/disk.raw"
	put_le64 "$T/o.vmdk" "$m" 3
	same_with_threads "$T/o.vmdk"
	[ "$status" -eq 1 ]
	[[ $output == *"grain marker at $(printf '0x%x' "$m") has LBA 3, not the start of a grain"* ]] ||
		{ echo "$output"; return 1; }
}

# Every L2 table is checked before any data is read (file and pipe alike),
# so a table entry past the end is named before a bad cluster it precedes
# in the image; threads change neither.
@test "inflate threads: an L2 entry past the end is named before an earlier bad cluster, from a file and a pipe (qcow2)" {
	local g e
	qemu-img convert -c -f raw -O qcow2 "$T/disk.raw" "$T/c.qcow2"
	set -- $(nth_grain "$T/c.qcow2" 100)
	g=$1
	garble "$T/c.qcow2" "$g"
	# L2 entry 110 (one L2 table maps it all): compressed, far past the end
	e=$(python3 -c '
import struct, sys
f = open(sys.argv[1], "rb").read()
l1o = struct.unpack_from(">Q", f, 40)[0]
print(struct.unpack_from(">Q", f, l1o)[0] & ((1 << 56) - 512))' "$T/c.qcow2")
	python3 -c '
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) + 8 * 110)
    f.write(struct.pack(">Q", 1 << 62 | 0x7fff0000))' "$T/c.qcow2" "$e"
	same_with_threads "$T/c.qcow2"
	[ "$status" -eq 1 ]
	[[ $output == *"compressed cluster at 0x7fff0000 (virtual 0x6e0000) lies past the end of the image"* ]] ||
		{ echo "$output"; return 1; }
	same_from_a_pipe "$T/c.qcow2"
}
