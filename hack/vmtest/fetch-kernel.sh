#!/usr/bin/env bash
# Usage: hack/vmtest/fetch-kernel.sh [--boot-image]
#
# Fetches the current stock Debian kernel for the VM test layer and prints the
# path of its vmlinuz on stdout (progress goes to stderr). With --boot-image it
# prints the image that run.sh boots instead: the uncompressed vmlinux when
# there is one (see below), else vmlinuz.
#
# The kernel is whatever apt's `linux-image-amd64` metapackage depends on right
# now (resolved with apt-cache to the concrete linux-image-<version>-amd64; no
# version or mirror is written down here). The .deb is fetched with
# `apt-get download` into .cache/vmtest/debs/ and unpacked with `dpkg-deb -x`
# into .cache/vmtest/kernel/<package>_<version>/ (boot/vmlinuz-* plus
# lib/modules with its modules.dep for later layers; with CONFIG_PVH also
# boot/vmlinux-<release>, the same kernel uncompressed, which run.sh boots
# faster). Cached: when that
# directory is complete the script prints the path without touching the
# network (apt-cache still resolves the package, ~1 s). Only the kernel fetched
# last is kept: other versions' trees and .debs are removed.
#
# Environment:
#   NRI_ARMOR_VM_KERNEL_PKG  use this concrete package (e.g. linux-image-6.1.0-56-amd64)
#                            instead of resolving the metapackage.
#   VMTEST_CACHE             cache directory (default: <repo>/.cache/vmtest)
set -euo pipefail
export LC_ALL=C

boot_image=0
case ${1:-} in
"") ;;
--boot-image) boot_image=1 ;;
*) echo "usage: $0 [--boot-image]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${VMTEST_CACHE:-$root/.cache/vmtest}
log() { echo "fetch-kernel: $*" >&2; }
die() { echo "fetch-kernel: error: $*" >&2; exit 1; }

for cmd in apt-cache apt-get dpkg-deb flock xz; do
	command -v "$cmd" >/dev/null || die "$cmd not found (this script needs a Debian host)"
done
mkdir -p "$cache/debs" "$cache/kernel"

# One fetch at a time per cache.
exec 9>"$cache/.fetch-kernel.lock"
flock 9

# resolve_pkg prints the concrete kernel image package the metapackage depends on.
resolve_pkg() {
	apt-cache depends --important linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9][^ ]*-amd64$/ { print $2 }' | sort -u
}

pkg=${NRI_ARMOR_VM_KERNEL_PKG:-}
if [[ -z $pkg ]]; then
	pkg=$(resolve_pkg)
	if [[ -z $pkg ]]; then
		# A fresh machine may have empty package lists.
		log "linux-image-amd64 unknown to apt; running apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		pkg=$(resolve_pkg)
	fi
	[[ -n $pkg ]] || die "cannot resolve linux-image-amd64 to a linux-image-<version>-amd64 package with apt-cache"
	[[ $(wc -l <<<"$pkg") -eq 1 ]] || die "linux-image-amd64 depends on several kernel packages: ${pkg//$'\n'/ }"
fi

# The candidate version of the concrete package (the one apt-get download fetches).
record=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null) || die "apt knows no package $pkg"
version=$(awk -F': ' '$1 == "Version" { print $2; exit }' <<<"$record")
size=$(awk -F': ' '$1 == "Size" { print $2; exit }' <<<"$record")
[[ -n $version ]] || die "no candidate version for $pkg"

# print_image VMLINUZ prints the path asked for.
print_image() {
	local vmlinux
	vmlinux=$(dirname "$1")/vmlinux-$(basename "$1" | sed 's/^vmlinuz-//')
	if ((boot_image)) && [[ -f $vmlinux ]]; then
		echo "$vmlinux"
	else
		echo "$1"
	fi
}

