/**
 * Reaching a rootful proxy-mode container's app without publishing anything on the host: podsock
 * creates each backend socket inside the container's network namespace (native/netns.c) and connects
 * to the container's own loopback, 127.0.0.1:PORT. Nothing listens on the host for it, so the socket
 * unit's access control (SocketMode=, IPAddressAllow=) is the only way in; no address is taken from the
 * container's view of its network (a container with CAP_NET_ADMIN may add addresses and routes, but
 * its loopback is where podsock connects whatever it adds); and it works with `--network none`.
 *
 * The namespace is that of the container's first process, named by podman's `--pidfile`, opened once
 * per start. That process must be a child of the conmon podsock watches (`--conmon-pidfile`; conmon is
 * the container's subreaper, conmon src/conmon.c): a pid file naming any other process is refused.
 * Both the parent and the namespace are read through one /proc/PID fd, so a pid reused in between
 * cannot pass for the container (native/netns.c).
 *
 * Rootless podman keeps the container in a user namespace podsock is not in, and setns(2) into its
 * network namespace needs CAP_SYS_ADMIN there: rootless proxy mode publishes on 127.0.0.1 instead
 * (published-port.ts).
 */
import { readFileSync } from 'node:fs';
import { PodsockError, q } from '../errors.js';
import { addonAvailable } from '../native/addon.js';
import { closeFd } from '../native/fds.js';
import { netnsOpen, netnsSocket } from '../native/netns.js';

/** Where podsock connects inside the container's namespace: its loopback. */
export const NETNS_BACKEND_HOST = '127.0.0.1';

/** Whether proxy mode reaches the container from inside its network namespace: rootful, with the addon's netns support and conmon watched. */
export function netnsBackendPossible(o: { rootless: boolean; detached: boolean; netns?: boolean }): boolean {
  return !o.rootless && o.detached && (o.netns ?? addonAvailable());
}

/** The pid podman wrote to `pidfile`, or null while there is none (yet). */
export function readPidfile(pidfile: string): number | null {
  try {
    const text = readFileSync(pidfile, 'utf8').trim();
    return /^[1-9]\d{0,9}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * Why process `pid`, whose parent is `ppid`, is not the container's first process under conmon
 * `conmonPid`, or null when it is. Pure.
 */
export function notTheContainer(pid: number, ppid: number, conmonPid: number): string | null {
  if (pid === conmonPid) return `pid ${pid} is conmon itself`;
  if (ppid !== conmonPid) return `process ${pid} is not a child of the container's conmon (its parent is ${ppid}, conmon is ${conmonPid})`;
  return null;
}

/**
 * An fd of the network namespace of the container whose first process `pidfile` names and whose
 * conmon `conmonPidfile` names. The caller owns it (closeFd). Throws PODSOCK_ERR_PODMAN naming what
 * was missing or wrong.
 */
export function openContainerNetns(pidfile: string, conmonPidfile: string, containerName: string): number {
  const fail = (why: string, cause?: unknown): PodsockError =>
    new PodsockError('PODSOCK_ERR_PODMAN', `Cannot reach container ${q(containerName)}: ${why}`, cause === undefined ? {} : { cause });
  const pid = readPidfile(pidfile);
  if (pid === null) throw fail(`podman wrote no container pid to ${q(pidfile)}`);
  const conmon = readPidfile(conmonPidfile);
  if (conmon === null) throw fail(`podman wrote no conmon pid to ${q(conmonPidfile)}`);
  let ns: { fd: number; ppid: number };
  try {
    ns = netnsOpen(pid);
  } catch (err) {
    throw fail(`cannot open its network namespace (pid ${pid}): ${(err as Error).message}`, err);
  }
  const wrong = notTheContainer(pid, ns.ppid, conmon);
  if (wrong !== null) {
    closeFd(ns.fd);
    throw fail(`${wrong}; refusing to use its network namespace`);
  }
  // One socket now, so that a missing capability fails the start once instead of every connection.
  try {
    closeFd(netnsSocket(ns.fd, 4));
  } catch (err) {
    closeFd(ns.fd);
    throw fail(
      `cannot create a socket in its network namespace: ${(err as Error).message} (rootful proxy mode needs CAP_SYS_ADMIN for setns(2): ` +
        'keep it in the unit\'s CapabilityBoundingSet=)',
      err,
    );
  }
  return ns.fd;
}
