#!/bin/sh
# imginfo --strict, the upload gate, against qemu-img check on the 4 GiB
# disk with ~1 GiB of data as qcow2, monolithicSparse VMDK and VHDX, from
# a file: both walk the image's tables, neither should read its data.
# Runs alternate (ours, peer, ours, ...); min, median and max of each.
. "$(dirname "$0")/common.sh"

# spread FILE: "MIN MEDIAN MAX" seconds of the runs in FILE
spread() {
	sort -n "$1" | awk '{ t[NR] = $1 }
		END { if (NR) print t[1], t[int((NR + 1) / 2)], t[NR]; else print "nan nan nan" }'
}

# gate_row CASE 'our command' 'qemu-img check command'
gate_row() {
	local fo=$BENCH_DIR/.gate-ours.$$ fp=$BENCH_DIR/.gate-peer.$$ i
	: > "$fo"
	: > "$fp"
	for i in $(seq "$BENCH_RUNS"); do
		time_once "$2" "$fo"
		time_once "$3" "$fp"
	done
	set -- "$1" $(spread "$fo") $(spread "$fp")
	rm -f "$fo" "$fp"
	printf '| %-34s | %5s / %5s / %5s | %5s / %5s / %5s | %6s |\n' \
		"$1" "$2" "$3" "$4" "$5" "$6" "$7" \
		"$(awk -v a="$3" -v b="$6" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
}

printf '\n## imginfo --strict (file) against qemu-img check, %s runs\n\n' "$BENCH_RUNS"
printf '| %-34s | %-21s | %-21s | %6s |\n' "image" "ours: min / med / max" \
	"qemu-img check" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------------" \
	"-----------------------" "-----------------------" "--------"
for spec in "disk4g.qcow2 qcow2" "disk4g-sparse.vmdk vmdk" "disk4g.vhdx vhdx"; do
	set -- $spec
	img=$(bench_fixture "$1" -f raw -O "$2") || exit 1
	gate_row "$1 ($2)" "imginfo --strict '$img'" \
		"qemu-img check -f $2 '$img'"
done
echo
echo "ratio: median of ours / median of qemu-img check (below 1: faster)"
