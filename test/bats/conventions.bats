# What every program does alike, as the tools operators know do it (GNU
# coreutils, tar, pv, qemu-img): --help, usage errors, messages that name
# the file, stdout errors, progress; and the build and install a Debian
# packager expects, completion and the library for C programs.
load helpers

TOP=$BATS_TEST_DIRNAME/../..

programs() { (cd "$TOP/cmd" && ls ./*.c | sed 's|^\./||; s|\.c$||'); }

# The source of a program's option table: cmd/PROG.c, with write.h when
# the table takes WRITE_CLI_OPTIONS (the options every raw2X shares).
table_source() {
	cat "$TOP/cmd/$1.c"
	if grep -q WRITE_CLI_OPTIONS "$TOP/cmd/$1.c"; then
		sed -n '/^#define WRITE_CLI_OPTIONS/,/^$/p' "$TOP/include/imgpipe/write.h" |
		    sed 's/^#define WRITE_CLI_OPTIONS.*//; s/[[:space:]]*\\$//; s/^\t{/{/'
	fi
}

# The long options of a program's getopt table, as its source has them:
# cli.h's { KEY, "name", ... } or getopt's { "name", ..._argument, ... }.
table_long_options() {
	table_source "$1" |
	sed -n -e 's/^[[:space:]]*{ *[^,]*, *"\([a-z0-9-]*\)",.*/\1/p' \
	    -e 's/^[[:space:]]*{ *"\([a-z0-9-]*\)", *\(no\|required\|optional\)_argument.*/\1/p'
}

# The short letters of cli.h's table: { 'f', "format", ... }.
table_short_options() {
	table_source "$1" |
	sed -n "s/^[[:space:]]*{ *'\\(.\\)', *\"[a-z0-9-]*\",.*/\\1/p"
}

@test "--help lists every option of each program's table, one line each, within 80 columns" {
	local p o n
	for p in $(programs); do
		run "$p" --help
		[ "$status" -eq 0 ] || { echo "$p --help: status $status"; return 1; }
		n=$(table_long_options "$p" | wc -l)
		[ "$n" -ge 3 ] || { echo "$p: no option table found"; return 1; }
		for o in $(table_long_options "$p"); do
			grep -qE -- "^  (-[A-Za-z0-9], |    )--$o([= ]|$)" <<< "$output" ||
				{ echo "$p --help: no line for --$o"; return 1; }
		done
		for o in $(table_short_options "$p"); do
			grep -qE -- "^  -$o, --" <<< "$output" ||
				{ echo "$p --help: no line for -$o"; return 1; }
		done
		# one line each: the option, then what it does, within 80 columns
		while IFS= read -r line; do
			[ "${#line}" -le 80 ] || { echo "$p: long line: $line"; return 1; }
		done <<< "$output"
		grep -E -- '^  -' <<< "$output" | grep -vqE -- '--[a-z0-9-]+(=[^ ]+)?  +[^ ]' &&
			{ echo "$p: an option without its line of help"; return 1; }
		[[ "${lines[0]}" == "Usage: $p "* ]] || { echo "$p: ${lines[0]}"; return 1; }
		[ "${lines[-1]}" = "See $p(1)." ] || { echo "$p: ${lines[-1]}"; return 1; }
	done
}

@test "usage errors say what is wrong, name the program and point to --help (status 2)" {
	local p
	touch "$T/a" "$T/b"
	run ovacreate
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "ovacreate: no DISK: give one or more, or - for stdin" ]
	[ "${lines[1]}" = "Try 'ovacreate --help' for more information." ]
	for p in $(programs); do
		case $p in imgsum|ovacreate) continue ;; esac	# many files
		run "$p" "$T/a" "$T/b"
		[ "$status" -eq 2 ] || { echo "$p a b: status $status"; return 1; }
		[ "${lines[0]}" = "$p: extra operand '$T/b'" ] || { echo "$p: $output"; return 1; }
		[ "${lines[1]}" = "Try '$p --help' for more information." ]
		run "$p" --no-such-option
		[ "$status" -eq 2 ]
		[ "${lines[0]}" = "$p: unrecognized option '--no-such-option'" ]
		[ "${lines[1]}" = "Try '$p --help' for more information." ]
	done
	run imgsum --list-formats x
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "imgsum: extra operand 'x'" ]
	run raw2qcow2 in out
	[ "${lines[0]}" = "raw2qcow2: extra operand 'out'" ]
	run imgsparse --json "$T/a"
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "imgsparse: --json goes with --map" ]
	run imgsparse --map -o x "$T/a"
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "imgsparse: --map prints to stdout: it takes no -o" ]
	run img2raw -f
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "img2raw: option requires an argument -- 'f'" ]
	run img2raw --mem lots "$T/a"
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "img2raw: --mem: invalid size 'lots'" ]
}

