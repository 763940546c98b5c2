# img2raw: QED images made by qemu-img, compared with qemu-img's raw.
load helpers
load formats

# a small QED with 64 KiB clusters: L1 at 0x10000, first L2 table after it.
small_qed() {
	make_pattern "$T/p.raw" 3000000
	qemu-img convert -f raw -O qed "$T/p.raw" "$T/h.qed"
	L1=$(get_le64 "$T/h.qed" 40)
	L2=$(get_le64 "$T/h.qed" "$L1")
	D0=$(get_le64 "$T/h.qed" "$L2")
}

@test "qed: converted by qemu-img, several sizes and cluster sizes, four ways" {
	local size cs
	for size in 5000000 1049088 3145728; do
		make_pattern "$T/p.raw" "$size"
		for cs in 4K 64K 1M; do
			qemu-img convert -f raw -O qed -o cluster_size=$cs \
				"$T/p.raw" "$T/d.qed"
			qemu-img convert -f qed -O raw "$T/d.qed" "$T/want.raw"
			img2raw_4ways "$T/d.qed" "$T/want.raw" ||
				{ echo "size $size cluster $cs"; return 1; }
		done
	done
}

@test "qed: table sizes 2 and 16, and -f qed" {
	local ts
	make_pattern "$T/p.raw" 5000000
	for ts in 2 16; do
		qemu-img convert -f raw -O qed -o cluster_size=4K,table_size=$ts \
			"$T/p.raw" "$T/d.qed"
		qemu-img convert -f qed -O raw "$T/d.qed" "$T/want.raw"
		img2raw_4ways "$T/d.qed" "$T/want.raw" -f qed || { echo "table $ts"; return 1; }
	done
}

@test "qed: 2 MiB clusters (the largest qemu-img makes with default tables), four ways" {
	make_pattern "$T/p.raw" 5000000
	qemu-img convert -f raw -O qed -o cluster_size=2M "$T/p.raw" "$T/d.qed"
	qemu-img convert -f qed -O raw "$T/d.qed" "$T/want.raw"
	img2raw_4ways "$T/d.qed" "$T/want.raw"
}

@test "qed: 8 MiB clusters, larger than the read buffer, parked whole from a pipe" {
	# Hand-made, with the expected disk made alongside: qemu-img can
	# neither create nor read it (its maximum-size product overflows).
	# Header, L1, the data of virtual cluster 1, the L2 table, the data
	# of virtual cluster 0.
	local f=$T/big.qed M=$((8 << 20))
	truncate -s $((7 * M)) "$f"
	printf 'QED\0' | dd of="$f" conv=notrunc status=none
	put_le "$f" 4 "$M" 4; put_le "$f" 8 2 4; put_le "$f" 12 1 4
	put_le "$f" 40 "$M" 8; put_le "$f" 48 $((2 * M)) 8
	put_le "$f" "$M" $((4 * M)) 8
	put_le "$f" $((4 * M)) $((6 * M)) 8; put_le "$f" $((4 * M + 8)) $((3 * M)) 8
	yes cluster-one | head -c 100000 | dd of="$f" bs=1M seek=24 conv=notrunc status=none
	yes cluster-zero | head -c 100000 | dd of="$f" bs=1M seek=48 conv=notrunc status=none
	truncate -s $((2 * M)) "$T/want.raw"
	yes cluster-zero | head -c 100000 | dd of="$T/want.raw" conv=notrunc status=none
	yes cluster-one | head -c 100000 | dd of="$T/want.raw" bs=1M seek=8 conv=notrunc status=none
	img2raw_4ways "$f" "$T/want.raw"
}

@test "qed: a 64 GiB disk with 2 MiB of data converts in seconds, holes kept" {
	big_sparse_check qed
}

@test "qed: empty image reads as zeros of its virtual size" {
	qemu-img create -f qed "$T/e.qed" 3M > /dev/null
	truncate -s 3M "$T/want.raw"
	img2raw_4ways "$T/e.qed" "$T/want.raw"
}

