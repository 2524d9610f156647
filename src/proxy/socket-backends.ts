/**
 * Which backend serves which socket in proxy mode (`Backend=PORT`, or `Backend=NAME=PORT` by
 * FileDescriptorName=), and over which protocols: a stream socket's backend is reached over TCP, a
 * datagram socket's over UDP, and a name with both (a socket unit with ListenStream=53 and
 * ListenDatagram=53) uses the same container port for both. Pure.
 */
import type { ServiceConfig } from '../config/load.js';
import type { ProxyProtocolVersion } from '../config/podsock-values.js';
import type { ListenFd } from '../sd/listen-fds.js';

/** Which backend (index into cfg.backends) serves the socket named `name`. */
export function backendIndexFor(cfg: Pick<ServiceConfig, 'backends'>, name: string): number {
  const byName = cfg.backends.findIndex((b) => b.name === name);
  if (byName !== -1) return byName;
  const unnamed = cfg.backends.findIndex((b) => b.name === null);
  return unnamed === -1 ? 0 : unnamed;
}

/**
 * Which PROXY protocol header (ProxyProtocol=) goes to the backend of the socket named `name`: its own
 * NAME=VERSION, else the version given for every socket, else 'off'.
 */
export function proxyProtocolFor(cfg: Pick<ServiceConfig, 'proxyProtocol'>, name: string): ProxyProtocolVersion {
  const p = cfg.proxyProtocol.find((x) => x.name === name) ?? cfg.proxyProtocol.find((x) => x.name === null);
  return p?.version ?? 'off';
}

/** A datagram socket proxy mode serves as UDP flows (checkSockets refuses other datagram sockets). */
export function isUdpListener(l: Pick<ListenFd, 'type' | 'family'>): boolean {
  return l.type === 'dgram' && (l.family === 'inet' || l.family === 'inet6');
}

/** For each backend (by index), the protocols its sockets need: TCP for stream sockets, UDP for datagram ones. */
export function backendProtocols(cfg: Pick<ServiceConfig, 'backends'>, listeners: readonly ListenFd[]): Array<{ tcp: boolean; udp: boolean }> {
  const out = cfg.backends.map(() => ({ tcp: false, udp: false }));
  for (const l of listeners) {
    const p = out[backendIndexFor(cfg, l.name)];
    if (p === undefined) continue;
    if (isUdpListener(l)) p.udp = true;
    else p.tcp = true;
  }
  return out;
}
