#!/usr/bin/env bash
# Subscriptions at scale.
#
# 1. Publish latency (wrk --latency on webhook_publish) with 1 subscription, with 10 that
#    match, and with 10,000 of which the same 10 match (the other 9,990 take other types,
#    exact names and globs): the registry's index must keep the last within 1.5x of the 10.
#    On the embedded store and on Redis.
# 2. Idle cost on Redis: Caddy's CPU over IDLE_SECONDS with 1,000 idle subscriptions (and,
#    for comparison, with 1,000 idle Caddyfile endpoints; CADDY=<binary> measures an older
#    build that way).
#
#   bash bench/subscriptions.sh       # SUBS=10000 IDLE=1000 IDLE_SECONDS=30 DURATION=10s
#   IDLE_ONLY=1 CADDY=/tmp/old-caddy bash bench/subscriptions.sh   # the idle part, another build
#   STORES=redis bash bench/subscriptions.sh                        # one store
#   PROFILE_OUT=/tmp/subs.pprof bash bench/subscriptions.sh         # profile the 10,000 row
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${SUBS:-10000}
IDLE=${IDLE:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-30}
DURATION=${DURATION:-10s}
out=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	redis-cli -p 16393 shutdown nosave >/dev/null 2>&1 || true
	rm -rf "$out"
}
trap cleanup EXIT
if [ -z "${CADDY:-}" ]; then
	go build -o "$out/caddy" ./cmd/caddy
	CADDY="$out/caddy"
fi

config() { # $1 store line, $2 extra webhooks lines
	cat <<CFG
{
	admin 127.0.0.1:18201
	persist_config off
	log default {
		level WARN
	}
	webhooks {
		$1
		$2
	}
}
http://:18202 {
	bind 127.0.0.1
	webhook_publish
}
http://:18200 {
	bind 127.0.0.1
	respond 200
}
CFG
}

start() { # $1 store line, $2 extra
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
	rm -rf "$out/data"
	config "$1" "$2" >"$out/Caddyfile"
	XDG_DATA_HOME="$out/data" "$CADDY" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do curl -fs "localhost:18201/webhooks/subscriptions?limit=1" >/dev/null 2>&1 && return; sleep 0.1; done
	cat "$out/caddy.log"; exit 1
}

# create N BODY-TEMPLATE: POSTs N subscriptions (%d is replaced by the index), 8 at a time.
create() {
	seq "$1" | xargs -P 8 -I{} sh -c "printf '$2' {} | curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- localhost:18201/webhooks/subscriptions" \
		|| { echo "creating subscriptions failed"; tail "$out/caddy.log"; exit 1; }
}

latency() { # prints "p50 p99 req/s"
	wrk -t2 -c16 -d"$DURATION" --latency -s bench/publish.lua http://127.0.0.1:18202/ >"$out/wrk.txt"
	awk '/^ +50%/{p50=$2} /^ +99%/{p99=$2} /Requests\/sec/{rps=$2} END{print p50, p99, rps}' "$out/wrk.txt"
}

bench_store() { # $1 label, $2 store line
	start "$2" "subscriptions {
			allow_private
		}"
	create 1 '{"url":"http://127.0.0.1:18200/s%s","events":["deal.won"]}'
	sleep 1
	echo "$1, 1 subscription:              $(latency)"
	create 9 '{"url":"http://127.0.0.1:18200/m%s","events":["deal.*"]}'
	sleep 1
	echo "$1, 10 (all match):              $(latency)"
	t0=$(date +%s.%N)
	create $((SUBS - 10)) '{"url":"http://127.0.0.1:18200/o%s","events":["type%s.created","type%s.*"]}'
	t1=$(date +%s.%N)
	echo "   (created $((SUBS - 10)) subscriptions in $(echo "$t1 - $t0" | bc) s)"
	sleep 2
	prof=""
	if [ -n "${PROFILE_OUT:-}" ]; then # a CPU profile of Caddy during that run
		curl -s "localhost:18201/debug/pprof/profile?seconds=8" >"$PROFILE_OUT.$1" &
		prof=$!
		curl -s "localhost:18201/debug/pprof/heap" >"$PROFILE_OUT.$1.heap"
	fi
	echo "$1, $SUBS (10 match):           $(latency)"
	[ -n "$prof" ] && wait "$prof"
	true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
idle() { # $1 label
	sleep 5 # let the runners settle
	local a b
	a=$(cpu_ticks)
	sleep "$IDLE_SECONDS"
	b=$(cpu_ticks)
	echo "$1: $(echo "scale=2; ($b - $a) * 100 / $(getconf CLK_TCK) / $IDLE_SECONDS" | bc) % of one core"
}

STORES=${STORES:-embedded redis}
[ -n "${IDLE_ONLY:-}" ] && STORES=""
[ -n "$STORES" ] && echo "publish latency: p50 p99 req/s (wrk -t2 -c16 -d$DURATION, deliveries to a local sink run meanwhile)"
if [[ " $STORES " == *" embedded "* ]]; then
	bench_store embedded "store embedded"
fi
if command -v redis-server >/dev/null; then
	redis-server --port 16393 --bind 127.0.0.1 --save "" --appendonly no --dir "$out" --daemonize yes >/dev/null
	sleep 0.5
	if [[ " $STORES " == *" redis "* ]]; then
		bench_store redis "store redis redis://127.0.0.1:16393"
	fi
	redis-cli -p 16393 flushall >/dev/null

	echo
	echo "idle cost on Redis over ${IDLE_SECONDS}s"
	if "$CADDY" list-modules 2>/dev/null | grep -q webhook_subscriptions; then
		start "store redis redis://127.0.0.1:16393" "subscriptions {
			allow_private
		}"
		create "$IDLE" '{"url":"http://127.0.0.1:18200/i%s","events":["idle%s.*"]}'
		idle "$IDLE idle subscriptions"
		redis-cli -p 16393 flushall >/dev/null
	fi
	eps=""
	for i in $(seq "$IDLE"); do eps+="endpoint idle$i {
			url http://127.0.0.1:18200/e$i
			events idle$i.*
			allow_private
		}
		"; done
	start "store redis redis://127.0.0.1:16393" "$eps"
	idle "$IDLE idle Caddyfile endpoints"
	start "store redis redis://127.0.0.1:16393" ""
	idle "no endpoints"
fi
