# Sourced by scripts/vm.sh and scripts/vm-systemd.sh: what both VMs do
# with a finished run. Not run alone.

die() { echo "vm: $*" >&2; exit 2; }

# vm_died OUT CONSOLE WHY...: for a run that never finished, what its
# programs printed last and the kernel's last words (the next boot
# removes both files), then dies with WHY
vm_died() {
	local out=$1 console=$2
	shift 2

	[ -f "$out" ] && tr -d '\r' <"$out" | grep -v '^BATON-VM-EXIT' |
		tail -n 40 | sed 's/^/vm output: /' >&2
	[ -f "$console" ] && tr -d '\r' <"$console" | tail -n 80 |
		sed 's/^/vm console: /' >&2
	die "$@"
}

# vm_finish OUT CONSOLE: prints the programs' output kept in OUT and sets
# VM_STATUS to the exit status the VM's init wrote last. Dies if the VM
# never got that far, and exits 1 if the kernel's log of the run
# (CONSOLE) has an oops, a BUG, a WARN, a sanitizer report, a panic or a
# device that never let go of its references.
vm_finish() {
	local out=$1 console=$2

	tr -d '\r' <"$out" | grep -v '^BATON-VM-EXIT' || true
	VM_STATUS=$(tr -d '\r' <"$out" | sed -n 's/^BATON-VM-EXIT \([0-9]*\).*/\1/p' | tail -1)
	[ -n "$VM_STATUS" ] ||
		vm_died "$out" "$console" "the VM did not finish its run (see $console)"
	if grep -nE 'WARNING:|BUG:|Oops|general protection|Call Trace|UBSAN:|Kernel panic|KASAN|unregister_netdevice: waiting' \
		"$console" >&2; then
		echo "vm: the kernel complained during the run: see $console" >&2
		exit 1
	fi
}

# modules_install ROOT MODDIR KREL MODULE...: each MODULE of the unpacked
# kernel in MODDIR, with what it depends on (modules.dep), into ROOT's
# /lib/modules/KREL, with a modules.dep of its own: busybox's modprobe
# then loads each with its dependencies.
modules_install() {
	local root=$1 moddir=$2 krel=$3 m line f
	shift 3

	for m in "$@"; do
		line=$(grep -E "(^|/)$m\.ko:" "$moddir/modules.dep") ||
			die "no $m.ko in $moddir"
		for f in ${line/:/}; do
			install -D -m 0644 "$moddir/$f" "$root/lib/modules/$krel/$f"
		done
	done
	# a line for every module it loads, dependencies too
	for f in $(cd "$root/lib/modules/$krel" && find kernel -name '*.ko'); do
		grep -E "^$f:" "$moddir/modules.dep"
	done | sort >"$root/lib/modules/$krel/modules.dep"
}
