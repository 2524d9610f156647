/**
 * Which `podman run` options take a value. Needed to find the image in a `podman run`-style argument
 * list: `-v /a:/b img` has the image at index 2, `--rm img` at index 1.
 *
 * The 4.3.1 lists are generated from `podman run --help` on Debian 12 (podman 4.3.1): an option
 * whose help line shows a type or metavar (`string`, `strings`, `stringArray`, `uint`, `int`, `float`,
 * `tmpfs`, `ARCH`, `OS`, `VARIANT`, `[a-Z]`, `<number>[<unit>]`, `DEVICE_NAME:WEIGHT`) takes a value,
 * the others are booleans (pflag accepts `--rm=false` for those, never `--rm false`). Hidden options
 * that take a value were found by probing `podman run --OPT VALUE --pull=never missing-image`.
 * Options added by later podman releases (5.x: the --health-startup-*, --health-log-* and
 * --health-max-log-* family, --retry, --retry-delay, --decryption-key, --preserve-fd, ...) are listed
 * too: a value option missing from this table would make podsock mistake its value for the image.
 *
 * Option names are stored without dashes; aliases map to the canonical long name.
 */

/** podman run options that take a value (long names). */
export const VALUE_OPTIONS: ReadonlySet<string> = new Set([
  // podman 4.3.1 `podman run --help`
  'add-host', 'annotation', 'arch', 'attach', 'authfile', 'blkio-weight', 'blkio-weight-device',
  'cap-add', 'cap-drop', 'cgroup-conf', 'cgroup-parent', 'cgroupns', 'cgroups', 'chrootdirs',
  'cidfile', 'conmon-pidfile', 'cpu-period', 'cpu-quota', 'cpu-rt-period', 'cpu-rt-runtime',
  'cpu-shares', 'cpus', 'cpuset-cpus', 'cpuset-mems', 'detach-keys', 'device', 'device-cgroup-rule',
  'device-read-bps', 'device-read-iops', 'device-write-bps', 'device-write-iops', 'dns', 'dns-option',
  'dns-search', 'entrypoint', 'env', 'env-file', 'env-merge', 'expose', 'gidmap', 'group-add',
  'health-cmd', 'health-interval', 'health-on-failure', 'health-retries', 'health-start-period',
  'health-timeout', 'hostname', 'hostuser', 'image-volume', 'init-path', 'ip', 'ip6', 'ipc', 'label',
  'label-file', 'log-driver', 'log-opt', 'mac-address', 'memory', 'memory-reservation', 'memory-swap',
  'memory-swappiness', 'mount', 'name', 'network', 'network-alias', 'oom-score-adj', 'os',
  'passwd-entry', 'personality', 'pid', 'pidfile', 'pids-limit', 'platform', 'pod', 'pod-id-file',
  'preserve-fds', 'publish', 'pull', 'requires', 'restart', 'sdnotify', 'seccomp-policy', 'secret',
  'security-opt', 'shm-size', 'stop-signal', 'stop-timeout', 'subgidname', 'subuidname', 'sysctl',
  'systemd', 'timeout', 'tmpfs', 'tz', 'uidmap', 'ulimit', 'umask', 'unsetenv', 'user', 'userns',
  'uts', 'variant', 'volume', 'volumes-from', 'workdir',
  // podman 4.3.1, hidden (not in --help)
  'gpus', 'kernel-memory', 'override-arch', 'override-os', 'override-variant', 'signature-policy',
  // later podman releases
  'health-startup-cmd', 'health-startup-interval', 'health-startup-retries', 'health-startup-success',
  'health-startup-timeout', 'health-log-destination', 'health-max-log-count', 'health-max-log-size',
  'retry', 'retry-delay', 'decryption-key', 'preserve-fd', 'group-entry', 'rdt-class',
  'shm-size-systemd', 'hosts-file', 'cert-dir', 'creds',
]);

/** podman run boolean options (long names); they take a value only as `--opt=value`. */
export const BOOLEAN_OPTIONS: ReadonlySet<string> = new Set([
  // podman 4.3.1 `podman run --help`
  'detach', 'disable-content-trust', 'env-host', 'help', 'http-proxy', 'init', 'interactive',
  'no-healthcheck', 'no-hosts', 'oom-kill-disable', 'passwd', 'privileged', 'publish-all', 'quiet',
  'read-only', 'read-only-tmpfs', 'replace', 'rm', 'rmi', 'rootfs', 'sig-proxy', 'tls-verify', 'tty',
  'unsetenv-all',
  // later podman releases
  'no-hostname',
]);

/** Alternative long names podman accepts, to their canonical name. */
export const OPTION_ALIASES: Readonly<Record<string, string>> = {
  net: 'network',
  'dns-opt': 'dns-option',
};

/** Single-letter options, to their long name (podman 4.3.1 `podman run --help`). */
export const SHORT_OPTIONS: Readonly<Record<string, string>> = {
  a: 'attach',
  c: 'cpu-shares',
  d: 'detach',
  e: 'env',
  h: 'hostname',
  i: 'interactive',
  l: 'label',
  m: 'memory',
  p: 'publish',
  P: 'publish-all',
  q: 'quiet',
  t: 'tty',
  u: 'user',
  v: 'volume',
  w: 'workdir',
};

/** Whether the canonical long option `name` takes a value: true, false, or null when unknown. */
export function optionTakesValue(name: string): boolean | null {
  if (VALUE_OPTIONS.has(name)) return true;
  if (BOOLEAN_OPTIONS.has(name)) return false;
  return null;
}
