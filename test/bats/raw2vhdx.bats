# raw2vhdx: dynamic and fixed, block sizes, 512 and 4096-byte logical
# sectors, every size and way, read back by three readers written by
# different people: qemu-img (check and compare), libyal's vhdiinfo and
# pyvhdi, and our own img2raw.
load helpers
load writers

setup_file() { writer_fixtures; }

# check_vhdx IMAGE PADDED_RAW: every reader gives the disk back.  Neither
# qemu-img nor libyal opens an empty VHDX (qemu-img 7.2 wants a BAT of
# 2^32 / chunk_ratio entries for none; it cannot open its own either), and
# qemu-img opens none with 4096-byte logical sectors (raw2vhdx(1)).
check_vhdx() {
	local img=$1 raw=$2
	[ "$(head -c 8 "$img")" = vhdxfile ] || { echo "$img: no identifier"; return 1; }
	img2raw_back "$img" "$raw" || return 1
	[ -s "$raw" ] || return 0
	yal_same "$img" "$raw" || return 1
	[ "$(get_le32 "$img" $((2 * 1048576 + 65536 + 16)))" -eq 512 ] || return 0
	qemu_check vhdx "$img" || return 1
	qemu_same vhdx "$img" "$raw"
}

# matrix OPTIONS...: each size, four ways, then every reader.
matrix() {
	local s
	for s in $WRITER_SIZES; do
		four_ways "$FIX/d$s.raw" raw2vhdx "$@" ||
			{ echo "size $s: raw2vhdx $*"; return 1; }
		check_vhdx "$T/ff.img" "$FIX/d$s.padded" ||
			{ echo "size $s: raw2vhdx $*"; return 1; }
	done
}

@test "dynamic, the default: 32 MiB blocks" { matrix; }
@test "dynamic, 1 MiB blocks" { WRITER_SIZES=5000000 matrix --block-size 1M; }
@test "dynamic, 256 MiB blocks" { WRITER_SIZES=5000000 matrix --block-size 256M; }
@test "fixed, 32 MiB blocks" { matrix -s fixed; }
@test "fixed, 2 MiB blocks" { WRITER_SIZES=5000000 matrix -s fixed --block-size 2M; }

@test "4096-byte logical sectors, dynamic and fixed: size rounded up, and stderr says so" {
	local s
	cp "$FIX/d5000000.raw" "$T/want.raw"
	truncate -s 5001216 "$T/want.raw"
	for s in dynamic fixed; do
		four_ways "$FIX/d5000000.raw" raw2vhdx -s $s --logical-sector-size 4096
		img2raw_back "$T/ff.img" "$T/want.raw"
		yal_same "$T/ff.img" "$T/want.raw"
		[[ "$(vhdiinfo "$T/ff.img")" == *"Bytes per sector"*": 4096 bytes"* ]]
		run raw2vhdx -s $s --logical-sector-size 4096 -o "$T/x.vhdx" "$FIX/d5000000.raw"
		[ "$status" -eq 0 ]
		[ "$output" = "raw2vhdx: virtual size 5000000 rounded up to 5001216 (a multiple of the 4096-byte logical sector)" ]
	done
	run qemu-img info "$T/x.vhdx"
	[[ "$output" == *"Operation not supported"* ]]
}

# meta FILE OFFSET BYTES: a little-endian field of the metadata region.
meta() { get_le "$1" $((2 * 1048576 + $2)) "$3"; }

# crc32c_ok FILE OFFSET LENGTH CHECKSUM_FIELD: the structure's CRC-32C.
crc32c_ok() {
	/usr/bin/python3 - "$@" <<-'PY'
	import sys, struct
	f, off, n, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	b = bytearray(open(f, 'rb').read()[off:off + n])
	want = struct.unpack_from('<I', b, at)[0]
	b[at:at + 4] = b'\0\0\0\0'
	crc = 0xffffffff
	for x in b:
	    crc ^= x
	    for _ in range(8):
	        crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
	sys.exit(0 if crc ^ 0xffffffff == want else 1)
	PY
}

