#!/usr/bin/env bash
# Runs one harness for SECONDS seconds from its seeds (corpus/NAME), the
# corpus it grew before (build/fuzz/run/NAME/corpus) and its regression
# inputs (regress/NAME), which libFuzzer runs first, every one. With
# --vm, inside the QEMU VM with baton.ko loaded (scripts/vm.sh), whose
# kernel log is checked after the run.
#
#   fuzz/run.sh [--vm] NAME SECONDS
#
# FUZZ_SEED: libFuzzer's seed (by default its own, printed in the log);
# FUZZ_FRESH=1: the grown corpus is emptied first. make check sets both
# (seed 1), so that its runs start alike and a failure comes again.
#
# Prints the executions, the coverage (libFuzzer's cov: and ft:) and the
# crashes, as a kselftest result that selftests/run.sh counts: a crash,
# a kernel complaint or a run that did not finish is a failure. The
# whole log is build/fuzz/run/NAME/log (FUZZ_RUN_DIR instead of
# build/fuzz/run); a crashing input is kept beside
# it (crash-*), to be moved to regress/NAME once fixed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/build/fuzz
vm=0
if [ "${1:-}" = --vm ]; then
	vm=1
	shift
fi
[ $# -eq 2 ] || { echo "usage: fuzz/run.sh [--vm] NAME SECONDS" >&2; exit 2; }
name=$1
time=$2
work=${FUZZ_RUN_DIR:-$B/run}/$name
log=$work/log
[ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$work/corpus"
mkdir -p "$work/corpus"
dirs=("$work/corpus" "$top/fuzz/corpus/$name")
[ -d "$top/fuzz/regress/$name" ] && dirs+=("$top/fuzz/regress/$name")
args=(-max_total_time="$time" -print_final_stats=1 -timeout=20
      -rss_limit_mb=1536 -artifact_prefix="$work/")
[ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")

echo "#  RUN fuzz:$name"
start=$SECONDS
rc=0
if [ $vm -eq 1 ]; then
	# the VM keeps nothing: the crash's bytes come back in the log
	list=$(IFS=,; echo "${args[*]},${dirs[*]}")
	VM_FILES="" VM_DATA="${dirs[*]}" VM_ENV="BATON_FUZZ_ARGS=$list" \
		VM_TIMEOUT=$((time + 600)) \
		"$top/scripts/vm.sh" "$B/$name" >"$log" 2>&1 || rc=$?
else
	(cd "$work" && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout --kill-after=10 $((time + 300)) \
		"$B/$name" "${args[@]}" "${dirs[@]}") >"$log" 2>&1 || rc=$?
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
last=$(grep -aE '^#[0-9]+[[:space:]]+(INITED|NEW|REDUCE|pulse|DONE)' "$log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
crashes=$(grep -acE '^==[0-9]+== ?ERROR: |: check failed: |runtime error: |deadly signal|Test unit written' "$log")
[ "$crashes" -gt 0 ] && crashes=1	# libFuzzer stops at the first
seed=$(sed -n 's/^INFO: Seed: \([0-9]*\).*/\1/p' "$log" | tr -d '\r' | head -1)
echo "# fuzz:$name: ${execs:-?} executions in $((SECONDS - start)) s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, crashes $crashes (seed ${seed:-?})"
if [ $rc -eq 0 ] && [ -n "$execs" ] && [ "$crashes" -eq 0 ]; then
	echo "ok 1 fuzz:$name"
	echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
	exit 0
fi
# what libFuzzer said of the crash, and where the input is
grep -aE -A40 '^==[0-9]+== ?ERROR: |: check failed: |runtime error: |deadly signal' "$log" |
	grep -avE '^#[0-9]+' | head -60 | sed 's/^/# /'
grep -aE 'Test unit written|^Base64: |^vm: ' "$log" | sed 's/^/# /'
[ -n "$execs" ] || tail -n 20 "$log" | sed 's/^/# | /'
echo "not ok 1 fuzz:$name (exit status $rc; see $log)"
echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
exit 1
