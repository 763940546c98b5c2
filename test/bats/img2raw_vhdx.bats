# img2raw: VHDX, fixed and dynamic, several block sizes, against qemu-img.
load helpers

SIZE=6000000
MIB=1048576
RT1=196608	# region tables at 192 KiB and 256 KiB, headers at 64 and 128 KiB
RT2=262144

setup() {
	make_pattern "$T/disk.raw" $SIZE
}

# vhdx IMAGE OPTIONS: convert the pattern, and the oracle's raw.
vhdx() {
	qemu-img convert -f raw -O vhdx -o "$2" "$T/disk.raw" "$1"
	qemu-img convert -f vhdx -O raw "$1" "$1.want"
}

# crc FILE OFFSET LENGTH: set the CRC-32C at OFFSET+4 of the structure,
# as every VHDX header, region table and log entry has it.
crc() {
	python3 "$BATS_TEST_DIRNAME/vhdx_log.py" crc "$@"
}

# Both headers, fixed up after a change: ONE_HEADER_FIELD VALUE BYTES.
patch_headers() {
	local h
	for h in 65536 131072; do
		put_le "$T/x.vhdx" $((h + $1)) "$2" "$3"
		crc "$T/x.vhdx" $h 4096
	done
}

bat_off() { get_le64 "$T/x.vhdx" $((RT1 + 32)); }	# qemu: BAT entry first
meta_off() { get_le64 "$T/x.vhdx" $((RT1 + 64)); }

@test "vhdx dynamic, block sizes 1M 8M 32M: byte-identical, four ways" {
	for bs in 1M 8M 32M; do
		vhdx "$T/d.vhdx" "subformat=dynamic,block_size=$bs"
		img2raw_4ways "$T/d.vhdx" "$T/d.vhdx.want"
	done
}

@test "vhdx fixed, block sizes 1M 8M 32M: byte-identical, four ways" {
	for bs in 1M 8M 32M; do
		vhdx "$T/f.vhdx" "subformat=fixed,block_size=$bs"
		img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want"
		img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want" -f vhdx
	done
}

@test "vhdx: default block size and a 4 MiB log, four ways" {
	vhdx "$T/d.vhdx" "subformat=dynamic,log_size=4M"
	img2raw_4ways "$T/d.vhdx" "$T/d.vhdx.want"
	vhdx "$T/f.vhdx" "subformat=fixed,log_size=8M,block_size=2M"
	img2raw_4ways "$T/f.vhdx" "$T/f.vhdx.want"
}

@test "vhdx: an empty dynamic disk is all zeros" {
	truncate -s 64M "$T/zero.raw"
	qemu-img convert -f raw -O vhdx "$T/zero.raw" "$T/z.vhdx"
	qemu-img convert -f vhdx -O raw "$T/z.vhdx" "$T/z.want"
	img2raw_4ways "$T/z.vhdx" "$T/z.want"
}

@test "vhdx: BAT and metadata after the data, from a pipe via the stash" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	end=$(stat -c %s "$T/x.vhdx")
	bat=$(bat_off) meta=$(meta_off)
	dd if="$T/x.vhdx" of="$T/x.vhdx" bs=$MIB skip=$((bat / MIB)) seek=$((end / MIB)) count=1 conv=notrunc status=none
	dd if="$T/x.vhdx" of="$T/x.vhdx" bs=$MIB skip=$((meta / MIB)) seek=$((end / MIB + 1)) count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/x.vhdx" bs=$MIB seek=$((bat / MIB)) count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/x.vhdx" bs=$MIB seek=$((meta / MIB)) count=1 conv=notrunc status=none
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 32)) "$end" 8
		put_le "$T/x.vhdx" $((rt + 64)) $((end + MIB)) 8
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want"
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want" --mem 1M
}

@test "vhdx: blocks stored out of virtual order" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	bat=$(bat_off)
	a=$(get_le64 "$T/x.vhdx" "$bat")
	b=$(get_le64 "$T/x.vhdx" $((bat + 8)))
	put_le "$T/x.vhdx" "$bat" "$b" 8
	put_le "$T/x.vhdx" $((bat + 8)) "$a" 8
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB skip=1 count=1 status=none
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB seek=1 count=1 conv=notrunc status=none
	dd if="$T/x.vhdx.want" of="$T/want" bs=$MIB skip=2 seek=2 conv=notrunc status=none
	img2raw_4ways "$T/x.vhdx" "$T/want"
}

