#!/bin/sh
# imgsparse against cp --sparse=always, fallocate --dig-holes and cat.
# Goals: no slower than cp; through a pipe within 1.5x of cat.  Each
# command removes its old output first (timed, alike for both), so that
# neither one overwrites a file the other left.
. "$(dirname "$0")/common.sh"
raw=$(bench_fixture_raw) || exit 1
dense=$BENCH_DIR/disk4g.dense
[ -s "$dense" ] || cat "$raw" > "$dense"	# every block allocated
out=$BENCH_OUT/imgsparse-out.raw
peer=$BENCH_OUT/imgsparse-peer.raw
trap 'rm -f "$out" "$peer"' EXIT
bench_header "imgsparse: 4 GiB disk, ~1 GiB data, written out dense; outputs in $BENCH_OUT"
bench_row "file -> file" "rm -f $out; imgsparse -o $out $dense" \
	"cp --sparse=always" "rm -f $peer; cp --sparse=always $dense $peer"
cmp "$out" "$peer" || echo "imgsparse and cp DIFFER" >&2
bench_row "in place (copy of the dense file first)" \
	"rm -f $out; cp $dense $out && imgsparse --in-place $out" \
	"fallocate --dig-holes" "rm -f $peer; cp $dense $peer && fallocate --dig-holes $peer"
bench_row "pipe -> pipe" "cat $dense | imgsparse | cat > /dev/null" \
	"cat | cat" "cat $dense | cat | cat > /dev/null"
bench_row "pipe -> seekable file" "rm -f $out; cat $dense | imgsparse > $out" \
	"cat > file" "rm -f $peer; cat $dense | cat > $peer"
bench_row "--map (sparse input: holes are skipped)" "imgsparse --map $raw" \
	"qemu-img map" "qemu-img map -f raw $raw"
