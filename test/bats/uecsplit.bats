# uecsplit: UEC tarballs built here the way CirrOS and Ubuntu lay them
# out, with real content: a real kernel (the machine's /boot/vmlinuz-*, or
# the one make deps unpacks from Debian's cloud kernel package), an ELF
# vmlinux (crafted: Debian ships none outside -dbg packages), cpio newc
# initramfs archives made by cpio, ext4 images made by mke2fs -d, and an
# MBR disk.  Every part that comes out is compared with cmp to the member.
load helpers

# A bzImage-shaped kernel: boot sector signature, "HdrS" at 0x202.
make_bzimage() {
	head -c 600000 /dev/urandom > "$1"
	printf '\125\252\0\0HdrS' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
}

# An x86_64 ELF vmlinux: a PT_LOAD in the kernel half, a "Linux" note.
make_vmlinux() {
	python3 - "$1" <<'EOF'
import os, struct, sys
eh = struct.pack('<16sHHIQQQIHHHHHH', b'\x7fELF\x02\x01\x01' + b'\0' * 9,
    2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, 2, 64, 0, 0)
note = struct.pack('<III', 6, 4, 0x100) + b'Linux\0\0\0' + b'\1\2\3\4'
load = struct.pack('<IIQQQQQQ', 1, 5, 0x1000, 0xffffffff81000000,
    0x1000000, 0x100000, 0x100000, 0x200000)
notes = struct.pack('<IIQQQQQQ', 4, 4, 0x200, 0xffffffff81000200,
    0x1000200, len(note), len(note), 4)
body = eh + load + notes
body += b'\0' * (0x200 - len(body)) + note + os.urandom(400000)
open(sys.argv[1], 'wb').write(body)
EOF
}

setup_file() {
	local F=$BATS_FILE_TMPDIR k
	mkdir -p "$F/root/bin" "$F/root/etc" "$F/fs" "$F/cirros" "$F/ubuntu"
	echo 'welcome to the test' > "$F/root/etc/motd"
	head -c 200000 /dev/urandom > "$F/root/bin/busybox"
	(cd "$F/root" && find . | cpio -o -H newc --quiet) > "$F/initramfs.cpio"
	cp -r "$F/root/." "$F/fs/"
	head -c 500000 /dev/urandom > "$F/fs/data"
	mke2fs -q -F -t ext4 -d "$F/fs" "$F/ext4.img" 8M
	# CirrOS: NAME-blank.img, NAME-vmlinuz, NAME-initrd (gzip cpio)
	k=$(real_kernel)
	cp "$k" "$F/cirros/c-vmlinuz"
	gzip -9 < "$F/initramfs.cpio" > "$F/cirros/c-initrd"
	cp --sparse=always "$F/ext4.img" "$F/cirros/c-blank.img"
	echo 'cirros test tarball' > "$F/cirros/README"
	# Ubuntu: NAME.img (an MBR disk), NAME-vmlinuz-virtual (ELF),
	# NAME-initrd-virtual (zstd cpio), NAME-loader, README.files
	truncate -s 6M "$F/ubuntu/u.img"
	mke2fs -q -F -t ext4 -d "$F/fs" "$F/part.img" 4M
	dd if="$F/part.img" of="$F/ubuntu/u.img" bs=1M seek=1 conv=notrunc status=none
	printf '\200\0\0\0\203\0\0\0\0\010\0\0\0\040\0\0' |
		dd of="$F/ubuntu/u.img" bs=1 seek=446 conv=notrunc status=none
	printf '\125\252' | dd of="$F/ubuntu/u.img" bs=1 seek=510 conv=notrunc status=none
	make_vmlinux "$F/ubuntu/u-vmlinuz-virtual"
	zstd -q < "$F/initramfs.cpio" > "$F/ubuntu/u-initrd-virtual"
	make_bzimage "$F/ubuntu/u-loader"
	echo 'files: u.img u-vmlinuz-virtual' > "$F/ubuntu/README.files"
	# the tarballs: GNU tar (sparse), every compression, and bsdtar
	tar -C "$F/cirros" --sparse -czf "$F/cirros.tar.gz" \
		README c-blank.img c-vmlinuz c-initrd
	tar -C "$F/ubuntu" --sparse -cJf "$F/ubuntu.tar.xz" \
		u.img u-vmlinuz-virtual u-initrd-virtual u-loader README.files
	tar -C "$F/cirros" -cjf "$F/cirros.tar.bz2" c-vmlinuz c-initrd c-blank.img
	tar -C "$F/cirros" --zstd -cf "$F/cirros.tar.zst" c-initrd c-blank.img c-vmlinuz
	tar -C "$F/cirros" --format=posix --sparse -cf "$F/cirros-pax.tar" \
		c-blank.img c-initrd c-vmlinuz README
	bsdtar -C "$F/cirros" -czf "$F/cirros-bsd.tar.gz" c-vmlinuz README c-initrd c-blank.img
}

