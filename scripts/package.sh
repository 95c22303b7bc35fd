#!/usr/bin/env bash
# make deb: baton's Debian packages (debian/), built from a copy of the
# tree's files under build/deb, so that the tree and its parent directory
# get nothing; then lintian over them. The .debs and lintian's report stay
# in build/deb.
#
#   scripts/package.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/deb

die() { echo "package: $*" >&2; exit 1; }

bash "$top/scripts/deps-package.sh"
# one version: dkms.conf's is the module's and the library's
version=$(sed -n 's/^PACKAGE_VERSION="\([^"]*\)"$/\1/p' "$top/dkms.conf")
deb=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[ "$deb" = "$version" ] ||
	die "debian/changelog says $deb, dkms.conf $version: make them agree"

src=$out/baton-$version
rm -rf "$out"
mkdir -p "$src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	tar --null -T - -cf -) | tar -xf - -C "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 ||
	die "dpkg-buildpackage failed: see $out/build.log"
changes=$out/baton_${version}_$(dpkg --print-architecture).changes
# lintian's exit status is its own judgement: its errors are counted here
lintian --info "$changes" >"$out/lintian.log" 2>&1 || true
for d in "$out"/*.deb; do
	echo "package: $(basename "$d")"
done
sed 's/^/lintian: /' "$out/lintian.log"
errors=$(grep -c '^E: ' "$out/lintian.log" || true)
[ "$errors" -eq 0 ] || die "lintian: $errors errors"
echo "package: lintian: 0 errors, $(grep -c '^W: ' "$out/lintian.log" || true) warnings"