@test "layout: identifier, two headers, two region tables, empty log, metadata, BAT with sector-bitmap entries" {
	local e i
	make_pattern "$T/in.raw" 5000000
	raw2vhdx --block-size 1M --logical-sector-size 512 -o "$T/d.vhdx" "$T/in.raw"
	[ "$(head -c 8 "$T/d.vhdx")" = vhdxfile ]
	[ "$(head -c 24 "$T/d.vhdx" | tail -c 16 | tr -d '\0')" = "imgpipe " ]
	for i in 1 2; do
		[ "$(head -c $((i * 65536 + 4)) "$T/d.vhdx" | tail -c 4)" = head ]
		[ "$(get_le64 "$T/d.vhdx" $((i * 65536 + 8)))" -eq "$i" ]	# sequence
		[ "$(get_le "$T/d.vhdx" $((i * 65536 + 48)) 8)" -eq 0 ]	# log GUID
		[ "$(get_le32 "$T/d.vhdx" $((i * 65536 + 68)))" -eq 1048576 ]	# log length
		[ "$(get_le64 "$T/d.vhdx" $((i * 65536 + 72)))" -eq 1048576 ]	# log offset
		crc32c_ok "$T/d.vhdx" $((i * 65536)) 4096 4
	done
	cmp <(tail -c +$((196608 + 1)) "$T/d.vhdx" | head -c 65536) \
		<(tail -c +$((262144 + 1)) "$T/d.vhdx" | head -c 65536)
	crc32c_ok "$T/d.vhdx" 196608 65536 4
	[ "$(get_le32 "$T/d.vhdx" $((196608 + 8)))" -eq 2 ]
	# BAT at 3 MiB, metadata at 2 MiB, both required
	[ "$(get_le64 "$T/d.vhdx" $((196608 + 16 + 16)))" -eq 3145728 ]
	[ "$(get_le32 "$T/d.vhdx" $((196608 + 16 + 28)))" -eq 1 ]
	[ "$(get_le64 "$T/d.vhdx" $((196608 + 48 + 16)))" -eq 2097152 ]
	[ "$(get_le32 "$T/d.vhdx" $((196608 + 48 + 28)))" -eq 1 ]
	# the log is empty: zeros
	[ "$(tail -c +$((1048576 + 1)) "$T/d.vhdx" | head -c 1048576 | tr -d '\0' | wc -c)" -eq 0 ]
	# metadata: five items as Hyper-V places them
	[ "$(tail -c +$((2097152 + 1)) "$T/d.vhdx" | head -c 8)" = metadata ]
	[ "$(meta "$T/d.vhdx" 10 2)" -eq 5 ]
	[ "$(meta "$T/d.vhdx" 65536 4)" -eq 1048576 ]		# block size
	[ "$(meta "$T/d.vhdx" 65540 4)" -eq 0 ]			# flags: dynamic
	[ "$(meta "$T/d.vhdx" 65544 8)" -eq 5000192 ]		# disk size
	[ "$(meta "$T/d.vhdx" 65552 4)" -eq 512 ]		# logical sector
	[ "$(meta "$T/d.vhdx" 65556 4)" -eq 4096 ]		# physical sector
	# BAT: blocks 0, 1, 2 and 4 with data at 4 MiB on, in order (state
	# 6); block 3 holds only zeros (make_pattern): state 2, no offset
	for i in 0 1 2 4; do
		e=$(get_le64 "$T/d.vhdx" $((3145728 + 8 * i)))
		[ $((e & 7)) -eq 6 ] || { echo "block $i state $((e & 7))"; return 1; }
		[ $((e >> 20)) -eq $((4 + i - i / 4)) ] || { echo "block $i at $((e >> 20)) MiB"; return 1; }
	done
	[ "$(get_le64 "$T/d.vhdx" $((3145728 + 8 * 3)))" -eq 2 ]
	[ "$(stat -c %s "$T/d.vhdx")" -eq $((8 * 1048576)) ]
}

