# img2raw of a plain raw file: data extents copied whole, without the
# emitter (copy_file_range where the file system shares blocks or copies
# itself, else pread/pwrite through a buffer of ours, which is faster than
# the kernel's copy on ext4 and tmpfs; splice into a pipe; lib/io/zcopy.c).
# The bytes must be those of the ordinary path, holes must stay holes.
load helpers
load gauge

setup() {
	make_islands "$T/in.raw"
}

# gauge.bash's disk_dir makes it: removed passed or failed.
outside=
teardown() {
	rm -rf ${outside:+"$outside"}
}

# Block-sharing file systems copy_file_range clones on; elsewhere our copy.
fs_shares_blocks() {
	case $(stat -f -c %T "$1") in xfs | btrfs | bcachefs) return 0 ;; esac
	return 1
}

@test "zcopy: raw file -> new file: same bytes, holes kept, copied whole (copy_file_range only where the file system shares blocks)" {
	strace -f -e trace=copy_file_range,pwrite64 -o "$T/trace" \
	    img2raw -o "$T/out.raw" "$T/in.raw"
	cmp "$T/in.raw" "$T/out.raw"
	[ "$(du -k "$T/out.raw" | cut -f1)" -lt 8000 ]
	if fs_shares_blocks "$T"; then
		grep -q 'copy_file_range(.*= [1-9]' "$T/trace"
	else
		grep -q 'pwrite64(.*, 1048576, 1048576' "$T/trace"
		run grep -c copy_file_range "$T/trace"
		[ "$output" = 0 ]
	fi
}

@test "zcopy: IMGPIPE_CLONE=copy takes copy_file_range on any one file system; IMGPIPE_CLONE=0 never" {
	IMGPIPE_CLONE=copy strace -f -e trace=copy_file_range -o "$T/trace" \
	    img2raw -o "$T/out.raw" "$T/in.raw"
	cmp "$T/in.raw" "$T/out.raw"
	[ "$(du -k "$T/out.raw" | cut -f1)" -lt 8000 ]
	grep -q 'copy_file_range(.*= [1-9]' "$T/trace"
	rm "$T/out.raw"
	IMGPIPE_CLONE=0 strace -f -e trace=copy_file_range -o "$T/trace" \
	    img2raw -o "$T/out.raw" "$T/in.raw"
	cmp "$T/in.raw" "$T/out.raw"
	run grep -c copy_file_range "$T/trace"
	[ "$output" = 0 ]
}

# The number of the copy's first 1 MiB read (at 1 MiB) among the pread64
# calls, in the order they started.  strace -f splits a call another
# thread interrupts: "PID pread64(5,  <unfinished ...>" then "PID <...
# pread64 resumed>..., 1048576, 1048576) = ...", its arguments on the
# second line.
preads_before_copy() {
	strace -f -e trace=pread64 -o "$T/count" img2raw -o "$T/c.raw" "$T/in.raw"
	rm -f "$T/c.raw"
	awk '/pread64\(/ { n++; if (/<unfinished/) { start[$1] = n; next }
			if (/, 1048576, 1048576\)/ && (!m || n < m)) m = n; next }
	    /<\.\.\. pread64 resumed>/ && /, 1048576, 1048576\)/ &&
		(!m || start[$1] < m) { m = start[$1] }
	    END { if (m) print m }' "$T/count"
}

