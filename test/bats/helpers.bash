# Shared by every bats suite: `load helpers`.
# IMGPIPE_BIN: where the programs are (make check sets it).
: "${IMGPIPE_BIN:=$BATS_TEST_DIRNAME/../../bin}"
export PATH="$IMGPIPE_BIN:$PATH"
T=$BATS_TEST_TMPDIR

# Skips: a test skips only for what some machines genuinely lack (root,
# loop devices, ...), with a reason tagged "optional:", e.g.
#	skip "optional: needs root to mount a small tmpfs"
# test/run.sh counts any other skip as a failure.  A feature the build
# has is never a reason to skip.

# make_pattern FILE SIZE: a disk with data, zero runs and holes, so every
# reader sees allocated, zero and unallocated regions.  SIZE need not be
# a multiple of anything.  Deterministic for a given SIZE.
make_pattern() {
	local f=$1 size=$2 off
	rm -f "$f"
	truncate -s "$size" "$f"
	for off in 0 65536 200000 1048576 3000000 4194304; do
		[ "$off" -lt "$size" ] || continue
		# 40000 bytes of non-zero data, then a zero run inside it.
		# (yes is fed by process substitution: its SIGPIPE is no failure
		# under pipefail)
		head -c 40000 < <(yes "imgpipe-$off-$size") |
			dd of="$f" bs=40000 seek="$off" oflag=seek_bytes conv=notrunc status=none
		dd if=/dev/zero of="$f" bs=4096 count=2 seek=$(((off + 12288) / 4096)) \
			conv=notrunc status=none
	done
	# the last bytes are data: a non-aligned tail
	printf 'TAIL' | dd of="$f" bs=1 seek=$((size - 4)) conv=notrunc status=none
	truncate -s "$size" "$f"
}

# make_islands FILE: a 40 MiB sparse raw disk with data at 1 MiB and
# 17 MiB (2,000,000 bytes of make_pattern each) and in its last 4 bytes,
# holes between: the copy paths' fixture (zcopy.bats, raw2vhd.bats).
make_islands() {
	truncate -s 40M "$1"
	make_pattern "$1.p1" 2000000
	dd if="$1.p1" of="$1" bs=1M seek=1 conv=notrunc status=none
	dd if="$1.p1" of="$1" bs=1M seek=17 conv=notrunc status=none
	printf tail | dd of="$1" bs=1 seek=$((40 * 1048576 - 4)) \
	    conv=notrunc status=none
	rm -f "$1.p1"
}

# output_is WANT COMMAND...: COMMAND exits 0 and prints exactly WANT
# (in [ "$(COMMAND)" = WANT ] the status of COMMAND is lost).
output_is() {
	local want=$1 got st=0
	shift
	got=$("$@") || st=$?
	[ $st = 0 ] || { echo "output_is: $*: status $st"; return 1; }
	[ "$got" = "$want" ] ||
		{ printf 'output_is: %s\n got: %s\nwant: %s\n' "$*" "$got" "$want"; return 1; }
}

# the four ways: file->file, file->pipe, pipe->file, pipe->pipe.
# img2raw_4ways IMAGE EXPECTED_RAW [img2raw options...]
# img2raw's own status counts in every way (bats sets no pipefail: a
# pipeline's status is its last command's).
img2raw_4ways() {
	local img=$1 want=$2
	shift 2
	img2raw "$@" -o "$T/ff.raw" "$img" && cmp "$want" "$T/ff.raw" ||
		{ echo "img2raw_4ways: file to file"; return 1; }
	(set -o pipefail; img2raw "$@" "$img" | cat > "$T/fp.raw") && cmp "$want" "$T/fp.raw" ||
		{ echo "img2raw_4ways: file to pipe"; return 1; }
	img2raw "$@" -o "$T/pf.raw" < <(cat "$img") && cmp "$want" "$T/pf.raw" ||
		{ echo "img2raw_4ways: pipe to file"; return 1; }
	(set -o pipefail; img2raw "$@" < <(cat "$img") | cat > "$T/pp.raw") &&
		cmp "$want" "$T/pp.raw" || { echo "img2raw_4ways: pipe to pipe"; return 1; }
	rm -f "$T/ff.raw" "$T/fp.raw" "$T/pf.raw" "$T/pp.raw"
}

