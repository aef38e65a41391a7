#!/bin/bash
# Resident memory of the real nri-armor daemon with 1,000 policies and 500
# running containers driven over a real NRI socket (daemon.BenchmarkDaemonRSS;
# as root). Target: VmRSS under 64 MiB.
#
#   hack/bench-rss.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench '^BenchmarkDaemonRSS$' -benchtime 1x -count "${1:-1}" ./daemon 2>&1 |
	grep -E 'rss_bench_test|^(ok|FAIL)'
