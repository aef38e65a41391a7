#!/usr/bin/env bash
# Prints the policy engine's figures (issue 2) from one benchmark run:
# corpus load+validate+compile, selection+compile for 1,000 pods, and
# Decide per event at 10..100,000 file rules as ratios to the 10-rule set
# measured in the same run (absolute times drift on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(go test -run '^$' -bench 'LoadCorpus|SelectCompile|CompileCacheHit|Decide' -count "$count" ./policy)
echo "$out" | grep -E '^Benchmark'
echo
echo "$out" | awk '
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name)
	n[name]++; v[name, n[name]] = $3
}
function median(name,   k, i, j, t, a) {
	k = n[name]
	for (i = 1; i <= k; i++) a[i] = v[name, i]
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "corpus load+validate+compile:      %8.1f ms   (target < 200 ms)\n", median("BenchmarkLoadCorpus") / 1e6
	printf "select+compile, 1000 pods x 1000:  %8.1f ms   (target < 1000 ms)\n", median("BenchmarkSelectCompile1000Pods") / 1e6
	printf "compile, identical set (cache hit): %7.1f us\n", median("BenchmarkCompileCacheHit") / 1e3
	base = median("BenchmarkDecide/rules=10")
	split("10 100 1000 10000 100000", sizes, " ")
	for (i = 1; i <= 5; i++) {
		m = median("BenchmarkDecide/rules=" sizes[i])
		printf "Decide, %6d file rules:          %8.1f ns   %.2fx of 10 rules (target < 1000 ns, within 1.20x)\n", sizes[i], m, m / base
	}
}'
