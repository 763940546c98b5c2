# imginfo, img2raw and the writers built with AddressSanitizer,
# LeakSanitizer and UBSan (clang, a build directory of their own): the
# readers over rejection fixtures (imginfo's unsafe set, every format's
# image cut short, mutants of each (test/mutate.py), and headers a reader
# refuses while opening: a qcow2 of version 4, whose reader's state must be
# freed when open fails); every writer and subformat over the writer
# suites' sizes, the four ways.  Every run ends with exit 0 or 1 and no
# sanitizer report.
load helpers

WRITERS="raw2qcow2 raw2vmdk raw2vhd raw2vhdx raw2vdi raw2ploop"

setup_file() {
	local root
	root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	# kept between runs (make rebuilds what changed), one per source tree
	export ASAN_BUILD=${IMGPIPE_ASAN_BUILD:-/var/tmp/imgpipe-asan-$(echo "$root" | cksum | cut -d' ' -f1)}
	CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	LDFLAGS="-fsanitize=address,undefined" \
		make -s -C "$root" -j2 CC=clang BUILD="$ASAN_BUILD" \
		"$ASAN_BUILD/bin/imginfo" "$ASAN_BUILD/bin/img2raw" \
		$(for w in $WRITERS; do echo "$ASAN_BUILD/bin/$w"; done) \
		> "$BATS_FILE_TMPDIR/build.log" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/build.log" >&2; return 1; }
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
	export UBSAN_OPTIONS=print_stacktrace=1:exitcode=86
	export F=$BATS_FILE_TMPDIR/fixtures
	mkdir -p "$F"
	make_pattern "$BATS_FILE_TMPDIR/p.raw" 3000000
}

# clean IMAGE...: each image through imginfo (file, pipe, --strict) and
# img2raw (file, pipe) under the sanitizers; every bad run is printed.
clean() {
	local img run st bad=0 n=0
	for img in "$@"; do
		for run in "imginfo" "imginfo --strict --output=json" "img2raw -o $T/out.raw"; do
			for way in file pipe; do
				st=0
				if [ $way = file ]; then
					timeout 120 $ASAN_BUILD/bin/$run "$img" > /dev/null 2> "$T/err" || st=$?
				else
					timeout 120 $ASAN_BUILD/bin/$run < <(cat "$img") > /dev/null 2> "$T/err" || st=$?
				fi
				n=$((n + 1))
				if [ $st -gt 1 ] || grep -q -e Sanitizer -e 'runtime error' "$T/err"; then
					echo "$(basename "$img"): $run ($way): exit $st"
					grep -m 12 -e ERROR -e SUMMARY -e 'runtime error' -e '#[0-9] ' "$T/err"
					bad=1
				fi
			done
		done
	done
	echo "$n runs over $# images"
	return $bad
}

# rejects FORMAT [qemu-img options]: the image, cut at a third and two
# thirds, and 8 mutants of it, in $F
rejects() {
	local f=$1 img size
	shift
	img=$F/$f$(echo "$*" | tr -c 'a-z0-9' _).$f
	qemu-img convert -f raw -O "$f" "$@" "$BATS_FILE_TMPDIR/p.raw" "$img"
	size=$(stat -c %s "$img")
	head -c $((size / 3)) "$img" > "$img.cut1"
	head -c $((size * 2 / 3)) "$img" > "$img.cut2"
	python3 "$BATS_TEST_DIRNAME/../mutate.py" "$f" 14 8 "$img" "$F/m" > /dev/null
	ls "$img".cut* "$F/m/$(basename "$img")".m*
}

@test "asan: a qcow2 whose open fails (version 4) leaks nothing" {
	qemu-img convert -f raw -O qcow2 "$BATS_FILE_TMPDIR/p.raw" "$T/v4.qcow2"
	put_be32 "$T/v4.qcow2" 4 4
	clean "$T/v4.qcow2"
}

@test "asan: imginfo's unsafe image set" {
	sh "$BATS_TEST_DIRNAME/../mkimageset.sh" "$T/set"
	clean "$T"/set/*.unsafe
}

@test "asan: qcow2 cut and mutated" { clean $(rejects qcow2) $(rejects qcow2 -c -o compat=0.10); }
@test "asan: vmdk cut and mutated" { clean $(rejects vmdk) $(rejects vmdk -o subformat=streamOptimized); }
@test "asan: vhd cut and mutated" { clean $(rejects vpc) $(rejects vpc -o subformat=fixed); }
@test "asan: vhdx cut and mutated" { clean $(rejects vhdx); }
@test "asan: vdi cut and mutated" { clean $(rejects vdi); }
@test "asan: qed cut and mutated" { clean $(rejects qed); }
@test "asan: parallels cut and mutated" { clean $(rejects parallels); }

# sanitized COMMAND...: COMMAND (a shell line) exits 0, no sanitizer report.
sanitized() {
	local st=0
	timeout 120 bash -o pipefail -c "$1" 2> "$T/err" || st=$?
	if [ $st -ne 0 ] || grep -q -e Sanitizer -e 'runtime error' "$T/err"; then
		echo "$1: exit $st"
		grep -m 12 -e ERROR -e SUMMARY -e 'runtime error' -e '#[0-9] ' \
		    -e "$(basename "${1%% *}")" "$T/err"
		return 1
	fi
}

# An empty disk from a pipe once ran memmove from NULL in the parking
# store's flush (UBSan: lib/stream/wsink.c), which the writer suites,
# built without sanitizers, passed.
@test "asan: every writer and subformat, sizes 0, 1, 65541 and 5000000, file and pipe into file and pipe" {
	local w s bad=0 n=0 in
	for s in 0 1 65541 5000000; do
		in=$T/d$s.raw
		case $s in
		0) : > "$in" ;;
		1) printf x > "$in" ;;
		*) make_pattern "$in" "$s" ;;
		esac
		for w in "raw2qcow2" "raw2qcow2 -c" "raw2vmdk" \
		    "raw2vmdk -s monolithicSparse" "raw2vhd" "raw2vhd -s dynamic" \
		    "raw2vhdx" "raw2vhdx -s fixed" "raw2vdi" "raw2vdi -s static" \
		    "raw2ploop"; do
			w="$ASAN_BUILD/bin/$w"
			sanitized "$w -o $T/o.img $in" || bad=1
			sanitized "$w $in | cat > $T/o.img" || bad=1
			sanitized "cat $in | $w -o $T/o.img" || bad=1
			sanitized "cat $in | $w | cat > $T/o.img" || bad=1
			n=$((n + 4))
		done
	done
	echo "$n runs"
	[ $bad -eq 0 ]
}
