# Starting a systemd user manager where nothing else does (a machine whose PID 1 is not systemd), and
# finding the one an earlier run started. Sourced by scripts/test-host.sh (root's own manager) and
# scripts/test-host-rootless.sh (the test user's); defines functions and nothing else. What differs
# between the two, the command that execs `systemd --user` and its environment, the callers build.

# user_manager_binary: prints the path of the systemd binary, or a reason on stdout and fails.
user_manager_binary() {
  local bin
  bin=$(command -v /lib/systemd/systemd /usr/lib/systemd/systemd 2>/dev/null | head -n1 || true)
  if [[ -z $bin ]]; then
    echo "systemd is not installed"
    return 1
  fi
  printf '%s\n' "$bin"
}

# user_manager_pid PID_FILE [UID]: prints the pid in PID_FILE when that process is still a systemd
# (owned by UID when one is given); fails otherwise, so a pid reused by another process is never taken.
user_manager_pid() {
  local pid_file=$1 owner=${2:-} pid
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == systemd ]] || return 1
  [[ -z $owner || $(stat -c %u "/proc/$pid") == "$owner" ]] || return 1
  printf '%s\n' "$pid"
}

# user_manager_stop PID: SIGTERM, up to 10 s for the process to exit, then SIGKILL.
user_manager_stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# user_manager_start SOCKET LOG PID_FILE TIMEOUT SOCKET_MODE NAME=VALUE... -- COMMAND...
# Runs COMMAND (which execs `systemd --user`) in a new session with exactly the NAME=VALUE
# environment plus NOTIFY_SOCKET=SOCKET, output appended to LOG, its pid written to PID_FILE, and
# waits for its READY=1: the manager is a Type=notify service to its parent (sd_notify(3)), so the
# wait is an event, not a poll, bounded by TIMEOUT seconds and by the manager's exit. SOCKET_MODE
# (octal, e.g. 666 when the manager runs as another user; '' to keep the umask's) is the datagram
# socket's mode; the socket is removed before this returns. Needs python3 (os.pidfd_open: 3.9).
user_manager_start() {
  local sock=$1 log=$2 pid_file=$3 timeout=$4 mode=$5 python=/usr/bin/python3
  shift 5
  [[ -x $python ]] || python=$(command -v python3 || true)
  if [[ -z $python ]]; then
    echo "python3 is needed to start a systemd user manager"
    return 1
  fi
  rm -f "$sock"
  "$python" - "$sock" "$log" "$pid_file" "$timeout" "$mode" "$@" <<'EOF'
import os, select, socket, subprocess, sys, time
sock_path, log_path, pid_path, timeout, mode = sys.argv[1:6]
rest = sys.argv[6:]
split = rest.index('--')
env = dict(kv.split('=', 1) for kv in rest[:split])
env['NOTIFY_SOCKET'] = sock_path
cmd = rest[split + 1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
if mode:
    os.chmod(sock_path, int(mode, 8))
with open(log_path, 'ab') as log:
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, cwd='/')
with open(pid_path, 'w') as f:
    f.write(f'{p.pid}\n')
pidfd = os.pidfd_open(p.pid)
deadline = time.monotonic() + float(timeout)
try:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f'no READY=1 from the systemd user manager within {timeout} s')
        ready, _, _ = select.select([s, pidfd], [], [], left)
        if s in ready and 'READY=1' in s.recv(4096).decode(errors='replace').split('\n'):
            sys.exit(0)
        if pidfd in ready:
            sys.exit(f'the systemd user manager exited with status {p.wait()}')
finally:
    os.unlink(sock_path)
EOF
}
