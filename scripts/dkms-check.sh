#!/usr/bin/env bash
# Builds baton.ko the way a user's DKMS would (dkms.conf), against the
# headers of Debian's amd64 kernel (scripts/kernel-release.sh), in a DKMS
# tree of its own under build/dkms: /usr/src and the modules DKMS keeps
# are left alone (dkms makes its module signing key in /var/lib/dkms the
# first time it runs). Fails unless dkms reports the module built for
# that release.
#
#   scripts/dkms-check.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
krel=$(bash "$top/scripts/kernel-release.sh")
d=$top/build/dkms

die() { echo "dkms-check: $*" >&2; exit 1; }

command -v dkms >/dev/null || die "no dkms: run 'make deps'"
[ -d "/lib/modules/$krel/build" ] || die "no headers for $krel: run 'make deps'"
rm -rf "$d"
mkdir -p "$d/var"
src=$(bash "$top/scripts/dkms-source.sh" "$d/root")
version=${src##*/baton-}
dk=(dkms --sourcetree "$d/root/usr/src" --dkmstree "$d/var")

"${dk[@]}" add -m baton -v "$version" >/dev/null
if ! "${dk[@]}" build -m baton -v "$version" -k "$krel"; then
	tail -n 30 "$d/var/baton/$version/build/make.log" >&2 || true
	die "dkms build failed"
fi
"${dk[@]}" status -m baton -v "$version" -k "$krel" | tee "$d/status"
grep -q ": built$" "$d/status" || die "dkms does not report baton/$version built"
