# img2raw from a pipe into a pipe: the data runs of an uncompressed image
# go from the input pipe to the output pipe with splice(2) and zeros with
# vmsplice(2) (lib/fmt/format.c image_copy_range, lib/stream/sink.c).
# The bytes must be those of a file, a cut image must fail with the
# message and status the copy path gives, and the kernel path must be
# the one taken (strace), so that a silent fall-back fails here.
load helpers

# make_image FORMAT: $I/FORMAT.img in FORMAT from a 9 MiB pattern with
# data in several places, $I/FORMAT.raw its disk; made once per file.
make_image() {
	local img=$I/$1.img
	[ -f "$I/$1.raw" ] && return 0
	case $1 in
	qcow2-ours) raw2qcow2 -o "$img" "$I/p.raw" ;;
	vhdx-ours) raw2vhdx -o "$img" "$I/p.raw" ;;
	vdi-ours) raw2vdi -o "$img" "$I/p.raw" ;;
	vhd-ours) raw2vhd -s dynamic --block-size=512K -o "$img" "$I/p.raw" ;;
	ploop-ours) raw2ploop -o "$img" "$I/p.raw" ;;
	vpc) qemu-img convert -f raw -O vpc -o subformat=dynamic \
		"$I/p.raw" "$img" ;;
	*) qemu-img convert -f raw -O "$1" "$I/p.raw" "$img" ;;
	esac
	img2raw -o "$I/$1.raw.tmp" "$img" || return 1
	# the pattern, or what qemu-img makes of it (a VHD's size from CHS)
	cmp -s "$I/p.raw" "$I/$1.raw.tmp" ||
		{ qemu-img convert -O raw "$img" "$I/q.raw" &&
		    cmp "$I/q.raw" "$I/$1.raw.tmp"; } || return 1
	mv "$I/$1.raw.tmp" "$I/$1.raw"
}

setup_file() {
	export I=$BATS_FILE_TMPDIR
	T=$I make_pattern "$I/p.raw" 9437184
	# data that fills whole 1 MiB blocks, so block formats have whole
	# blocks to splice, and a run across a block boundary
	head -c 2500000 < <(yes imgpipe-splice) |
		dd of="$I/p.raw" bs=1M seek=5 conv=notrunc status=none
}

# use FORMAT: $T/img and $T/want.raw are FORMAT's image and disk.
use() {
	make_image "$1" || { echo "$1: no image"; return 1; }
	cp "$I/$1.img" "$T/img"
	ln -sf "$I/$1.raw" "$T/want.raw"
}

FORMATS="qcow2 qcow2-ours vhdx vhdx-ours vdi vdi-ours qed vpc vhd-ours
    parallels ploop-ours"
# raw2qcow2 into a file puts the data before the tables that place it:
# from a pipe that data must wait in the store, and nothing is spliced.
SPLICED=${FORMATS/qcow2-ours /}

# pipe_to_pipe IMAGE OUT ERR: cat IMAGE | img2raw | cat > OUT, its
# messages in ERR; prints img2raw's status.
pipe_to_pipe() {
	local st
	cat "$1" | img2raw 2> "$3" | cat > "$2"
	st=("${PIPESTATUS[@]}")
	echo "${st[1]}"
}

@test "splice: pipe to pipe gives the bytes of a file, every uncompressed format" {
	local f st
	for f in $FORMATS; do
		use "$f" || return 1
		st=$(pipe_to_pipe "$T/img" "$T/pp.raw" "$T/err")
		[ "$st" = 0 ] && [ ! -s "$T/err" ] ||
			{ echo "$f: status $st: $(cat "$T/err")"; return 1; }
		cmp "$T/want.raw" "$T/pp.raw" || { echo "$f: bytes differ"; return 1; }
	done
}

@test "splice: the data goes from pipe to pipe in the kernel, every uncompressed format" {
	local f
	for f in $SPLICED; do
		use "$f" || return 1
		cat "$T/img" | strace -f -e trace=splice,vmsplice -o "$T/trace" \
			img2raw | cat > "$T/pp.raw"
		cmp "$T/want.raw" "$T/pp.raw" || { echo "$f: bytes differ"; return 1; }
		# input fd 0 to output fd 1, no offsets: moved at least one block
		grep -Eq '^[0-9]+ +splice\(0, NULL, 1, NULL, [0-9]+, [A-Z_]+\) = [0-9]{5,}$' "$T/trace" ||
			{ echo "$f: no data spliced"; cat "$T/trace"; return 1; }
	done
}

