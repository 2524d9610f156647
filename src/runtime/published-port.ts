/**
 * Rootless proxy mode publishes each backend on 127.0.0.1:PORT, a port podsock picks before podman
 * starts (podman cannot join the container's network namespace for it, see container-netns.ts). Any
 * local user can connect to that port, and between the pick and podman's bind any local user can take
 * it. So before the first byte goes there, podsock checks that the port's listener belongs to its own
 * uid (podman's port forwarder, rootlessport or slirp4netns, runs as the user), by the uid column of
 * the LISTEN row in /proc/net/tcp (proc(5)); a foreign listener, or none (podman drops published ports
 * with Network=none or host), fails the start instead of sending clients' bytes to it.
 */
import { readFileSync } from 'node:fs';
import { PodsockError, q } from '../errors.js';
import { parseProcNetTcp, TCP_STATE } from '../idle/proc-net.js';

/** The host address rootless proxy mode publishes on. */
export const PUBLISH_HOST = '127.0.0.1';

/**
 * The uids owning a TCP listener on `host:port` (IPv4) in a /proc/net/tcp text: empty when nothing
 * listens there, one uid normally, more with SO_REUSEPORT. Pure.
 */
export function listenerUids(procNetTcp: string, host: string, port: number): number[] {
  const uids = new Set<number>();
  for (const row of parseProcNetTcp(procNetTcp, false)) {
    if (row.state !== TCP_STATE.LISTEN || row.localPort !== port) continue;
    if (row.localAddress === host || row.localAddress === '0.0.0.0') uids.add(row.uid);
  }
  return [...uids];
}

/**
 * Why the listeners `uids` on PUBLISH_HOST:`hostPort` are not podsock's (`uid`) forwarder for container
 * port `containerPort`, or null when they are. Pure.
 */
export function foreignListener(uids: readonly number[], uid: number, hostPort: number, containerPort: number): string | null {
  const where = `${PUBLISH_HOST}:${hostPort}`;
  if (uids.length === 0) {
    return `nothing listens on ${q(where)} for container port ${containerPort} (podman drops published ports with Network=none or host; rootless proxy mode needs a container network)`;
  }
  const others = uids.filter((u) => u !== uid);
  if (others.length > 0) {
    return `${q(where)}, published for container port ${containerPort}, is listened on by uid ${others.join(', ')}, not by podsock's uid ${uid}: another local user took the port`;
  }
  return null;
}

/**
 * Throw PODSOCK_ERR_BACKEND unless every published port is listened on by `uid` alone. `read` returns
 * /proc/net/tcp (a parameter for tests).
 */
export function checkPublishedPorts(
  publish: ReadonlyArray<{ hostPort: number; containerPort: number }>,
  uid: number,
  containerName: string,
  read: () => string = () => readFileSync('/proc/net/tcp', 'utf8'),
): void {
  if (publish.length === 0) return;
  const text = read();
  for (const p of publish) {
    const why = foreignListener(listenerUids(text, PUBLISH_HOST, p.hostPort), uid, p.hostPort, p.containerPort);
    if (why !== null) throw new PodsockError('PODSOCK_ERR_BACKEND', `Refusing to proxy to container ${q(containerName)}: ${why}`);
  }
}
