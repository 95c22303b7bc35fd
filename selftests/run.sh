#!/usr/bin/env bash
# Runs each test program and sums what the harness reports, ending with
# one line: "N passed, N failed, N skipped". A program named vm:NAME runs
# inside the QEMU VM (scripts/vm.sh) with baton.ko loaded; the VM's kernel
# log failing its check counts as one more failure.
set -u
export BATON_BIN B
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pass=0 fail=0 skip=0
top=$(cd "$(dirname "$0")/.." && pwd)
# what the tests start, for the VM to carry
export VM_FILES="$BATON_BIN/kvd-v1 $BATON_BIN/kvd-v2 $BATON_BIN/batonctl $B/fake_peer"
export VM_ENV="BATON_BIN=$BATON_BIN B=$B"
# module_test switches a connection to BBR
export VM_MODULES="tcp_bbr"
for t in "$@"; do
	name=${t#vm:}
	echo "== $t"
	if [ "$name" != "$t" ]; then
		log=$B/$name.vm.log
		cmd=("$top/scripts/vm.sh" "$B/$name")
	else
		log=$B/$name.log
		cmd=("$B/$name")
	fi
	rc=0
	(cd "$(dirname "$0")" && "${cmd[@]}") >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		grep -E '^(not ok|#  )|ERROR|Assertion|runtime error|Sanitizer|^vm:|^[0-9]+:' "$log" | head -40
	fi
	grep -E '^(ok|not ok) ' "$log" | sed 's/^/   /'
	totals=$(grep -E '^# Totals:' "$log" | tail -1)
	if ! [[ $totals =~ ^#\ Totals:\ pass:[0-9]+\ fail:[0-9]+\ xfail:[0-9]+\ xpass:[0-9]+\ skip:[0-9]+\ error:[0-9]+$ ]]; then
		echo "   $t did not finish: see $log"
		fail=$((fail + 1))
		continue
	fi
	# "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
	field() { tr ' ' '\n' <<<"$totals" | sed -n "s/^$1:\([0-9]*\)$/\1/p"; }
	pass=$((pass + $(field pass)))
	fail=$((fail + $(field fail) + $(field error)))
	skip=$((skip + $(field skip)))
	if [ $rc -ne 0 ] && [ "$(field fail)" -eq 0 ] && [ "$(field error)" -eq 0 ]; then
		echo "   $t exited with status $rc: see $log"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$skip" -eq 0 ]