@test "splice: zeros go to a pipe from shared zero pages (vmsplice)" {
	use qcow2
	cat "$T/img" | strace -f -e trace=vmsplice,write -o "$T/trace" \
		img2raw | cat > "$T/pp.raw"
	cmp "$T/want.raw" "$T/pp.raw"
	grep -Eq 'vmsplice\(1, .* = [0-9]{5,}$' "$T/trace"
	run grep -c 'write(1,' "$T/trace"
	[ "$output" = 0 ]
}

@test "splice: a file into a pipe, and a pipe into a file, still copy (nothing to splice)" {
	use qcow2
	cat "$T/img" | strace -f -e trace=splice -o "$T/trace" img2raw -o "$T/pf.raw"
	cmp "$T/want.raw" "$T/pf.raw"
	run grep -c 'splice(0,' "$T/trace"
	[ "$output" = 0 ]
}

# For each cut: the status and message (after the input's name) of
# pipe -> file (the copy path) and pipe -> pipe (splice) are one, and
# file -> file has that status.  (From a file a few cuts are named
# otherwise: a VDI's block map entry past the end.)
cut_messages_agree() {
	local f=$1 size k n fst pfst ppst pfmsg ppmsg
	size=$(stat -c %s "$T/img")
	for k in 1 2 3 4 5; do
		n=$((size * k / 6))
		head -c "$n" "$T/img" > "$T/cut"
		fst=0; img2raw -o "$T/ff.raw" "$T/cut" 2> /dev/null || fst=$?
		pfst=0; cat "$T/cut" | img2raw -o "$T/pf.raw" 2> "$T/pferr" || pfst=${PIPESTATUS[1]}
		ppst=$(pipe_to_pipe "$T/cut" "$T/pp.raw" "$T/pperr")
		pfmsg=$(sed 's|^img2raw: stdin: ||' "$T/pferr")
		ppmsg=$(sed 's|^img2raw: stdin: ||' "$T/pperr")
		if [ "$fst" != "$ppst" ] || [ "$pfst" != "$ppst" ] ||
		    [ "$pfmsg" != "$ppmsg" ] ||
		    { [ "$ppst" = 0 ] && ! cmp -s "$T/want.raw" "$T/pp.raw"; }; then
			echo "$f cut at $n of $size: file $fst," \
			    "pipe to file $pfst '$pfmsg', pipe to pipe $ppst '$ppmsg'"
			return 1
		fi
	done
}

@test "splice: a cut image fails as from a file and as the copy path, every uncompressed format" {
	local f
	for f in $FORMATS; do
		use "$f" || return 1
		cut_messages_agree "$f" || return 1
	done
}

@test "splice: a cut inside the spliced runs is the copy path's truncation" {
	use qcow2
	# qemu-img's qcow2 ends in data: cut 300 kB into it
	n=$(($(stat -c %s "$T/img") - 300000))
	head -c "$n" "$T/img" > "$T/cut"
	cat "$T/cut" | strace -f -e trace=splice -o "$T/trace" img2raw 2> "$T/err" | cat > /dev/null
	grep -Eq 'splice\(0, NULL, 1, NULL, [0-9]+, [A-Z_]+\) = [0-9]{5,}$' "$T/trace"
	run cat "$T/err"
	[[ $output =~ ^"img2raw: stdin: qcow2: data cluster at 0x"[0-9a-f]+" (virtual 0x"[0-9a-f]+") lies past the end of the image"$ ]]
	cat "$T/cut" | img2raw -o "$T/pf.raw" 2> "$T/err2" || true
	[ "$(cat "$T/err")" = "$(cat "$T/err2")" ]
}

@test "splice: a reader closing the pipe early is a write error, exit 3" {
	use qcow2
	run bash -c "cat '$T/img' | img2raw | head -c 100 > /dev/null; exit \${PIPESTATUS[1]}"
	[ "$status" -eq 3 ]
	[ "$output" = "img2raw: stdout: write error: Broken pipe" ]
}
