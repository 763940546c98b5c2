load helpers

setup_file() {
	export D=$BATS_FILE_TMPDIR
	make_pattern "$D/p.raw" 5255555
}

json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d" + sys.argv[2]))' "$@"; }

# compare our JSON with qemu-img info's on the keys both have
# (qemu-img probes a fixed VHD as raw: it is told the format, we are not)
same_as_qemu() {
	local img=$1 fmt=$2
	# (called as "same_as_qemu || ...": no set -e here, each step checked)
	imginfo --output json "$img" > "$T/ours.json" || return 1
	qemu-img info --output=json -f "$fmt" "$img" > "$T/qemu.json" || return 1
	python3 - "$T/ours.json" "$T/qemu.json" <<'PY'
import json, sys
ours, qemu = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("format", "virtual-size", "cluster-size", "backing-filename"):
    # qemu-img has no cluster size for parallels; we report it
    if k == "cluster-size" and k not in qemu:
        continue
    assert ours.get(k) == qemu.get(k), (k, ours.get(k), qemu.get(k))
assert ours["safety"]["verdict"] in ("safe", "unsafe")
PY
}

@test "imginfo: key fields match qemu-img info for every format" {
	local f
	for spec in "qcow2" "qcow2 -o compat=0.10" "qcow2 -o cluster_size=4096" \
	    "vmdk" "vmdk -o subformat=streamOptimized" "vdi" \
	    "vdi -o static=on" "vpc" "vpc -o subformat=fixed" "vhdx" \
	    "vhdx -o subformat=fixed" "qed" "parallels" "raw"; do
		set -- $spec
		f=$1
		shift
		qemu-img convert -O "$f" "$@" "$D/p.raw" "$T/img"
		same_as_qemu "$T/img" "$f" || { echo "failed: $spec"; return 1; }
		out=$(imginfo "$T/img") && grep -qx 'safety: safe' <<< "$out" ||
			{ echo "unsafe: $spec"; echo "$out"; return 1; }
	done
}

@test "imginfo: the same report from a pipe" {
	qemu-img convert -O qcow2 "$D/p.raw" "$T/q.qcow2"
	imginfo --output json "$T/q.qcow2" > "$T/a.json"
	imginfo --output json < <(cat "$T/q.qcow2") > "$T/b.json"
	grep -v -e actual-size -e filename "$T/a.json" > "$T/a"
	grep -v -e actual-size -e filename "$T/b.json" > "$T/b"
	diff "$T/a" "$T/b"
}

@test "imginfo: from a pipe, stdin is drained so the writer sees no SIGPIPE" {
	qemu-img convert -O qcow2 "$D/p.raw" "$T/q.qcow2"
	run bash -c 'cat "$1" | imginfo > /dev/null; echo "${PIPESTATUS[*]}"' bash "$T/q.qcow2"
	[ "$output" = "0 0" ]
	# a pipe bigger than the pipe buffer, with --no-drain the writer may die
	run bash -c 'cat "$1" "$1" "$1" | imginfo --no-drain > /dev/null; echo "${PIPESTATUS[1]}"' bash "$D/p.raw"
	[ "$output" = "0" ]
}

@test "imginfo: backing file is a finding; --allow accepts it; --strict fails" {
	qemu-img create -q -f qcow2 -b "$D/p.raw" -F raw "$T/over.qcow2"
	run imginfo --output json "$T/over.qcow2"
	[ "$status" -eq 0 ]
	echo "$output" > "$T/o.json"
	[ "$(json_get "$T/o.json" '["safety"]["verdict"]')" = unsafe ]
	[ "$(json_get "$T/o.json" '["safety"]["findings"][0]["code"]')" = backing-file ]
	[ "$(json_get "$T/o.json" '["backing-filename"]')" = "$D/p.raw" ]
	run imginfo --strict "$T/over.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"backing-file"* ]]
	run imginfo --strict --allow backing-file "$T/over.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"safety: safe"* ]]
}

@test "imginfo: qed backing file, external data file, encryption" {
	qemu-img create -q -f qed -b "$D/p.raw" -F raw "$T/over.qed"
	out=$(imginfo "$T/over.qed")
	grep -q 'backing-file:' <<< "$out"
	qemu-img create -q -f qcow2 -o data_file="$T/data.raw" "$T/ext.qcow2" 1M
	out=$(imginfo "$T/ext.qcow2")
	grep -q 'external-data-file:' <<< "$out"
	# crypt_method (offset 32) = 1, AES: qemu-img's LUKS key derivation
	# times itself and fails on a loaded machine, so patch the header
	qemu-img create -q -f qcow2 "$T/enc.qcow2" 1M
	printf '\000\000\000\001' | dd of="$T/enc.qcow2" bs=1 seek=32 conv=notrunc status=none
	out=$(imginfo "$T/enc.qcow2")
	grep -q 'encryption:' <<< "$out"
}

@test "imginfo: VMDK descriptor naming extent files, VHD parent" {
	qemu-img convert -O vmdk -o subformat=monolithicFlat "$D/p.raw" "$T/flat.vmdk"
	run imginfo --strict "$T/flat.vmdk"
	[ "$status" -eq 1 ]
	[[ "$output" == *"extent-file"*"flat.vmdk"* ]] || [[ "$output" == *"extent-file"*"flat-flat.vmdk"* ]]
	qemu-img convert -O vpc "$D/p.raw" "$T/base.vhd"
	# qemu-img cannot create a differencing VHD: make the footer say type 4
	cp "$T/base.vhd" "$T/diff.vhd"
	python3 - "$T/diff.vhd" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
for off in (0, f.seek(0, 2) - 512):
    f.seek(off); ft = bytearray(f.read(512))
    ft[60:64] = struct.pack(">I", 4)
    ft[64:68] = b"\0\0\0\0"
    ft[64:68] = struct.pack(">I", ~sum(ft) & 0xffffffff)
    f.seek(off); f.write(ft)
PY
	run imginfo "$T/diff.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"parent"* ]]
	[[ "$output" == *"safety: unsafe"* ]]
}

