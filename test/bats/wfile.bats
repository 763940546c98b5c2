# The writers' file output (lib/io/wfile.c): a large gathered write goes
# in two halves on two threads, so that the pages it takes come from both
# processors; a failed half is the writer's write error.
load helpers

WRITERS=("raw2qcow2" "raw2vmdk -s monolithicSparse" "raw2vhd -s dynamic"
	"raw2vhdx" "raw2vdi" "raw2ploop")

# Real producers' layouts (test/producers), with a long run of data so
# that the writers' gathered writes reach the halves.
PRODUCERS="vmware-ovftool-stream hyperv-vhdx-log disk2vhd-vhd virtualbox-vdi ploop-v2 mkimg-qcow2"

setup_file() {
	local p
	export D=$BATS_FILE_TMPDIR/dense.raw P=$BATS_FILE_TMPDIR
	head -c 32M /dev/urandom > "$D"
	for p in $PRODUCERS; do
		python3 "$BATS_TEST_DIRNAME/../producers/gen.py" "$p" "$P/$p.img" \
			--size 32M --dense 8M --raw "$P/$p.raw" > /dev/null
	done
}

@test "every planned writer: 4 MiB of grains go as two pwritev halves on two threads; img2raw and qemu-img read the disk back" {
	local w halves tids
	for w in "${WRITERS[@]}"; do
		strace -f -e trace=pwritev -o "$T/st" $w -o "$T/out" "$D"
		# strace -f splits a call the other thread interrupts in two
		# lines: "pwritev(... <unfinished ...>", "<... pwritev resumed>"
		halves=$(grep -c -E 'pwritev(\(| resumed).*= 209[0-9]{4}$' "$T/st")
		tids=$(grep 'pwritev' "$T/st" | awk '{print $1}' | sort -u | wc -l)
		echo "$w: $halves halves of 2 MiB, $tids threads"
		[ "$halves" -eq 16 ]
		[ "$tids" -eq 2 ]
		img2raw "$T/out" | cmp - "$D"
		# another reader: qemu-img's (a VHD it cuts to the CHS geometry's
		# size, as README says: compare that much)
		qemu-img convert -O raw "$T/out" "$T/back"
		if [ "${w%% *}" = raw2vhd ]; then
			cmp -n "$(stat -c %s "$T/back")" "$T/back" "$D"
		else
			cmp "$T/back" "$D"
		fi
		rm -f "$T/back"
	done
}

@test "-j 1: every planned writer writes a file from one thread, whole 4 MiB writes, the same image" {
	local w tids
	for w in "${WRITERS[@]}"; do
		strace -f -e trace=pwritev -o "$T/st" $w -j 1 -o "$T/one" "$D"
		tids=$(grep 'pwritev' "$T/st" | awk '{print $1}' | sort -u | wc -l)
		echo "$w -j 1: $tids threads"
		[ "$tids" -eq 1 ]
		[ "$(grep -c -E 'pwritev\(.*= 419[0-9]{4}$' "$T/st")" -eq 8 ]
		img2raw "$T/one" | cmp - "$D"
		[ "${w%% *}" = raw2vmdk ] && continue	# its CID is random
		$w -o "$T/two" "$D"
		cmp "$T/one" "$T/two"
	done
}

@test "every planned writer: a failed half is a write error naming the output, exit 3, no output left" {
	local w name
	for w in "${WRITERS[@]}"; do
		name=${w%% *}
		for when in 1 2 7; do
			run strace -f -o /dev/null -e trace=pwritev \
			    -e inject=pwritev:error=ENOSPC:when=$when $w -o "$T/out" "$D"
			echo "$w, pwritev $when: $output"
			[ "$status" -eq 3 ]
			[ "$output" = "$name: $T/out: write error: No space left on device" ]
			[ ! -e "$T/out" ]
			[ -z "$(ls "$T")" ]
		done
	done
}

@test "real producers' disks with 8 MiB of data into every planned writer: into a file in halves, into a pipe whole; from a file and from a pipe, the same bytes, the disk back" {
	local w p
	for w in "${WRITERS[@]}"; do
		for p in $PRODUCERS; do
			strace -f -e trace=pwritev -o "$T/st" $w -o "$T/ff" "$P/$p.img"
			grep -q -E 'pwritev(\(| resumed).*= [0-9]{7,}$' "$T/st" ||
				{ echo "$w $p: no write of a MiB or more"; return 1; }
			[ "$(grep 'pwritev' "$T/st" | awk '{print $1}' | sort -u | wc -l)" -eq 2 ] ||
				{ echo "$w $p: not on two threads"; return 1; }
			$w -o "$T/pf" < <(cat "$P/$p.img")
			(set -o pipefail; $w "$P/$p.img" | cat > "$T/fp")
			(set -o pipefail; $w < <(cat "$P/$p.img") | cat > "$T/pp")
			if [ "${w%% *}" != raw2vmdk ]; then	# its CID is random
				cmp "$T/ff" "$T/pf" || { echo "$w $p: into a file"; return 1; }
				cmp "$T/fp" "$T/pp" || { echo "$w $p: into a pipe"; return 1; }
			fi
			for o in ff pf fp pp; do
				img2raw "$T/$o" | cmp - "$P/$p.raw" ||
					{ echo "$w $p: $o: not the disk"; return 1; }
			done
		done
	done
}
