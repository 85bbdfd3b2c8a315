#!/usr/bin/env bash
# Throughput of webhook_receive + reverse_proxy as a ratio to plain reverse_proxy, measured
# in one run on this machine with wrk (1 KB TOTVS CRM bodies, a fresh event id each).
#
#   bash bench/bench.sh            # DURATION=10 CONNS=32 THREADS=1 to change the load
#
# Rows: plain reverse_proxy; webhook_receive with schema validation, no dedupe; with dedupe
# on the embedded store; with dedupe on Redis (needs redis-server). Each gateway and its
# backend run in one Caddy process; wrk runs beside it on the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }

go build -o "$out/caddy" ./cmd/caddy

redis_port=16391
have_redis=0
if command -v redis-server >/dev/null; then
	redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$out/redis.log" 2>&1 &
	have_redis=1
	sleep 0.5
fi

. bench/config.sh

start() { # $1 name, $2 admin port, $3 store line, $4 extra global options
	config "$2" "$3" "${4:-}" >"$out/$1.caddyfile"
	BENCH_KEY=bench-key XDG_DATA_HOME="$out/$1-data" "$out/caddy" run --config "$out/$1.caddyfile" --adapter caddyfile >"$out/$1.log" 2>&1 &
	caddy_pid=$!
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/config/" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "caddy $1 did not start"; cat "$out/$1.log"; exit 1
}

run() { # $1 url -> "rps p50 p99 non2xx errors"
	wrk -t1 -c8 -d1s -s bench/request.lua "$1" >/dev/null 2>&1 || true # warm up
	wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s bench/request.lua "$1" | sed -n 's/^BENCH //p'
}

start embedded 12019 "store embedded"
plain=$(run http://127.0.0.1:18101/)
nodedupe=$(run http://127.0.0.1:18102/)
embedded=$(run http://127.0.0.1:18103/)
kill $caddy_pid 2>/dev/null || true
sleep 0.5
# The same without the per-webhook INFO log line (Caddy's logs at WARN), since plain
# reverse_proxy logs nothing per request either.
start quiet 12021 "store embedded" "log {
		level WARN
	}"
nodedupe_quiet=$(run http://127.0.0.1:18102/)
embedded_quiet=$(run http://127.0.0.1:18103/)
kill $caddy_pid 2>/dev/null || true
redis=""
if [ $have_redis = 1 ]; then
	sleep 0.5
	start redis 12020 "store redis redis://127.0.0.1:$redis_port"
	redis=$(run http://127.0.0.1:18103/)
fi

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { awk -v a="$(field "$1" rps)" -v b="$(field "$plain" rps)" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(field "$2" rps)" "$(ratio "$2")" "$(field "$2" p50_ms)" "$(field "$2" p99_ms)" "$(field "$2" non2xx)"; }

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); wrk -t$THREADS -c$CONNS -d${DURATION}s, 1 KB bodies"
echo
echo "| setup | req/s | ratio to plain reverse_proxy | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|---|"
row "plain reverse_proxy" "$plain"
row "webhook_receive (auth + schema), no dedupe" "$nodedupe"
row "webhook_receive + dedupe, embedded store" "$embedded"
row "webhook_receive (auth + schema), no dedupe, no per-webhook log line" "$nodedupe_quiet"
row "webhook_receive + dedupe, embedded store, no per-webhook log line" "$embedded_quiet"
[ -n "$redis" ] && row "webhook_receive + dedupe, Redis store" "$redis"
exit 0