@test "qed: clusters written in shuffled order, data before its L2 tables, zero clusters" {
	# 4 KiB clusters, 2-cluster tables: each L2 table maps 4 MiB, so the
	# 13 MiB disk has 4 tables, allocated in the order of the writes.
	qemu-img create -f qed -o cluster_size=4K,table_size=2 "$T/s.qed" 13M > /dev/null
	qemu-io -f qed \
		-c "write -P 0x11 9M 4K" -c "write -P 0x22 0 4K" \
		-c "write -P 0x55 8K 8K" -c "write -z 8K 4K" \
		-c "write -P 0x33 4M 12K" -c "write -P 0x44 12M 64K" \
		-c "write -P 0x66 64K 4K" -c "write -P 0x77 5M 8K" \
		-c "write -P 0x88 13308K 4K" "$T/s.qed" > /dev/null
	qemu-img convert -f qed -O raw "$T/s.qed" "$T/want.raw"
	cat "$T/s.qed" | img2raw | cat > "$T/pp.raw"
	cmp "$T/want.raw" "$T/pp.raw"
	img2raw_4ways "$T/s.qed" "$T/want.raw"
	# the same through a stash small enough to spill to $TMPDIR
	cat "$T/s.qed" | TMPDIR=$T img2raw --mem 4K | cat > "$T/pp.raw"
	cmp "$T/want.raw" "$T/pp.raw"
}

@test "qed: image marked QED_F_NEED_CHECK is read as it is" {
	small_qed
	qemu-img convert -f qed -O raw "$T/h.qed" "$T/want.raw"
	put_le "$T/h.qed" 16 2 8
	img2raw_4ways "$T/h.qed" "$T/want.raw"
}

@test "qed: backing file is rejected, naming it" {
	make_pattern "$T/base.raw" 1048576
	qemu-img create -f qed -b "$T/base.raw" -F raw "$T/b.qed" > /dev/null
	img2raw_rejects qed "$T/b.qed" "backing file '$(ere "$T/base.raw")'"
}

@test "qed: hostile header fields" {
	small_qed
	local f=$T/x.qed v
	for v in 0 3000 512 1073741824 65535; do
		cp "$T/h.qed" "$f"; put_le "$f" 4 "$v" 4
		img2raw_rejects qed "$f" "^cluster_size $v is not a power of two from 4 KiB to 64 MiB \\(header offset 4\\)$" || { echo "cluster_size $v"; return 1; }
	done
	for v in 0 3 32; do
		cp "$T/h.qed" "$f"; put_le "$f" 8 "$v" 4
		img2raw_rejects qed "$f" "^table_size $v is not a power of two from 1 to 16 \\(header offset 8\\)$" || { echo "table_size $v"; return 1; }
	done
	cp "$T/h.qed" "$f"; put_le "$f" 12 4000000000 4
	img2raw_rejects qed "$f" \
		"^header_size of 4000000000 clusters is zero or too large \\(header offset 12\\)$"
	cp "$T/h.qed" "$f"; put_le "$f" 16 16 8
	img2raw_rejects qed "$f" "^unsupported feature bits 0x10 \\(header offset 16\\)$"
	for v in $((1 << 62)) 1000 -512; do
		cp "$T/h.qed" "$f"; put_le "$f" 48 "$v" 8
		img2raw_rejects qed "$f" \
			"^image_size [0-9]+ is not a multiple of 512 or more than the tables can map \\(header offset 48\\)$" || { echo "image_size $v"; return 1; }
	done
	cp "$T/h.qed" "$f"; put_le "$f" 40 $((1 << 40)) 8
	img2raw_rejects qed "$f" \
		"^L1 table at 0x10000000000 lies past the end of the image \\(l1_table_offset\\)$"
	for v in 4096 0; do
		cp "$T/h.qed" "$f"; put_le "$f" 40 "$v" 8
		img2raw_rejects qed "$f" \
			"^L1 table at $(printf 0x%x "$v") lies inside the header \\(l1_table_offset\\)$" || { echo "l1 $v"; return 1; }
	done
	cp "$T/h.qed" "$f"; put_le "$f" 40 $((L1 + 4096)) 8
	img2raw_rejects qed "$f" \
		"^L1 table at $(printf 0x%x $((L1 + 4096))) is not cluster aligned \\(l1_table_offset\\)$"
}

