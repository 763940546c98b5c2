#!/bin/sh
# img2raw against qemu-img convert -O raw on a qcow2 of the 4 GiB disk with
# ~1 GiB of data.  Goals: file -> file at most 0.8x qemu-img's time;
# from a pipe (cat x.qcow2 | img2raw > out) at most 1.5x of qemu-img's
# file -> file.  RSS is the largest process of each command.  On a
# shared, loaded machine wall time follows CPU share, and qemu-img's
# I/O threads get more of it: compare user+sys too (/usr/bin/time).
. "$(dirname "$0")/common.sh"

qcow2=$(bench_fixture disk4g.qcow2 -f raw -O qcow2) || exit 1
out=$BENCH_OUT/img2raw-out.raw
peer=$BENCH_OUT/img2raw-peer.raw
trap 'rm -f "$out" "$peer"' EXIT

bench_header "img2raw: qcow2 (4 GiB, ~1 GiB data) to raw, outputs in $BENCH_OUT"
bench_row "qcow2 file -> file" "rm -f '$out'; img2raw -o '$out' '$qcow2'" \
	"qemu-img convert" "rm -f '$peer'; qemu-img convert -O raw '$qcow2' '$peer'"
# The output already there: replaced as a whole (ours: a new file renamed
# over it), truncated and rewritten in place (qemu-img).
bench_row "qcow2 file -> existing file" "img2raw -o '$out' '$qcow2'" \
	"qemu-img convert" "qemu-img convert -O raw '$qcow2' '$peer'"
bench_row "qcow2 pipe -> file (cat | img2raw > out)" \
	"rm -f '$out'; cat '$qcow2' | img2raw > '$out'" \
	"qemu-img convert (file)" "rm -f '$peer'; qemu-img convert -O raw '$qcow2' '$peer'"
bench_row "qcow2 file -> pipe (img2raw | cat >/dev/null)" \
	"img2raw '$qcow2' | cat > /dev/null" \
	"qemu-img convert (file)" "rm -f '$peer'; qemu-img convert -O raw '$qcow2' '$peer'"
bench_row "qcow2 pipe -> pipe (cat | img2raw | cat)" \
	"cat '$qcow2' | img2raw | cat > /dev/null" \
	"qemu-img convert (file)" "rm -f '$peer'; qemu-img convert -O raw '$qcow2' '$peer'"
cmp "$out" "$peer" >/dev/null 2>&1 || {
	rm -f "$out" "$peer"
	img2raw -o "$out" "$qcow2" && qemu-img convert -O raw "$qcow2" "$peer" &&
		cmp "$out" "$peer" || echo "img2raw and qemu-img DIFFER" >&2
}