@test "vhdx: one bad header or region table: the other copy is used" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((65536 + 4)) 1 4
	put_le "$T/x.vhdx" $((RT1 + 4)) 1 4
	img2raw_4ways "$T/x.vhdx" "$T/x.vhdx.want"
}

@test "vhdx: bad CRCs of both headers are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((65536 + 4)) 1 4
	put_le "$T/x.vhdx" $((131072 + 4)) 1 4
	img2raw_rejects vhdx "$T/x.vhdx" "^neither header is valid \\(signature 'head', version 1 and CRC-32C checked at 0x10000 and 0x20000\\)$"
}

@test "vhdx: bad CRCs of both region tables are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $((RT1 + 4)) 1 4
	put_le "$T/x.vhdx" $((RT2 + 4)) 1 4
	img2raw_rejects vhdx "$T/x.vhdx" "^neither region table is valid \\(signature 'regi' and CRC-32C checked at 0x30000 and 0x40000\\)$"
}

@test "vhdx: a BAT entry pointing outside the file is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" $(((1 << 40) | 6)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 at 0x10000000000 lies past the end of the image \\(BAT entry\\)$"
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" $(((2 << 20) | 6)) 8	# onto the BAT itself
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 at 0x200000 overlaps the .+ \\(BAT entry\\)$"
}

@test "vhdx: partially present blocks and unknown states are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" "$(bat_off)" 7 1
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 is partially present, which only a differencing disk may be \\(BAT entry state\\)$"
	put_le "$T/x.vhdx" "$(bat_off)" 5 1
	img2raw_rejects vhdx "$T/x.vhdx" "^block 0 has unknown state 5 \\(BAT entry state\\)$"
}

@test "vhdx: huge declared sizes are rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65544)) $((1 << 50)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^virtual size 1125899906842624 is beyond the limit of 70368744177664 bytes \\(virtual disk size\\)$"
	# within the limit, but far more blocks than the BAT region holds
	put_le "$T/x.vhdx" $(($(meta_off) + 65544)) $((1 << 45)) 8
	img2raw_rejects vhdx "$T/x.vhdx" "^BAT region of 1048576 bytes is too small for 4194304 blocks \\(region table BAT length\\)$"
	# a block size that is no power of two
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65536)) 3000000 4
	img2raw_rejects vhdx "$T/x.vhdx" "^block size 3000000 is not a power of two from 1 MiB to 256 MiB \\(file parameters block_size\\)$"
	# a region table entry far past the end
	vhdx "$T/x.vhdx" "subformat=dynamic"
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 32)) $((1 << 50)) 8
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_rejects vhdx "$T/x.vhdx" "^BAT region at 0x4000000000000 lies past the end of the image$"
}

@test "vhdx: a differencing disk is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	put_le "$T/x.vhdx" $(($(meta_off) + 65540)) 2 4
	img2raw_rejects vhdx "$T/x.vhdx" "^differencing disk: its data depends on the parent disk 'unnamed', which is never opened \\(file parameters has_parent\\)$"
}

# log_entry IMAGE LOGOFF SEQ TAIL FLUSHED WRITES...: write one log entry
# at LOGOFF (vhdx_log.py entry: data:FILEOFF:FROMOFF, zero:FILEOFF:LENGTH;
# PATCH8, BADCRC).
log_entry() {
	python3 "$BATS_TEST_DIRNAME/vhdx_log.py" entry "$@"
}

# a qemu VHDX of 1 MiB blocks whose header asks for a log replay
dirty_vhdx() {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	patch_headers 48 $((0x1122334455667788)) 8
	LOG=$(get_le64 "$T/x.vhdx" $((65536 + 72)))
	BAT=$(bat_off)
	B1=$(($(get_le64 "$T/x.vhdx" $((BAT + 8))) >> 20 << 20))	# block 1
	END=$(stat -c %s "$T/x.vhdx")
}