# Cache key: package and version (':' from an epoch is not welcome in paths).
key="${pkg}_${version//:/%3a}"
dir="$cache/kernel/$key"
# modules_dep makes lib/modules/RELEASE/modules.dep in the tree $1 for the
# kernel $2 (the .deb carries none: its postinst runs depmod), here under the
# lock, once: run.sh and e2e.sh read it to find the modules a root image
# needs. Only where depmod is installed (run.sh and e2e.sh install kmod
# before they call this script when they need the modules).
modules_dep() {
	local release
	release=$(basename "$2" | sed 's/^vmlinuz-//')
	[[ -s $1/lib/modules/$release/modules.dep ]] && return 0
	command -v depmod >/dev/null || return 0
	depmod -b "$1" "$release" || die "depmod -b $1 $release failed"
}

if [[ -f $dir/.complete ]]; then
	vmlinuz=$(cat "$dir/.complete")
	[[ -f $vmlinuz ]] || die "cache $dir is damaged (no $vmlinuz); remove it and rerun"
	log "cached $pkg $version"
	modules_dep "$dir" "$vmlinuz"
	print_image "$vmlinuz"
	exit 0
fi

deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" -print 2>/dev/null |
	while read -r f; do
		[[ $(dpkg-deb -f "$f" Version 2>/dev/null) == "$version" ]] && echo "$f"
	done | head -n1)
if [[ -z $deb ]]; then
	tmp=$(mktemp -d "$cache/debs/.download.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg $version ($((${size:-0} / 1048576)) MiB) with apt-get download ..."
	start=$SECONDS
	sandbox=()
	# apt drops to the _apt user for downloads; it cannot write our cache.
	[[ $EUID -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
	(cd "$tmp" && apt-get "${sandbox[@]}" -q download "$pkg=$version" >&2) ||
		die "apt-get download $pkg=$version failed"
	f=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
	[[ -n $f ]] || die "apt-get download produced no .deb"
	deb="$cache/debs/$(basename "$f")"
	mv "$f" "$deb"
	rm -rf "$tmp"
	trap - EXIT
	log "downloaded $(basename "$deb") in $((SECONDS - start)) s"
else
	log "using cached $(basename "$deb")"
fi

log "unpacking $(basename "$deb") with dpkg-deb -x ..."
start=$SECONDS
rm -rf "$dir" "$dir.tmp"
dpkg-deb -x "$deb" "$dir.tmp" || die "dpkg-deb -x $deb failed"
vmlinuz=$(find "$dir.tmp/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit 2>/dev/null)
[[ -n $vmlinuz ]] || die "$deb holds no boot/vmlinuz-*"
release=$(basename "$vmlinuz" | sed 's/^vmlinuz-//')
log "unpacked in $((SECONDS - start)) s: kernel $release"

# Beside vmlinuz, the same kernel uncompressed (boot/vmlinux-<release>), which
# run.sh prefers: QEMU boots it through its PVH entry, and that skips the xz
# decompression that costs ~2.5 s per boot under TCG. Only for a kernel with
# CONFIG_PVH; otherwise run.sh boots vmlinuz.
if grep -qx 'CONFIG_PVH=y' "$dir.tmp/boot/config-$release" 2>/dev/null; then
	out="$dir.tmp/boot/vmlinux-$release"
	for off in $(grep -abo $'\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1 | head -n5); do
		# xz stops at the end of its stream and complains about what follows.
		tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$out" 2>/dev/null || true
		[[ $(head -c4 "$out" | od -An -c | tr -d ' ') == 177ELF ]] && break
		rm -f "$out"
	done
	if [[ -f $out ]]; then
		log "extracted vmlinux-$release ($(($(stat -c %s "$out") / 1048576)) MiB) for a PVH boot"
	else
		log "could not extract an uncompressed vmlinux (not xz?); run.sh will boot vmlinuz"
	fi
fi
mv "$dir.tmp" "$dir"
vmlinuz="$dir/boot/$(basename "$vmlinuz")"
modules_dep "$dir" "$vmlinuz"
echo "$vmlinuz" >"$dir/.complete"

# Keep only this kernel: drop other versions' unpacked trees and .debs.
for old in "$cache"/kernel/*/; do
	[[ ${old%/} == "$dir" ]] || { log "removing old ${old%/}"; rm -rf "${old%/}"; }
done
for f in "$cache"/debs/*.deb; do
	[[ $f == "$deb" ]] || { [[ -f $f ]] && rm -f "$f"; }
done
print_image "$vmlinuz"