# parts TARBALL DIR: -C into DIR and compare each part with its source.
split_and_compare() {
	local tarball=$1 src=$2 f
	rm -rf "$T/out"; mkdir "$T/out"
	uecsplit -C "$T/out" "$tarball" > "$T/list" || return 1
	# an empty list would compare nothing: there is always an image
	grep -q '^image ami ' "$T/list" || { echo "no image in the list"; return 1; }
	for f in $(awk '$1 != "extra" { print $3 }' "$T/list"); do
		cmp "$src/$f" "$T/out/$f" || return 1
	done
}

# stream_all TARBALL SRC KERNEL RAMDISK IMAGE: each --ROLE, file and pipe.
stream_all() {
	local tarball=$1 src=$2
	uecsplit --kernel "$tarball" > "$T/k" && cmp "$src/$3" "$T/k" || return 1
	uecsplit --ramdisk "$tarball" > "$T/r" && cmp "$src/$4" "$T/r" || return 1
	uecsplit --image "$tarball" > "$T/i" && cmp "$src/$5" "$T/i" || return 1
	(set -o pipefail; uecsplit --kernel < <(cat "$tarball") | cat > "$T/k") && cmp "$src/$3" "$T/k" || return 1
	(set -o pipefail; uecsplit --ramdisk < <(cat "$tarball") | cat > "$T/r") && cmp "$src/$4" "$T/r" || return 1
	(set -o pipefail; uecsplit --image < <(cat "$tarball") | cat > "$T/i") && cmp "$src/$5" "$T/i" || return 1
}

@test "cirros layout: roles, formats, sizes, extras" {
	local F=$BATS_FILE_TMPDIR
	run uecsplit "$F/cirros.tar.gz"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "kernel aki c-vmlinuz $(stat -c %s "$F/cirros/c-vmlinuz")" ]
	[ "${lines[1]}" = "ramdisk ari c-initrd $(stat -c %s "$F/cirros/c-initrd")" ]
	[ "${lines[2]}" = "image ami c-blank.img 8388608" ]
	[ "${lines[3]}" = "extra - README 20" ]
	[ "${#lines[@]}" -eq 4 ]
	# by content, not by name
	uecsplit --json "$F/cirros.tar.gz" > "$T/j"
	python3 -c '
import json, sys
p = {p["role"]: p["content"] for p in json.load(sys.stdin)["parts"]}
assert p["kernel"] in ("bzImage", "ELF vmlinux") or "Image" in p["kernel"], p
assert p["ramdisk"] == "gzip cpio newc" and p["image"] == "ext4", p' < "$T/j"
}

