# imgsum: the digest of the virtual disk, equal to what xxhsum and
# sha256sum print for the raw disk qemu-img makes from the same image.
load helpers

PATTERN_SIZE=5000000	# not a multiple of anything: tails get exercised

# The format variants the reader suites cover: READER QEMU-FORMAT [-o ...].
# READER is the name the reader registers (img2raw --list-formats).
variant() {
	case $1 in
	raw)		echo "raw       raw" ;;
	iso)		echo "iso       raw" ;;
	qcow2-v2)	echo "qcow2     qcow2 -o compat=0.10" ;;
	qcow2-v3)	echo "qcow2     qcow2 -o compat=1.1" ;;
	qcow2-comp)	echo "qcow2     qcow2 -c" ;;
	qcow2-gzip)	echo "qcow2     qcow2" ;;
	vmdk-sparse)	echo "vmdk      vmdk -o subformat=monolithicSparse" ;;
	vmdk-stream)	echo "vmdk      vmdk -o subformat=streamOptimized" ;;
	vdi-static)	echo "vdi       vdi -o static=on" ;;
	vdi-dynamic)	echo "vdi       vdi" ;;
	vpc-fixed)	echo "vpc       vpc -o subformat=fixed" ;;
	vpc-dynamic)	echo "vpc       vpc -o subformat=dynamic" ;;
	vhdx-fixed)	echo "vhdx      vhdx -o subformat=fixed" ;;
	vhdx-dynamic)	echo "vhdx      vhdx -o subformat=dynamic" ;;
	qed)		echo "qed       qed" ;;
	parallels)	echo "parallels parallels" ;;
	*)		return 1 ;;
	esac
}

# require_reader NAME: imgsum reads NAME; every reader is built in, so a
# missing one fails the test (it is never a reason to skip)
require_reader() {
	local list
	list=$(imgsum --list-formats) || return 1
	awk '{ print $1 }' <<< "$list" | grep -qx "$1" ||
		{ echo "imgsum --list-formats has no reader $1"; return 1; }
}

# make_variant NAME: $T/img (the image) and $T/want.raw (qemu-img's raw disk).
make_variant() {
	local name=$1 reader qfmt
	set -- $(variant "$name")
	reader=$1 qfmt=$2
	shift 2
	# (called as "make_variant || return 1", which turns set -e off here:
	# every step says when it fails)
	require_reader "$reader" || return 1
	make_pattern "$T/pattern.raw" "$PATTERN_SIZE" || return 1
	if [ "$name" = iso ]; then
		# an ISO 9660 primary volume descriptor at sector 16, declaring
		# the blocks of 2048 bytes the file holds (ECMA-119 8.4: both-
		# endian volume space size at 80, logical block size at 128)
		python3 - "$T/pattern.raw" <<-'PY' || return 1
		import os, struct, sys
		f = sys.argv[1]
		blocks = os.path.getsize(f) // 2048
		with open(f, "r+b") as o:
		    o.seek(32768)
		    o.write(b"\x01CD001\x01")
		    o.seek(32768 + 80)
		    o.write(struct.pack("<I", blocks) + struct.pack(">I", blocks))
		    o.seek(32768 + 128)
		    o.write(struct.pack("<H", 2048) + struct.pack(">H", 2048))
		PY
	fi
	qemu-img convert -f raw -O "$qfmt" "$@" "$T/pattern.raw" "$T/img" || return 1
	# -f: qemu-img probes a fixed VHD as raw (its footer is at the end)
	qemu-img convert -f "$qfmt" -O raw "$T/img" "$T/want.raw" || return 1
	if [ "$name" = qcow2-gzip ]; then
		gzip -c "$T/img" > "$T/img.gz" && mv "$T/img.gz" "$T/img" || return 1
	fi
	if [ "$name" = iso ]; then
		# the probe must see the signature, or this row tests raw again
		imgsum -f iso "$T/img" > /dev/null || return 1
	fi
}

digest_of() {	# digest_of COMMAND...: the first field of its output; fails with it
	local out
	out=$("$@") || return 1
	awk '{ print $1 }' <<< "$out"
}

