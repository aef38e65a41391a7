#!/usr/bin/env bash
# hack/e2e/setup.sh: installs what the end-to-end tests need, cached in
# .cache/e2e (NRI_ARMOR_E2E_CACHE): Debian packages (runc, busybox-static,
# jq; libseccomp-dev and pkg-config to build runc and crio; conmon, CRI-O's
# container monitor; skopeo, which copies the local images into CRI-O's
# storage), containerd/ctr/containerd-shim-runc-v2, crictl, CRI-O's crio
# and a newer runc (which takes seccomp flags, for the runtime handler
# runc-flags) built from the Go module proxy at pinned versions, CRI-O's
# pinns built from the C source in its module, and three local OCI image archives
# (no registry is reachable): a busybox image with test files and the nettool
# probe, a merged-/usr busybox image (usrmerge), and a pause image.
# Idempotent: what is cached is not redone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export LC_ALL=C

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root"; }

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in runc busybox-static jq libseccomp-dev pkg-config conmon skopeo; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
	need_root "apt-get install ${missing[*]}"
	say "apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || die "Go is required (go not on PATH)"

# --- Pinned Go tools -------------------------------------------------------
mkdir -p "$E2E_BIN" "$E2E_IMAGES"
# A stamp per tool records the version built, so a new pin rebuilds it.
install_tool() { # NAME VERSION PACKAGE [GO INSTALL FLAGS...]
	local name=$1 version=$2 pkg=$3
	shift 3
	if [ -x "$E2E_BIN/$name" ] && [ "$(cat "$E2E_BIN/.$name.version" 2>/dev/null)" = "$version" ]; then
		return
	fi
	say "go install $* $pkg@$version (a few minutes the first time)"
	GOBIN=$E2E_BIN go install "$@" "$pkg@$version"
	echo "$version" >"$E2E_BIN/.$name.version"
}
install_tool containerd "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd
install_tool ctr "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/ctr
install_tool containerd-shim-runc-v2 "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
install_tool crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
install_tool runc "$RUNC_VERSION" github.com/opencontainers/runc -tags seccomp

# CRI-O: `go install github.com/cri-o/cri-o/cmd/crio@VERSION` fails here
# (the proxy refuses the module's version list, which go install reads for
# deprecations), so crio is built inside the downloaded module, and pinns
# (C) from the source beside it. About 3.5 minutes cold on 2 CPUs.
if ! [ -x "$E2E_BIN/crio" ] || ! [ -x "$E2E_BIN/pinns" ] || [ "$(cat "$E2E_BIN/.crio.version" 2>/dev/null)" != "$CRIO_VERSION" ]; then
	say "building CRI-O $CRIO_VERSION (crio, pinns; a few minutes the first time)"
	crio_mod=$(go mod download -json "github.com/cri-o/cri-o@$CRIO_VERSION" | jq -r .Dir)
	[ -d "$crio_mod" ] || die "go mod download github.com/cri-o/cri-o@$CRIO_VERSION: no module directory"
	(cd "$crio_mod" && GOFLAGS=-mod=mod go build -trimpath \
		-tags 'containers_image_ostree_stub containers_image_openpgp exclude_graphdriver_btrfs seccomp' \
		-o "$E2E_BIN/crio" ./cmd/crio)
	pinns_src=$(mktemp -d)
	cp -r "$crio_mod/pinns" "$pinns_src/"
	chmod -R u+w "$pinns_src"
	make -s -C "$pinns_src/pinns" >/dev/null
	install -m 0755 "$pinns_src/bin/pinns" "$E2E_BIN/pinns"
	rm -rf "$pinns_src"
	echo "$CRIO_VERSION" >"$E2E_BIN/.crio.version"
fi

