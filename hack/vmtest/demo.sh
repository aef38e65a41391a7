#!/usr/bin/env bash
# Usage: hack/vmtest/demo.sh   (make demo-vm; root)
#
# make demo (hack/demo/demo.sh) inside the QEMU VM of hack/vmtest, booted
# with BPF-LSM: every class of the demo's policy is enforced there, so the
# package manager and (with a Block rule) file reads are refused with EPERM
# by the kernel, and armor-tracer's alerts say `Enforcer: BPFLSM`. The real
# containerd, runc, crictl, nri-armor and armor-tracer, in a Debian root.
#
#   1. hack/e2e/setup.sh: containerd, ctr, the shim, crictl and the local
#      OCI images (cached in .cache/e2e), as for make demo.
#   2. hack/vmtest/rootfs.sh: the Debian root of make vmtest-e2e (the same
#      packages and added files, so one cached image serves both: bash, jq,
#      iproute2, procps, runc, busybox-static; the tools and images in
#      /var/lib/nri-armor-e2e, cached in .cache/vmtest/root).
#   3. Into the initramfs, fresh every run (run.sh --files): nri-armor,
#      nri-armor-hook, armor-tracer and armorctl, statically linked, and the
#      demo's part of this checkout: hack/demo/demo.sh, hack/e2e/{lib,
#      containerd}.sh, config/containerd-nri.toml and containerd-base-spec.json,
#      config/policies/.
#   4. hack/vmtest/run.sh --rootfs: boots the VM, which runs
#      `DEMO_PREBUILT_BIN=/vmtest/files/bin hack/demo/demo.sh` (the demo
#      without its set-up and build, see there), streams the console here
#      and exits with the demo's status: 0 when everything went as the
#      policy and the kernel say; 124 when the hard timeout DEMO_VM_TIMEOUT
#      (default 300 s) expired; 2 or 3 when the VM could not run it.
#
# DEMO_VM_LSM=apparmor (make demo-vm DEMO_VM_LSM=apparmor) boots the VM as
# most Debian, Ubuntu and COS nodes are: AppArmor active, BPF-LSM not, and
# containerd with AppArmor enabled; nri-armor's AppArmor backend then
# enforces the process, file and capability rules (apt-get refused with
# EACCES, alerts with Enforcer AppArmor), cgroup-BPF the network ones.
#
# DEMO_ALERT_WAIT (default 15 s in the VM: software emulation is slow) is
# passed on to the demo. DEMO_VM_SMP: the VM's virtual CPUs, 1 by default:
# in one run of three with 2, ss and awk (the demo polling for nri-armor's
# port right after it started) were stuck in the kernel, soft lockups on
# both CPUs, until the timeout (cause not established).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}
timeout_s=${DEMO_VM_TIMEOUT:-300}
smp=${DEMO_VM_SMP:-1}
alert_wait=${DEMO_ALERT_WAIT:-15}
boot=()
case ${DEMO_VM_LSM:-bpf} in
bpf) ;;
# The last lsm= wins: run.sh's own lists bpf.
apparmor) boot=(--append "lsm=landlock,lockdown,yama,apparmor" --env NRI_ARMOR_E2E_APPARMOR=1) ;;
*) echo "demo-vm: error: DEMO_VM_LSM takes bpf or apparmor, got '$DEMO_VM_LSM'" >&2; exit 2 ;;
esac
# Where the tools and images are inside the VM (NRI_ARMOR_E2E_CACHE there),
# as for make vmtest-e2e.
vm_cache=/var/lib/nri-armor-e2e
log() { echo "demo-vm: $*" >&2; }
die() { echo "demo-vm: error: $*" >&2; exit 2; }

((EUID == 0)) || die "make demo-vm needs root (debootstrap, apt-get, the e2e set-up)"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "DEMO_VM_TIMEOUT takes seconds, got '$timeout_s'"
[[ $alert_wait =~ ^[1-9][0-9]*$ ]] || die "DEMO_ALERT_WAIT takes seconds, got '$alert_wait'"
start=$SECONDS

log "setting up (hack/e2e/setup.sh, cached in .cache/e2e)"
"$root/hack/e2e/setup.sh" || die "hack/e2e/setup.sh failed"
e2e_cache=${NRI_ARMOR_E2E_CACHE:-$root/.cache/e2e}
log "the Debian root (hack/vmtest/rootfs.sh; the first run debootstraps it: ~1 minute)"
img=$("$here/rootfs.sh" --add "$e2e_cache/bin:$vm_cache/bin" --add "$e2e_cache/images:$vm_cache/images") ||
	die "building the root image failed"

# Not in .cache/vmtest/bin, which make vmtest empties.
work=$cache/demo
files=$work/files
rm -rf "$files"
mkdir -p "$files/bin" "$files/repo/hack/demo" "$files/repo/hack/e2e" "$files/repo/config"
log "building nri-armor, nri-armor-hook, armor-tracer, armorctl (static)"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$files/bin/" \
	./cmd/nri-armor ./cmd/nri-armor-hook ./cmd/armor-tracer ./cmd/armorctl) || die "go build failed"
cp "$root/hack/demo/demo.sh" "$files/repo/hack/demo/"
cp "$root/hack/e2e/lib.sh" "$root/hack/e2e/containerd.sh" "$files/repo/hack/e2e/"
cp "$root/config/containerd-nri.toml" "$root/config/containerd-base-spec.json" "$files/repo/config/"
cp -r "$root/config/policies" "$files/repo/config/"
log "ready after $((SECONDS - start)) s; booting the VM (hard timeout ${timeout_s}s, DEMO_VM_TIMEOUT)"

# run.sh runs static binaries: busybox (static, as run.sh's init) starts
# the demo with bash from the root image. Through cat, the demo's stdout is
# not the console's tty: no bold escapes, which run.sh's filter would cut
# in half. pipefail keeps the demo's exit status.
rc=0
"$here/run.sh" --rootfs "$img" --files "$files" --smp "$smp" --mem 4096 --timeout "$timeout_s" "${boot[@]}" \
	--env "NRI_ARMOR_E2E_CACHE=$vm_cache" \
	--env DEMO_PREBUILT_BIN=/vmtest/files/bin \
	--env "DEMO_ALERT_WAIT=$alert_wait" \
	/bin/busybox sh -c 'set -o pipefail; bash /vmtest/files/repo/hack/demo/demo.sh 2>&1 | cat' || rc=$?
case $rc in
0) log "PASS: the demo in the VM ended as the policy and the kernel say ($((SECONDS - start)) s in all)" ;;
124) log "error: TIMED OUT: the demo did not finish within ${timeout_s}s and the VM was killed; raise DEMO_VM_TIMEOUT (console log: $cache/console.log)" ;;
*) log "FAILED: exit status $rc after $((SECONDS - start)) s in all (console log: $cache/console.log)" ;;
esac
exit "$rc"
