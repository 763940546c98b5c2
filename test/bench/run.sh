#!/bin/sh
# make bench-all: every test/bench/*.sh in turn; each prints its own table.
cd "$(dirname "$0")/../.." || exit 2
build=${IMGPIPE_BUILD:-.}
export IMGPIPE_BIN="$(cd "$build" && pwd)/bin"
# raw2formats.sh is the writers' rows of make bench's table (table.sh):
# min / median / max of ${BENCH_RUNS:-5} rounds there.
echo "# imgpipe benchmarks: $(nproc) cores, medians of ${BENCH_RUNS:-3} runs (the writers' table: ${BENCH_RUNS:-5} rounds), $(date -u +%Y-%m-%d)"
for b in test/bench/*.sh; do
	case $b in */common.sh|*/run.sh|*/table.sh) continue ;; esac
	[ -n "$BENCH_ONLY" ] && case $b in *"$BENCH_ONLY"*) ;; *) continue ;; esac
	sh "$b" || echo "bench $b failed" >&2
done