@test "-V and --help print on stdout and exit 0; --version is PROG (imgpipe) VERSION" {
	local p v
	v=$(sed -n 's/^#define IMGPIPE_VERSION "\(.*\)"$/\1/p' "$TOP/include/imgpipe/cli.h")
	[ -n "$v" ]
	for p in $(programs); do
		[ "$("$p" -V)" = "$p (imgpipe) $v" ]
		[ "$("$p" --version 2>/dev/null)" = "$p (imgpipe) $v" ]
		[ -z "$("$p" --help 2>&1 >/dev/null)" ]
	done
}

@test "a failed write to stdout is status 3 on every path: -V, -h, --list-formats, the output" {
	local p
	make_pattern "$T/d.raw" 1048576
	qemu-img convert -f raw -O qcow2 "$T/d.raw" "$T/d.qcow2"
	for p in $(programs); do
		for opt in -V --version -h --help; do
			run sh -c "$p $opt > /dev/full"
			[ "$status" -eq 3 ] || { echo "$p $opt: status $status"; return 1; }
			[ "$output" = "$p: stdout: write error: No space left on device" ] ||
				{ echo "$p $opt: $output"; return 1; }
		done
	done
	for p in img2raw imgsum; do
		run sh -c "$p --list-formats > /dev/full"
		[ "$status" -eq 3 ]
		[ "$output" = "$p: stdout: write error: No space left on device" ]
	done
	for cmd in "img2raw $T/d.qcow2" "imgsum $T/d.qcow2" "imginfo $T/d.qcow2" \
	    "imginfo --output json $T/d.qcow2" "imgsparse $T/d.raw" \
	    "imgsparse --map $T/d.raw" "imgsparse --map --json $T/d.raw" \
	    "raw2qcow2 $T/d.raw"; do
		run sh -c "$cmd > /dev/full"
		[ "$status" -eq 3 ] || { echo "$cmd: status $status: $output"; return 1; }
		[[ "$output" == "${cmd%% *}: stdout: write error: No space left on device" ]] ||
			{ echo "$cmd: $output"; return 1; }
	done
}

@test "one message form: PROG: FILE: what; stdin is 'stdin'; the same condition the same words and status" {
	local p
	mkdir "$T/dir"
	for p in img2raw imginfo imgsparse imgsum ovaextract raw2qcow2 uecsplit; do
		run "$p" "$T/missing"
		[ "$status" -eq 3 ] || { echo "$p missing: status $status"; return 1; }
		[ "$output" = "$p: $T/missing: No such file or directory" ] ||
			{ echo "$p: $output"; return 1; }
		run "$p" "$T/dir"
		[ "$status" -eq 3 ] || { echo "$p dir: status $status"; return 1; }
		[ "$output" = "$p: $T/dir: Is a directory" ] || { echo "$p: $output"; return 1; }
		run sh -c "$p < '$T/dir'"
		[ "$status" -eq 3 ] || { echo "$p < dir: status $status"; return 1; }
		[ "$output" = "$p: stdin: Is a directory" ] || { echo "$p: $output"; return 1; }
	done
	make_pattern "$T/d.raw" 1048576
	for cmd in "img2raw -o $T/dir $T/d.raw" "raw2qcow2 -o $T/dir $T/d.raw" \
	    "imgsparse -o $T/dir $T/d.raw"; do
		run $cmd
		[ "$status" -eq 3 ] || { echo "$cmd: status $status"; return 1; }
		[ "$output" = "${cmd%% *}: $T/dir: Is a directory" ] ||
			{ echo "$cmd: $output"; return 1; }
	done
}

