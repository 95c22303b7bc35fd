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

. "$(dirname "$0")/deps-install.sh"
deps_install deps-package deps-package "${packages[@]}"
