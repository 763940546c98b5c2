# img2raw: qcow2 against qemu-img: every variant in the four ways, data
# clusters in shuffled order through a small stash, crafted rejections
# (backing file, data file, encryption, feature bits, offsets, overlaps,
# sizes) and truncation.
load helpers
load formats

SIZE=5000000	# not a multiple of any cluster size

setup() {
	make_pattern "$T/disk.raw" $SIZE
}

# qcow2 IMAGE [-c] [OPTIONS]: convert the pattern; IMAGE.want is the
# oracle's raw of it.
qcow2() {
	local img=$1 c=
	shift
	if [ "$1" = -c ]; then c=-c; shift; fi
	qemu-img convert -f raw -O qcow2 $c ${1:+-o "$1"} "$T/disk.raw" "$img"
	want "$img"
}

want() {
	qemu-img convert -f qcow2 -O raw "$1" "$1.want"
}

# qcow2_4ways OPTIONS...: convert with them, check the four ways.
qcow2_4ways() {
	qcow2 "$T/a.qcow2" "$@"
	img2raw_4ways "$T/a.qcow2" "$T/a.qcow2.want"
}

l1_off() { get_be64 "$1" 40; }
l2_off() { echo $(( $(get_be64 "$1" "$(l1_off "$1")") & 0x00fffffffffffe00 )); }

@test "qcow2 v2 (compat=0.10)" { qcow2_4ways compat=0.10; }
@test "qcow2 v3" { qcow2_4ways compat=1.1; }
@test "qcow2 512 B clusters" { qcow2_4ways cluster_size=512; }

@test "qcow2 preallocation=metadata: clusters mapped to holes of the file are zeros, not read (file); the same bytes from a pipe" {
	# Every cluster is mapped and none written (libvirt makes these):
	# from a file the holes are not read, as qemu-img's block status
	# skips them.  The old reader read all 1 GiB of them.
	qemu-img create -q -f qcow2 -o preallocation=metadata "$T/p.qcow2" 1G
	qemu-io -c "write -P 0x5a 300M 64k" "$T/p.qcow2" > /dev/null
	want "$T/p.qcow2"
	holes_not_read "$T/p.qcow2" "$T/p.qcow2.want"
	[ "$(du -k "$T/holes.raw" | cut -f1)" -lt 1024 ]
}
@test "qcow2 4 KiB clusters" { qcow2_4ways cluster_size=4k; }
@test "qcow2 64 KiB clusters" { qcow2_4ways cluster_size=64k; }
@test "qcow2 2 MiB clusters" { qcow2_4ways cluster_size=2M; }
@test "qcow2 zlib compressed" { qcow2_4ways -c; }
@test "qcow2 zlib compressed, v2, 512 B clusters" { qcow2_4ways -c compat=0.10,cluster_size=512; }
@test "qcow2 zlib compressed, 2 MiB clusters" { qcow2_4ways -c cluster_size=2M; }
@test "qcow2 zstd compressed" { qcow2_4ways -c compression_type=zstd; }
@test "qcow2 zstd compressed, 4 KiB clusters" { qcow2_4ways -c compression_type=zstd,cluster_size=4k; }
@test "qcow2 extended L2, 64 KiB clusters" { qcow2_4ways extended_l2=on,cluster_size=64k; }
@test "qcow2 extended L2, 128 KiB clusters" { qcow2_4ways extended_l2=on,cluster_size=128k; }

@test "qcow2 extended L2: partly written and zeroed subclusters" {
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k "$T/e.qcow2" 3M
	qemu-io -c 'write -P 7 4k 4k' -c 'write -P 8 130k 9k' -c 'write -z 300k 8k' \
		-c 'write -P 9 1M 2k' -c 'write -P 10 3068k 4k' "$T/e.qcow2" >/dev/null
	qemu-io -c 'write -z 132k 4k' "$T/e.qcow2" >/dev/null
	want "$T/e.qcow2"
	img2raw_4ways "$T/e.qcow2" "$T/e.qcow2.want"
}

