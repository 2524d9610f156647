# A container registry on loopback for the auto-update tests: Debian's docker-registry (the
# distribution project's registry, `docker-registry serve CONFIG`), run by the test host itself, never
# as a system service, with its storage under the test host's state directory. Sourced by
# scripts/test-host.sh; defines functions and nothing else.
#
# podman reaches it over plain HTTP only when registries.conf marks it insecure
# (containers-registries.conf(5), `insecure = true`), so a registries.conf naming it is written beside
# it; the tests hand it to podman through CONTAINERS_REGISTRIES_CONF. /etc/containers is not touched.

# registry_answers ADDRESS: true when a registry answers the API version check there (the registry
# API's `GET /v2/` is 200 for an open registry).
registry_answers() {
  curl --silent --fail --max-time 3 --output /dev/null "http://$1/v2/"
}

# registry_free_port: prints a TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).
registry_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# registry_start STATE: sets registry_ok (true/false), registry_address (127.0.0.1:PORT),
# registry_conf (the registries.conf for podman), registry_pid and registry_reason. Reuses the registry
# an earlier run started when its pid is still a docker-registry that answers; otherwise stops what is
# left of it and starts a new one on a free port, waiting up to 10 s for it to answer.
registry_start() {
  local state=$1 dir="$1/registry" pid_file="$1/registry/registry.pid" addr_file="$1/registry/address"
  local pid='' address='' port i
  registry_ok=false
  registry_address=''
  registry_conf="$dir/registries.conf"
  registry_pid=''
  registry_reason=''
  if ! command -v docker-registry >/dev/null 2>&1; then
    registry_reason='docker-registry is not installed (Debian package docker-registry)'
    return 0
  fi
  mkdir -p "$dir/data"
  pid=$(cat "$pid_file" 2>/dev/null || true)
  address=$(cat "$addr_file" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry && -n $address ]] && registry_answers "$address"; then
    registry_ok=true
    registry_address=$address
    registry_pid=$pid
  else
    if [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]]; then
      kill "$pid" 2>/dev/null || true
      timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    port=$(registry_free_port)
    address="127.0.0.1:$port"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $address
EOF
    # 9>&-: test-host.sh holds its lock on fd 9, which a registry that outlives it must not keep.
    setsid docker-registry serve "$dir/config.yml" </dev/null >>"$state/logs/registry.log" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$pid_file"
    printf '%s\n' "$address" >"$addr_file"
    for ((i = 0; i < 100; i++)); do
      if registry_answers "$address"; then
        registry_ok=true
        break
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if [[ $registry_ok == true ]]; then
      registry_address=$address
      registry_pid=$pid
    else
      registry_reason="docker-registry did not answer on $address (log: $state/logs/registry.log)"
      kill "$pid" 2>/dev/null || true
      return 0
    fi
  fi
  printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry_address" >"$registry_conf.tmp"
  mv "$registry_conf.tmp" "$registry_conf"
}
