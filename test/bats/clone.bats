# img2raw of an uncompressed image whose output lies on the input's file
# system: whole blocks of its data runs are cloned (FICLONERANGE) where the
# file system shares blocks, as qemu-img convert -C does; ragged edges and
# runs whose input and output offsets disagree within a block are copied.
# lib/io/zcopy.c (zclone_range), reached through image_emit_range.
load helpers

# 6 MiB: 1 MiB of random data at 64 KiB, a hole, 2 MiB of random data
# with a zero run inside, then a hole to the end.
setup() {
	truncate -s 6M "$T/disk.raw"
	head -c 1M /dev/urandom | dd of="$T/disk.raw" bs=64K seek=1 conv=notrunc status=none
	{ head -c 1M /dev/urandom; head -c 64K /dev/zero; head -c 960K /dev/urandom; } |
		dd of="$T/disk.raw" bs=1M seek=3 conv=notrunc status=none
}

teardown() {
	if mountpoint -q "$T/x" 2>/dev/null; then umount "$T/x"; fi
}

# xfs_here: a loop-mounted XFS with reflink at $T/x, or an optional skip.
xfs_here() {
	[ "$(id -u)" = 0 ] || skip "optional: needs root to loop-mount an XFS image"
	grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null ||
		skip "optional: the kernel has no XFS"
	truncate -s 512M "$T/x.img"
	mkfs.xfs -q -m reflink=1 "$T/x.img"
	mkdir "$T/x"
	mount -o loop "$T/x.img" "$T/x" 2>/dev/null ||
		skip "optional: cannot loop-mount (no loop devices here)"
}

# shared_kib FILE: KiB of FILE's extents that share blocks with another.
shared_kib() {
	filefrag -v "$1" | awk -F: '/shared/ { n += $4 } END { print n * 4 + 0 }'
}

# each_format DIR FUNCTION: FUNCTION IMAGE WANT for qcow2, VHDX, VDI and
# VHD images of the disk in DIR, WANT qemu-img's raw of IMAGE.
each_format() {
	local dir=$1 fn=$2 spec fmt opts
	for spec in qcow2: "qcow2:-o cluster_size=4096" vhdx: vdi: vpc:; do
		fmt=${spec%%:*} opts=${spec#*:}
		rm -f "$dir/img" "$dir/want"
		qemu-img convert -q -f raw -O "$fmt" $opts "$T/disk.raw" "$dir/img"
		qemu-img convert -q -f "$fmt" -O raw "$dir/img" "$dir/want"
		"$fn" "$dir/img" "$dir/want" || { echo "failed: $spec"; return 1; }
	done
}

same_bytes() {
	rm -f "$(dirname "$1")/out"
	img2raw -o "$(dirname "$1")/out" "$1"
	cmp "$2" "$(dirname "$1")/out"
}

@test "clone: qcow2, VHDX, VDI and VHD on XFS with reflink: the bytes qemu-img gives, data blocks shared" {
	xfs_here
	check() {
		same_bytes "$1" "$2" || return 1
		case $(qemu-img info "$1" | awk '/^file format/ { print $3 }') in
		# VHD: data after a sector bitmap; qemu-img's VDI: data from
		# 0x400: offsets that disagree within a block, copied
		vpc|vdi) ;;
		*) [ "$(shared_kib "$T/x/out")" -ge 2048 ] ||
			{ filefrag -v "$T/x/out"; return 1; } ;;
		esac
	}
	each_format "$T/x" check
}

@test "clone: a plain raw file on XFS is cloned too, holes kept" {
	xfs_here
	cp "$T/disk.raw" "$T/x/in.raw"
	img2raw -o "$T/x/out" "$T/x/in.raw"
	cmp "$T/disk.raw" "$T/x/out"
	[ "$(shared_kib "$T/x/out")" -ge 2048 ]
	[ "$(du -k "$T/x/out" | cut -f1)" -lt 4096 ]
}

@test "clone: into an XFS file that holds old bytes (1<>), exactly the image" {
	xfs_here
	qemu-img convert -q -f raw -O qcow2 "$T/disk.raw" "$T/x/img"
	head -c 8M /dev/zero | tr '\0' '\377' > "$T/x/old"
	img2raw "$T/x/img" 1<> "$T/x/old"
	cmp "$T/disk.raw" "$T/x/old"
	[ "$(shared_kib "$T/x/old")" -ge 2048 ]
}

@test "clone: a run whose end is not on a block boundary: whole blocks cloned, the tail copied" {
	xfs_here
	# a virtual size 1 KiB past a block: the last run ends mid-block
	head -c $((1048576 + 1024)) /dev/urandom > "$T/odd.raw"
	qemu-img convert -q -f raw -O qcow2 "$T/odd.raw" "$T/x/img"
	img2raw -o "$T/x/out" "$T/x/img"
	cmp "$T/odd.raw" "$T/x/out"
	[ "$(shared_kib "$T/x/out")" -ge 1024 ]
}

@test "clone: IMGPIPE_CLONE=copy takes copy_file_range on any one file system (here ext4 or tmpfs): same bytes" {
	mkdir "$T/d"
	check() {
		rm -f "$T/d/out"
		IMGPIPE_CLONE=copy strace -f -e trace=copy_file_range -o "$T/trace" \
			img2raw -o "$T/d/out" "$1"
		cmp "$2" "$T/d/out" || return 1
		case $(qemu-img info "$1" | awk '/^file format/ { print $3 }') in
		vdi) ;;	# its reader reads its blocks itself (its messages)
		*) grep -q 'copy_file_range(.*= [1-9]' "$T/trace" ||
			{ cat "$T/trace"; return 1; } ;;
		esac
	}
	each_format "$T/d" check
}

@test "clone: the ordinary path where sharing is off or impossible: same bytes, zero blocks as holes" {
	mkdir "$T/d"
	qemu-img convert -q -f raw -O qcow2 "$T/disk.raw" "$T/d/img"
	IMGPIPE_CLONE=0 img2raw -o "$T/d/out" "$T/d/img"
	cmp "$T/disk.raw" "$T/d/out"
	# to another file system (tmpfs): no clone, no copy_file_range
	out=/dev/shm/imgpipe-clone-$$.raw
	strace -f -e trace=copy_file_range,ioctl -o "$T/trace" img2raw -o "$out" "$T/d/img"
	run cmp "$T/disk.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	run grep -E 'copy_file_range\(|FICLONERANGE' "$T/trace"
	[ "$status" -eq 1 ]
}

@test "clone: a fixed VHD, a fixed VHDX and a static VDI of a raw file on XFS share its blocks (copy_file_range), holes kept" {
	local w
	xfs_here
	cp "$T/disk.raw" "$T/x/in.raw"
	for w in raw2vhd "raw2vhdx -s fixed" "raw2vdi -s static"; do
		rm -f "$T/x/out" "$T/x/back"
		strace -f -e trace=copy_file_range -o "$T/trace" \
		    $w -o "$T/x/out" "$T/x/in.raw"
		grep -q 'copy_file_range(.*= [1-9]' "$T/trace" || { echo "$w: not copy_file_range"; return 1; }
		[ "$(shared_kib "$T/x/out")" -ge 2048 ] || { echo "$w"; filefrag -v "$T/x/out"; return 1; }
		[ "$(du -k "$T/x/out" | cut -f1)" -lt 4096 ] || { echo "$w: holes filled"; return 1; }
		img2raw -o "$T/x/back" "$T/x/out"
		cmp "$T/disk.raw" "$T/x/back" || { echo "$w: bytes"; return 1; }
	done
}
