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
#      scripts that run containerd and CRI-O (hack/e2e/{lib,containerd,
#      crio}.sh, config/containerd-nri.toml, containerd-base-spec.json,
#      crio-nri.conf and crio-hook.json) and the test binary.
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
timeout_s=${VME2E_TIMEOUT:-1800}
lsm=${VME2E_LSM:-bpf}
case $lsm in
bpf | apparmor) ;;
*) echo "vmtest-e2e: error: VME2E_LSM takes bpf or apparmor, got '$lsm'" >&2; exit 2 ;;
esac
k8s=${VME2E_K8S:-}
[[ -z $k8s || ($k8s == 1 && $lsm == bpf) ]] || { echo "vmtest-e2e: error: VME2E_K8S takes 1, with BPF-LSM" >&2; exit 2; }
# Where the tools and images are inside the VM (NRI_ARMOR_E2E_CACHE there),
# and with VME2E_K8S the Kubernetes binaries (K8S_CACHE there).
vm_cache=/var/lib/nri-armor-e2e
vm_k8s=/var/lib/nri-armor-k8s
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
kind=$lsm
[[ $k8s == 1 ]] && kind=k8s-node
# Not in .cache/vmtest/bin, which make vmtest empties; one per kind, since
# make test boots them at the same time (hack/vmtest/lanes.sh).
work=$cache/e2e/$kind
mkdir -p "$work"
# One set-up at a time: the scripts below fill shared caches (the e2e
# tools, the kernel, the root images), and a cold cache must be filled once.
# The VMs themselves run in parallel: the lock is let go before the boot.
exec 8>"$cache/.e2e-setup.lock"
flock 8