@test "qcow2 zero clusters (write -z, with and without unmap)" {
	qcow2 "$T/z.qcow2"
	qemu-io -c 'write -z 0 64k' -c 'write -z 1M 128k' -c 'write -z -u 196608 64k' \
		"$T/z.qcow2" >/dev/null
	want "$T/z.qcow2"
	cmp -s "$T/disk.raw" "$T/z.qcow2.want" && return 1	# the zeros landed
	img2raw_4ways "$T/z.qcow2" "$T/z.qcow2.want"
}

@test "qcow2 with a snapshot: only the active image is read" {
	qcow2 "$T/s.qcow2"
	qemu-img snapshot -c snap1 "$T/s.qcow2"
	qemu-io -c 'write -P 0x55 0 100k' -c 'write -P 0x66 3M 64k' -c 'write -z 1M 64k' \
		"$T/s.qcow2" >/dev/null
	want "$T/s.qcow2"
	cmp -s "$T/disk.raw" "$T/s.qcow2.want" && return 1
	img2raw_4ways "$T/s.qcow2" "$T/s.qcow2.want"
}

@test "qcow2 virtual size not a cluster multiple" {
	# qemu-img rounds sizes to 512 bytes: 1000448 is 15.27 clusters
	qemu-img create -q -f qcow2 "$T/o.qcow2" 1000001
	qemu-io -c 'write -P 3 0 200k' -c 'write -P 4 999424 1024' "$T/o.qcow2" >/dev/null
	want "$T/o.qcow2"
	[ "$(stat -c %s "$T/o.qcow2.want")" -eq 1000448 ]
	img2raw_4ways "$T/o.qcow2" "$T/o.qcow2.want"
}

@test "qcow2 L1 table moved after the data (resize)" {
	qcow2 "$T/r.qcow2" cluster_size=512
	qemu-img resize -q "$T/r.qcow2" 12M
	qemu-io -c 'write -P 5 10M 64k' "$T/r.qcow2" >/dev/null
	want "$T/r.qcow2"
	[ "$(l1_off "$T/r.qcow2")" -gt 65536 ]
	img2raw_4ways "$T/r.qcow2" "$T/r.qcow2.want"
}

# Every data cluster before the L2 table that maps it: the table is copied
# to the end of the file and the L1 entry pointed at the copy.
@test "qcow2 L2 table after its data: kept in the stash until it comes" {
	local l2 size new
	qcow2 "$T/m.qcow2"
	l2=$(l2_off "$T/m.qcow2")
	size=$(stat -c %s "$T/m.qcow2")
	new=$(( (size + 65535) / 65536 * 65536 ))
	truncate -s "$new" "$T/m.qcow2"
	dd if="$T/m.qcow2" of="$T/m.qcow2" bs=65536 skip=$((l2 / 65536)) \
		seek=$((new / 65536)) count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/m.qcow2" bs=65536 seek=$((l2 / 65536)) count=1 \
		conv=notrunc status=none
	put_be64 "$T/m.qcow2" "$(l1_off "$T/m.qcow2")" $(((1 << 63) | new))
	qemu-img convert -f qcow2 -O raw "$T/m.qcow2" "$T/moved.raw"
	cmp "$T/moved.raw" "$T/m.qcow2.want"
	img2raw_4ways "$T/m.qcow2" "$T/m.qcow2.want" --mem 256K
}

@test "qcow2 shuffled clusters: pipe to pipe through a spilled stash" {
	local i
	qemu-img create -q -f qcow2 "$T/sh.qcow2" 24M
	for i in $(seq 0 383 | shuf); do
		echo "write -P $((i % 250 + 1)) $((i * 65536)) 65536"
	done | qemu-io "$T/sh.qcow2" >/dev/null
	want "$T/sh.qcow2"
	mkdir "$T/tmp"
	TMPDIR=$T/tmp /usr/bin/time -f %M -o "$T/rss" \
		sh -c 'cat "$1" | img2raw --mem 1M | cat > "$2"' sh "$T/sh.qcow2" "$T/out.raw"
	cmp "$T/sh.qcow2.want" "$T/out.raw"
	echo "peak RSS $(cat "$T/rss") KiB"
	[ "$(tail -n1 "$T/rss")" -lt 65536 ]
	[ -z "$(ls -A "$T/tmp")" ]
	# and with an explicit --tmpdir
	cat "$T/sh.qcow2" | img2raw --mem 64K --tmpdir "$T/tmp" | cmp - "$T/sh.qcow2.want"
	[ -z "$(ls -A "$T/tmp")" ]
}

