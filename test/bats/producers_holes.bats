# Images from real producers (test/producers) made sparse on the host, as
# `cp --sparse=always`, `rsync -S` or `fallocate --dig-holes` leave them.
# From a plain file, img2raw and imgsum take a hole's bytes as zeros
# without reading them (source_extent_at, image_copy_range); from a pipe
# the same zeros arrive as data.  So every producer gen.py offers, dug, is
# read here both ways: the readable ones give the producer's disk file to
# file, file to pipe and pipe to pipe, with one imgsum from a file and a
# pipe; VMware descriptors with extent files give it from the file with
# --extents and are refused from a pipe by design; the containers imgpipe
# refuses are refused the same both ways.  fallocate is util-linux's.
#
# Which readers skip holes from a file, measured by making holes read as
# 0xff: dynamic VHD, VHDX (a log's writes read only where they land),
# qcow2, ploop, VDI, sparse and flat VMDK extents (fixed VHDs walk
# SEEK_DATA themselves: a hole boundary moved into the data fails them,
# wrong zeros do not).  The compressed streams hold no holes worth the
# name; all must agree too.
load helpers

GEN=$BATS_TEST_DIRNAME/../producers/gen.py

# Producers with no 4 KiB-aligned block of zeros, so nothing to dig: cloop
# and DMG are compressed throughout, and Bochs puts a bitmap sector before
# every 4 KiB extent (a 4608-byte stride), so its zero extents never cover
# a whole host block.  All three are containers imgpipe refuses.
NOTHING_TO_DIG="bochs cloop dmg"

# Every producer once, small (4 MiB disks; the VHDX ones still hold 32 MiB
# blocks), in $H/PRODUCER/ (the descriptor d.vmdk and, for VMware's
# multi-file disks, the extents gen.py names beside it), its disk in
# $H/PRODUCER.raw; then every file of the image dug.
# $H/list: "PRODUCER KIND" (read, extents or refuse);
# $H/blocks: "PRODUCER BLOCKS_BEFORE BLOCKS_AFTER BYTES" (512-byte blocks
# allocated before and after digging, the bytes of all the image's files).
setup_file() {
	local p kind n before after bytes f
	export H=$BATS_FILE_TMPDIR
	# gen.py's main in one interpreter for them all: starting Python
	# costs about a second of CPU here, more than most images
	python3 -c '
import contextlib, io, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import gen
h = sys.argv[2]
names = io.StringIO()
with contextlib.redirect_stdout(names):
    gen.main(["--list"])
with open(os.path.join(h, "producers"), "w") as out:
    for line in names.getvalue().splitlines():
        p = line.split()[0]
        kind = "refuse" if line.split()[1] == "[refuse]" else "read"
        out.write("%s %s\n" % (p, kind))
        os.mkdir(os.path.join(h, p))
        st = gen.main([p, os.path.join(h, p, "d.vmdk"), "--size", "4m",
                       "--raw", os.path.join(h, p + ".raw")])
        # a corrupt producer (a [refuse] one) has no disk: status 2
        if st != 0 and not (st == 2 and kind == "refuse"):
            sys.exit("gen.py %s: status %s" % (p, st))
' "$GEN" "$H" 2> "$H/gen.err" || { cat "$H/gen.err" >&2; return 1; }
	[ "$(wc -l < "$H/producers")" -gt 20 ]
	while read -r p kind; do
		n=$(ls "$H/$p" | wc -l)
		if [ "$kind" = read ] && [ "$n" -gt 1 ]; then kind=extents; fi
		echo "$p $kind" >> "$H/list"
		before=0 after=0 bytes=0
		for f in "$H/$p"/*; do
			before=$((before + $(stat -c %b "$f")))
			bytes=$((bytes + $(stat -c %s "$f")))
			fallocate --dig-holes "$f"
			after=$((after + $(stat -c %b "$f")))
		done
		echo "$p $before $after $bytes" >> "$H/blocks"
	done < "$H/producers"
}

# producers KIND: the producers of that kind.
producers() { awk -v k="$1" '$2 == k { print $1 }' "$H/list"; }

# digest PROGRAM ARGS...: the digest imgsum prints (its status counts).
digest() {
	local out
	out=$("$@") || return 1
	echo "${out%% *}"
}

@test "holes: dig-holes freed blocks in every producer's image but those with no zeros to dig" {
	local p before after bytes sum_before=0 sum_after=0 bad=0
	[ "$(wc -l < "$H/blocks")" -eq "$(wc -l < "$H/producers")" ]
	while read -r p before after bytes; do
		case " $NOTHING_TO_DIG " in *" $p "*) continue ;; esac
		sum_before=$((sum_before + before)) sum_after=$((sum_after + after))
		# fewer blocks than before, and fewer than the bytes need: holes
		if [ "$after" -ge "$before" ] || [ $((after * 512)) -ge "$bytes" ]; then
			echo "$p: $before blocks before, $after after, $bytes bytes: no hole"
			bad=1
		fi
	done < "$H/blocks"
	# together they are mostly holes now (measured: 20,640 of 921,760
	# blocks left)
	echo "blocks: $sum_before before, $sum_after after"
	[ $((sum_after * 10)) -lt "$sum_before" ]
	# the ones said to have nothing to dig are only containers imgpipe refuses
	for p in $NOTHING_TO_DIG; do
		[ "$(awk -v p="$p" '$1 == p { print $2 }' "$H/list")" = refuse ] ||
			{ echo "$p: nothing to dig, yet imgpipe reads it"; bad=1; }
	done
	return $bad
}

# three_ways IMAGE DISK [img2raw options]: img2raw gives DISK file to
# file, file to pipe and pipe to pipe (the caller sets pipefail).
three_ways() {
	local img=$1 want=$2
	shift 2
	img2raw "$@" -o "$T/ff.raw" "$img" && cmp "$T/ff.raw" "$want" ||
		{ echo "file to file"; return 1; }
	img2raw "$@" "$img" | cmp - "$want" || { echo "file to pipe"; return 1; }
	cat "$img" | img2raw "$@" | cmp - "$want" || { echo "pipe to pipe"; return 1; }
}

@test "holes: every readable producer's image, dug, gives its disk file to file, file to pipe, pipe to pipe, and one imgsum" {
	local p want f pp bad=0 n=0
	set -o pipefail
	for p in $(producers read); do
		n=$((n + 1))
		three_ways "$H/$p/d.vmdk" "$H/$p.raw" || { echo "$p: above"; bad=1; continue; }
		want=$(digest imgsum -f raw "$H/$p.raw")
		f=$(digest imgsum "$H/$p/d.vmdk") || { echo "$p: imgsum from the file"; bad=1; }
		pp=$(cat "$H/$p/d.vmdk" | digest imgsum) || { echo "$p: imgsum from a pipe"; bad=1; }
		[ "$f" = "$want" ] && [ "$pp" = "$want" ] ||
			{ echo "$p: imgsum file $f, pipe $pp, the disk $want"; bad=1; }
	done
	echo "$n producers read"
	[ "$n" -gt 15 ]
	return $bad
}

@test "holes: VMware disks with extent files, dug, give their disk from the file with --extents and are refused from a pipe" {
	local p d ct names bad=0 n=0
	set -o pipefail
	for p in $(producers extents); do
		n=$((n + 1))
		d=$H/$p/d.vmdk
		img2raw --extents -o "$T/out.raw" "$d" && cmp "$T/out.raw" "$H/$p.raw" ||
			{ echo "$p: --extents file to file"; bad=1; }
		img2raw --extents "$d" | cmp - "$H/$p.raw" ||
			{ echo "$p: --extents file to pipe"; bad=1; }
		[ "$(digest imgsum --extents "$d")" = "$(digest imgsum -f raw "$H/$p.raw")" ] ||
			{ echo "$p: imgsum --extents"; bad=1; }
		# from a pipe --extents is a usage error: there is no directory
		for prog in img2raw imgsum; do
			run "$prog" --extents < <(cat "$d")
			[ "$status" -eq 2 ] && [[ "${lines[0]}" == "$prog: --extents opens the files a VMDK descriptor names beside it: give the descriptor's path, not a pipe" ]] ||
				{ echo "$p: $prog --extents from a pipe: $status $output"; bad=1; }
		done
		# without it, the descriptor names files it never opens
		ct=$(sed -n 's/^createType="\(.*\)"$/\1/p' "$d")
		names=$(cd "$H/$p" && ls | grep -v '^d\.vmdk$' | sed 's/.*/"&"/' | paste -sd, - | sed 's/,/, /g')
		expect_reject -i "$d" 1 vmdk "^$(ere "descriptor file (createType \"$ct\") names extent files $names, which are never opened (--extents opens bare names beside the descriptor)")\$" img2raw ||
			{ echo "$p: img2raw from a pipe"; bad=1; }
	done
	echo "$n producers with extent files"
	[ "$n" -ge 4 ]
	return $bad
}