# check_variant NAME: imgsum equals xxhsum -H2 and sha256sum of the raw
# disk, from a file and from a pipe.
check_variant() {
	local want128 want256 got
	make_variant "$1" || return 1
	want128=$(digest_of xxhsum -H2 "$T/want.raw") || return 1
	want256=$(digest_of sha256sum "$T/want.raw") || return 1
	got=$(imgsum "$T/img") || return 1
	[ "$got" = "$want128  $T/img" ] || { echo "file xxh128: $got, want $want128"; return 1; }
	got=$(imgsum < <(cat "$T/img")) || return 1
	[ "$got" = "$want128  stdin" ] || { echo "pipe xxh128: $got, want $want128"; return 1; }
	got=$(imgsum -a sha256 "$T/img") || return 1
	[ "$got" = "$want256  $T/img" ] || { echo "file sha256: $got, want $want256"; return 1; }
	got=$(imgsum -a sha256 - < <(cat "$T/img")) || return 1
	[ "$got" = "$want256  -" ] || { echo "pipe sha256: $got, want $want256"; return 1; }
}

@test "variant raw" { check_variant raw; }
@test "variant iso (raw with an ISO 9660 signature)" { check_variant iso; }
@test "variant qcow2 v2" { check_variant qcow2-v2; }
@test "variant qcow2 v3" { check_variant qcow2-v3; }
@test "variant qcow2 compressed" { check_variant qcow2-comp; }
@test "variant qcow2 in gzip" { check_variant qcow2-gzip; }
@test "variant vmdk monolithicSparse" { check_variant vmdk-sparse; }
@test "variant vmdk streamOptimized" { check_variant vmdk-stream; }
@test "variant vdi static" { check_variant vdi-static; }
@test "variant vdi dynamic" { check_variant vdi-dynamic; }
@test "variant vpc fixed" { check_variant vpc-fixed; }
@test "variant vpc dynamic" { check_variant vpc-dynamic; }
@test "variant vhdx fixed" { check_variant vhdx-fixed; }
@test "variant vhdx dynamic" { check_variant vhdx-dynamic; }
@test "variant qed" { check_variant qed; }
@test "variant parallels" { check_variant parallels; }

@test "every algorithm prints what its peer tool prints, file and stdin" {
	make_pattern "$T/d.raw" "$PATTERN_SIZE"
	cd "$T"
	output_is "$(xxhsum -H2 d.raw)" imgsum d.raw
	output_is "$(xxhsum -H2 --tag d.raw)" imgsum -a xxh128 --tag d.raw
	output_is "$(xxhsum -H3 d.raw)" imgsum -a xxh3 d.raw
	output_is "$(xxhsum -H3 --tag d.raw)" imgsum -a xxh3 --tag d.raw
	output_is "$(xxhsum -H1 d.raw)" imgsum -a xxh64 d.raw
	output_is "$(xxhsum -H1 --tag d.raw)" imgsum -a xxh64 --tag d.raw
	output_is "$(xxhsum -H0 d.raw)" imgsum -a xxh32 d.raw
	output_is "$(xxhsum -H0 --tag d.raw)" imgsum -a xxh32 --tag d.raw
	output_is "$(sha256sum d.raw)" imgsum -a sha256 d.raw
	output_is "$(sha256sum --tag d.raw)" imgsum -a sha256 --tag d.raw
	output_is "$(sha512sum d.raw)" imgsum -a sha512 d.raw
	output_is "$(sha512sum --tag d.raw)" imgsum -a sha512 --tag d.raw
	output_is "$(md5sum d.raw)" imgsum -a md5 d.raw
	output_is "$(md5sum --tag d.raw)" imgsum -a md5 --tag d.raw
	output_is "$(sha1sum d.raw)" imgsum -a sha1 d.raw
	output_is "$(sha1sum --tag d.raw)" imgsum -a sha1 --tag d.raw
	for h in 0 1 2 3; do
		a=$(case $h in 0) echo xxh32 ;; 1) echo xxh64 ;; 2) echo xxh128 ;; 3) echo xxh3 ;; esac)
		output_is "$(cat d.raw | xxhsum -H$h)" imgsum -a $a < <(cat d.raw)
		output_is "$(cat d.raw | xxhsum -H$h --tag -)" imgsum -a $a --tag - < <(cat d.raw)
	done
	output_is "$(cat d.raw | sha256sum)" imgsum -a sha256 < <(cat d.raw)
	output_is "$(cat d.raw | sha512sum --tag)" imgsum -a sha512 --tag < <(cat d.raw)
	output_is "$(cat d.raw | md5sum)" imgsum -a md5 < <(cat d.raw)
	output_is "$(cat d.raw | sha1sum --tag)" imgsum -a sha1 --tag < <(cat d.raw)
}

