#!/usr/bin/env bash
# Throughput of webhook_receive + reverse_proxy as a ratio to plain reverse_proxy, measured
# in the same run on this machine with wrk (1 KB TOTVS CRM bodies, a fresh event id each),
# RUNS times; each row prints the median ratio and every run's.
#
#   bash bench/bench.sh            # RUNS=5 DURATION=5 CONNS=32 THREADS=1 to change the load
#   CADDY=path/to/caddy bash bench/bench.sh   # measure a prebuilt binary (e.g. an older commit;
#                                             # BENCH_NO_ACK=1 for one from before replicas_ack)
#
# Rows: plain reverse_proxy; webhook_receive with schema validation, no dedupe; with dedupe
# on the embedded store; the same with a transform (the README's TOTVS example); the same two without the per-webhook log line; with dedupe on
# Redis (needs redis-server); async mode on each store (202 once queued durably, then the queue
# delivers to the same backend; the pending count after each run shows whether delivery kept pace). Each gateway and its backend run in one Caddy process; wrk
# runs beside it on the same cores. RSS is the gateway process's peak (VmHWM) over a run,
# and its anonymous and file-backed parts (RssAnon, RssFile: the mapped store file) at the
# run's end.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }

if [ -n "${CADDY:-}" ]; then cp "$CADDY" "$out/caddy"; else go build -o "$out/caddy" ./cmd/caddy; fi

redis_port=16391
have_redis=0
if command -v redis-server >/dev/null; then
	redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$out/redis.log" 2>&1 &
	# a replica, for the replicas_ack row
	redis-server --port $((redis_port + 1)) --bind 127.0.0.1 --save "" --appendonly no --daemonize no --replicaof 127.0.0.1 $redis_port >"$out/replica.log" 2>&1 &
	have_redis=1
	sleep 0.5
fi

. bench/config.sh

caddy_pid=
start() { # $1 name, $2 admin port, $3 store line, $4 extra global options
	config "$2" "$3" "${4:-}" >"$out/$1.caddyfile"
	rm -rf "$out/$1-data"
	BENCH_KEY=bench-key XDG_DATA_HOME="$out/$1-data" "$out/caddy" run --config "$out/$1.caddyfile" --adapter caddyfile >"$out/$1.log" 2>&1 &
	caddy_pid=$!
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$2/config/" >/dev/null 2>&1 && return; sleep 0.1; done
	echo "caddy $1 did not start"; cat "$out/$1.log"; exit 1
}
stop() { # prints the stopped gateway's peak RSS in MB, and its anonymous and file-backed (the mapped store file) RSS at the end
	awk '/^VmHWM/ { h = $2 } /^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { printf "%d(anon:%d,file:%d)", h / 1024, a / 1024, f / 1024 }' "/proc/$caddy_pid/status"
	kill "$caddy_pid" 2>/dev/null || true
	wait "$caddy_pid" 2>/dev/null || true
}

