#!/usr/bin/env bash
# Installs the Debian packages that building baton's own Debian packages
# needs (dpkg-buildpackage over debian/, and lintian over the result); not
# needed by make, make check or make demo. Idempotent and quiet when
# everything is already there.
set -euo pipefail

packages=(
	debhelper
	dh-dkms
	dpkg-dev
	fakeroot
	lintian
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps-package: missing packages: ${missing[*]}; run 'make deps-package' as root" >&2
	exit 1
fi
echo "deps-package: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