@test "cirros layout: -C writes byte-identical parts, skips extras" {
	local F=$BATS_FILE_TMPDIR
	split_and_compare "$F/cirros.tar.gz" "$F/cirros"
	[ "$(awk '$1 != "extra"' "$T/list" | wc -l)" -eq 3 ]
	[ ! -e "$T/out/README" ]
	[ "$(ls -A "$T/out" | wc -l)" -eq 3 ]
}

@test "the image part stays sparse (GNU tar --sparse and plain members)" {
	local F=$BATS_FILE_TMPDIR
	split_and_compare "$F/cirros.tar.gz" "$F/cirros"
	# 8 MiB apparent size, under half of it allocated
	[ "$(du -k "$T/out/c-blank.img" | cut -f1)" -lt 4096 ]
	split_and_compare "$F/cirros.tar.bz2" "$F/cirros"	# not --sparse
	[ "$(du -k "$T/out/c-blank.img" | cut -f1)" -lt 4096 ]
	uecsplit --image "$F/cirros-pax.tar" > "$T/img"		# to a file
	cmp "$F/cirros/c-blank.img" "$T/img"
	[ "$(du -k "$T/img" | cut -f1)" -lt 4096 ]
	cat "$F/cirros.tar.gz" | uecsplit --image -o "$T/img-o"
	cmp "$F/cirros/c-blank.img" "$T/img-o"
	[ "$(du -k "$T/img-o" | cut -f1)" -lt 4096 ]
}

@test "--kernel, --ramdisk, --image: file and pipe, gzip" {
	local F=$BATS_FILE_TMPDIR
	stream_all "$F/cirros.tar.gz" "$F/cirros" c-vmlinuz c-initrd c-blank.img
}

@test "--kernel, --ramdisk, --image: bzip2, zstd, plain pax, bsdtar" {
	local F=$BATS_FILE_TMPDIR t
	for t in cirros.tar.bz2 cirros.tar.zst cirros-pax.tar cirros-bsd.tar.gz; do
		stream_all "$F/$t" "$F/cirros" c-vmlinuz c-initrd c-blank.img
		split_and_compare "$F/$t" "$F/cirros"
	done
}

@test "ubuntu layout: ELF kernel, zstd initramfs, MBR disk, loader and README skipped" {
	local F=$BATS_FILE_TMPDIR
	run uecsplit "$F/ubuntu.tar.xz"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "kernel aki u-vmlinuz-virtual $(stat -c %s "$F/ubuntu/u-vmlinuz-virtual")" ]
	[ "${lines[1]}" = "ramdisk ari u-initrd-virtual $(stat -c %s "$F/ubuntu/u-initrd-virtual")" ]
	[ "${lines[2]}" = "image ami u.img 6291456" ]
	[ "${lines[3]}" = "extra - u-loader 600000" ]
	[ "${lines[4]}" = "extra - README.files 31" ]
	split_and_compare "$F/ubuntu.tar.xz" "$F/ubuntu"
	[ ! -e "$T/out/u-loader" ]
	stream_all "$F/ubuntu.tar.xz" "$F/ubuntu" u-vmlinuz-virtual u-initrd-virtual u.img
}

@test "misleading names: content beats the name, also held back from a pipe" {
	local F=$BATS_FILE_TMPDIR
	mkdir "$T/mis"
	cp "$F/cirros/c-vmlinuz" "$T/mis/x.img"
	cp "$F/ext4.img" "$T/mis/x-vmlinuz"
	cp "$F/cirros/c-initrd" "$T/mis/disk"
	tar -C "$T/mis" -czf "$T/mis.tgz" x-vmlinuz disk x.img
	run uecsplit "$T/mis.tgz"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "kernel aki x.img $(stat -c %s "$F/cirros/c-vmlinuz")" ]
	[ "${lines[1]}" = "ramdisk ari disk $(stat -c %s "$F/cirros/c-initrd")" ]
	[ "${lines[2]}" = "image ami x-vmlinuz 8388608" ]
	split_and_compare "$T/mis.tgz" "$T/mis"
	# Names disagree, so each part waits in the stash; a 64 KiB budget
	# makes the image spill to $TMPDIR, which is empty afterwards.
	mkdir "$T/tmp"
	stream_all "$T/mis.tgz" "$T/mis" x.img disk x-vmlinuz
	cat "$T/mis.tgz" | TMPDIR="$T/tmp" uecsplit --image --mem 64K > "$T/i"
	cmp "$F/ext4.img" "$T/i"
	[ -z "$(ls -A "$T/tmp")" ]
}

