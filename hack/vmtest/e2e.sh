#!/usr/bin/env bash
# Usage: hack/vmtest/e2e.sh [TEST ARGS...]   (make vmtest-e2e; root)
#
# The end-to-end tests of e2e/ (build tags e2e and vme2e: the host's tests,
# with network rules enforced by BPF-LSM instead of cgroup-BPF, plus the
# TestVM* tests of process and file rules and armor-tracer's alerts) inside
# the QEMU VM of hack/vmtest, where BPF-LSM enforces: the real containerd,
# runc, crictl, nri-armor and armor-tracer, in a Debian root.
#
#   1. hack/e2e/setup.sh: containerd, ctr, the shim and crictl at their
#      pins, and the local OCI images (cached in .cache/e2e).
#   2. hack/vmtest/rootfs.sh: a Debian root (debootstrap, runc from apt)
#      holding those tools and images in /var/lib/nri-armor-e2e, the
#      e2e cache path inside the VM (cached in .cache/vmtest/root, rebuilt
#      only when they change).
#   3. What changes every run, statically linked, into the initramfs
#      (run.sh --files): nri-armor, nri-armor-hook, armor-tracer, the
#      scripts that run containerd (hack/e2e/{lib,containerd}.sh,
#      config/containerd-nri.toml and containerd-base-spec.json) and the
#      test binary.
#   4. hack/vmtest/run.sh --rootfs: boots, switches root, runs the test
#      binary, streams the console and exits with its status (124 when the
#      hard timeout, VME2E_TIMEOUT seconds, expires; 3 without a result).
#
# TEST ARGS replace the default `-test.v -test.timeout (VME2E_TIMEOUT-60)s`
# (e.g. `-test.v -test.run TestVM` for the VM-only tests).
#
# VME2E_LSM=apparmor (make vmtest-apparmor) boots the node kind the AppArmor
# backend is for: AppArmor active, BPF-LSM not (lsm= without bpf), and
# containerd with AppArmor enabled (NRI_ARMOR_E2E_APPARMOR=1). It runs the
# VM tests of enforce/apparmor (build tag vmtest: the loader, the attack
# suite on AppArmor) and then the end-to-end tests tagged vmapparmor
# (TestAppArmor*; the default TEST ARGS run only those).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}
timeout_s=${VME2E_TIMEOUT:-1200}
lsm=${VME2E_LSM:-bpf}
case $lsm in
bpf | apparmor) ;;
*) echo "vmtest-e2e: error: VME2E_LSM takes bpf or apparmor, got '$lsm'" >&2; exit 2 ;;
esac
# Where the tools and images are inside the VM (NRI_ARMOR_E2E_CACHE there).
vm_cache=/var/lib/nri-armor-e2e
log() { echo "vmtest-e2e: $*" >&2; }
die() { echo "vmtest-e2e: error: $*" >&2; exit 2; }

if ((EUID != 0)); then
	# As make e2e: a test that cannot run is a failure unless allowed.
	if [[ ${NRI_ARMOR_ALLOW_SKIP_PRIVILEGED:-} == 1 ]]; then
		log "SKIP: not root (NRI_ARMOR_ALLOW_SKIP_PRIVILEGED=1)"
		exit 0
	fi
	die "needs root (debootstrap, the e2e set-up); NRI_ARMOR_ALLOW_SKIP_PRIVILEGED=1 skips instead"
fi
start=$SECONDS

"$root/hack/e2e/setup.sh" || die "hack/e2e/setup.sh failed"
e2e_cache=${NRI_ARMOR_E2E_CACHE:-$root/.cache/e2e}
img=$("$here/rootfs.sh" --add "$e2e_cache/bin:$vm_cache/bin" --add "$e2e_cache/images:$vm_cache/images") ||
	die "building the root image failed"

# Not in .cache/vmtest/bin, which make vmtest empties.
work=$cache/e2e
files=$work/files
rm -rf "$files"
mkdir -p "$files/bin" "$files/repo/hack/e2e" "$files/repo/config"
log "building nri-armor, armor-tracer and the test binary"
(
	cd "$root"
	CGO_ENABLED=0 go build -trimpath -o "$files/bin/" ./cmd/nri-armor ./cmd/nri-armor-hook ./cmd/armor-tracer
	if [[ $lsm == apparmor ]]; then
		CGO_ENABLED=0 go test -c -tags 'e2e vmapparmor' -o "$work/e2e-vm.test" ./e2e
		CGO_ENABLED=0 go test -c -tags vmtest -o "$work/apparmor-vm.test" ./enforce/apparmor
	else
		CGO_ENABLED=0 go test -c -tags 'e2e vme2e' -o "$work/e2e-vm.test" ./e2e
	fi
) || die "go build failed"
cp "$root/hack/e2e/lib.sh" "$root/hack/e2e/containerd.sh" "$files/repo/hack/e2e/"
cp "$root/config/containerd-nri.toml" "$root/config/containerd-base-spec.json" "$files/repo/config/"
log "ready after $((SECONDS - start)) s; booting the VM"

args=("$@")
((${#args[@]})) || args=(-test.v -test.timeout "$((timeout_s - 60))s")
boot=()
if [[ $lsm == apparmor ]]; then
	((${#@})) || args+=(-test.run '^TestAppArmor')
	# The last lsm= wins: run.sh's own lists bpf.
	boot=(--append "lsm=landlock,lockdown,yama,apparmor" --env NRI_ARMOR_E2E_APPARMOR=1
		--run "$work/apparmor-vm.test -test.v -test.run AppArmor$ -test.timeout 600s")
fi
rc=0
# One virtual CPU: with two, software emulation was once seen to soft-lock
# (make demo-vm, while nri-armor attached its LSM programs); one is as fast.
"$here/run.sh" --rootfs "$img" --files "$files" --smp 1 --mem 4096 --timeout "$timeout_s" "${boot[@]}" \
	--env "NRI_ARMOR_E2E_CACHE=$vm_cache" \
	--env NRI_ARMOR_E2E_ROOT=/vmtest/files/repo \
	--env NRI_ARMOR_E2E_ARMOR_BIN=/vmtest/files/bin/nri-armor \
	"$work/e2e-vm.test" "${args[@]}" || rc=$?
log "exit status $rc after $((SECONDS - start)) s in all"
exit "$rc"
