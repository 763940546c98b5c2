load helpers

setup() {
	make_pattern "$T/p" 5255555
	# a dense copy: every block allocated, zeros included
	cat "$T/p" > "$T/dense"
}

allocated_kib() { du -k "$1" | cut -f1; }

@test "imgsparse file to file: same bytes, zero blocks become holes" {
	imgsparse -o "$T/out" "$T/dense"
	cmp "$T/p" "$T/out"
	[ "$(allocated_kib "$T/out")" -lt 400 ]
	[ "$(allocated_kib "$T/dense")" -gt 5000 ]
}

@test "imgsparse stdin to a seekable stdout makes holes" {
	imgsparse < "$T/dense" > "$T/out"
	cmp "$T/p" "$T/out"
	[ "$(allocated_kib "$T/out")" -lt 400 ]
}

@test "imgsparse pipe to pipe passes the bytes through" {
	(set -o pipefail; imgsparse < <(cat "$T/dense") | cat > "$T/out")
	cmp "$T/p" "$T/out"
}

@test "imgsparse keeps data that looks compressed as it is" {
	printf 'x%.0s' $(seq 1000) | gzip > "$T/g"
	[ -s "$T/g" ]
	(set -o pipefail; imgsparse < <(cat "$T/g") | cmp - "$T/g")
	imgsparse -o "$T/g2" "$T/g"
	cmp "$T/g" "$T/g2"
}

@test "imgsparse keeps a trailing fixed-VHD footer" {
	qemu-img convert -O vpc -o subformat=fixed "$T/p" "$T/fixed.vhd"
	(set -o pipefail; imgsparse < <(cat "$T/fixed.vhd") | cmp - "$T/fixed.vhd")
}

@test "imgsparse -b sets the block: a 4K zero run is a hole only with -b 4K" {
	head -c 8192 /dev/urandom > "$T/b"
	head -c 4096 /dev/zero >> "$T/b"
	head -c 4096 /dev/urandom >> "$T/b"
	run imgsparse --map -b 4096 "$T/b"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '0 8192 data\n8192 4096 zero\n12288 4096 data')" ]
	run imgsparse --map -b 16384 "$T/b"
	[ "$status" -eq 0 ]
	[ "$output" = "0 16384 data" ]
}

@test "imgsparse --in-place punches holes without changing content" {
	cp "$T/dense" "$T/inplace"
	imgsparse --in-place "$T/inplace"
	cmp "$T/p" "$T/inplace"
	[ "$(allocated_kib "$T/inplace")" -lt 400 ]
}

@test "imgsparse --map prints merged extents that cover the file" {
	run imgsparse --map "$T/dense"
	[ "$status" -eq 0 ]
	echo "$output" | awk -v size=5255555 '
		{ if ($1 != next_off) exit 1; next_off = $1 + $2;
		  if ($3 != "data" && $3 != "zero") exit 1;
		  if (NR > 1 && $3 == last) exit 1; last = $3 }
		END { if (next_off != size) exit 1 }'
	# make_pattern: 40000 bytes of data at 0 with 8K of zeros at 12288
	[ "${lines[0]}" = "0 12288 data" ]
	[ "${lines[1]}" = "12288 8192 zero" ]
	[ "${lines[2]}" = "20480 20480 data" ]
}

@test "imgsparse --map from a pipe equals the map of the file" {
	imgsparse --map "$T/p" > "$T/m1"
	imgsparse --map < <(cat "$T/dense") > "$T/m2"
	cmp "$T/m1" "$T/m2"
}

@test "imgsparse --map --json has qemu-img map's shape and extents" {
	imgsparse -o "$T/sparse" "$T/dense"
	imgsparse --map --json -b 4096 "$T/sparse" > "$T/ours.json"
	python3 - "$T/ours.json" "$T/sparse" <<'PY'
import json, subprocess, sys
ours = json.load(open(sys.argv[1]))
theirs = json.loads(subprocess.check_output(
    ["qemu-img", "map", "--output=json", "-f", "raw", sys.argv[2]]))
keys = {"start", "length", "depth", "present", "zero", "data", "offset"}
assert all(set(e) == keys for e in ours), ours[0]
def bytemap(m):
    # the data byte ranges, qemu-img's rounded to 4K at the end of file
    return [(e["start"], e["start"] + e["length"]) for e in m if e["data"]]
assert bytemap(ours) == bytemap(theirs), (bytemap(ours), bytemap(theirs))
PY
}

@test "imgsparse: empty input gives empty output" {
	: > "$T/empty"
	imgsparse -o "$T/out" "$T/empty"
	[ ! -s "$T/out" ]
	run imgsparse --map "$T/empty"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "imgsparse: /dev/full as output is exit 3 with a message" {
	run imgsparse -o /dev/full "$T/p"
	[ "$status" -eq 3 ]
	[[ "$output" == "imgsparse: /dev/full: write error"* ]]
	run sh -c 'imgsparse < "$1" > /dev/full' sh "$T/p"
	[ "$status" -eq 3 ]
}

@test "imgsparse: a read error is exit 3" {
	run imgsparse -o "$T/out" /proc/self/mem
	[ "$status" -eq 3 ]
	[ ! -e "$T/out" ]
}

@test "imgsparse: a closed pipe is exit 3" {
	run bash -c 'imgsparse < "$1" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"' bash "$T/dense"
	[ "$output" = "imgsparse: stdout: write error: Broken pipe
3" ]
}

@test "imgsparse: usage errors are exit 2" {
	run imgsparse --bogus
	[ "$status" -eq 2 ]
	run imgsparse -b 1000 "$T/p"
	[ "$status" -eq 2 ]
	run imgsparse --in-place
	[ "$status" -eq 2 ]
	run imgsparse --json "$T/p"
	[ "$status" -eq 2 ]
}

@test "imgsparse: -h and -V" {
	run imgsparse -h
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
	run imgsparse -V
	[ "$status" -eq 0 ]
	[[ "$output" == "imgsparse (imgpipe) "* ]]
}

@test "imgsparse: a failed -o leaves no file behind" {
	mkdir "$T/d"
	run sh -c 'imgsparse -o "$1/out" < /proc/self/mem' sh "$T/d"
	[ "$status" -ne 0 ]
	[ -z "$(ls -A "$T/d")" ]
}
