# Sourced by hack/e2e/setup.sh and hack/image/build.sh: packs a root file
# system into an OCI image archive that `ctr images import` takes, with no
# registry and no image tool (tar, sha256sum, jq).
#
# oci_archive DIR NAME OUT CONFIG_JSON [EPOCH]: packs rootfs DIR as one
# uncompressed layer into an OCI image layout tar named NAME
# (io.containerd.image.name is what `ctr images import` names the image
# by). CONFIG_JSON is the image config's "config". Names sorted, every
# mtime EPOCH (default 0), owners root: the same DIR gives the same layer,
# and so the same image digest, on every build.
oci_archive() {
	local dir=$1 name=$2 out=$3 cfg=$4 epoch=${5:-0} lay
	lay=$(mktemp -d)
	mkdir -p "$lay/blobs/sha256"
	tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu -C "$dir" -cf "$lay/layer.tar" .
	local ld ls cd cs md ms
	ld=$(sha256sum "$lay/layer.tar" | cut -d' ' -f1) ls=$(stat -c %s "$lay/layer.tar")
	mv "$lay/layer.tar" "$lay/blobs/sha256/$ld"
	jq -cn --argjson c "$cfg" --arg diff "sha256:$ld" \
		'{architecture: "amd64", os: "linux", config: $c, rootfs: {type: "layers", diff_ids: [$diff]}}' >"$lay/config.json"
	cd=$(sha256sum "$lay/config.json" | cut -d' ' -f1) cs=$(stat -c %s "$lay/config.json")
	mv "$lay/config.json" "$lay/blobs/sha256/$cd"
	jq -cn --arg cd "sha256:$cd" --argjson cs "$cs" --arg ld "sha256:$ld" --argjson ls "$ls" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
		  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' >"$lay/manifest.json"
	md=$(sha256sum "$lay/manifest.json" | cut -d' ' -f1) ms=$(stat -c %s "$lay/manifest.json")
	mv "$lay/manifest.json" "$lay/blobs/sha256/$md"
	jq -cn --arg md "sha256:$md" --argjson ms "$ms" --arg name "$name" \
		'{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
		  annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}}]}' >"$lay/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
	tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu -C "$lay" -cf "$out.tmp" oci-layout index.json blobs
	mv "$out.tmp" "$out"
	rm -rf "$lay"
	# The manifest's digest: what the runtime lists as the image's digest.
	OCI_ARCHIVE_DIGEST=sha256:$md
}