# same_refusal PROGRAM IMAGE: PROGRAM refuses IMAGE with exit 1 and one
# message, the same from the file and from a pipe but for the input's name.
same_refusal() {
	local prog=$1 img=$2 fst=0 pst=0
	"$prog" "$img" > /dev/null 2> "$T/f.err" || fst=$?
	"$prog" < <(cat "$img") > /dev/null 2> "$T/p.err" || pst=$?
	[ $fst = 1 ] && [ $pst = 1 ] || { echo "$prog: file $fst, pipe $pst"; return 1; }
	[ "$(wc -l < "$T/f.err")" -eq 1 ] || { cat "$T/f.err"; return 1; }
	[ "$(sed "s|^$prog: $img: |$prog: |" "$T/f.err")" = "$(sed "s|^$prog: stdin: |$prog: |" "$T/p.err")" ] ||
		{ cat "$T/f.err" "$T/p.err"; return 1; }
}

@test "holes: the containers imgpipe refuses, dug, are refused the same from a file and a pipe; -f raw gives their bytes" {
	local p bad=0 n=0
	set -o pipefail
	for p in $(producers refuse); do
		n=$((n + 1))
		same_refusal img2raw "$H/$p/d.vmdk" || { echo "$p: img2raw"; bad=1; }
		same_refusal imgsum "$H/$p/d.vmdk" || { echo "$p: imgsum"; bad=1; }
		three_ways "$H/$p/d.vmdk" "$H/$p/d.vmdk" -f raw || { echo "$p: -f raw"; bad=1; }
	done
	echo "$n producers refused"
	[ "$n" -ge 5 ]
	return $bad
}