@test "vhdx log: an entry's BAT write and zero run are replayed, from a file and a pipe" {
	dirty_vhdx
	# block 0 unmapped (BAT sector with entry 0 = 0), 4 KiB of block 1 cleared
	PATCH8=0 log_entry "$T/x.vhdx" "$LOG" 7 0 "$END" "data:$BAT:$BAT" "zero:$((B1 + 8192)):4096"
	cp "$T/x.vhdx.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=$MIB count=1 conv=notrunc status=none
	dd if=/dev/zero of="$T/want" bs=4096 seek=$((MIB / 4096 + 2)) count=1 conv=notrunc status=none
	img2raw_4ways "$T/x.vhdx" "$T/want"
	img2raw_4ways "$T/x.vhdx" "$T/want" --mem 1M
	run imginfo --strict "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"log: replayed 1 entries (sequence numbers 7 to 7)"* ]]
	run sh -c 'cat "$1" | imginfo --strict -' sh "$T/x.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *"log: replayed 1 entries"* ]]
}

@test "vhdx log, sparse on the host: the log is replayed, the holes of the file are zeros, not read (file); the same bytes from a pipe" {
	# A fixed VHDX as Hyper-V's, every block present, those never
	# written holes of the file (qemu-img marks zero blocks unallocated
	# instead): the old reader read every byte of a file with a log to
	# replay, holes and all.
	truncate -s 256M "$T/big.raw"
	make_pattern "$T/p" $MIB
	dd if="$T/p" of="$T/big.raw" bs=$MIB seek=1 conv=notrunc status=none
	raw2vhdx -s fixed --block-size 1M -o "$T/x.vhdx" "$T/big.raw"
	[ "$(du -k "$T/x.vhdx" | cut -f1)" -lt 8192 ]
	patch_headers 48 $((0x1122334455667788)) 8
	LOG=$(get_le64 "$T/x.vhdx" $((65536 + 72)))
	B1=$(($(get_le64 "$T/x.vhdx" $(($(bat_off) + 8))) >> 20 << 20))
	# 4 KiB of block 1's data cleared, and 4 KiB of block 9 (a hole of
	# the file) given the first sector of block 1
	log_entry "$T/x.vhdx" "$LOG" 7 0 "$(stat -c %s "$T/x.vhdx")" \
	    "zero:$((B1 + 8192)):4096" "data:$((B1 + 8 * MIB)):$B1"
	cp "$T/big.raw" "$T/want"
	dd if=/dev/zero of="$T/want" bs=4096 seek=$((MIB / 4096 + 2)) count=1 conv=notrunc status=none
	dd if="$T/p" of="$T/want" bs=4096 count=1 seek=$((9 * MIB / 4096)) conv=notrunc status=none
	holes_not_read "$T/x.vhdx" "$T/want"
	run imginfo --strict "$T/x.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *"log: replayed 1 entries"* ]]
}

@test "vhdx log: 40 random entries replayed as a model of the log says, from a file with holes and from a pipe" {
	# zero runs and data sectors at random offsets, overlapping and
	# across blocks: the reader splits each run at the log's writes; the
	# model is the producers' own replay (test/producers/vhdx.py)
	truncate -s 64M "$T/r.raw"
	for mb in 0 3 9 40 63; do	# half a block of its own bytes each
		head -c $((MIB / 2)) /dev/urandom |
		    dd of="$T/r.raw" bs=$MIB seek=$mb conv=notrunc status=none
	done
	raw2vhdx -s fixed --block-size 1M -o "$T/base.vhdx" "$T/r.raw"
	for seed in $(seq 40); do
		cp "$T/base.vhdx" "$T/x.vhdx"
		cp "$T/r.raw" "$T/want"
		python3 "$BATS_TEST_DIRNAME/vhdx_log.py" random "$T/x.vhdx" "$T/want" $seed
		[ $((seed % 2)) = 1 ] || fallocate --dig-holes "$T/x.vhdx"
		img2raw -o "$T/got" "$T/x.vhdx" || { echo "seed $seed: file"; false; }
		cmp "$T/want" "$T/got" || { echo "seed $seed: file"; false; }
		cat "$T/x.vhdx" | img2raw > "$T/got"
		cmp "$T/want" "$T/got" || { echo "seed $seed: pipe"; false; }
	done
}

