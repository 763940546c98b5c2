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

# The pwritev calls strace (-f, to $1) saw end: "TID BYTES" a line.
# strace -f splits a call the other thread interrupts in two lines:
# "pwritev(... <unfinished ...>", "<... pwritev resumed>"; the result is
# on the second.
ended_calls() {
	grep -E 'pwritev(\(| resumed).*= [0-9]+$' "$1" | awk '{print $1, $NF}'
}

# Where the writers' output goes in the tests below: $T, and a tmpfs
# (where writes are not cut to 1 MiB).  Each line "DIR FSTYPE".
output_dirs() {
	mkdir -p "$SHM_T"
	printf '%s %s\n' "$T" "$(stat -f -c %T "$T")" \
	    "$SHM_T" "$(stat -f -c %T "$SHM_T")"
}

setup() {
	SHM_T=/dev/shm/imgpipe-wfile.$$.$BATS_TEST_NUMBER
}

teardown() {
	rm -rf "$SHM_T"
}

# Check the calls in strace output $1 of a writer that wrote $2 gathered
# writes of 4 MiB on $3 threads to a file system of type $4: on tmpfs each
# thread's share in one call (2 MiB, or 4 MiB from one thread), elsewhere
# in calls of at most 1 MiB (WFILE_CALL_MAX).
check_calls() {
	local st=$1 n=$2 threads=$3 fs=$4
	[ "$(ended_calls "$st" | awk '{print $1}' | sort -u | wc -l)" -eq "$threads" ]
	if [ "$fs" = tmpfs ]; then
		# a gathered write plus a grain's header: 4 MiB and a little
		if [ "$threads" -eq 2 ]; then
			[ "$(ended_calls "$st" | grep -c -E ' 209[0-9]{4}$')" -eq $((n * 2)) ]
		else
			[ "$(ended_calls "$st" | grep -c -E ' 419[0-9]{4}$')" -eq "$n" ]
		fi
	else
		[ "$(ended_calls "$st" | awk '$2 > 1048576' | wc -l)" -eq 0 ]
		[ "$(ended_calls "$st" | grep -c ' 1048576$')" -ge $((n * 4)) ]
	fi
}

@test "every planned writer: 4 MiB of grains go as two halves on two threads (a disk's in 1 MiB writes); img2raw and qemu-img read the disk back" {
	local w dir fs
	while read -r dir fs; do
		for w in "${WRITERS[@]}"; do
			strace -f -e trace=pwritev -o "$T/st" $w -o "$dir/out" "$D"
			echo "$w into $fs: $(ended_calls "$T/st" | awk '{print $2}' | sort | uniq -c | sort -rn | head -3 | tr '\n' ' ')"
			check_calls "$T/st" 8 2 "$fs"
			img2raw "$dir/out" | cmp - "$D"
			# another reader: qemu-img's (a VHD it cuts to the CHS
			# geometry's size, as README says: compare that much)
			qemu-img convert -O raw "$dir/out" "$T/back"
			if [ "${w%% *}" = raw2vhd ]; then
				cmp -n "$(stat -c %s "$T/back")" "$T/back" "$D"
			else
				cmp "$T/back" "$D"
			fi
			rm -f "$T/back" "$dir/out"
		done
	done < <(output_dirs)
}

@test "-j 1: every planned writer writes a file from one thread, 4 MiB a write (a disk's in 1 MiB writes), the same image" {
	local w dir fs
	while read -r dir fs; do
		for w in "${WRITERS[@]}"; do
			strace -f -e trace=pwritev -o "$T/st" $w -j 1 -o "$dir/one" "$D"
			echo "$w -j 1 into $fs"
			check_calls "$T/st" 8 1 "$fs"
			img2raw "$dir/one" | cmp - "$D"
			[ "${w%% *}" = raw2vmdk ] && continue	# its CID is random
			$w -o "$dir/two" "$D"
			cmp "$dir/one" "$dir/two"
			rm -f "$dir/one" "$dir/two"
		done
	done < <(output_dirs)
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

@test "real producers' disks with 8 MiB of data into every planned writer: into a file in halves (a disk's 1 MiB a call), into a pipe whole; from a file and from a pipe, the same bytes, the disk back" {
	local w p
	for w in "${WRITERS[@]}"; do
		for p in $PRODUCERS; do
			strace -f -e trace=pwritev -o "$T/st" $w -o "$T/ff" "$P/$p.img"
			grep -q -E 'pwritev(\(| resumed).*= [0-9]{7,}$' "$T/st" ||
				{ echo "$w $p: no write of a MiB or more"; return 1; }
			[ "$(grep 'pwritev' "$T/st" | awk '{print $1}' | sort -u | wc -l)" -eq 2 ] ||
				{ echo "$w $p: not on two threads"; return 1; }
			[ "$(stat -f -c %T "$T")" = tmpfs ] ||
				[ "$(ended_calls "$T/st" | awk '$2 > 1048576' | wc -l)" -eq 0 ] ||
				{ echo "$w $p: a write over 1 MiB to a disk's file"; return 1; }
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