@test "the BAT has a sector-bitmap entry after every chunk_ratio blocks; blocks without data are zero" {
	local e
	# 1 MiB blocks, 512-byte sectors: chunk ratio 4096; data in block
	# 4095 and 4097 (after the first sector-bitmap entry), none between
	truncate -s 6G "$T/in.raw"
	printf 'a' | dd of="$T/in.raw" bs=1 seek=$((4095 << 20)) conv=notrunc status=none
	printf 'b' | dd of="$T/in.raw" bs=1 seek=$((4097 << 20)) conv=notrunc status=none
	(set -o pipefail; raw2vhdx --block-size 1M "$T/in.raw" | cat > "$T/d.vhdx")
	e=$(get_le64 "$T/d.vhdx" $((3145728 + 8 * 4095)))
	[ $((e & 7)) -eq 6 ]
	[ "$(get_le64 "$T/d.vhdx" $((3145728 + 8 * 4096)))" -eq 0 ]	# SB not present
	[ "$(get_le64 "$T/d.vhdx" $((3145728 + 8 * 4097)))" -eq 2 ]	# block 4096: zero
	e=$(get_le64 "$T/d.vhdx" $((3145728 + 8 * 4098)))		# block 4097
	[ $((e & 7)) -eq 6 ]
	[ "$(get_le64 "$T/d.vhdx" 3145728)" -eq 2 ]			# block 0: zero
	qemu_check vhdx "$T/d.vhdx"
	img2raw_back_big "$T/d.vhdx" "$T/in.raw"
	raw2vhdx --block-size 1M -o "$T/f.vhdx" "$T/in.raw"
	cmp "$T/d.vhdx" "$T/f.vhdx"
}

@test "a disk over 2 GiB with data islands, dynamic and fixed, four ways" {
	local s
	for s in dynamic fixed; do
		four_ways_big "$FIX/g.raw" raw2vhdx -s $s || { echo "$s"; return 1; }
		[ "$(du -k "$T/ff.img" | cut -f1)" -lt 40000 ]
		qemu_check vhdx "$T/ff.img"
		qemu_same vhdx "$T/ff.img" "$FIX/g.raw"
		img2raw_back_big "$T/ff.img" "$FIX/g.raw"
		yal_same_big "$T/ff.img" "$FIX/g.raw"
	done
}

@test "zero blocks stay unallocated; work scales with data (64 GiB sparse)" {
	local e
	truncate -s 64G "$T/big.raw"
	printf 'data' | dd of="$T/big.raw" bs=1 seek=$((40 << 30)) conv=notrunc status=none
	timeout 60 raw2vhdx -o "$T/big.vhdx" "$T/big.raw"
	[ "$(stat -c %s "$T/big.vhdx")" -eq $((4 * 1048576 + 33554432)) ]
	timeout 60 raw2vhdx -s fixed -o "$T/bigf.vhdx" "$T/big.raw"
	[ "$(du -k "$T/bigf.vhdx" | cut -f1)" -lt 5000 ]
	img2raw_back_big "$T/big.vhdx" "$T/big.raw"
	# a fixed disk's block 1280 (40 GiB / 32 MiB; BAT entry 1290, after
	# ten sector-bitmap entries) holds the 4 bytes (reading 64 GiB back
	# would cost the suite's whole budget; the islands test reads fixed
	# disks back)
	e=$(get_le64 "$T/bigf.vhdx" $((3145728 + 8 * 1290)))
	[ $((e & 7)) -eq 6 ]
	[ "$(dd if="$T/bigf.vhdx" bs=1 skip=$((e & ~0xfffff)) count=4 status=none)" = data ]
}

@test "the same bytes on every run; --uuid sets the disk's page 83 id" {
	raw2vhdx -o "$T/1.vhdx" "$FIX/d5000000.raw"
	raw2vhdx -o "$T/2.vhdx" "$FIX/d5000000.raw"
	cmp "$T/1.vhdx" "$T/2.vhdx"
	raw2vhdx --uuid 0123abcd-4567-89ab-cdef-0123456789ab -o "$T/u.vhdx" "$FIX/d5000000.raw"
	# a GUID on disk: its first three fields little-endian
	[ "$(od -An -tx1 -j $((2097152 + 65536 + 24)) -N 16 "$T/u.vhdx" | tr -d ' \n')" = cdab23016745ab89cdef0123456789ab ]
	! cmp -s "$T/1.vhdx" "$T/u.vhdx"
}

@test "any image goes in: a qcow2, a VHD and a VMDK give the raw's VHDX" {
	local f
	make_pattern "$T/src.raw" 4194304
	qemu-img convert -f raw -O qcow2 "$T/src.raw" "$T/in.qcow2"
	qemu-img convert -f raw -O vpc -o force_size=on "$T/src.raw" "$T/in.vhd"
	qemu-img convert -f raw -O vmdk "$T/src.raw" "$T/in.vmdk"
	raw2vhdx -o "$T/want.vhdx" "$T/src.raw"
	for f in in.qcow2 in.vhd in.vmdk; do
		(set -o pipefail; raw2vhdx "$T/$f" | cmp - "$T/want.vhdx")
		(set -o pipefail; raw2vhdx < <(cat "$T/$f") | cmp - "$T/want.vhdx")
	done
}