@test "vhdx log: a header naming a log no valid entry carries is refused" {
	dirty_vhdx
	img2raw_rejects vhdx "$T/x.vhdx" "log: the header names a log, but no valid sequence"
	BADCRC=1 log_entry "$T/x.vhdx" "$LOG" 7 0 "$END" "zero:$B1:4096"
	img2raw_rejects vhdx "$T/x.vhdx" "no valid sequence"
	# a tail that names no entry of the sequence
	log_entry "$T/x.vhdx" "$LOG" 7 4096 "$END" "zero:$B1:4096"
	img2raw_rejects vhdx "$T/x.vhdx" "no valid sequence"
}

@test "vhdx log: the newest valid sequence wins; a torn or skipped entry ends it" {
	dirty_vhdx
	log_entry "$T/x.vhdx" "$LOG" 7 0 "$END" "zero:$B1:4096"
	log_entry "$T/x.vhdx" $((LOG + 4096)) 8 0 "$END" "zero:$((B1 + 4096)):4096"
	cp "$T/x.vhdx.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=4096 seek=$((MIB / 4096)) count=2 conv=notrunc status=none
	img2raw_4ways "$T/x.vhdx" "$T/want"
	# entry 2 skips a sequence number: only entry 1
	log_entry "$T/x.vhdx" $((LOG + 4096)) 9 0 "$END" "zero:$((B1 + 4096)):4096"
	cp "$T/x.vhdx.want" "$T/want"
	dd if=/dev/zero of="$T/want" bs=4096 seek=$((MIB / 4096)) count=1 conv=notrunc status=none
	img2raw_4ways "$T/x.vhdx" "$T/want"
	# entry 2 torn
	BADCRC=1 log_entry "$T/x.vhdx" $((LOG + 4096)) 8 0 "$END" "zero:$((B1 + 4096)):4096"
	img2raw_4ways "$T/x.vhdx" "$T/want"
}

@test "vhdx log: a file shorter than the FlushedFileOffset is truncated, from a file and a pipe alike" {
	dirty_vhdx
	log_entry "$T/x.vhdx" "$LOG" 7 0 $((END + 4 * MIB)) "zero:$B1:4096"
	run img2raw -o "$T/out" "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"log: the file ends at 0x"*"before the FlushedFileOffset"* ]]
	file_msg=$output
	run sh -c 'cat "$1" | img2raw > /dev/null' sh "$T/x.vhdx"
	[ "$status" -eq 1 ]
	[ "$output" = "${file_msg/"$T/x.vhdx"/stdin}" ]
	run imginfo --output json "$T/x.vhdx"
	[[ "$output" == *'"code": "truncated"'* ]]
	run sh -c 'cat "$1" | imginfo --output json -' sh "$T/x.vhdx"
	[[ "$output" == *'"code": "truncated"'* ]]
}

@test "vhdx log: an entry writing into the header area or the log is refused" {
	dirty_vhdx
	log_entry "$T/x.vhdx" "$LOG" 7 0 "$END" "zero:65536:4096"
	img2raw_rejects vhdx "$T/x.vhdx" "in the header area or the log itself"
	log_entry "$T/x.vhdx" "$LOG" 7 0 "$END" "zero:$((LOG + 65536)):4096"
	img2raw_rejects vhdx "$T/x.vhdx" "in the header area or the log itself"
}

@test "vhdx log: a log over 64 MiB is refused with its own finding" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	patch_headers 48 $((0x1122334455667788)) 8
	patch_headers 68 $((128 * MIB)) 4
	img2raw_rejects vhdx "$T/x.vhdx" "larger than the 64 MiB"
	run imginfo --output json "$T/x.vhdx"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"code": "log-size"'* ]]
}

