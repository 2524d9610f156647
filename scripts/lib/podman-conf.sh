# Decides whether podman's default configuration can run a container on this machine, and writes a
# containers.conf for podman only where it cannot (containers.conf(5), used through CONTAINERS_CONF).
# Sourced by scripts/test-host.sh, scripts/test-host-rootless.sh (podman_conf_write only) and
# scripts/demo.sh; defines functions and nothing else.
#
# The configuration written is the one for machines like the project's test hosts: runc (crun 1.8
# refuses hybrid cgroups), rlimits within the hard nofile limit and without CAP_SYS_RESOURCE,
# cgroupfs (no system D-Bus), the file events logger (no journald). /etc/containers is never
# touched: the file lives in the caller's state directory and is used through CONTAINERS_CONF.

# podman_conf_write FILE WRITER: writes the fallback configuration to FILE (atomically); WRITER
# (e.g. scripts/demo.sh) is named in its first line.
podman_conf_write() {
  local file=$1 writer=$2
  printf '# Written by %s because podman'"'"'s default configuration cannot run a container here.\n' "$writer" >"$file.tmp"
  cat >>"$file.tmp" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
  mv "$file.tmp" "$file"
}

# podman_conf_probe STATE [NSENTER_PID]: runs a trivial container from a busybox-only root directory
# (STATE/probe-rootfs), appending podman's output to STATE/logs/podman-probe.log. With NSENTER_PID it
# runs a second time in that process's mount namespace (test-host.sh: where its systemd user manager
# runs the units, /run/systemd/system exists and podman assumes a systemd host).
podman_conf_probe() {
  local state=$1 nsenter_pid=${2:-}
  local rootfs="$state/probe-rootfs"
  if [[ ! -x $rootfs/bin/busybox ]]; then
    mkdir -p "$rootfs/bin"
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
  fi
  local run=(podman run --rm --network=none --rootfs "$rootfs" /bin/busybox true)
  "${run[@]}" >>"$state/logs/podman-probe.log" 2>&1 || return 1
  if [[ -n $nsenter_pid ]]; then
    nsenter -t "$nsenter_pid" -m -- "${run[@]}" >>"$state/logs/podman-probe.log" 2>&1 || return 1
  fi
}

# podman_conf_select STATE KEY WRITER [NSENTER_PID]: sets podman_ok (true/false), containers_conf (the file
# to export as CONTAINERS_CONF, or '' for podman's defaults) and podman_reason (why not, or '').
# Needs podman and busybox on PATH. The outcome is cached in STATE/podman-probe under KEY (which
# should name the podman version and whatever else changes the answer), so the common path costs
# no container start; the fallback file is STATE/containers.conf.
podman_conf_select() {
  local state=$1 key=$2 writer=$3 nsenter_pid=${4:-}
  local conf_file="$state/containers.conf" probe_cache="$state/podman-probe" cached
  podman_ok=false
  podman_reason=''
  containers_conf=''
  mkdir -p "$state/logs"
  cached=$(cat "$probe_cache" 2>/dev/null || true)
  if [[ $cached == "$key default" ]]; then
    podman_ok=true
  elif [[ $cached == "$key conf" && -f $conf_file ]]; then
    podman_ok=true
    containers_conf=$conf_file
  else
    : >"$state/logs/podman-probe.log"
    if (unset CONTAINERS_CONF && podman_conf_probe "$state" "$nsenter_pid"); then
      podman_ok=true
      printf '%s default\n' "$key" >"$probe_cache"
    else
      podman_conf_write "$conf_file" "$writer"
      if (export CONTAINERS_CONF=$conf_file && podman_conf_probe "$state" "$nsenter_pid"); then
        podman_ok=true
        containers_conf=$conf_file
        printf '%s conf\n' "$key" >"$probe_cache"
      else
        rm -f "$probe_cache"
        podman_reason="podman cannot run a container, even with $conf_file (log: $state/logs/podman-probe.log)"
      fi
    fi
  fi
}
