#!/bin/sh
# raw2vhd, raw2vhdx, raw2vdi and raw2ploop against qemu-img convert -O
# vpc / vhdx / vdi / parallels on the 4 GiB disk with ~1 GiB of data, file
# -> file, each subformat against qemu-img's same subformat with both
# tools' defaults otherwise (qemu-img's VHDX blocks for 4 GiB are 16 MiB,
# ours 32 MiB as Hyper-V's: a row with --block-size 16M too).  Runs
# alternate (ours, peer, ours, ...); min, median and max of each, and the
# ratio of the medians.  Goal: at most 0.8x qemu-img's time; peak RSS at
# most 64 MiB.  Then the pipe cases qemu-img cannot do: time and RSS.
# Outputs are removed before every run of both tools.
. "$(dirname "$0")/common.sh"

raw=$(bench_fixture_raw) || exit 1
ours=$BENCH_OUT/raw2formats.out
peer=$BENCH_OUT/raw2formats.peer
tmpd=$BENCH_DIR/raw2formats.tmp
trap 'rm -rf "$ours" "$peer" "$tmpd"' EXIT
mkdir -p "$tmpd"

# spread FILE: "MIN MEDIAN MAX MAX_RSS_KIB" of the runs in FILE
spread() {
	sort -n "$1" | awk '{ t[NR] = $1; if ($2 > m) m = $2 }
		END { if (NR) print t[1], t[int((NR + 1) / 2)], t[NR], m
		else print "nan nan nan 0" }'
}

# row CASE 'our command' 'peer command' ('' for none)
row() {
	local fo=$BENCH_DIR/.w-ours.$$ fp=$BENCH_DIR/.w-peer.$$ i
	: > "$fo"
	: > "$fp"
	for i in $(seq "$BENCH_RUNS"); do
		time_once "$2" "$fo"
		[ -z "$3" ] || time_once "$3" "$fp"
	done
	set -- "$1" $(spread "$fo") $(spread "$fp")
	rm -f "$fo" "$fp"
	printf '| %-38s | %5s / %5s / %5s | %5s / %5s / %5s | %5s | %5s |\n' \
		"$1" "$2" "$3" "$4" "$6" "$7" "$8" \
		"$(awk -v a="$3" -v b="$7" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
		"$(awk -v k="$5" 'BEGIN { printf "%.1f", k / 1024 }')"
}

header() {
	printf '\n## %s\n\n' "$1"
	printf '| %-38s | %-21s | %-21s | %5s | %5s |\n' "case" \
		"ours: min / med / max" "qemu-img: min/med/max" "ratio" "RSS"
	printf '|%s|%s|%s|%s|%s|\n' "----------------------------------------" \
		"-----------------------" "-----------------------" "-------" "-------"
}

header "raw2vhd/vhdx/vdi/ploop against qemu-img convert, 4 GiB raw (~1 GiB data), file -> file, outputs in $BENCH_OUT, $BENCH_RUNS runs"
while IFS='|' read -r name cmd fmt opts; do
	row "$name" "rm -f $ours; $cmd -o $ours $raw" \
		"rm -f $peer; qemu-img convert -f raw -O $fmt $opts $raw $peer"
done <<EOF
raw2vhd -s dynamic|raw2vhd -s dynamic|vpc|
raw2vhd (fixed)|raw2vhd|vpc|-o subformat=fixed
raw2vhdx (dynamic)|raw2vhdx|vhdx|
raw2vhdx --block-size 16M|raw2vhdx --block-size 16M|vhdx|
raw2vhdx -s fixed|raw2vhdx -s fixed|vhdx|-o subformat=fixed
raw2vdi (dynamic)|raw2vdi|vdi|
raw2vdi -s static|raw2vdi -s static|vdi|-o static=on
raw2ploop|raw2ploop|parallels|
EOF
echo
echo "ratio: median of ours / median of qemu-img (below 1: faster); RSS: ours, MiB"

header "the same, into and from pipes (qemu-img cannot), $BENCH_RUNS runs"
for cmd in "raw2vhd -s dynamic" "raw2vhd" "raw2vhd --azure" "raw2vhdx" \
    "raw2vhdx -s fixed" "raw2vdi" "raw2vdi -s static" "raw2ploop"; do
	row "$cmd file -> pipe" "$cmd $raw | cat > /dev/null" ""
	row "$cmd pipe -> pipe" \
		"cat $raw | $cmd --tmpdir $tmpd | cat > /dev/null" ""
done
echo
printf 'Layouts and store use, pipe -> pipe (-v):\n\n'
for cmd in "raw2vhd -s dynamic" "raw2vhd" "raw2vhdx" "raw2vdi" "raw2ploop"; do
	printf '    %s: ' "$cmd"
	cat "$raw" | $cmd -v --tmpdir "$tmpd" 2>&1 >/dev/null | sed 's/^[a-z0-9]*: //'
done