@test "a disk larger than 64 TiB is refused before anything is written; so is one whose BAT we would not read" {
	run raw2vhdx --size 65T -o "$T/big.vhdx" "$FIX/d1.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"larger than 70368744177664 bytes, the most vhdx can hold"* ]]
	[ ! -e "$T/big.vhdx" ]
	[ -z "$(raw2vhdx --size 65T "$FIX/d1.raw" 2> /dev/null)" ]
	# 1 MiB blocks: a BAT of 64 MiB (our reader's limit) holds 8386561
	# blocks and 2047 sector-bitmap entries
	run raw2vhdx --block-size 1M --size 8386562M "$FIX/d1.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the most vhdx can hold here"* ]]
	run raw2vhdx --block-size 1M --size 8386561M -o "$T/max.vhdx" "$FIX/d1.raw"
	[ "$status" -eq 0 ]
	[ "$(get_le32 "$T/max.vhdx" $((196608 + 16 + 24)))" -eq 67108864 ]
	img2raw "$T/max.vhdx" | head -c 1 | cmp - "$FIX/d1.raw"
}

@test "into a pipe, a dynamic disk is planned: two passes over a file, the store for a pipe" {
	mkdir "$T/tmp"
	run sh -c 'raw2vhdx -v "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/a.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, two passes over the input"* ]]
	run sh -c 'cat "$1" | raw2vhdx -v --mem 64K --tmpdir "$2" | cat > "$3"' \
		sh "$FIX/d5000000.raw" "$T/tmp" "$T/b.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: stream output, data parked in the store"* ]]
	[[ "$output" != *"temporary file 0 B"* ]]
	[ -z "$(ls -A "$T/tmp")" ]
	cmp "$T/a.vhdx" "$T/b.vhdx"
	run sh -c 'raw2vhdx -v -s fixed "$1" | cat > "$2"' sh "$FIX/d5000000.raw" "$T/c.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *"layout: straight through"* ]]
}

@test "failures: no output file, write errors exit 3, usage errors exit 2" {
	run raw2vhdx -o "$T/x.vhdx" "$T/missing.raw"
	[ "$status" -eq 3 ]
	[ ! -e "$T/x.vhdx" ]
	run sh -c 'raw2vhdx "$1" > /dev/full' sh "$FIX/d5000000.raw"
	[ "$status" -eq 3 ]
	[[ "$output" == *"write error"* ]]
	run raw2vhdx -s sparse "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhdx --block-size 3M "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhdx --block-size 512M "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhdx --logical-sector-size 1024 "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhdx --uuid x "$FIX/d1.raw"
	[ "$status" -eq 2 ]
	run raw2vhdx "$FIX/d1.raw" "$FIX/d1.raw"
	[ "$status" -eq 2 ]
}

# stretches TRACE: "OFFSET:CALLS" for each stretch written behind, checking
# that its first call waits for the write-back (start_behind: the pages
# are given back for reuse at once) and no other call does.
stretches() {
	awk '/sync_file_range\(/ { w = /WAIT_AFTER/; sub(/.*sync_file_range\([0-9]*, /, ""); sub(/,.*/, "")
			if (n && $0 == off) { calls++; if (w) bad = 1; next }
			if (n) print off ":" calls
			n++; off = $0; calls = 1; if (!w) bad = 1 }
		END { if (n) print off ":" calls; exit bad }' "$1"
}

