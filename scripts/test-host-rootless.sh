#!/usr/bin/env bash
# Makes this machine ready for the rootless end-to-end tests (test/e2e/rootless.test.ts), idempotently,
# and records what it found in .test-host/rootless.json as { "rootless": { ... } }. Called at the end
# of scripts/test-host.sh; it can also be run on its own (as root).
#
# The tests run podsock the way an unprivileged user would: under that user's own systemd user
# manager, with rootless podman. What this script provides:
# 1. packages: uidmap (newuidmap/newgidmap), slirp4netns (rootless networking for proxy mode);
# 2. a user, podsock-test, with a home directory and subordinate uid/gid ranges;
# 3. that user's systemd user manager with XDG_RUNTIME_DIR=/run/user/UID. On a host whose PID 1 is
#    systemd that is `loginctl enable-linger`. Otherwise (these test machines) root starts it as
#    scripts/test-host.sh does root's own manager, in a private mount namespace where
#    /run/systemd/system exists, but drops to the user before exec'ing `systemd --user`. An
#    unprivileged manager can only create cgroups in a subtree it owns, so root first creates
#    user.slice/user-UID.slice/user@UID.service in the manager's hierarchies (unified and
#    name=systemd), hands it to the user and moves the manager there, the delegation logind and
#    user@.service do on a systemd host. Where /dev/net/tun is not 0666 (no udev), that namespace
#    also gets its own 0666 tun node, which rootless networking (slirp4netns) needs;
# 4. a containers.conf for the user only where podman's defaults fail, as for root;
# 5. the fixture image in the user's rootless storage (`podman save` as root, `podman load` as the
#    user, skipped when the image's io.podsock.fixture-hash label already matches);
# 6. podsock readable by the user: the repository in place when the user can read it, otherwise a
#    copy of package.json, dist/, build/Release/ and the runtime node_modules in /opt/podsock-test.
#
# Every podman call of the user runs in the manager's mount namespace, as the units do: rootless
# podman keeps its user and mount namespaces in a pause process, created by the first call, and all
# later calls join them, so the namespace that first call ran in is what every container sees.
#
# Failures are recorded (ok=false with the reason), never fatal here: the rootless tests report them,
# as a failure when CI=true and as a skip otherwise.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/podman-conf.sh
source "$repo/scripts/lib/podman-conf.sh"
# shellcheck source=lib/user-manager.sh
source "$repo/scripts/lib/user-manager.sh"
state="$repo/.test-host"
out="$state/rootless.json"
user=podsock-test
image=localhost/podsock-fixture:latest
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

mkdir -p "$state/logs"
exec 8>"$state/rootless.lock"
if ! flock -w 300 8; then
  echo "test-host-rootless: another run has held $state/rootless.lock for 300 s, giving up" >&2
  exit 1
fi

say() { printf 'test-host-rootless: %s\n' "$*"; }

ok=false
reason='setup did not finish'
remap=false
uid='' gid='' home='' xdg='' manager_pid='' containers_conf='' podsock_root='' podsock_copy=false
network=false network_reason='not probed'
work=''

