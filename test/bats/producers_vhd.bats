# VHD and VHDX as other tools write them (test/producers, issues 13 and
# 14): Hyper-V, Disk2vhd, VirtualBox, Virtual PC, Azure, XenServer and
# FreeBSD mkimg VHDs; Hyper-V (clean and with a log to replay) and
# Disk2vhd VHDX.  Each converts to the producer's disk four ways (file or
# pipe in, file or pipe out), gets one imginfo verdict from a file and a
# pipe, agrees with qemu-img where qemu-img is right and with libyal's
# pyvhdi, and cut short is refused both ways with one finding code.
# Where qemu-img 7.2 is wrong (it sizes 'vbox', '*img' and Azure's 'wa\0\0'
# by their CHS geometry and cuts the disk's end off; it replays a log
# across a sequence gap) the test asserts our choice.
load helpers
load formats

GEN=$BATS_TEST_DIRNAME/../producers/gen.py

# Every image once per run, small: the quirks do not depend on the size.
setup_file() {
	local p size
	for p in hyperv-vhd:8m disk2vhd-vhd:8m virtualbox-vhd:8m \
	    virtualpc-vhd:8m azure-fixed-vhd:8m xenserver-vhd:8m mkimg-vhd:8m \
	    mkimg-vhdf:8m disk2vhd-vhdx:8m hyperv-vhdx:8m hyperv-vhdx-log:8m \
	    hyperv-vhdx-log-torn:8m hyperv-vhdx-log-gap:8m; do
		size=${p#*:} p=${p%:*}
		python3 "$GEN" "$p" "$BATS_FILE_TMPDIR/$p.img" --size "$size" \
		    --raw "$BATS_FILE_TMPDIR/$p.raw" > /dev/null
	done
	for p in hyperv-vhdx-log-badcrc hyperv-vhdx-log-badguid; do
		# corrupt: no disk to give, gen.py says so with status 2
		python3 "$GEN" "$p" "$BATS_FILE_TMPDIR/$p.img" --size 8m > /dev/null
	done
}

P() { echo "$BATS_FILE_TMPDIR/$1.img"; }
R() { echo "$BATS_FILE_TMPDIR/$1.raw"; }

# pyvhdi IMAGE OUT: the disk as libyal's libvhdi reads it.
pyvhdi_read() {
	/usr/bin/python3 -c '
import pyvhdi, sys
f = pyvhdi.file()
f.open(sys.argv[1])
n = f.get_media_size()
out = open(sys.argv[2], "wb")
while n > 0:
    b = f.read_buffer(min(n, 1 << 20))
    if not b:
        sys.exit("short read")
    out.write(b)
    n -= len(b)' "$1" "$2"
}

# json_both IMAGE: imginfo --output json from a file ($T/info.f) and a
# pipe ($T/info.p), both exit 0.
json_both() {
	imginfo --output json "$1" > "$T/info.f"
	cat "$1" | imginfo --output json - > "$T/info.p"
}

# same_verdict IMAGE VERDICT: one verdict and finding code both ways.
same_verdict() {
	local f p
	f=$(imginfo --output json "$1" | first_code)
	p=$(cat "$1" | imginfo --output json - | first_code)
	echo "file: $f; pipe: $p"
	[ "$f" = "$p" ]
	[ "${f#* }" = "$2" ]
}

# json_key FILE KEY: the value of KEY in imginfo's JSON (first match).
json_key() {
	grep -o "\"$2\": *[^,}]*" "$1" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'
}

# producer_reads P: the disk four ways, imginfo safe both ways with the
# same virtual size, pyvhdi runs.
producer_reads() {
	img2raw_4ways "$(P "$1")" "$(R "$1")"
	same_verdict "$(P "$1")" safe
	json_both "$(P "$1")"
	[ "$(json_key "$T/info.f" virtual-size)" = "$(stat -c %s "$(R "$1")")" ]
	[ "$(json_key "$T/info.p" virtual-size)" = "$(stat -c %s "$(R "$1")")" ]
	vhdiinfo "$(P "$1")" > /dev/null
}

# qemu_equal P: qemu-img -f FORMAT reads the producer's disk as we do.
qemu_equal() {
	qemu-img convert -f "$2" -O raw "$(P "$1")" "$T/q.raw"
	cmp "$(R "$1")" "$T/q.raw"
}

# pyvhdi_equal P
pyvhdi_equal() {
	pyvhdi_read "$(P "$1")" "$T/y.raw"
	cmp "$(R "$1")" "$T/y.raw"
}

# qemu_geometry_cut P CREATOR: qemu-img 7.2 sizes this creator by its CHS
# geometry: its disk is a proper prefix of ours, as long as imginfo's
# qemu-img-size says, and the sector it drops is the backup GPT header
# where the producer writes a GPT.
qemu_geometry_cut() {
	local ours qemu
	qemu-img convert -f vpc -O raw "$(P "$1")" "$T/q.raw"
	ours=$(stat -c %s "$(R "$1")") qemu=$(stat -c %s "$T/q.raw")
	echo "ours $ours, qemu-img $qemu"
	[ "$qemu" -lt "$ours" ]
	cmp -n "$qemu" "$(R "$1")" "$T/q.raw"
	imginfo --output json "$(P "$1")" > "$T/info.f"
	[ "$(json_key "$T/info.f" qemu-img-size | cut -d' ' -f1)" = "$qemu" ]
	[ "$(json_key "$T/info.f" size-rule)" = "$2" ]
}

last_sector_is_gpt() {
	[ "$(tail -c 512 "$1" | head -c 8)" = "EFI PART" ]
}

@test "producers vhd: Hyper-V 'win ' dynamic (BAT padded to 4 KiB): four ways, qemu-img, pyvhdi" {
	producer_reads hyperv-vhd
	qemu_equal hyperv-vhd vpc
	pyvhdi_equal hyperv-vhd
}

@test "producers vhd: Disk2vhd 'd2v\\0' (maximum CHS, every block, out of order): current_size, qemu-img and pyvhdi agree" {
	producer_reads disk2vhd-vhd
	qemu_equal disk2vhd-vhd vpc
	pyvhdi_equal disk2vhd-vhd
	json_both "$(P disk2vhd-vhd)"
	[ "$(json_key "$T/info.f" size-rule)" = current_size ]
	[ "$(json_key "$T/info.p" size-rule)" = current_size ]
}

@test "producers vhd: XenServer 'tap\\0' with a batmap after the BAT: four ways, qemu-img, pyvhdi" {
	producer_reads xenserver-vhd
	qemu_equal xenserver-vhd vpc
	pyvhdi_equal xenserver-vhd
}

@test "producers vhd: VirtualBox 'vbox' is its current_size with the backup GPT; qemu-img 7.2 cuts it to the geometry" {
	producer_reads virtualbox-vhd
	pyvhdi_equal virtualbox-vhd
	last_sector_is_gpt "$(R virtualbox-vhd)"
	qemu_geometry_cut virtualbox-vhd current_size
}

@test "producers vhd: FreeBSD mkimg '*img' dynamic is its current_size with the backup GPT; qemu-img 7.2 cuts it" {
	producer_reads mkimg-vhd
	pyvhdi_equal mkimg-vhd
	last_sector_is_gpt "$(R mkimg-vhd)"
	qemu_geometry_cut mkimg-vhd current_size
}

@test "producers vhd: FreeBSD mkimg fixed (whole cylinders): qemu-img -f vpc and pyvhdi agree" {
	producer_reads mkimg-vhdf
	qemu_equal mkimg-vhdf vpc
	pyvhdi_equal mkimg-vhdf
}

@test "producers vhd: Azure fixed 'wa\\0\\0' is every byte before the footer; qemu-img 7.2 probes it as raw and -f vpc cuts it" {
	producer_reads azure-fixed-vhd
	pyvhdi_equal azure-fixed-vhd
	qemu_geometry_cut azure-fixed-vhd "the bytes before the footer"
	# probed, qemu-img 7.2 calls it raw and gives the footer as disk data
	qemu-img convert -O raw "$(P azure-fixed-vhd)" "$T/q.raw"
	cmp "$(P azure-fixed-vhd)" "$T/q.raw"
	# from a pipe imginfo cannot see the footer before it judges the
	# format: raw, with the footer not counted (imginfo(1))
	json_both "$(P azure-fixed-vhd)"
	[ "$(json_key "$T/info.f" format)" = vpc ]
	[ "$(json_key "$T/info.p" format)" = raw ]
}

@test "producers vhd: Virtual PC 'vpc ' is its CHS geometry, as qemu-img; pyvhdi's current_size adds only zeros" {
	producer_reads virtualpc-vhd
	qemu_equal virtualpc-vhd vpc
	json_both "$(P virtualpc-vhd)"
	[ "$(json_key "$T/info.f" size-rule)" = "geometry (creator sizes by CHS)" ]
	pyvhdi_read "$(P virtualpc-vhd)" "$T/y.raw"
	n=$(stat -c %s "$(R virtualpc-vhd)")
	[ "$(stat -c %s "$T/y.raw")" -gt "$n" ]
	cmp -n "$n" "$(R virtualpc-vhd)" "$T/y.raw"
	tail -c +$((n + 1)) "$T/y.raw" > "$T/extra"
	cmp -n "$(stat -c %s "$T/extra")" "$T/extra" /dev/zero
}

@test "producers vhdx: Hyper-V (32 MiB blocks, zero blocks, stale log of an old GUID) and Disk2vhd (identical headers, trailing bytes): qemu-img, pyvhdi" {
	for p in hyperv-vhdx disk2vhd-vhdx; do
		producer_reads $p
		qemu_equal $p vhdx
		pyvhdi_equal $p
	done
}

@test "producers vhdx: Hyper-V log left by an unclean shutdown is replayed from a file and a pipe; qemu-img refuses it read-only and agrees after its own repair" {
	for p in hyperv-vhdx-log:2 hyperv-vhdx-log-torn:1; do
		n=${p#*:} p=${p%:*}
		producer_reads $p
		json_both "$(P $p)"
		grep -q '"dirty-flag": true' "$T/info.f"
		grep -q '"dirty-flag": true' "$T/info.p"
		grep -q '"log": "replayed '"$n"' entries' "$T/info.f"
		grep -q '"log": "replayed '"$n"' entries' "$T/info.p"
		run qemu-img convert -f vhdx -O raw "$(P $p)" "$T/q.raw"
		[ "$status" -ne 0 ]
		[[ "$output" == *"contains a log that needs to be replayed"* ]]
		cp "$(P $p)" "$T/repaired.vhdx"
		qemu-img check -q -r all "$T/repaired.vhdx"
		qemu-img convert -f vhdx -O raw "$T/repaired.vhdx" "$T/q.raw"
		cmp "$(R $p)" "$T/q.raw"
		# libvhdi ignores the log: it reads the stale disk
		pyvhdi_read "$(P $p)" "$T/y.raw"
		run cmp -s "$(R $p)" "$T/y.raw"
		[ "$status" -eq 1 ]
	done
}

@test "producers vhdx: a log whose second entry skips a sequence number replays only the first; qemu-img's repair replays both (its bug)" {
	producer_reads hyperv-vhdx-log-gap
	cp "$(P hyperv-vhdx-log-gap)" "$T/repaired.vhdx"
	qemu-img check -q -r all "$T/repaired.vhdx"
	qemu-img convert -f vhdx -O raw "$T/repaired.vhdx" "$T/q.raw"
	run cmp -s "$(R hyperv-vhdx-log-gap)" "$T/q.raw"
	[ "$status" -eq 1 ]
}

@test "producers vhdx: a log the header names but no valid entry carries (bad CRC, other GUID) is refused from a file and a pipe; qemu-img opens it as clean" {
	for p in hyperv-vhdx-log-badcrc hyperv-vhdx-log-badguid; do
		img2raw_rejects vhdx "$(P $p)" "^log: the header names a log, but no valid sequence of entries carries its GUID"
		same_verdict "$(P $p)" unsafe
		qemu-img convert -f vhdx -O raw "$(P $p)" "$T/q.raw"
	done
}

# cut_points IMAGE OFFSET...: cut there, img2raw refuses from a file and
# a pipe, imginfo --strict exits 1 both ways with one finding code.
cut_points() {
	local img=$1 n fst pst fcode pcode
	shift
	for n in "$@"; do
		head -c "$n" "$img" > "$T/cut"
		fst=0 pst=0
		img2raw "$T/cut" > /dev/null 2> "$T/cut.err" || fst=$?
		cat "$T/cut" | img2raw > /dev/null 2>> "$T/cut.err" || pst=$?
		if [ $fst != 1 ] || [ $pst != 1 ]; then
			echo "cut at $n: img2raw file $fst pipe $pst: $(cat "$T/cut.err")"
			return 1
		fi
		fst=0 pst=0
		imginfo --strict --output json "$T/cut" > "$T/cut.f.json" || fst=$?
		cat "$T/cut" | imginfo --strict --output json - > "$T/cut.p.json" || pst=$?
		fcode=$(first_code < "$T/cut.f.json")
		pcode=$(first_code < "$T/cut.p.json")
		if [ $fst != 1 ] || [ $pst != 1 ] || [ "$fcode" != "$pcode" ] ||
		    [ "${fcode% *}" = none ]; then
			echo "cut at $n: imginfo file $fst $fcode, pipe $pst $pcode"
			return 1
		fi
	done
}

@test "producers vhd: cut in the dynamic header, the BAT, a block and the footer: refused from a file and a pipe with one finding" {
	local p size
	for p in hyperv-vhd disk2vhd-vhd virtualbox-vhd xenserver-vhd mkimg-vhd; do
		size=$(stat -c %s "$(P $p)")
		echo "$p"
		cut_points "$(P $p)" 1024 2048 $((size / 2)) $((size - 512)) $((size - 1))
	done
	truncation_check "$(P hyperv-vhd)"
}

@test "producers vhdx: cut in the headers, the log, the BAT, a block and the end: refused from a file and a pipe with one finding" {
	local p size
	for p in disk2vhd-vhdx hyperv-vhdx-log; do
		size=$(stat -c %s "$(P $p)")
		echo "$p"
		cut_points "$(P $p)" 70000 $((1024 * 1024 + 4096)) $((3 * 1024 * 1024)) \
		    $((size / 2)) $((size - 513))
	done
	# Disk2vhd's 512 zero bytes after the last block are no part of any
	# block: without them the disk is whole, from a file and a pipe
	p=disk2vhd-vhdx size=$(stat -c %s "$(P $p)")
	head -c $((size - 512)) "$(P $p)" > "$T/short.vhdx"
	img2raw_4ways "$T/short.vhdx" "$(R $p)"
	same_verdict "$T/short.vhdx" safe
}