@test "qcow2 compressed and shuffled: pipe to pipe" {
	local i
	qemu-img create -q -f qcow2 "$T/cs.qcow2" 4M
	for i in $(seq 0 63 | shuf); do
		echo "write -c -P $((i + 1)) $((i * 65536)) 65536"
	done | qemu-io "$T/cs.qcow2" >/dev/null
	want "$T/cs.qcow2"
	img2raw_4ways "$T/cs.qcow2" "$T/cs.qcow2.want" --mem 128K
}

# From a pipe a compressed cluster's bytes are given back once read, unless
# an entry still ahead names them again.
@test "qcow2: L2 entries naming one compressed cluster read alike from a file and a pipe" {
	local l2 e
	qcow2 "$T/cd.qcow2" -c
	l2=$(l2_off "$T/cd.qcow2")
	e=$(get_be64 "$T/cd.qcow2" $((l2 + 8)))
	[ $((e >> 62 & 1)) -eq 1 ]
	put_be64 "$T/cd.qcow2" $((l2 + 16)) "$e"
	put_be64 "$T/cd.qcow2" $((l2 + 8 * 20)) "$e"
	want "$T/cd.qcow2"
	img2raw_4ways "$T/cd.qcow2" "$T/cd.qcow2.want" --mem 256K
}

@test "qcow2 dirty bit: accepted (only refcounts may be stale)" {
	qcow2 "$T/d.qcow2" lazy_refcounts=on
	put_be32 "$T/d.qcow2" 76 1
	img2raw_4ways "$T/d.qcow2" "$T/d.qcow2.want"
}

@test "qcow2 reject: backing file" {
	qemu-img create -q -f qcow2 "$T/base.qcow2" 1M
	qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/ov.qcow2"
	img2raw_rejects qcow2 "$T/ov.qcow2" "backing file '$(ere "$T/base.qcow2")'"
}

@test "qcow2 reject: external data file" {
	qemu-img create -q -f qcow2 -o data_file="$T/data.raw" "$T/df.qcow2" 1M
	img2raw_rejects qcow2 "$T/df.qcow2" "external data file"
}

@test "qcow2 reject: LUKS encryption" {
	# LUKS times its key derivation by the thread's CPU time, which some
	# virtual machines do not count ("Unable to get accurate CPU usage",
	# five tries in a row in a CI replay): then a plain qcow2 whose
	# header says LUKS (crypt_method 2 at byte 32), which is what the
	# reader refuses on
	local i made=
	for i in 1 2 3; do
		qemu-img create -q -f qcow2 --object secret,id=sec0,data=abc \
			-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
			"$T/luks.qcow2" 1M && { made=1; break; }
	done
	if [ -z "$made" ]; then
		rm -f "$T/luks.qcow2"
		qemu-img create -q -f qcow2 "$T/luks.qcow2" 1M
		put_be32 "$T/luks.qcow2" 32 2
	fi
	[ "$(get_be32 "$T/luks.qcow2" 32)" = 2 ]
	img2raw_rejects qcow2 "$T/luks.qcow2" 'encrypted \(LUKS\)'
}

@test "qcow2 reject: AES encryption" {
	qemu-img create -q -f qcow2 --object secret,id=sec0,data=abc \
		-o encryption=on,encrypt.key-secret=sec0 "$T/aes.qcow2" 1M
	img2raw_rejects qcow2 "$T/aes.qcow2" 'encrypted \(AES\)'
}

@test "qcow2 reject: corrupt bit" {
	qcow2 "$T/c.qcow2"
	put_be32 "$T/c.qcow2" 76 2
	img2raw_rejects qcow2 "$T/c.qcow2" "marked corrupt"
}

@test "qcow2 reject: unknown incompatible feature bit" {
	qcow2 "$T/u.qcow2"
	put_be32 "$T/u.qcow2" 76 $((1 << 9))
	img2raw_rejects qcow2 "$T/u.qcow2" "unknown incompatible feature bits 0x200"
}

