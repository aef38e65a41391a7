#!/usr/bin/env bash
# hack/image/build.sh [OUT]: builds the image the chart runs,
# nri-armor.local/nri-armor:VERSION, as an OCI image archive (default
# .cache/image/nri-armor-VERSION.oci.tar), with no registry and no image
# tool: the Go binaries built from this checkout, static, in /usr/bin, and
# from Debian's packages (apt-get download, the versions apt's index has)
# apparmor_parser for the AppArmor backend and nsenter (util-linux) for the
# daemon's start in the host's cgroup namespace, with the C library they
# load. Import it on a node with
#   ctr -n k8s.io images import OUT
# Reproducible: the same checkout, packages and Go give the same digest
# (sorted tar, every mtime SOURCE_DATE_EPOCH, default the last commit's
# time; -trimpath). It prints the archive's path and the image's digest.
#
#   NRI_ARMOR_IMAGE_VERSION    the tag (default: charts/nri-armor's appVersion)
#   NRI_ARMOR_IMAGE_BINARIES   the commands of cmd/ to put in /usr/bin
#   SOURCE_DATE_EPOCH          every file's mtime
set -euo pipefail
export LC_ALL=C TZ=UTC
# Modes of the files made here must not depend on the caller's umask.
umask 022
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/hack/oci-archive.sh"
die() { echo "image: error: $*" >&2; exit 1; }
say() { echo "image: $*" >&2; }

version=${NRI_ARMOR_IMAGE_VERSION:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/nri-armor/Chart.yaml")}
[ -n "$version" ] || die "no appVersion in charts/nri-armor/Chart.yaml"
name=nri-armor.local/nri-armor:$version
# Every binary the agent's and the webhook's containers run, and armorctl
# for an operator's kubectl exec (charts.TestImageHoldsCommands checks the
# chart runs nothing else).
binaries=${NRI_ARMOR_IMAGE_BINARIES:-nri-armor nri-armor-hook armor-tracer armorctl nri-armor-webhook}
# apparmor: apparmor_parser and the features file it is pinned to;
# util-linux: nsenter; the libraries those two load (the C library, and
# nsenter's libselinux1 and libpcre2-8-0).
packages="apparmor util-linux libc6 libselinux1 libpcre2-8-0"
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
cache=${NRI_ARMOR_IMAGE_CACHE:-$root/.cache/image}
out=${1:-$cache/nri-armor-$version.oci.tar}
command -v jq >/dev/null || die "jq is required (apt-get install jq)"

for b in $binaries; do
	[ -d "$root/cmd/$b" ] || die "cmd/$b does not exist: the image needs every binary of NRI_ARMOR_IMAGE_BINARIES ($binaries); build with the list less it to try the rest"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rf=$work/rootfs
mkdir -p "$rf"/{usr/bin,usr/sbin,etc,tmp,run,proc,sys,dev,usr/share/nri-armor}
chmod 1777 "$rf/tmp"

say "go build $binaries"
# Static (no cgo), no paths of this machine in them: the same source and
# Go give the same bytes.
(cd "$root" && for b in $binaries; do
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$rf/usr/bin/$b" "./cmd/$b"
done)

# Debian's packages, downloaded once per version (apt's index decides
# which) and checked against the index's SHA256.
mkdir -p "$cache/debs"
: >"$work/packages"
apt-get download --print-uris $packages >"$work/uris" || die "apt-get download --print-uris $packages failed (apt-get update first?)"
[ "$(wc -l <"$work/uris")" -eq "$(wc -w <<<"$packages")" ] || die "apt's index lacks some of: $packages (apt-get update first?)"
while read -r _ file _ sum; do
	sum=${sum#SHA256:}
	if [ "$(sha256sum "$cache/debs/$file" 2>/dev/null | cut -d' ' -f1)" != "$sum" ]; then
		say "apt-get download $file"
		# apt drops to the _apt user for downloads; it cannot write our cache.
		sandbox=()
		[ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
		(cd "$cache/debs" && apt-get "${sandbox[@]}" -q download "${file%%_*}" >/dev/null)
		[ "$(sha256sum "$cache/debs/$file" | cut -d' ' -f1)" = "$sum" ] || die "$file: SHA256 differs from apt's index"
	fi
	echo "$file $sum" >>"$work/packages"
done <"$work/uris"

x=$work/debs
mkdir -p "$x"
for f in $(cut -d' ' -f1 "$work/packages"); do
	case $f in
	libc6_* | libselinux1_* | libpcre2-8-0_*) dpkg-deb -x "$cache/debs/$f" "$rf" ;;
	*) dpkg-deb -x "$cache/debs/$f" "$x" ;;
	esac
done
# Of apparmor and util-linux only what nri-armor runs; Debian's apparmor
# installs the parser in /sbin, where nri-armor also looks (/usr/sbin first).
cp -p "$x/sbin/apparmor_parser" "$rf/usr/sbin/apparmor_parser"
mkdir -p "$rf/etc/apparmor" "$rf/usr/share/apparmor-features"
cp -p "$x/etc/apparmor/parser.conf" "$rf/etc/apparmor/"
cp -pr "$x/usr/share/apparmor-features/." "$rf/usr/share/apparmor-features/"
cp -p "$x/usr/bin/nsenter" "$rf/usr/bin/nsenter"
# Documentation, translations and packaging metadata: not run.
rm -rf "$rf"/usr/share/{doc,lintian,man,locale,info}
cp "$work/packages" "$rf/usr/share/nri-armor/debian-packages"
# The webhook runs as 65532 (the chart's runAsUser).
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin\n' >"$rf/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rf/etc/group"

# The libraries are all there: the two C programs run in the new root.
if [ "$(id -u)" = 0 ]; then
	chroot "$rf" /usr/sbin/apparmor_parser --version >/dev/null || die "apparmor_parser does not run in the image"
	chroot "$rf" /usr/bin/nsenter --version >/dev/null || die "nsenter does not run in the image"
else
	say "not root: apparmor_parser and nsenter not run in the image (chroot)"
fi

created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$(dirname "$out")"
oci_archive "$rf" "$name" "$out" "$(jq -cn --arg v "$version" --arg c "$created" '{
	Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], WorkingDir: "/",
	Labels: {"org.opencontainers.image.title": "nri-armor", "org.opencontainers.image.version": $v,
	         "org.opencontainers.image.created": $c}}')" "$epoch"
say "$name: $out ($(du -h "$out" | cut -f1), $OCI_ARCHIVE_DIGEST)"
echo "$out $OCI_ARCHIVE_DIGEST"
