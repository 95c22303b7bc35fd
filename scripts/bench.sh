#!/usr/bin/env bash
# make bench: the acceptance benchmarks of Documentation/performance.rst.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin

echo "== 1000 connections, 500 new connections/s, 20 upgrades, with both baselines"
$bin/baton-bench --conns 1000 --connect-rate 500 --upgrades 20 \
	--baseline restart --baseline drain
echo
echo "== 10000 connections, 5 upgrades"
$bin/baton-bench --conns 10000 --upgrades 5
echo
echo "== 950000 keys, 100 writers doing random SETs, 10 upgrades: phase 1 in rounds"
$bin/baton-bench --conns 0 --keys 950000 --writers 100 --upgrades 10
echo
echo "== 5000 new connections/s through 20 switches, own listeners, and plain SO_REUSEPORT"
$bin/baton-bench --conns 0 --connect-rate 5000 --upgrades 20 --listeners own \
	--baseline reuseport
echo
echo "== redis-benchmark -c 200 -n 2000000 -k 1 -t set,get,incr while kvd is upgraded"
DEMO_CONNS=200 DEMO_REQUESTS=2000000 DEMO_UPGRADES=1000 scripts/demo.sh
echo
echo "== repair mode in the VM: baton-bench --mode repair ${BENCH_ARGS:---conns 1000 --rate 2 --upgrades 10}"
bash scripts/bench-repair.sh
