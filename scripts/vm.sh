#!/usr/bin/env bash
# Runs programs inside a QEMU virtual machine booting Debian's
# linux-image-amd64 kernel, with baton.ko loaded: the host kernel cannot
# load modules. Each program's output goes to stdout; the kernel log of
# the whole run is kept in $VM_DIR/console.log and checked for oopses,
# BUGs and WARNs.
#
#   scripts/vm.sh PROGRAM...
#
# VM_FILES: more executables, copied to the same absolute paths (with
# their libraries); VM_DATA: files or directories copied as they are, to
# the same absolute paths (a fuzzing harness's corpus); VM_ENV: NAME=VALUE words exported to the programs;
# VM_MODULES: modules of Debian's kernel (tcp_bbr, sch_netem, veth, ...)
# loaded before baton.ko, in that order, after nf_tables and what it
# needs, which every boot loads (its table keeps static keys on: below).
#
# For a guest that outlives its kernel (batonctl kexec): VM_NET_FWD=H:G
# gives the VM a network card (QEMU's user-mode network, the guest at
# 10.0.2.15, left down for the programs to bring up as eth0) and forwards
# the host's 127.0.0.1:H to its port G; VM_SHARE=DIR shares the host's
# DIR with the guest, mounted read-write at the same path, and puts the
# VM's kernel and initramfs there (vmlinuz, initramfs.gz); VM_APPEND adds
# to the kernel's command line. The init runs the programs again after a
# kexec: they tell the boots apart by their command line.
#
# Exit status: that of the last program that failed, or 1 if the kernel
# complained, or 0.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${VM_DIR:-$top/build/vm}
VM_TIMEOUT=${VM_TIMEOUT:-600}
krel=$(bash "$top/scripts/kernel-release.sh")
kernel=$VM_DIR/vmlinuz-$krel
module=$top/module/baton.ko

. "$top/scripts/vm-common.sh"

