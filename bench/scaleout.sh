#!/usr/bin/env bash
# What each webhook costs a shared Redis Cluster, and whether exactness holds across
# instances. Starts its own 3-master, 3-replica Redis Cluster on loopback and two Caddy
# instances on it (this tree's build, or CADDY=<binary>), then prints:
#
#   - per case, the Redis commands and read events (≈ round trips) per webhook, from the
#     deltas of INFO commandstats and INFO stats summed over the masters, with the
#     background's own rate (workers polling, wake-ups, flushes) measured idle and taken
#     off: sync dedupe, async hand-off + its delivery, publish to one and to ten endpoints
#     + their deliveries, a feed record published and then served, the stale-event guard;
#   - 300 concurrent copies of one event id sent to both instances: how many were handed on;
#   - redis-benchmark's ops/s for one master on this machine, and the capacity it gives;
#   - per failover run (TestFailoverLosesNothingAcknowledged through the built Caddy), a
#     line "acknowledged events lost: N".
#
#   bash bench/scaleout.sh                 # N=300 webhooks per case
#   SCALEOUT_QUICK=1 bash bench/scaleout.sh # N=100, a short redis-benchmark: under 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
BENCH_REQS=${BENCH_REQS:-200000}
if [ -n "${SCALEOUT_QUICK:-}" ]; then N=100; BENCH_REQS=50000; fi
for b in redis-server redis-cli redis-benchmark curl; do command -v $b >/dev/null || { echo "$b is required"; exit 1; }; done
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
if [ -n "${CADDY:-}" ]; then cp "$CADDY" "$out/caddy"; else go build -o "$out/caddy" ./cmd/caddy; fi

# The cluster: ports 17001-17006 (and their bus ports +10000).
ports=(17001 17002 17003 17004 17005 17006)
for p in "${ports[@]}"; do
	mkdir -p "$out/r$p"
	redis-server --port $p --bind 127.0.0.1 --save "" --appendonly no --cluster-enabled yes \
		--cluster-config-file "$out/r$p/nodes.conf" --cluster-node-timeout 2000 --dir "$out/r$p" \
		--logfile "$out/r$p/log" --daemonize no &
done
for p in "${ports[@]}"; do for _ in $(seq 50); do redis-cli -p $p ping >/dev/null 2>&1 && break; sleep 0.1; done; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes >"$out/create.log" 2>&1
for _ in $(seq 100); do redis-cli -p 17001 cluster info | grep -q cluster_state:ok && break; sleep 0.2; done
masters() { for p in "${ports[@]}"; do if redis-cli -p $p role | head -1 | grep -q master; then echo $p; fi; done; }
url="redis://127.0.0.1:17001?addr=127.0.0.1:17002&addr=127.0.0.1:17003&addr=127.0.0.1:17004&addr=127.0.0.1:17005&addr=127.0.0.1:17006"

config() { # $1 admin port, $2 port base (routes on base+1…)
	cat <<CFG
{
	admin 127.0.0.1:$1
	persist_config off
	log {
		level WARN
	}
	webhooks {
		store redis $url {
			cluster
		}
		endpoint one {
			url http://127.0.0.1:18300/one
			events one.*
			allow_private
		}
$(for i in $(seq 10); do printf '\t\tendpoint ten%d {\n\t\t\turl http://127.0.0.1:18300/ten%d\n\t\t\tevents ten.*\n\t\t\tallow_private\n\t\t}\n' $i $i; done)
		feed contatos {
			schema rubeus_servicos_contato
		}
	}
}
http://:$(($2 + 1)) {
	bind 127.0.0.1
	webhook_receive {
		name sync
		auth none
		event_id json:/id
		order_by off
	}
	reverse_proxy 127.0.0.1:18300
}
http://:$(($2 + 2)) {
	bind 127.0.0.1
	webhook_receive {
		name async
		auth none
		event_id json:/id
		order_by off
		mode async
		deliver_to http://127.0.0.1:18300/async
	}
}
http://:$(($2 + 3)) {
	bind 127.0.0.1
	webhook_publish
}
http://:$(($2 + 4)) {
	bind 127.0.0.1
	webhook_feed contatos {
		auth none
	}
}
http://:$(($2 + 5)) {
	bind 127.0.0.1
	webhook_receive {
		name guard
		auth none
		event_id json:/id
		order_by time:json:/at key json:/rec
	}
	reverse_proxy 127.0.0.1:18300
}
CFG
}
cat >"$out/backend.caddyfile" <<'CFG'
{
	admin off
	persist_config off
}
http://:18300 {
	bind 127.0.0.1
	respond 200
}
CFG
"$out/caddy" run --config "$out/backend.caddyfile" --adapter caddyfile >"$out/backend.log" 2>&1 &
for i in 1 2; do
	config $((12100 + i)) $((18300 + 10 * i)) >"$out/c$i.caddyfile"
	XDG_DATA_HOME="$out/data$i" "$out/caddy" run --config "$out/c$i.caddyfile" --adapter caddyfile >"$out/c$i.log" 2>&1 &