@test "--bytes digests the file as it is: the Image service's os_hash_value" {
	cd "$T"
	make_pattern d.raw 102400	# qemu-img rounds sizes up to 512
	qemu-img convert -f raw -O qcow2 d.raw d.qcow2
	gzip -c d.raw > d.raw.gz
	# os_hash_value: SHA-512 of the uploaded bytes, whatever they hold
	for f in d.raw d.qcow2 d.raw.gz; do
		output_is "$(sha512sum "$f")" imgsum -a sha512 --bytes "$f"
		output_is "$(cat "$f" | sha512sum)" imgsum -a sha512 --bytes < <(cat "$f")
	done
	# the legacy checksum: MD5 of the same bytes
	output_is "$(md5sum d.qcow2)" imgsum -a md5 --bytes d.qcow2
	# without --bytes, the virtual disk: the qcow2 and the gzip are d.raw
	want=$(sha512sum d.raw | cut -d' ' -f1)
	output_is "$want  d.qcow2" imgsum -a sha512 d.qcow2
	output_is "$want  d.raw.gz" imgsum -a sha512 d.raw.gz
	sha512sum d.qcow2 > list
	run imgsum -c --bytes list
	[ "$status" -eq 0 ]
	[ "$output" = "d.qcow2: OK" ]
	run imgsum --bytes -f qcow2 d.qcow2
	[ "$status" -eq 2 ]
}

@test "a large sparse disk: zeros are hashed, never read, and digest right" {
	truncate -s 3G "$T/big.raw"
	printf 'middle' | dd of="$T/big.raw" bs=1 seek=1500000000 conv=notrunc status=none
	# the raw reader skips the holes; qemu-img's qcow2 has no clusters there
	qemu-img convert -f raw -O qcow2 "$T/big.raw" "$T/big.qcow2"
	want=$(digest_of xxhsum -H2 "$T/big.raw")
	got=$(digest_of timeout 60 imgsum "$T/big.raw")
	[ "$got" = "$want" ]
	require_reader qcow2
	got=$(digest_of timeout 60 imgsum "$T/big.qcow2")
	[ "$got" = "$want" ]
	got=$(digest_of timeout 60 imgsum < <(cat "$T/big.qcow2"))
	[ "$got" = "$want" ]
}

@test "several files in one call, in order, like xxhsum" {
	cd "$T"
	make_pattern a.raw 100000
	make_pattern b.raw 300000
	: > empty.raw
	run imgsum a.raw b.raw empty.raw
	[ "$status" -eq 0 ]
	[ "$output" = "$(xxhsum -H2 a.raw b.raw empty.raw)" ]
	run imgsum -a sha256 --tag a.raw b.raw
	[ "$status" -eq 0 ]
	[ "$output" = "$(sha256sum --tag a.raw b.raw)" ]
}

@test "-c: a list of good files passes, both styles, any algorithm" {
	cd "$T"
	make_pattern a.raw 100000
	make_pattern b.raw 300000
	{
		imgsum a.raw
		imgsum --tag b.raw
		imgsum -a sha256 b.raw
		imgsum -a sha512 --tag a.raw
		imgsum -a xxh3 b.raw
		imgsum -a xxh64 a.raw
	} > sums
	run imgsum -c sums
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'a.raw: OK\nb.raw: OK\nb.raw: OK\na.raw: OK\nb.raw: OK\na.raw: OK')" ]
	# the peers' lists are accepted too
	xxhsum -H2 a.raw b.raw > peer
	sha256sum a.raw >> peer
	xxhsum -H3 b.raw >> peer
	run imgsum -c peer
	[ "$status" -eq 0 ]
	[ "$(grep -c ': OK$' <<< "$output")" -eq 4 ]
	# from stdin
	run sh -c 'imgsum -c - < sums'
	[ "$status" -eq 0 ]
}

