#!/usr/bin/env bash
# Builds the end-to-end tests' container image, localhost/podsock-fixture:latest, without a registry:
# a directory holding a static busybox, symlinks lib -> usr/lib and lib64 -> usr/lib64, and
# test/fixtures/* under /app, turned into an image with `podman import`. Containers run it with
# `-v /usr:/usr:ro`, so the host's /usr/bin/node and /usr/bin/python3 work inside.
#
# The image carries the hash of its inputs (test/fixtures/* and this script) in the label
# io.podsock.fixture-hash; when the hash matches, nothing is rebuilt. --force rebuilds anyway.
# Uses CONTAINERS_CONF from the environment, like every podman call of the test host.
#
# Usage: scripts/build-fixture-image.sh [--force] [IMAGE]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
force=0
if [[ ${1:-} == --force ]]; then
  force=1
  shift
fi
image=${1:-localhost/podsock-fixture:latest}
label=io.podsock.fixture-hash
state="$repo/.test-host"

# Name and content of every input, so a rename changes the hash too.
hash=$(
  cd "$repo"
  for f in test/fixtures/* scripts/build-fixture-image.sh; do
    [[ -f $f ]] || continue
    printf '%s\n' "$f"
    sha256sum <"$f"
  done | sha256sum | cut -c1-16
)

current=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [[ $force == 0 && $current == "$hash" ]]; then
  echo "fixture image $image is up to date ($hash)"
  exit 0
fi
old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)

busybox=$(command -v busybox || true)
if [[ -z $busybox ]]; then
  echo "build-fixture-image: busybox not found (install the busybox-static package)" >&2
  exit 1
fi

mkdir -p "$state"
rootfs=$(mktemp -d "$state/fixture-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

mkdir -p "$rootfs"/{bin,app,etc,root,proc,sys,dev,run,usr,var/tmp}
install -m 1777 -d "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
# /bin holds busybox's applets; /usr comes from the host at run time.
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
done
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib64 "$rootfs/lib64"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
cp "$repo"/test/fixtures/* "$rootfs/app/"
# The fixtures are ES modules, as in the repository (package.json "type": "module").
printf '{ "type": "module" }\n' >"$rootfs/app/package.json"

tar -C "$rootfs" --owner=0 --group=0 -c . |
  podman import --quiet \
    --change 'CMD ["/usr/bin/node", "/app/fixture-server.js"]' \
    --change 'WORKDIR /app' \
    --change "LABEL $label=$hash" \
    - "$image" >/dev/null

built=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image")
if [[ $built != "$hash" ]]; then
  echo "build-fixture-image: $image has label '$built', expected '$hash'" >&2
  exit 1
fi
# The previous build is now untagged; remove it unless a container still uses it.
new_id=$(podman image inspect --format '{{.Id}}' "$image")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "fixture image $image built ($hash)"
