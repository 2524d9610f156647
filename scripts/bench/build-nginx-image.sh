#!/usr/bin/env bash
# Builds the proxy benchmark's backend image, localhost/podsock-bench-nginx:latest, without a registry:
# a Debian bookworm root file system from `debootstrap --variant=minbase --include=nginx-light`, with an
# nginx configuration that serves two static files on port 8080, turned into an image with
# `podman import` (podman-import(1)).
#
#   /1k     1024 bytes    the keep-alive and new-connection scenarios
#   /256m   256 MiB       the bulk scenario (zeros; sendfile makes the file's content irrelevant)
#
# nginx runs one worker with access_log off and keepalive_requests 1000000, so the backend costs the
# same in every variant and one wrk connection is never closed by the server during a run.
#
# The debootstrap output is cached as .test-host/bench-nginx-base.tar (keyed by the package list), and
# the image carries the hash of this script and of nginx-bench.conf (its /etc/nginx/nginx.conf, which
# the benchmarks also run with another listen address, nginx-image.ts) in the label
# io.podsock.bench-nginx-hash; when the hash matches, nothing is rebuilt. --force rebuilds both. The first build downloads about 30 MB of
# packages from the Debian mirror configured in /etc/apt and takes a few minutes.
# Uses CONTAINERS_CONF from the environment, like every podman call of the test host.
#
# Usage: scripts/bench/build-nginx-image.sh [--force] [IMAGE]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
force=0
if [[ ${1:-} == --force ]]; then
  force=1
  shift
fi
image=${1:-localhost/podsock-bench-nginx:latest}
label=io.podsock.bench-nginx-hash
state="$repo/.test-host"
suite=bookworm
packages=nginx-light
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

conf="$repo/scripts/bench/nginx-bench.conf"
hash=$(cat "${BASH_SOURCE[0]}" "$conf" | sha256sum | cut -c1-16)
current=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [[ $force == 0 && $current == "$hash" ]]; then
  echo "bench image $image is up to date ($hash)"
  exit 0
fi
old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)

for tool in debootstrap podman; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-nginx-image: '$tool' not found (apt-get install $tool)" >&2
    exit 1
  fi
done

mkdir -p "$state"
rootfs=$(mktemp -d "$state/bench-nginx-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

base="$state/bench-nginx-base.tar"
base_key="$suite minbase $packages"
if [[ $force == 1 || ! -f $base || $(cat "$base.key" 2>/dev/null) != "$base_key" ]]; then
  echo "debootstrap $suite with $packages (a few minutes)..."
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$state/bench-nginx-debootstrap.log" 2>&1 || {
    echo "build-nginx-image: debootstrap failed, see $state/bench-nginx-debootstrap.log" >&2
    exit 1
  }
  # Nothing in the image needs apt's caches or the package lists.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  printf '%s' "$base_key" >"$base.key"
else
  tar -C "$rootfs" --numeric-owner -xf "$base"
fi

# The site: replaces Debian's default server, keeps mime.types.
rm -f "$rootfs"/etc/nginx/sites-enabled/* "$rootfs"/etc/nginx/conf.d/*
cp "$conf" "$rootfs/etc/nginx/nginx.conf"
mkdir -p "$rootfs/srv/bench"
head -c 1024 /dev/zero | tr '\0' 'x' >"$rootfs/srv/bench/1k"
head -c $((256 * 1024 * 1024)) /dev/zero >"$rootfs/srv/bench/256m"

tar -C "$rootfs" --numeric-owner -c . |
  podman import --quiet \
    --change 'CMD ["nginx", "-g", "daemon off;"]' \
    --change 'EXPOSE 8080' \
    --change "LABEL $label=$hash" \
    - "$image" >/dev/null

built=$(podman image inspect --format "{{index .Labels \"$label\"}}" "$image")
if [[ $built != "$hash" ]]; then
  echo "build-nginx-image: $image has label '$built', expected '$hash'" >&2
  exit 1
fi
new_id=$(podman image inspect --format '{{.Id}}' "$image")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "bench image $image built ($hash)"
