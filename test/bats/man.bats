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
