#!/bin/sh
# raw2qcow2 against qemu-img convert on the 4 GiB disk with ~1 GiB of data.
# Goals: file -> file at most 0.8x qemu-img's time; -c at least 1.5x faster
# than qemu-img convert -c (ratio <= 0.67) on 2 cores; output no larger.
# pipe -> pipe (qemu-img cannot): time, peak RSS, temporary space.
# Outputs are removed before every run of both tools, so neither pays for
# replacing a file (ext4 flushes a file renamed over another).
. "$(dirname "$0")/common.sh"

raw=$(bench_fixture_raw) || exit 1
ours=$BENCH_DIR/raw2qcow2.out.qcow2
peer=$BENCH_DIR/raw2qcow2.peer.qcow2
tmpd=$BENCH_DIR/raw2qcow2.tmp
trap 'rm -rf "$ours" "$peer" "$tmpd"' EXIT
mkdir -p "$tmpd"

size_of() { stat -c %s "$1"; }

# size_row CASE: the sizes of the last two outputs.
size_row() {
	printf '| %-44s | %12s | %12s |\n' "$1" "$(size_of "$ours")" \
		"$(size_of "$peer")"
}

bench_header "raw2qcow2: 4 GiB raw disk, ~1 GiB data ($(nproc) cores)"
bench_row "file -> file" "rm -f $ours; raw2qcow2 -o $ours $raw" \
	"qemu-img convert -O qcow2" \
	"rm -f $peer; qemu-img convert -O qcow2 $raw $peer"
plain_sizes=$(size_row "file -> file")
bench_row "file -> file, -c" "rm -f $ours; raw2qcow2 -c -o $ours $raw" \
	"qemu-img convert -c" \
	"rm -f $peer; qemu-img convert -c -O qcow2 $raw $peer"
c_sizes=$(size_row "file -> file, -c")
bench_row "file -> pipe (two passes)" "raw2qcow2 $raw | cat > /dev/null" \
	"" ""
bench_row "pipe -> pipe (stash: memory, then TMPDIR)" \
	"cat $raw | raw2qcow2 --tmpdir $tmpd | cat > /dev/null" "" ""
bench_row "pipe -> pipe, -c" \
	"cat $raw | raw2qcow2 -c --tmpdir $tmpd | cat > /dev/null" "" ""

printf '\n| %-44s | %12s | %12s |\n' "output size (bytes)" "raw2qcow2" "qemu-img"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 46))" "--------------" \
	"--------------"
echo "$plain_sizes"
echo "$c_sizes"

printf '\nTemporary space, pipe -> pipe (raw2qcow2 -v):\n\n'
cat "$raw" | raw2qcow2 -v --tmpdir "$tmpd" 2>&1 >/dev/null | sed 's/^/    /'
cat "$raw" | raw2qcow2 -v -c --tmpdir "$tmpd" 2>&1 >/dev/null | sed 's/^/    /'
