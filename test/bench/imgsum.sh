#!/bin/sh
# imgsum against xxhsum and sha256sum on the 4 GiB disk with ~1 GiB of data.
# Goals: on the raw, at least as fast as xxhsum -H2 (holes are skipped, not
# read); on its qcow2, at least 2x faster than converting with qemu-img and
# hashing the result.
. "$(dirname "$0")/common.sh"

raw=$(bench_fixture_raw) || exit 1
tmp=$BENCH_DIR/imgsum-peer.raw
trap 'rm -f "$tmp"' EXIT

has_reader() {
	imgsum --list-formats | awk '{ print $1 }' | grep -qx "$1"
}

bench_header "imgsum: digest of the virtual disk (4 GiB, ~1 GiB data)"
bench_row "raw, xxh128" "imgsum -a xxh128 '$raw'" \
	"xxhsum -H2" "xxhsum -H2 '$raw'"
bench_row "raw, sha256" "imgsum -a sha256 '$raw'" \
	"sha256sum" "sha256sum '$raw'"
bench_row "raw from a pipe, xxh128" "cat '$raw' | imgsum" \
	"cat | xxhsum -H2" "cat '$raw' | xxhsum -H2"
if has_reader qcow2; then
	qcow2=$(bench_fixture disk4g.qcow2 -f raw -O qcow2) || exit 1
	bench_row "qcow2, xxh128" "imgsum '$qcow2'" \
		"qemu-img convert + xxhsum" \
		"qemu-img convert -O raw '$qcow2' '$tmp' && xxhsum -H2 '$tmp'"
	bench_row "qcow2 from a pipe, xxh128" "cat '$qcow2' | imgsum" \
		"qemu-img convert + xxhsum" \
		"qemu-img convert -O raw '$qcow2' '$tmp' && xxhsum -H2 '$tmp'"
else
	echo "(qcow2 rows skipped: no qcow2 reader registered yet)"
fi
