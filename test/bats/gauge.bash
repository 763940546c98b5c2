# Shared by the suites that test how a file output on a disk leaves the
# page cache when its writes are slow (lib/io/cache_gauge.c,
# lib/io/direct_out.c): `load gauge` after `load helpers`.  disk_dir sets
# $outside, which the suite's teardown removes.

# write_calls TRACE: "BUFFERED DIRECT", the pwrite64 calls strace -f saw
# a program make to its output and to the same file opened O_DIRECT.
write_calls() {
	awk '/openat\(.*O_DIRECT/ { d = $NF }
		/pwrite64\(/ { sub(/.*pwrite64\(/, ""); sub(/,.*/, "")
			if ($0 == d) direct++; else if ($0 >= 3) buffered++ }
		END { print buffered + 0, direct + 0 }' "$1"
}

# slow_into_file HOW IMAGE [PROGRAM]: PROGRAM (img2raw) of IMAGE, from a
# file or a pipe (HOW), into $outside/o.raw with every pwrite64 delayed
# 50 ms by strace, whose trace goes to $T/trace; then "BUFFERED DIRECT"
# write calls in $b $d.
slow_into_file() {
	local trace=(strace -f -o "$T/trace" -e trace=openat,pwrite64
	    -e inject=pwrite64:delay_exit=50000) prog=${3:-img2raw}
	rm -f "$outside/o.raw"
	if [ "$1" = file ]; then
		"${trace[@]}" "$prog" -o "$outside/o.raw" "$2"
	else
		cat "$2" | "${trace[@]}" "$prog" -o "$outside/o.raw"
	fi
	read -r b d < <(write_calls "$T/trace")
}

# disk_dir: a new directory on a disk file system (not tmpfs), in $outside.
disk_dir() {
	outside=$(mktemp -d /var/tmp/imgpipe-gauge.XXXXXX)
	[ "$(stat -f -c %T "$outside")" != tmpfs ] || { echo "no disk file system: $outside"; return 1; }
}

# direct_env N IMAGE: img2raw IMAGE into $outside/o.raw with
# IMGPIPE_DIRECT=N (0: every pwrite64 delayed 50 ms, so that only the
# variable keeps the writes in the cache), the bytes compared with
# $outside/disk.raw; then "BUFFERED DIRECT" write calls in $b $d.
direct_env() {
	local delay=()
	if [ "$1" = 0 ]; then delay=(-e inject=pwrite64:delay_exit=50000); fi
	rm -f "$outside/o.raw"
	IMGPIPE_DIRECT=$1 strace -f -o "$T/trace" -e trace=openat,pwrite64 \
	    "${delay[@]}" img2raw -o "$outside/o.raw" "$2"
	cmp "$outside/o.raw" "$outside/disk.raw"
	read -r b d < <(write_calls "$T/trace")
	echo "IMGPIPE_DIRECT=$1: $b buffered, $d direct"
}
