# Every program has a man page, and every page renders without warnings.
load helpers

@test "every program in cmd/ has a man page, and imgpipe(7) exists" {
	cd "$BATS_TEST_DIRNAME/../.."
	for c in cmd/*.c; do
		p=$(basename "$c" .c)
		[ -f "man/$p.1" ] || { echo "no man/$p.1"; return 1; }
	done
	[ -f man/imgpipe.7 ]
}

@test "man pages render with man -l and groff reports no warnings" {
	cd "$BATS_TEST_DIRNAME/../.."
	for m in man/*.1 man/*.7; do
		out=$(MANWIDTH=80 man -l "$m" 2>&1 >/dev/null)
		[ -z "$out" ] || { echo "$m: $out"; return 1; }
		[ "$(MANWIDTH=80 man -l "$m" 2>/dev/null | wc -l)" -gt 10 ]
		out=$(groff -t -mandoc -Tutf8 -ww -z "$m" 2>&1)
		[ -z "$out" ] || { echo "$m: $out"; return 1; }
	done
}

@test "every option in a program's --help is in its man page" {
	cd "$BATS_TEST_DIRNAME/../.."
	for c in cmd/*.c; do
		p=$(basename "$c" .c)
		for o in $("$p" -h | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
			grep -q -- "Fl -${o#--}" "man/$p.1" ||
				{ echo "$p: $o not in man/$p.1"; return 1; }
		done
	done
}

@test "every page carries the version the programs print, in its .Os line" {
	cd "$BATS_TEST_DIRNAME/../.."
	local v
	v=$(img2raw -V | awk '{ print $3 }')
	[ -n "$v" ]
	for m in man/*.1 man/*.7; do
		grep -qx ".Os imgpipe $v" "$m" || { echo "$m: $(grep '^\.Os' "$m")"; return 1; }
		MANWIDTH=80 man -l "$m" 2>/dev/null | tail -n 1 | grep -q "imgpipe $v" ||
			{ echo "$m: no version in the footer"; return 1; }
	done
}

@test "mandoc -T lint finds nothing at warning level or above" {
	cd "$BATS_TEST_DIRNAME/../.."
	run mandoc -T lint -W warning man/*.1 man/*.7
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "imgpipe(7): the store's budget renders as --mem (default 32 MiB; ...)" {
	cd "$BATS_TEST_DIRNAME/../.."
	run sh -c 'MANWIDTH=200 man -l man/imgpipe.7 2>/dev/null'
	[ "$status" -eq 0 ]
	[[ "$output" == *"--mem (default 32 MiB;"* ]]
	[[ "$output" != *"-default"* ]]
}
