# Images from real producers (test/producers) straight into every writer
# and into ovacreate: from a file and from a pipe, into a file and into a
# pipe.  The two ways into each kind of output give the same bytes, and
# img2raw of every output is the producer's disk.
load helpers

PRODUCERS="vmware-ovftool-stream hyperv-vhdx-log disk2vhd-vhd virtualbox-vdi ploop-v2 mkimg-qcow2"

setup_file() {
	local p
	export P=$BATS_FILE_TMPDIR
	for p in $PRODUCERS; do
		python3 "$BATS_TEST_DIRNAME/../producers/gen.py" "$p" "$P/$p.img" \
			--size 4M --raw "$P/$p.raw" > /dev/null
	done
}

# into_writer WRITER: every producer's image, four ways, checked (the two
# files have one name: a VMDK's descriptor names its own file)
into_writer() {
	local w=$1 p
	mkdir -p "$T/f" "$T/p"
	for p in $PRODUCERS; do
		"$w" -o "$T/f/out" "$P/$p.img" || { echo "$w $p: file to file"; return 1; }
		(set -o pipefail; "$w" "$P/$p.img" | cat > "$T/fp") ||
			{ echo "$w $p: file to pipe"; return 1; }
		"$w" -o "$T/p/out" < <(cat "$P/$p.img") || { echo "$w $p: pipe to file"; return 1; }
		(set -o pipefail; "$w" < <(cat "$P/$p.img") | cat > "$T/pp") ||
			{ echo "$w $p: pipe to pipe"; return 1; }
		cmp "$T/f/out" "$T/p/out" || { echo "$w $p: into a file, file and pipe differ"; return 1; }
		cmp "$T/fp" "$T/pp" || { echo "$w $p: into a pipe, file and pipe differ"; return 1; }
		img2raw "$T/f/out" | cmp - "$P/$p.raw" || { echo "$w $p: file output"; return 1; }
		img2raw "$T/fp" | cmp - "$P/$p.raw" || { echo "$w $p: pipe output"; return 1; }
	done
}

@test "producers into raw2qcow2" { into_writer raw2qcow2; }
@test "producers into raw2vmdk" { into_writer raw2vmdk; }
@test "producers into raw2vhd" { into_writer raw2vhd; }
@test "producers into raw2vhdx" { into_writer raw2vhdx; }
@test "producers into raw2vdi" { into_writer raw2vdi; }
@test "producers into raw2ploop" { into_writer raw2ploop; }

@test "producers into ovacreate: file and pipe in, file and pipe out, the disk back" {
	local p
	for p in hyperv-vhdx-log vmware-ovftool-stream; do
		ovacreate --name x -o "$T/ff.ova" "$P/$p.img"
		(set -o pipefail; ovacreate --name x - < <(cat "$P/$p.img") | cat > "$T/pp.ova")
		(set -o pipefail; ovaextract "$T/ff.ova" | img2raw | cmp - "$P/$p.raw") ||
			{ echo "$p: from a file"; return 1; }
		(set -o pipefail; ovaextract < "$T/pp.ova" | img2raw | cmp - "$P/$p.raw") ||
			{ echo "$p: from a pipe"; return 1; }
	done
}

# The raw copy (lib/io/zcopy.c: a raw file's data runs copied whole, by
# copy_file_range or by our threads) over the producers' disks as sparse
# raw files, against the same disks through a pipe (the ordinary path).
@test "producers' disks as sparse raw files: img2raw and the fixed formats copy the data runs, the same bytes as from a pipe, four ways" {
	local p w
	for p in $PRODUCERS; do
		cp --sparse=always "$P/$p.raw" "$T/in.raw"
		img2raw -o "$T/ff.raw" "$T/in.raw"
		(set -o pipefail; img2raw "$T/in.raw" | cat > "$T/fp.raw")
		img2raw -f raw -o "$T/pf.raw" < <(cat "$T/in.raw")
		cmp "$P/$p.raw" "$T/ff.raw" && cmp "$P/$p.raw" "$T/fp.raw" &&
			cmp "$P/$p.raw" "$T/pf.raw" || { echo "$p: img2raw"; return 1; }
		for w in raw2vhd "raw2vhdx -s fixed" "raw2vdi -s static"; do
			$w -v -o "$T/ff.img" "$T/in.raw" 2> "$T/err" ||
				{ echo "$w $p: file to file"; return 1; }
			grep -q 'the data runs copied whole' "$T/err" ||
				{ echo "$w $p: not the raw copy"; cat "$T/err"; return 1; }
			(set -o pipefail; $w "$T/in.raw" | cat > "$T/fp.img")
			$w --size "$(stat -c %s "$T/in.raw")" -o "$T/pf.img" < <(cat "$T/in.raw")
			(set -o pipefail; $w --size "$(stat -c %s "$T/in.raw")" < <(cat "$T/in.raw") | cat > "$T/pp.img")
			cmp "$T/ff.img" "$T/fp.img" && cmp "$T/ff.img" "$T/pf.img" &&
				cmp "$T/ff.img" "$T/pp.img" || { echo "$w $p: ways differ"; return 1; }
			img2raw "$T/ff.img" | cmp - "$P/$p.raw" || { echo "$w $p: disk back"; return 1; }
		done
	done
}
