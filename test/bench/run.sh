#!/bin/sh
# make bench-all: every test/bench/*.sh in turn; each prints its own table.
cd "$(dirname "$0")/../.." || exit 2
build=${IMGPIPE_BUILD:-.}
export IMGPIPE_BIN="$(cd "$build" && pwd)/bin"
echo "# imgpipe benchmarks: $(nproc) cores, medians of ${BENCH_RUNS:-3} runs, $(date -u +%Y-%m-%d)"
for b in test/bench/*.sh; do
	case $b in */common.sh|*/run.sh|*/table.sh) continue ;; esac
	[ -n "$BENCH_ONLY" ] && case $b in *"$BENCH_ONLY"*) ;; *) continue ;; esac
	sh "$b" || echo "bench $b failed" >&2
done
