# Images from other tools (test/producers, issue 13): VirtualBox VDI 1.1,
# FreeBSD mkimg qcow2 v2, Virtuozzo ploop v2 with format-extension dirty
# bitmaps and Parallels v1, and the containers imgpipe names and refuses
# (QCOW version 1, Bochs, cloop, Apple DMG, VMware COWD).  Each converts
# the same from a file and a pipe, equals the producer's disk, equals what
# qemu-img (and pyqcow for qcow2) reads, and gets one imginfo verdict.
load helpers
load formats

GEN=$BATS_TEST_DIRNAME/../producers/gen.py

gen() {	# PRODUCER: $T/PRODUCER.img and the disk it holds, $T/PRODUCER.raw
	python3 "$GEN" "$1" "$T/$1.img" --raw "$T/$1.raw" > /dev/null
}

# verdict_both IMAGE VERDICT: imginfo's verdict and finding codes are the
# same from a file and from a pipe, and the verdict is VERDICT.
verdict_both() {
	local f p
	f=$(imginfo --output json "$1" | first_code)
	p=$(cat "$1" | imginfo --output json - | first_code)
	echo "file: $f; pipe: $p"
	[ "$f" = "$p" ]
	[ "${f#* }" = "$2" ]
}

# read_producer PRODUCER QEMU_FORMAT: four ways, qemu-img, verdicts.
read_producer() {
	gen "$1"
	img2raw_4ways "$T/$1.img" "$T/$1.raw"
	qemu-img convert -f "$2" -O raw "$T/$1.img" "$T/$1.qemu"
	cmp "$T/$1.raw" "$T/$1.qemu"
	verdict_both "$T/$1.img" safe
}

@test "producers: VirtualBox VDI 1.1 (400-byte header, 1 MiB-aligned map and data, zero blocks)" {
	read_producer virtualbox-vdi vdi
	imginfo "$T/virtualbox-vdi.img" | grep -q "subformat: dynamic"
}

@test "producers: FreeBSD mkimg qcow2 v2 (COPIED bits, L1 sized for the disk), pyqcow agrees" {
	read_producer mkimg-qcow2 qcow2
	/usr/bin/python3 -c '
import pyqcow, sys
f = pyqcow.file()
f.open(sys.argv[1])
sys.stdout.buffer.write(f.read_buffer(f.get_media_size()))' \
		"$T/mkimg-qcow2.img" > "$T/pyqcow.raw"
	cmp "$T/mkimg-qcow2.raw" "$T/pyqcow.raw"
	qcowinfo "$T/mkimg-qcow2.img" > /dev/null
}

@test "producers: Virtuozzo ploop v2 with a format extension (dirty bitmap), -f ploop too" {
	read_producer ploop-v2 parallels
	img2raw -f ploop "$T/ploop-v2.img" | cmp - "$T/ploop-v2.raw"
	imginfo "$T/ploop-v2.img" | grep -q "subformat: ploop"
}

@test "producers: Parallels v1 (BAT in sectors) as ploop wrote it" {
	read_producer ploop-v1 parallels
}

# refused PRODUCER NAME: exit 1 naming NAME from a file and a pipe, no
# output file; imginfo unsafe both ways; -f raw copies the bytes; the
# generator is honest (qemu-img reads it to its disk, where it can).
refused() {
	gen "$1"
	expect_reject 1 "$2" '^the input is .*, which imgpipe does not read; -f raw copies its bytes as they are$' \
		img2raw -o "$T/out.raw" "$T/$1.img"
	[ ! -e "$T/out.raw" ]
	expect_reject -i "$T/$1.img" 1 "$2" '^the input is ' img2raw
	verdict_both "$T/$1.img" unsafe
	img2raw -f raw "$T/$1.img" | cmp - "$T/$1.img"
}

@test "producers: QCOW version 1 (mkimg -f qcow) is named and refused; qemu-img reads it" {
	refused qcow1 qcow
	qemu-img convert -f qcow -O raw "$T/qcow1.img" "$T/q.raw"
	cmp "$T/qcow1.raw" "$T/q.raw"
}

@test "producers: a Bochs growing image is named and refused; qemu-img reads it" {
	refused bochs bochs
	qemu-img convert -f bochs -O raw "$T/bochs.img" "$T/q.raw"
	cmp "$T/bochs.raw" "$T/q.raw"
}

@test "producers: a cloop image is named and refused; qemu-img reads it" {
	refused cloop cloop
	qemu-img convert -f cloop -O raw "$T/cloop.img" "$T/q.raw"
	cmp "$T/cloop.raw" "$T/q.raw"
}

@test "producers: an Apple DMG is named and refused, from a pipe at its trailer; qemu-img reads it" {
	refused dmg dmg
	cp "$T/dmg.img" "$T/x.dmg"
	qemu-img convert -f dmg -O raw "$T/x.dmg" "$T/q.raw"
	cmp "$T/dmg.raw" "$T/q.raw"
}

@test "producers: a VMware COWD sparse disk is named and refused" {
	refused cowd cowd
}