# --- Local OCI images ------------------------------------------------------
# The helpers are built from this checkout; a changed source rebuilds the
# images (the stamp is a hash over every input).
stamp=$( (cat "$0" "$(dirname "$0")/lib.sh" "$E2E_ROOT/hack/oci-archive.sh" "$E2E_ROOT"/hack/e2e/{pause,nettool}/*.go; dpkg -s busybox-static | grep '^Version') | sha256sum | cut -c1-16)
if [ "$(cat "$E2E_IMAGES/.stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$E2E_IMAGES/busybox.tar" ] && [ -s "$E2E_IMAGES/pause.tar" ] && [ -s "$E2E_IMAGES/usrmerge.tar" ]; then
	say "images up to date ($E2E_IMAGES)"
	exit 0
fi
say "building local images (busybox, usrmerge, pause)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$E2E_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$work/pause.bin" ./hack/e2e/pause &&
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$work/nettool" ./hack/e2e/nettool)

# oci_archive: hack/oci-archive.sh (shared with the nri-armor image's recipe).
. "$E2E_ROOT/hack/oci-archive.sh"

# busybox: busybox-static with a link per applet, plus what the tests probe:
# a secret file, a fake package manager, and nettool.
rf=$work/busybox
mkdir -p "$rf"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,proc,sys,dev,run,var/tmp}
chmod 1777 "$rf/tmp" "$rf/var/tmp"
cp /bin/busybox "$rf/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$rf/bin/$applet" ] || ln -s busybox "$rf/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rf/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rf/etc/group"
printf 'root:$6$e2e$not-a-real-hash:19000:0:99999:7:::\n' >"$rf/etc/shadow"
chmod 0640 "$rf/etc/shadow"
printf '#!/bin/sh\necho "apt-get (fake): $*"\n' >"$rf/usr/bin/apt-get"
chmod 0755 "$rf/usr/bin/apt-get"
cp "$work/nettool" "$rf/usr/local/bin/nettool"
oci_archive "$rf" "$E2E_BUSYBOX_IMAGE" "$E2E_IMAGES/busybox.tar" \
	'{"Env":["PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}'

# usrmerge: a merged-/usr image, as Debian's and Fedora's are: /bin and
# /sbin are links to usr/bin, every applet a link to usr/bin/busybox, and
# sh a link to usrmerge-sh, another file (a hard link to busybox: busybox
# picks its applet by argv[0], so /bin/sh still runs its shell; a name no
# host has, so that resolving in the wrong root shows). A rule on /bin/sh
# must reach the kernel's name, /usr/bin/usrmerge-sh (TestVMSymlinkedRulePaths).
rf=$work/usrmerge
mkdir -p "$rf"/{usr/bin,etc,tmp,root,proc,sys,dev,run}
chmod 1777 "$rf/tmp"
ln -s usr/bin "$rf/bin"
ln -s usr/bin "$rf/sbin"
cp /bin/busybox "$rf/usr/bin/busybox"
ln "$rf/usr/bin/busybox" "$rf/usr/bin/usrmerge-sh"
ln -s usrmerge-sh "$rf/usr/bin/sh"
for applet in $(/bin/busybox --list); do
	[ -e "$rf/usr/bin/$applet" ] || [ -L "$rf/usr/bin/$applet" ] || ln -s busybox "$rf/usr/bin/$applet"
done
cp "$work/busybox/etc/passwd" "$work/busybox/etc/group" "$rf/etc/"
oci_archive "$rf" "$E2E_USRMERGE_IMAGE" "$E2E_IMAGES/usrmerge.tar" \
	'{"Env":["PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}'

rf=$work/pause-rootfs
mkdir -p "$rf"
cp "$work/pause.bin" "$rf/pause"
oci_archive "$rf" "$E2E_PAUSE_IMAGE" "$E2E_IMAGES/pause.tar" '{"Entrypoint":["/pause"]}'

echo "$stamp" >"$E2E_IMAGES/.stamp"
say "images built: $E2E_IMAGES/busybox.tar ($E2E_BUSYBOX_IMAGE), $E2E_IMAGES/usrmerge.tar ($E2E_USRMERGE_IMAGE), $E2E_IMAGES/pause.tar ($E2E_PAUSE_IMAGE)"