@test "qcow2 reject: version and cluster_bits" {
	qcow2 "$T/v.qcow2"
	cp "$T/v.qcow2" "$T/w.qcow2"
	put_be32 "$T/v.qcow2" 4 4
	img2raw_rejects qcow2 "$T/v.qcow2" "version 4 is not supported"
	put_be32 "$T/w.qcow2" 20 22
	img2raw_rejects qcow2 "$T/w.qcow2" "cluster_bits 22 is out of range"
}

@test "qcow2 reject: L1 table offset unaligned, or past the end" {
	qcow2 "$T/l.qcow2"
	cp "$T/l.qcow2" "$T/m.qcow2"
	put_be64 "$T/l.qcow2" 40 $(( $(l1_off "$T/l.qcow2") + 512 ))
	img2raw_rejects qcow2 "$T/l.qcow2" "L1 table offset 0x[0-9a-f]+ is not cluster aligned"
	put_be64 "$T/m.qcow2" 40 $((1 << 40))
	# from a pipe too, once the input ends first: one message both ways
	img2raw_rejects qcow2 "$T/m.qcow2" "^L1 table at 0x10000000000 lies past the end of the image$"
}

@test "qcow2 reject: L2 table past the end of the image" {
	qcow2 "$T/l.qcow2"
	put_be64 "$T/l.qcow2" "$(l1_off "$T/l.qcow2")" $(((1 << 63) | (1 << 36)))
	img2raw_rejects qcow2 "$T/l.qcow2" "^L2 table at 0x1000000000 lies past the end of the image$"
}

@test "qcow2 reject: metadata overlapping metadata" {
	qcow2 "$T/l.qcow2"
	cp "$T/l.qcow2" "$T/m.qcow2"
	cp "$T/l.qcow2" "$T/n.qcow2"
	# L1 table on the refcount table
	put_be64 "$T/l.qcow2" 40 "$(get_be64 "$T/l.qcow2" 48)"
	img2raw_rejects qcow2 "$T/l.qcow2" "overlaps the refcount table"
	# L2 table on the L1 table
	put_be64 "$T/m.qcow2" "$(l1_off "$T/m.qcow2")" "$(l1_off "$T/m.qcow2")"
	img2raw_rejects qcow2 "$T/m.qcow2" "L2 table at 0x[0-9a-f]+ overlaps the L1 table"
	# L2 table in the header cluster
	put_be64 "$T/n.qcow2" "$(l1_off "$T/n.qcow2")" 0
	put_be64 "$T/n.qcow2" "$(l1_off "$T/n.qcow2")" 512
	img2raw_rejects qcow2 "$T/n.qcow2" "L2 table .*is not cluster aligned"
}

@test "qcow2 reject: L2 entry pointing at metadata" {
	qcow2 "$T/l.qcow2"
	cp "$T/l.qcow2" "$T/m.qcow2"
	put_be64 "$T/l.qcow2" "$(l2_off "$T/l.qcow2")" $(((1 << 63) | $(l1_off "$T/l.qcow2")))
	img2raw_rejects qcow2 "$T/l.qcow2" "L2 entry for virtual offset 0x0 points at the L1 table"
	put_be64 "$T/m.qcow2" $(( $(l2_off "$T/m.qcow2") + 8 )) $(((1 << 63) | $(l2_off "$T/m.qcow2")))
	img2raw_rejects qcow2 "$T/m.qcow2" "L2 entry for virtual offset 0x10000 points at the L2 table"
}

@test "qcow2 reject: data cluster unaligned or past the end" {
	qcow2 "$T/l.qcow2"
	cp "$T/l.qcow2" "$T/m.qcow2"
	put_be64 "$T/l.qcow2" "$(l2_off "$T/l.qcow2")" $(((1 << 63) | (1 << 30) | 512))
	img2raw_rejects qcow2 "$T/l.qcow2" "data cluster offset 0x40000200 \\(virtual 0x0\\) is not cluster aligned"
	put_be64 "$T/m.qcow2" "$(l2_off "$T/m.qcow2")" $(((1 << 63) | (1 << 40)))
	img2raw_rejects qcow2 "$T/m.qcow2" "data cluster at 0x10000000000 \\(virtual 0x0\\) lies past the end of the image$"
}

