#!/usr/bin/env bash
# make install-check: what 'make install' puts in place works for a
# program that knows only pkg-config.
#  1. make install into a scratch DESTDIR: every file where it belongs;
#  2. libbaton.so's SONAME is libbaton.so.<major>, and it exports exactly
#     the functions the installed headers mark BATON_API, nothing else;
#  3. kvd, built from its sources with pkg-config's flags alone
#     (PKG_CONFIG_PATH into the DESTDIR, --define-prefix), links the shared
#     library: 'baton', and 'libbpf' since kvd calls libbpf_set_print()
#     itself (libbpf's printing is process-wide: the library leaves it be);
#  4. in a network namespace of its own, the installed kvd-v1 serves a
#     client, the installed batonctl upgrades it to that kvd (the shared
#     library's, as /proc/PID/maps shows) and back, and the client's one
#     connection carries on with its data through both.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local

die() { echo "install-check: $*" >&2; exit 1; }

# 4., inside the network namespace: $1 the scratch directory
handover() {
	local work=$1 dest=$1/dest bin=$1/dest$prefix/bin
	local kvd port hdr n body old new
	export BATON_RUN_DIR=$work/run LD_LIBRARY_PATH=$dest$prefix/lib
	mkdir -p "$BATON_RUN_DIR"
	ip link set lo up
	"$bin/kvd-v1" --service pc --listen 127.0.0.1:0 -q >"$work/kvd.log" 2>&1 &
	kvd=$!
	for _ in $(seq 100); do
		port=$(ss -Hltn 'sport != 0' | awk '{ sub(/.*:/, "", $4); print $4 }')
		[ -n "$port" ] && break
		sleep 0.05
	done
	[ -n "$port" ] || die "kvd-v1 did not listen (see $work/kvd.log)"
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	# one inline command, its one-line reply
	ask() {
		printf '%s\r\n' "$1" >&3
		read -r -t 10 hdr <&3 || die "no reply to $1"
		hdr=${hdr%$'\r'}
		case $hdr in
		\$*)
			n=${hdr#\$}
			read -r -t 10 -N $((n + 2)) body <&3 || die "short reply to $1"
			body=${body%$'\r\n'}
			;;
		*) body=$hdr ;;
		esac
	}
	served_by() {	# $1: kvd_version; prints process_id
		ask "INFO server"
		grep -q "^kvd_version:$1"$'\r'"\$" <<<"$body" ||
			die "INFO says another version than $1: $body"
		sed -n 's/^process_id:\([0-9]*\).*/\1/p' <<<"$body"
	}
	ask "SET k installed"
	[ "$body" = "+OK" ] || die "SET: $body"
	old=$(served_by 1)
	"$bin/batonctl" upgrade pc --log "$work/kvd.log" -- \
		"$work/kvd-pc" --service pc -q >"$work/upgrade.log" 2>&1 ||
		die "batonctl upgrade to kvd-pc failed: $(cat "$work/upgrade.log")"
	new=$(served_by 2)
	[ "$new" != "$old" ] || die "the same pid $old serves after the upgrade"
	grep -q "$dest$prefix/lib/libbaton.so" "/proc/$new/maps" ||
		die "kvd-pc (pid $new) did not map the installed libbaton.so"
	ask "GET k"
	[ "$body" = installed ] || die "GET k after the upgrade: '$body'"
	"$bin/batonctl" upgrade pc --log "$work/kvd.log" -- \
		"$bin/kvd-v1" --service pc -q >"$work/upgrade.log" 2>&1 ||
		die "batonctl upgrade back to kvd-v1 failed: $(cat "$work/upgrade.log")"
	old=$(served_by 1)
	[ "$new" != "$old" ] || die "the same pid $new serves after the upgrade back"
	ask "GET k"
	[ "$body" = installed ] || die "GET k after the upgrade back: '$body'"
	exec 3<&-
	kill "$old"
	# kvd-v1 was started by batonctl, not us: wait for its pid to go
	for _ in $(seq 100); do
		kill -0 "$old" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$old" 2>/dev/null || die "kvd-v1 (pid $old) did not exit on SIGTERM"
	wait "$kvd" || true
	echo "install-check: kvd-v1 -> kvd (libbaton.so, pkg-config) -> kvd-v1, one connection throughout"
}

if [ "${1:-}" = --handover ]; then
	handover "$2"
	exit 0
fi

mkdir -p "$top/build"
work=$(mktemp -d "$top/build/install-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/dest

# 1.
make -C "$top" --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
soname=$(make -C "$top" --no-print-directory -s -f - print-soname <<<'include Makefile
print-soname: ; @echo $(SONAME) $(VERSION)')
read -r soname version <<<"$soname"
for f in bin/batonctl bin/kvd-v1 bin/kvd-v2 bin/baton-bench \
	 lib/libbaton.a "lib/libbaton.so.$version" "lib/$soname" lib/libbaton.so \
	 lib/pkgconfig/baton.pc include/baton.h include/baton_proto.h \
	 include/baton_steer.h include/baton_tcp.h include/baton_steer_maps.h \
	 share/man/man8/batonctl.8 share/man/man8/kvd.8 \
	 share/man/man1/baton-bench.1 share/man/man3/libbaton.3; do
	[ -e "$dest$prefix/$f" ] || die "make install did not install $prefix/$f"
done

# 2.
lib=$dest$prefix/lib/libbaton.so
readelf -d "$lib" | grep -q "Library soname: \[$soname\]" ||
	die "libbaton.so's SONAME is not $soname"
nm -D --defined-only "$lib" | awk '{ print $3 }' | sort >"$work/exported"
tr '\n' ' ' <<<"$(cat "$dest$prefix"/include/baton*.h)" |
	grep -o 'BATON_API[^(;]*(' | grep -o 'baton_[a-z0-9_]*($' | tr -d '(' |
	sort >"$work/declared"
if ! diff -u "$work/declared" "$work/exported" >"$work/diff"; then
	cat "$work/diff" >&2
	die "libbaton.so exports other names than the BATON_API ones of the headers (- declared, + exported)"
fi

# 3.
export PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig
flags=$(pkg-config --define-prefix --cflags --libs baton libbpf) ||
	die "pkg-config knows no baton"
# shellcheck disable=SC2086
cc -std=gnu11 -O2 -D_GNU_SOURCE -DKVD_VERSION=2 -o "$work/kvd-pc" \
	"$top"/userspace/examples/kvd/*.c "$top"/userspace/examples/common/*.c \
	$flags ||
	die "kvd does not build with '$flags'"
readelf -d "$work/kvd-pc" | grep -q "Shared library: \[$soname\]" ||
	die "kvd-pc is not linked against $soname"

# 4.
unshare --net "$0" --handover "$work"
echo "install-check: $(wc -l <"$work/exported") functions exported, $soname; kvd built with: $flags"