@test "imginfo: a qcow2 header in an ISO 9660 system area is ambiguous" {
	qemu-img convert -O qcow2 "$D/p.raw" "$T/q.qcow2"
	printf '\001CD001' | dd of="$T/q.qcow2" bs=1 seek=32768 conv=notrunc status=none
	run imginfo --strict "$T/q.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ambiguous"* ]]
	run imginfo -f qcow2 "$T/q.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"file format: qcow2"* ]]
}

@test "imginfo: GPT disk recognised; GPT inside another format is ambiguous" {
	truncate -s 8M "$T/gpt.raw"
	echo 'label: gpt' | sfdisk -q "$T/gpt.raw"
	run imginfo --output json "$T/gpt.raw"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"partition-table": "gpt"'* ]]
	[[ "$output" == *'"verdict": "safe"'* ]]
	qemu-img convert -O vpc -o subformat=fixed "$T/gpt.raw" "$T/gpt.vhd"
	# a fixed VHD keeps the GPT at 512: that is not ambiguous, it is a VHD
	run imginfo "$T/gpt.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"file format: vpc"* ]]
}

@test "imginfo: LUKS, QCOW1, DMG, Docker and OCI archives are named" {
	printf 'LUKS\272\276\000\001' > "$T/luks"; truncate -s 1M "$T/luks"
	out=$(imginfo "$T/luks")
	grep -q 'file format: luks' <<< "$out"
	qemu-img create -q -f qcow "$T/v1.qcow" 1M
	out=$(imginfo "$T/v1.qcow")
	grep -q 'file format: qcow$' <<< "$out"
	truncate -s 4096 "$T/x.dmg"; printf koly | dd of="$T/x.dmg" bs=1 seek=3584 conv=notrunc status=none
	out=$(imginfo "$T/x.dmg")
	grep -q 'file format: dmg' <<< "$out"
	mkdir -p "$T/docker/abc"
	echo '[]' > "$T/docker/manifest.json"
	: > "$T/docker/abc/layer.tar"
	tar -C "$T/docker" -cf "$T/docker.tar" manifest.json abc
	out=$(imginfo "$T/docker.tar")
	grep -q 'file format: docker-archive' <<< "$out"
	mkdir -p "$T/oci"
	echo '{}' > "$T/oci/oci-layout"
	echo '{}' > "$T/oci/index.json"
	tar -C "$T/oci" -cf "$T/oci.tar" oci-layout index.json
	out=$(imginfo "$T/oci.tar")
	grep -q 'file format: oci-archive' <<< "$out"
	run imginfo --strict "$T/docker.tar"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a virtual-machine disk"* ]]
}

@test "imginfo: a huge declared size, metadata outside the file, truncation" {
	qemu-img convert -O qcow2 "$D/p.raw" "$T/q.qcow2"
	cp "$T/q.qcow2" "$T/huge.qcow2"
	# virtual size at offset 24: 2^60
	printf '\020\000\000\000\000\000\000\000' | dd of="$T/huge.qcow2" bs=1 seek=24 conv=notrunc status=none
	run imginfo --output json "$T/huge.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"verdict": "unsafe"'* ]]
	head -c 1000 "$T/q.qcow2" > "$T/cut.qcow2"
	run imginfo "$T/cut.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"safety: unsafe"* ]]
	[[ "$output" == *"truncated"* ]]
}

@test "imginfo: -f asserts the format and names the real one" {
	qemu-img convert -O vdi "$D/p.raw" "$T/x.vdi"
	run imginfo -f qcow2 "$T/x.vdi"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is not qcow2"*"vdi"* ]]
	run imginfo -f vdi "$T/x.vdi"
	[ "$status" -eq 0 ]
	run imginfo -f nosuch "$T/x.vdi"
	[ "$status" -eq 2 ]
}

@test "imginfo: compressed streams are looked through" {
	qemu-img convert -O qcow2 "$D/p.raw" "$T/q.qcow2"
	xz -c "$T/q.qcow2" > "$T/q.qcow2.xz"
	run imginfo --output json "$T/q.qcow2.xz"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"format": "qcow2"'* ]]
	[[ "$output" == *'"compression": "xz"'* ]]
}

@test "imginfo: usage and errors" {
	run imginfo --output yaml "$D/p.raw"
	[ "$status" -eq 2 ]
	run imginfo /nonexistent
	[ "$status" -eq 3 ]
	run imginfo -V
	[ "$status" -eq 0 ]
	[[ "$output" == "imginfo (imgpipe) "* ]]
}

# qemu-img ends a stream of incompressible data right after its last
# grain, with no end-of-stream marker: that is whole, not truncated.
@test "a qemu-img VMDK stream with no end-of-stream marker is safe from a file and from a pipe" {
	head -c 2097152 /dev/urandom > "$T/r.raw"
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$T/r.raw" "$T/r.vmdk"
	run imginfo "$T/r.vmdk"
	[ "$status" -eq 0 ]
	[[ "$output" == *"safety: safe"* ]]
	run sh -c 'cat "$1" | imginfo -' sh "$T/r.vmdk"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"safety: safe"* ]]
	# imgsum names stdin as its peer does: xxhsum says "stdin"
	output_is "$(xxhsum -H2 < "$T/r.raw")" imgsum - < <(cat "$T/r.vmdk")
}
