#!/usr/bin/env bash
# Generates, with controller-gen (a go tool of go.mod, so its version is
# the module's), from the API types of k8s/api/v1:
#   k8s/api/v1/zz_generated.deepcopy.go  the deepcopy functions;
#   config/crd/*.yaml                    the CRDs, one file per kind;
#   charts/nri-armor/crds/*.yaml         the same files, for Helm.
# The CRDs are written to a temporary directory first and replace the
# committed set whole, so a renamed or removed kind leaves no stale file.
# k8s/api/v1's TestCRDsGenerated fails when the committed files differ from
# a fresh run: run make generate-crds and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool controller-gen object paths=./k8s/api/... crd:crdVersions=v1 paths=./k8s/api/... output:crd:artifacts:config="$tmp"
for dir in config/crd charts/nri-armor/crds; do
	mkdir -p "$dir"
	rm -f "$dir"/*.yaml
	cp "$tmp"/*.yaml "$dir"/
done
echo "generate-crds: $(ls "$tmp" | wc -l) CRDs in config/crd and charts/nri-armor/crds"
