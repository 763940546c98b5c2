#!/bin/sh
# img2raw against qemu-img convert -O raw for the other formats of the
# same 4 GiB disk with ~1 GiB of data: file -> file (goal at most 1.0x
# qemu-img's time; 0.35x for the compressed ones, a stream VMDK, ours
# and qemu-img's, and qemu-img -c's qcow2, inflated on every core) and
# pipe -> pipe throughput.
. "$(dirname "$0")/common.sh"

out=$BENCH_OUT/img2raw-out.raw
peer=$BENCH_OUT/img2raw-peer.raw
trap 'rm -f "$out" "$peer"' EXIT

bench_header "img2raw: other formats of the 4 GiB disk to raw, outputs in $BENCH_OUT"
for spec in "disk4g.vmdk vmdk -o subformat=streamOptimized" \
    "disk4g-c.qcow2 qcow2 -c" \
    "disk4g-sparse.vmdk vmdk" "disk4g.vhdx vhdx" "disk4g.vdi vdi" \
    "disk4g.vhd vpc" "disk4g.qed qed"; do
	set -- $spec
	name=$1 fmt=$2
	shift 2
	img=$(bench_fixture "$name" -f raw -O "$fmt" "$@") || exit 1
	bench_row "$name ($fmt $*) file -> file" \
		"rm -f '$out'; img2raw -o '$out' '$img'" \
		"qemu-img convert" "rm -f '$peer'; qemu-img convert -O raw '$img' '$peer'"
	bench_row "$name pipe -> pipe (cat | img2raw | cat)" \
		"cat '$img' | img2raw | cat > /dev/null" "" ""
done

# raw2vmdk's stream VMDK: read by its markers (qemu-img's has its GD first)
raw=$(bench_fixture_raw) || exit 1
img=$BENCH_DIR/disk4g-ours-stream.vmdk
[ -s "$img" ] || { raw2vmdk -o "$img.tmp" "$raw" && mv "$img.tmp" "$img"; } || exit 1
bench_row "disk4g-ours-stream.vmdk (raw2vmdk) file -> file" \
	"rm -f '$out'; img2raw -o '$out' '$img'" \
	"qemu-img convert" "rm -f '$peer'; qemu-img convert -O raw '$img' '$peer'"
bench_row "disk4g-ours-stream.vmdk pipe -> pipe (cat | img2raw | cat)" \
	"cat '$img' | img2raw | cat > /dev/null" "" ""
