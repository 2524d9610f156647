/**
 * Rootless proxy mode publishes each backend on 127.0.0.1:PORT, a port podsock picks before podman
 * starts (podman cannot join the container's network namespace for it, see container-netns.ts). Any
 * local user can connect to that port, and between the pick and podman's bind any local user can take
 * it. So before the first byte goes there, podsock checks that the port's listener belongs to its own
 * uid (podman's port forwarder, rootlessport or slirp4netns, runs as the user), by the uid column of
 * the LISTEN row in /proc/net/tcp (proc(5)), or for a UDP port (proxy mode's flows) of the unconnected
 * socket bound there in /proc/net/udp (the same columns; state 07, unconnected); a foreign listener, or
 * none (podman drops published ports with Network=none or host), fails the start instead of sending
 * clients' bytes to it.
 */
import { readFileSync } from 'node:fs';
import { PodsockError, q } from '../errors.js';
import { parseProcNetTcp, TCP_STATE } from '../idle/proc-net.js';

/** The host address rootless proxy mode publishes on. */
export const PUBLISH_HOST = '127.0.0.1';

/** A port podman publishes: `-p 127.0.0.1:hostPort:containerPort/protocol` (TCP when unset). */
export interface PublishedPort {
  hostPort: number;
  containerPort: number;
  protocol?: 'tcp' | 'udp';
}

/**
 * The uids owning a TCP listener (or, `udp`, an unconnected UDP socket) on `host:port` (IPv4) in a
 * /proc/net/tcp (/proc/net/udp) text: empty when nothing listens there, one uid normally, more with
 * SO_REUSEPORT. Pure.
 */
export function listenerUids(procNet: string, host: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): number[] {
  const uids = new Set<number>();
  // An unconnected UDP socket shows the state TCP_CLOSE (net/ipv4/udp.c, udp4_format_sock()).
  const bound = protocol === 'tcp' ? TCP_STATE.LISTEN : TCP_STATE.CLOSE;
  for (const row of parseProcNetTcp(procNet, false)) {
    if (row.state !== bound || row.localPort !== port || (protocol === 'udp' && row.remotePort !== 0)) continue;
    if (row.localAddress === host || row.localAddress === '0.0.0.0') uids.add(row.uid);
  }
  return [...uids];
}

/**
 * Why the listeners `uids` on PUBLISH_HOST:`hostPort` are not podsock's (`uid`) forwarder for container
 * port `containerPort`, or null when they are. Pure.
 */
export function foreignListener(uids: readonly number[], uid: number, hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): string | null {
  const where = `${PUBLISH_HOST}:${hostPort}${protocol === 'udp' ? '/udp' : ''}`;
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
 * /proc/net/tcp or /proc/net/udp (a parameter for tests).
 */
export function checkPublishedPorts(
  publish: readonly PublishedPort[],
  uid: number,
  containerName: string,
  read: (protocol: 'tcp' | 'udp') => string = (protocol) => readFileSync(`/proc/net/${protocol}`, 'utf8'),
): void {
  const texts = new Map<'tcp' | 'udp', string>();
  for (const p of publish) {
    const protocol = p.protocol ?? 'tcp';
    let text = texts.get(protocol);
    if (text === undefined) texts.set(protocol, (text = read(protocol)));
    const why = foreignListener(listenerUids(text, PUBLISH_HOST, p.hostPort, protocol), uid, p.hostPort, p.containerPort, protocol);
    if (why !== null) throw new PodsockError('PODSOCK_ERR_BACKEND', `Refusing to proxy to container ${q(containerName)}: ${why}`);
  }
}
