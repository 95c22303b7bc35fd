#!/usr/bin/env bash
# make bench-conns: the blackout against the number of connections, at
# --rate 1, in one sitting, beside the floor; a table on stdout, the figures
# in Documentation/blackout-conns.dat and their plot (gnuplot) in
# Documentation/blackout-conns.svg.
#
#   CONNS="0 100 1000 10000 15000"  the connection counts
#   UPGRADES=10                     upgrades at each
#   PROCS=1                         kvd instances (baton-bench --procs)
#   OUT=Documentation/blackout-conns  where the .dat and .svg go
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
conns=${CONNS:-0 100 1000 10000 15000}
upgrades=${UPGRADES:-10}
procs=${PROCS:-1}
out=${OUT:-Documentation/blackout-conns}
tmp=$(mktemp -d /tmp/blackout-conns.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u '+%F %H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "--rate 1, $upgrades upgrades, --procs $procs" > "$tmp/dat"
echo "# conns blackout_median_ms blackout_max_ms stall_max_ms latency_max_ms" \
     "floor_us scm_us_per_fd steps_share_min_pct steps_share_max_pct dropped" \
     "integrity_errors failed_connects" >> "$tmp/dat"
for n in $conns; do
	# no persistent connection: a new one a second, so that there is a
	# request to judge, and the upgrades move next to nothing
	if [ "$n" = 0 ]; then
		load=(--conns 0 --connect-rate 1)
	else
		load=(--conns "$n")
	fi
	echo "== $n connections" >&2
	$bin/baton-bench -j "${load[@]}" --rate 1 --procs "$procs" \
		--upgrades "$upgrades" > "$tmp/$n.json"
	python3 - "$n" "$tmp/$n.json" >> "$tmp/dat" <<'EOF'
import json, sys
n, r = sys.argv[1], json.load(open(sys.argv[2]))
share = [100 * s / b for s, b in zip(r["blackout_steps_ms"], r["blackout_ms"])
         if s >= 0 and b > 0]
print(n, r["blackout_median_ms"], r["blackout_max_ms"], r["stall_max_ms"],
      r["latency_max_ms"], r["floor_us"], r["floor_scm_us_per_fd"],
      "%.1f" % min(share, default=-1), "%.1f" % max(share, default=-1),
      r["dropped"], r["integrity_errors"], r["failed_connects"])
EOF
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$tmp/dat"
cp "$tmp/dat" "$out.dat"

# the table, and the slope: least squares of the median blackout on the
# connection count, in us a connection, beside SCM_RIGHTS's cost a socket
python3 - "$out.dat" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
print(open(sys.argv[1]).readline().strip("# \n"))
print("%7s %10s %10s %10s %10s %9s %8s %9s %s" % ("conns", "blackout", "blackout",
      "stall", "no-upgr.", "median /", "floor", "steps /", "dropped/"))
print("%7s %10s %10s %10s %10s %9s %8s %9s %s" % ("", "median ms", "max ms",
      "max ms", "max ms", "floor", "us", "blackout%", "integrity/connects"))
for r in rows:
    print("%7s %10.3f %10.3f %10.3f %10.3f %9.1f %8.1f %9s %s/%s/%s" % (r[0],
          float(r[1]), float(r[2]), float(r[3]), float(r[4]),
          float(r[1]) * 1000 / float(r[5]), float(r[5]),
          "%s..%s" % (r[7], r[8]), r[9], r[10], r[11]))
x = [float(r[0]) for r in rows]
y = [float(r[1]) * 1000 for r in rows]
mx, my = sum(x) / len(x), sum(y) / len(y)
sxx = sum((a - mx) ** 2 for a in x)
slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx else 0
scm = sum(float(r[6]) for r in rows) / len(rows)
print("slope of the median blackout: %.3f us a connection; SCM_RIGHTS: %.3f us"
      " a socket (%.1fx)" % (slope, scm, slope / scm if scm > 0 else 0))
EOF

gnuplot <<EOF
set terminal svg size 800,480 dynamic noenhanced font "sans,12"
set output "$out.svg"
set title "Blackout against connections (kvd, --rate 1, $upgrades upgrades each, --procs $procs)"
set xlabel "connections moved"
set ylabel "ms"
set key top left
set grid
set datafile commentschars "#"
plot "$out.dat" using 1:3 with linespoints title "blackout max", \
     "$out.dat" using 1:2 with linespoints title "blackout median", \
     "$out.dat" using 1:(\$6 / 1000 + \$1 * \$7 / 1000) with lines dashtype 2 \
	title "floor: a round trip + SCM_RIGHTS for each socket"
EOF
echo "wrote $out.dat and $out.svg" >&2
