#!/usr/bin/env bash
# One benchmark row, two builds alternated in one sitting: each round starts build A, then
# build B, and in each process measures plain reverse_proxy and the row right after it, so
# every ratio is taken against plain in the same process and the same minute. Prints each
# round's ratios and the medians.
#
#   bash bench/ab.sh OLD_CADDY NEW_CADDY      # ROW=18107 (async) STORE="store embedded"
#                                             # ROUNDS=4 DURATION=8 CONNS=32
# Ports and rows are bench/config.sh's (18103 dedupe, 18107 async; STORE="store redis
# redis://127.0.0.1:6379" for a running Redis). FLUSH_REDIS=127.0.0.1:6379 empties that
# (benchmark) Redis before each run, so that no build inherits the other's queue.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# = 2 ] || { echo "usage: bench/ab.sh OLD_CADDY NEW_CADDY"; exit 2; }
ROW=${ROW:-18107}
STORE=${STORE:-store embedded}
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
. bench/config.sh
config 12039 "$STORE" "" >"$out/caddyfile"
rps() { # $1 url
	wrk -t1 -c8 -d1s -s bench/request.lua "$1" >/dev/null 2>&1 || true
	wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/request.lua "$1" | sed -n 's/^BENCH rps=\([0-9.]*\).*/\1/p'
}
declare -A ratios
for r in $(seq "$ROUNDS"); do
	for b in A B; do
		bin=$1
		[ $b = B ] && bin=$2
		rm -rf "$out/data"
		if [ -n "${FLUSH_REDIS:-}" ]; then redis-cli -h "${FLUSH_REDIS%:*}" -p "${FLUSH_REDIS##*:}" flushall >/dev/null; fi
		BENCH_KEY=bench-key XDG_DATA_HOME="$out/data" "$bin" run --config "$out/caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 &
		pid=$!
		for _ in $(seq 100); do curl -fs http://127.0.0.1:12039/config/ >/dev/null 2>&1 && break; sleep 0.1; done
		plain=$(rps http://127.0.0.1:18101/)
		row=$(rps "http://127.0.0.1:$ROW/")
		kill $pid
		wait $pid 2>/dev/null || true
		ratio=$(awk -v a="$row" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')
		ratios[$b]+="$ratio "
		echo "round $r $b: plain $plain req/s, row $row req/s, ratio $ratio"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "row $ROW ($STORE), wrk -t1 -c$CONNS -d${DURATION}s: A $(echo "${ratios[A]}" | median) (${ratios[A]% }), B $(echo "${ratios[B]}" | median) (${ratios[B]% })"
