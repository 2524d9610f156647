#!/usr/bin/env bash
# Makes this machine ready for the end-to-end tests, idempotently, and records what it found in
# .test-host/env.json for test/e2e/harness.ts. Runs before every `npm test` (the pretest script), so
# the path where everything is already in place must stay fast. The steps: packages, a
# containers.conf only where podman's defaults fail, a systemd user manager (the user's own when
# there is one), the fixture image, and a container registry on loopback for the auto-update tests.
#
# Nothing global is changed on a machine that already works: /etc/containers is never edited, a
# running user manager is used as it is, and the user manager this script starts itself (root on a
# machine whose PID 1 is not systemd) lives in a private mount namespace.
#
# With CI=true, a missing podman or systemd user manager is an error (exit 1); otherwise it is
# recorded as false in env.json with the reason, and the e2e tests skip.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/podman-conf.sh
source "$repo/scripts/lib/podman-conf.sh"
# shellcheck source=lib/user-manager.sh
source "$repo/scripts/lib/user-manager.sh"
# shellcheck source=lib/registry.sh
source "$repo/scripts/lib/registry.sh"
state="$repo/.test-host"
image=localhost/podsock-fixture:latest
uid=$(id -u)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

mkdir -p "$state/logs"
# Two `npm test` runs at once must not start two managers or build the image twice.
exec 9>"$state/lock"
if ! flock -w 300 9; then
  echo "test-host: another run has held $state/lock for 300 s, giving up" >&2
  exit 1
fi

say() { printf 'test-host: %s\n' "$*"; }

# ---- 1. packages ---------------------------------------------------------------------------------

# command:package; the fixture runs the host's /usr/bin/python3 inside containers, so that path matters.
# nginx is a PROXY protocol receiver the e2e tests run inside the fixture (never as a host service).
# docker-registry is the auto-update tests' registry, started below on loopback (never as a host service).
required=(podman:podman runc:runc catatonit:catatonit newuidmap:uidmap busybox:busybox-static
  socat:socat curl:curl /usr/bin/python3:python3 systemd-socket-activate:systemd unshare:util-linux
  /usr/sbin/dnsmasq:dnsmasq-base dig:bind9-dnsutils /usr/sbin/nginx:nginx docker-registry:docker-registry)
