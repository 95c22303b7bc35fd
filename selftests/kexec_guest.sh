#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The guest's side of scripts/kexec-check.sh, run by scripts/vm.sh's init
# in both boots (VM_SHARE is $KEXEC_SHARE; the host's clients reach kvd
# through QEMU's port forward):
#  1. first boot: eth0 up at 10.0.2.15, kvd serving port 6379; "up" in
#     the share. When the host writes "go": batonctl kexec kvd into this
#     same kernel and initramfs, its checkpoint in the share, its report
#     in kexec.json. It does not come back unless the kexec failed.
#  2. second boot (baton.stage=2): "init2" in the share at once;
#     batonctl hold (hold.json; status then shows it held) before the
#     network, so that the clients' segments wait in baton.ko rather
#     than meet a reset; eth0 up;
#     batonctl restore (restore.json), which thaws them; "up2". Waits
#     for the host's "done", and exits.
# Each step's file in the share is written as the step ends: the host
# reads their times (its own clock) for the report.
set -u
share=$KEXEC_SHARE
bin=$BATON_BIN
export BATON_RUN_DIR=/run/baton
kvd="$bin/kvd-v1 --service kvd --listen 0.0.0.0:6379 --quiet"

fail() {
	echo "kexec_guest: $*"
	echo "$*" >"$share/failed"
	exit 1
}

wait_file() {
	i=0
	while [ ! -e "$share/$1" ]; do
		i=$((i + 1))
		[ $i -gt $((${2} * 10)) ] && fail "no $1 from the host within $2 s"
		sleep 0.1
	done
}

mkdir -p "$BATON_RUN_DIR" "$share/ckpt"
if ! grep -q 'baton.stage=2' /proc/cmdline; then
	ip addr add 10.0.2.15/24 dev eth0 || fail "ip addr"
	ip link set eth0 up || fail "ip link"
	$kvd >"$share/kvd1.log" 2>&1 &
	i=0
	# status says whether kvd answers; its exit status does not
	until $bin/batonctl status -j kvd 2>/dev/null | grep -q '"serving":1'; do
		i=$((i + 1))
		[ $i -gt 300 ] && fail "kvd did not start"
		sleep 0.1
	done
	touch "$share/up"
	wait_file go 300
	# steps that must go through: 30 s, as every test's (a loaded host's
	# TCG guest once took over 5 s, the default, to restore)
	$bin/batonctl kexec kvd -j --timeout-ms 30000 --kernel "$share/vmlinuz" \
		--initrd "$share/initramfs.gz" --append baton.stage=2 \
		--dir "$share/ckpt" >"$share/kexec.json" 2>"$share/kexec.err"
	fail "batonctl kexec came back: $(cat "$share/kexec.err")"
fi

touch "$share/init2"
# KEXEC_CORRUPT: the checkpoint damaged, as a disk might; hold and restore
# refuse it, and kvd starts afresh
if [ -n "${KEXEC_CORRUPT:-}" ]; then
	printf 'X' | dd of="$share/ckpt/kvd.ckpt" bs=1 seek=300 conv=notrunc 2>/dev/null ||
		fail "cannot damage the checkpoint"
fi
# before the network: baton.ko holds what the clients send from then on
$bin/batonctl hold kvd -j -i "$share/ckpt/kvd.ckpt" >"$share/hold.json" \
	2>"$share/hold.err" || [ -n "${KEXEC_CORRUPT:-}" ] ||
	fail "batonctl hold: $(cat "$share/hold.err")"
# the hold is in the service's journal
if [ -z "${KEXEC_CORRUPT:-}" ]; then
	$bin/batonctl status -j kvd >"$share/status-hold.json" 2>/dev/null
	grep -q '"operation":"hold"' "$share/status-hold.json" &&
		grep -q '"result":"held"' "$share/status-hold.json" ||
		fail "status after the hold: $(cat "$share/status-hold.json")"
fi
ip addr add 10.0.2.15/24 dev eth0 || fail "ip addr (second boot)"
ip link set eth0 up || fail "ip link (second boot)"
rc=0
$bin/batonctl restore kvd -j --timeout-ms 30000 -i "$share/ckpt/kvd.ckpt" --log "$share/kvd2.log" \
	--fresh-on-failure -- $kvd >"$share/restore.json" 2>"$share/restore.err" ||
	rc=$?
if [ -n "${KEXEC_CORRUPT:-}" ]; then
	[ $rc -eq 1 ] && grep -q '"fresh_pid"' "$share/restore.json" ||
		fail "a damaged checkpoint: no fresh start ($rc): $(cat "$share/restore.json" "$share/restore.err")"
	[ -e "$share/ckpt/kvd.ckpt" ] || fail "the damaged checkpoint was not kept"
else
	[ $rc -eq 0 ] || fail "batonctl restore: $(cat "$share/restore.err")"
fi
touch "$share/up2"
wait_file done 600
$bin/batonctl status -j kvd 2>/dev/null | grep -q '"serving":1' ||
	fail "kvd no longer answers"
echo "kexec_guest: ${KEXEC_CORRUPT:+refused the damaged checkpoint, started afresh and }served; kernel $(uname -r)"