@test "zcopy: a read error names the input, a write error the output; exit 3, no output left" {
	n=$(preads_before_copy)
	[ -n "$n" ]
	run strace -f -o /dev/null -e trace=pread64 \
	    -e inject=pread64:error=EIO:when="$n" img2raw -o "$T/out.raw" "$T/in.raw"
	[ "$status" -eq 3 ]
	[ "$output" = "img2raw: $T/in.raw: read error: Input/output error" ]
	[ ! -e "$T/out.raw" ]
	run strace -f -o /dev/null -e trace=pwrite64 \
	    -e inject=pwrite64:error=ENOSPC:when=1 img2raw -o "$T/out.raw" "$T/in.raw"
	[ "$status" -eq 3 ]
	[ "$output" = "img2raw: $T/out.raw: write error: No space left on device" ]
	[ ! -e "$T/out.raw" ]
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

@test "zcopy: raw file -> a file on tmpfs (another file system): same bytes, copied whole" {
	out=/dev/shm/imgpipe-zcopy-$$.raw
	strace -f -e trace=copy_file_range,pwrite64 -o "$T/trace" \
	    img2raw -o "$out" "$T/in.raw"
	run cmp "$T/in.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	grep -q 'pwrite64(.*, 1048576, 1048576' "$T/trace"
}

@test "zcopy: across two file systems our own copy, copy_file_range not even tried (one policy a pair)" {
	out=/dev/shm/imgpipe-zcopy-$$.raw
	# the input and the output on two file systems
	[ "$(stat -c %d "$T")" != "$(stat -c %d /dev/shm)" ]
	strace -f -e trace=copy_file_range,pwrite64,splice -o "$T/trace" \
	    raw2vhd -v -o "$out" "$T/in.raw" 2> "$T/err"
	run cmp -n "$(stat -c %s "$T/in.raw")" "$T/in.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	grep -q 'layout: straight through, the data runs copied whole' "$T/err"
	grep -q 'pwrite64(.*, 1048576, 1048576' "$T/trace"
	run grep -Ec 'copy_file_range|splice' "$T/trace"
	[ "$output" = 0 ]
}

@test "zcopy: one run of 48 MiB is copied by both copiers, in 8 MiB pieces" {
	yes imgpipe | head -c 48M > "$T/run.raw"
	out=/dev/shm/imgpipe-zcopy-$$.raw
	# each write held 2 ms: the second copier is surely started by then
	strace -f -e trace=pwrite64 -e inject=pwrite64:delay_exit=2000 \
	    -o "$T/trace" img2raw -o "$out" "$T/run.raw"
	run cmp "$T/run.raw" "$out"
	rm -f "$out"
	[ "$status" -eq 0 ]
	[ "$(grep -c 'pwrite64(' "$T/trace")" -eq 48 ]
	# a piece is one copier's: 64 MiB pieces gave this run to one of them
	[ "$(grep 'pwrite64(' "$T/trace" | cut -d' ' -f1 | sort -u | wc -l)" -eq 2 ]
}

# writers TRACE: how many threads made the pwrite64 calls strace -f saw.
writers() {
	grep 'pwrite64(' "$1" | cut -d' ' -f1 | sort -u | wc -l
}

# Into a file on a disk the copy's writes are gauged as the writer
# threads' are (lib/io/direct_out.c): through the page cache until it is
# found slow, then O_DIRECT.  strace delays every pwrite64 by 50 ms,
# longer than a 32 MiB window may take at 1 GB/s (33.6 ms), so the first
# write to end gives the verdict: only the two copiers' first writes go
# through the cache.  From a pipe the eight writer threads write it (one
# each at most through the cache).  raw2vhd's fixed disk is the same copy
# at its offset, then the footer through the cache.
@test "zcopy: into a file on a disk, through the page cache until its writes are slow, then O_DIRECT; from a pipe and as a fixed VHD the same; IMGPIPE_DIRECT=1 at once, =0 never" {
	local b d
	disk_dir
	head -c $((48 << 20)) /dev/urandom > "$outside/disk.raw"
	slow_into_file file "$outside/disk.raw"
	cmp "$outside/o.raw" "$outside/disk.raw"
	echo "copied, slow: $b buffered, $d direct, $(writers "$T/trace") threads"
	[ "$(writers "$T/trace")" -eq 2 ]
	[ "$b" -ge 1 ]
	[ "$b" -le 2 ]
	[ "$d" -ge 46 ]
	slow_into_file pipe "$outside/disk.raw"
	cmp "$outside/o.raw" "$outside/disk.raw"
	echo "from a pipe, slow: $b buffered, $d direct"
	[ "$b" -le 8 ]
	[ "$d" -ge 40 ]
	slow_into_file file "$outside/disk.raw" raw2vhd
	img2raw "$outside/o.raw" | cmp - "$outside/disk.raw"
	echo "fixed VHD, slow: $b buffered, $d direct"
	[ "$b" -ge 2 ]
	[ "$b" -le 3 ]
	[ "$d" -ge 46 ]
	direct_env 1 "$outside/disk.raw"
	[ "$b" -eq 0 ]
	[ "$d" -eq 48 ]
	direct_env 0 "$outside/disk.raw"
	[ "$b" -eq 48 ]
	[ "$d" -eq 0 ]
}

# A real producer's raw file: VMware Workstation's monolithicFlat extent
# (test/producers) holds the disk as it is, so img2raw and raw2vhd copy
# its data runs whole, and leave the page cache on slow writes as above.
# From a pipe, and into a pipe, the same disk.
@test "zcopy: VMware Workstation's flat extent (a raw file) into a file on a disk with slow writes, from a file and a pipe, and as a fixed VHD; into a pipe: the same disk" {
	local b d flat
	disk_dir
	python3 "$BATS_TEST_DIRNAME/../producers/gen.py" vmware-flat \
	    "$outside/w.vmdk" --size 48M --dense 40M --raw "$outside/disk.raw" > /dev/null
	flat=$outside/w-flat.vmdk
	slow_into_file file "$flat"
	cmp "$outside/o.raw" "$outside/disk.raw"
	echo "copied, slow: $b buffered, $d direct, $(writers "$T/trace") threads"
	[ "$(writers "$T/trace")" -eq 2 ]
	[ "$b" -ge 1 ]
	[ "$b" -le 2 ]
	[ "$d" -ge 32 ]
	slow_into_file pipe "$flat"
	cmp "$outside/o.raw" "$outside/disk.raw"
	echo "from a pipe, slow: $b buffered, $d direct"
	[ "$b" -le 8 ]
	[ "$d" -ge 32 ]
	slow_into_file file "$flat" raw2vhd
	img2raw "$outside/o.raw" | cmp - "$outside/disk.raw"
	echo "fixed VHD, slow: $b buffered, $d direct"
	[ "$b" -le 3 ]
	[ "$d" -ge 32 ]
	img2raw "$flat" | cmp - "$outside/disk.raw"
	cat "$flat" | img2raw | cmp - "$outside/disk.raw"
}