[ $# -gt 0 ] || die "usage: scripts/vm.sh PROGRAM..."
[ -f "$module" ] || die "$module is missing: run 'make module'"
mkdir -p "$VM_DIR"

# Debian's kernel and its modules, unpacked from its package rather than
# installed: the host's /boot stays as it is.
bash "$top/scripts/vm-kernel.sh"
moddir=$VM_DIR/lib/modules/$krel

# The initramfs: busybox, the programs with every library they load,
# baton.ko and an init that runs them.
root=$VM_DIR/root
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
cp "$module" "$root/baton.ko"
mods=()
[ -n "${VM_NET_FWD:-}" ] && mods+=(virtio_pci virtio_net)
[ -n "${VM_SHARE:-}" ] && mods+=(virtio_pci 9pnet_virtio 9p)
[ ${#mods[@]} -gt 0 ] && modules_install "$root" "$moddir" "$krel" "${mods[@]}"
# Under TCG the guest dies when it patches a static key's branch while the
# other vCPU runs through it: an int3 oops at the branch, or a soft
# lockup there. Netfilter's hook for LOCAL_IN has such a key, turned on
# and off whenever the first hook of any namespace comes or the last
# goes (baton.ko's on a namespace's first freeze and at its exit; an
# nftables base chain), and every segment received runs through it.
# A table of the VM's own, in its root namespace, with an input chain for
# IPv4 and IPv6 (inet) keeps those keys on for the whole boot
# (Documentation/testing.rst, "The VM's static keys").
keep_mods="crc32c_generic libcrc32c nfnetlink nf_tables"
insmods=$keep_mods
for m in ${VM_MODULES:-}; do
	case " $keep_mods " in *" $m "*) ;; *) insmods+=" $m" ;; esac
done
nft=$(realpath "$(command -v nft || echo /usr/sbin/nft)")
[ -x "$nft" ] || die "nft is missing: run 'make deps'"
cat >"$root/keys.nft" <<'NFT'
table inet baton_vm_keys {
	chain input {
		type filter hook input priority 0; policy accept;
	}
}
NFT
for m in $insmods; do
	ko=$(find "$moddir" -name "$m.ko" | head -1)
	[ -n "$ko" ] || die "linux-image-$krel has no module $m"
	cp "$ko" "$root/$m.ko"
done
# each at its own absolute path, so that programs find each other as
# they do on the host
copy_with_libs() {
	local f lib
	f=$(realpath "$1")
	[ -x "$f" ] || die "$1 is not an executable"
	install -D -m 0755 "$f" "$root$f"
	for lib in $(ldd "$f" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		[ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
	done
}
for f in $nft ${VM_FILES:-}; do
	copy_with_libs "$f"
done
for d in ${VM_DATA:-}; do
	d=$(realpath "$d")
	mkdir -p "$root${d%/*}"
	cp -a "$d" "$root$d"
done
progs=()
for p in "$@"; do
	copy_with_libs "$p"
	progs+=("$(realpath "$p")")
done

# the guest's watchdog fires that long after its boot, before the host's
# VM_TIMEOUT; an unload may take rmmod_wait seconds
watch=$((VM_TIMEOUT > 180 ? VM_TIMEOUT - 90 : VM_TIMEOUT / 2))
rmmod_wait=60

# /tmp and /run stay on the initramfs, which is writable: a tmpfs mounted
# there would hide programs copied from under them
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ip link set lo up
out=/dev/ttyS1
for m in ${mods[*]}; do
	if ! modprobe \$m; then
		echo "BATON-VM-EXIT 2 modprobe \$m" >\$out
		reboot -f
	fi
done
if [ -n "${VM_SHARE:-}" ]; then
	mkdir -p ${VM_SHARE:-}
	if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share ${VM_SHARE:-}; then
		echo "BATON-VM-EXIT 2 mount ${VM_SHARE:-}" >\$out
		reboot -f
	fi
fi
for m in $insmods; do
	if ! insmod /\$m.ko; then
		echo "BATON-VM-EXIT 2 insmod \$m" >\$out
		reboot -f
	fi
done
if ! $nft -f /keys.nft; then
	echo "BATON-VM-EXIT 2 nft -f /keys.nft" >\$out
	reboot -f
fi
if ! insmod /baton.ko; then
	echo "BATON-VM-EXIT 2 insmod" >\$out
	reboot -f
fi
rc=0
# before the host gives up on the VM, what still runs and what the kernel
# has blocked, for vm_died to print (the kernel's part in the console log)
(
	sleep $watch
	echo "# vm watchdog: \$(cut -d' ' -f1 /proc/uptime) s after boot the programs still run; load \$(cut -d' ' -f1-3 /proc/loadavg)" >\$out
	ps -o pid,ppid,stat,args 2>&1 | grep -v ' \\[' >\$out
	echo w >/proc/sysrq-trigger
) &
watchdog=\$!
export ${VM_ENV:-}
for p in ${progs[*]}; do
	cd "\${p%/*}"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \$p >\$out 2>&1 || rc=\$?
done
kill \$watchdog
# an unload that never returns is a defect of baton.ko: say so, with the
# blocked tasks, rather than wait for the host's deadline
(rmmod baton; echo \$? >/rmmod.rc) &
n=0
while [ ! -s /rmmod.rc ] && [ \$n -lt $rmmod_wait ]; do
	sleep 1
	n=\$((n + 1))
done
if [ ! -s /rmmod.rc ]; then
	echo "# vm: rmmod baton has not returned in $rmmod_wait s; the blocked tasks are in the console log" >\$out
	echo w >/proc/sysrq-trigger
	rc=3
elif [ "\$(cat /rmmod.rc)" != 0 ]; then
	rc=3
fi
echo "BATON-VM-EXIT \$rc" >\$out
reboot -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$VM_DIR/initramfs.gz"

net=(-nic none)
if [ -n "${VM_NET_FWD:-}" ]; then
	net=(-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${VM_NET_FWD%%:*}-10.0.2.15:${VM_NET_FWD##*:}")
fi
if [ -n "${VM_SHARE:-}" ]; then
	cp "$kernel" "$VM_SHARE/vmlinuz"
	cp "$VM_DIR/initramfs.gz" "$VM_SHARE/initramfs.gz"
	net+=(-virtfs "local,path=$VM_SHARE,mount_tag=share,security_model=none")
fi

out=$VM_DIR/output.log
console=$VM_DIR/console.log
rm -f "$out" "$console"
accel=tcg
timeout "$VM_TIMEOUT" qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 \
	-m 2048 -nographic -no-reboot "${net[@]}" \
	-kernel "$kernel" -initrd "$VM_DIR/initramfs.gz" \
	-append "console=ttyS0 ignore_loglevel panic=-1 rdinit=/init ${VM_APPEND:-}" \
	-serial "file:$console" -serial "file:$out" -monitor none \
	</dev/null >/dev/null 2>&1 ||
	vm_died "$out" "$console" "QEMU failed or ran past VM_TIMEOUT, ${VM_TIMEOUT}s (see $console)"

vm_finish "$out" "$console"
exit "$VM_STATUS"