# truncation_check IMAGE [N]: IMAGE cut at N points (default 64) spread
# over its length and at the boundary points below, each cut read by img2raw from a file
# and from a pipe, within 10 s each.
#
# The rule.  A cut must either fail with exit 1 and a message
# ("img2raw: ..."), or exit 0 with exactly the uncut image's disk: a cut
# that removes only bytes that carry no data (a stream VMDK's
# end-of-stream marker, trailing padding) may still give the whole disk.
# The one exception: a cut too short to hold the format's magic (qemu-img
# names the format of the uncut image; the table below says where each
# magic ends) is no longer that format but a raw disk of those bytes, and
# exit 0 with exactly the cut bytes is accepted; for a raw disk, or a
# fixed VHD (qemu-img probes it as raw: its only metadata is a footer),
# every cut is such a raw disk.  Anything else that exits 0 is a truncated
# image presented as complete and fails the check, as does any other
# status, or exit 1 with no message.  Every bad cut is reported.
truncation_check() {
	local img=$1 spread=${2:-64} size fmt magic n i mode st bad=0 cuts
	size=$(stat -c %s "$img")
	fmt=$(qemu-img info "$img" | sed -n 's/^file format: //p')
	case $fmt in
	raw) magic=$size ;;
	qcow2|qed|vmdk) magic=4 ;;	# QFI\xfb, QED\0, KDMV
	vpc|vhdx) magic=8 ;;		# conectix, vhdxfile
	parallels) magic=16 ;;		# WithoutFreeSpace, WithouFreSpacExt
	vdi) magic=68 ;;		# 0xbeda107f at 0x40
	*) echo "truncation_check: where does the magic of '$fmt' end?"; return 1 ;;
	esac
	# the uncut image's disk, computed once
	timeout 30 img2raw "$img" > "$T/full.out" 2> "$T/full.err" ||
		{ echo "the uncut image fails: $(cat "$T/full.err")"; return 1; }
	cuts=$({
		for n in 1 7 64 511 512 513 4096 65536 131072 $((size / 3)) \
		    $((size / 2)) $((size - 512)) $((size - 1)); do
			echo "$n"
		done
		for ((i = 1; i <= spread; i++)); do echo $((size * i / (spread + 1))); done
	} | awk -v size="$size" '$1 > 0 && $1 < size' | sort -nru)
	# longest first: one copy of the image, shortened in place
	cp "$img" "$T/cut"
	for n in $cuts; do
		truncate -s "$n" "$T/cut"
		for mode in file pipe; do
			st=0
			if [ $mode = file ]; then
				timeout 10 img2raw "$T/cut" > "$T/cut.out" 2> "$T/cut.err" || st=$?
			else
				timeout 10 img2raw < <(cat "$T/cut") > "$T/cut.out" 2> "$T/cut.err" || st=$?
			fi
			case $st in
			0)
				if cmp -s "$T/full.out" "$T/cut.out"; then
					:
				elif [ "$n" -lt "$magic" ] && cmp -s "$T/cut" "$T/cut.out"; then
					:
				else
					echo "cut at $n of $size ($mode): exit 0, a disk of $(stat -c %s "$T/cut.out") bytes that is not the uncut image's ($(stat -c %s "$T/full.out") bytes)"
					bad=1
				fi ;;
			1)
				if ! [ -s "$T/cut.err" ]; then
					echo "cut at $n of $size ($mode): exit 1 with no message"
					bad=1
				elif [[ "$(cat "$T/cut.err")" != "img2raw: "* ]]; then
					echo "cut at $n of $size ($mode): message not from img2raw: $(cat "$T/cut.err")"
					bad=1
				fi ;;
			*)
				echo "cut at $n of $size ($mode): status $st: $(head -c 500 "$T/cut.err")"
				bad=1 ;;
			esac
		done
	done
	rm -f "$T/cut" "$T/cut.out" "$T/cut.err" "$T/full.out" "$T/full.err"
	return $bad
}

