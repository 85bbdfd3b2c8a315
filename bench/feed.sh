#!/usr/bin/env bash
# Answer time of a full Rubeus Serviços page: 1000 Contato records (Rubeus' official example,
# with distinct codes) published to a feed, then pulled in one call, timed with curl; the
# served records are requeued and pulled again, RUNS times, on each store.
#
#   bash bench/feed.sh          # RUNS=5; CADDY=<binary> to measure a prebuilt one
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
if [ -n "${CADDY:-}" ]; then cp "$CADDY" "$out/caddy"; else go build -o "$out/caddy" ./cmd/caddy; fi
redis_port=16392
store_lines=("store embedded")
if command -v redis-server >/dev/null; then
	redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$out/redis.log" 2>&1 &
	sleep 0.5
	store_lines+=("store redis redis://127.0.0.1:$redis_port")
fi
# 1000 records: the official example's record with codes 0…999.
python3 - "$out/records.json" <<'PY'
import json, sys
rec = json.load(open("examples/samples/rubeus_servicos/contato-envio.json"))[0]
recs = []
for i in range(1000):
    r = dict(rec); r["codigo"] = str(i); recs.append(r)
json.dump(recs, open(sys.argv[1], "w"), ensure_ascii=False)
PY
echo "$(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); a page of 1000 Contato records ($(wc -c <"$out/records.json") bytes), $RUNS runs"
echo
echo "| store | answer time of a full page (runs) | median |"
echo "|---|---|---|"
for store in "${store_lines[@]}"; do
	cat >"$out/Caddyfile" <<CFG
{
	admin 127.0.0.1:12059
	http_port 18110
	persist_config off
	webhooks {
		$store
		feed contatos {
			schema rubeus_servicos_contato
		}
	}
}
http://127.0.0.1:18110 {
	handle /publish {
		webhook_publish
	}
	handle /feed {
		webhook_feed contatos {
			auth bearer bench-token
		}
	}
}
CFG
	rm -rf "$out/data"
	XDG_DATA_HOME="$out/data" "$out/caddy" run --config "$out/Caddyfile" --adapter caddyfile >"$out/caddy.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -fs http://127.0.0.1:12059/config/ >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fs -o /dev/null http://127.0.0.1:18110/publish -H 'Content-Type: application/json' -H 'Webhook-Event-Type: feed.contatos' --data-binary @"$out/records.json"
	times=()
	for _ in $(seq "$RUNS"); do
		t=$(curl -fs -o "$out/page.json" -w '%{time_total}' http://127.0.0.1:18110/feed -H 'Authorization: Bearer bench-token')
		n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$out/page.json")
		[ "$n" = 1000 ] || { echo "a page of $n records"; exit 1; }
		times+=("$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }')")
		curl -fs -o /dev/null -X POST "http://127.0.0.1:12059/webhooks/feeds/contatos/requeue?since=1h"
	done
	median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	printf '| %s | %s ms | **%s ms** |\n' "$(echo "$store" | awk '{print $2}')" "$(IFS=,; echo "${times[*]}" | sed 's/,/ ms, /g')" "$median"
	kill "$pid"; wait "$pid" 2>/dev/null || true
done
