# Sourced by hack/e2e/*.sh: where the e2e environment lives, and the pins.
# Everything goes under one ignored folder so that a second run reuses it
# and `rm -rf .cache/e2e` starts over.
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_CACHE=${NRI_ARMOR_E2E_CACHE:-$E2E_ROOT/.cache/e2e}
E2E_BIN=$E2E_CACHE/bin
E2E_IMAGES=$E2E_CACHE/images
# The private containerd's root, state, sockets, config and logs.
# NRI_ARMOR_E2E_RUN_NAME names another environment beside the tests' (make
# demo uses "demo"): its own containerd, sockets and cgroups, sharing the
# tools and images, so that a demo and a test run never meet.
E2E_RUN=$E2E_CACHE/${NRI_ARMOR_E2E_RUN_NAME:-run}
# Names this checkout's node-wide leftovers (bpffs pins, cgroups), so that
# e2e runs of two checkouts on one node never meet (the default environment
# keeps the ID it always had).
E2E_ID=$(printf %s "$E2E_CACHE${NRI_ARMOR_E2E_RUN_NAME:+/$NRI_ARMOR_E2E_RUN_NAME}" | sha256sum | cut -c1-8)
# The test pods' cgroup parent (in every hierarchy); containerd.sh stop
# kills what is left in it and removes it.
E2E_CGROUP_PARENT=nri-armor-e2e-$E2E_ID

CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
# CRI-O beside containerd (hack/e2e/crio.sh): it vendors NRI v0.11.0.
CRIO_VERSION=v1.36.3
# A runc that takes seccomp flags (Debian's 1.1.5 refuses any), for the
# runtime handler runc-flags (TestSeccompBlockAlert); cgo, libseccomp.
RUNC_VERSION=v1.5.2
# Local images (no registry): the names the tests and the config use.
E2E_BUSYBOX_IMAGE=nri-armor.local/e2e/busybox:1
E2E_PAUSE_IMAGE=nri-armor.local/e2e/pause:1
# A merged-/usr image: /bin is a link to usr/bin, sh a link to another file.
E2E_USRMERGE_IMAGE=nri-armor.local/e2e/usrmerge:1

# say prints a progress line (long steps print one before they start).
say() { echo "e2e: $*" >&2; }
die() { echo "e2e: error: $*" >&2; exit 1; }

# stop_runtime NAME PIDFILE CRICTL_CONFIG CGROUP_PARENT DIR SHIM_PATTERN:
# a private runtime's stop, shared by containerd.sh and crio.sh. Its pods
# removed, the daemon stopped (SIGTERM, then SIGKILL after 10 s); then what
# outlives it by design — the processes left in the pods' cgroups (when the
# daemon was gone and could not remove the pods), its shims (pgrep -f
# SHIM_PATTERN: containerd's shims, CRI-O's conmon), the mounts under DIR
# (overlay layers, rootfs, shm, pinned namespaces) — and the cgroups,
# deepest first, once their processes are gone.
stop_runtime() {
	local name=$1 pidfile=$2 crictl_cfg=$3 parent=$4 dir=$5 shims=$6 pid p cg
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		say "removing pods of the private $name"
		crictl --config "$crictl_cfg" rmp -fa >/dev/null 2>&1 || true
		pid=$(cat "$pidfile")
		say "stopping $name (pid $pid)"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	for cg in $(cgroup_dirs "$parent"); do
		for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null || true
		done
	done
	for p in $(pgrep -f "$shims" || true); do
		kill -9 "$p" 2>/dev/null || true
	done
	if [ -d "$dir" ]; then
		awk -v r="$dir/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
			umount -l "$m" 2>/dev/null || true
		done
	fi
	for _ in $(seq 50); do
		for cg in $(cgroup_dirs "$parent" | sort -r); do
			rmdir "$cg" 2>/dev/null || true
		done
		[ -z "$(cgroup_dirs "$parent")" ] && break
		sleep 0.1
	done
	[ -z "$(cgroup_dirs "$parent")" ] || die "cgroups left: $(cgroup_dirs "$parent" | tr '\n' ' ')"
	say "$name stopped"
}

# cgroup_dirs PARENT lists the cgroup PARENT and everything below it, in
# every hierarchy (v1 controllers and cgroup2, hybrid or not).
cgroup_dirs() {
	local top
	for top in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$top" ] && find "$top" -type d
	done
	return 0
}