# k8s_modules prints a directory holding lib/modules/RELEASE of the booted
# kernel with only what the CNI bridge plugin needs (bridge, veth and their
# dependencies) and its modules.dep: the kernel loads them on demand
# through the root's modprobe. All of the kernel's modules would add
# 400 MB to the image.
k8s_modules() {
	local kernel release kroot dir ko f n=0
	# modprobe and depmod (run.sh installs kmod too, but later).
	if ! command -v modprobe >/dev/null || ! command -v depmod >/dev/null; then
		log "installing kmod with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kmod >&2 || die "apt-get install kmod failed"
	fi
	kernel=$("$here/fetch-kernel.sh" --boot-image) || die "fetch-kernel.sh failed"
	release=$(basename "$kernel" | sed 's/^vmlinu[xz]-//')
	kroot=$(cd "$(dirname "$kernel")/.." && pwd)
	[[ -s $kroot/lib/modules/$release/modules.dep ]] || die "no modules.dep in $kroot/lib/modules/$release (fetch-kernel.sh makes it when depmod is installed)"
	dir=$work/k8s-modules
	rm -rf "$dir"
	while read -r _ ko _; do
		mkdir -p "$dir/$(dirname "${ko#"$kroot"/}")"
		cp "$ko" "$dir/${ko#"$kroot"/}"
		n=$((n + 1))
	done < <(modprobe -d "$kroot" -S "$release" --show-depends -a bridge veth | grep '^insmod ')
	((n)) || die "modprobe --show-depends found no modules for bridge and veth in $kroot"
	# What depmod and modprobe read beside the modules: which are built in
	# (modprobe then reports those as loaded), and the kernel's order.
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		cp "$kroot/lib/modules/$release/$f" "$dir/lib/modules/$release/"
	done
	depmod -b "$dir" "$release" || die "depmod -b $dir $release failed"
	echo "$dir/lib/modules"
}

"$root/hack/e2e/setup.sh" || die "hack/e2e/setup.sh failed"
e2e_cache=${NRI_ARMOR_E2E_CACHE:-$root/.cache/e2e}
adds=(--add "$e2e_cache/bin:$vm_cache/bin" --add "$e2e_cache/images:$vm_cache/images")
if [[ $k8s == 1 ]]; then
	"$root/hack/k8s/build.sh" etcd kube-apiserver kubectl kubelet >&2 || die "hack/k8s/build.sh failed"
	cni=$("$root/hack/k8s/cni.sh") || die "hack/k8s/cni.sh failed"
	k8s_bin=${K8S_CACHE:-$root/.cache/k8s}/bin
	# Not the whole bin/: helm is built there too, and is not needed.
	for b in etcd kube-apiserver kubectl kubelet; do
		adds+=(--add "$k8s_bin/$b:$vm_k8s/bin/$b")
	done
	modules=$(k8s_modules) || exit 2
	adds+=(--add "$cni:$vm_k8s/cni" --add "$modules:/lib/modules")
	adds+=(--name k8s-node)
fi
img=$("$here/rootfs.sh" "${adds[@]}") || die "building the root image failed"

files=$work/files
rm -rf "$files"
mkdir -p "$files/bin" "$files/repo/hack/e2e" "$files/repo/config"
log "building nri-armor, armor-tracer and the test binary"
(
	cd "$root"
	CGO_ENABLED=0 go build -trimpath -o "$files/bin/" ./cmd/nri-armor ./cmd/nri-armor-hook ./cmd/armor-tracer
	if [[ $k8s == 1 ]]; then
		CGO_ENABLED=0 go test -c -tags 'e2e vmk8s' -o "$work/e2e-vm.test" ./e2e
	elif [[ $lsm == apparmor ]]; then
		CGO_ENABLED=0 go test -c -tags 'e2e vmapparmor' -o "$work/e2e-vm.test" ./e2e
		CGO_ENABLED=0 go test -c -tags vmtest -o "$work/apparmor-vm.test" ./enforce/apparmor
	else
		CGO_ENABLED=0 go test -c -tags 'e2e vme2e' -o "$work/e2e-vm.test" ./e2e
	fi
) || die "go build failed"
cp "$root/hack/e2e/lib.sh" "$root/hack/e2e/containerd.sh" "$root/hack/e2e/crio.sh" "$files/repo/hack/e2e/"
cp "$root/config/containerd-nri.toml" "$root/config/containerd-base-spec.json" "$files/repo/config/"
# CRI-O's, for the tests the BPF-LSM build runs on CRI-O too (crio and
# pinns come with the tools' bin/, conmon and skopeo with the root).
cp "$root/config/crio-nri.conf" "$root/config/crio-hook.json" "$files/repo/config/"
# The CRDs, which the one-node test applies with kubectl.
[[ $k8s == 1 ]] && cp -r "$root/config/crd" "$files/repo/config/"
exec 8>&-
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
if [[ $k8s == 1 ]]; then
	((${#@})) || args+=(-test.run '^TestK8sNode$')
	boot+=(--env "K8S_CACHE=$vm_k8s" --env "NRI_ARMOR_E2E_CNI=$vm_k8s/cni")
fi
rc=0
# CRI-O runs in the BPF-LSM build only, for the tests its list names
# (e2e/runtimes_vme2e_test.go); the others run on containerd only.
# One virtual CPU: with two, software emulation was once seen to soft-lock
# (make demo-vm, while nri-armor attached its LSM programs); one is as fast.
"$here/run.sh" --rootfs "$img" --files "$files" --smp 1 --mem 4096 --timeout "$timeout_s" "${boot[@]}" \
	--console-log "$cache/console-$kind.log" \
	--env "NRI_ARMOR_E2E_CACHE=$vm_cache" \
	--env NRI_ARMOR_E2E_ROOT=/vmtest/files/repo \
	--env NRI_ARMOR_E2E_ARMOR_BIN=/vmtest/files/bin/nri-armor \
	"$work/e2e-vm.test" "${args[@]}" || rc=$?
log "exit status $rc after $((SECONDS - start)) s in all"
exit "$rc"
