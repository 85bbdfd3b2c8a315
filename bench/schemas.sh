#!/usr/bin/env bash
# The embedded schemas' cost and their verdicts, before and after their rewrite for the
# validator's cost (issue 27): each schema's Validate on each sample, as it is and as it
# was (schemas/testdata/before), then the verdict test's long run: every single mutation
# of every sample plus N random chains of up to four mutations per schema, where any
# document on which the two schemas disagree fails the run.
#
#   bash bench/schemas.sh          # N=5000 (a few minutes on 2 cores)
#   N=50000 bash bench/schemas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
echo "== Validate per schema and sample (µs/op, B/op, allocs/op), before and now"
go test ./schemas -run '^$' -bench Validate -benchmem -benchtime=20000x -count=3 |
	awk '/^BenchmarkValidate/ { n = $1; sub(/-[0-9]+$/, "", n); sub(/^BenchmarkValidate\//, "", n); t[n] += $3; b[n] = $5; a[n] = $7; c[n]++ }
	END { for (k in t) printf "%-58s %8.1f %7d %5d\n", k, t[k] / c[k] / 1000, b[k], a[k] }' | sort
echo "== verdicts: single mutations and $N random chains per schema"
HOOKGATE_VERDICT_N=$N go test ./schemas -count=1 -run 'TestRewrittenSchemasKeepVerdicts' -v -timeout 60m | grep -E 'agreed|^(--- |ok|FAIL)'
