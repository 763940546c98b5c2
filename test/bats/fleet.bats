# Fleet recipe: GNU parallel runs test/fleet/convert-one over a directory
# of images in different formats (made by qemu-img from one patterned raw);
# every output must be a qcow2 whose imgsum is the raw's digest (and
# xxhsum's), and a bad image must fail its job, counted by parallel's
# exit status, while the others succeed.
load helpers

setup_file() {
	F=$BATS_FILE_TMPDIR
	mkdir -p "$F/in"
	make_pattern "$F/disk.raw" 4194304
	local raw=$F/disk.raw in=$F/in
	qemu-img convert -q -f raw -O qcow2 "$raw" "$in/a.qcow2"
	qemu-img convert -q -f raw -O qcow2 -c -o compat=0.10 "$raw" "$in/b-v2-deflate.qcow2"
	qemu-img convert -q -f raw -O vmdk "$raw" "$in/c.vmdk"
	qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$raw" "$in/d-stream.vmdk"
	qemu-img convert -q -f raw -O vhdx "$raw" "$in/e.vhdx"
	qemu-img convert -q -f raw -O vdi "$raw" "$in/f.vdi"
	# force_size: the VHD keeps the raw's size instead of a CHS geometry's
	qemu-img convert -q -f raw -O vpc -o force_size=on "$raw" "$in/g.vhd"
	qemu-img convert -q -f raw -O qed "$raw" "$in/h.qed"
	qemu-img convert -q -f raw -O parallels "$raw" "$in/i.parallels"
	xz -T1 -0 -c "$in/a.qcow2" > "$in/j.qcow2.xz"
	cp "$raw" "$in/k.img"
	export PATH="$BATS_TEST_DIRNAME/../fleet:$PATH"
	imgsum -f raw "$raw" > "$F/want.sum"
	cut -d' ' -f1 "$F/want.sum" > "$F/want"
}

setup() {
	F=$BATS_FILE_TMPDIR
	export PATH="$BATS_TEST_DIRNAME/../fleet:$PATH"
	want=$(cat "$F/want")
	cp -r "$F/in" "$T/in"
	mkdir "$T/out"
}

