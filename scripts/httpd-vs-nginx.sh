#!/usr/bin/env bash
# make bench-http: the same wrk load (wrk -c 1000 -d 30s, Debian's wrk)
# against baton's httpd while batonctl upgrades it 10 times, and against
# Debian's nginx, serving the same files, while it does its binary upgrade
# (USR2, WINCH, QUIT) 10 times; then one table for both.
#
# Connections the clients saw closed are counted by scripts/wrk-closes.lua
# (wrk alone folds them into its socket errors): both servers number the
# requests of each connection in a response header, and every connection
# wrk had to open past its own -c was opened again after a close.
#
# HTTP_CONNS, HTTP_SECONDS, HTTP_UPGRADES and HTTP_FILE_KB change the load
# (1000, 30, 10, 4). Everything runs on loopback, in a temporary directory,
# nginx with a configuration of its own there (never /etc/nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=$top/build/bin
conns=${HTTP_CONNS:-1000}
secs=${HTTP_SECONDS:-30}
upgrades=${HTTP_UPGRADES:-10}
file_kb=${HTTP_FILE_KB:-4}
nginx=/usr/sbin/nginx

for tool in wrk "$nginx" "$bin/httpd-v1" "$bin/batonctl"; do
	command -v "$tool" >/dev/null ||
		{ echo "httpd-vs-nginx: $tool is missing: run 'make deps all'" >&2; exit 1; }
done
# wrk holds a file a connection; each server holds one, batonctl a copy
if [ "$(ulimit -n)" -lt $((conns * 3 + 100)) ]; then
	echo "httpd-vs-nginx: $conns connections need $((conns * 3 + 100)) open files, the limit is $(ulimit -n)" >&2
	exit 1
fi

