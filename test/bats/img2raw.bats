# img2raw as a program: options, probing, -f, compressed wrappers, exit
# statuses, and what it leaves behind.  Format details are in
# img2raw_FORMAT.bats.
load helpers
load formats

setup() {
	make_pattern "$T/disk.raw" 3000000
	qemu-img convert -f raw -O qcow2 "$T/disk.raw" "$T/a.qcow2"
	qemu-img convert -f qcow2 -O raw "$T/a.qcow2" "$T/want.raw"
}

@test "img2raw --list-formats names every reader, raw and qcow2 among them" {
	run img2raw --list-formats
	[ "$status" -eq 0 ]
	[[ "$output" == *"qcow2 "* ]]
	[[ "$output" == *"raw "* ]]
	[[ "$output" == *"iso "* ]]
	# one per line: NAME DESCRIPTION
	[ "$(echo "$output" | awk 'NF < 2' | wc -l)" -eq 0 ]
}

@test "img2raw -h and -V exit 0, the usage names every option" {
	run img2raw -h
	[ "$status" -eq 0 ]
	for o in -f -o --mem --tmpdir --list-formats; do
		[[ "$output" == *"$o"* ]] || { echo "no $o"; return 1; }
	done
	run img2raw -V
	[ "$status" -eq 0 ]
	[ -n "$output" ]
}

@test "img2raw probes qcow2, and -f qcow2 agrees" {
	img2raw -o "$T/out.raw" "$T/a.qcow2"
	cmp "$T/want.raw" "$T/out.raw"
	(set -o pipefail; img2raw -f qcow2 "$T/a.qcow2" | cmp - "$T/want.raw")
}

@test "img2raw -f fails when the content is not that format, naming the real one" {
	expect_reject 1 - '^input is not qcow2 \(it looks like raw\)$' img2raw -f qcow2 "$T/disk.raw"
	expect_reject 1 - '^input is not iso \(it looks like qcow2\)$' img2raw -f iso "$T/a.qcow2"
	expect_reject -i "$T/a.qcow2" 1 - '^input is not iso \(it looks like qcow2\)$' img2raw -f iso
}

@test "img2raw usage errors exit 2" {
	run img2raw --no-such-option "$T/a.qcow2"
	[ "$status" -eq 2 ]
	run img2raw "$T/a.qcow2" "$T/disk.raw"
	[ "$status" -eq 2 ]
	run img2raw --mem lots "$T/a.qcow2"
	[ "$status" -eq 2 ]
	run img2raw -f nosuchformat "$T/a.qcow2"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown format 'nosuchformat'"* ]]
	run img2raw -o
	[ "$status" -eq 2 ]
}

@test "img2raw: a missing input is an I/O error (3)" {
	run img2raw "$T/nonexistent"
	[ "$status" -eq 3 ]
	[[ "$output" == "img2raw: "*nonexistent* ]]
}

# A qcow2 whose header cluster also holds an ISO 9660 volume descriptor
# at 0x8000 (past the qcow2 header extensions, where qemu ignores it).
@test "img2raw: a qcow2 header in an ISO 9660 system area is ambiguous unless -f" {
	cp "$T/a.qcow2" "$T/hybrid.img"
	printf '\001CD001\001' | dd of="$T/hybrid.img" bs=1 seek=32768 conv=notrunc status=none
	qemu-img convert -f qcow2 -O raw "$T/hybrid.img" "$T/hybrid.want"
	expect_reject 1 - \
		'^ambiguous input: it has the signatures of both iso and qcow2; choose one with -f$' \
		img2raw -o "$T/out.raw" "$T/hybrid.img"
	[ ! -e "$T/out.raw" ]
	expect_reject -i "$T/hybrid.img" 1 - \
		'^ambiguous input: it has the signatures of both iso and qcow2; choose one with -f$' img2raw
	img2raw_4ways "$T/hybrid.img" "$T/hybrid.want" -f qcow2
	(set -o pipefail; img2raw -f iso "$T/hybrid.img" | cmp - "$T/hybrid.img")
}

