#!/usr/bin/env bash
# Times the embedded store's open-time check on a ~1 GB file of dedupe marks and queue
# deliveries (written once into a temp dir, ~30 s): warm (the file in the page cache, as on
# a reload) and cold (evicted first, as after a reboot). Needs ~1.1 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for mode in warm cold; do
	echo "== $mode"
	cold=""
	[ "$mode" = cold ] && cold=1
	HOOKGATE_BENCH_1GB=1 HOOKGATE_BENCH_DIR="$dir" HOOKGATE_BENCH_COLD="$cold" \
		go test ./internal/boltdb -run '^$' -bench OpenCheck1GB -benchtime 3x -timeout 30m | grep -E 'Benchmark|wrote'
done