@test "a truncated image, archive or stream is named in the message, file and pipe" {
	make_pattern "$T/d.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/d.raw" "$T/d.qcow2"
	head -c 300000 "$T/d.qcow2" > "$T/cut.qcow2"
	for p in img2raw imgsum; do
		run "$p" "$T/cut.qcow2"
		[ "$status" -eq 1 ]
		[[ "$output" == "$p: $T/cut.qcow2: qcow2: "* ]] || { echo "$output"; return 1; }
		run sh -c "cat '$T/cut.qcow2' | $p"
		[ "$status" -eq 1 ]
		[[ "$output" == "$p: stdin: qcow2: "* ]] || { echo "$output"; return 1; }
	done
	gzip -c "$T/d.raw" > "$T/d.gz"
	head -c $(( $(stat -c %s "$T/d.gz") / 2 )) "$T/d.gz" > "$T/cut.gz"
	for p in img2raw raw2qcow2 imgsum; do
		run sh -c "$p '$T/cut.gz' > /dev/null"
		[ "$status" -eq 1 ]
		# the reader of what the gzip holds says so: "raw: gzip stream: "
		[[ "$output" == "$p: $T/cut.gz: "*"gzip stream: "* ]] || { echo "$output"; return 1; }
	done
	tar -C "$T" -cf "$T/x.tar" d.raw
	head -c 600000 "$T/x.tar" > "$T/cut.tar"
	for p in ovaextract uecsplit; do
		run "$p" "$T/cut.tar"
		[ "$status" -eq 1 ]
		[[ "$output" == "$p: $T/cut.tar: "* ]] || { echo "$output"; return 1; }
	done
}

# progress_of CMD...: stderr of CMD, which must succeed
progress_of() {
	"$@" 2> "$T/progress" > /dev/null
}

@test "a seekable stdout that holds old bytes (1<>) gets exactly the output, as '>' does: img2raw, imgsparse, every raw2X" {
	# a leading hole, data, a trailing hole; the old file is 0xff, longer
	truncate -s 8M "$T/s.raw"
	make_pattern "$T/p" 1048576
	dd if="$T/p" of="$T/s.raw" bs=1M seek=4 conv=notrunc status=none
	local cmd
	for cmd in img2raw imgsparse raw2qcow2 raw2vmdk "raw2vmdk -s monolithicSparse" \
	    raw2vhd "raw2vhd -s dynamic" raw2vhdx "raw2vhdx -s fixed" raw2vdi \
	    "raw2vdi -s static" raw2ploop; do
		$cmd "$T/s.raw" > "$T/want"
		head -c 12M /dev/zero | tr '\0' '\377' > "$T/old"
		$cmd "$T/s.raw" 1<> "$T/old"
		cmp "$T/want" "$T/old" || { echo "$cmd"; return 1; }
	done
}

