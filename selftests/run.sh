#!/usr/bin/env bash
# Runs each test program and sums what the harness reports. A program named
# vm:NAME runs inside the QEMU VM (scripts/vm.sh) with baton.ko loaded
# (kexec:NAME on the host, starting a VM of its own), one
# named systemd:NAME inside the VM whose PID 1 is systemd
# (scripts/vm-systemd.sh); the VM's kernel log failing its check counts as
# one more failure. fuzz:NAME runs the fuzzing harness NAME (fuzz/run.sh)
# for FUZZ_TIME seconds (30 by default), vmfuzz:NAME the same inside the
# VM, each from its seeds and regression inputs alone with libFuzzer's
# seed FUZZ_SEED (1); a harness passes when it found no crash, and its
# figures (executions, cov, ft) are printed.
#
# Every program has a deadline of its own (TEST_TIMEOUT_NAME seconds if
# set, else TEST_TIMEOUT, 900 by default; the VM's run has VM_TIMEOUT). A failing test's whole block of
# output is printed: its assertions and the log tail it left. The host
# programs, the VM programs, the systemd VM programs and the fuzzing
# harnesses each get a count line; the last line is the total, "N passed, N failed, N skipped".
# A program that runs on the host fails too if the host's kernel logged a
# WARN or an oops meanwhile; a lockup or stall it logged is printed.
set -u
export BATON_BIN B
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
FUZZ_TIME=${FUZZ_TIME:-30}
# the harnesses start alike each time: their seeds, no grown corpus, seed 1
export FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_FRESH=1
top=$(cd "$(dirname "$0")/.." && pwd)
# what the tests start, for the VM to carry
# and iproute2's ip (module_test joins namespaces with veths), found
# before busybox's in /bin
ip=$(realpath "$(command -v ip)")
export VM_FILES="$BATON_BIN/kvd-v1 $BATON_BIN/kvd-v2 $BATON_BIN/batonctl $B/fake_peer $ip"
export VM_ENV="BATON_BIN=$BATON_BIN B=$B PATH=${ip%/*}:/sbin:/bin"

declare -A pass fail skip
for where in host vm systemd fuzz; do
	pass[$where]=0 fail[$where]=0 skip[$where]=0
done

# The output of each test that did not pass, from its RUN line to its
# result line, at most 80 lines a test.
failed_blocks() {
	awk '
		/^#  RUN / { n = 0; delete buf }
		{ if (n < 80) buf[n++] = $0 }
		/^not ok / { for (i = 0; i < n; i++) print "   " buf[i]; n = 0 }
	' "$1"
}