# expect_reject [-i INPUT] STATUS FORMAT REASON_ERE PROGRAM [ARGS...]
# Runs PROGRAM ARGS (within 10 s; its stdout goes to a pipe and is
# dropped) and passes only if it exits STATUS and writes exactly one line
# on stderr, of the form DESIGN.md ("Messages") gives:
#	PROGRAM: FILE: FORMAT: REASON
# where REASON matches the extended regular expression REASON_ERE
# (unanchored: anchor it with ^ and $ to match the whole reason).
# FORMAT "-": the format part is not checked (DESIGN.md makes it optional:
# a message from before the format is known has none).
# -i INPUT: PROGRAM reads INPUT from a pipe (cat INPUT | PROGRAM ARGS),
# and FILE is "stdin"; without it, FILE is the last of ARGS.
# The FILE part is required (issue 20); EXPECT_REJECT_FILE=0 makes it
# optional, for a message about no file.
expect_reject() {
	local input= status fmt re prog name st line rest names n found=0
	if [ "$1" = -i ]; then input=$2; shift 2; fi
	status=$1 fmt=$2 re=$3
	shift 3
	prog=$1
	if [ -n "$input" ]; then
		names=stdin
		cat "$input" | timeout 10 "$@" 2> "$T/reject.err" | cat > /dev/null
		st=${PIPESTATUS[1]}
	else
		names=${!#}
		timeout 10 "$@" 2> "$T/reject.err" < /dev/null | cat > /dev/null
		st=${PIPESTATUS[0]}
	fi
	line=$(cat "$T/reject.err")
	echo "expect_reject: status $st, stderr: $line"
	[ "$st" -eq "$status" ] ||
		{ echo "expect_reject: status $st, want $status"; return 1; }
	[ "$(wc -l < "$T/reject.err")" -eq 1 ] ||
		{ echo "expect_reject: stderr is not exactly one line"; return 1; }
	[[ "$line" == "$prog: "* ]] ||
		{ echo "expect_reject: the message does not begin with '$prog: '"; return 1; }
	rest=${line#"$prog: "}
	for n in $names; do
		if [[ "$rest" == "$n: "* ]]; then
			rest=${rest#"$n: "}
			found=1
			break
		fi
	done
	[ $found = 1 ] || [ "${EXPECT_REJECT_FILE:-1}" = 0 ] ||
		{ echo "expect_reject: the message does not name the input ($names)"; return 1; }
	if [ "$fmt" != - ]; then
		[[ "$rest" == "$fmt: "* ]] ||
			{ echo "expect_reject: no '$fmt: ' before the reason"; return 1; }
		rest=${rest#"$fmt: "}
	fi
	[[ "$rest" =~ $re ]] ||
		{ echo "expect_reject: the reason '$rest' does not match /$re/"; return 1; }
}

# img2raw_rejects FORMAT IMAGE REASON_ERE [PIPE_REASON_ERE]: img2raw
# refuses IMAGE with exit 1 and the reason, from a file (with -o, which
# must not be left behind) and from a pipe (PIPE_REASON_ERE when given:
# where today's message from a pipe differs, the test says so).
img2raw_rejects() {
	local fmt=$1 img=$2 re=$3 pre=${4:-$3}
	rm -f "$T/reject.raw"
	expect_reject 1 "$fmt" "$re" img2raw -o "$T/reject.raw" "$img" ||
		{ echo "img2raw_rejects: from a file"; return 1; }
	[ ! -e "$T/reject.raw" ] ||
		{ echo "img2raw_rejects: from a file, -o left $T/reject.raw"; return 1; }
	expect_reject -i "$img" 1 "$fmt" "$pre" img2raw ||
		{ echo "img2raw_rejects: from a pipe"; return 1; }
}

# big_sparse_check FORMAT: a 64 GiB image of FORMAT holding 2 MiB of data
# converts in seconds (work scales with data), holes kept, bytes in place.
big_sparse_check() {
	local f=$1
	qemu-img create -f "$f" "$T/big.$f" 64G > /dev/null
	qemu-io -f "$f" -c "write -P 0x5a 0 1M" -c "write -P 0x6b 40G 1M" \
		"$T/big.$f" > /dev/null
	timeout 20 img2raw -o "$T/big.raw" "$T/big.$f"
	[ "$(stat -c %s "$T/big.raw")" -eq $((64 << 30)) ]
	[ "$(du -k "$T/big.raw" | cut -f1)" -lt 8192 ]
	[ "$(dd if="$T/big.raw" bs=1M count=1 status=none | tr -d '\132' | wc -c)" -eq 0 ]
	[ "$(dd if="$T/big.raw" bs=1M skip=40960 count=1 status=none | tr -d '\153' | wc -c)" -eq 0 ]
	[ "$(dd if="$T/big.raw" bs=1M skip=40961 count=1 status=none | tr -d '\0' | wc -c)" -eq 0 ]
}

# real_kernel: the path of a real Linux kernel, the machine's own
# (/boot/vmlinuz-*) or the one make deps unpacked from Debian's cloud
# kernel package; fails, saying so, when there is neither.
real_kernel() {
	local k
	for k in /boot/vmlinuz-* "${IMGPIPE_CACHE:-/var/tmp/imgpipe-cache}"/vmlinuz-*; do
		[ -r "$k" ] && { echo "$k"; return 0; }
	done
	echo "no real kernel: none in /boot, none fetched; run make deps" >&2
	return 1
}

# Byte patching for crafted images.  put_le and put_be FILE OFFSET VALUE
# NBYTES write an integer (VALUE < 2^63) in place; get_le and get_be FILE
# OFFSET NBYTES read one (a big-endian 64-bit value with bit 63 set comes
# out negative).
put_le() {
	local i s=
	for ((i = 0; i < $4; i++)); do
		s+=$(printf '\\%03o' $((($3 >> (8 * i)) & 255)))
	done
	printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

put_be() {
	local i s=
	for ((i = $4 - 1; i >= 0; i--)); do
		s+=$(printf '\\%03o' $((($3 >> (8 * i)) & 255)))
	done
	printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

get_le() { od -An -tu"$3" -j "$2" -N"$3" "$1" | tr -d ' '; }
get_be() { echo $((16#$(od -An -tx1 -j "$2" -N"$3" "$1" | tr -d ' \n'))); }

put_le32() { put_le "$1" "$2" "$3" 4; }
put_le64() { put_le "$1" "$2" "$3" 8; }
put_be32() { put_be "$1" "$2" "$3" 4; }
put_be64() { put_be "$1" "$2" "$3" 8; }
get_le32() { get_le "$1" "$2" 4; }
get_le64() { get_le "$1" "$2" 8; }
get_be32() { get_be "$1" "$2" 4; }
get_be64() { get_be "$1" "$2" 8; }

# ere TEXT: TEXT quoted for an extended regular expression.
ere() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<< "$1"; }

# holes_not_read IMAGE WANT: img2raw of IMAGE, a file whose data lies over
# holes of the host file, gives WANT reading under 16 MiB (the holes are
# zeros without being read); from a pipe, where the zeros arrive as data,
# the same bytes and the same digest.
holes_not_read() {
	local img=$1 want=$2 n
	strace -f -qq -e trace=read,pread64,preadv,copy_file_range,splice,sendfile \
	    -o "$T/trace" img2raw -o "$T/holes.raw" "$img"
	cmp "$want" "$T/holes.raw"
	n=$(awk '/= [0-9]+$/ { n += $NF } END { print n + 0 }' "$T/trace")
	[ "$n" -lt $((16 << 20)) ] || {
		echo "read $n bytes of $img, whose data lies over holes"; false; }
	cat "$img" | img2raw -o "$T/holes-pipe.raw"
	cmp "$want" "$T/holes-pipe.raw"
	[ "$(imgsum "$img" | cut -d' ' -f1)" = "$(imgsum < "$img" | cut -d' ' -f1)" ]
}