@test "two kernels: exit 1 naming both" {
	local F=$BATS_FILE_TMPDIR
	mkdir "$T/two"
	cp "$F/cirros/c-vmlinuz" "$T/two/a-vmlinuz"
	cp "$F/ubuntu/u-vmlinuz-virtual" "$T/two/b-vmlinuz"
	cp "$F/ext4.img" "$T/two/x.img"
	tar -C "$T/two" -czf "$T/two.tgz" a-vmlinuz x.img b-vmlinuz
	mkdir "$T/out"
	for args in "" "-C $T/out" "--kernel" "--image"; do
		run sh -c "uecsplit $args '$T/two.tgz' > '$T/o'"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ "$output" == *"more than one kernel"*"a-vmlinuz"*"b-vmlinuz"* ]]
	done
	[ -z "$(ls -A "$T/out")" ]
}

@test "no image: exit 1; no kernel wanted but missing: exit 1" {
	local F=$BATS_FILE_TMPDIR
	tar -C "$F/cirros" -czf "$T/noimg.tgz" c-vmlinuz c-initrd README
	run uecsplit "$T/noimg.tgz"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"no machine image"* ]]
	tar -C "$F/cirros" -czf "$T/nokernel.tgz" c-initrd c-blank.img
	run uecsplit --kernel "$T/nokernel.tgz"
	[ "$status" -eq 1 ]
	[[ "$output" == *"no kernel"* ]]
	run uecsplit "$T/nokernel.tgz"		# an AMI without an AKI is fine
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ramdisk ari c-initrd $(stat -c %s "$F/cirros/c-initrd")" ]
}

@test "hostile names: ../ rejected, /abs cleaned, symlink never created" {
	local F=$BATS_FILE_TMPDIR
	mkdir "$T/out" "$T/h"
	tar -C "$F/cirros" -cf "$T/dotdot.tar" -P --transform 's,^,../,' c-blank.img
	run uecsplit -C "$T/out" "$T/dotdot.tar"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unsafe member name '../c-blank.img'"* ]]
	[ -z "$(ls -A "$T/out")" ]
	[ ! -e "$T/c-blank.img" ]
	tar -C "$F/cirros" -cf "$T/abs.tar" -P --transform "s,^,$T/abs-," \
		c-blank.img c-vmlinuz
	run uecsplit -C "$T/out" "$T/abs.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$F/cirros/c-blank.img" "$T/out/abs-c-blank.img"
	[ ! -e "$T/abs-c-blank.img" ]
	ln -s /etc/passwd "$T/h/evil-vmlinuz"
	ln -s ../../escape "$T/h/disk.img"
	tar -C "$T/h" -cf "$T/links.tar" evil-vmlinuz disk.img
	tar -C "$F/cirros" -rf "$T/links.tar" c-blank.img
	rm -rf "$T/out"; mkdir "$T/out"
	run uecsplit -C "$T/out" "$T/links.tar"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"skipping symbolic link 'evil-vmlinuz'"* ]]
	[ ! -L "$T/out/evil-vmlinuz" ]
	[ ! -L "$T/out/disk.img" ]
	[ "$(ls -A "$T/out")" = c-blank.img ]
}

