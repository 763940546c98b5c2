#!/usr/bin/env bats
# Into a file, the data runs of an uncompressed image read from a file
# are read and written by the writer's threads (-j, async_defer in
# lib/io/async_writer.c), many pieces a slot, out of order: the bytes,
# the holes and the messages are the same with one thread and with many,
# and the same as from a pipe.
load helpers
load gauge

# A disk of 24 MiB: data (with zero blocks inside it) in many short runs
# and some long ones, holes between.
setup() {
	local off
	make_pattern "$T/disk.raw" $((24 << 20))
	for off in 5 6 9 12 13 14 15 16 17 21; do
		head -c $((700 << 10)) < <(yes "run-$off") |
			dd of="$T/disk.raw" bs=1M seek="$off" conv=notrunc status=none
	done
	# a zero block inside a long run: a hole in a fresh output
	dd if=/dev/zero of="$T/disk.raw" bs=4096 count=3 seek=$(((13 << 20) / 4096 + 7)) \
		conv=notrunc status=none
}

# same_bytes IMAGE [img2raw options]: -j 1, -j 3, -j 16 and the default
# write the disk, file to file, and (without options) pipe to file.
same_bytes() {
	local img=$1 j
	shift
	for j in 1 3 16 ""; do
		rm -f "$T/o.raw"
		run img2raw ${j:+-j $j} "$@" -o "$T/o.raw" "$img"
		[ "$status" -eq 0 ] || { echo "-j '$j': status $status: $output"; return 1; }
		cmp "$T/o.raw" "$T/disk.raw" || { echo "-j '$j' differs"; return 1; }
	done
	if [ $# -gt 0 ]; then	# --extents takes a path, not a pipe
		return 0
	fi
	img2raw -o "$T/p.raw" < <(cat "$img")
	cmp "$T/p.raw" "$T/disk.raw"
}

@test "img2raw threads: qcow2 (64 KiB and 512-byte clusters), vhdx, vdi and qed give the same disk with 1, 3 and 16 threads" {
	local f
	for f in qcow2 vhdx vdi qed; do
		qemu-img convert -f raw -O $f "$T/disk.raw" "$T/d.$f"
		same_bytes "$T/d.$f" || { echo "format $f"; return 1; }
	done
	qemu-img convert -f raw -O qcow2 -o cluster_size=512 "$T/disk.raw" "$T/s.qcow2"
	same_bytes "$T/s.qcow2"
}

@test "img2raw threads: a flat VMDK's extent is read on the writer's threads too" {
	qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat "$T/disk.raw" "$T/f.vmdk"
	same_bytes "$T/f.vmdk" --extents
}

# The directories outside $T a test made (global: teardown removes them,
# passed or failed).
shm= outside=
teardown() {
	rm -rf ${shm:+"$shm"} ${outside:+"$outside"}
}

# writer_threads DIR [img2raw options]: the threads img2raw starts writing
# d.qcow2 into a file in DIR (strace), once its output is checked.
writer_threads() {
	local dir=$1
	shift
	rm -f "$dir/o.raw"
	strace -f -e trace=clone,clone3 -o "$T/trace" \
		img2raw "$@" -o "$dir/o.raw" "$T/d.qcow2" || return 1
	cmp "$dir/o.raw" "$T/disk.raw" || return 1
	rm -f "$dir/o.raw"
	grep -c 'clone3\?(' "$T/trace"
}

# Buffered writes to one file take its inode lock in turn: past two
# writers they only spin on it (async_writer.c).  Direct writes to a disk
# keep eight in flight.
@test "img2raw threads: by default 8 writer threads into a file written O_DIRECT, 2 into tmpfs or with IMGPIPE_DIRECT=0" {
	local disk n
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/d.qcow2"
	shm=$(mktemp -d /dev/shm/imgpipe-threads.XXXXXX)
	disk=$T
	[ "$(stat -f -c %T "$T")" != tmpfs ] || disk=$(mktemp -d /var/tmp/imgpipe-threads.XXXXXX)
	[ "$disk" = "$T" ] || outside=$disk
	[ "$(stat -f -c %T "$disk")" != tmpfs ] || { echo "no disk file system: $disk"; return 1; }
	n=$(writer_threads "$shm")
	[ "$n" = 2 ] || { echo "tmpfs: $n threads"; return 1; }
	n=$(writer_threads "$shm" -j 5)
	[ "$n" = 5 ] || { echo "tmpfs, -j 5: $n threads"; return 1; }
	n=$(writer_threads "$disk")
	[ "$n" = 8 ] || { echo "disk: $n threads"; return 1; }
	n=$(IMGPIPE_DIRECT=0 writer_threads "$disk")
	[ "$n" = 2 ] || { echo "disk, IMGPIPE_DIRECT=0: $n threads"; return 1; }
}

# lib/io/cache_gauge.c: into a file on a disk, writes go through the page
# cache until a 32 MiB window of them lands slower than 1 GB/s, then
# O_DIRECT.  strace delays every pwrite64 by 50 ms (8 threads: 160 MB/s):
# longer than a window's 32 MiB may take (33.6 ms), so the first write to
# end gives the verdict, and only the writes under way with it (one a
# thread, 8 threads) end buffered.
@test "img2raw threads: into a file on a disk, through the page cache until its writes are slow, then O_DIRECT; IMGPIPE_DIRECT=1 at once, =0 never" {
	local b d how
	disk_dir
	head -c $((96 << 20)) /dev/urandom > "$outside/disk.raw"
	qemu-img convert -f raw -O qcow2 "$outside/disk.raw" "$outside/d.qcow2"
	for how in file pipe; do
		slow_into_file $how "$outside/d.qcow2"
		cmp "$outside/o.raw" "$outside/disk.raw"
		echo "from a $how, slow: $b buffered, $d direct"
		# one slow write, not a window of 32 MiB; all 96 MiB direct
		# is the old way
		[ "$b" -ge 1 ]
		[ "$b" -le 8 ]
		[ "$d" -ge 16 ]
	done
	direct_env 1 "$outside/d.qcow2"
	[ "$b" -eq 0 ]
	[ "$d" -ge 96 ]
	direct_env 0 "$outside/d.qcow2"
	[ "$b" -ge 96 ]
	[ "$d" -eq 0 ]
}

# The same with a real producer's layout: VMware ovftool's stream VMDK
# (test/producers), inflated, from a file and a pipe into a file on a
# disk with slow writes, and into a pipe: the same disk every way.
@test "img2raw threads: ovftool's stream VMDK into a file on a disk leaves the page cache when its writes are slow, from a file and a pipe; into a pipe the same disk" {
	local b d how
	disk_dir
	python3 "$BATS_TEST_DIRNAME/../producers/gen.py" vmware-ovftool-stream \
		"$outside/s.vmdk" --size 96M --dense 80M --raw "$outside/s.raw" > /dev/null
	for how in file pipe; do
		slow_into_file $how "$outside/s.vmdk"
		cmp "$outside/o.raw" "$outside/s.raw"
		echo "ovftool VMDK from a $how, slow: $b buffered, $d direct"
		[ "$b" -ge 1 ]
		[ "$b" -le 8 ]
		[ "$d" -ge 16 ]
	done
	img2raw "$outside/s.vmdk" | cmp - "$outside/s.raw"
	cat "$outside/s.vmdk" | img2raw | cmp - "$outside/s.raw"
}

# hole_at FILE OFFSET LENGTH: the range reads as a hole (SEEK_DATA skips it).
hole_at() {
	python3 - "$@" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, n = int(sys.argv[2]), int(sys.argv[3])
sys.exit(0 if os.lseek(fd, off, os.SEEK_DATA) >= off + n else 1)
PY
}

# A fresh output keeps zero blocks inside data as holes, as the reader's
# own zero split did (and qemu-img does).
@test "img2raw threads: zero blocks inside data are holes in a fresh output" {
	local j z=$(((13 << 20) + 7 * 4096))
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/d.qcow2"
	for j in 1 3; do
		rm -f "$T/o.raw"
		img2raw -j $j -o "$T/o.raw" "$T/d.qcow2"
		cmp "$T/o.raw" "$T/disk.raw"
		hole_at "$T/o.raw" $z 12288 || { echo "-j $j: no hole at $z"; return 1; }
	done
}

# Standard output on a file that held bytes (1<>): the writer's threads
# write zero blocks below its old end, not leave them to show old bytes.
@test "img2raw threads: zero blocks inside data overwrite what an output file held" {
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/d.qcow2"
	head -c $((24 << 20)) < <(yes old) > "$T/o.raw"
	img2raw -j 3 "$T/d.qcow2" 1<> "$T/o.raw"
	cmp "$T/o.raw" "$T/disk.raw"
}

# A cut image: the data cluster past the end is named as it always was,
# alike with any number of threads, and no output is left.
@test "img2raw threads: a cut qcow2 fails alike with 1 and 16 threads and from a pipe" {
	local j
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/d.qcow2"
	head -c $(($(stat -c %s "$T/d.qcow2") / 2)) "$T/d.qcow2" > "$T/cut.qcow2"
	run img2raw -j 1 -o "$T/o1.raw" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	[[ $output == "img2raw: $T/cut.qcow2: qcow2: data cluster at "*" lies past the end of the image" ]] ||
		{ echo "$output"; return 1; }
	printf '%s\n' "$output" > "$T/j1.err"
	run img2raw -j 16 -o "$T/o16.raw" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" | diff "$T/j1.err" -
	[ ! -e "$T/o1.raw" ]
	[ ! -e "$T/o16.raw" ]
	run sh -c 'img2raw -o "$1" < "$2"' sh "$T/p.raw" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" | sed "s|: stdin: |: $T/cut.qcow2: |" | diff "$T/j1.err" -
}
