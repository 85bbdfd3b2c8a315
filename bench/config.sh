# The benchmark's Caddy config, shared by bench.sh and profile.sh (sourced, not run).
# Ports: 18101 plain reverse_proxy, 18102 webhook_receive without dedupe, 18103 with dedupe
# on the configured store, 18104 the same with the stale-event guard (totvs_crm's default),
# 18105 the same as 18103 without the request log, 18106 the same as 18103 with the README's
# TOTVS transform (examples/transforms/totvs-opportunity.cel), 18107 the same as 18103 in async
# mode (202 once queued durably; the queue delivers to the backend), 18100 the backend. 18102 and 18103 turn
# the guard off, so they measure what they did before it existed (plus the request log).
config() { # $1 admin port, $2 store line, $3 extra global options
	cat <<CFG
{
	admin 127.0.0.1:$1
	persist_config off
	$3
	webhooks {
		$2
	}
}
http://:18101 {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:18100
}
http://:18102 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-no-dedupe
		auth header X-Api-Key {env.BENCH_KEY}
		dedupe off
		order_by off
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18103 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-dedupe
		auth header X-Api-Key {env.BENCH_KEY}
		order_by off
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18104 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-guard
		auth header X-Api-Key {env.BENCH_KEY}
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18105 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-no-log
		auth header X-Api-Key {env.BENCH_KEY}
		order_by off
		log_requests 0
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18106 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-transform
		auth header X-Api-Key {env.BENCH_KEY}
		order_by off
		transform <<CEL
$(sed 's/^/\t\t\t/' examples/transforms/totvs-opportunity.cel)
			CEL
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18107 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-async
		auth header X-Api-Key {env.BENCH_KEY}
		order_by off
		mode async
		deliver_to http://127.0.0.1:18100/
	}
}
http://:18100 {
	bind 127.0.0.1
	respond 200
}
CFG
}