have() {
  if [[ $1 == /* ]]; then [[ -x $1 ]]; else command -v "$1" >/dev/null 2>&1; fi
}
missing_packages() {
  local entry
  for entry in "${required[@]}"; do
    have "${entry%%:*}" || printf '%s\n' "${entry#*:}"
  done
}
mapfile -t missing < <(missing_packages)
if ((${#missing[@]} > 0)); then
  if [[ $uid == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's nginx starts itself from its postinst; a policy-rc.d that denies (exit 101,
    # invoke-rc.d(8)) keeps it from running as a host service. Only one this script wrote is removed.
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    fi
    apt-get install -y -qq "${missing[@]}" >"$state/logs/apt-get.log" 2>&1 || {
      tail -n 20 "$state/logs/apt-get.log" >&2
      say "apt-get install failed (log: $state/logs/apt-get.log)"
    }
    if [[ -n $policy ]]; then rm -f "$policy"; fi
    mapfile -t missing < <(missing_packages)
  fi
  if ((${#missing[@]} > 0)); then
    say "missing packages: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})"
  fi
fi

# ---- 2. systemd user manager ---------------------------------------------------------------------

xdg=${XDG_RUNTIME_DIR:-/run/user/$uid}
systemd_user=false
systemd_reason=''
manager_pid=''
pid_file="$state/systemd-user.pid"

manager_answers() {
  env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR="$xdg" \
    timeout 10 systemctl --user show-environment >/dev/null 2>&1
}

# Starts `systemd --user` (scripts/lib/user-manager.sh) and waits for its READY=1.
start_manager() {
  local systemd_bin cmd env_vars=() name value
  systemd_bin=$(user_manager_binary) || {
    echo "$systemd_bin"
    return 1
  }
  if [[ -d /run/systemd/system ]]; then
    cmd=("$systemd_bin" --user)
  else
    # systemd --user refuses to run unless /run/systemd/system exists; creating that on the host
    # would make Debian's maintainer scripts believe systemd is PID 1, so only a private mount
    # namespace gets it.
    mkdir -p /run/systemd
    cmd=(unshare -m --propagation private sh -c \
      'mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec "$0" --user' "$systemd_bin")
  fi
  mkdir -p -m 700 "$xdg"
  # A clean environment: the manager passes its own on to every unit it starts.
  for name in HOME USER LOGNAME LANG; do
    if value=$(printenv "$name"); then env_vars+=("$name=$value"); fi
  done
  env_vars+=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "XDG_RUNTIME_DIR=$xdg")
  user_manager_start "$state/manager-notify.sock" "$state/logs/systemd-user.log" "$pid_file" 30 '' \
    "${env_vars[@]}" -- "${cmd[@]}"
}

if manager_answers; then
  systemd_user=true
  manager_pid=$(user_manager_pid "$pid_file" || true)
elif [[ $(cat /proc/1/comm 2>/dev/null) == systemd && $uid != 0 ]]; then
  systemd_reason="no systemd user manager answers for uid $uid at $xdg (log in, or: loginctl enable-linger)"
elif [[ $uid != 0 ]]; then
  systemd_reason="no systemd user manager answers at $xdg, and starting one needs root here"
else
  if stale=$(user_manager_pid "$pid_file"); then
    say "user manager $stale does not answer, restarting it"
    user_manager_stop "$stale"
  fi
  say "starting a systemd user manager (XDG_RUNTIME_DIR=$xdg)"
  if err=$(start_manager 2>&1) && manager_answers; then
    systemd_user=true
    manager_pid=$(user_manager_pid "$pid_file" || true)
  else
    systemd_reason="could not start a systemd user manager: ${err:-systemctl --user does not answer} (log: $state/logs/systemd-user.log)"
  fi
fi
unit_dir="$xdg/systemd/user"
[[ $systemd_user == true ]] && mkdir -p "$unit_dir"

# ---- 3. podman -----------------------------------------------------------------------------------

podman_ok=false
podman_reason=''
containers_conf=''

if ! have podman; then
  podman_reason="podman is not installed"
elif ! have busybox; then
  podman_reason="busybox (busybox-static) is not installed"
else
  # When this script owns the user manager, units run in its mount namespace, so the probe runs
  # there as well as here (scripts/lib/podman-conf.sh).
  podman_conf_select "$state" "$(podman --version) manager-ns=${manager_pid:+yes}" scripts/test-host.sh "$manager_pid"
fi

if [[ $podman_ok == true ]]; then
  if [[ -n $containers_conf ]]; then export CONTAINERS_CONF=$containers_conf; else unset CONTAINERS_CONF; fi
  if ! bash "$repo/scripts/build-fixture-image.sh" "$image" >"$state/logs/fixture-image.log" 2>&1; then
    podman_ok=false
    podman_reason="the fixture image could not be built (log: $state/logs/fixture-image.log)"
  fi
fi

# ---- 4. a registry on loopback (scripts/lib/registry.sh) ----------------------------------------

registry_start "$state"

# ---- 5. facts for the tests ------------------------------------------------------------------------

XDG_RUNTIME_DIR=$xdg CONTAINERS_CONF=$containers_conf UNIT_DIR=$unit_dir STATE_DIR=$state \
  SYSTEMD_USER=$systemd_user SYSTEMD_REASON=$systemd_reason MANAGER_PID=$manager_pid \
  PODMAN_OK=$podman_ok PODMAN_REASON=$podman_reason IMAGE=$image MISSING="${missing[*]}" \
  REGISTRY_OK=$registry_ok REGISTRY_ADDRESS=$registry_address REGISTRY_CONF=$registry_conf \
  REGISTRY_PID=$registry_pid REGISTRY_REASON=$registry_reason \
  node --input-type=module -e '
    import { writeFileSync, renameSync } from "node:fs";
    const e = process.env;
    const facts = {
      XDG_RUNTIME_DIR: e.XDG_RUNTIME_DIR,
      CONTAINERS_CONF: e.CONTAINERS_CONF || null,
      unitDir: e.UNIT_DIR,
      stateDir: e.STATE_DIR,
      systemdUser: e.SYSTEMD_USER === "true",
      systemdUserReason: e.SYSTEMD_REASON || null,
      systemdUserPid: e.MANAGER_PID ? Number(e.MANAGER_PID) : null,
      podman: e.PODMAN_OK === "true",
      podmanReason: e.PODMAN_REASON || null,
      fixtureImage: e.IMAGE,
      podmanRunArgs: ["-v", "/usr:/usr:ro"],
      missingPackages: e.MISSING ? e.MISSING.split(" ") : [],
      registry: {
        ok: e.REGISTRY_OK === "true",
        reason: e.REGISTRY_REASON || null,
        address: e.REGISTRY_ADDRESS || null,
        registriesConf: e.REGISTRY_OK === "true" ? e.REGISTRY_CONF : null,
        pid: e.REGISTRY_PID ? Number(e.REGISTRY_PID) : null,
      },
    };
    writeFileSync(e.STATE_DIR + "/env.json.tmp", JSON.stringify(facts, null, 2) + "\n");
    renameSync(e.STATE_DIR + "/env.json.tmp", e.STATE_DIR + "/env.json");
  '

if [[ $systemd_user == true ]]; then
  say "systemd user manager: yes (XDG_RUNTIME_DIR=$xdg${manager_pid:+, pid $manager_pid in a private mount namespace})"
else
  say "systemd user manager: no - $systemd_reason"
fi
if [[ $podman_ok == true ]]; then
  say "podman: yes (${containers_conf:+CONTAINERS_CONF=}${containers_conf:-default configuration}), image $image"
else
  say "podman: no - $podman_reason"
fi

if [[ $registry_ok == true ]]; then
  say "registry: yes ($registry_address, pid $registry_pid, CONTAINERS_REGISTRIES_CONF=$registry_conf)"
else
  say "registry: no - $registry_reason"
fi

bash "$repo/scripts/test-host-rootless.sh" || say "rootless setup failed (facts: $state/rootless.json)"

if [[ ${CI:-} == true && ($systemd_user != true || $podman_ok != true) ]]; then
  say "CI=true: the end-to-end tests need both podman and a systemd user manager" >&2
  exit 1
fi
