#!/usr/bin/env bash
# Outbound throughput: events published through webhook_publish (each 202 = durable) and
# delivered to a local sink, on the embedded store and on Redis (AOF off, then AOF with
# appendfsync everysec). Prints events/s and publish-to-delivery latency percentiles.
#
#   bash bench/outbound.sh          # EVENTS=20000 PUBLISHERS=64 WORKERS=64 to change the load
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-20000}
PUBLISHERS=${PUBLISHERS:-64}
WORKERS=${WORKERS:-64}
out=$(mktemp -d)
trap 'redis-cli -p 16392 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/outbound" ./bench/outbound
run() { "$out/outbound" -caddy "$out/caddy" -n "$EVENTS" -c "$PUBLISHERS" -workers "$WORKERS" "$@"; echo; }
run -store embedded
if command -v redis-server >/dev/null; then
	redis-server --port 16392 --bind 127.0.0.1 --save "" --appendonly no --dir "$out" --daemonize yes >/dev/null
	sleep 0.5
	run -store redis://127.0.0.1:16392
	redis-cli -p 16392 config set appendonly yes >/dev/null
	redis-cli -p 16392 config set appendfsync everysec >/dev/null
	sleep 1
	echo "(Redis with appendonly yes, appendfsync everysec)"
	run -store redis://127.0.0.1:16392
fi
