#!/bin/sh
# imgsparse against cp --sparse=always, fallocate --dig-holes and cat.
. "$(dirname "$0")/common.sh"
raw=$(bench_fixture_raw) || exit 1
dense=$BENCH_DIR/disk4g.dense
[ -s "$dense" ] || cat "$raw" > "$dense"	# every block allocated
out=$BENCH_DIR/out.imgsparse
bench_header "imgsparse: 4 GiB disk, ~1 GiB data, written out dense"
bench_row "file -> file" "imgsparse -o $out $dense" \
	"cp --sparse=always" "cp --sparse=always $dense $out"
bench_row "in place (copy of the dense file first)" \
	"cp $dense $out && imgsparse --in-place $out" \
	"fallocate --dig-holes" "cp $dense $out && fallocate --dig-holes $out"
bench_row "pipe -> pipe" "cat $dense | imgsparse | cat > /dev/null" \
	"cat | cat" "cat $dense | cat | cat > /dev/null"
bench_row "pipe -> seekable file" "cat $dense | imgsparse > $out" \
	"cat > file" "cat $dense | cat > $out"
bench_row "--map (sparse input: holes are skipped)" "imgsparse --map $raw" \
	"qemu-img map" "qemu-img map -f raw $raw"
rm -f "$out"
