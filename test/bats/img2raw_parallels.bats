# img2raw: Parallels / ploop images made by qemu-img, compared with
# qemu-img's raw.
load helpers
load formats

# to_v1 IMAGE: rewrite a ploop (v2) image as an old "WithoutFreeSpace"
# one, whose BAT counts sectors instead of clusters (one python process:
# a shell loop spawned two processes per BAT entry).
to_v1() {
	python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    h = bytearray(f.read(64))
    tracks, n = struct.unpack_from("<II", h, 28)
    bat = list(struct.unpack("<%dI" % n, f.read(4 * n)))
    f.seek(0)
    f.write(b"WithoutFreeSpace")
    f.seek(64)
    f.write(struct.pack("<%dI" % n, *[v * tracks for v in bat]))
PY
}

@test "parallels: converted by qemu-img, several sizes and cluster sizes, four ways" {
	local size cs
	for size in 5000000 1049088 3145728; do
		make_pattern "$T/p.raw" "$size"
		for cs in default 4K 64K 256K; do
			if [ $cs = default ]; then
				qemu-img convert -f raw -O parallels "$T/p.raw" "$T/d.prl"
			else
				qemu-img convert -f raw -O parallels -o cluster_size=$cs \
					"$T/p.raw" "$T/d.prl"
			fi
			qemu-img convert -f parallels -O raw "$T/d.prl" "$T/want.raw"
			img2raw_4ways "$T/d.prl" "$T/want.raw" ||
				{ echo "size $size cluster $cs"; return 1; }
		done
	done
}

@test "parallels: old WithoutFreeSpace images (BAT in sectors), and -f parallels" {
	local cs
	make_pattern "$T/p.raw" 5000000
	for cs in 64K 1M; do
		qemu-img convert -f raw -O parallels -o cluster_size=$cs "$T/p.raw" "$T/d.prl"
		to_v1 "$T/d.prl"
		qemu-img convert -f parallels -O raw "$T/d.prl" "$T/want.raw"
		# qemu-img reads the rewritten image as the same disk
		cp "$T/p.raw" "$T/pad.raw"
		truncate -s "$(stat -c %s "$T/want.raw")" "$T/pad.raw"
		cmp "$T/want.raw" "$T/pad.raw"
		img2raw_4ways "$T/d.prl" "$T/want.raw" -f parallels || { echo "cluster $cs"; return 1; }
	done
}

@test "parallels: a 64 GiB disk with 2 MiB of data converts in seconds, holes kept" {
	big_sparse_check parallels
}

@test "parallels: empty image reads as zeros of its virtual size" {
	qemu-img create -f parallels "$T/e.prl" 3M > /dev/null
	truncate -s 3M "$T/want.raw"
	img2raw_4ways "$T/e.prl" "$T/want.raw"
}

@test "parallels: clusters written in shuffled order come back in place" {
	qemu-img create -f parallels -o cluster_size=64K "$T/s.prl" 7M > /dev/null
	qemu-io -f parallels \
		-c "write -P 0x11 5M 64K" -c "write -P 0x22 0 4K" \
		-c "write -P 0x33 3M 128K" -c "write -P 0x44 64K 64K" \
		-c "write -P 0x55 7100K 68K" -c "write -P 0x66 1M 8K" \
		"$T/s.prl" > /dev/null
	qemu-img convert -f parallels -O raw "$T/s.prl" "$T/want.raw"
	cat "$T/s.prl" | img2raw | cat > "$T/pp.raw"
	cmp "$T/want.raw" "$T/pp.raw"
	img2raw_4ways "$T/s.prl" "$T/want.raw"
	# the same through a stash small enough to spill to $TMPDIR
	cat "$T/s.prl" | TMPDIR=$T img2raw --mem 4K | cat > "$T/pp.raw"
	cmp "$T/want.raw" "$T/pp.raw"
}

@test "parallels: image still marked in use is read as it is" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels "$T/p.raw" "$T/h.prl"
	qemu-img convert -f parallels -O raw "$T/h.prl" "$T/want.raw"
	put_le "$T/h.prl" 44 $((0x746f6e59)) 4
	img2raw_4ways "$T/h.prl" "$T/want.raw"
}

