#!/usr/bin/env bash
# CPU profile of one benchmark row under load: runs Caddy (built from this tree, or the
# binary given) with bench/config.sh, drives the row with wrk, and prints the top entries
# of a 10 s profile taken from Caddy's admin endpoint while the load runs.
#
#   bash bench/profile.sh [caddy-binary]     # ROW=18103 (embedded dedupe) TOP=15 PROFILE_OUT=cpu.pprof
#                                            # STORE="store redis redis://127.0.0.1:6379" for a running Redis
set -euo pipefail
cd "$(dirname "$0")/.."
ROW=${ROW:-18103}
STORE=${STORE:-store embedded}
TOP=${TOP:-15}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
bin=${1:-}
if [ -z "$bin" ]; then
	bin="$out/caddy"
	go build -o "$bin" ./cmd/caddy
fi
. bench/config.sh
config 12029 "$STORE" "" >"$out/caddyfile"
BENCH_KEY=bench-key XDG_DATA_HOME="$out/data" "$bin" run --config "$out/caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 &
for _ in $(seq 100); do curl -fs http://127.0.0.1:12029/config/ >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs http://127.0.0.1:12029/config/ >/dev/null || { cat "$out/caddy.log"; exit 1; }
wrk -t1 -c32 -d14s -s bench/request.lua "http://127.0.0.1:$ROW/" >"$out/wrk.txt" &
sleep 2
curl -fs -o "$out/cpu.pprof" "http://127.0.0.1:12029/debug/pprof/profile?seconds=10"
wait %2 2>/dev/null || true
sed -n 's/^BENCH //p' "$out/wrk.txt"
[ -n "${PROFILE_OUT:-}" ] && cp "$out/cpu.pprof" "$PROFILE_OUT"
go tool pprof -top -nodecount="$TOP" "$bin" "$out/cpu.pprof" 2>/dev/null | sed -n '4,$p'
