#!/usr/bin/env bash
# Usage: hack/vmtest/rootfs.sh [--name NAME] [--add SRC:DEST ...]
#
# Builds (cached) an ext4 image of a Debian root for hack/vmtest/run.sh
# --rootfs and prints its path on stdout (progress goes to stderr):
#
#   debootstrap --variant=minbase --include=PACKAGES SUITE from apt's mirror
#   + each --add SRC:DEST (a file or a directory's contents, copied to DEST
#     inside the root), packed with `mkfs.ext4 -d`.
#
# SUITE is this host's Debian release (VERSION_CODENAME) and the mirror the
# one apt is configured with (read from `apt-cache policy`; no host is written
# down here), so the root's glibc and packages are those the host's binaries
# were built against. PACKAGES: what the VM e2e and demo need beside
# minbase (which has bash, coreutils, grep, sed, mawk, util-linux) —
# runc (containerd's runtime), iproute2 (lo; ss in hack/demo/demo.sh), procps
# (pgrep in hack/e2e/containerd.sh), kmod, busybox-static (run.sh's init
# applets), jq (hack/demo/demo.sh), apparmor (apparmor_parser: nri-armor's
# AppArmor backend, and containerd's default profile in the AppArmor boot),
# conmon (CRI-O's container monitor) and skopeo (copies the local images
# into CRI-O's storage), and netavark only because skopeo's
# golang-github-containers-common depends on container-network-stack, a
# virtual package debootstrap cannot resolve (nothing runs it): CRI-O
# itself (crio, pinns) comes with the e2e tools' bin/ that make vmtest-e2e
# adds, for the tests it runs on CRI-O too.
# make vmtest-e2e and make demo-vm add the same files, so they share one image.
#
# Two caches under VMTEST_CACHE (default .cache/vmtest), each keyed by a hash
# of its inputs, only the latest of each kept:
#   root/debootstrap-KEY/   the debootstrap tree (key: the recipe version,
#                           suite, mirror, packages), ~30 s to build;
#   root/NAME-KEY.img       the image (key: the tree's key, this script and
#                           the path, mode and content of every added file),
#                           a few seconds from the tree; NAME is root unless
#                           --name says otherwise: images of other names
#                           are kept (make k8s-node adds the Kubernetes
#                           binaries, and would otherwise evict the image of
#                           make vmtest-e2e on every alternation).
# So changing an added file rebuilds the image only, not the tree.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}/root
log() { echo "rootfs: $*" >&2; }
die() { echo "rootfs: error: $*" >&2; exit 1; }

packages=runc,iproute2,procps,kmod,busybox-static,jq,apparmor,conmon,skopeo,netavark
adds=()
name=root
while (($#)); do
	case $1 in
	--name)
		[[ ${2:-} =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "--name takes lower-case letters, digits and dashes, got '${2:-}'"
		name=$2
		shift 2
		;;
	--add)
		[[ ${2:-} == ?*:/?* ]] || die "--add takes SRC:/ABSOLUTE/DEST, got '${2:-}'"
		adds+=("$2")
		shift 2
		;;
	*) die "unknown argument $1 (usage: rootfs.sh [--name NAME] [--add SRC:DEST ...])" ;;
	esac
done
for a in "${adds[@]}"; do
	[[ -e ${a%%:*} ]] || die "--add $a: ${a%%:*} does not exist"
done
((EUID == 0)) || die "building the root needs root (debootstrap, file owners)"

need=()
for p in debootstrap e2fsprogs; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || need+=("$p")
done
if ((${#need[@]})); then
	log "installing ${need[*]} with apt-get ..."
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
		die "apt-get install ${need[*]} failed"
fi

# shellcheck disable=SC1091 # the host's
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $suite ]] || die "/etc/os-release names no VERSION_CODENAME"
# apt-cache policy lists each source as ' 500 URI SUITE/COMPONENT ARCH Packages'.
mirror=$(apt-cache policy | awk -v s="$suite/main" '$3 == s && $5 == "Packages" { print $2; exit }')
[[ -n $mirror ]] || die "apt has no source for $suite/main (apt-cache policy); is this Debian $suite with apt configured?"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# Bump recipe when the tree's making changes (not for the image's part).
recipe=1
tree_key=$(echo "$recipe $suite $mirror $packages" | sha256sum | cut -c1-16)
tree=$cache/debootstrap-$tree_key
if [[ ! -f $tree.complete ]]; then
	rm -rf "$tree" "$tree.complete"
	log "debootstrap --variant=minbase $suite from $mirror (+$packages) ..."
	start=$SECONDS
	dlog=$cache/debootstrap.log
	if ! debootstrap --variant=minbase --include="$packages" "$suite" "$tree" "$mirror" >"$dlog" 2>&1; then
		tail -n 30 "$dlog" >&2
		# debootstrap's own log names the failing package.
		tail -n 30 "$tree/debootstrap/debootstrap.log" >&2 2>/dev/null || true
		die "debootstrap failed (log: $dlog)"
	fi
	# Package caches and lists are only weight in the image.
	rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
	touch "$tree.complete"
	log "debootstrap done in $((SECONDS - start)) s"
	for old in "$cache"/debootstrap-*; do
		[[ $old == "$tree" || $old == "$tree.complete" ]] || rm -rf "$old"
	done
fi

# The image's key: the tree and every added file (path, mode, content).
img_key=$({
	echo "$tree_key"
	cat "$0"
	for a in "${adds[@]}"; do
		echo "add $a"
		src=${a%%:*}
		(cd "$src" 2>/dev/null && find . -print0 | sort -z | xargs -0 -r stat -c '%n %a %s' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) ||
			{ stat -c '%a %s' "$src"; sha256sum <"$src"; }
	done
} | sha256sum | cut -c1-16)
img=$cache/$name-$img_key.img
if [[ -f $img ]]; then
	log "cached $img"
	echo "$img"
	exit 0
fi

log "packing the root image ..."
start=$SECONDS
stage=$(mktemp -d "$cache/.stage.XXXXXX")
trap 'rm -rf "$stage" "$img.tmp"' EXIT
cp -a "$tree/." "$stage/"
for a in "${adds[@]}"; do
	src=${a%%:*} dest=$stage${a#*:}
	if [[ -d $src ]]; then
		mkdir -p "$dest"
		cp -a "$src/." "$dest/"
	else
		mkdir -p "$(dirname "$dest")"
		cp -a "$src" "$dest"
	fi
done
echo nri-armor-vm >"$stage/etc/hostname"
# containerd copies /etc/hosts into every pod; debootstrap writes none.
printf '127.0.0.1\tlocalhost\n127.0.1.1\tnri-armor-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
# Where run.sh's init puts its files after switching root (a tmpfs).
mkdir -p "$stage/vmtest"
# Room for what the tests write: containerd's content store and snapshots
# (the VM sees the image with snapshot=on, so nothing reaches this file).
used_mb=$(du -sm "$stage" | cut -f1)
size_mb=$((used_mb * 5 / 4 + 1024))
mkfs.ext4 -q -F -L nri-armor-root -d "$stage" "$img.tmp" "${size_mb}M" >&2 || die "mkfs.ext4 -d failed"
mv "$img.tmp" "$img"
for old in "$cache/$name"-*.img; do
	[[ $old == "$img" ]] || rm -f "$old"
done
log "packed $img (${used_mb} MiB used of ${size_mb} MiB) in $((SECONDS - start)) s"
echo "$img"
