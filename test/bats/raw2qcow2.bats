# raw2qcow2: every layout, option and size checked against qemu-img, the
# oracle: `qemu-img check` clean (exit 0: no errors, no leaks), `qemu-img
# compare` identical to the raw input, and img2raw of the result identical.
load helpers

SIZES="0 1 4194304 5000000"

setup_file() {
	local s
	export FIX=$BATS_FILE_TMPDIR
	for s in $SIZES; do
		if [ "$s" -eq 0 ]; then
			: > "$FIX/d$s.raw"
		elif [ "$s" -eq 1 ]; then
			printf 'x' > "$FIX/d$s.raw"
		else
			make_pattern "$FIX/d$s.raw" "$s"
		fi
		# what qemu and img2raw see: the size rounded up to a sector
		cp "$FIX/d$s.raw" "$FIX/d$s.padded"
		truncate -s $(((s + 511) / 512 * 512)) "$FIX/d$s.padded"
	done
}

# convert_4ways RAW OPTIONS...: ff, fp, pf, pp .qcow2 in $T.
convert_4ways() {
	local raw=$1
	shift
	raw2qcow2 "$@" -o "$T/ff.qcow2" "$raw" || return 1
	( set -o pipefail; raw2qcow2 "$@" "$raw" | cat > "$T/fp.qcow2" ) ||
		return 1
	( set -o pipefail; cat "$raw" | raw2qcow2 "$@" -o "$T/pf.qcow2" ) ||
		return 1
	( set -o pipefail; cat "$raw" | raw2qcow2 "$@" | cat > "$T/pp.qcow2" ) ||
		return 1
}

# check_image IMAGE RAW VERSION: qemu-img check and compare, the header
# version, and img2raw.
check_image() {
	local img=$1 raw=$2 version=$3 out
	out=$(qemu-img check "$img" 2>&1) ||
		{ echo "$img: qemu-img check failed: $out"; return 1; }
	echo "$out" | grep -q 'No errors were found' ||
		{ echo "$img: $out"; return 1; }
	qemu-img compare -q "$raw" "$img" ||
		{ echo "$img: differs from $raw"; return 1; }
	[ "$(od -An -tu1 -j7 -N1 "$img" | tr -d ' ')" = "$version" ] ||
		{ echo "$img: not version $version"; return 1; }
	img2raw "$img" > "$T/back.raw" &&
		cmp "${raw%.raw}.padded" "$T/back.raw" ||
		{ echo "$img: img2raw differs"; return 1; }
}

# matrix OPTIONS...: every size, every way, checked; the two runs of each
# layout (file output: ff and pf; stream output: fp and pp) must be
# byte-identical.
matrix() {
	local s w version=3 compressed=0 pct
	case " $* " in *" --compat 0.10 "*) version=2 ;; esac
	case " $* " in *" -c "*) compressed=1 ;; esac
	for s in $SIZES; do
		convert_4ways "$FIX/d$s.raw" "$@" || { echo "size $s: failed"; return 1; }
		# pf and pp are byte for byte ff and fp: checking those two
		# checks all four
		cmp "$T/ff.qcow2" "$T/pf.qcow2" || return 1
		cmp "$T/fp.qcow2" "$T/pp.qcow2" || return 1
		for w in ff fp; do
			check_image "$T/$w.qcow2" "$FIX/d$s.raw" "$version" ||
				{ echo "size $s, $w, options: $*"; return 1; }
		done
		if [ "$s" -gt 1000 ]; then
			pct=$(qemu-img check "$T/pp.qcow2" |
				sed -n 's/.* \([0-9.]*\)% compressed clusters.*/\1/p')
			if [ $compressed = 1 ]; then
				[ "$pct" != "0.00" ] || { echo "-c: nothing compressed"; return 1; }
			else
				[ "$pct" = "0.00" ] || { echo "compressed without -c"; return 1; }
			fi
		fi
	done
}

