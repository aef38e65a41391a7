#!/usr/bin/env bash
# hack/e2e/bench-start.sh [ROUNDS [STARTS_PER_ROUND]]: container start
# latency through crictl (runp + create + start until the container's
# command runs) with nri-armor enforcing a 1,000-rule policy and without
# nri-armor, interleaved rounds in one run against the private containerd;
# prints medians and ratios (also: nri-armor running, the pod naming no
# policy). Runs e2e's BenchmarkStartLatency (root). RUNTIME=crio: against
# the private CRI-O instead (make e2e-bench RUNTIME=crio).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$E2E_ROOT/hack/e2e/setup.sh"
say "benchmarking container starts (${1:-6} rounds x ${2:-5} starts per variant)"
cd "$E2E_ROOT"
E2E_BENCH_RUNTIME=${RUNTIME:-containerd} E2E_BENCH_ROUNDS=${1:-6} E2E_BENCH_PER_ROUND=${2:-5} \
	go test -tags e2e -count=1 -timeout 30m -run '^$' -bench '^BenchmarkStartLatency$' -benchtime 1x ./e2e
