#!/usr/bin/env bash
# Regenerates the committed BPF objects and Go bindings with the pinned
# compiler, Debian 12's clang 14, from the C under bpf/:
# enforce/bpflsm/armor_bpfel.* (nri-armor's enforcement programs),
# enforce/events/events_bpfel.* (the enforcement event's type, for
# armor-tracer) and tracer/telemetry/telemetry_bpfel.* (armor-tracer's
# telemetry). With
# --check, it builds them again in a temporary copy of the tree and fails if
# the committed files differ (the output must not depend on the directory).
set -euo pipefail
cd "$(dirname "$0")/.."
clang=${BPF_CLANG:-clang-14}
command -v "$clang" >/dev/null || { echo "bpf-generate: $clang not found (hack/install-deps.sh installs it)" >&2; exit 1; }
command -v llvm-strip >/dev/null || { echo "bpf-generate: llvm-strip not found (apt-get install llvm)" >&2; exit 1; }
# Each package with BPF sources, and the files its go:generate writes.
pkgs=(enforce/bpflsm enforce/events tracer/telemetry)
declare -A outputs=(
	[enforce/bpflsm]="armor_bpfel.go armor_bpfel.o"
	[enforce/events]="events_bpfel.go events_bpfel.o"
	[tracer/telemetry]="telemetry_bpfel.go telemetry_bpfel.o"
)
if [[ "${1:-}" == "--check" ]]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp go.mod go.sum "$tmp/"
	cp -r bpf "$tmp/"
	for p in "${pkgs[@]}"; do
		mkdir -p "$tmp/$p"
		cp -r "$p/." "$tmp/$p/"
	done
	failed=0
	for p in "${pkgs[@]}"; do
		(cd "$tmp/$p" && BPF_CLANG="$clang" go generate ./)
		for f in ${outputs[$p]}; do
			if ! cmp -s "$p/$f" "$tmp/$p/$f"; then
				echo "bpf-check: $p/$f differs from what $clang builds from the sources in $p; run make bpf-generate and commit" >&2
				failed=1
			fi
		done
	done
	[[ $failed == 0 ]] || exit 1
	echo "bpf-check: committed BPF objects match the sources"
else
	for p in "${pkgs[@]}"; do
		(cd "$p" && BPF_CLANG="$clang" go generate ./)
	done
fi
