# From a pipe, the programs that read a whole image (img2raw, imgsum, the
# writers) read it to its end once the image is read (source_drain), as
# imginfo and uecsplit do: the program writing into the pipe must finish,
# not die of SIGPIPE, or `set -o pipefail` fails a conversion that
# worked (a VHDX, a VDI and a stream VMDK end before their file does: CI
# met it once with Disk2vhd's VHDX and `cat`).  8 MiB after the image is
# more than a pipe holds, so a reader that stops early always fails here.
load helpers

setup() {
	make_pattern "$T/disk.raw" $((6 << 20))
	qemu-img convert -f raw -O vhdx "$T/disk.raw" "$T/d.vhdx"
	qemu-img convert -f raw -O vdi "$T/disk.raw" "$T/d.vdi"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized \
		"$T/disk.raw" "$T/d.vmdk"
}

# with_tail IMAGE: the image, then 8 MiB of zeros, into a pipe.
with_tail() {
	cat "$1" && head -c $((8 << 20)) /dev/zero
}

@test "drain: img2raw from a pipe reads to its end: the writer finishes, the disk is right" {
	local f
	set -o pipefail
	for f in vhdx vdi vmdk; do
		with_tail "$T/d.$f" | img2raw | cmp - "$T/disk.raw" ||
			{ echo "$f: to a pipe, status $?"; return 1; }
		rm -f "$T/o.raw"
		with_tail "$T/d.$f" | img2raw -o "$T/o.raw" && cmp "$T/o.raw" "$T/disk.raw" ||
			{ echo "$f: to a file, status $?"; return 1; }
	done
}

@test "drain: imgsum and a writer from a pipe read to its end too" {
	local f want got
	set -o pipefail
	want=$(imgsum -f raw "$T/disk.raw")
	want=${want%% *}
	for f in vhdx vdi vmdk; do
		got=$(with_tail "$T/d.$f" | imgsum) || { echo "$f: imgsum, status $?"; return 1; }
		[ "${got%% *}" = "$want" ] || { echo "$f: imgsum $got"; return 1; }
		with_tail "$T/d.$f" | raw2qcow2 | img2raw | cmp - "$T/disk.raw" ||
			{ echo "$f: raw2qcow2, status $?"; return 1; }
	done
}

# Real producers' layouts (test/producers/gen.py): Disk2vhd's VHDX (the
# one CI met), VirtualBox's VDI and ovftool's stream VMDK, with the tail,
# to a pipe and to a file, and imgsum.
@test "drain: Disk2vhd VHDX, VirtualBox VDI, ovftool stream VMDK with a tail, from a pipe" {
	local p want got
	set -o pipefail
	for p in disk2vhd-vhdx virtualbox-vdi vmware-ovftool-stream; do
		python3 "$BATS_TEST_DIRNAME/../producers/gen.py" "$p" "$T/$p.img" \
			--raw "$T/$p.raw" > /dev/null
		with_tail "$T/$p.img" | img2raw | cmp - "$T/$p.raw" ||
			{ echo "$p: to a pipe, status $?"; return 1; }
		rm -f "$T/o.raw"
		with_tail "$T/$p.img" | img2raw -o "$T/o.raw" && cmp "$T/o.raw" "$T/$p.raw" ||
			{ echo "$p: to a file, status $?"; return 1; }
		want=$(imgsum -f raw "$T/$p.raw")
		got=$(with_tail "$T/$p.img" | imgsum) || { echo "$p: imgsum, status $?"; return 1; }
		[ "${got%% *}" = "${want%% *}" ] || { echo "$p: imgsum $got, disk $want"; return 1; }
	done
}