@test "-p to a non-terminal: plain lines, no carriage return, the last one says 100% of the input once" {
	head -c 1000 /dev/urandom > "$T/k.raw"
	make_pattern "$T/d.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/d.raw" "$T/d.qcow2"
	gzip -c "$T/d.raw" > "$T/d.raw.gz"
	for cmd in "img2raw -p $T/k.raw" "imgsum -p $T/k.raw" "imgsparse -p $T/k.raw" \
	    "raw2qcow2 -p $T/k.raw" "raw2vmdk -p $T/d.qcow2" "img2raw -p $T/d.qcow2" "imgsum -p $T/d.qcow2" \
	    "img2raw -p $T/d.raw.gz" "raw2qcow2 -p -o $T/o.qcow2 $T/d.raw"; do
		progress_of $cmd || { echo "$cmd failed"; return 1; }
		! grep -q $'\r' "$T/progress" || { echo "$cmd: a carriage return"; return 1; }
		tail -n 1 "$T/progress" | grep -qE "^${cmd%% *}: .* 100%  .* in [0-9]+:[0-9]{2}:[0-9]{2}$" ||
			{ echo "$cmd: $(cat "$T/progress")"; return 1; }
	done
	# each byte once: a 1000-byte file is 1000 B (the probe reads its tail,
	# the reader its head again)
	progress_of img2raw -p "$T/k.raw"
	[[ "$(tail -n 1 "$T/progress")" == "img2raw: 1000 B of 1000 B 100%"* ]]
	# through a pipe: no total, unless --size gives it (pv -s)
	progress_of sh -c "cat '$T/k.raw' | img2raw -p"
	[[ "$(tail -n 1 "$T/progress")" == "img2raw: 1000 B  "* ]]
	progress_of sh -c "cat '$T/k.raw' | img2raw -p --size 1000"
	[[ "$(tail -n 1 "$T/progress")" == "img2raw: 1000 B of 1000 B 100%"* ]]
	# raw2X: --size is the disk's size, so a raw disk's from a pipe
	progress_of sh -c "head -c 1048576 '$T/d.raw' | raw2qcow2 -p --size 1M"
	[[ "$(tail -n 1 "$T/progress")" == "raw2qcow2: 1.0 MiB of 1.0 MiB 100%"* ]]
	progress_of sh -c "head -c 1048576 '$T/d.raw' | raw2vmdk -p --size 1M"
	[[ "$(tail -n 1 "$T/progress")" == "raw2vmdk: 1.0 MiB of 1.0 MiB 100%"* ]]
	# a zstd frame from a pipe declares its size: % without --size
	zstd -q -c "$T/d.raw" > "$T/d.raw.zst"
	progress_of sh -c "cat '$T/d.raw.zst' | img2raw -p"
	[[ "$(tail -n 1 "$T/progress")" == "img2raw: 4.0 MiB of 4.0 MiB 100%"* ]]
	# a failure does not claim 100%
	head -c 300000 "$T/d.qcow2" > "$T/cut.qcow2"
	run sh -c "img2raw -p '$T/cut.qcow2' > /dev/null"
	[ "$status" -eq 1 ]
	! grep -q '100%' <<< "$output"
}

@test "-p on a terminal: one line redrawn with \\r and cleared to its end, then a final line" {
	make_pattern "$T/d.raw" 4194304
	script -qec "img2raw -p '$T/d.raw' > /dev/null" /dev/null > "$T/tty"
	grep -q $'\r''img2raw: 4.0 MiB of 4.0 MiB 100%' "$T/tty"
	grep -q $'\e\[K' "$T/tty"
}

@test "raw2qcow2 -o NAME=VALUE with a qemu-img option name is refused, pointing to ours" {
	make_pattern "$T/d.raw" 65536
	cd "$T"
	for opt in compat=0.10 cluster_size=2M size=1G; do
		run raw2qcow2 -o "$opt" d.raw
		[ "$status" -eq 2 ]
		[ ! -e "$opt" ]
	done
	run raw2qcow2 -o compat=0.10 d.raw
	[[ "${lines[0]}" == "raw2qcow2: -o compat=0.10: -o names the output file; for qemu-img's compat use --compat"* ]]
	run raw2qcow2 -o cluster_size=2M d.raw
	[[ "${lines[0]}" == *"use --cluster-size"* ]]
	for opt in preallocation=full lazy_refcounts=on compression_type=zstd \
	    subformat=fixed adapter_type=lsilogic encrypt.format=luks; do
		run raw2qcow2 -o "$opt" d.raw
		[ "$status" -eq 2 ] || { echo "$opt: $status"; return 1; }
		[[ "${lines[0]}" == *"qemu-img's ${opt%%=*} has no equivalent in raw2qcow2"* ]]
	done
	# a file of that name is still a file
	raw2qcow2 -o ./compat=0.10 d.raw
	[ -s ./compat=0.10 ]
	raw2qcow2 -o my=disk.qcow2 d.raw
	[ -s my=disk.qcow2 ]
}

