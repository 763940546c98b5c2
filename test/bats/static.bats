# The static programs (make static) in an empty root directory, as the
# scratch container of the Containerfile holds them: /bin and nothing else,
# an empty environment, run with chroot (unshare -r chroot when not root).
# setup_file builds them (make static, into the BUILD directory): they are
# never skipped, and never stale.
load helpers

B=$(cd "${IMGPIPE_BUILD:-$BATS_TEST_DIRNAME/../..}" 2>/dev/null && pwd) || B=/nonexistent
S=$B/bin-static
MAPS=$B/obj/static
VMDK_SO=http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized

setup_file() {
	make --no-print-directory -s -C "$BATS_TEST_DIRNAME/../.." -j2 static BUILD="$B" >&2
	F=$BATS_FILE_TMPDIR
	mkdir -p "$F/root/bin"
	cp "$S"/* "$F/root/bin/"
	make_pattern "$F/disk.raw" 4194304
	qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$F/disk.raw" "$F/disk1.vmdk"
	qemu-img convert -q -f raw -O qcow2 "$F/disk.raw" "$F/disk.qcow2"
	(cd "$F" && make_ova x.ova disk1.vmdk)
}

# make_ova OUT DISK: an OVF 1.0 descriptor, a SHA256 manifest, the disk
make_ova() {
	local out=$1 disk=$2
	cat > x.ovf <<-XML
	<?xml version="1.0" encoding="${OVF_ENCODING:-UTF-8}"?>
	<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
	  <References>
	    <File ovf:href="$disk" ovf:id="file1" ovf:size="$(stat -c %s "$disk")"/>
	  </References>
	  <DiskSection>
	    <Info>Virtual disk information</Info>
	    <Disk ovf:capacity="4" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="$VMDK_SO"/>
	  </DiskSection>
	  <VirtualSystem ovf:id="vm">
	    <Info>A virtual machine</Info>
	    <Name>static test</Name>
	  </VirtualSystem>
	</Envelope>
	XML
	sha256sum --tag x.ovf "$disk" | sed 's/^SHA256 (\(.*\)) = /SHA256(\1) = /' > x.mf
	tar --format=ustar -cf "$out" x.ovf x.mf "$disk"
}

setup() {
	F=$BATS_FILE_TMPDIR
	R=$F/root
	CHROOT=$(command -v chroot)
	UNSHARE=$(command -v unshare)
	set -o pipefail
}

# inroot PROGRAM ARGS...: run /bin/PROGRAM in the empty root with an empty
# environment (plus any NAME=VALUE given before the program).
inroot() {
	local envs=()
	while [[ $1 == *=* ]]; do envs+=("$1"); shift; done
	if [ "$(id -u)" = 0 ]; then
		env -i "${envs[@]}" "$CHROOT" "$R" "/bin/$@"
	else
		env -i "${envs[@]}" "$UNSHARE" -r "$CHROOT" "$R" "/bin/$@"
	fi
}

@test "every program is a stripped static binary, and only the programs" {
	local n=0 p desc
	for p in "$BATS_TEST_DIRNAME"/../../cmd/*.c; do
		p=$(basename "$p" .c)
		n=$((n + 1))
		desc=$(file "$S/$p")
		[[ "$desc" == *"statically linked"* ]]
		[[ "$desc" == *", stripped"* ]]
		[[ "$desc" != *"dynamically linked"* ]]
	done
	[ "$(ls "$S" | wc -l)" -eq "$n" ]
	[ "$(ls "$R/bin" | wc -l)" -eq "$n" ]
}

@test "every program answers -V and -h in the empty root with an empty environment" {
	[ "$(ls -A "$R")" = bin ]
	local p out
	for p in "$R"/bin/*; do
		p=$(basename "$p")
		out=$(inroot "$p" -V)
		[ "$out" = "$p (imgpipe) $(IMGPIPE_BIN= "$IMGPIPE_BIN/$p" -V | cut -d' ' -f3)" ]
		out=$(inroot "$p" -h)
		grep -q "^Usage: $p " <<< "$out"
		run inroot "$p" --no-such-option
		[ "$status" -eq 2 ]
	done
}

@test "headline pipeline in the empty root: ovaextract < x.ova | img2raw | raw2qcow2 > out.qcow2" {
	inroot ovaextract < "$F/x.ova" | inroot img2raw | inroot raw2qcow2 > "$T/out.qcow2"
	qemu-img compare -q -f raw -F qcow2 "$F/disk.raw" "$T/out.qcow2"
	qemu-img check -q "$T/out.qcow2"
	# and the same bytes as the dynamic programs write
	ovaextract < "$F/x.ova" | img2raw | raw2qcow2 > "$T/dyn.qcow2"
	cmp "$T/dyn.qcow2" "$T/out.qcow2"
}

@test "pipe to pipe, the stash spilling into TMPDIR inside the root" {
	mkdir "$R/stash"
	inroot ovaextract < "$F/x.ova" | inroot img2raw |
		inroot TMPDIR=/stash raw2qcow2 -c --mem 64K | cat > "$T/out.qcow2"
	rmdir "$R/stash"	# empty again: the spill file was unlinked
	qemu-img compare -q -f raw -F qcow2 "$F/disk.raw" "$T/out.qcow2"
	# a scratch image has no /tmp: spilling without a TMPDIR fails, with
	# the reason and a non-zero status, rather than writing a short image
	run bash -c 'set -o pipefail; cat "$1" | env -i "$2" "$3" /bin/raw2qcow2 --mem 64K | cat > /dev/null' \
		sh "$F/disk.raw" "$CHROOT" "$R"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == raw2qcow2:* ]]
}

@test "manifest digests (nettle), compressed streams (xz, zstd, bzip2, gzip) and imgsum in the root" {
	# a corrupted disk in the OVA: the SHA256 manifest check fails, status 4
	cp "$F/x.ova" "$T/bad.ova"
	printf 'X' | dd of="$T/bad.ova" bs=1 seek=$(( $(stat -c %s "$T/bad.ova") - 20000 )) conv=notrunc status=none
	run bash -c 'env -i "$1" "$2" /bin/ovaextract < "$3" > /dev/null' sh "$CHROOT" "$R" "$T/bad.ova"
	[ "$status" -eq 4 ]
	local z
	for z in "xz -T1" zstd bzip2 gzip; do
		$z -c < "$F/disk.qcow2" | inroot img2raw > "$T/out.raw"
		cmp "$F/disk.raw" "$T/out.raw"
	done
	want=$(xxhsum -H2 < "$F/disk.raw" | cut -d' ' -f1)
	got=$(inroot imgsum < "$F/disk.qcow2")
	[ "${got%% *}" = "$want" ]
	got=$(inroot imgsum -a sha256 < "$F/disk1.vmdk")
	[ "${got%% *}" = "$(sha256sum < "$F/disk.raw" | cut -d' ' -f1)" ]
	got=$(inroot imginfo < "$F/disk.qcow2")
	grep -q 'file format: qcow2' <<< "$got"
	img2raw < "$F/disk.qcow2" | inroot imgsparse > "$T/sparse.raw"
	cmp "$F/disk.raw" "$T/sparse.raw"
}

@test "the pod of the README's Kubernetes Job: stages joined by FIFOs in a shared directory" {
	# initContainer: mkfifo in the shared emptyDir; then four containers
	# at once: fetch (curl) > /io/in; img2raw /io/in -> /io/raw;
	# raw2qcow2 /io/raw -> /io/out with its stash in /stash; upload < /io/out
	mkdir "$R/io" "$R/stash"
	mkfifo "$R/io/in" "$R/io/raw" "$R/io/out"
	cat "$F/disk1.vmdk" > "$R/io/in" & fetch=$!
	inroot img2raw --tmpdir /stash -o /io/raw /io/in & conv=$!
	inroot raw2qcow2 --tmpdir /stash -o /io/out /io/raw & write=$!
	cat "$R/io/out" > "$T/out.qcow2" & upload=$!
	wait $fetch; wait $conv; wait $write; wait $upload
	rm -r "$R/io"; rmdir "$R/stash"
	qemu-img compare -q -f raw -F qcow2 "$F/disk.raw" "$T/out.qcow2"
}

@test "the Job's pod with a bad image: img2raw fails (so the pod does), nothing hangs" {
	mkdir "$R/io" "$R/stash"
	mkfifo "$R/io/in" "$R/io/raw" "$R/io/out"
	head -c 50000 "$F/disk1.vmdk" > "$T/cut.vmdk"
	timeout 20 sh -c 'cat "$1" > "$2"' sh "$T/cut.vmdk" "$R/io/in" & fetch=$!
	timeout 20 env -i "$CHROOT" "$R" /bin/img2raw --tmpdir /stash -o /io/raw /io/in 2> "$T/err" & conv=$!
	timeout 20 env -i "$CHROOT" "$R" /bin/raw2qcow2 --tmpdir /stash -o /io/out /io/raw & write=$!
	timeout 20 sh -c 'cat "$1" > "$2"' sh "$R/io/out" "$T/out.qcow2" & upload=$!
	st=0; wait $conv || st=$?
	# the others may fail (a pipe closed under them), but none may hang:
	# timeout's 124 is a failure
	local job js
	for job in $fetch $write $upload; do
		js=0; wait "$job" || js=$?
		[ "$js" -ne 124 ] || { echo "a stage hung"; return 1; }
	done
	rm -r "$R/io"; rmdir "$R/stash"
	cat "$T/err"
	[ "$st" -eq 1 ]
	grep -q '^img2raw: .*: vmdk: ' "$T/err"
}

@test "a static program holds only what it uses (link maps)" {
	# has PROGRAM LIB, lacks PROGRAM LIB: the archive LIB is, or is not,
	# among the members linked into PROGRAM (its link map)
	members() {
		[ -s "$MAPS/$1.map" ] || { echo "no link map for $1"; return 1; }
		sed -n '1,/^Discarded input sections/p' "$MAPS/$1.map" | grep -o '[a-z0-9_+]*\.a(' | sort -u
	}
	has() {
		local m
		m=$(members "$1") || return 1
		grep -qxF "$2(" <<< "$m" || { echo "$1 does not link $2"; return 1; }
	}
	lacks() {
		local m
		m=$(members "$1") || return 1
		! grep -qxF "$2(" <<< "$m" || { echo "$1 links $2"; return 1; }
	}
	has ovaextract libxml2.a
	has ovaextract libnettle.a
	lacks ovaextract libicudata.a
	lacks imgsparse libxml2.a
	lacks imgsparse libnettle.a
	lacks img2raw libxml2.a
	lacks raw2qcow2 libxml2.a
	lacks uecsplit libxml2.a
	has imgsum libxxhash.a
	# no program is big: the largest (ovaextract, with libxml2) under 5 MiB
	local p
	for p in "$S"/*; do
		[ "$(stat -c %s "$p")" -lt $((5 << 20)) ]
	done
}

@test "an OVF in Latin-1 parses in the root; one in windows-1252 (iconv modules, ICU data: neither there) is a clean rejection" {
	cp "$F/disk1.vmdk" "$T/"
	cd "$T"
	OVF_ENCODING=ISO-8859-1 make_ova l1.ova disk1.vmdk
	inroot ovaextract < l1.ova | inroot img2raw > out.raw
	cmp "$F/disk.raw" out.raw
	OVF_ENCODING=windows-1252 make_ova w.ova disk1.vmdk
	run bash -c 'env -i "$1" "$2" /bin/ovaextract < "$3" > /dev/null' sh "$CHROOT" "$R" w.ova
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == ovaextract:* ]]
}

# The container image cannot be built here (no container engine, no
# registry), so its build stage is replayed: the files its COPY lines name,
# and nothing else, must build every program statically.
@test "the Containerfile's COPY set alone builds every static program" {
	local top=$BATS_TEST_DIRNAME/../.. src dst
	mkdir "$T/ctx"
	awk '/^FROM scratch/ { exit } /^COPY / { print $2, $3 }' "$top/Containerfile" > "$T/copies"
	[ -s "$T/copies" ]
	while read -r src dst; do
		cp -r "$top/$src" "$T/ctx/$dst"
	done < "$T/copies"
	make -C "$T/ctx" -s -j2 static BUILD="$T/build" > "$T/log" 2>&1 || { cat "$T/log"; false; }
	[ "$(ls "$T/build/bin-static")" = "$(ls "$top/cmd" | sed 's/\.c$//')" ]
	# the final stage takes the programs from where the build put them
	grep -q '^COPY --from=build /build/bin-static/ /bin/$' "$top/Containerfile"
	grep -q 'static BUILD=/build$' "$top/Containerfile"
	# and its apt-get line names the package of every static archive
	# the link takes (ICU's C++ needs libstdc++'s)
	local lib a pkg
	for lib in $(make -s -C "$top" print-static-libs | tr ' ' '\n' |
	    sed -n 's/^-l//p' | sort -u); do
		a=$(gcc -print-file-name="lib$lib.a")
		[ -e "$a" ] || continue	# filtered out of the link (acl)
		pkg=$(dpkg -S "$(readlink -f "$a")" | cut -d: -f1)
		grep -q "[[:space:]]$pkg\b" "$top/Containerfile" ||
			{ echo "lib$lib.a: $pkg is not installed by the Containerfile"; false; }
	done
}
