#!/usr/bin/env bash
# Runs programs inside a QEMU virtual machine whose PID 1 is systemd:
# Debian's linux-image-amd64 kernel (scripts/vm-kernel.sh), and the host's
# own root filesystem, systemd included, shared read-only over virtio-9p
# with a tmpfs overlaid for what the VM writes. baton.ko is loaded. The
# programs run one after the other from baton-vm.service, once the boot
# has finished, at their own paths and in their own directories; then the
# VM powers off through systemd. Each program's output goes to stdout; the
# kernel and systemd's console of the whole run is kept in
# $VM_DIR/systemd/console.log and checked for oopses, BUGs and WARNs and
# for a clean power-off; the journal is kept in $VM_DIR/systemd/journal.log.
#
#   scripts/vm-systemd.sh PROGRAM...
#
# VM_ENV: NAME=VALUE words exported to the programs.
#
# Exit status: that of the last program that failed, or 1 if the kernel
# complained or the VM did not power off cleanly, or 0.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${VM_DIR:-$top/build/vm}
VM_TIMEOUT=${VM_TIMEOUT:-1200}
krel=$(bash "$top/scripts/kernel-release.sh")
kernel=$VM_DIR/vmlinuz-$krel
moddir=$VM_DIR/lib/modules/$krel
module=$top/module/baton.ko
run=$VM_DIR/systemd

. "$top/scripts/vm-common.sh"

[ $# -gt 0 ] || die "usage: scripts/vm-systemd.sh PROGRAM..."
[ -f "$module" ] || die "$module is missing: run 'make module'"
[ -x /lib/systemd/systemd ] || die "no systemd on the host: run 'make deps'"
progs=()
for p in "$@"; do
	[ -x "$p" ] || die "$p is not an executable"
	progs+=("$(realpath "$p")")
done
bash "$top/scripts/vm-kernel.sh"

# The initramfs: busybox, the modules that mount the host's files (with
# what they depend on, as modules.dep says) and an init that mounts them
# and hands over to systemd.
root=$run/root
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,lower,rw,newroot,vm}
cp /bin/busybox "$root/bin/busybox"
mods=(virtio_pci 9pnet_virtio 9p overlay)
modules_install "$root" "$moddir" "$krel" "${mods[@]}"

# What the VM runs: a target with nothing but Debian's basic system and the
# runner, which waits for the boot to finish (the programs judge how it
# went), runs the programs with their output on the second serial port,
# the journal on the third, unloads baton.ko and powers off; if the runner
# itself fails, systemd powers off.
cat >"$root/vm/baton-vm.target" <<'UNIT'
[Unit]
Description=baton test run
Wants=basic.target baton-vm.service
After=basic.target
AllowIsolate=yes
UNIT
cat >"$root/vm/baton-vm.service" <<'UNIT'
[Unit]
Description=baton test programs
After=basic.target
FailureAction=poweroff

[Service]
Type=exec
ExecStart=/etc/baton-vm/run
UNIT
# a host without a machine id (a container's root, say) would make this a
# first boot, with systemd-firstboot asking on the console
cat /proc/sys/kernel/random/uuid | tr -d - >"$root/vm/machine-id"
cat >"$root/vm/run" <<RUN
#!/bin/sh
out=/dev/ttyS1
rc=0
state=\$(systemctl is-system-running --wait)
echo "# vm-systemd: boot finished at \$(cut -d' ' -f1 /proc/uptime) s, \$state" >\$out
${VM_ENV:+export $VM_ENV}
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for p in ${progs[*]}; do
	cd "\${p%/*}"
	\$p >\$out 2>&1 </dev/null || rc=\$?
done
echo "# vm-systemd: programs finished at \$(cut -d' ' -f1 /proc/uptime) s" >\$out
busybox rmmod baton || rc=3
journalctl -b -o short-monotonic --no-pager >/dev/ttyS2 2>&1
echo "BATON-VM-EXIT \$rc" >\$out
systemctl --no-block poweroff
RUN
chmod +x "$root/vm/run"

# The host's / read-only, a tmpfs over it for what the VM writes
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
	echo "BATON-VM-EXIT 2 \$*" >/dev/ttyS1
	reboot -f
}
for m in ${mods[*]}; do
	modprobe \$m || fail "modprobe \$m"
done
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose \
	host /lower || fail "mount 9p"
mount -t tmpfs -o mode=0755 rw /rw || fail "mount tmpfs"
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \
	overlay /newroot || fail "mount overlay"
# a /run of the VM's own, not the host's; the host's /tmp, where the
# programs may be, is not emptied at boot as Debian's tmp.conf says; and
# nothing that would make systemd believe it runs in a container
mount -t tmpfs -o mode=0755,nosuid,nodev run /newroot/run || fail "mount /run"
mkdir -p /newroot/etc/tmpfiles.d
echo "d /tmp 1777 root root -" >/newroot/etc/tmpfiles.d/tmp.conf
rm -f /newroot/.dockerenv
insmod /newroot$module || fail "insmod"
mkdir -p /newroot/etc/baton-vm
cp /vm/run /newroot/etc/baton-vm/run
cp /vm/baton-vm.target /vm/baton-vm.service /newroot/etc/systemd/system/
[ -s /newroot/etc/machine-id ] || cp /vm/machine-id /newroot/etc/machine-id
for d in dev proc sys; do
	mount --move /\$d /newroot/\$d
done
exec switch_root /newroot /lib/systemd/systemd
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$run/initramfs.gz"

out=$run/output.log
console=$run/console.log
journal=$run/journal.log
rm -f "$out" "$console" "$journal"
start=$EPOCHREALTIME
timeout "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 \
	-m 2048 -nographic -no-reboot -nic none \
	-kernel "$kernel" -initrd "$run/initramfs.gz" \
	-append "console=ttyS0 ignore_loglevel panic=-1 rdinit=/init systemd.unit=baton-vm.target" \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	-serial "file:$console" -serial "file:$out" -serial "file:$journal" \
	-monitor none </dev/null >/dev/null 2>&1 ||
	vm_died "$out" "$console" "QEMU failed or ran past VM_TIMEOUT, ${VM_TIMEOUT}s (see $console)"
awk -v a="$start" -v b="$EPOCHREALTIME" \
	'BEGIN { printf "# vm-systemd: QEMU ran %.1f s\n", b - a }' >&2

vm_finish "$out" "$console"
if ! grep -q 'reboot: Power down' "$console"; then
	echo "vm: systemd did not power the VM off cleanly: see $console" >&2
	exit 1
fi
exit "$VM_STATUS"
