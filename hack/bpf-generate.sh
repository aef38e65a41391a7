#!/usr/bin/env bash
# Regenerates the committed BPF objects and Go bindings (bpf/armor_bpfel.*)
# with the pinned compiler: Debian 12's clang 14. With --check, it fails if
# the committed files differ from what the sources produce.
set -euo pipefail
cd "$(dirname "$0")/.."
clang=${BPF_CLANG:-clang-14}
command -v "$clang" >/dev/null || { echo "bpf-generate: $clang not found (hack/install-deps.sh installs it)" >&2; exit 1; }
command -v llvm-strip >/dev/null || { echo "bpf-generate: llvm-strip not found (apt-get install llvm)" >&2; exit 1; }
if [[ "${1:-}" == "--check" ]]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp -r go.mod go.sum bpf "$tmp/"
	(cd "$tmp/bpf" && BPF_CLANG="$clang" go generate ./)
	for f in armor_bpfel.go armor_bpfel.o; do
		if ! cmp -s "bpf/$f" "$tmp/bpf/$f"; then
			echo "bpf-check: bpf/$f differs from what $clang builds from bpf/armor.bpf.c; run make bpf-generate and commit" >&2
			exit 1
		fi
	done
	echo "bpf-check: committed BPF objects match the sources"
else
	(cd bpf && BPF_CLANG="$clang" go generate ./)
fi