@test "-c: the same disk in another format verifies against the raw's digest" {
	require_reader qcow2
	cd "$T"
	make_pattern disk 1048576	# qemu-img rounds sizes up to 512
	imgsum disk > sums
	mv disk disk.raw
	qemu-img convert -f raw -O qcow2 disk.raw disk
	run imgsum -c sums
	[ "$status" -eq 0 ]
	[ "$output" = "disk: OK" ]
}

@test "-c: a changed file FAILS with exit 4" {
	cd "$T"
	make_pattern a.raw 100000
	make_pattern b.raw 300000
	imgsum a.raw b.raw > sums
	printf 'X' | dd of=b.raw bs=1 seek=70000 conv=notrunc status=none
	run imgsum -c sums
	echo "$output"
	[ "$status" -eq 4 ]
	[[ "$output" == *"a.raw: OK"* ]]
	[[ "$output" == *"b.raw: FAILED"* ]]
	[[ "$output" == *"WARNING: 1 computed checksum did NOT match"* ]]
}

@test "-c: malformed lines are reported; the exit is non-zero with --strict" {
	cd "$T"
	make_pattern a.raw 100000
	{
		imgsum a.raw
		echo "this is not a digest line"
		echo "0123  a.raw"
		echo "XXH128 (a.raw) = 0123"
		echo "MD6 (a.raw) = d41d8cd98f00b204e9800998ecf8427e"
	} > sums
	run imgsum -c sums
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"a.raw: OK"* ]]
	[[ "$output" == *"WARNING: 4 lines are improperly formatted"* ]]
	run imgsum -c --strict sums
	[ "$status" -eq 1 ]
	run imgsum -c -w sums
	[ "$status" -eq 0 ]
	[[ "$output" == *"imgsum: sums: 2: improperly formatted checksum line"* ]]
	echo "nothing here" > bad
	run imgsum -c bad
	[ "$status" -eq 1 ]
	[[ "$output" == *"no properly formatted checksum lines found"* ]]
}

@test "-c: a missing or unreadable file is an I/O error (exit 3), a mismatch wins (4)" {
	cd "$T"
	make_pattern a.raw 100000
	imgsum a.raw > sums
	echo "00000000000000000000000000000000  gone.raw" >> sums
	run imgsum -c sums
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"a.raw: OK"* ]]
	[[ "$output" == *"gone.raw: FAILED open or read"* ]]
	[[ "$output" == *"gone.raw: No such file or directory"* ]]
	echo "00000000000000000000000000000000  a.raw" >> sums
	run imgsum -c sums
	[ "$status" -eq 4 ]
	run imgsum -c nosuchlist
	[ "$status" -eq 3 ]
}

@test "names with a backslash or newline are escaped like coreutils, and checked back" {
	cd "$T"
	make_pattern 'a\b' 1000
	output_is "$(sha256sum 'a\b')" imgsum -a sha256 'a\b'
	imgsum 'a\b' > sums
	run imgsum -c sums
	[ "$status" -eq 0 ]
	[ "$output" = '\a\\b: OK' ]
}

