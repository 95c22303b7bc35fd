# Sourced by scripts/vm.sh and scripts/vm-systemd.sh: what both VMs do
# with a finished run. Not run alone.

die() { echo "vm: $*" >&2; exit 2; }

# vm_finish OUT CONSOLE: prints the programs' output kept in OUT and sets
# VM_STATUS to the exit status the VM's init wrote last. Dies if the VM
# never got that far, and exits 1 if the kernel's log of the run
# (CONSOLE) has an oops, a BUG, a WARN, a sanitizer report, a panic or a
# device that never let go of its references.
vm_finish() {
	local out=$1 console=$2

	tr -d '\r' <"$out" | grep -v '^BATON-VM-EXIT' || true
	VM_STATUS=$(tr -d '\r' <"$out" | sed -n 's/^BATON-VM-EXIT \([0-9]*\).*/\1/p' | tail -1)
	[ -n "$VM_STATUS" ] || die "the VM did not finish its run (see $console)"
	if grep -nE 'WARNING:|BUG:|Oops|general protection|Call Trace|UBSAN:|Kernel panic|KASAN|unregister_netdevice: waiting' \
		"$console" >&2; then
		echo "vm: the kernel complained during the run: see $console" >&2
		exit 1
	fi
}
