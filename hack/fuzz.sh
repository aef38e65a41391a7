#!/usr/bin/env bash
# Runs one fuzz target: hack/fuzz.sh TARGET PACKAGE [go test flags...].
# Go's fuzzing coordinator sometimes ends a run that found nothing with
# "context deadline exceeded" (its workers slow to stop when -fuzztime is
# up). That run is tried once more, and says so; a run that found an input
# ("Failing input written") or failed any other way fails at once.
set -uo pipefail
target=$1 pkg=$2
shift 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for try in 1 2; do
	go test -run '^$' -fuzz "^${target}\$" "$@" "$pkg" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [[ $status == 0 ]]; then
		exit 0
	fi
	if [[ $try == 1 ]] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
		echo "fuzz: $target: the fuzzing engine timed out stopping, with no failing input: once more"
		continue
	fi
	exit "$status"
done