# Written on every exit, so rootless.json never describes an earlier run.
write_facts() {
  OK=$ok REASON=$reason USER_NAME=$user UID_=$uid GID_=$gid HOME_=$home XDG=$xdg MANAGER_PID=$manager_pid \
    CONF=$containers_conf PODSOCK_ROOT=$podsock_root PODSOCK_COPY=$podsock_copy NETWORK=$network \
    NETWORK_REASON=$network_reason WORK=$work IMAGE=$image OUT=$out \
    node --input-type=module -e '
      import { writeFileSync, renameSync } from "node:fs";
      const e = process.env;
      const num = (v) => (v ? Number(v) : null);
      const rootless = {
        ok: e.OK === "true",
        reason: e.OK === "true" ? null : e.REASON,
        user: e.USER_NAME,
        uid: num(e.UID_),
        gid: num(e.GID_),
        home: e.HOME_ || null,
        XDG_RUNTIME_DIR: e.XDG || null,
        unitDir: e.XDG ? e.XDG + "/systemd/user" : null,
        managerPid: num(e.MANAGER_PID),
        CONTAINERS_CONF: e.CONF || null,
        workDir: e.WORK || null,
        podsockRoot: e.PODSOCK_ROOT || null,
        podsockCopied: e.PODSOCK_COPY === "true",
        node: process.execPath,
        network: e.NETWORK === "true",
        networkReason: e.NETWORK === "true" ? null : e.NETWORK_REASON,
        fixtureImage: e.IMAGE,
        podmanRunArgs: ["-v", "/usr:/usr:ro"],
      };
      writeFileSync(e.OUT + ".tmp", JSON.stringify({ rootless }, null, 2) + "\n");
      renameSync(e.OUT + ".tmp", e.OUT);
    '
}
on_exit() {
  local status=$?
  if ((status != 0)) && [[ $ok != true ]]; then
    reason="scripts/test-host-rootless.sh failed (exit $status) while: $reason"
  fi
  write_facts || say "cannot write $out"
  if [[ $ok == true ]]; then
    say "rootless: yes (user $user, uid $uid${manager_pid:+, manager pid $manager_pid}; proxy networking: $network)"
  else
    say "rootless: no - $reason"
  fi
}
trap on_exit EXIT

fail() {
  reason=$1
  exit 0
}

if [[ $(id -u) != 0 ]]; then
  fail "setting up the rootless test user needs root (run scripts/test-host-rootless.sh as root)"
fi

# ---- 1. packages ---------------------------------------------------------------------------------

reason='installing packages'
required=(podman:podman newuidmap:uidmap newgidmap:uidmap slirp4netns:slirp4netns setpriv:util-linux
  nsenter:util-linux busybox:busybox-static python3:python3 systemctl:systemd)
missing=()
for entry in "${required[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if ((${#missing[@]} > 0)) && command -v apt-get >/dev/null 2>&1; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >"$state/logs/apt-get-rootless.log" 2>&1 ||
    say "apt-get install failed (log: $state/logs/apt-get-rootless.log)"
  missing=()
  for entry in "${required[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
  done