@test "qed: hostile tables: outside the file, misaligned, loops, duplicates" {
	small_qed
	local f=$T/x.qed
	cp "$T/h.qed" "$f"; put_le "$f" "$L1" $((1 << 40)) 8
	img2raw_rejects qed "$f" "^L2 table at 0x10000000000 lies past the end of the image \\(L1 entry 0\\)$"
	cp "$T/h.qed" "$f"; put_le "$f" "$L1" $((L2 + 512)) 8
	img2raw_rejects qed "$f" "^L2 table at $(printf 0x%x $((L2 + 512))) is not cluster aligned \\(L1 entry 0\\)$"
	# an L2 table that is the L1 table: a loop
	cp "$T/h.qed" "$f"; put_le "$f" "$L1" "$L1" 8
	img2raw_rejects qed "$f" "^L2 table at 0x10000 overlaps metadata$"
	# a data cluster past the end, misaligned, inside the header
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" $((1 << 40)) 8
	img2raw_rejects qed "$f" "^data cluster at 0x10000000000 lies past the end of the image \\(L2 entry for virtual offset 0x0\\)$"
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" $((D0 + 4096)) 8
	img2raw_rejects qed "$f" "^data cluster at $(printf 0x%x $((D0 + 4096))) is not cluster aligned \\(L2 entry for virtual offset 0x0\\)$"
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" 0 8; put_le "$f" $((L2 + 8)) 65536 8
	img2raw_rejects qed "$f" "^data cluster at 0x10000 overlaps metadata$"
	# a data cluster that is its own L2 table
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" "$L2" 8
	img2raw_rejects qed "$f" "^data cluster at $(printf 0x%x "$L2") overlaps metadata$"
	# two entries naming one cluster
	cp "$T/h.qed" "$f"; put_le "$f" $((L2 + 8)) "$D0" 8
	img2raw_rejects qed "$f" "^data cluster at $(printf 0x%x "$D0") is referenced twice$"
}

@test "qed: truncated images fail cleanly" {
	small_qed
	run truncation_check "$T/h.qed" 16
	echo "$output"
	[ "$status" -eq 0 ]
	head -c $(($(stat -c %s "$T/h.qed") - 65536)) "$T/h.qed" > "$T/cut.qed"
	img2raw_rejects qed "$T/cut.qed" "^data cluster at 0x[0-9a-f]+ lies past the end of the image \\(L2 entry for virtual offset 0x[0-9a-f]+\\)$"
}

@test "qed: two L2 entries naming one cluster are shared-block, a cluster in a table overlap, file and pipe" {
	small_qed
	local f=$T/x.qed
	cp "$T/h.qed" "$f"; put_le "$f" $((L2 + 8)) "$D0" 8
	codes_both "$f" shared-block
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" "$L1" 8
	codes_both "$f" overlap
	cp "$T/h.qed" "$f"; put_le "$f" "$L2" $((D0 + 4096)) 8
	codes_both "$f" misaligned
}

@test "qed: imginfo --strict fails every one of 24 cuts, file and pipe alike" {
	small_qed
	cuts_check "$T/h.qed" 24
}

@test "qed: mutated images agree from a file and a pipe, and with qemu-img" {
	small_qed
	run mutants_check qed "$T/h.qed" 32
	echo "$output"
	[ "$status" -eq 0 ]
}
