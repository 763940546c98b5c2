#!/bin/sh
# Run the unit tests and every bats suite; end with "N passed, N failed".
# IMGPIPE_BUILD: the BUILD directory of make (default: this tree).
cd "$(dirname "$0")/.." || exit 2
build=${IMGPIPE_BUILD:-.}
export IMGPIPE_BIN="$(cd "$build" && pwd)/bin"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$build"/test/unit/bin/test_*; do
	[ -x "$t" ] || continue
	echo "# $t"
	"$t" 2>&1 || echo "not ok - $t exited $?"
done | tee -a "$log"
for s in test/bats/*.bats; do
	echo "# $s"
	bats --tap "$s" 2>&1 || true
done | tee -a "$log"
passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