pending() { # $1 admin port -> deliveries of the async route still pending right after its run
	curl -fs "http://127.0.0.1:$1/webhooks/endpoints" | tr '{,' '\n\n' | sed -n 's/^"pending"://p' | awk '{ s += $1 } END { print s + 0 }'
}
run() { # $1 url -> "rps=… p50_ms=… p99_ms=… non2xx=… errors=…"
	wrk -t1 -c8 -d1s -s bench/request.lua "$1" >/dev/null 2>&1 || true # warm up
	wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s bench/request.lua "$1" | sed -n 's/^BENCH //p'
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { awk -v a="$(field "$1" rps)" -v b="$(field "$2" rps)" 'BEGIN { printf "%.2f", a / b }'; }
mean_rps() { # the mean of several runs' rps, as a run line
	local sum=0 n=0
	for x in "$@"; do sum=$(awk -v s="$sum" -v v="$(field "$x" rps)" 'BEGIN { print s + v }'); n=$((n + 1)); done
	echo "rps=$(awk -v s="$sum" -v n="$n" 'BEGIN { printf "%.1f", s / n }')"
}

rows=(plain nodedupe embedded transform guard nolog async nodedupe_quiet embedded_quiet)
[ $have_redis = 1 ] && rows+=(redis async_redis)
[ $have_redis = 1 ] && [ -z "${BENCH_NO_ACK:-}" ] && rows+=(async_redis_ack) # BENCH_NO_ACK=1: a binary from before replicas_ack
declare -A ratios rps rss backlog
for r in $(seq "$RUNS"); do
	# plain reverse_proxy is measured once in each gateway process of the run; the run's
	# plain is their mean, so a slow moment of the machine weighs less.
	start embedded 12019 "store embedded"
	plains=("$(run http://127.0.0.1:18101/)")
	nodedupe=$(run http://127.0.0.1:18102/)
	embedded=$(run http://127.0.0.1:18103/)
	transform=$(run http://127.0.0.1:18106/)
	guard=$(run http://127.0.0.1:18104/)
	nolog=$(run http://127.0.0.1:18105/)
	async=$(run http://127.0.0.1:18107/)
	backlog[embedded]+="$(pending 12019) "
	rss[embedded]+="$(stop) "
	# The same without the per-webhook INFO log line (Caddy's logs at WARN), since plain
	# reverse_proxy logs nothing per request either.
	start quiet 12021 "store embedded" "log {
		level WARN
	}"
	plains+=("$(run http://127.0.0.1:18101/)")
	nodedupe_quiet=$(run http://127.0.0.1:18102/)
	embedded_quiet=$(run http://127.0.0.1:18103/)
	rss[quiet]+="$(stop) "
	if [ $have_redis = 1 ]; then
		start redis 12020 "store redis redis://127.0.0.1:$redis_port"
		plains+=("$(run http://127.0.0.1:18101/)")
		redis=$(run http://127.0.0.1:18103/)
		async_redis=$(run http://127.0.0.1:18107/)
		backlog[redis]+="$(pending 12020) "
		rss[redis]+="$(stop) "
		[ -z "${BENCH_NO_ACK:-}" ] && start redis_ack 12022 "store redis redis://127.0.0.1:$redis_port {
			replicas_ack 1
		}"
		if [ -z "${BENCH_NO_ACK:-}" ]; then
			plains+=("$(run http://127.0.0.1:18101/)")
			async_redis_ack=$(run http://127.0.0.1:18107/)
			stop >/dev/null
		fi
	fi
	plain=$(mean_rps "${plains[@]}")
	for row in "${rows[@]}"; do
		ratios[$row]+="$(ratio "${!row}" "$plain") "
		rps[$row]+="$(field "${!row}" rps | cut -d. -f1) "
	done
	echo "run $r: plain $(field "$plain" rps) req/s; ratios: $(for row in "${rows[@]:1}"; do printf '%s=%s ' "$row" "$(ratio "${!row}" "$plain")"; done)" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
label() {
	case $1 in
	plain) echo "plain reverse_proxy" ;;
	nodedupe) echo "webhook_receive (auth + schema), no dedupe" ;;
	embedded) echo "webhook_receive + dedupe, embedded store" ;;
	transform) echo "webhook_receive + dedupe, embedded store, + the TOTVS transform" ;;
	guard) echo "+ the stale-event guard (totvs_crm's default), embedded store" ;;
	nolog) echo "dedupe, embedded store, without the request log" ;;
	nodedupe_quiet) echo "no dedupe, without the per-webhook INFO log line" ;;
	embedded_quiet) echo "embedded store, without the per-webhook INFO log line" ;;
	redis) echo "webhook_receive + dedupe, Redis store" ;;
	async) echo "async (202 once queued durably, then delivered), embedded store" ;;
	async_redis) echo "async (202 once queued durably, then delivered), Redis store" ;;
	async_redis_ack) echo "async, Redis store with replicas_ack 1 (the 202 waits for a replica)" ;;
	esac
}
echo
echo "$(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); wrk -t$THREADS -c$CONNS -d${DURATION}s, 1 KB bodies, $RUNS runs"
echo "Async deliveries still pending when each run's load stopped (delivered/s behind ingest): embedded ${backlog[embedded]}${backlog[redis]:+; Redis ${backlog[redis]}}"
echo "Gateway peak RSS (MB) per run, with the anonymous and file-backed (mapped store file) RSS at the run's end: embedded ${rss[embedded]}; no log line ${rss[quiet]}${rss[redis]:+; Redis ${rss[redis]}}"
echo
echo "| setup | median ratio to plain reverse_proxy | runs | req/s (runs) |"
echo "|---|---|---|---|"
for row in "${rows[@]}"; do
	printf '| %s | **%s** | %s | %s |\n' "$(label "$row")" "$(echo "${ratios[$row]}" | median)" "$(echo "${ratios[$row]}" | sed 's/ $//; s/ /, /g')" "$(echo "${rps[$row]}" | sed 's/ $//; s/ /, /g')"
done