@test "exit statuses: usage 2, missing 3, rejected 1, closed stdout 3" {
	cd "$T"
	make_pattern a.raw 100000
	run imgsum -a md6 a.raw
	[ "$status" -eq 2 ]
	[[ "$output" == "imgsum: unknown algorithm 'md6'"* ]]
	run imgsum --no-such-option a.raw
	[ "$status" -eq 2 ]
	run imgsum --status a.raw
	[ "$status" -eq 2 ]
	run imgsum -f nosuchformat a.raw
	[ "$status" -eq 2 ]
	run imgsum gone.raw
	[ "$status" -eq 3 ]
	[ "$output" = "imgsum: gone.raw: No such file or directory" ]
	# a good file before and after a missing one is still summed
	run imgsum a.raw gone.raw a.raw
	[ "$status" -eq 3 ]
	[ "$(grep -c '  a.raw$' <<< "$output")" -eq 2 ]
	run imgsum -f iso a.raw
	[ "$status" -eq 1 ]
	[[ "$output" == "imgsum: a.raw: input is not iso"* ]]
	run sh -c 'imgsum a.raw a.raw > /dev/full'
	[ "$status" -eq 3 ]
	[ "$output" = "imgsum: stdout: write error: No space left on device" ]
	imgsum a.raw > sums
	run sh -c 'imgsum -c sums > /dev/full'
	[ "$status" -eq 3 ]
	[ "$output" = "imgsum: stdout: write error: No space left on device" ]
	run imgsum -h
	[ "$status" -eq 0 ]
	run imgsum -V
	[ "$status" -eq 0 ]
}

@test "a truncated image is rejected (exit 1) with a message" {
	require_reader qcow2
	make_pattern "$T/p.raw" "$PATTERN_SIZE"
	qemu-img convert -f raw -O qcow2 "$T/p.raw" "$T/x.qcow2"
	head -c 300000 "$T/x.qcow2" > "$T/cut.qcow2"
	expect_reject 1 qcow2 "lies past the end of the image" imgsum "$T/cut.qcow2"
	expect_reject -i "$T/cut.qcow2" 1 qcow2 "lies past the end of the image" imgsum
}

@test "-p shows progress on stderr and leaves the digest alone; --mem and --tmpdir" {
	make_pattern "$T/p.raw" "$PATTERN_SIZE"
	want=$(xxhsum -H2 "$T/p.raw")
	output_is "$want" imgsum -p "$T/p.raw" 2>"$T/err"
	[ -s "$T/err" ]
	output_is "$want" imgsum --mem 64K --tmpdir "$T" "$T/p.raw"
}

# ---- -c against the tools that made the lists ---------------------------

# Files a.txt, b.txt, c.txt, gone.txt listed, then b changed, c removed, a
# malformed line and a comment added: every verdict and warning at once.
make_check_lists() {	# make_check_lists TOOL [OPTIONS]
	local tool=$1
	shift
	printf 'alpha\n' > a.txt
	printf 'bravo\n' > b.txt
	printf 'charlie\n' > c.txt
	printf 'gone\n' > gone.txt
	"$tool" "$@" a.txt b.txt > clean.list
	{ cat clean.list; echo "not a digest line"; } > malformed.list
	"$tool" "$@" a.txt b.txt c.txt gone.txt > mixed.list
	echo "# a comment" >> mixed.list
	echo "not a digest line" >> mixed.list
	"$tool" "$@" gone.txt > missing.list
	printf 'BRAVO\n' > b.txt
	rm gone.txt
	mkdir -p c.dir
}

# compare_check TOOL FLAG LIST [IMGSUM OPTIONS]: stdout the same, stderr
# the same but for the program's name, and the status: 0 where the tool
# says 0, else imgsum's own (4: a digest did not match, 3: a listed file
# could not be read, 1: the list itself).
compare_check() {
	local tool=$1 flag=$2 list=$3 tst=0 ist=0 want
	shift 3
	"$tool" -c $flag $list > t.out 2> t.err || tst=$?
	imgsum -c "$@" $flag $list > i.out 2> i.err || ist=$?
	sed "s/^$tool:/imgsum:/" t.err > t.err.named
	diff t.out i.out || { echo "$tool -c $flag $list: stdout differs"; return 1; }
	diff t.err.named i.err || { echo "$tool -c $flag $list: stderr differs"; return 1; }
	if [ "$tst" -eq 0 ]; then
		want=0
	elif "$tool" -c $list 2>/dev/null | grep -q ': FAILED$'; then
		want=4
	elif "$tool" -c $list 2>/dev/null | grep -q ': FAILED open or read$' &&
	    [ "$flag" != --ignore-missing ]; then
		want=3
	else
		want=1
	fi
	[ "$ist" -eq "$want" ] ||
		{ echo "$tool -c $flag $list: status $ist ($tool: $tst), want $want"; return 1; }
}

