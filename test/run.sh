#!/bin/sh
# Run the unit tests and every bats suite; the last line is
# "N passed, N failed, N skipped", and the exit status is 0 only when
# nothing failed and something passed.
# IMGPIPE_BUILD: the BUILD directory of make (default: this tree).
#
# Skips.  A test may skip only when this machine lacks something the
# test needs that some machines genuinely lack (no root, no loop
# devices, ...), never for a feature the build has.  Such a skip says so
# with a reason that begins with the tag "optional:", for example
#	skip "optional: needs root to mount a small tmpfs"
# and is counted as skipped.  Any other skip counts as a failure.
#
# Every test program counts: one that exits non-zero with no failing
# test, or reports fewer or more results than its plan (1..N), is a
# failure too (a suite that dies half way must not look green).
cd "$(dirname "$0")/.." || exit 2
build=${IMGPIPE_BUILD:-.}
export IMGPIPE_BIN="$(cd "$build" && pwd)/bin"
if [ "$1" = --suite ]; then
	s=$2
	start=$(date +%s)
	{
		echo "#> $s"
		bats --tap "$s" 2>&1
		echo "#< $s $?"
		echo "#t $s $(($(date +%s) - start))"
	} > "$3/$(basename "$s").out"
	echo "# $(basename "$s"): $(grep -c '^ok ' "$3/$(basename "$s").out") ok, $(grep -c '^not ok ' "$3/$(basename "$s").out") not ok, $(($(date +%s) - start)) s"
	exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# each program's output between "#> NAME" and "#< NAME STATUS"
for t in "$build"/test/unit/bin/test_*; do
	[ -x "$t" ] || continue
	echo "#> $t"
	start=$(date +%s)
	"$t" 2>&1
	echo "#< $t $?"
	echo "#t $t $(($(date +%s) - start))"
done | tee -a "$log"
# The suites run IMGPIPE_JOBS at a time (default: the processors), the
# longest first; a line says when each ends, and the outputs follow in
# order once all have ended.
outs=$(mktemp -d)
trap 'rm -rf "$log" "$outs"' EXIT
first="memory asan img2raw_vmdk producers_vhd consistency raw2vhd raw2vmdk
raw2qcow2 raw2vhdx img2raw_vhdx img2raw_vhd img2raw_qcow2 fuzz static"
{
	for n in $first; do echo "test/bats/$n.bats"; done
	for s in test/bats/*.bats; do
		case " $(echo $first) " in *" $(basename "$s" .bats) "*) ;; *) echo "$s" ;; esac
	done
} | xargs -P "${IMGPIPE_JOBS:-$(nproc)}" -I{} sh "$0" --suite {} "$outs"
for s in test/bats/*.bats; do
	cat "$outs/$(basename "$s").out" 2>/dev/null ||
		printf '#> %s\n#< %s 1\n' "$s" "$s"	# no plan: a failure
done | tee -a "$log"

awk '
function close_suite(name, rc) {
	if (plan < 0) {
		problem(name ": no plan (1..N) in its output")
	} else if (results != plan) {
		problem(name ": " results " results for a plan of " plan)
	}
	if (rc != 0 && suite_failed == 0)
		problem(name ": exited " rc " with no failing test")
	insuite = 0
}
function problem(msg) { failed++; problems = problems "# FAILED: " msg "\n" }
# the wall time of each test program, for the run to stay in the CI budget
/^#t / { times = times sprintf("# %5d s  %s\n", $3, $2); next }
/^#> / { name = substr($0, 4); insuite = 1; plan = -1; results = 0; suite_failed = 0; next }
/^#< / {
	rc = $NF
	close_suite(name, rc)
	next
}
/^1\.\.[0-9]+$/ && insuite && plan < 0 { plan = substr($0, 4) + 0; next }
/^not ok / { results++; failed++; suite_failed++; next }
/^ok / {
	results++
	if (match($0, / # skip( |$)/)) {
		reason = substr($0, RSTART + RLENGTH)
		sub(/^\(/, "", reason)	# newer bats: "# skip (REASON)"
		if (reason ~ /^optional:/) {
			skipped++
			notes = notes "# skipped (" name "): " $0 "\n"
		} else {
			failed++
			suite_failed++
			problems = problems "# FAILED, an unexpected skip (" name "): " $0 "\n"
		}
	} else {
		passed++
	}
	next
}
END {
	if (insuite)
		problem(name ": output ends inside it")
	printf "# seconds per test program:\n%s", times
	printf "%s%s", notes, problems
	printf "%d passed, %d failed, %d skipped\n", passed, failed, skipped
	exit !(failed == 0 && passed > 0)
}' "$log"