@test "parallels: hostile header fields" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	local f=$T/x.prl v
	cp "$T/h.prl" "$f"; put_le "$f" 16 3 4
	img2raw_rejects parallels "$f" "^version 3 is not 2 \\(header offset 16\\)$"
	for v in 0 $((1 << 22)) $((0xffffffff)); do
		cp "$T/h.prl" "$f"; put_le "$f" 28 "$v" 4
		img2raw_rejects parallels "$f" \
			"^cluster size of $v sectors is zero or too large \\(tracks, header offset 28\\)$" || { echo "tracks $v"; return 1; }
	done
	cp "$T/h.prl" "$f"; put_le "$f" 32 1 4
	img2raw_rejects parallels "$f" "^1 BAT entries of 128 sectors cannot map [0-9]+ sectors \\(bat_entries, header offset 32\\)$"
	cp "$T/h.prl" "$f"; put_le "$f" 32 $((0xffffffff)) 4; put_le "$f" 36 $((1 << 60)) 8
	img2raw_rejects parallels "$f" "^virtual size of 1152921504606846976 sectors is beyond the limit of [0-9]+ bytes \\(nb_sectors, header offset 36\\)$"
	# a declared size the BAT allows but the file cannot hold
	cp "$T/h.prl" "$f"; put_le "$f" 32 $((0x3fffffff)) 4; put_le "$f" 36 $((1 << 36)) 8
	img2raw_rejects parallels "$f" "^data_off of 128 sectors lies inside the BAT \\(header offset 48\\)$"
	# the rules that need the input's end come after the others, from a
	# file as from a pipe: the first cluster before data_off is met first
	cp "$T/h.prl" "$f"; put_le "$f" 48 $((0xffffffff)) 4
	img2raw_rejects parallels "$f" "^BAT entry 0: cluster at 0x10000 lies before data_off$"
	# with no cluster allocated, data_off past the end is the fault
	qemu-img create -f parallels "$T/e.prl" 3M > /dev/null
	cp "$T/e.prl" "$f"; put_le "$f" 48 $((0xffffffff)) 4
	img2raw_rejects parallels "$f" \
		"^data_off of 4294967295 sectors lies past the end of the image \\(header offset 48\\)$"
	# with 4 KiB clusters the BAT is longer than a sector
	qemu-img convert -f raw -O parallels -o cluster_size=4K "$T/p.raw" "$T/h4.prl"
	cp "$T/h4.prl" "$f"; put_le "$f" 48 1 4
	img2raw_rejects parallels "$f" "^data_off of 1 sectors lies inside the BAT \\(header offset 48\\)$"
	cp "$T/h.prl" "$f"; put_le "$f" 56 $((1 << 60)) 8
	img2raw_rejects parallels "$f" \
		"^format extension at sector 1152921504606846976 lies past the end of the image \\(ext_off, header offset 56\\)$"
	cp "$T/h.prl" "$f"; put_le "$f" 56 $((1 << 30)) 8
	# from a pipe, found at the end of the input
	img2raw_rejects parallels "$f" \
		"^format extension at sector 1073741824 lies past the end of the image \\(ext_off, header offset 56\\)$"
}

@test "parallels: hostile BAT: outside the file, into the BAT, duplicates" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	local f=$T/x.prl b0
	b0=$(get_le32 "$T/h.prl" 64)
	cp "$T/h.prl" "$f"; put_le "$f" 64 $((0xffffffff)) 4
	img2raw_rejects parallels "$f" \
		"^BAT entry 0: cluster at 0xffffffff0000 lies past the end of the image$"
	cp "$T/h.prl" "$f"; put_le "$f" 68 "$b0" 4
	img2raw_rejects parallels "$f" "^BAT entry 1: cluster at 0x[0-9a-f]* is referenced twice"
	# v1: BAT entries count sectors, so entry 1 is inside the BAT
	qemu-img convert -f raw -O parallels -o cluster_size=4K "$T/p.raw" "$f"
	to_v1 "$f"; put_le "$f" 64 1 4
	img2raw_rejects parallels "$f" "^BAT entry 0: cluster at 0x200 overlaps the header and BAT$"
	# v1: a cluster between the BAT and data_off
	cp "$T/h.prl" "$f"; to_v1 "$f"; put_le "$f" 64 8 4
	img2raw_rejects parallels "$f" "^BAT entry 0: cluster at 0x1000 lies before data_off$"
	# v1: two clusters that overlap by one sector
	cp "$T/h.prl" "$f"; to_v1 "$f"; put_le "$f" 68 $((b0 * 128 + 127)) 4
	img2raw_rejects parallels "$f" \
		"^BAT entry 1: cluster at 0x1fe00 overlaps another cluster$"
}

@test "parallels: truncated images fail cleanly" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	run truncation_check "$T/h.prl" 16
	echo "$output"
	[ "$status" -eq 0 ]
	head -c $(($(stat -c %s "$T/h.prl") - 65536)) "$T/h.prl" > "$T/cut.prl"
	img2raw_rejects parallels "$T/cut.prl" "^BAT entry [0-9]+: cluster at 0x[0-9a-f]+ lies past the end of the image$"
}

@test "parallels: a cluster named twice is shared-block, a cluster in the BAT overlap, file and pipe" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	local f=$T/x.prl
	cp "$T/h.prl" "$f"; put_le "$f" 68 "$(get_le32 "$T/h.prl" 64)" 4
	codes_both "$f" shared-block
	# v1 with 4 KiB clusters: sector 1 is inside the BAT (with 64 KiB
	# clusters the BAT ends before it: that cluster lies before data_off)
	qemu-img convert -f raw -O parallels -o cluster_size=4K "$T/p.raw" "$f"
	to_v1 "$f"; put_le "$f" 64 1 4
	codes_both "$f" overlap
	cp "$T/h.prl" "$f"; to_v1 "$f"; put_le "$f" 64 1 4
	codes_both "$f" out-of-range
}

# data_end IMAGE: the end of the last cluster the BAT names (qemu-img
# preallocates past it: cuts there leave a whole image).
data_end() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
tracks, n = struct.unpack_from("<II", b, 28)
unit = tracks * 512 if b[:16] == b"WithouFreSpacExt" else 512
print(max(struct.unpack_from("<%dI" % n, b, 64)) * unit + tracks * 512)
PY
}

@test "parallels: imginfo --strict fails every one of 24 cuts, file and pipe alike" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	cuts_check "$T/h.prl" 24 "$(data_end "$T/h.prl")"
}

@test "parallels: mutated images agree from a file and a pipe, and with qemu-img" {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O parallels -o cluster_size=64K "$T/p.raw" "$T/h.prl"
	run mutants_check parallels "$T/h.prl" 32
	echo "$output"
	[ "$status" -eq 0 ]
}
