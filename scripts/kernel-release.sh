#!/usr/bin/env bash
# Prints the release of Debian's amd64 kernel whose headers are installed
# (linux-headers-amd64): baton.ko is built for it and the VM boots it.
set -euo pipefail
dpkg-query -W -f='${Depends}' linux-headers-amd64 |
	sed -n 's/.*linux-headers-\([0-9][^ ,]*-amd64\).*/\1/p'