check_like_coreutils() {	# check_like_coreutils TOOL ALGO [TOOL OPTIONS]
	local tool=$1 algo=$2 flag list
	shift 2
	cd "$T"
	make_check_lists "$tool" "$@"
	for list in clean.list malformed.list mixed.list missing.list; do
		for flag in "" --quiet --status --strict --warn --ignore-missing; do
			compare_check "$tool" "$flag" "$list" -a "$algo" || return 1
		done
	done
}

@test "-c like md5sum -c, flag by flag (-a md5: 32 digits are MD5)" {
	check_like_coreutils md5sum md5
}

@test "-c like sha1sum -c, flag by flag" {
	check_like_coreutils sha1sum sha1
}

@test "-c like sha256sum -c, flag by flag, and --tag lists" {
	check_like_coreutils sha256sum sha256
	check_like_coreutils sha256sum sha256 --tag
}

@test "-c like sha512sum -c, flag by flag, and --tag lists" {
	check_like_coreutils sha512sum sha512
	check_like_coreutils sha512sum sha512 --tag
}

@test "-c without -a: the digest's length or tag chooses, the verdicts are coreutils'" {
	local tool flag list
	for tool in sha1sum sha256sum sha512sum; do
		cd "$T" && rm -rf ./*
		make_check_lists "$tool"
		for list in clean.list mixed.list; do
			# the warnings of --warn name the algorithm, given -a only
			for flag in "" --quiet --status --strict --ignore-missing; do
				compare_check "$tool" "$flag" "$list" || return 1
			done
		done
	done
	# a 32-digit line is XXH128 unless -a md5 says MD5: the md5sum list
	# fails, with a hint
	cd "$T" && rm -rf ./*
	make_check_lists md5sum
	run imgsum -c clean.list
	[ "$status" -eq 4 ]
	[[ "$output" == *"-a md5"* ]]
	run imgsum -c -a md5 clean.list
	[ "$status" -eq 4 ]
	[ "$(grep -c ': OK$' <<< "$output")" -eq 1 ]
}

# Verdict lines and status against xxhsum -c (0.8 has no --ignore-missing,
# and says of missing files and malformed lines what coreutils does not).
compare_xxhsum() {	# compare_xxhsum FLAG LIST
	local flag=$1 list=$2 tst=0 ist=0
	xxhsum -c $flag "$list" > t.out 2> t.err || tst=$?
	imgsum -c $flag "$list" > i.out 2> i.err || ist=$?
	diff <(grep -E ': (OK|FAILED)$' t.out) <(grep -E ': (OK|FAILED)$' i.out) ||
		{ echo "xxhsum -c $flag $list: verdicts differ"; return 1; }
	[ "$(( tst == 0 ))" -eq "$(( ist == 0 ))" ] ||
		{ echo "xxhsum -c $flag $list: status $ist, xxhsum $tst"; return 1; }
}

@test "-c like xxhsum -c: -H0, -H1, -H2, -H3 and --tag lists, flag by flag" {
	local opts flag list
	cd "$T"
	for opts in -H0 -H1 -H2 -H3 "-H2 --tag" "-H1 --tag"; do
		rm -rf ./*
		make_check_lists xxhsum $opts
		for list in clean.list malformed.list mixed.list; do
			for flag in "" --quiet --status --strict --warn; do
				compare_xxhsum "$flag" "$list" || return 1
			done
		done
	done
}

@test "-c: lists as operands, several at once, stdin as -; missing, directory, unreadable list" {
	cd "$T"
	make_check_lists sha256sum
	compare_check sha256sum "" "clean.list mixed.list" || return 1
	run sh -c 'imgsum -c < clean.list'
	[ "$status" -eq 4 ]
	[ "$output" = "$(sha256sum -c < clean.list 2>&1 | sed 's/^sha256sum:/imgsum:/')" ]
	run imgsum -c nolist
	[ "$status" -eq 3 ]
	[ "$output" = "imgsum: nolist: No such file or directory" ]
	sha256sum a.txt > dir.list
	echo "$(sha256sum < a.txt | cut -d' ' -f1)  c.dir" >> dir.list
	compare_check sha256sum "" dir.list || return 1
}
