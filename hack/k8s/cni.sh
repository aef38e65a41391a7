#!/usr/bin/env bash
# hack/k8s/cni.sh: builds the standard CNI plugins a one-node cluster's pods
# need (bridge, host-local, loopback) from the Go module proxy, pinned, into
# $K8S_CACHE/cni (default .cache/k8s/cni), and prints that directory.
# containerd runs them for each pod (hack/e2e/containerd.sh with
# NRI_ARMOR_E2E_CNI; make k8s-node). A stamp (cni/.stamp) records what was
# built; a second run is a no-op. About 20 s with Go's caches warm.
set -euo pipefail
export LC_ALL=C

CNI_PLUGINS_VERSION=v1.10.0
PLUGINS=(main/bridge ipam/host-local main/loopback)

REPO=$(cd "$(dirname "$0")/../.." && pwd)
K8S_CACHE=${K8S_CACHE:-$REPO/.cache/k8s}
DIR=$K8S_CACHE/cni
say() { echo "k8s-cni: $*" >&2; }

command -v go >/dev/null || { say "Go is required (go not on PATH)"; exit 1; }
# Static binaries (containerd execs them in the VM's root as well); no
# workspace or go.mod of the repository may steer the build.
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
stamp="$CNI_PLUGINS_VERSION ${PLUGINS[*]} $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
if [ "$(cat "$DIR/.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "$DIR"
	exit 0
fi
say "building ${PLUGINS[*]} of github.com/containernetworking/plugins $CNI_PLUGINS_VERSION"
start=$SECONDS
rm -rf "$DIR" && mkdir -p "$DIR"
pkgs=()
for p in "${PLUGINS[@]}"; do pkgs+=("github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION"); done
# go install PKG@VERSION: outside any module, exactly the plugins' go.mod.
(cd "$DIR" && GOBIN=$DIR go install -trimpath -ldflags "-s -w" "${pkgs[@]}")
echo "$stamp" >"$DIR/.stamp"
say "built in $((SECONDS - start)) s"
echo "$DIR"