@test "into a file on a disk the output goes through the page cache until that is slow, then is written behind (IMGPIPE_DIRECT=1: from the start, =0: never)" {
	# imgpipe(7), lib/io/cache_gauge.c, wfile.c: when a 32 MiB window of
	# writes lands slower than 1 GB/s, or has taken longer than its 32
	# MiB may (here strace delays each write by 20 ms: two of them), the
	# last 64 MiB written are written back and their pages given back,
	# then the write-back is started every 32 MiB from there on; tmpfs
	# has no write-back, so use the disk.
	d=$(mktemp -d /var/tmp/imgpipe-behind.XXXXXX)
	head -c 192M /dev/urandom > "$d/in.raw"
	IMGPIPE_DIRECT=1 raw2vhdx -o "$d/a.vhdx" "$d/in.raw"
	behind=$(fincore --bytes --noheadings -o RES "$d/a.vhdx")
	IMGPIPE_DIRECT=0 raw2vhdx -o "$d/b.vhdx" "$d/in.raw"
	cached=$(fincore --bytes --noheadings -o RES "$d/b.vhdx")
	strace -f -o "$d/trace" -e trace=pwritev,sync_file_range \
	    -e inject=pwritev:delay_exit=20000 raw2vhdx -o "$d/c.vhdx" "$d/in.raw"
	slow=$(fincore --bytes --noheadings -o RES "$d/c.vhdx")
	run=$(stretches "$d/trace")
	before=$(awk '/sync_file_range\(/ { exit } /pwritev\(/ { n++ } END { print n + 0 }' "$d/trace")
	cat "$d/in.raw" | strace -f -o "$d/trace" -e trace=pwritev,sync_file_range \
	    -e inject=pwritev:delay_exit=20000 raw2vhdx -o "$d/p.vhdx"
	pipe_run=$(stretches "$d/trace")
	cmp "$d/a.vhdx" "$d/b.vhdx"
	cmp "$d/a.vhdx" "$d/c.vhdx"
	cmp "$d/a.vhdx" "$d/p.vhdx"
	img2raw "$d/a.vhdx" | cmp - "$d/in.raw"
	rm -rf "$d"
	echo "behind $behind, through the cache $cached; slow: $slow, $before writes, then offset:calls $run (a pipe: $pipe_run)"
	[ "$behind" -le $((80 << 20)) ]
	[ "$cached" -ge $((150 << 20)) ]
	# a few slow writes, not a window of 32 (each call is 1 MiB at most;
	# a gathered write goes in two halves on two threads, and the switch
	# comes after it)
	[ "$before" -ge 2 ]
	[ "$before" -le 8 ]
	# one stretch from 64 MiB before the end then written: 0
	[ "${run%%:*}" = 0 ]
	[ "${run#*:}" -ge 2 ]
	[ "$pipe_run" = "$run" ]
	[ "$slow" -le $((80 << 20)) ]
}

@test "into a file on a disk, a slow page cache is tried again after 16 windows of 32 MiB written behind, then after 32 if it was slow again" {
	# cache_gauge.c: slow pages may pass (strace delays only the first 40
	# writes, by 5 ms each: behind after 7, for 512 MiB, then the cache
	# again), or last (every write delayed: tried again, slow after 7
	# more, behind again from 64 MiB before the end then written).  Kept
	# to the end, the second run would be one stretch of 20 calls.
	d=$(mktemp -d /var/tmp/imgpipe-behind.XXXXXX)
	head -c 640M < <(yes imgpipe-behind) > "$d/in.raw"
	strace -f -o "$d/trace" -e trace=pwritev,sync_file_range \
	    -e inject=pwritev:delay_exit=5000:when=1..40 \
	    raw2vhdx -o "$d/a.vhdx" "$d/in.raw"
	passing=$(stretches "$d/trace")
	cat "$d/in.raw" | strace -f -o "$d/trace" -e trace=pwritev,sync_file_range \
	    -e inject=pwritev:delay_exit=5000 raw2vhdx -o "$d/b.vhdx"
	lasting=$(stretches "$d/trace")
	img2raw "$d/a.vhdx" | cmp - "$d/in.raw"
	cmp "$d/a.vhdx" "$d/b.vhdx"
	rm -rf "$d"
	echo "offset:calls, slow for a while:" $passing "; slow throughout (from a pipe):" $lasting
	# a stretch behind of 512 MiB, 16 windows of 32, from 0 (64 MiB
	# before the end then written); then the cache again (a second
	# stretch in the first case only if this machine's cache is slow),
	# the second from 64 MiB before an end past 512 MiB
	for run in "$passing" "$lasting"; do
		first=$(echo "$run" | sed -n 1p)
		[ "${first%%:*}" = 0 ]
		[ "${first#*:}" -ge 15 ]
		[ "${first#*:}" -le 17 ]
		second=$(echo "$run" | sed -n 2p)
		[ -z "$second" ] || [ "${second%%:*}" -ge $((448 << 20)) ]
	done
	[ "$(echo "$passing" | wc -l)" -le 2 ]
	# slow throughout: the second stretch is there
	[ "$(echo "$lasting" | wc -l)" -eq 2 ]
}
