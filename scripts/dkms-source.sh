#!/usr/bin/env bash
# Installs the source tree DKMS builds baton.ko from:
# $DESTDIR/usr/src/baton-<version>/, the version being dkms.conf's
# PACKAGE_VERSION. Only what Kbuild reads goes there: dkms.conf, the
# top-level Kbuild, module/'s sources and Kbuild, and the UAPI header.
#
#   scripts/dkms-source.sh [DESTDIR]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
destdir=${1:-}

die() { echo "dkms-source: $*" >&2; exit 1; }

version=$(sed -n 's/^PACKAGE_VERSION="\([^"]*\)"$/\1/p' "$top/dkms.conf")
[ -n "$version" ] || die "no PACKAGE_VERSION in $top/dkms.conf"
dest=$destdir/usr/src/baton-$version

rm -rf "$dest"
install -d -m 0755 "$dest/module" "$dest/include/uapi/linux"
install -m 0644 "$top/dkms.conf" "$top/Kbuild" "$dest/"
install -m 0644 "$top/module/Kbuild" "$dest/module/"
for f in "$top"/module/*.[ch]; do
	case $f in
	*.mod.c) ;;	# made by an earlier 'make module'
	*) install -m 0644 "$f" "$dest/module/" ;;
	esac
done
install -m 0644 "$top/include/uapi/linux/baton.h" "$dest/include/uapi/linux/"
echo "$dest"