# check_outputs N: N qcow2 files in $T/out, each the raw disk
check_outputs() {
	local n=0 q got
	for q in "$T"/out/*.qcow2; do
		[ -f "$q" ] || continue
		n=$((n + 1))
		[ "$(qemu-img info --output=json "$q" | grep '"format"')" = '    "format": "qcow2",' ] ||
			{ echo "$q: not qcow2"; return 1; }
		got=$(imgsum "$q") && [ "${got%% *}" = "$want" ] || { echo "$q: digest"; return 1; }
	done
	[ "$n" -eq "$1" ] || { echo "$n outputs, want $1"; return 1; }
	# and the qcow2 holds the same bytes for qemu-img too (one of them)
	qemu-img compare -q "$F/disk.raw" "$T/out/c.vmdk.qcow2"
	! ls "$T"/out/*.part 2>/dev/null
}

@test "the raw's imgsum is xxhsum's XXH128 of it" {
	[ "$want" = "$(xxhsum -H2 < "$F/disk.raw" | cut -d' ' -f1)" ]
}

@test "parallel -j 2 converts a directory of every format, each verified" {
	run parallel -j 2 --joblog "$T/jobs" convert-one {} "$T/out/{/}.qcow2" ::: "$T"/in/*
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c . "$T/jobs")" -eq 12 ]	# header + 11 jobs
	check_outputs 11
}

@test "a bad image fails its job, parallel counts it, the others succeed" {
	head -c 300000 "$T/in/c.vmdk" > "$T/in/z-cut.vmdk"
	printf 'not an image at all, just text\n' > "$T/in/y-text.qcow2"
	qemu-img create -q -f qcow2 -b "$F/disk.raw" -F raw "$T/in/x-backing.qcow2"
	run parallel -j 2 --joblog "$T/jobs" convert-one {} "$T/out/{/}.qcow2" ::: "$T"/in/*
	echo "$output"
	# parallel's exit status is the number of failed jobs
	[ "$status" -eq 3 ]
	# the job log has each job's exit status: img2raw's 1 (truncated,
	# unsafe), and 4 for the text file, which img2raw takes for a raw disk
	# of 31 bytes that qcow2 can only hold rounded up to 512: the digests
	# differ and convert-one refuses it
	awk -F'\t' 'NR > 1 && $7 != 0 { n = split($9, w, "/"); print $7, w[n] }' "$T/jobs" | sort > "$T/failed"
	printf '%s\n' '1 x-backing.qcow2.qcow2' '1 z-cut.vmdk.qcow2' '4 y-text.qcow2.qcow2' | diff - "$T/failed"
	[[ "$output" == *"convert-one: $T/in/z-cut.vmdk: img2raw failed (status 1)"* ]]
	[[ "$output" == *"backing files are never opened"* ]]
	[ ! -e "$T/out/z-cut.vmdk.qcow2" ]
	[ ! -e "$T/out/x-backing.qcow2.qcow2" ]
	[ ! -e "$T/out/y-text.qcow2.qcow2" ]
	check_outputs 11
}

@test "parallel --retries reruns a failed job (a source not there yet)" {
	# the first attempt fails (no source: status 3) and puts the source in
	# place; parallel's retry converts it
	mkdir "$T/src"
	run parallel -j 1 --retries 2 --joblog "$T/jobs" \
		"convert-one file://$T/src/{} $T/out/{}.qcow2 || { cp $T/in/{} $T/src/; exit 1; }" \
		::: c.vmdk
	echo "$output"
	[ "$status" -eq 0 ]
	[ -e "$T/src/c.vmdk" ]	# the first attempt failed
	[ "$(grep -c . "$T/jobs")" -eq 2 ]	# one job, retried
	got=$(imgsum "$T/out/c.vmdk.qcow2")
	[ "${got%% *}" = "$want" ]
}

@test "parallel -S over hosts (ssh replaced by a local stand-in)" {
	# What parallel runs on a remote host, it runs through --ssh; this
	# stand-in drops ssh's options and the host name and runs the command
	# here, so parallel's own quoting and remote wrapping are exercised.
	cat > "$T/fakessh" <<-'SH'
	#!/bin/sh
	while [ $# -gt 0 ]; do
		case $1 in
		-[lopiFJ]) shift 2 ;;
		-*) shift ;;
		*) shift; break ;;
		esac
	done
	[ "${1-}" = -- ] && shift
	# sshd sets SHELL to the login shell; parallel's remote worker execs
	# $SHELL and, without it, runs nothing and still reports success
	export SHELL=/bin/sh
	exec sh -c "$*"
	SH
	chmod +x "$T/fakessh"
	cp "$T/in/c.vmdk" "$T/in/a.qcow2" "$T/in/e.vhdx" "$T/in/f.vdi" "$T/out/"
	rm -rf "$T/in"
	cd "$T/out"
	run parallel --ssh "$T/fakessh" -S 1/hostA,1/hostB --joblog "$T/jobs" \
		--env PATH --workdir "$T/out" \
		'convert-one file://'"$T/out"'/{} file://'"$T/out"'/{}.qcow2 && rm {}' \
		::: c.vmdk a.qcow2 e.vhdx f.vdi
	echo "$output"
	[ "$status" -eq 0 ]
	cut -f2 "$T/jobs" | grep -q hostA
	cut -f2 "$T/jobs" | grep -q hostB
	# every job ran: its input is gone, so a.qcow2 cannot count as output
	[ ! -e "$T/out/c.vmdk" ]
	[ ! -e "$T/out/a.qcow2" ]
	[ ! -e "$T/out/e.vhdx" ]
	[ ! -e "$T/out/f.vdi" ]
	check_outputs 4
}

@test "convert-one: output to a pipe is verified too; exit statuses" {
	convert-one "$T/in/e.vhdx" - > "$T/out/e.vhdx.qcow2"
	qemu-img compare -q "$F/disk.raw" "$T/out/e.vhdx.qcow2"
	run convert-one "$T/in/nonexistent" "$T/out/n.qcow2"
	[ "$status" -eq 3 ]
	run convert-one "$T/in/c.vmdk"
	[ "$status" -eq 2 ]
	head -c 100 "$T/in/a.qcow2" > "$T/cut.qcow2"
	run convert-one "$T/cut.qcow2" "$T/out/cut.qcow2"
	[ "$status" -eq 1 ]
	[ ! -e "$T/out/cut.qcow2" ]
	[ ! -e "$T/out/cut.qcow2.part" ]
	# 7 bytes are a raw disk of 7 bytes, which qcow2 rounds up to 512:
	# not the same disk, status 4
	printf 'garbage' > "$T/g.img"
	run convert-one "$T/g.img" "$T/out/g.qcow2"
	[ "$status" -eq 4 ]
	[[ "$output" == *"is not that of the source"* ]]
	[ ! -e "$T/out/g.qcow2" ]
	[ ! -e "$T/out/g.qcow2.part" ]
	# an empty source (a fetch that produced nothing) is no disk
	run convert-one - "$T/out/empty.qcow2" < /dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"the source is empty"* ]]
	[ ! -e "$T/out/empty.qcow2" ]
	# a reader that stops early: the last stage's SIGPIPE is a failure
	# (an output larger than the 1 MiB pipe, or it may all fit first)
	head -c 8M /dev/urandom > "$T/dense.raw"
	run bash -c 'convert-one "$1" - | head -c 1000 > /dev/null; exit ${PIPESTATUS[0]}' sh "$T/dense.raw"
	[ "$status" -eq 3 ]
}