@test "--json parses and names every member" {
	local F=$BATS_FILE_TMPDIR
	mkdir "$T/out"
	uecsplit --json -C "$T/out" "$F/ubuntu.tar.xz" > "$T/j"
	python3 -m json.tool "$T/j" > /dev/null
	python3 - "$T/j" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
parts = {p['role']: p for p in j['parts']}
assert parts['kernel']['disk-format'] == 'aki' and parts['kernel']['content'] == 'ELF vmlinux'
assert parts['ramdisk']['container-format'] == 'ari' and parts['ramdisk']['content'] == 'zstd cpio newc'
assert parts['image']['name'] == 'u.img' and parts['image']['content'] == 'MBR disk'
assert parts['image']['size'] == 6291456 and parts['image']['path'].endswith('/u.img')
assert sorted(e['name'] for e in j['extras']) == ['README.files', 'u-loader']
EOF
}

@test "--glance prints the three openstack image create commands" {
	local F=$BATS_FILE_TMPDIR
	run uecsplit --glance cirros-test "$F/cirros.tar.gz"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[4]}" == "KERNEL_ID=\$(openstack image create "*"--disk-format aki --container-format aki --file 'c-vmlinuz' 'cirros-test-kernel')" ]]
	[[ "${lines[5]}" == "RAMDISK_ID=\$(openstack image create "*"--disk-format ari --container-format ari --file 'c-initrd' 'cirros-test-ramdisk')" ]]
	[[ "${lines[6]}" == "openstack image create --disk-format ami --container-format ami --property kernel_id=\"\$KERNEL_ID\" --property ramdisk_id=\"\$RAMDISK_ID\" --file 'c-blank.img' 'cirros-test'" ]]
	uecsplit --json --glance cirros-test "$F/cirros.tar.gz" > "$T/j"
	python3 -m json.tool "$T/j" > /dev/null
}

@test "a truncated tarball fails cleanly and leaves no part behind" {
	local F=$BATS_FILE_TMPDIR size n
	size=$(stat -c %s "$F/cirros.tar.gz")
	mkdir "$T/out"
	# size - 30 cuts into the tar's end blocks, size - 4 only the gzip trailer
	for n in 100 10240 $((size / 3)) $((size / 2)) $((size - 30)) $((size - 4)); do
		head -c "$n" "$F/cirros.tar.gz" > "$T/cut.tgz"
		run timeout 10 uecsplit -C "$T/out" "$T/cut.tgz"
		echo "cut $n: $output"
		[ "$status" -eq 1 ]
		[ -n "$output" ]
		[ -z "$(ls -A "$T/out")" ]
		run timeout 10 sh -c "cat '$T/cut.tgz' | uecsplit --image > /dev/null"
		[ "$status" -eq 1 ]
		[ -n "$output" ]
		run timeout 10 uecsplit --image -o "$T/out/cut.img" "$T/cut.tgz"
		[ "$status" -eq 1 ]
		[ -z "$(ls -A "$T/out")" ]
	done
	# plain tar: listing seeks over members, and must still see the cut
	size=$(stat -c %s "$F/cirros-pax.tar")
	for n in 600 $((size / 4)) $((size / 2)) $((size - 20000)); do
		head -c "$n" "$F/cirros-pax.tar" > "$T/cut.tar"
		run uecsplit "$T/cut.tar"
		echo "cut $n: $output"
		[ "$status" -eq 1 ]
		[[ "$output" == *runcated* ]]
	done
	run uecsplit /dev/null
	[ "$status" -eq 1 ]
	run uecsplit "$F/ext4.img"
	[ "$status" -eq 1 ]
}

@test "usage: exclusive options, help, version" {
	run uecsplit --kernel --image /dev/null
	[ "$status" -eq 2 ]
	run uecsplit --kernel -C "$T" /dev/null
	[ "$status" -eq 2 ]
	run uecsplit -o "$T/x" /dev/null
	[ "$status" -eq 2 ]
	run uecsplit -h
	[ "$status" -eq 0 ]
	[[ "$output" == Usage:* ]]
	run uecsplit -V
	[ "$status" -eq 0 ]
	[[ "$output" == "uecsplit (imgpipe) "* ]]
	run uecsplit -C "$T/missing" /dev/null
	[ "$status" -ne 0 ]
}

