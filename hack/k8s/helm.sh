#!/usr/bin/env bash
# hack/k8s/helm.sh ARGS...: runs helm, pinned, built from the Go module proxy
# (no release binary can be downloaded here) into .cache/k8s/bin on first
# use. A stamp records the version built, so a new pin rebuilds it; a
# cold build takes a few minutes (docs/daemon.md has the figure).
# NRI_ARMOR_K8S_CACHE moves the cache. `hack/k8s/helm.sh --path` builds
# it if needed and prints the binary's path (the chart's tests read it).
set -euo pipefail
HELM_VERSION=v4.3.2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${NRI_ARMOR_K8S_CACHE:-$root/.cache/k8s}/bin
helm=$bin/helm
if [ ! -x "$helm" ] || [ "$(cat "$bin/.helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
	echo "helm.sh: go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION (a few minutes the first time)" >&2
	mkdir -p "$bin"
	# Outside the module: go install pkg@version ignores this go.mod, and
	# helm's own module decides its dependencies (it has no replace
	# directives, which go install would refuse).
	(cd / && GOBIN=$bin go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
	echo "$HELM_VERSION" >"$bin/.helm.version"
fi
if [ "${1:-}" = --path ]; then
	echo "$helm"
	exit 0
fi
# Helm's own state (repositories, plugins, cache) stays beside the binary,
# never in the user's home.
export HELM_CONFIG_HOME=$bin/../helm/config HELM_CACHE_HOME=$bin/../helm/cache HELM_DATA_HOME=$bin/../helm/data
exec "$helm" "$@"
