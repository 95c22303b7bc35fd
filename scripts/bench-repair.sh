#!/usr/bin/env bash
# make bench-repair: repair mode measured where baton.ko loads, in the VM
# (scripts/vm.sh), in one boot:
#  1. selftests/repair_bench: what moving a connection costs through
#     userspace TCP_REPAIR and through baton.ko, at 100 and 1,000
#     connections, beside the VM's Unix-socket round trip;
#  2. selftests/cwnd_bench: a bulk flow through netem (20 ms, 20 Mbit/s)
#     moved with baton.ko's congestion state and without it, and the
#     share of its throughput each keeps in the first second after;
#  3. baton-bench --mode repair $BENCH_ARGS, under its load, with the
#     namespace's retransmission counters around it;
#  4. baton-bench --mode repair --netns $BENCH_NETNS_ARGS: the same, the
#     service moving between two namespaces at each upgrade, its address
#     with it, the clients in a third.
# The output of all, then on the last line one JSON object: baton-bench's
# of 3., with "per_conn_us" (repair_bench's figures, each with the floor
# of its own run), "congestion" (cwnd_bench's), "netns_run" (4.'s whole
# object) and "floor_us" (baton-bench's floor, in the same boot).
#
#   BENCH_ARGS="--conns 1000 --rate 2 --upgrades 10"  for baton-bench
#   BENCH_NETNS_ARGS="--conns 1000 --rate 2 --upgrades 4"  with --netns
#   VM_DIR=build/vm-bench                             the VM's files
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/build/bin
rb=$top/build/selftests/repair_bench
cb=$top/build/selftests/cwnd_bench
args=${BENCH_ARGS:---conns 1000 --rate 2 --upgrades 10}
ns_args=${BENCH_NETNS_ARGS:---conns 1000 --rate 2 --upgrades 4}
export VM_DIR=${VM_DIR:-$top/build/vm-bench}
export VM_TIMEOUT=${VM_TIMEOUT:-3600}

die() { echo "bench-repair: $*" >&2; exit 1; }
for f in "$bin/baton-bench" "$bin/batonctl" "$bin/kvd-v1" "$bin/kvd-v2" "$rb" \
	 "$cb" "$top/module/baton.ko"; do
	[ -x "$f" ] || [ -f "$f" ] || die "$f is missing: run 'make bench-repair', which builds it"
done
ip=$(command -v ip) && tc=$(command -v tc) ||
	die "iproute2's ip and tc are missing (scripts/deps.sh installs them)"
# $1, BENCH_ARGS or BENCH_NETNS_ARGS, checked and each word single-quoted
# for the guest's sh
guest_words() {
	local w words quoted=
	read -r -a words <<<"$1"
	for w in "${words[@]}"; do
		case "$w" in
		--mode|--mode=*|-j|--json|--baseline|--baseline=*|--plot|--plot=*|--netns)
			die "'$1': leave --mode, --netns, --json, --baseline and --plot to the script";;
		esac
		quoted+=" '${w//\'/\'\\\'\'}'"
	done
	printf '%s' "$quoted"
}
quoted=$(guest_words "$args")
ns_quoted=$(guest_words "$ns_args")

# The VM runs programs without arguments: one that runs both. baton-bench's
# progress (to a terminal there) goes to a file, not into its JSON's line.
mkdir -p "$VM_DIR"
run=$VM_DIR/bench-repair-run
cat >"$run" <<RUN
#!/bin/sh
# iproute2's ip and tc (VM_FILES) before busybox's (in /bin)
PATH=${ip%/*}:${tc%/*}:/usr/bin:/sbin:/bin
export PATH
# the VM's init leaves 1,024 descriptors a process: --conns 10000 needs more
ulimit -n 65536
echo "== repair_bench: the cost of a connection, userspace and baton.ko"
$rb || echo "BENCH-REPAIR-FAILED repair_bench \$?"
echo "== cwnd_bench: a flow moved with baton.ko's congestion state, and without"
$cb || echo "BENCH-REPAIR-FAILED cwnd_bench \$?"
echo "== baton-bench --mode repair$quoted"
$bin/baton-bench --mode repair$quoted -j 2>/tmp/baton-bench.err || echo "BENCH-REPAIR-FAILED baton-bench \$?"
cat /tmp/baton-bench.err
echo "== baton-bench --mode repair --netns$ns_quoted"
$bin/baton-bench --mode repair --netns$ns_quoted -j 2>/tmp/baton-bench-netns.err || echo "BENCH-REPAIR-FAILED baton-bench(--netns) \$?"
cat /tmp/baton-bench-netns.err
RUN
chmod +x "$run"

out=$VM_DIR/bench-repair.out
echo "bench-repair: booting the VM (TCG: this takes minutes; the VM's log is $VM_DIR/console.log)" >&2
VM_FILES="$bin/batonctl $bin/kvd-v1 $bin/kvd-v2 $bin/baton-bench $rb $cb $ip $tc" \
	VM_MODULES="veth sch_netem sch_tbf llc stp bridge" bash "$top/scripts/vm.sh" "$run" | tee "$out" || die "the VM run failed (see $VM_DIR/console.log)"
grep -q BENCH-REPAIR-FAILED "$out" && die "$(grep BENCH-REPAIR-FAILED "$out" | head -1 | cut -d' ' -f2) failed (its output is above)"

python3 - "$out" <<'PY'
import json, sys
objs = []
for line in open(sys.argv[1]):
    i = line.find('{"')
    if i < 0:
        continue
    try:
        objs.append(json.loads(line[i:]))
    except ValueError:
        pass
rb = next((o for o in objs if "per_conn_us" in o), None)
cb = next((o for o in objs if "congestion" in o), None)
bb = next((o for o in objs if "conn_move" in o and not o.get("netns")), None)
nb = next((o for o in objs if o.get("netns")), None)
if not rb or not cb or not bb or not nb:
    sys.exit("bench-repair: a program printed no JSON object (its output is above)")
for p in rb["per_conn_us"]:
    p["floor_us"] = rb["floor_us"]
bb["per_conn_us"] = rb["per_conn_us"]
bb["congestion"] = cb["congestion"]
bb["netns_run"] = nb
print(json.dumps(bb, separators=(",", ":")))
PY
