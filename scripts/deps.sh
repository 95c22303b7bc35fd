#!/usr/bin/env bash
# Installs the Debian packages that building, the demo and the tests need.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
	build-essential
	pkg-config
	libmnl-dev
	zlib1g-dev
	libbpf-dev
	bpftool
	clang
	llvm
	# libFuzzer and clang's sanitizer runtimes (fuzz/): only recommended
	# by clang, so not installed with it here
	libclang-rt-14-dev
	redis-tools
	iptables
	linux-source-6.1
	xz-utils
	# the netlink spec's check (scripts/genl_spec.py)
	python3-yaml
	# baton.ko and the VM it is tested in (scripts/vm.sh)
	linux-headers-amd64
	qemu-system-x86
	busybox-static
	cpio
	gzip
	# the VM with systemd as PID 1 (scripts/vm-systemd.sh) boots the
	# host's own systemd; the tests speak to it through libsystemd
	systemd
	libsystemd-dev
	# batonctl apply reads its plan (YAML) with libyaml
	libyaml-dev
	# packaging: baton.ko through DKMS, man pages from Documentation/
	dkms
	python3-docutils
	man-db
	# make bench-repair's namespaces and their netem path (ip, tc)
	iproute2
	# nft: the VM's table that keeps the LOCAL_IN hooks' static keys on
	# (scripts/vm.sh)
	nftables
	# make bench-http and baton-bench --plot
	wrk
	nginx
	gnuplot-nox
)

. "$(dirname "$0")/deps-install.sh"
deps_install deps deps "${packages[@]}"
