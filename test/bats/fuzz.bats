# Smoke-run every reader's libFuzzer harness for a few seconds.
# FUZZ_SECONDS (default 4) runs each longer: FUZZ_SECONDS=600 make check.
load helpers

setup_file() {
	export FUZZ_BUILD=${IMGPIPE_BUILD:-$BATS_TEST_DIRNAME/../..}
	cd "$BATS_TEST_DIRNAME/../.."
	make --no-print-directory -j2 fuzz BUILD="$FUZZ_BUILD" >/dev/null
}

fuzz_smoke() {
	cd "$BATS_TEST_DIRNAME/../.."
	run env IMGPIPE_BUILD="$FUZZ_BUILD" TMPDIR="$T" \
		sh test/fuzz/run.sh "$1" "${FUZZ_SECONDS:-4}"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "fuzz raw" { fuzz_smoke raw; }
@test "fuzz vpc" { fuzz_smoke vpc; }
@test "fuzz vhdx" { fuzz_smoke vhdx; }
@test "fuzz ovf" { fuzz_smoke ovf; }
@test "fuzz manifest" { fuzz_smoke manifest; }
@test "fuzz vmdk" { fuzz_smoke vmdk; }
@test "fuzz vdi" { fuzz_smoke vdi; }
@test "fuzz qed" { fuzz_smoke qed; }
@test "fuzz parallels" { fuzz_smoke parallels; }
@test "fuzz uec" { fuzz_smoke uec; }
@test "fuzz qcow2" { fuzz_smoke qcow2; }