dir=$(mktemp -d /tmp/httpd-vs-nginx.XXXXXX)
chmod 755 "$dir"	# nginx's workers run as nobody
www=$dir/www
export BATON_RUN_DIR=$dir/run
mkdir -p "$www" "$BATON_RUN_DIR" "$dir/nginx"
wrk_pid= httpd_pid=
cleanup() {
	set +e		# whatever is already gone, the rest is still cleaned
	[ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
	for f in "$dir"/nginx/nginx.pid "$dir"/nginx/nginx.pid.oldbin; do
		[ -s "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
	[ -s "$BATON_RUN_DIR/httpd.pid" ] &&
		kill -TERM "$(cat "$BATON_RUN_DIR/httpd.pid")" 2>/dev/null
	[ -n "$httpd_pid" ] && kill -TERM "$httpd_pid" 2>/dev/null
	sleep 0.2
	rm -rf "$dir"
}
trap cleanup EXIT

# the same files for both: a page of $file_kb KiB, and a few more
{
	echo '<!DOCTYPE html><html><head><title>baton</title></head><body>'
	for i in $(seq $((file_kb * 1024 / 64))); do
		printf '<p>%-52s</p>\n' "line $i of a static page"
	done
	echo '</body></html>'
} | head -c $((file_kb * 1024)) >"$www/index.html"
head -c 1048576 /dev/zero | tr '\0' 'b' >"$www/1m.txt"
echo 'User-agent: *' >"$www/robots.txt"

# Nothing below forks while it waits: the polling must not take the CPU
# from the servers it times.
exec {napfd}<> <(:)	# read -t on it: a sleep without a fork
nap() { read -rt "$1" -u "$napfd" _ || true; }
now() { NOW=${EPOCHREALTIME/./}; }	# microseconds, in $NOW
# running, not a zombie
alive() {
	local s
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z && ${s:0:1} != X ]]
}
# waits for every pid given to be gone; 1 after 30 s
wait_gone() {
	local end p
	now
	end=$((NOW + 30000000))
	for p in "$@"; do
		while alive "$p"; do
			now
			[ "$NOW" -lt "$end" ] || return 1
			nap 0.001
		done
	done
}
free_port() {
	local p=$((20000 + RANDOM % 30000))
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}
wait_port() {
	local i
	for i in $(seq 500); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		nap 0.01
	done
	return 1
}
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print !NR ? "-" : (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { sort -n | awk 'END { print NR ? $1 : "-" }'; }

start_wrk() {	# $1: name, $2: port
	wrk -c "$conns" -d "${secs}s" -s "$top/scripts/wrk-closes.lua" \
		"http://127.0.0.1:$2/index.html" >"$dir/$1.wrk" 2>&1 &
	wrk_pid=$!
	now
	t_start=$NOW
}

# The upgrades, spread over the run: the first 2 s in, the last 5 s
# before the end, each at its time however long the one before took.
upgrade_times() {
	local span=$(((secs - 7) * 1000000)) i
	[ "$upgrades" -gt 0 ] || return 0
	for i in $(seq 0 $((upgrades - 1))); do
		echo $((2000000 + (upgrades > 1 ? span * i / (upgrades - 1) : 0)))
	done
}
wait_until() {	# $1: us after t_start
	now
	while [ $((NOW - t_start)) -lt "$1" ]; do
		nap 0.005
		now
	done
}

wrk_line() { grep '^wrk-closes:' "$dir/$1.wrk" || { cat "$dir/$1.wrk" >&2; return 1; }; }
wrk_val() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

# ---- baton's httpd, upgraded by batonctl
port=$(free_port)
echo "== httpd (baton) on 127.0.0.1:$port: wrk -c $conns -d ${secs}s, $upgrades upgrades with batonctl"
"$bin/httpd-v1" --root "$www" --listen "127.0.0.1:$port" --quiet \
	2>>"$dir/httpd.log" &
httpd_pid=$!
wait_port "$port" || { echo "httpd did not start:"; cat "$dir/httpd.log"; exit 1; }
start_wrk baton "$port"
to=2 n=0
: >"$dir/baton.lived"
: >"$dir/baton.moved"
printf '%-3s %-10s %-14s %6s %10s %10s %10s %10s\n' "#" versions pids moved blackout upgrade "old exit" "old lived"
for at in $(upgrade_times); do
	wait_until "$at"
	n=$((n + 1))
	now
	t0=$NOW
	out=$("$bin/batonctl" -j upgrade httpd --log "$dir/httpd.log" -- \
		"$bin/httpd-v$to" --root "$www" --quiet) ||
		{ echo "upgrade $n failed: $out"; exit 1; }
	old=$(field old_pid "$out")
	wait_gone "$old" || { echo "the old httpd (pid $old) did not exit"; exit 1; }
	now
	lived=$(((NOW - t0) / 1000))
	echo "$lived" >>"$dir/baton.lived"
	echo "$(field conns "$out")" >>"$dir/baton.moved"
	# batonctl's own figures: its upgrade until the new served, and the
	# old's exit after that as the library saw it; then the process gone
	printf '%-3s %-10s %-14s %6s %7.1f ms %7.1f ms %7.1f ms %7s ms\n' "$n" \
		"v$((3 - to)) -> v$to" "$old -> $(field new_pid "$out")" \
		"$(field conns "$out")" "$(field blackout_ms "$out")" \
		"$(field total_ms "$out")" "$(field old_exit_ms "$out")" "$lived"
	to=$((3 - to))
done
wait "$wrk_pid" || true
wrk_pid=
kill -TERM "$(cat "$BATON_RUN_DIR/httpd.pid")" 2>/dev/null || true
httpd_pid=

# ---- nginx, binary upgrade by signals
port=$(free_port)
cat >"$dir/nginx/nginx.conf" <<EOF
# Debian's defaults (/etc/nginx/nginx.conf) are not read: worker_connections
# 768 would not hold $conns clients, keepalive_requests 1000 would close a
# connection after 1000 requests, upgrade or not.
daemon on;
master_process on;
worker_processes 1;
worker_rlimit_nofile 8192;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log notice;
events {
	worker_connections 4096;
}
http {
	access_log off;
	sendfile on;
	tcp_nodelay on;
	keepalive_timeout 300s;
	keepalive_requests 1000000000;
	default_type application/octet-stream;
	types {
		text/html html;
		text/plain txt;
	}
	client_body_temp_path $dir/nginx/body;
	proxy_temp_path $dir/nginx/proxy;
	fastcgi_temp_path $dir/nginx/fastcgi;
	uwsgi_temp_path $dir/nginx/uwsgi;
	scgi_temp_path $dir/nginx/scgi;
	server {
		# httpd's listen() backlog too; nginx's own default is 511
		listen 127.0.0.1:$port backlog=4096;
		root $www;
		location / {
			add_header X-Connection-Requests \$connection_requests always;
		}
	}
}
EOF
echo
echo "== nginx $("$nginx" -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1:$port: the same load, $upgrades binary upgrades (USR2, WINCH, QUIT)"
"$nginx" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log"
wait_port "$port" || { echo "nginx did not start:"; cat "$dir/nginx/error.log"; exit 1; }
start_wrk nginx "$port"
: >"$dir/nginx.lived"
printf '%-3s %-24s %14s\n' "#" "masters" "old lived"
n=0
for at in $(upgrade_times); do
	wait_until "$at"
	n=$((n + 1))
	old=$(cat "$dir/nginx/nginx.pid")
	workers=$(pgrep -P "$old" | tr '\n' ' ')
	now
	t0=$NOW
	kill -USR2 "$old"
	# the new master has written its pid, and its worker runs
	for _ in $(seq 5000); do
		new= kids=
		read -r new 2>/dev/null <"$dir/nginx/nginx.pid" || true
		[ -n "$new" ] && [ "$new" != "$old" ] &&
			{ read -r kids 2>/dev/null <"/proc/$new/task/$new/children" || true; }
		[ -n "$kids" ] && break
		new=
		nap 0.001
	done
	[ -n "$new" ] || { echo "nginx's new master did not start"; cat "$dir/nginx/error.log"; exit 1; }
	kill -WINCH "$old"
	kill -QUIT "$old"
	# shellcheck disable=SC2086
	wait_gone "$old" $workers || { echo "the old nginx (pid $old) did not exit"; exit 1; }
	now
	lived=$(((NOW - t0) / 1000))
	echo "$lived" >>"$dir/nginx.lived"
	printf '%-3s %-24s %11s ms\n' "$n" "$old -> $new" "$lived"
done
wait "$wrk_pid" || true
wrk_pid=

# ---- one table
b=$(wrk_line baton)
x=$(wrk_line nginx)
row() {	# label, format, value for baton, value for nginx
	printf "%-44s $2 $2\n" "$1" "$3" "$4"
}
closed() { echo $(($(wrk_val "$1" opened) - conns)); }
errs() { echo "$(wrk_val "$1" connect)/$(wrk_val "$1" read)/$(wrk_val "$1" write)/$(wrk_val "$1" timeout)"; }
ms() { awk -v us="$(wrk_val "$1" "$2")" 'BEGIN { printf "%.1f", us / 1000 }'; }
echo
echo "wrk -c $conns -d ${secs}s, $upgrades upgrades each, $file_kb KiB page, loopback"
row "" "%16s" "baton httpd" "nginx"
row "requests" "%16s" "$(wrk_val "$b" requests)" "$(wrk_val "$x" requests)"
row "connections closed under the clients" "%16s" "$(closed "$b")" "$(closed "$x")"
row "  announced (Connection: close)" "%16s" "$(wrk_val "$b" announced)" "$(wrk_val "$x" announced)"
row "socket errors connect/read/write/timeout" "%16s" "$(errs "$b")" "$(errs "$x")"
row "non-2xx responses" "%16s" "$(wrk_val "$b" status)" "$(wrk_val "$x" status)"
row "latency p99, ms" "%16s" "$(ms "$b" latency_p99_us)" "$(ms "$x" latency_p99_us)"
row "latency max (worst), ms" "%16s" "$(ms "$b" latency_max_us)" "$(ms "$x" latency_max_us)"
row "old process lived, ms: median" "%16s" "$(median <"$dir/baton.lived")" "$(median <"$dir/nginx.lived")"
row "                        max" "%16s" "$(max <"$dir/baton.lived")" "$(max <"$dir/nginx.lived")"
echo "(closed: connections wrk opened past its $conns, from X-Connection-Requests: 1;"
echo " old process lived: from batonctl's start or USR2 until the old process, and"
echo " nginx's old workers, were gone)"
[ "$upgrades" -eq 0 ] ||
	echo "baton moved $(sort -n "$dir/baton.moved" | head -1) to $(max <"$dir/baton.moved") connections an upgrade"
unmarked=$(( $(wrk_val "$b" unmarked) + $(wrk_val "$x" unmarked) ))
[ "$unmarked" -eq 0 ] || { echo "httpd-vs-nginx: $unmarked responses had no X-Connection-Requests: the closes above are not exact" >&2; exit 1; }