wrapped() {	# COMPRESSOR EXT
	"$1" -c < "$T/a.qcow2" > "$T/a.qcow2.$2"
	img2raw -o "$T/out.raw" "$T/a.qcow2.$2"
	cmp "$T/want.raw" "$T/out.raw"
	(set -o pipefail; img2raw < <(cat "$T/a.qcow2.$2") | cmp - "$T/want.raw")
	img2raw -f qcow2 -o "$T/out2.raw" < <(cat "$T/a.qcow2.$2")
	cmp "$T/want.raw" "$T/out2.raw"
}

@test "img2raw: gzip-wrapped qcow2 from a file and a pipe" { wrapped gzip gz; }
@test "img2raw: xz-wrapped qcow2 from a file and a pipe" { wrapped xz xz; }
@test "img2raw: zstd-wrapped qcow2 from a file and a pipe" { wrapped zstd zst; }
@test "img2raw: bzip2-wrapped qcow2 from a file and a pipe" { wrapped bzip2 bz2; }

@test "img2raw: a corrupt compressed stream is rejected" {
	gzip -c < "$T/a.qcow2" > "$T/a.gz"
	head -c $(($(stat -c %s "$T/a.gz") / 2)) "$T/a.gz" > "$T/cut.gz"
	expect_reject 1 qcow2 'gzip stream: truncated gzip input$' img2raw -o "$T/out.raw" "$T/cut.gz"
	[ ! -e "$T/out.raw" ]
	expect_reject -i "$T/cut.gz" 1 qcow2 'gzip stream: truncated gzip input$' img2raw
}