@test "the build takes CPPFLAGS, CFLAGS and LDFLAGS from the command line and the environment" {
	local b=$T/build
	# make -n: what would run, with the builder's flags on every compile
	make -s -C "$TOP" -n -B BUILD="$b" CPPFLAGS=-D_FORTIFY_SOURCE=2 \
	    CFLAGS=-O0 LDFLAGS=-Wl,-z,relro all > "$T/n"
	grep -q -- '-c -o' "$T/n"
	! grep -- ' -c -o ' "$T/n" | grep -v -- '-D_FORTIFY_SOURCE=2.*-O0' | grep -q .
	grep -- "-o $b/bin/img2raw " "$T/n" | grep -q -- '-Wl,-z,relro'
	CPPFLAGS=-DIMGPIPE_FROM_ENV CFLAGS=-O1 make -s -C "$TOP" -n -B BUILD="$b" all > "$T/n"
	! grep -- ' -c -o ' "$T/n" | grep -v -- '-DIMGPIPE_FROM_ENV.*-O1' | grep -q .
	# and it compiles so (-O0 overrides no flag the build needs: C11,
	# POSIX and GNU names, the libraries' headers); a few objects that
	# need each of them, not the whole tree, to stay quick
	make -s -C "$TOP" -j2 BUILD="$b" CFLAGS=-O0 \
	    "$b/obj/lib/io/source.o" "$b/obj/lib/jobs/write.o" \
	    "$b/obj/lib/containers/ova.o" "$b/obj/lib/core/json.o" > "$T/log" 2>&1 ||
		{ cat "$T/log"; false; }
	[ -s "$b/obj/lib/jobs/write.o" ]
}

# the example of imgpipe(7), its man escapes undone
example_of_imgpipe7() {
	awk '/^\.\\" example:/ { f = 1; next } f && /^\.Bd/ { next }
	    f && /^\.Ed/ { exit } f' "$TOP/man/imgpipe.7" | sed 's/\\e/\\/g; s/\\&//g'
}

