# The benchmark's Caddy config, shared by bench.sh and profile.sh (sourced, not run).
# Ports: 18101 plain reverse_proxy, 18102 webhook_receive without dedupe, 18103 with dedupe
# on the configured store, 18100 the backend.
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
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18103 {
	bind 127.0.0.1
	webhook_receive totvs_crm {
		name bench-dedupe
		auth header X-Api-Key {env.BENCH_KEY}
	}
	reverse_proxy 127.0.0.1:18100
}
http://:18100 {
	bind 127.0.0.1
	respond 200
}
CFG
}

