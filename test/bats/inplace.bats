# The in-place writers (fixed VHD, fixed VHDX, static VDI: the disk's
# bytes at data_at in the output, lib/stream/wsink.c wplace) take the raw
# sink's fast paths as img2raw does: from an image file into a file the
# data runs are read on the writer's threads, from a pipe into a pipe
# they are spliced, and where input and output may share blocks they are
# copied in the kernel.  The kernel path must be the one taken (strace),
# so that a silent fall-back fails here; the bytes and -v's figures are
# those of the copy path.
load helpers

# A 9 MiB disk (make_pattern) with 2.5 MiB of data over whole 1 MiB
# blocks, and its qcow2.
setup() {
	make_pattern "$T/disk.raw" 9437184
	head -c 2500000 < <(yes imgpipe-inplace) |
		dd of="$T/disk.raw" bs=1M seek=5 conv=notrunc status=none
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/d.qcow2"
}

WRITERS=("raw2vhd" "raw2vhdx -s fixed" "raw2vdi -s static")

# disk_is IMAGE: our reader gives $T/disk.raw from IMAGE.
disk_is() {
	img2raw -o "$T/back.raw" "$1" || return 1
	cmp "$T/back.raw" "$T/disk.raw"
}

@test "in place: from an image file into a file, the data runs are read on the writer's threads" {
	local w main
	for w in "${WRITERS[@]}"; do
		rm -f "$T/o.img"
		strace -f -e trace=pread64 -o "$T/trace" $w -o "$T/o.img" "$T/d.qcow2" ||
			{ echo "$w: failed"; return 1; }
		disk_is "$T/o.img" || { echo "$w: bytes differ"; return 1; }
		main=$(head -n 1 "$T/trace" | cut -d' ' -f1)
		# a pread of a whole data run (64 KiB clusters) by another thread
		# (whole, or its "<... pread64 resumed>" half when strace -f split it)
		grep -v "^$main " "$T/trace" | grep -Eq 'pread64(\(| resumed).* = [0-9]{5,}$' ||
			{ echo "$w: no data read on a writer thread"; cat "$T/trace"; return 1; }
	done
}

# The -v line's layout, data and image size (the store's use differs).
layout() {
	sed 's/; stash peak.*//' <<< "$1"
}

@test "in place: -j 1 and -j 16 give the bytes and the data figure of a pipe's input" {
	local w j
	for w in "${WRITERS[@]}"; do
		cat "$T/d.qcow2" | $w -v -o "$T/p.img" 2> "$T/p.err" ||
			{ echo "$w: from a pipe failed"; return 1; }
		for j in 1 16; do
			rm -f "$T/f.img"
			run $w -v -j $j -o "$T/f.img" "$T/d.qcow2"
			[ "$status" -eq 0 ] || { echo "$w -j $j: status $status: $output"; return 1; }
			[ "$(layout "$output")" = "$(layout "$(cat "$T/p.err")")" ] ||
				{ echo "$w -j $j: '$output' against '$(cat "$T/p.err")'"; return 1; }
			cmp "$T/f.img" "$T/p.img" || { echo "$w -j $j: bytes differ"; return 1; }
		done
	done
}

@test "in place: from a pipe into a pipe, the data runs are spliced" {
	local w
	for w in "${WRITERS[@]}"; do
		cat "$T/d.qcow2" | strace -f -e trace=splice -o "$T/trace" $w |
			cat > "$T/pp.img"
		disk_is "$T/pp.img" || { echo "$w: bytes differ"; return 1; }
		# input fd 0 to output fd 1, no offsets: moved at least one block
		grep -Eq '^[0-9]+ +splice\(0, NULL, 1, NULL, [0-9]+, [A-Z_]+\) = [0-9]{5,}$' "$T/trace" ||
			{ echo "$w: no data spliced"; cat "$T/trace"; return 1; }
	done
}

@test "in place: on one file system with IMGPIPE_CLONE=copy, the data runs are copied in the kernel" {
	local w
	for w in "${WRITERS[@]}"; do
		rm -f "$T/o.img"
		IMGPIPE_CLONE=copy strace -f -e trace=copy_file_range -o "$T/trace" \
			$w -o "$T/o.img" "$T/d.qcow2" || { echo "$w: failed"; return 1; }
		disk_is "$T/o.img" || { echo "$w: bytes differ"; return 1; }
		grep -Eq 'copy_file_range\(.* = [0-9]{5,}$' "$T/trace" ||
			{ echo "$w: nothing copied in the kernel"; cat "$T/trace"; return 1; }
	done
}
