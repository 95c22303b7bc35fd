#!/usr/bin/env bash
# Runs each test program and sums what the harness reports, ending with
# one line: "N passed, N failed, N skipped".
set -u
export BATON_BIN B
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pass=0 fail=0 skip=0
for t in "$@"; do
	log=$B/$t.log
	echo "== $t"
	if ! (cd "$(dirname "$0")" && "$B/$t") >"$log" 2>&1; then
		grep -E '^(not ok|#  )|ERROR|Assertion|runtime error|Sanitizer' "$log" | head -40
	fi
	grep -E '^(ok|not ok) ' "$log" | sed 's/^/   /'
	totals=$(grep -E '^# Totals:' "$log" | tail -1)
	if [ -z "$totals" ]; then
		echo "   $t did not finish: see $log"
		fail=$((fail + 1))
		continue
	fi
	# "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
	field() { tr ' ' '\n' <<<"$totals" | sed -n "s/^$1:\([0-9]*\)$/\1/p"; }
	pass=$((pass + $(field pass)))
	fail=$((fail + $(field fail) + $(field error)))
	skip=$((skip + $(field skip)))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$skip" -eq 0 ]