@test "64K clusters, v3" { matrix; }
@test "64K clusters, v3, -c" { matrix -c; }
@test "64K clusters, v2" { matrix --compat 0.10; }
@test "64K clusters, v2, -c" { matrix --compat 0.10 -c; }
@test "4K clusters, v3" { matrix --cluster-size 4K; }
@test "4K clusters, v3, -c" { matrix --cluster-size 4K -c; }
@test "4K clusters, v2, -c" { matrix --cluster-size 4K --compat 0.10 -c; }
@test "2M clusters, v3" { matrix --cluster-size 2M; }
@test "2M clusters, v3, -c" { matrix --cluster-size 2M -c; }
@test "2M clusters, v2" { matrix --cluster-size 2M --compat 0.10; }
@test "2M clusters, v2, -c, one thread" { matrix --cluster-size 2M --compat 0.10 -c -j 1; }

@test "same bytes on every run and for any thread count" {
	local f=$FIX/d5000000.raw
	raw2qcow2 -c -j 1 -o "$T/a.qcow2" "$f"
	raw2qcow2 -c -j 3 -o "$T/b.qcow2" "$f"
	raw2qcow2 -c -j 2 -o "$T/c.qcow2" "$f"
	cmp "$T/a.qcow2" "$T/b.qcow2"
	cmp "$T/a.qcow2" "$T/c.qcow2"
	(set -o pipefail; raw2qcow2 -c -j 1 "$f" | cat > "$T/d.qcow2")
	(set -o pipefail; raw2qcow2 -c -j 4 < <(cat "$f") | cat > "$T/e.qcow2")
	cmp "$T/d.qcow2" "$T/e.qcow2"
}

@test "qemu-img convert -c and raw2qcow2 -c give the same size" {
	local f=$FIX/d5000000.raw
	qemu-img convert -c -O qcow2 "$f" "$T/q.qcow2"
	(set -o pipefail; raw2qcow2 -c "$f" | cat > "$T/r.qcow2")
	[ "$(stat -c %s "$T/r.qcow2")" -le "$(stat -c %s "$T/q.qcow2")" ]
	qemu-img convert -O qcow2 "$f" "$T/q.qcow2"
	raw2qcow2 -o "$T/r.qcow2" "$f"
	[ "$(stat -c %s "$T/r.qcow2")" -le "$(stat -c %s "$T/q.qcow2")" ]
}

# libdeflate's levels 0 to 12 (0 stores: every cluster plain); the default
# is level 1, and a higher level packs no larger.
@test "-l takes libdeflate's levels 0 to 12; the default is level 1" {
	local f=$FIX/d5000000.raw l
	raw2qcow2 -c -o "$T/def.qcow2" "$f"
	raw2qcow2 -c -l 1 -o "$T/l1.qcow2" "$f"
	cmp "$T/def.qcow2" "$T/l1.qcow2"
	for l in 0 2 12; do
		raw2qcow2 -c -l $l -o "$T/l$l.qcow2" "$f"
		qemu-img check -q "$T/l$l.qcow2"
		qemu-img compare -q "$FIX/d5000000.padded" "$T/l$l.qcow2"
	done
	[ "$(stat -c %s "$T/l12.qcow2")" -le "$(stat -c %s "$T/l1.qcow2")" ]
	[ "$(stat -c %s "$T/l1.qcow2")" -lt "$(stat -c %s "$T/l0.qcow2")" ]
}

@test "incompressible clusters are stored plain with -c" {
	local w pct
	make_pattern "$T/mix.raw" 3000000
	head -c 1000448 /dev/urandom >> "$T/mix.raw"
	cp "$T/mix.raw" "$T/mix.padded"
	truncate -s $((($(stat -c %s "$T/mix.raw") + 511) / 512 * 512)) "$T/mix.padded"
	convert_4ways "$T/mix.raw" -c --cluster-size 4K
	for w in ff fp pf pp; do
		check_image "$T/$w.qcow2" "$T/mix.raw" 3
		pct=$(qemu-img check "$T/$w.qcow2" |
			sed -n 's/.* \([0-9.]*\)% compressed clusters.*/\1/p')
		[ "$pct" != "0.00" ]
		[ "$pct" != "100.00" ]
	done
}