@test "vhdx: an unknown required region is rejected" {
	vhdx "$T/x.vhdx" "subformat=dynamic"
	for rt in $RT1 $RT2; do
		put_le "$T/x.vhdx" $((rt + 8)) 3 4
		printf 'unknown region!!' | dd of="$T/x.vhdx" bs=1 seek=$((rt + 80)) conv=notrunc status=none
		put_le "$T/x.vhdx" $((rt + 96)) $((8 * MIB)) 8
		put_le "$T/x.vhdx" $((rt + 104)) $MIB 4
		put_le "$T/x.vhdx" $((rt + 108)) 1 4
		crc "$T/x.vhdx" $rt 65536
	done
	img2raw_rejects vhdx "$T/x.vhdx" "^unknown required region in the region table \\(entry 2\\)$"
}

@test "vhdx: truncated images fail cleanly at many points" {
	# run: truncation_check expects failing commands not to stop it
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	run truncation_check "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	vhdx "$T/x.vhdx" "subformat=fixed,block_size=1M"
	run truncation_check "$T/x.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
}

# verdict IMAGE MODE: "STATUS CODES" of imginfo --strict --output json.
verdict() {
	local st=0 out
	if [ "$2" = file ]; then
		out=$(imginfo --strict --output json "$1" 2>/dev/null) || st=$?
	else
		out=$(cat "$1" | imginfo --strict --output json - 2>/dev/null) || st=$?
	fi
	echo "$st $(echo "$out" | grep -o '"code": "[^"]*"' | tr '\n' ' ')"
}

# agree IMAGE: the same status, message and codes from a file and a pipe.
agree() {
	local f p
	f=$(img2raw -o /dev/null "$1" 2>&1; echo "status $?")
	f=${f/"img2raw: $1: "/"img2raw: stdin: "}	# messages name the input
	p=$(cat "$1" | img2raw 2>&1 > /dev/null; echo "status $?")
	[ "$f" = "$p" ] || { echo "img2raw: file: $f / pipe: $p"; return 1; }
	f=$(verdict "$1" file)
	p=$(verdict "$1" pipe)
	[ "$f" = "$p" ] || { echo "imginfo: file: $f / pipe: $p"; return 1; }
	echo "$f"
}

@test "vhdx: cut at 64 points, imginfo --strict exits 1 from a file and a pipe, naming the finding" {
	for sub in dynamic fixed; do
		vhdx "$T/x.vhdx" "subformat=$sub,block_size=1M"
		size=$(stat -c %s "$T/x.vhdx")
		for i in $(seq 1 64); do
			head -c $((size * i / 65)) "$T/x.vhdx" > "$T/cut"
			for mode in file pipe; do
				v=$(verdict "$T/cut" $mode)
				echo "$sub cut $i ($mode): $v"
				[[ "$v" == "1 \"code\": "* ]]
			done
		done
	done
}

@test "vhdx: BAT entries into the regions, duplicated, overlapping or past the end: the same verdict from a file and a pipe" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	bat=$(bat_off)
	e0=$(get_le64 "$T/x.vhdx" "$bat")
	size=$(stat -c %s "$T/x.vhdx")
	for c in "$(((bat >> 20 << 20) | 6)):overlap" "$(((1 << 19) | 6)):overlap" \
	    "$e0:shared-block" "$((((size >> 20) + 4) << 20 | 6)):truncated"; do
		cp "$T/x.vhdx" "$T/m.vhdx"
		put_le "$T/m.vhdx" $((bat + 8)) "${c%%:*}" 8
		run agree "$T/m.vhdx"
		echo "entry ${c%%:*}: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == "1 \"code\": \"${c#*:}\""* ]]
	done
}

@test "vhdx: header and table bit flips give the same verdict from a file and a pipe" {
	vhdx "$T/x.vhdx" "subformat=dynamic,block_size=1M"
	meta=$(meta_off)
	bat=$(bat_off)
	for off in 0 65544 65604 131080 196616 196640 262152 $meta $((meta + 10)) \
	    $((meta + 65536)) $((meta + 65544)) $bat $((bat + 3)); do
		cp "$T/x.vhdx" "$T/m.vhdx"
		v=$(od -An -tu1 -j $off -N1 "$T/m.vhdx" | tr -d ' ')
		put_le "$T/m.vhdx" $off $((v ^ 0x10)) 1
		run agree "$T/m.vhdx"
		echo "flip at $off: $output"
		[ "$status" -eq 0 ]
	done
}