# A raw disk has no size of its own: a cut compressed stream must fail,
# not end early with a shorter disk that looks complete.
@test "img2raw: a cut gzip, xz, zstd or bzip2 raw disk (mid-stream or trailer) is exit 1" {
	local c ext cut
	make_pattern "$T/disk.raw" 2097152
	for c in gzip:gz xz:xz zstd:zst bzip2:bz2; do
		ext=${c#*:}
		"${c%:*}" -c < "$T/disk.raw" > "$T/d.$ext"
		for cut in $(($(stat -c %s "$T/d.$ext") / 2)) $(($(stat -c %s "$T/d.$ext") - 4)); do
			head -c "$cut" "$T/d.$ext" > "$T/cut.$ext"
			echo "$c, cut at $cut"
			# the reason: the decompressor's own words, not "(null)";
			# with or without "raw: " (the cut may be met while probing)
			expect_reject 1 - "(^|: )${c%:*} stream: [A-Za-z]" \
				img2raw -o "$T/out.raw" "$T/cut.$ext"
			[ ! -e "$T/out.raw" ]
			expect_reject -i "$T/cut.$ext" 1 - "(^|: )${c%:*} stream: [A-Za-z]" img2raw
		done
	done
}

@test "img2raw: a full output device is exit 3" {
	run sh -c 'img2raw "$1" > /dev/full' sh "$T/a.qcow2"
	[ "$status" -eq 3 ]
	[[ "$output" == "img2raw: "*"write error"* ]]
	run sh -c 'cat "$1" | img2raw > /dev/full' sh "$T/a.qcow2"
	[ "$status" -eq 3 ]
}

@test "img2raw -o leaves no file, and no temporary, when the input is rejected" {
	mkdir "$T/out"
	head -c 100000 "$T/a.qcow2" > "$T/cut.qcow2"
	printf 'stale' > "$T/out/keep.raw"
	run img2raw -o "$T/out/disk.raw" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	run img2raw -o "$T/out/keep.raw" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	[ "$(ls -A "$T/out")" = keep.raw ]
	[ "$(cat "$T/out/keep.raw")" = stale ]
}

@test "img2raw -o replaces the file only on success; no temporaries left" {
	mkdir "$T/out" "$T/tmp"
	printf 'old contents that are longer than nothing' > "$T/out/disk.raw"
	TMPDIR=$T/tmp img2raw --mem 64K -o "$T/out/disk.raw" "$T/a.qcow2"
	cmp "$T/want.raw" "$T/out/disk.raw"
	cat "$T/a.qcow2" | TMPDIR=$T/tmp img2raw --mem 64K -o "$T/out/disk.raw"
	cmp "$T/want.raw" "$T/out/disk.raw"
	[ "$(ls -A "$T/out")" = disk.raw ]
	[ -z "$(ls -A "$T/tmp")" ]
}

@test "-o replaces a file where there is no room for two: img2raw, imgsparse, raw2vhd, raw2qcow2 (the old one is removed as the output starts)" {
	[ "$(id -u)" = 0 ] || skip "optional: needs root to mount a small tmpfs"
	# 6 MiB of data that does not compress, in a 10 MiB tmpfs: the old
	# output and the new one cannot both be there (outfile.c says why the
	# old one goes first; qemu-img truncates it, tar and install unlink it)
	head -c 6M /dev/urandom > "$T/d.raw"
	qemu-img convert -f raw -O qcow2 "$T/d.raw" "$T/d.qcow2"
	mkdir -p "$T/small"
	mount -t tmpfs -o size=10M tmpfs "$T/small"
	local prog st=0
	for prog in "img2raw $T/d.qcow2" "imgsparse $T/d.raw" \
	    "raw2vhd -s fixed $T/d.raw" "raw2qcow2 $T/d.raw"; do
		$prog -o "$T/small/out" && $prog -o "$T/small/out" ||
			{ st=$?; echo "$prog: exit $st"; break; }
		[ "$(ls -A "$T/small")" = out ] || { st=1; ls -A "$T/small"; break; }
	done
	umount "$T/small"
	[ "$st" -eq 0 ]
	# its own input: the input is open before the name goes
	cp "$T/a.qcow2" "$T/self"
	img2raw -o "$T/self" "$T/self"
	cmp "$T/want.raw" "$T/self"
	imgsparse -o "$T/self" "$T/self"
	cmp "$T/want.raw" "$T/self"
}

# closer TRACE PATH: "main" or "thread": which of the process's threads
# closed the descriptor -o opened on the file it replaced (the first pid in
# the strace -f trace is the main thread's).
closer() {
	awk -v path="\"$2\"" '
		NR == 1 { main = $1 }
		$2 ~ /^openat\(/ && index($0, path) && /O_NOFOLLOW/ { fd = $NF }
		fd != "" && $0 ~ ("^[0-9]+ +close\\(" fd "[ )]") {
			print ($1 == main ? "main" : "thread"); exit }' "$1"
}

@test "-o over a large file: its pages are freed on a thread of their own where there is room for two, first where there is not (ovftool's stream VMDK and its disk, from a file and a pipe)" {
	[ "$(id -u)" = 0 ] || skip "optional: needs root to mount a small tmpfs"
	# a real producer's layout whose disk allocates 70 MiB (over 64 MiB)
	python3 "$BATS_TEST_DIRNAME/../producers/gen.py" vmware-ovftool-stream \
		"$T/s.vmdk" --size 80M --dense 70M --raw "$T/s.raw" > /dev/null
	raw2qcow2 -o "$T/want.qcow2" "$T/s.raw"
	mkdir -p "$T/big" "$T/small"
	mount -t tmpfs -o size=400M tmpfs "$T/big"
	mount -t tmpfs -o size=200M tmpfs "$T/small"
	local prog out in how st=0
	{
		while read -r prog out in how; do
			# the first run of each output makes the file to replace
			[ -e "$out" ] || $prog -o "$out" "$in" || { st=1; break; }
			if [ "$how" = file ]; then
				strace -f -qq -o "$T/trace" -e trace=openat,close \
				    $prog -o "$out" "$in"
			else
				cat "$in" | strace -f -qq -o "$T/trace" \
				    -e trace=openat,close $prog -o "$out"
			fi || { st=1; break; }
			echo "$prog $how -> $out: $(closer "$T/trace" "$out")"
		done <<-EOF
			img2raw $T/big/out $T/s.vmdk file
			img2raw $T/big/out $T/s.vmdk pipe
			raw2qcow2 $T/big/q $T/s.raw file
			raw2qcow2 $T/big/q $T/s.raw pipe
			img2raw $T/small/out $T/s.vmdk file
			img2raw $T/small/out $T/s.vmdk pipe
		EOF
		cmp "$T/s.raw" "$T/big/out" && cmp "$T/s.raw" "$T/small/out" &&
		    cmp "$T/want.qcow2" "$T/big/q" || st=1
		# into a pipe nothing is replaced: the same disk
		cat "$T/s.vmdk" | img2raw | cmp - "$T/s.raw" &&
		    cat "$T/s.raw" | raw2qcow2 | img2raw | cmp - "$T/s.raw" || st=1
		[ "$(ls -A "$T/big" | tr '\n' ' ')" = "out q " ] &&
		    [ "$(ls -A "$T/small")" = out ] || st=1
	} > "$T/who"
	umount "$T/big" "$T/small"
	cat "$T/who"
	[ "$st" -eq 0 ]
	# 400 MiB hold the old output and room for it twice over; 200 MiB not
	[ "$(grep -c '/big/.*: thread$' "$T/who")" -eq 4 ]
	[ "$(grep -c '/small/.*: main$' "$T/who")" -eq 2 ]
}

@test "-o keeps the file it would replace when the input cannot be opened or is not what -f says; a failure later leaves no file" {
	printf 'stale' > "$T/keep"
	run img2raw -o "$T/keep" "$T/missing.qcow2"
	[ "$status" -eq 3 ]
	run img2raw -f vmdk -o "$T/keep" "$T/a.qcow2"
	[ "$status" -eq 1 ]
	run imgsparse -o "$T/keep" "$T/missing.raw"
	[ "$status" -eq 3 ]
	run raw2qcow2 -o "$T/keep" "$T/missing.raw"
	[ "$status" -ne 0 ]
	[ "$(cat "$T/keep")" = stale ]
	# the last data cluster cut off: found while writing, the old file is
	# gone and no new one looks complete
	head -c -65536 "$T/a.qcow2" > "$T/cut.qcow2"
	run img2raw -o "$T/keep" "$T/cut.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"lies past the end of the image"* ]]
	[ ! -e "$T/keep" ]
}

@test "img2raw: output file is sparse where the disk is zero" {
	img2raw -o "$T/out.raw" "$T/a.qcow2"
	[ "$(stat -c %s "$T/out.raw")" -eq "$(stat -c %s "$T/want.raw")" ]
	[ "$(du -k "$T/out.raw" | cut -f1)" -lt 1000 ]
}

# ones FILE SIZE: SIZE bytes of 0xff, the old contents of an output.
ones() { head -c "$2" /dev/zero | tr '\0' '\377' > "$1"; }

@test "img2raw into a seekable stdout that holds old bytes (1<>): exactly the image, holes read as zeros" {
	# 8 MiB: a leading 4 MiB hole, 1 MiB of data, a trailing hole
	truncate -s 8M "$T/s.raw"
	make_pattern "$T/p" 1048576
	dd if="$T/p" of="$T/s.raw" bs=1M seek=4 conv=notrunc status=none
	qemu-img convert -f raw -O qcow2 "$T/s.raw" "$T/s.qcow2"
	qemu-img convert -f qcow2 -O raw "$T/s.qcow2" "$T/s.want"
	local old
	for old in 12582912 6291456 2097152; do	# longer, inside the image, shorter
		ones "$T/old" "$old"
		img2raw "$T/s.qcow2" 1<> "$T/old"
		cmp "$T/s.want" "$T/old" || { echo "qcow2 file, old $old"; return 1; }
		ones "$T/old" "$old"
		cat "$T/s.qcow2" | img2raw 1<> "$T/old"
		cmp "$T/s.want" "$T/old" || { echo "qcow2 pipe, old $old"; return 1; }
		ones "$T/old" "$old"
		img2raw -f raw "$T/s.raw" 1<> "$T/old"
		cmp "$T/s.want" "$T/old" || { echo "raw file, old $old"; return 1; }
	done
	# the holes are holes, not written zeros
	ones "$T/old" 12582912
	img2raw "$T/s.qcow2" 1<> "$T/old"
	[ "$(du -k "$T/old" | cut -f1)" -lt 4096 ]
}

@test "img2raw: a full file system under a seekable output is exit 3, no file left" {
	[ "$(id -u)" = 0 ] || skip "optional: needs root to mount a small tmpfs"
	mkdir -p "$T/small"
	mount -t tmpfs -o size=1M tmpfs "$T/small"
	truncate -s 10M "$T/big"
	head -c 3M /dev/urandom | dd of="$T/big" conv=notrunc status=none
	run img2raw -o "$T/small/out" "$T/big"
	left=$(ls -A "$T/small")
	umount "$T/small"
	[ "$status" -eq 3 ]
	[[ "$output" == *"No space left on device"* ]]
	[ -z "$left" ]
}

# The format suites mostly convert a compressible pattern; data that does
# not compress lays images out differently (qemu-img's streamOptimized
# VMDK then ends right after its last grain), so every writer qemu-img has
# is run once more on random data with a zero run in the middle, ending on
# a grain boundary (so that no padding follows the last grain).
@test "img2raw: every qemu-img format and subformat of incompressible data, four ways" {
	local spec fmt opts
	{ head -c 3145728 /dev/urandom; head -c 1048576 /dev/zero
	  head -c 1048576 /dev/urandom; } > "$T/r.raw"
	for spec in qcow2: "qcow2:-c" "qcow2:-o compat=0.10" vmdk: \
	    "vmdk:-o subformat=streamOptimized" "vmdk:-c -o subformat=streamOptimized" \
	    vdi: "vdi:-o static=on" "vpc:-o force_size=on" \
	    "vpc:-o subformat=fixed,force_size=on" vhdx: "vhdx:-o subformat=fixed" \
	    qed: parallels:; do
		fmt=${spec%%:*} opts=${spec#*:}
		rm -f "$T/x.img"
		qemu-img convert -q -f raw -O "$fmt" $opts "$T/r.raw" "$T/x.img"
		qemu-img convert -q -f "$fmt" -O raw "$T/x.img" "$T/x.want"
		img2raw_4ways "$T/x.img" "$T/x.want" || { echo "failed: $spec"; return 1; }
	done
}

# foreign NAME FILE: probing refuses FILE from a file and from a pipe,
# naming NAME, with no output file; -f raw copies its bytes as they are.
foreign() {
	local name=$1 img=$2
	expect_reject 1 "$name" '^the input is .*, which imgpipe does not read; -f raw copies its bytes as they are$' \
		img2raw -o "$T/out.raw" "$img"
	[ ! -e "$T/out.raw" ]
	expect_reject -i "$img" 1 "$name" '^the input is ' img2raw
	img2raw_4ways "$img" "$img" -f raw
	run imginfo --strict "$img"
	[ "$status" -eq 1 ]
	run sh -c 'cat "$1" | imginfo --strict - > /dev/null' sh "$img"
	[ "$status" -eq 1 ]
}

# padded FILE SIZE: the signature written before, then zeros to SIZE.
padded() { truncate -s "$2" "$1"; }

@test "img2raw: a Bochs image is named and refused, never passed as raw" {
	printf 'Bochs Virtual HD Image' > "$T/b.img"
	truncate -s 32 "$T/b.img"; printf 'Redolog' >> "$T/b.img"
	padded "$T/b.img" 1M
	foreign bochs "$T/b.img"
}

@test "img2raw: a cloop image is named and refused" {
	printf '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n' > "$T/c.img"
	padded "$T/c.img" 300000
	foreign cloop "$T/c.img"
}

@test "img2raw: QCOW version 1 is named and refused; -f qcow2 names it too" {
	printf 'QFI\373\000\000\000\001' > "$T/q.img"
	padded "$T/q.img" 1M
	foreign qcow "$T/q.img"
	run img2raw -f qcow2 "$T/q.img"
	[ "$status" -eq 1 ]
	[[ "$output" == *"input is not qcow2 (it looks like qcow, a QCOW version 1 image)"* ]]
}

@test "img2raw: a VMware COWD sparse disk is named and refused" {
	printf 'COWD\001\000\000\000' > "$T/w.img"
	padded "$T/w.img" 1M
	foreign cowd "$T/w.img"
}

@test "img2raw: a LUKS volume is named and refused" {
	printf 'LUKS\272\276\000\001' > "$T/l.img"
	padded "$T/l.img" 1M
	foreign luks "$T/l.img"
}

# A DMG shows itself only by its last 512 bytes: from a pipe at the end.
@test "img2raw: an Apple DMG (koly trailer) is named and refused, from a pipe too" {
	head -c 100000 /dev/urandom > "$T/d.img"
	printf 'koly\000\000\000\004\000\000\002\000' >> "$T/d.img"
	padded "$T/d.img" $((100000 + 512))
	foreign dmg "$T/d.img"
}

@test "img2raw: tar, OVA and Docker archives are not disks" {
	mkdir -p "$T/t"
	echo x > "$T/t/vm.ovf"
	tar -C "$T/t" -cf "$T/a.ova" vm.ovf
	foreign ova "$T/a.ova"
	echo x > "$T/t/notes.txt"
	tar -C "$T/t" -cf "$T/a.tar" notes.txt
	foreign tar "$T/a.tar"
}

@test "img2raw: an ISO whose volume descriptor is longer than the input is truncated" {
	mkdir -p "$T/iso"
	head -c 300000 /dev/urandom > "$T/iso/f"
	xorriso -as mkisofs -quiet -o "$T/a.iso" "$T/iso" 2> /dev/null
	img2raw_4ways "$T/a.iso" "$T/a.iso"
	size=$(stat -c %s "$T/a.iso")
	head -c $((size - 4096)) "$T/a.iso" > "$T/cut.iso"
	img2raw_rejects iso "$T/cut.iso" "^the primary volume descriptor declares $size bytes, the input has only $((size - 4096))\$"
	for how in file pipe; do
		if [ $how = file ]; then run imginfo --json "$T/cut.iso"
		else run sh -c 'cat "$1" | imginfo --json -' sh "$T/cut.iso"; fi
		[ "$status" -eq 0 ]
		[[ "$output" == *'"code": "truncated"'* ]]
	done
}

@test "img2raw: the Image service's names -f vhd and -f ploop, listed by --list-formats" {
	run img2raw --list-formats
	[[ "$output" == *"vhd        the same as vpc"* ]]
	[[ "$output" == *"ploop      the same as parallels"* ]]
	make_pattern "$T/p.raw" 2097152
	qemu-img convert -f raw -O vpc "$T/p.raw" "$T/p.vhd"
	qemu-img convert -f vpc -O raw "$T/p.vhd" "$T/p.vhd.want"
	img2raw_4ways "$T/p.vhd" "$T/p.vhd.want" -f vhd
	qemu-img convert -f raw -O parallels "$T/p.raw" "$T/p.ploop"
	img2raw_4ways "$T/p.ploop" "$T/p.raw" -f ploop
	imginfo -f vhd "$T/p.vhd" > /dev/null
	imginfo -f ploop "$T/p.ploop" > /dev/null
	run img2raw -f ploop "$T/p.vhd"
	[ "$status" -eq 1 ]
}

@test "iso: imginfo --strict fails every one of 64 cuts, file and pipe alike" {
	mkdir -p "$T/iso"
	head -c 300000 /dev/urandom > "$T/iso/f"
	xorriso -as mkisofs -quiet -o "$T/a.iso" "$T/iso" 2> /dev/null
	local size k n
	size=$(stat -c %s "$T/a.iso")
	for k in $(seq 1 64); do
		n=$((36864 + (size - 36864) * k / 65))
		head -c "$n" "$T/a.iso" > "$T/cut.iso"
		codes_both "$T/cut.iso" truncated || { echo "cut at $n"; return 1; }
	done
}