done
for i in 1 2; do
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$((12100 + i))/config/" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fs "http://127.0.0.1:$((12100 + i))/config/" >/dev/null || { echo "caddy $i did not start"; cat "$out/c$i.log"; exit 1; }
done

# counters: "<commands> <reads>" summed over the masters.
counters() {
	local cmds=0 reads=0 p
	for p in $(masters); do
		cmds=$((cmds + $(redis-cli -p $p info commandstats | sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')))
		reads=$((reads + $(redis-cli -p $p info stats | tr -d '\r' | sed -n 's/^total_reads_processed://p')))
	done
	echo "$cmds $reads"
}
# The INFO calls themselves are commands and reads: 2 per master per counters call.
info_cost=$(( 2 * $(masters | wc -l) ))
pending() { # deliveries still pending, over both instances' view (the shared queue)
	curl -fs "http://127.0.0.1:12101/webhooks/endpoints" | tr '{,' '\n\n' | sed -n 's/^"pending"://p' | awk '{ s += $1 } END { print s + 0 }'
}
settle() { for _ in $(seq 300); do [ "$(pending)" = 0 ] && return; sleep 0.1; done; echo "(deliveries still pending)" >&2; }
sleep 3 # let both instances' workers and wake-ups start
# The background rate: commands and reads per second with no traffic.
read c0 r0 < <(counters); t0=$(date +%s.%N); sleep 5; read c1 r1 < <(counters); t1=$(date +%s.%N)
idle_c=$(awk -v a=$c0 -v b=$c1 -v s=$t0 -v e=$t1 -v k=$info_cost 'BEGIN { printf "%.3f", (b - a - k) / (e - s) }')
idle_r=$(awk -v a=$r0 -v b=$r1 -v s=$t0 -v e=$t1 -v k=$info_cost 'BEGIN { printf "%.3f", (b - a - k) / (e - s) }')

body() { printf '{"id":"%s","rec":"r%s","at":"2026-12-03T10:00:%02d-03:00","pad":"%s"}' "$1" "$2" "$3" "$(head -c 900 /dev/zero | tr '\0' x)"; }
measure() { # $1 label, $2 function sending webhook i (i = 1..N), $3 1 to wait for deliveries
	local c0 r0 c1 r1 t0 t1 i
	read c0 r0 < <(counters); t0=$(date +%s.%N)
	for i in $(seq "$N"); do "$2" "$i"; done
	[ "${3:-0}" = 1 ] && settle
	read c1 r1 < <(counters); t1=$(date +%s.%N)
	awk -v l="$1" -v a=$c0 -v b=$c1 -v ra=$r0 -v rb=$r1 -v s=$t0 -v e=$t1 -v ic=$idle_c -v ir=$idle_r -v k=$info_cost -v n="$N" \
		'BEGIN { d = e - s; printf "%s: %.1f Redis commands, %.1f round trips per webhook (%d webhooks in %.1f s)\n", l, (b - a - k - ic * d) / n, (rb - ra - k - ir * d) / n, n, d }'
}
run_id=$(date +%s%N)
send_sync() { curl -fs -o /dev/null -H 'Content-Type: application/json' --data "$(body "s$run_id-$1" "$1" 0)" http://127.0.0.1:18311/; }
send_async() { curl -fs -o /dev/null -H 'Content-Type: application/json' --data "$(body "a$run_id-$1" "$1" 0)" http://127.0.0.1:18312/; }
send_one() { curl -fs -o /dev/null -H 'Content-Type: application/json' -H 'Webhook-Event-Type: one.x' --data "$(body "p$run_id-$1" "$1" 0)" http://127.0.0.1:18313/; }
send_ten() { curl -fs -o /dev/null -H 'Content-Type: application/json' -H 'Webhook-Event-Type: ten.x' --data "$(body "t$run_id-$1" "$1" 0)" http://127.0.0.1:18313/; }
record=$(sed -n '2,/^    }/p' examples/samples/rubeus_servicos/contato-envio.json)
send_feed() { curl -fs -o /dev/null -H 'Content-Type: application/json' -H 'Webhook-Event-Type: feed.contatos' --data "$record" http://127.0.0.1:18313/; }
serve_feed() { [ "$1" = 1 ] && curl -fs -o /dev/null http://127.0.0.1:18314/ || true; } # one call serves all N
send_guard() { curl -fs -o /dev/null -H 'Content-Type: application/json' --data "$(body "g$run_id-$1" "$(($1 % 50))" $(($1 % 60)))" http://127.0.0.1:18315/; }

echo "$(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') Cluster, 3 masters + 3 replicas; 2 Caddy instances; 1 KB bodies, one at a time"
echo "background (both instances idle): $idle_c commands/s, $idle_r round trips/s, taken off each case"
echo
measure "sync dedupe (claim, commit)" send_sync
measure "async hand-off and its delivery" send_async 1
measure "publish to one endpoint and its delivery" send_one 1
measure "publish to ten endpoints and their deliveries" send_ten 1
measure "a feed record published" send_feed
measure "a feed record served (one call serves the $N)" serve_feed
measure "the stale-event guard (sync, dedupe + guard, 50 records)" send_guard

echo
# Exactness across instances: 300 concurrent copies of one event id, alternating instances.
accepted() { # accepted webhooks of the sync route, both instances together
	local n=0 i v
	for i in 1 2; do
		v=$(curl -fs "http://127.0.0.1:$((12100 + i))/metrics" | sed -n 's/^caddy_webhook_inbound_requests_total{outcome="accepted",route="sync",source="webhook"} \([0-9]*\)$/\1/p')
		n=$((n + ${v:-0}))
	done
	echo $n
}
before=$(accepted)
dup=$(body "dup$run_id" 1 0)
copies=()
for i in $(seq 300); do
	port=$((18311 + 10 * (i % 2)))
	curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' --data "$dup" "http://127.0.0.1:$port/" >>"$out/dup.codes" &
	copies+=($!)
done
wait "${copies[@]}" 2>/dev/null || true
sleep 0.5
handed=$(( $(accepted) - before ))
echo "300 concurrent copies of one event id across both instances: handed on $handed time(s); answers: $(sort "$out/dup.codes" | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')"
[ "$handed" = 1 ] || echo "EXACTNESS BROKEN: want 1"

echo
# redis-benchmark's keys fall on every slot, so it runs on a standalone server of the same
# binary and settings as one master (a cluster node would answer MOVED for most of them).
redis-server --port 17010 --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$out/bench-redis.log" &
for _ in $(seq 50); do redis-cli -p 17010 ping >/dev/null 2>&1 && break; sleep 0.1; done
bench() { redis-benchmark -p 17010 -q -n "$BENCH_REQS" -c 50 -P "$1" -t set,get 2>/dev/null | tr '\r' '\n' | sed -n 's/^[A-Z]*: \([0-9.]*\) requests per second.*/\1/p' | awk '{ s += $1; n++ } END { printf "%d", s / n }'; }
echo "one master on this machine (redis-benchmark, SET/GET, 50 clients): $(bench 1) ops/s one command per round trip, $(bench 16) ops/s in pipelines of 16"

echo
if [ -n "${SKIP_FAILOVER:-}" ]; then exit 0; fi
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true
HOOKGATE_CADDY="$out/caddy" go test ./caddymodule/integration -run 'TestFailoverLosesNothingAcknowledged|TestFailoverDedupeAtMostDuplicates' -count=1 -v 2>&1 | sed -n 's/.*failover_test.go:[0-9]*: //p'
