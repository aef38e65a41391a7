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
