# imginfo's safety suite: an image set like an image service's
# format-inspector tests (test/mkimageset.sh); each image is named
# NAME.FORMAT.VERDICT.  Every image gets the right format and verdict,
# and --strict the right status, from a file and from a pipe.
load helpers

setup_file() {
	export S=$BATS_FILE_TMPDIR/set
	sh "$BATS_TEST_DIRNAME/../mkimageset.sh" "$S"
}

# judge IMAGE: format and verdict as the name says, --strict status to match
judge() {
	local img=$S/$1 want_fmt want_verdict strict_status
	want_verdict=${1##*.}
	want_fmt=${1%.*}
	want_fmt=${want_fmt##*.}
	[ "$want_verdict" = safe ] && strict_status=0 || strict_status=1
	run imginfo --output json "$img"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	echo "$output" > "$T/r.json"
	python3 - "$T/r.json" "$want_fmt" "$want_verdict" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == sys.argv[2], (r["format"], sys.argv[2])
assert r["safety"]["verdict"] == sys.argv[3], r["safety"]
PY
	run imginfo --strict "$img"
	[ "$status" -eq "$strict_status" ] || { echo "$output"; return 1; }
	run sh -c 'cat "$1" | imginfo --strict' sh "$img"
	[ "$status" -eq "$strict_status" ] || { echo "pipe: $output"; return 1; }
}

@test "safety: plain qcow2" { judge plain.qcow2.safe; }
@test "safety: qcow2 with a backing file" { judge backing.qcow2.unsafe; }
@test "safety: qcow2 with an external data file" { judge datafile.qcow2.unsafe; }
@test "safety: raw" { judge plain.raw.safe; }
@test "safety: GPT disk" { judge gpt.raw.safe; }
@test "safety: ISO 9660" { judge plain.iso.safe; }
@test "safety: UDF" { judge udf.iso.safe; }
@test "safety: ISO with a qcow2 header in its system area" { judge qcow2-in-iso.iso.unsafe; }
@test "safety: VMDK monolithicSparse" { judge sparse.vmdk.safe; }
@test "safety: VMDK streamOptimized" { judge stream.vmdk.safe; }
@test "safety: VMDK monolithicFlat" { judge flat.vmdk.unsafe; }
@test "safety: VMDK monolithicFlat naming /etc/hosts" { judge flat-hosts.vmdk.unsafe; }
@test "safety: VMDK monolithicSparse whose embedded descriptor names /etc/hosts" { judge sparse-hosts.vmdk.unsafe; }
@test "safety: VMDK with a footer (VMware's stream layout)" { judge footer.vmdk.safe; }
@test "safety: VMDK whose footer moves the descriptor" { judge footer-moved.vmdk.unsafe; }
@test "safety: QED" { judge plain.qed.safe; }
@test "safety: QED with a backing file" { judge backing.qed.unsafe; }

@test "safety: the findings name what they found" {
	run imginfo "$S/flat-hosts.vmdk.unsafe"
	[ "$status" -eq 0 ]
	[[ "$output" == *"extent-file:"*"/etc/hosts"* ]]
	run imginfo "$S/qcow2-in-iso.iso.unsafe"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ambiguous:"*"iso"*"qcow2"* ]]
	run imginfo "$S/footer-moved.vmdk.unsafe"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vmdk-footer:"*"descriptor"* ]]
	run imginfo "$S/backing.qcow2.unsafe"
	[ "$status" -eq 0 ]
	[[ "$output" == *"backing file: $S/base.raw"* ]]
}

@test "safety: img2raw refuses every unsafe image of the set" {
	for f in "$S"/*.unsafe; do
		run img2raw "$f"
		[ "$status" -eq 1 ] || { echo "$f: $status $output"; return 1; }
	done
}

@test "safety: man/imginfo.1 documents every finding code the set produces" {
	: > "$T/all"
	for f in "$S"/*.unsafe; do
		imginfo --output json "$f" > "$T/f.json"
		python3 -c '
import json, sys
for x in json.load(sys.stdin)["safety"]["findings"]: print(x["code"])' < "$T/f.json" >> "$T/all"
	done
	sort -u "$T/all" > "$T/codes"
	[ -s "$T/codes" ]
	while read -r code; do
		grep -q "Cm $code" "$BATS_TEST_DIRNAME/../../man/imginfo.1" ||
			{ echo "$code not in man/imginfo.1"; return 1; }
	done < "$T/codes"
}
