# The writers' file output (lib/io/wfile.c): a large gathered write goes
# in two halves on two threads, so that the pages it takes come from both
# processors; a failed half is the writer's write error.
load helpers

WRITERS=("raw2qcow2" "raw2vmdk -s monolithicSparse" "raw2vhd -s dynamic"
	"raw2vhdx" "raw2vdi" "raw2ploop")

setup_file() {
	export D=$BATS_FILE_TMPDIR/dense.raw
	head -c 32M /dev/urandom > "$D"
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
