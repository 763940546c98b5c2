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
	run imginfo --strict "$T/gpt.vhd"
	[ "$status" -eq 0 ]
	[[ "$output" == *"file format: vpc"* ]]
	[[ "$output" == *"partition table: gpt"* ]]
	run sh -c 'cat "$1" | imginfo --strict' sh "$T/gpt.vhd"
	[ "$status" -eq 0 ]
}

# Every Windows, Hyper-V and Azure fixed VHD is an MBR or GPT disk.
@test "imginfo: a fixed VHD of an MBR disk is safe from a file and a pipe; a dynamic one too" {
	truncate -s 8M "$T/mbr.raw"
	echo 'label: dos
start=2048, type=7' | sfdisk -q "$T/mbr.raw"
	for sub in fixed dynamic; do
		qemu-img convert -O vpc -o subformat=$sub "$T/mbr.raw" "$T/mbr.vhd"
		run imginfo --strict "$T/mbr.vhd"
		[ "$status" -eq 0 ]
		if [ $sub = fixed ]; then
			[[ "$output" == *"partition table: mbr"* ]]
		fi
		run sh -c 'cat "$1" | imginfo --strict' sh "$T/mbr.vhd"
		[ "$status" -eq 0 ]
	done
}

@test "imginfo: an MBR inside a qcow2's header cluster is ambiguous, from a file and a pipe" {
	# version 2: no header extensions where the partition entries go
	qemu-img convert -O qcow2 -o compat=0.10 "$D/p.raw" "$T/q.qcow2"
	# partition 1: type 0x83, start 2048, 4096 sectors; boot signature
	printf '\000\000\000\000\203\000\000\000\000\010\000\000\000\020\000\000' |
		dd of="$T/q.qcow2" bs=1 seek=446 conv=notrunc status=none
	printf '\125\252' | dd of="$T/q.qcow2" bs=1 seek=510 conv=notrunc status=none
	run imginfo --strict "$T/q.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ambiguous: a mbr partition table inside a qcow2 image"* ]]
	run sh -c 'cat "$1" | imginfo --strict' sh "$T/q.qcow2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ambiguous: a mbr partition table"* ]]
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
	run imginfo --allow backing-fiel "$D/p.raw"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown finding 'backing-fiel'"*"truncated out-of-range overlap shared-block misaligned malformed"*"backing-file"* ]]
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

@test "imginfo: --json, --output=json and --output json give the same valid JSON" {
	qemu-img convert -O vmdk "$D/p.raw" "$T/x.vmdk"
	imginfo --json "$T/x.vmdk" > "$T/a.json"
	imginfo --output=json "$T/x.vmdk" > "$T/b.json"
	imginfo --output json "$T/x.vmdk" > "$T/c.json"
	cmp "$T/a.json" "$T/b.json"
	cmp "$T/a.json" "$T/c.json"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/a.json"
	imginfo --output=human "$T/x.vmdk" > "$T/h.txt"
	grep -q '^file format: vmdk$' "$T/h.txt"
}

@test "imginfo: names that are not UTF-8 or hold quotes and control bytes still give valid JSON" {
	qemu-img create -q -f qcow2 -b "$T/a\"b\\c$(printf '\001\377')d" -F raw -u "$T/o.qcow2" 1M
	imginfo --output=json "$T/o.qcow2" > "$T/o.json"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["backing-filename"].startswith(sys.argv[2]), d' "$T/o.json" "$T/a\"b\\c"
}

# Every finding code a reader can record (image_unsafe, image_defect with
# a code of its own, FINDING_* of err.h) is documented in imginfo(1) and
# accepted by --allow (log-size was reported but refused by --allow).
@test "imginfo: every finding code in the source is documented and accepted by --allow" {
	local src=$BATS_TEST_DIRNAME/../.. code codes
	codes=$( { grep -rhoE 'image_(unsafe|defect)\([a-z>_-]+, "[a-z0-9-]+"' "$src/lib" | sed 's/.*"\(.*\)"/\1/'
		grep -hoE '^#define FINDING_[A-Z_]+[[:space:]]+"[a-z-]+"' "$src/include/imgpipe/err.h" | sed 's/.*"\(.*\)"/\1/'
		} | sort -u)
	[ -n "$codes" ]
	for code in $codes; do
		grep -q "^\.It Cm $code\( \|\$\)\|Cm $code ,\|, Cm $code\$" "$src/man/imginfo.1" ||
			{ echo "not in imginfo.1: $code"; return 1; }
		run imginfo --allow "$code" "$D/p.raw"
		[ "$status" -eq 0 ] || { echo "--allow $code: $output"; return 1; }
	done
}

