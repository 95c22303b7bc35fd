#!/usr/bin/env bash
# make demo: kvd under a redis-benchmark load of several hundred connections,
# upgraded v1 -> v2 -> v1 ... with batonctl; then the keys written before
# are read back. Exits non-zero if anything was lost.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/bin
conns=${DEMO_CONNS:-300}
requests=${DEMO_REQUESTS:-$((conns * 1500))}
upgrades=${DEMO_UPGRADES:-6}	# at most; they stop when the load does
keys=1000
# a port nobody answers on
port=$((20000 + RANDOM % 30000))
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
export BATON_RUN_DIR=$(mktemp -d /tmp/baton-demo.XXXXXX)
log=$BATON_RUN_DIR/kvd.log
cli() { redis-cli -p "$port" "$@"; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }	# from batonctl -j

cleanup() {
	[ -n "${bench_pid:-}" ] && kill "$bench_pid" 2>/dev/null || true
	[ -f "$BATON_RUN_DIR/demo.pid" ] && kill "$(cat "$BATON_RUN_DIR/demo.pid")" 2>/dev/null || true
	rm -rf "$BATON_RUN_DIR"
}
trap cleanup EXIT

echo "== kvd-v1 on 127.0.0.1:$port (control socket $BATON_RUN_DIR/demo.sock)"
$bin/kvd-v1 --service demo --listen "127.0.0.1:$port" 2>>"$log" &
for _ in $(seq 200); do [ -S "$BATON_RUN_DIR/demo.sock" ] && break; sleep 0.01; done

echo "== writing $keys keys"
for i in $(seq $keys); do printf 'SET demo:%d value-%d\r\n' "$i" "$((i * 7919))"; done |
	cli --pipe >/dev/null

echo "== redis-benchmark: $conns connections, SET/GET/INCR, while kvd is upgraded"
redis-benchmark -p "$port" -c "$conns" -n "$requests" -k 1 -t set,get,incr \
	-q >"$BATON_RUN_DIR/bench.out" 2>"$BATON_RUN_DIR/bench.err" &
bench_pid=$!
sleep 1

fail=0
to=2
printf '\n%-4s %-10s %-16s %8s %12s %12s\n' "#" "versions" "pids" "moved" "blackout" "old exited"
n=0
while [ $n -lt "$upgrades" ] && kill -0 "$bench_pid" 2>/dev/null; do
	n=$((n + 1))
	out=$($bin/batonctl -j upgrade demo --log "$log" -- $bin/kvd-v$to --service demo --quiet) || {
		echo "upgrade $n failed: $out"; fail=1; break; }
	printf '%-4s %-10s %-16s %8s %9s ms %9s ms\n' "$n" "v$((3 - to)) -> v$to" \
		"$(field old_pid "$out") -> $(field new_pid "$out")" "$(field conns "$out")" \
		"$(field blackout_ms "$out")" "$(field old_exit_ms "$out")"
	to=$((3 - to))
	sleep 1
done


wait "$bench_pid" || { echo "redis-benchmark failed"; fail=1; }
bench_pid=
echo "== redis-benchmark"
tr '\r' '\n' <"$BATON_RUN_DIR/bench.out" | grep -E 'requests per second' || true
if grep -qiE 'error|closed|reset' "$BATON_RUN_DIR/bench.err" "$BATON_RUN_DIR/bench.out"; then
	echo "redis-benchmark reported errors:"; cat "$BATON_RUN_DIR/bench.err"; fail=1
else
	echo "no errors"
fi

echo "== reading back the $keys keys written before the upgrades"
bad=$(for i in $(seq $keys); do printf 'GET demo:%d\r\n' "$i"; done | cli |
	awk -v k=$keys '{ if ($0 != "value-" NR * 7919) bad++ } END { print bad + 0 + (NR != k) }')
echo "mismatched: $bad"
[ "$bad" -eq 0 ] || fail=1

cli INFO | tr -d '\r' | grep -E '^(kvd_version|process_id|db0)'
$bin/batonctl status demo
if [ "$fail" -eq 0 ]; then echo "demo: OK"; else echo "demo: FAILED (log: $log)"; fi
exit "$fail"
