/**
 * The `podman run` command line for one activation, built by a pure function so that every flag podsock
 * adds is unit-tested and `podsock check` can print exactly what `run` executes.
 *
 * What podsock adds, and why (each flag as podman-run(1) describes it):
 * - `--name NAME --replace --rm --cidfile FILE`: a leftover container of the same name (after a SIGKILL of
 *   podsock) is replaced; the cidfile is how podsock stops and removes exactly its own container.
 * - a read-only bind mount of podsock's private notify directory and `NOTIFY_SOCKET` pointing into it:
 *   the container's messages reach podsock unfiltered. Read-only because the directory is on the host's
 *   /run: the container must not fill it, replace the socket or plant files there; sending to a socket
 *   needs write permission on the socket itself, which a read-only mount does not take away (unix(7)).
 * - `--sdnotify=conmon` with podman's own NOTIFY_SOCKET on a second private socket of podsock's: podman
 *   says there (MAINPID=conmon, READY=1) the moment the container runs, which is how podsock knows it
 *   is running without starting a second podman (`podman wait`) beside the first. Neither message
 *   reaches systemd, and the container's NOTIFY_SOCKET stays the one podsock set.
 * - `-d --conmon-pidfile FILE` (where podsock can watch conmon, runtime/podman.ts): podman exits as soon as
 *   the container runs, as under Quadlet, and keeps no process of its own alive; conmon, whose pid the
 *   file names, stays as podsock's child and its exit status is the container's.
 * - `--log-driver=passthrough`: the container's stdout/stderr go straight to podsock's (the unit's
 *   journal); conmon keeps podman's stdout/stderr, so this holds detached too.
 * - proxy mode: rootful, `--pidfile` and nothing published (podsock connects to the container's loopback
 *   from inside its network namespace, see container-netns.ts); rootless, the backend port published on
 *   127.0.0.1 only (published-port.ts).
 * - handover mode: nothing here; the fds and LISTEN_FDS/LISTEN_FDNAMES travel in the environment, and
 *   LISTEN_PID is set to podman's own pid by the addon's spawn (or, without it, the shell trampoline in
 *   `trampoline()`).
 * Values are argv elements, never shell text: nothing the user wrote is ever parsed by a shell.
 */
import type { PublishedPort } from './published-port.js';
import type { ServiceConfig } from '../config/load.js';

/** Where podsock's notify directory appears inside the container. */
export const CONTAINER_NOTIFY_DIR = '/run/podsock-notify';

export interface RunPlan {
  /** cidfile path in podsock's runtime directory; must not exist when podman starts (CreateCidFile). */
  cidfile: string;
  /** Host directory holding podsock's notify socket, bind-mounted at CONTAINER_NOTIFY_DIR. */
  notifyDir: string;
  /** File name of the socket inside notifyDir. */
  notifySocketName: string;
  /** Host path of podsock's socket for podman's own READY=1 (`--sdnotify=conmon`); never in the container. */
  podmanNotifySocket: string;
  /** Handover mode: the fds passed at 3.. with their names; null in proxy mode. */
  handover: { names: string[] } | null;
  /** Proxy mode: container ports to publish on loopback (hostPort 0 lets podman pick). */
  publish: PublishedPort[];
  /** Detached (`-d`): where conmon's pid is written (`--conmon-pidfile`); null runs podman attached. */
  conmonPidfile: string | null;
  /** Proxy mode reaching the container from inside its network namespace (container-netns.ts): where podman writes its pid. */
  pidfile: string | null;
  /** The systemd unit podsock runs in, for `podman auto-update` (PODMAN_SYSTEMD_UNIT). */
  unit: string | null;
  /** Relabel the notify mount for SELinux (',z'). */
  selinux: boolean;
}

export interface RunCommand {
  /** Arguments after `podman`. */
  args: string[];
  /** Variables to add to the (scrubbed) environment of the podman process. */
  env: Record<string, string>;
}

/** Build the `podman run` arguments and extra environment for `cfg` under `plan`. */
export function podmanRunCommand(cfg: ServiceConfig, plan: RunPlan): RunCommand {
  const args = [
    'run',
    '--name',
    cfg.containerName,
    '--replace',
    '--rm',
    `--cidfile=${plan.cidfile}`,
    '--sdnotify=conmon',
    // The grace period of any `podman stop` without -t (the unit's ExecStopPost=, auto-update): StopTimeout.
    `--stop-timeout=${Math.max(1, Math.ceil(cfg.stopTimeoutMs / 1000))}`,
    '--log-driver=passthrough',
    '--label',
    `io.podsock.service=${cfg.name}`,
    '--volume',
    `${plan.notifyDir}:${CONTAINER_NOTIFY_DIR}:${plan.selinux ? 'ro,z' : 'ro'}`,
    '--env',
    `NOTIFY_SOCKET=${CONTAINER_NOTIFY_DIR}/${plan.notifySocketName}`,
  ];
  if (plan.conmonPidfile !== null) args.push('--detach', `--conmon-pidfile=${plan.conmonPidfile}`);
  if (plan.pidfile !== null) args.push(`--pidfile=${plan.pidfile}`);
  for (const p of plan.publish) {
    args.push('--publish', `127.0.0.1:${p.hostPort === 0 ? '' : p.hostPort}:${p.containerPort}/${p.protocol ?? 'tcp'}`);
  }
  args.push(...cfg.podmanOptions, cfg.image, ...cfg.command);

  const env: Record<string, string> = { NOTIFY_SOCKET: plan.podmanNotifySocket };
  if (plan.unit !== null) env.PODMAN_SYSTEMD_UNIT = plan.unit;
  if (plan.handover !== null && plan.handover.names.length > 0) {
    env.LISTEN_FDS = String(plan.handover.names.length);
    env.LISTEN_FDNAMES = plan.handover.names.join(':');
  }
  return { args, env };
}

/**
 * The argv that starts `podman` with LISTEN_PID equal to podman's own pid: Node cannot know a child's
 * pid before it exists, so a shell exports `$$` and execs (sd_listen_fds(3) ignores the fds unless
 * LISTEN_PID is the pid of the process reading them). The script is a
 * constant; every user value travels as a positional parameter, never as shell text.
 */
export function trampoline(podman: string, args: readonly string[]): { file: string; args: string[] } {
  return { file: '/bin/sh', args: ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', podman, ...args] };
}

/** Quote an argv for display (check, logs) the way a POSIX shell would read it back. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
