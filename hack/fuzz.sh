#!/usr/bin/env bash
# Runs one fuzz target: hack/fuzz.sh TARGET PACKAGE [go test flags...].
# Go's fuzzing coordinator sometimes ends a run that found nothing with
# "context deadline exceeded" (its workers slow to stop when -fuzztime is
# up). That run is tried once more, and says so; a run that found an input
# ("Failing input written") or failed any other way fails at once.
#
# Go keeps every new input a run finds in its cache (GOCACHE/fuzz) and
# replays all of them before fuzzing starts, inside -fuzztime. The cache
# only grows, so on a CI machine that keeps its GOCACHE the replay alone
# outgrew the run: FuzzCompile's inputs each take apparmor_parser runs, and
# 165 cached ones did not finish replaying in 15 s. Only the newest
# FUZZ_CACHE_KEEP cached inputs of the target are kept; the committed seeds
# (testdata/fuzz) and the f.Add ones always run.
set -uo pipefail
target=$1 pkg=$2
shift 2
keep=${FUZZ_CACHE_KEEP:-40}
cache="$(go env GOCACHE)/fuzz/$(go list "$pkg")/$target"
if [[ -d $cache ]]; then
	ls -1t "$cache" | tail -n +"$((keep + 1))" | while read -r f; do rm -f -- "$cache/$f"; done
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Each run's output is shown when it ends: that of a run tried once more
# with every line marked, so that its "--- FAIL" and "FAIL" lines are not
# counted as failures (.ci/run counts those at the start of a line).
for try in 1 2; do
	go test -run '^$' -fuzz "^${target}\$" "$@" "$pkg" >"$log" 2>&1
	status=$?
	if [[ $status != 0 && $try == 1 ]] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
		sed 's/^/fuzz: tried once more after: /' "$log"
		echo "fuzz: $target: the fuzzing engine timed out stopping, with no failing input: once more"
		continue
	fi
	cat "$log"
	exit "$status"
done