@test "qcow2 reject: corrupt compressed cluster" {
	qcow2 "$T/c.qcow2" -c
	local ent coff
	ent=$(get_be64 "$T/c.qcow2" "$(l2_off "$T/c.qcow2")")
	coff=$((ent & ((1 << 54) - 1)))
	printf 'garbage!garbage!' | dd of="$T/c.qcow2" bs=1 seek="$coff" conv=notrunc status=none
	img2raw_rejects qcow2 "$T/c.qcow2" "compressed cluster at 0x[0-9a-f]+ \\(virtual 0x0\\) does not decompress to 65536 bytes"
}

@test "qcow2 reject: virtual size needing an L1 table beyond the cap" {
	qemu-img create -q -f qcow2 -o cluster_size=512 "$T/big.qcow2" 1M
	put_be64 "$T/big.qcow2" 24 $((1 << 45))
	img2raw_rejects qcow2 "$T/big.qcow2" "needs an L1 table of 8589934592 bytes, more than the limit"
	qcow2 "$T/l1.qcow2"
	put_be32 "$T/l1.qcow2" 36 $((1 << 28))
	img2raw_rejects qcow2 "$T/l1.qcow2" "L1 table of 2147483648 bytes is more than the limit"
}

@test "qcow2 reject: L1 table too small for the virtual size" {
	qcow2 "$T/s.qcow2" cluster_size=4k
	put_be32 "$T/s.qcow2" 36 1
	img2raw_rejects qcow2 "$T/s.qcow2" "L1 table has 1 entries; the virtual size needs 3"
}

truncated() {	# [-c] [OPTIONS]
	qcow2 "$T/t.qcow2" "$@"
	run truncation_check "$T/t.qcow2" 16
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "qcow2 truncated: v3 64 KiB" { truncated; }
@test "qcow2 truncated: v2 512 B clusters" { truncated compat=0.10,cluster_size=512; }
@test "qcow2 truncated: zlib compressed" { truncated -c; }
@test "qcow2 truncated: zstd, extended L2" { truncated -c compression_type=zstd,extended_l2=on; }

@test "qcow2: a data cluster named by two L2 entries is shared-block, from a file and a pipe" {
	qcow2 "$T/a.qcow2"
	local l2 e0
	l2=$(l2_off "$T/a.qcow2")
	e0=$(get_be64 "$T/a.qcow2" "$l2")
	put_be64 "$T/a.qcow2" $((l2 + 8)) "$e0"
	img2raw_rejects qcow2 "$T/a.qcow2" "data cluster at 0x[0-9a-f]+ is referenced twice"
	codes_both "$T/a.qcow2" shared-block
}

@test "qcow2: an L2 entry into the L1 table is overlap, from a file and a pipe" {
	qcow2 "$T/a.qcow2"
	put_be64 "$T/a.qcow2" "$(l2_off "$T/a.qcow2")" "$(l1_off "$T/a.qcow2")"
	codes_both "$T/a.qcow2" overlap
}

# The whole-sector rule (img2raw(1)): a declared size is rounded up to
# 512 bytes, what the image maps there included; qemu gives 0 bytes here.
@test "qcow2: a virtual size of 127 bytes is one whole sector, from a file and a pipe" {
	qcow2 "$T/a.qcow2"
	put_be64 "$T/a.qcow2" 24 127
	sized "$T/a.qcow2" 512
	head -c 512 "$T/disk.raw" > "$T/want"
	img2raw_4ways "$T/a.qcow2" "$T/want"
	imginfo "$T/a.qcow2" | grep -q "virtual size: .*(512 bytes)"
}

@test "qcow2: imginfo --strict fails every one of 24 cuts, file and pipe alike" {
	qcow2 "$T/a.qcow2"
	cuts_check "$T/a.qcow2" 24
	qcow2 "$T/c.qcow2" -c
	cuts_check "$T/c.qcow2" 24
}

@test "qcow2: mutated images agree from a file and a pipe, and with qemu-img" {
	qcow2 "$T/a.qcow2"
	run mutants_check qcow2 "$T/a.qcow2" 32
	echo "$output"
	[ "$status" -eq 0 ]
}
