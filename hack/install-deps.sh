#!/usr/bin/env bash
# Installs what building and testing nri-armor needs on a fresh Debian
# machine: Debian packages from apt, Go modules from the module proxy.
# Idempotent: a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
for cmd in git make gcc; do
	command -v "$cmd" >/dev/null || need_apt+=("$cmd")
done
# The BPF toolchain, pinned to Debian 12's clang 14 (make bpf-check).
command -v clang-14 >/dev/null || need_apt+=(clang-14)
command -v llvm-strip >/dev/null || need_apt+=(llvm)
dpkg -s libbpf-dev >/dev/null 2>&1 || need_apt+=(libbpf-dev)
# promtool checks armor-tracer's /metrics exposition (tracer.TestMetrics).
command -v promtool >/dev/null || need_apt+=(prometheus)
# apparmor_parser checks every generated AppArmor profile offline
# (enforce/apparmor), against Debian's features file it ships.
command -v apparmor_parser >/dev/null || [[ -x /usr/sbin/apparmor_parser ]] || need_apt+=(apparmor)
if ((${#need_apt[@]})); then
	echo "install-deps: apt-get install ${need_apt[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
command -v go >/dev/null || { echo "install-deps: Go 1.26 is required (go not on PATH)" >&2; exit 1; }
echo "install-deps: go mod download"
go mod download
