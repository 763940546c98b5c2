# img2raw of a plain raw file: data extents copied in the kernel
# (copy_file_range into a new file, splice through a pipe of our own into
# a file on another file system, splice into a pipe; lib/io/zcopy.c).
# The bytes must be those of the ordinary path, holes must stay holes.
load helpers

setup() {
	make_islands "$T/in.raw"
}

@test "zcopy: raw file -> new file: same bytes, holes kept, in the kernel" {
	strace -f -e trace=copy_file_range -o "$T/trace" \
	    img2raw -o "$T/out.raw" "$T/in.raw"
	cmp "$T/in.raw" "$T/out.raw"
	[ "$(du -k "$T/out.raw" | cut -f1)" -lt 8000 ]
	grep -q 'copy_file_range(.*= [1-9]' "$T/trace"
}

@test "zcopy: raw file -> pipe: same bytes, spliced" {
	run sh -c "img2raw '$T/in.raw' | cat > '$T/out.raw'"
	[ "$status" -eq 0 ]
	cmp "$T/in.raw" "$T/out.raw"
	run sh -c "strace -f -e trace=splice -o '$T/trace' img2raw '$T/in.raw' | cat > /dev/null"
	[ "$status" -eq 0 ]
	grep -q 'splice(.*= [1-9]' "$T/trace"
}

@test "zcopy: stdin opened mid-file starts at its offset" {
	{ dd bs=1M count=1 of=/dev/null status=none; img2raw -o "$T/out.raw"; } \
	    < "$T/in.raw"
	tail -c +$((1048576 + 1)) "$T/in.raw" > "$T/want.raw"
	cmp "$T/want.raw" "$T/out.raw"
}

@test "zcopy: an output file that already has bytes is replaced exactly" {
	printf 'old contents' > "$T/out.raw"
	img2raw -o "$T/out.raw" "$T/in.raw"
	cmp "$T/in.raw" "$T/out.raw"
	img2raw "$T/in.raw" > "$T/std.raw"
	cmp "$T/in.raw" "$T/std.raw"
}

@test "zcopy: a reader closing the pipe early is a write error, exit 3" {
	run bash -c "img2raw '$T/in.raw' | head -c 100 > /dev/null; exit \${PIPESTATUS[0]}"
	[ "$status" -eq 3 ]
	[ "$output" = "img2raw: stdout: write error: Broken pipe" ]
}

@test "zcopy: raw file -> a file on tmpfs (another file system): same bytes, in the kernel" {
	out=/dev/shm/imgpipe-zcopy-$$.raw
	strace -f -e trace=copy_file_range,splice -o "$T/trace" \
	    img2raw -o "$out" "$T/in.raw"
	run cmp "$T/in.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	grep -Eq '(copy_file_range|splice)\(.*= [1-9]' "$T/trace"
}

@test "zcopy: across two file systems the runs are spliced, copy_file_range not even tried (one policy a pair)" {
	out=/dev/shm/imgpipe-zcopy-$$.raw
	# the input and the output on two file systems
	[ "$(stat -c %d "$T")" != "$(stat -c %d /dev/shm)" ]
	strace -f -e trace=copy_file_range,splice -o "$T/trace" \
	    raw2vhd -o "$out" "$T/in.raw"
	run cmp -n "$(stat -c %s "$T/in.raw")" "$T/in.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	grep -Eq 'splice\(.*= [1-9]' "$T/trace"
	run grep -c copy_file_range "$T/trace"
	[ "$output" = 0 ]
}
