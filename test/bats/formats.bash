# Shared by the container format suites (qcow2, qed, vdi, parallels, iso):
# imginfo as the upload gate, the same from a file and from a pipe.
# Load after helpers.

# first_code < JSON: the first finding's code (or none) and the verdict.
# (bash alone: it runs twice a cut, and the machine may be loaded)
first_code() {
	local j= code=none verdict=none
	IFS= read -r -d '' j || true
	[[ $j =~ \"code\":\ *\"([^\"]*)\" ]] && code=${BASH_REMATCH[1]}
	[[ $j =~ \"verdict\":\ *\"([^\"]*)\" ]] && verdict=${BASH_REMATCH[1]}
	echo "$code $verdict"
}

# cuts_check IMAGE N [LEN]: IMAGE cut at N points spread over its length
# (or its first LEN bytes, where what follows is unused space);
# `imginfo --strict` exits 1 for every cut from a file and from a pipe,
# naming the same finding code both ways.  (imginfo_cuts.bats cuts every
# format at 24 more points, accepting only cuts that lose no data.)
cuts_check() {
	local img=$1 cuts=$2 size k n fst pst fcode pcode
	size=${3:-$(stat -c %s "$img")}
	for ((k = 1; k <= cuts; k++)); do
		n=$((size * k / (cuts + 1)))
		head -c "$n" "$img" > "$T/cut"
		fst=0; imginfo --strict --output json "$T/cut" > "$T/cut.f.json" 2> /dev/null || fst=$?
		pst=0; cat "$T/cut" | imginfo --strict --output json - > "$T/cut.p.json" 2> /dev/null || pst=$?
		fcode=$(first_code < "$T/cut.f.json")
		pcode=$(first_code < "$T/cut.p.json")
		if [ "$fst" != 1 ] || [ "$pst" != 1 ] || [ "$fcode" != "$pcode" ] ||
		    [ "$fcode" = "none safe" ]; then
			echo "cut at $n of $size: file $fst $fcode, pipe $pst $pcode"
			return 1
		fi
	done
}

# mutants_check FORMAT IMAGE [N]: N mutated copies of IMAGE (test/bats/
# mutate.py, a fixed seed) through img2raw and imginfo from a file and from
# a pipe: the same status, bytes, verdict and finding codes both ways, and
# the bytes qemu-img gives wherever both accept.
mutants_check() {
	python3 "$BATS_TEST_DIRNAME/mutate.py" "$1" "$2" "$T/mut" "${3:-120}"
}

# codes_both IMAGE CODE: imginfo --strict exits 1 naming CODE first, and
# img2raw exits 1, from a file and from a pipe.
codes_both() {
	local img=$1 code=$2 st out
	st=0; out=$(imginfo --strict --output json "$img" 2> /dev/null) || st=$?
	[ "$st" = 1 ] && [ "$(first_code <<< "$out")" = "$code unsafe" ] ||
		{ echo "file: $st $(first_code <<< "$out")"; return 1; }
	st=0; out=$(cat "$img" | imginfo --strict --output json - 2> /dev/null) || st=$?
	[ "$st" = 1 ] && [ "$(first_code <<< "$out")" = "$code unsafe" ] ||
		{ echo "pipe: $st $(first_code <<< "$out")"; return 1; }
	st=0; img2raw "$img" > /dev/null 2>&1 || st=$?
	[ "$st" = 1 ] || { echo "img2raw file: $st"; return 1; }
	st=0; cat "$img" | img2raw > /dev/null 2>&1 || st=$?
	[ "$st" = 1 ] || { echo "img2raw pipe: $st"; return 1; }
}

# sized IMAGE BYTES: img2raw gives BYTES bytes from a file and a pipe.
sized() {
	local n
	n=$(img2raw "$1" | wc -c)
	[ "$n" -eq "$2" ] || { echo "file: $n bytes, not $2"; return 1; }
	n=$(cat "$1" | img2raw | wc -c)
	[ "$n" -eq "$2" ] || { echo "pipe: $n bytes, not $2"; return 1; }
}