# The processes a host program left behind: any still running from the
# builds under test once it has ended (the instances its upgrades start
# are not its children). Each is killed and printed, one line each.
left_behind() {
	local i pid exe left

	for i in 1 2 3 4 5 6 7; do	# a SIGTERMed instance takes a moment
		left=()
		for pid in /proc/[0-9]*; do
			exe=$(readlink "$pid/exe" 2>/dev/null) || continue
			case $exe in "$BATON_BIN"/* | "$B"/*) left+=("${pid#/proc/}") ;; esac
		done
		[ ${#left[@]} -eq 0 ] && return
		sleep 0.5
	done
	for pid in "${left[@]}"; do
		echo "   left behind: pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
		kill -9 "$pid" 2>/dev/null
	done
}

# What the host's kernel logged while a host program ran, from $1 (the
# uptime at its start; the log's stamps count from boot as /proc/uptime
# does), at most 10 lines of each: kernel_trouble, a WARN or an oops, which
# fails the program; kernel_starved, a lockup or a stall (a CPU's workers
# or the RCU thread starved, a task hung), which is printed, for it names
# the cause of any timeout in the program, but is the host kernel's own
# doing under load (testing.rst, "The host's kernel log").
kernel_log_since() {
	dmesg 2>&1 | awk -F'[][]' -v t="$1" '$2 + 0 >= t || /^dmesg:/'
}
kernel_starved() {
	kernel_log_since "$1" |
		grep -E 'lockup|rcu: INFO|starved|hung_task|blocked for more than' |
		head -10
}
kernel_trouble() {
	kernel_log_since "$1" |
		grep -E 'WARNING: (CPU|at)|BUG:|Oops|general protection|^dmesg:' |
		grep -vE 'lockup' | head -10
}

# module_test switches a connection to BBR and moves one between namespaces
# joined by veths (each is insmod'ed in this order; scripts/vm.sh loads
# nf_tables itself); netns_test puts three on one bridge
export VM_MODULES="tcp_bbr veth llc stp bridge"
for t in "$@"; do
	limit=$TEST_TIMEOUT
	case $t in
	vm:*)
		name=${t#vm:}
		where=vm
		log=$B/$name.vm.log
		cmd=("$top/scripts/vm.sh" "$B/$name")
		;;
	kexec:*)	# a host program that drives its own VM
		name=${t#kexec:}
		where=vm
		log=$B/$name.log
		cmd=(timeout --kill-after=10 "$limit" "$B/$name")
		;;
	systemd:*)
		name=${t#systemd:}
		where=systemd
		log=$B/$name.systemd.log
		cmd=("$top/scripts/vm-systemd.sh" "$B/$name")
		;;
	fuzz:*)
		name=${t#fuzz:}
		where=fuzz
		log=$B/fuzz-$name.log
		cmd=("$top/fuzz/run.sh" "$name" "$FUZZ_TIME")
		;;
	vmfuzz:*)
		name=${t#vmfuzz:}
		where=fuzz
		log=$B/fuzz-$name.log
		cmd=("$top/fuzz/run.sh" --vm "$name" "$FUZZ_TIME")
		;;
	*)
		name=$t
		where=host
		log=$B/$name.log
		limit=TEST_TIMEOUT_$name
		limit=${!limit:-$TEST_TIMEOUT}
		cmd=(timeout --kill-after=10 "$limit" "$B/$name")
		;;
	esac
	echo "== $t"
	start=$SECONDS
	up_start=$(cut -d' ' -f1 /proc/uptime)
	rc=0
	(cd "$(dirname "$0")" && "${cmd[@]}") >"$log" 2>&1 || rc=$?
	orphans= trouble= starved=
	[ $where = host ] && orphans=$(left_behind)
	case $t in
	vm:* | systemd:* | vmfuzz:*) ;;
	*)
		trouble=$(kernel_trouble "$up_start")
		starved=$(kernel_starved "$up_start")
		;;
	esac
	grep -E '^(ok|not ok) |^# fuzz:' "$log" | sed 's/^/   /'
	if [ $rc -ne 0 ]; then
		failed_blocks "$log"
		grep -E 'ERROR: AddressSanitizer|runtime error|^vm:' "$log" | head -20 | sed 's/^/   /'
	fi
	[ $rc -eq 124 ] || [ $rc -eq 137 ] &&
		echo "   $t overran its deadline of ${limit}s and was killed"
	if [ -n "$trouble" ]; then
		sed 's/^/   host kernel: /' <<<"$trouble"
		echo "   the host's kernel logged the above while $t ran (dmesg has it whole): a WARN or an oops fails the program"
		fail[$where]=$((fail[$where] + 1))
	fi
	if [ -n "$starved" ]; then
		sed 's/^/   host kernel: /' <<<"$starved"
		echo "   the host's kernel starved tasks while $t ran (dmesg has it whole): a step that timed out in $t may have been one of them"
	fi
	totals=$(grep -E '^# Totals:' "$log" | tail -1)
	if ! [[ $totals =~ ^#\ Totals:\ pass:[0-9]+\ fail:[0-9]+\ xfail:[0-9]+\ xpass:[0-9]+\ skip:[0-9]+\ error:[0-9]+$ ]]; then
		echo "   $t did not finish (exit status $rc): the last lines of $log:"
		tail -n 30 "$log" | sed 's/^/   | /'
		fail[$where]=$((fail[$where] + 1))
		continue
	fi
	# "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
	field() { tr ' ' '\n' <<<"$totals" | sed -n "s/^$1:\([0-9]*\)$/\1/p"; }
	pass[$where]=$((pass[$where] + $(field pass)))
	fail[$where]=$((fail[$where] + $(field fail) + $(field error)))
	skip[$where]=$((skip[$where] + $(field skip)))
	if [ -n "$orphans" ]; then
		echo "$orphans"
		echo "   $t left processes behind: its teardown must end what its upgrades started"
		fail[$where]=$((fail[$where] + 1))
	fi
	if [ $rc -ne 0 ] && [ "$(field fail)" -eq 0 ] && [ "$(field error)" -eq 0 ]; then
		echo "   $t exited with status $rc: see $log"
		fail[$where]=$((fail[$where] + 1))
	fi
	echo "   ($((SECONDS - start)) s)"
done
p=0 f=0 s=0
for where in host vm systemd fuzz; do
	echo "$where: ${pass[$where]} passed, ${fail[$where]} failed, ${skip[$where]} skipped"
	p=$((p + pass[$where]))
	f=$((f + fail[$where]))
	s=$((s + skip[$where]))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && [ "$s" -eq 0 ]