@test "make install under umask 077: modes, a pkg-config library the imgpipe(7) example builds on, uninstall leaves nothing" {
	local d=$T/dest prefix=/usr b
	b=$(cd "$IMGPIPE_BIN/.." && pwd)
	(umask 077 && make -s -C "$TOP" BUILD="$b" DESTDIR="$d" PREFIX=$prefix install) \
	    > "$T/log" 2>&1 || { cat "$T/log"; false; }
	for p in $(programs); do
		[ "$(stat -c %a "$d$prefix/bin/$p")" = 755 ]
		[ "$(stat -c %a "$d$prefix/share/man/man1/$p.1")" = 644 ]
		[ -L "$d$prefix/share/bash-completion/completions/$p" ]
	done
	[ "$(stat -c %a "$d$prefix/share/man/man7/imgpipe.7")" = 644 ]
	[ "$(stat -c %a "$d$prefix/lib/libimgpipe.a")" = 644 ]
	[ "$(stat -c %a "$d$prefix/include/imgpipe/format.h")" = 644 ]
	[ "$(stat -c %a "$d$prefix/lib/pkgconfig/imgpipe.pc")" = 644 ]
	[ "$(stat -c %a "$d$prefix/share/bash-completion/completions/imgpipe")" = 644 ]
	# where bash-completion looks, by its own pkg-config file
	[ -f "$d$(pkg-config --variable=completionsdir bash-completion)/imgpipe" ]
	# the example, built against the installed tree
	example_of_imgpipe7 > "$T/probe.c"
	grep -q 'main' "$T/probe.c"
	export PKG_CONFIG_PATH=$d$prefix/lib/pkgconfig
	pkg-config --modversion imgpipe | grep -qx "$(img2raw -V | awk '{ print $3 }')"
	cc -o "$T/probe" "$T/probe.c" \
	    $(pkg-config --define-variable=prefix="$d$prefix" --cflags --libs imgpipe)
	make_pattern "$T/d.raw" 1048576
	qemu-img convert -f raw -O vmdk "$T/d.raw" "$T/d.vmdk"
	run "$T/probe" "$T/d.vmdk"
	[ "$status" -eq 0 ]
	[ "$output" = "vmdk 1048576" ]
	run "$T/probe" "$T/missing"
	[ "$status" -eq 3 ]
	# install-strip: the same, stripped
	(umask 077 && make -s -C "$TOP" BUILD="$b" DESTDIR="$T/s" PREFIX=$prefix install-strip) \
	    > "$T/log" 2>&1 || { cat "$T/log"; false; }
	file "$T/s$prefix/bin/img2raw" | grep -q ', stripped'
	[ "$(stat -c %a "$T/s$prefix/bin/img2raw")" = 755 ]
	# uninstall: no file and no link left
	make -s -C "$TOP" BUILD="$b" DESTDIR="$d" PREFIX=$prefix uninstall
	[ -z "$(find "$d" ! -type d)" ] || { find "$d" ! -type d; false; }
}

@test "bash completion: img2raw -f <TAB> offers the format names, options from --help, files" {
	local b list
	b=$(cd "$IMGPIPE_BIN/.." && pwd)
	make -s -C "$TOP" BUILD="$b" "$b/completion/imgpipe"
	cat > "$T/complete.sh" <<-'EOF'
	source "$1"
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
	_imgpipe "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort
	EOF
	cd "$T"
	run bash "$T/complete.sh" "$b/completion/imgpipe" img2raw -f ""
	[ "$status" -eq 0 ]
	[ "$output" = "$(img2raw --list-formats | awk '{ print $1 }' | sort -u)" ]
	# sorted by qemu-img's name, the Image service's just after it
	list=$(img2raw --list-formats)
	awk '!/the same as/ { print $1 }' <<< "$list" > "$T/names"
	sort -c "$T/names"
	grep -A1 '^vpc ' <<< "$list" | grep -q '^vhd .*the same as vpc'
	grep -A1 '^parallels ' <<< "$list" | grep -q '^ploop .*the same as parallels'
	grep -qx qcow2 <<< "$output"
	grep -qx vmdk <<< "$output"
	run bash "$T/complete.sh" "$b/completion/imgpipe" img2raw --format=q
	grep -qx qcow2 <<< "$output"
	run bash "$T/complete.sh" "$b/completion/imgpipe" img2raw --li
	[ "$output" = "--list-formats" ]
	run bash "$T/complete.sh" "$b/completion/imgpipe" ovaextract -x -
	grep -qx -- -C <<< "$output"
	grep -qx -- --directory <<< "$output"
	mkdir sub && touch sub.raw
	run bash "$T/complete.sh" "$b/completion/imgpipe" ovaextract -C su
	[ "$output" = sub ]
	run bash "$T/complete.sh" "$b/completion/imgpipe" imgsum su
	[ "$output" = "$(printf 'sub\nsub.raw')" ]
	run bash "$T/complete.sh" "$b/completion/imgpipe" imginfo --output ""
	[ "$output" = "$(printf 'human\njson')" ]
	# every program is registered
	for p in $(programs); do
		grep -q "complete -F _imgpipe .*\b$p\b" "$b/completion/imgpipe"
	done
}