@test "--size pads with zeros; an input longer than --size is refused" {
	local f=$FIX/d5000000.raw
	raw2qcow2 --size 100M -o "$T/big.qcow2" "$f"
	qemu-img check -q "$T/big.qcow2"
	[ "$(qemu-img info --output=json "$T/big.qcow2" |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" = 104857600 ]
	cp "$f" "$T/big.raw"
	truncate -s 100M "$T/big.raw"
	qemu-img compare -q "$T/big.raw" "$T/big.qcow2"
	(set -o pipefail; raw2qcow2 --size 100M < <(cat "$f") | cat > "$T/bigp.qcow2")
	qemu-img compare -q "$T/big.raw" "$T/bigp.qcow2"
	run raw2qcow2 --size 1M -o "$T/x.qcow2" "$f"
	[ "$status" -eq 2 ]
	[[ "$output" == "raw2qcow2: "*"longer than --size"* ]]
	run sh -c 'cat "$1" | raw2qcow2 --size 1M > /dev/null' sh "$f"
	[ "$status" -eq 2 ]
	[ ! -e "$T/x.qcow2" ]
}

@test "work scales with data: a 4 TiB sparse disk in seconds" {
	truncate -s 4T "$T/huge.raw"
	printf 'data' | dd of="$T/huge.raw" bs=1 seek=3000000000000 conv=notrunc status=none
	timeout 20 raw2qcow2 -o "$T/huge.qcow2" "$T/huge.raw"
	(set -o pipefail; timeout 20 raw2qcow2 "$T/huge.raw" | cat > "$T/hugep.qcow2")
	qemu-img check -q "$T/huge.qcow2"
	qemu-img check -q "$T/hugep.qcow2"
	[ "$(stat -c %s "$T/huge.qcow2")" -lt 1000000 ]
	rm -f "$T/huge.raw"
}

@test "pipe to pipe spills to --tmpdir beyond --mem and leaves nothing" {
	local f=$FIX/d5000000.raw
	mkdir "$T/tmp"
	run sh -c 'cat "$1" | raw2qcow2 -v --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$f" "$T/tmp" "$T/s.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"stash"*"temporary file"* ]]
	[[ "$output" != *"temporary file 0 B"* ]]
	check_image "$T/s.qcow2" "$f" 3
	[ -z "$(ls -A "$T/tmp")" ]
}

@test "write errors exit 3 with a message" {
	local f=$FIX/d5000000.raw
	run sh -c 'raw2qcow2 "$1" > /dev/full' sh "$f"
	[ "$status" -eq 3 ]
	[[ "$output" == "raw2qcow2: "*"write error"* ]]
	run sh -c 'cat "$1" | raw2qcow2 -c > /dev/full' sh "$f"
	[ "$status" -eq 3 ]
	# An output larger than the pipe (its 1 MiB and head's reads): the
	# 5 MB pattern's qcow2 is 832 KiB and may be written whole before
	# head closes its end, which is no error.
	head -c 8M /dev/urandom > "$T/dense.raw"
	run bash -c 'raw2qcow2 "$1" | head -c 10 > /dev/null; exit ${PIPESTATUS[0]}' sh "$T/dense.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"Broken pipe"* ]]
}

@test "read errors exit 3" {
	run raw2qcow2 -o "$T/x.qcow2" /proc/self/mem
	[ "$status" -eq 3 ]
	[[ "$output" == "raw2qcow2: "*"read error"* ]]
	[ ! -e "$T/x.qcow2" ]
}

@test "SIGTERM mid-run leaves no output and no temporary file" {
	local f=$FIX/d5000000.raw pid st
	mkdir "$T/out" "$T/tmp"
	{ head -c 1000000 "$f"; sleep 4; } | TMPDIR="$T/tmp" raw2qcow2 -o "$T/out/x.qcow2" &
	pid=$!
	sleep 1
	kill -TERM "$pid"
	# killed by the signal (128 + 15), not finished before it came
	st=0; wait "$pid" || st=$?
	[ "$st" -eq 143 ]
	[ -z "$(ls -A "$T/out")" ]
	[ -z "$(ls -A "$T/tmp")" ]
	{ head -c 1000000 "$f"; sleep 4; } | raw2qcow2 --mem 64K --tmpdir "$T/tmp" > "$T/out/p" &
	pid=$!
	sleep 1
	kill -INT "$pid"
	st=0; wait "$pid" || st=$?
	[ "$st" -eq 130 ]
	[ -z "$(ls -A "$T/tmp")" ]
}