@test "imginfo: qcow2 facts as qemu-img prints them: snapshots, backing format, encryption, lazy refcounts" {
	qemu-img convert -O qcow2 -o lazy_refcounts=on "$D/p.raw" "$T/s.qcow2"
	qemu-img snapshot -c first "$T/s.qcow2"
	qemu-img snapshot -c second "$T/s.qcow2"
	imginfo --output=json "$T/s.qcow2" > "$T/s.json"
	python3 - "$T/s.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert [s["name"] for s in d["snapshots"]] == ["first", "second"], d
assert d["snapshots"][1]["id"] == "2", d
assert d["format-specific"]["data"]["lazy-refcounts"] is True, d
assert d["format-specific"]["data"]["refcount-bits"] == 16, d
PY
	run imginfo "$T/s.qcow2"
	[[ "$output" == *"Snapshot list:"*"first"*"second"* ]]
	[[ "$output" == *"    lazy refcounts: true"* ]]
	qemu-img create -q -f qcow2 -b "$T/s.qcow2" -F qcow2 "$T/o.qcow2"
	run imginfo "$T/o.qcow2"
	[[ "$output" == *"backing file format: qcow2"* ]]
}

# qemu_keys SPEC...: make each image (qemu-img convert -O SPEC) in $T and
# compare every key qemu-img info --output=json prints with ours
# (test/qemu_keys.py); differences must be in imginfo(1).
qemu_keys() {
	local spec f n=0 bad=0
	for spec in "$@"; do
		set -- $spec
		f=$1
		shift
		n=$((n + 1))
		qemu-img convert -f raw -O "$f" "$@" p.raw "img$n.$f"
		qemu_keys_of "img$n.$f" "$f" || { echo "^ $spec"; bad=1; }
	done
	return $bad
}

qemu_keys_of() {
	imginfo --output=json "$1" > ours.json
	qemu-img info --output=json -f "$2" "$1" > qemu.json
	python3 "$BATS_TEST_DIRNAME/../qemu_keys.py" ours.json qemu.json \
		"$BATS_TEST_DIRNAME/../../man/imginfo.1"
}

@test "imginfo: every key qemu-img info prints, for every format, is ours with its value or a documented difference" {
	cd "$T"
	cp "$D/p.raw" p.raw
	qemu_keys qcow2 "qcow2 -o compat=0.10" "qcow2 -c" \
	    "qcow2 -o extended_l2=on,cluster_size=128k" \
	    "qcow2 -o lazy_refcounts=on,refcount_bits=64" \
	    "qcow2 -o compression_type=zstd" \
	    vmdk "vmdk -o subformat=streamOptimized" \
	    "vmdk -o subformat=monolithicFlat" \
	    "vmdk -o subformat=twoGbMaxExtentSparse" \
	    "vmdk -o subformat=twoGbMaxExtentFlat" \
	    vdi "vdi -o static=on" vpc "vpc -o subformat=fixed" \
	    vhdx "vhdx -o subformat=fixed" qed parallels raw
	# snapshots, backing files, encryption, an ISO
	qemu-img convert -f raw -O qcow2 p.raw snap.qcow2
	qemu-img snapshot -c one snap.qcow2
	qemu_keys_of snap.qcow2 qcow2
	qemu-img create -q -f qcow2 -b snap.qcow2 -F qcow2 over.qcow2
	qemu_keys_of over.qcow2 qcow2
	qemu-img create -q -f qed -b p.raw -F raw over.qed
	qemu_keys_of over.qed qed
	qemu-img create -q -f qcow2 enc.qcow2 1M
	printf '\000\000\000\001' | dd of=enc.qcow2 bs=1 seek=32 conv=notrunc status=none
	qemu_keys_of enc.qcow2 qcow2
	mkdir tree && echo hi > tree/a
	xorriso -as mkisofs -quiet -o cd.iso tree 2>/dev/null
	qemu_keys_of cd.iso raw
}