# A PAX (GNU 1.0) sparse member "NAME" whose header claims REALSIZE bytes,
# after the cirros parts: sparse_tar OUT NAME REALSIZE
sparse_tar() {
	python3 - "$@" "$BATS_FILE_TMPDIR/cirros" <<'EOF'
import io, os, sys, tarfile
out, name, realsize, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = b"\x55" * 4096
smap = b"1\n0\n%d\n" % len(data)
smap += b"\0" * (-len(smap) % 512)
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for f in ("c-vmlinuz", "c-initrd"):
        t.add(os.path.join(src, f), arcname=f)
    ti = tarfile.TarInfo("GNUSparseFile.0/" + name)
    ti.size = len(smap) + len(data)
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
        "GNU.sparse.name": name, "GNU.sparse.realsize": str(realsize)}
    t.addfile(ti, io.BytesIO(smap + data))
EOF
}

@test "a sparse member claiming 1 PiB fails at once (exit 1), before a byte of it is written" {
	mkdir "$T/out"
	sparse_tar "$T/big.tar" c-blank.img 1125899906842624
	for cmd in "uecsplit -C $T/out $T/big.tar" "uecsplit $T/big.tar" \
	    "uecsplit --image $T/big.tar"; do
		run timeout 10 sh -c "$cmd > $T/o"
		echo "$cmd: $output"
		[ "$status" -eq 1 ]
		[[ "$output" == *"c-blank.img claims 1125899906842624 bytes, more than the 70368744177664 a disk may have" ]]
		[ ! -s "$T/o" ]
		[ -z "$(ls -A "$T/out")" ]
	done
	run timeout 10 sh -c "cat $T/big.tar | uecsplit --image > $T/o"
	[ "$status" -eq 1 ]
	# within the limit it is read, sparse
	sparse_tar "$T/ok.tar" c-blank.img 1048576
	uecsplit --image "$T/ok.tar" | cmp - <(head -c 4096 /dev/zero | tr '\0' '\125'; head -c 1044480 /dev/zero)
}

@test "--json: a member named in Latin-1 is valid UTF-8 JSON, read as Latin-1" {
	local F=$BATS_FILE_TMPDIR
	mkdir "$T/l1"
	cp "$F/cirros/c-vmlinuz" "$F/cirros/c-initrd" "$F/cirros/c-blank.img" "$T/l1/"
	printf 'hello\n' > "$T/l1/caf"$'\xe9'".txt"
	tar -C "$T/l1" -czf "$T/l1.tar.gz" c-vmlinuz c-initrd c-blank.img "caf"$'\xe9'".txt"
	uecsplit --json "$T/l1.tar.gz" > "$T/j"
	iconv -f UTF-8 -t UTF-8 "$T/j" > /dev/null
	python3 - "$T/j" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
assert [e["name"] for e in j["extras"]] == ["caf\u00e9.txt"], j["extras"]
assert all(k == k.lower() and "_" not in k for p in j["parts"] for k in p), j["parts"]
EOF
}

@test "-p: the tarball is counted, a final line at 100%" {
	local F=$BATS_FILE_TMPDIR
	uecsplit -p "$F/cirros.tar.gz" 2> "$T/err" > /dev/null
	[[ "$(tail -n 1 "$T/err")" == "uecsplit: "*" 100%  "*" in "* ]]
	! grep -q $'\r' "$T/err"
	cat "$F/cirros-pax.tar" | uecsplit -p --size "$(stat -c %s "$F/cirros-pax.tar")" 2> "$T/err" > /dev/null
	[[ "$(tail -n 1 "$T/err")" == "uecsplit: "*" 100%  "*" in "* ]]
}