@test "usage errors exit 2; -h and -V" {
	run raw2qcow2 --cluster-size 3K "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 --cluster-size 4M "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 --compat 2 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 -l 13 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 -l -1 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 -j 0 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2qcow2 a b
	[ "$status" -eq 2 ]
	run raw2qcow2 -h
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
	run raw2qcow2 -V
	[ "$status" -eq 0 ]
	[[ "$output" == "raw2qcow2 (imgpipe) "* ]]
}

# The bytes raw2qcow2 wrote before it moved onto the writer interface
# (commit 14bf093), for a fixed pattern: stream output (two passes, or
# parked from a pipe), then file output (metadata last).  The -c rows are
# libdeflate level 1's since zlib level 6 gave way to it (branch deflate4).
@test "output pinned to the bytes of the first writer, every layout" {
	local opts want_stream want_file
	make_pattern "$T/pin.raw" 7340037
	while read -r opts want_stream want_file; do
		opts=${opts//,/ }
		[ "$(raw2qcow2 $opts "$T/pin.raw" | sha256sum | cut -c1-64)" = "$want_stream" ]
		[ "$(cat "$T/pin.raw" | raw2qcow2 $opts | sha256sum | cut -c1-64)" = "$want_stream" ]
		raw2qcow2 $opts -o "$T/pin.qcow2" "$T/pin.raw"
		[ "$(sha256sum < "$T/pin.qcow2" | cut -c1-64)" = "$want_file" ]
		cat "$T/pin.raw" | raw2qcow2 $opts -o "$T/pin.qcow2"
		[ "$(sha256sum < "$T/pin.qcow2" | cut -c1-64)" = "$want_file" ]
	done <<-PINS
	-j,2 bf001ba95f2feb43c0e7dc012fef6027b20821052440c1d0cc6a8fbd131887b2 f594441a23dbf27e68c8c06b52d8ff3db27b485401d5945c46d1abf0602cc839
	-c c8c52d1e11954a469d0eaf20084f8614b22991c6ae7fb054c896d9a6d32da30f 6fa68280bf6b09aca2ee91cb79948330a90efc55b9d3a10b9095ef4f2bc65f2e
	--cluster-size,4K,-c 611483ff9eb540a4cadd2b8eddac6b56e9012fab957737df3eda9dbf5514d2fd 161a79a7ba65838aa6841035d2bbdabba19846d40be0770172564a6c79574990
	--compat,0.10 3d7b9595eb02570a07d1abc936f9356fef1edb618554c781bc0a38ec701b67b6 332ffea9253830e8195c523e3e9fe204a86eead657223fa76dc670dabaf552ee
	--cluster-size,2M,--compat,0.10,-c 9a44ac3f00e428fdf68270432aeefa2d2c3640cca7c513049ce4d8804911a0a3 6426ace1b09cacdb4ba8c107e69c93fe5a1c014ce0bbb8fe660abf246884dd4b
	PINS
}

# Any image a reader takes feeds the writer in one process: the same
# qcow2 as img2raw | raw2qcow2.
@test "a qcow2, a vhdx and a stream VMDK go straight into the writer" {
	local f
	make_pattern "$T/src.raw" 5000000
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vhdx "$T/src.raw" "$T/in.vhdx"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$T/src.raw" "$T/in.vmdk"
	img2raw "$T/in.qcow2" | raw2qcow2 > "$T/want.qcow2"
	for f in in.qcow2 in.vhdx in.vmdk; do
		raw2qcow2 "$T/$f" > "$T/p.qcow2"
		cmp "$T/want.qcow2" "$T/p.qcow2"
		cat "$T/$f" | raw2qcow2 -o "$T/f.qcow2"
		qemu-img compare -q "$T/src.raw" "$T/f.qcow2"
		qemu-img check -q "$T/f.qcow2"
	done
}
