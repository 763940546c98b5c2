#!/bin/sh
# test/fuzz/run.sh FORMAT SECONDS: fuzz one reader, seeded from
# test/fuzz/seeds/FORMAT.sh (a script that writes seed images into the
# directory given as $1) when there is one.
fmt=$1 secs=${2:-10}
build=${IMGPIPE_BUILD:-.}
bin=$build/test/fuzz/bin/fuzz_$fmt
corpus=${FUZZ_CORPUS:-$(mktemp -d)}
mkdir -p "$corpus"
[ -x "test/fuzz/seeds/$fmt.sh" ] && sh "test/fuzz/seeds/$fmt.sh" "$corpus" >/dev/null 2>&1
export TMPDIR=${TMPDIR:-/tmp}
log=$(mktemp)
"$bin" -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=1024 \
	-timeout=10 -print_final_stats=0 "$corpus" > "$log" 2>&1
st=$?
tail -n 5 "$log"
[ $st = 0 ] || grep -E -A30 'ERROR|SUMMARY|timeout|crash-' "$log" | head -60
rm -f "$log"
[ -n "$FUZZ_CORPUS" ] || rm -rf "$corpus"
exit $st
