#!/usr/bin/env bash
# hack/k8s/render.sh [--check]: renders charts/nri-armor with its defaults,
# release nri-armor in the namespace nri-armor (the Namespace object
# included, so that `kubectl apply -f` alone works), into
# deploy/nri-armor.yaml, the plain manifests. --check writes nothing and
# fails when the file is stale (charts.TestRendered runs it in `make unit`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
chart=$root/charts/nri-armor
out=$root/deploy/nri-armor.yaml
check=false
[ "${1:-}" = --check ] && check=true

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stale=()
{
	echo "# nri-armor, rendered from charts/nri-armor by hack/k8s/render.sh"
	echo "# (make manifests): do not edit, change the chart. Apply with"
	echo "#   kubectl apply -f deploy/nri-armor.yaml"
	# The CRDs (charts/nri-armor/crds) come first, as Helm installs them.
	# Helm logs (at INFO, on stderr) that it follows the chart's symlinks
	# to config/ (files/): expected, and kept out of the output.
	"$root/hack/k8s/helm.sh" template nri-armor "$chart" --namespace nri-armor --set createNamespace=true --include-crds \
		2> >(grep -v 'found symbolic link in path' >&2)
} >"$tmp/out.yaml"
if ! cmp -s "$tmp/out.yaml" "$out"; then
	stale+=("deploy/nri-armor.yaml")
	$check || { mkdir -p "$(dirname "$out")" && cp "$tmp/out.yaml" "$out"; }
fi
if ((${#stale[@]})); then
	if $check; then
		echo "render.sh: stale, run make manifests: ${stale[*]}" >&2
		exit 1
	fi
	echo "render.sh: wrote ${stale[*]}" >&2
fi
