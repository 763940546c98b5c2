# File and pipe agree (DESIGN.md rule 5), the upload gate agrees with the
# converter, and the converter with qemu-img: every fixture we collect
# (fuzz seeds, imginfo's safety set, qemu-img subformats) and
# IMGPIPE_MUTATIONS mutants per format (default 200; test/mutate.py, seed
# 14) go through imginfo --strict and img2raw from a file and from a pipe
# (test/consistency.py says what is compared).  A failure prints every
# disagreeing image, with the mutation that made it, and a count per check.
load helpers

setup_file() {
	export W=$BATS_FILE_TMPDIR
	: "${IMGPIPE_MUTATIONS:=200}"
	export IMGPIPE_MUTATIONS
}

consistent() {
	run python3 "$BATS_TEST_DIRNAME/../consistency.py" "$1" "$W/$1"
	echo "$output" | tail -40
	[ "$status" -eq 0 ]
}

@test "consistency: qcow2" { consistent qcow2; }
@test "consistency: vmdk" { consistent vmdk; }
@test "consistency: vpc" { consistent vpc; }
@test "consistency: vhdx" { consistent vhdx; }
@test "consistency: vdi" { consistent vdi; }
@test "consistency: qed" { consistent qed; }
@test "consistency: parallels" { consistent parallels; }
@test "consistency: iso" { consistent iso; }
@test "consistency: raw" { consistent raw; }
