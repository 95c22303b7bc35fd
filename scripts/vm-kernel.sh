#!/usr/bin/env bash
# Unpacks Debian's linux-image package of the release baton.ko is built
# for (scripts/kernel-release.sh) into $VM_DIR, once: the kernel as
# vmlinuz-<release> and its modules under lib/modules/<release>/, with a
# modules.dep made by busybox's depmod. The host's /boot and /lib/modules
# stay as they are. Prints nothing when both are already there.
#
#   scripts/vm-kernel.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${VM_DIR:-$top/build/vm}
krel=$(bash "$top/scripts/kernel-release.sh")
kernel=$VM_DIR/vmlinuz-$krel
moddir=$VM_DIR/lib/modules/$krel

die() { echo "vm: $*" >&2; exit 2; }

[ -n "$krel" ] || die "no linux-headers-amd64: run 'make deps'"
[ -f "$kernel" ] && [ -f "$moddir/modules.dep" ] && exit 0
mkdir -p "$VM_DIR"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"	# apt fetches as its own user
(cd "$tmp" && apt-get download -qq "linux-image-$krel" >/dev/null 2>&1) ||
	die "cannot download linux-image-$krel: run 'apt-get update'"
dpkg-deb -x "$tmp"/linux-image-"$krel"_*.deb "$tmp/root"
busybox depmod -b "$tmp/root" "$krel" ||
	die "depmod failed on the modules of linux-image-$krel"

rm -rf "$moddir"
mkdir -p "$VM_DIR/lib/modules"
mv "$tmp/root/lib/modules/$krel" "$moddir"
cp "$tmp/root/boot/vmlinuz-$krel" "$kernel.tmp"
mv "$kernel.tmp" "$kernel"
