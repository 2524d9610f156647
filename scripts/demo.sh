#!/usr/bin/env bash
# `npm run demo` (after `npm run build`): makes this machine able to run the demo, then runs
# `podsock demo` with the arguments given (e.g. `npm run demo -- --interactive`).
#
# Set-up, idempotent and quick when everything is in place:
# 1. packages: podman and busybox-static (the demo image is a static busybox), plus runc (the
#    runtime the fallback configuration names). Installed with apt-get only when running as root and
#    missing; otherwise the missing ones are named and the script exits 1.
# 2. podman's configuration: a containers.conf is written (to node_modules/.cache/podsock-demo, used
#    through CONTAINERS_CONF) only when podman's defaults cannot run a container here
#    (scripts/lib/podman-conf.sh, shared with the test-host set-up). An explicit CONTAINERS_CONF in
#    the environment is left alone.
# On a machine where podman already works this changes nothing global and needs no root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/podman-conf.sh
source "$repo/scripts/lib/podman-conf.sh"
state="$repo/node_modules/.cache/podsock-demo"
uid=$(id -u)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'podsock demo: %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
# Debian's busybox package is dynamically linked; the demo image holds nothing but busybox.
static_busybox() {
  local bb out
  bb=$(command -v busybox 2>/dev/null) || return 1
  # ldd exits 1 for a static executable, so its output is what tells.
  out=$(LC_ALL=C ldd "$bb" 2>&1 || true)
  [[ $out == *'not a dynamic executable'* ]]
}

if [[ ! -f $repo/dist/bin/podsock.cjs ]]; then
  say "dist/bin/podsock.cjs is missing: run 'npm run build' first (npm run demo does)"
  exit 1
fi
mkdir -p "$state/logs"

# ---- 1. packages ---------------------------------------------------------------------------------

missing=()
have podman || missing+=(podman)
static_busybox || missing+=(busybox-static)
if [[ $uid == 0 ]]; then
  have runc || missing+=(runc)
fi
if ((${#missing[@]} > 0)); then
  if [[ $uid == 0 ]] && have apt-get; then
    say "installing ${missing[*]} (log: $state/logs/apt-get.log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >"$state/logs/apt-get.log" 2>&1; then
      tail -n 20 "$state/logs/apt-get.log" >&2
      say "apt-get install ${missing[*]} failed (log: $state/logs/apt-get.log)" >&2
      exit 1
    fi
  else
    say "missing: ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# ---- 2. podman configuration ---------------------------------------------------------------------

if [[ -z ${CONTAINERS_CONF:-} ]]; then
  podman_conf_select "$state" "$(podman --version) uid=$uid" scripts/demo.sh
  if [[ $podman_ok != true ]]; then
    say "$podman_reason" >&2
    exit 1
  fi
  if [[ -n $containers_conf ]]; then
    say "podman's default configuration cannot run containers here; using $containers_conf"
    export CONTAINERS_CONF=$containers_conf
  fi
fi

exec node "$repo/dist/bin/podsock.cjs" demo "$@"