fi
((${#missing[@]} == 0)) || fail "missing packages: ${missing[*]}"

# ---- 2. the user ---------------------------------------------------------------------------------

reason="creating the user '$user'"
if ! getent passwd "$user" >/dev/null; then
  say "creating user $user"
  useradd --create-home --user-group --shell /bin/sh --comment 'podsock rootless tests' "$user"
fi
uid=$(id -u "$user")
gid=$(id -g "$user")
home=$(getent passwd "$user" | cut -d: -f6)
xdg=/run/user/$uid
[[ -d $home ]] || fail "the home directory '$home' of '$user' does not exist"

# useradd allocates subordinate ids when /etc/subuid exists; add a range after every existing one
# when it did not (or the files were missing).
next_free_range() {
  awk -F: 'BEGIN { m = 100000 } NF >= 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' "$@" 2>/dev/null ||
    echo 100000
}
touch /etc/subuid /etc/subgid
if ! grep -q "^$user:" /etc/subuid || ! grep -q "^$user:" /etc/subgid; then
  start=$(next_free_range /etc/subuid /etc/subgid)
  say "adding subordinate ids $start-$((start + 65535)) for $user"
  grep -q "^$user:" /etc/subuid || usermod --add-subuids "$start-$((start + 65535))" "$user"
  grep -q "^$user:" /etc/subgid || usermod --add-subgids "$start-$((start + 65535))" "$user"
  remap=true
fi

# The user's side of the test host: configuration, probe root, unit logs.
work=$home/.podsock-e2e
install -d -o "$uid" -g "$gid" -m 755 "$work" "$work/logs"

# Runs a command as the user, with a clean login-like environment.
as_user() {
  (cd "$home" && setpriv --reuid="$uid" --regid="$gid" --init-groups --reset-env \
    env XDG_RUNTIME_DIR="$xdg" ${containers_conf:+CONTAINERS_CONF="$containers_conf"} "$@")
}
# The same, in the user manager's mount namespace (where units run) when this script owns it.
in_manager_ns() {
  if [[ -n $manager_pid ]]; then
    nsenter -t "$manager_pid" -m -- "$@"
  else
    "$@"
  fi
}
user_podman() {
  in_manager_ns setpriv --reuid="$uid" --regid="$gid" --init-groups --reset-env \
    env -C "$home" XDG_RUNTIME_DIR="$xdg" ${containers_conf:+CONTAINERS_CONF="$containers_conf"} podman "$@"
}

# ---- 3. the user's systemd user manager ----------------------------------------------------------

reason="starting the systemd user manager of '$user'"
pid_file="$state/rootless-manager.pid"
manager_log="$state/logs/systemd-user-rootless.log"
cgroup_leaf="user.slice/user-$uid.slice/user@$uid.service"

manager_answers() {
  as_user timeout 10 systemctl --user show-environment >/dev/null 2>&1
}
# The hierarchies a manager tracks its processes in: the v2 one (pure or hybrid) and name=systemd.
cgroup_roots() {
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
    echo /sys/fs/cgroup
    return
  fi
  local d
  for d in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    [[ $(stat -fc %T "$d" 2>/dev/null) == cgroup2fs || -f $d/tasks ]] && echo "$d"
  done
  return 0
}

start_manager() {
  local systemd_bin roots=() root dir f
  systemd_bin=$(user_manager_binary) || {
    echo "$systemd_bin"
    return 1
  }
  mapfile -t roots < <(cgroup_roots)
  for root in "${roots[@]}"; do
    dir=$root/$cgroup_leaf
    mkdir -p "$dir"
    chown "$uid:$gid" "$dir"
    for f in cgroup.procs cgroup.threads cgroup.subtree_control tasks; do
      [[ -e $dir/$f ]] && chown "$uid:$gid" "$dir/$f"
    done
  done
  install -d -o "$uid" -g "$gid" -m 700 "$xdg"
  mkdir -p /run/systemd
  # In the new mount namespace, as root: join the delegated cgroups, make /run/systemd/system exist,
  # then become the user and exec the manager.
  # shellcheck disable=SC2016
  local script='
    for dir in $CGROUP_DIRS; do echo $$ >"$dir/cgroup.procs"; done
    mount -t tmpfs -o mode=755 tmpfs /run/systemd && mkdir -p /run/systemd/system
    if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
      mknod -m 666 /run/systemd/net-tun c 10 200 && mount --bind /run/systemd/net-tun /dev/net/tun
    fi
    exec setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --init-groups "$0" --user'
  local dirs=''
  for root in "${roots[@]}"; do dirs+="$root/$cgroup_leaf "; done
  # The manager sends READY=1 as the user, hence the socket's mode 666.
  user_manager_start "$state/rootless-manager-notify.sock" "$manager_log" "$pid_file" 30 666 \
    "HOME=$home" "USER=$user" "LOGNAME=$user" SHELL=/bin/sh "LANG=${LANG:-C.UTF-8}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "XDG_RUNTIME_DIR=$xdg" \
    "RUN_UID=$uid" "RUN_GID=$gid" "CGROUP_DIRS=$dirs" \
    -- unshare -m --propagation private sh -c "$script" "$systemd_bin"
}

if manager_answers; then
  manager_pid=$(user_manager_pid "$pid_file" "$uid" || true)
elif [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]]; then
  say "enabling lingering for $user"
  loginctl enable-linger "$user" || fail "'loginctl enable-linger $user' failed"
  for _ in $(seq 1 100); do
    manager_answers && break
    sleep 0.1
  done
  manager_answers || fail "no systemd user manager answers for '$user' at $xdg after enable-linger"
else
  if stale=$(user_manager_pid "$pid_file" "$uid"); then
    say "user manager $stale of $user does not answer, restarting it"
    user_manager_stop "$stale"
  fi
  say "starting the systemd user manager of $user (XDG_RUNTIME_DIR=$xdg)"
  if ! err=$(start_manager 2>&1) || ! manager_answers; then
    fail "could not start the systemd user manager of '$user': ${err:-systemctl --user does not answer} (log: $manager_log)"
  fi
  manager_pid=$(user_manager_pid "$pid_file" "$uid" || true)
fi
as_user mkdir -p "$xdg/systemd/user"

# ---- 4. rootless podman ----------------------------------------------------------------------------

reason="probing rootless podman as '$user'"
# A pause process started outside the manager's mount namespace (a manual `podman` call as the user
# from a login shell, or a manager restarted since) would hold mounts units do not have; end it so the
# next call starts one from the namespace units run in. Harmless when none of the user's containers run.
pause_pid=$(cat "$xdg/libpod/tmp/pause.pid" 2>/dev/null || true)
if [[ -n $manager_pid && $pause_pid =~ ^[0-9]+$ && -d /proc/$pause_pid ]]; then
  if [[ $(stat -c %i "/proc/$pause_pid/root/run/systemd/system" 2>/dev/null) == '' ]]; then
    say "ending $user's podman pause process $pause_pid (outside the manager's namespace)"
    kill "$pause_pid" 2>/dev/null || true
  fi
fi

# New subordinate ids only take effect in a new user namespace (podman-system-migrate(1)).
if [[ $remap == true ]]; then
  user_podman system migrate >>"$state/logs/podman-probe-rootless.log" 2>&1 || true
fi

conf_file=$work/containers.conf
probe_cache=$work/podman-probe
probe_log=$state/logs/podman-probe-rootless.log
probe_rootfs=$work/probe-rootfs
if [[ ! -x $probe_rootfs/bin/busybox ]]; then
  install -d -o "$uid" -g "$gid" "$probe_rootfs" "$probe_rootfs/bin"
  install -o "$uid" -g "$gid" "$(command -v busybox)" "$probe_rootfs/bin/busybox"
fi
probe() {
  user_podman run --rm --network=none --rootfs "$probe_rootfs" /bin/busybox true >>"$probe_log" 2>&1
}
# The same settings as the root test host's file (scripts/lib/podman-conf.sh), for the same reasons;
# readable by the user.
write_conf() {
  podman_conf_write "$conf_file" scripts/test-host-rootless.sh
  chmod 644 "$conf_file"
}
key="$(podman --version) uid=$uid manager=${manager_pid:-external}"
cached=$(cat "$probe_cache" 2>/dev/null || true)
if [[ $cached == "$key default" ]]; then
  :
elif [[ $cached == "$key conf" && -f $conf_file ]]; then
  containers_conf=$conf_file
else
  : >"$probe_log"
  if probe; then
    printf '%s default\n' "$key" >"$probe_cache"
  else
    write_conf
    containers_conf=$conf_file
    if probe; then
      printf '%s conf\n' "$key" >"$probe_cache"
    else
      rm -f "$probe_cache"
      fail "rootless podman cannot run a container as '$user', even with $conf_file (log: $probe_log)"
    fi
  fi
fi

# ---- 5. the fixture image in the user's storage ------------------------------------------------------

reason="loading the fixture image into the rootless storage of '$user'"
label=io.podsock.fixture-hash
root_conf=''
[[ -f $state/containers.conf && -n $(grep -s ' conf$' "$state/podman-probe") ]] && root_conf=$state/containers.conf
want=$(CONTAINERS_CONF=${root_conf:-${CONTAINERS_CONF:-}} podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
[[ -n $want ]] || fail "root has no fixture image '$image' to copy (scripts/test-host.sh builds it)"
have=$(user_podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
if [[ $have != "$want" ]]; then
  say "copying $image ($want) into $user's storage"
  archive=$work/fixture-image.tar
  rm -f "$archive"
  CONTAINERS_CONF=${root_conf:-${CONTAINERS_CONF:-}} podman save --quiet -o "$archive" "$image"
  chown "$uid:$gid" "$archive"
  user_podman load --quiet -i "$archive" >"$state/logs/fixture-image-rootless.log" 2>&1 ||
    fail "'podman load' of the fixture image failed as '$user' (log: $state/logs/fixture-image-rootless.log)"
  rm -f "$archive"
  have=$(user_podman image inspect --format "{{index .Labels \"$label\"}}" "$image" 2>/dev/null || true)
  [[ $have == "$want" ]] || fail "after 'podman load', '$user' has $image with label '$have', expected '$want'"
  user_podman image prune --force >/dev/null 2>&1 || true
fi

# Rootless proxy mode publishes a port, which needs slirp4netns, and slirp4netns opens /dev/net/tun as
# the user. A distro's udev rules make that node 0666; a machine without udev keeps the kernel's 0600.
# The manager's namespace then gets its own 0666 node over it (start_manager), so the host's stays as
# it is. Recorded here either way; the proxy test reports a failure.
network_cache=$work/network-probe
if [[ $(cat "$network_cache" 2>/dev/null) == "$key ok" ]]; then
  network=true
elif out_text=$(user_podman run --rm -p 127.0.0.1::8080 --rootfs "$probe_rootfs" /bin/busybox true 2>&1); then
  network=true
  printf '%s ok\n' "$key" >"$network_cache"
else
  network_reason="rootless 'podman run -p' fails: $(printf '%s' "$out_text" | tr '\n' ' ' | cut -c1-300)"
fi

# ---- 6. podsock, readable by the user ------------------------------------------------------------

reason="making podsock readable by '$user'"
[[ -f $repo/dist/bin/podsock.cjs ]] || fail "podsock is not built ($repo/dist/bin/podsock.cjs missing; run 'npm run build')"
addon=$(find "$repo/build/Release" -maxdepth 1 -name '*.node' -print -quit 2>/dev/null || true)
[[ -n $addon ]] || fail "the native addon is not built ($repo/build/Release/*.node missing)"
if as_user test -r "$repo/dist/bin/podsock.cjs" -a -r "$repo/package.json" -a -r "$addon" \
  -a -r "$repo/node_modules/pino/package.json" -a -r "$repo/node_modules/execa/package.json"; then
  podsock_root=$repo
else
  podsock_root=/opt/podsock-test
  stamp=$( (cd "$repo" && find dist build/Release package.json package-lock.json -type f -printf '%p %s %T@\n' | sort) | sha256sum | cut -c1-16)
  if [[ $(cat "$podsock_root/.stamp" 2>/dev/null) != "$stamp" ]]; then
    say "copying podsock to $podsock_root"
    rm -rf "$podsock_root.new"
    mkdir -p "$podsock_root.new/build"
    cp -a "$repo/package.json" "$repo/dist" "$podsock_root.new/"
    # The runtime dependencies only (execa, pino and theirs), or all of node_modules if npm cannot say.
    if deps=$(cd "$repo" && npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s|^$repo/node_modules/|node_modules/|p") &&
      [[ -n $deps ]]; then
      mapfile -t deps <<<"$deps"
      (cd "$repo" && cp -a --parents "${deps[@]}" "$podsock_root.new/")
    else
      cp -a "$repo/node_modules" "$podsock_root.new/"
    fi
    cp -a "$repo/build/Release" "$podsock_root.new/build/"
    printf '%s\n' "$stamp" >"$podsock_root.new/.stamp"
    chmod -R a+rX "$podsock_root.new"
    rm -rf "$podsock_root"
    mv "$podsock_root.new" "$podsock_root"
  fi
  podsock_copy=true
fi
as_user node "$podsock_root/dist/bin/podsock.cjs" --help >/dev/null 2>&1 ||
  fail "'node $podsock_root/dist/bin/podsock.cjs --help' fails as '$user'"

ok=true
reason=''
