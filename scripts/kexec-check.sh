#!/usr/bin/env bash
# make kexec-check: the kernel under a live kvd restarts (batonctl kexec)
# and its clients, on the host, keep their connections.
#
# The QEMU VM (scripts/vm.sh) runs selftests/kexec_guest.sh in both of
# its boots, with a network card whose port 6379 the host reaches at a
# free port of 127.0.0.1, and a directory shared with the host (the
# checkpoint, the guest's reports and the files whose times mark each
# step). On the host, selftests/kexec_clients keeps CONNS connections
# busy through it all and prints the outcome as JSON, the last line.
#
#   scripts/kexec-check.sh [--corrupt] [CONNS [KEYS]]
#
# --corrupt: the guest damages the checkpoint before the restore, which
# refuses it and starts kvd afresh (--fresh-on-failure): every client's
# connection must end, none answered wrong, and a new one find kvd serving.
#
# BATON_BIN: the kvd and batonctl the guest runs (build/bin); B: where
# kexec_clients is (build/selftests). Exit status 0 only if every
# connection went on with every reply right, every key was read back,
# and the VM's kernel log is clean in both boots.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
corrupt=
if [ "${1:-}" = --corrupt ]; then
	corrupt=1
	shift
fi
conns=${1:-100}
keys=${2:-1000}
BATON_BIN=${BATON_BIN:-$top/build/bin}
B=${B:-$top/build/selftests}
export VM_DIR=${VM_DIR:-$top/build/vm-kexec}
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1

die() { echo "kexec-check: $*" >&2; exit 2; }

[ -x "$B/kexec_clients" ] || die "$B/kexec_clients is missing: run 'make -C selftests all'"
for p in kvd-v1 batonctl; do
	[ -x "$BATON_BIN/$p" ] || die "$BATON_BIN/$p is missing: run 'make'"
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$VM_DIR"
share=$(mktemp -d "$VM_DIR/share.XXXXXX")
chmod 0777 "$share"
vm=
# the VM's script, QEMU and all, is a process group of its own
cleanup() {
	[ -n "$vm" ] && kill -- -"$vm" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

echo "kexec-check: $conns connections, $keys keys${corrupt:+, the checkpoint damaged}; the VM's files in $share"
VM_NET_FWD=$port:6379 VM_SHARE=$share VM_TIMEOUT=${VM_TIMEOUT:-900} \
	VM_FILES="$BATON_BIN/kvd-v1 $BATON_BIN/batonctl" \
	VM_ENV="KEXEC_SHARE=$share BATON_BIN=$BATON_BIN ${corrupt:+KEXEC_CORRUPT=1}" \
	setsid bash "$top/scripts/vm.sh" "$top/selftests/kexec_guest.sh" \
	>"$share/vm.out" 2>&1 &
vm=$!

for ((i = 0; i < 3000; i++)); do
	[ -e "$share/up" ] && break
	[ -e "$share/failed" ] && break
	kill -0 "$vm" 2>/dev/null || break
	sleep 0.1
done
[ -e "$share/up" ] || { cat "$share/vm.out" >&2; die "kvd did not come up in the VM"; }

rc=0
"$B/kexec_clients" "$port" "$conns" "$keys" "$share" ${corrupt:+fresh} \
	>"$share/clients.json" || rc=1
vrc=0
wait "$vm" || vrc=$?
vm=
cat "$share/vm.out"
echo "kexec: $(cat "$share/kexec.json" 2>/dev/null | head -1)"
echo "hold: $(cat "$share/hold.json" 2>/dev/null)"
echo "restore: $(cat "$share/restore.json" 2>/dev/null)"
[ -e "$share/failed" ] && echo "kexec-check: the guest failed: $(cat "$share/failed")" >&2
[ $vrc -eq 0 ] || { echo "kexec-check: the VM's run failed ($vrc)" >&2; rc=1; }
cat "$share/clients.json"
# kept for inspection only when something went wrong
[ $rc -eq 0 ] && rm -rf "$share"
exit $rc
