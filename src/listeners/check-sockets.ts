/**
 * Whether the sockets podsock was given can serve the configured mode: stream sockets must be
 * listening (Accept=no), proxy mode needs listening stream sockets or UDP sockets (served as flows,
 * proxy/udp-frontend.ts), and with named backends every
 * socket's name (FileDescriptorName=) must have one. Pure.
 */
import type { ServiceConfig } from '../config/load.js';
import { PodsockError, q } from '../errors.js';
import { describeFd, type ListenFd } from '../sd/listen-fds.js';
import { isUdpListener, proxyProtocolFor } from '../proxy/socket-backends.js';

/** Throws PodsockError 'PODSOCK_ERR_BAD_SOCKET' (or 'PODSOCK_ERR_CONFIG' for a socket without a backend), naming the socket. */
export function checkSockets(
  cfg: Pick<ServiceConfig, 'mode' | 'backends'> & Partial<Pick<ServiceConfig, 'ready' | 'proxyProtocol'>>,
  listeners: readonly ListenFd[],
): void {
  for (const l of listeners) {
    if (l.family !== 'other' && l.type === 'stream' && !l.listening) {
      throw new PodsockError(
        'PODSOCK_ERR_BAD_SOCKET',
        `Socket ${describeFd(l)} is a connection, not a listening socket: use Accept=no (the default) in the .socket unit`,
      );
    }
    const udp = isUdpListener(l);
    if (cfg.mode === 'proxy' && udp && proxyProtocolFor({ proxyProtocol: cfg.proxyProtocol ?? [] }, l.name) === 'v1') {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `Socket ${describeFd(l)}: ProxyProtocol=v1 has no form for datagrams (the text header is for TCP); use v2, which puts its header on every datagram, or off for this socket (e.g. 'ProxyProtocol=${l.name}=v2')`,
      );
    }
    if (cfg.mode === 'proxy' && !udp && (l.type !== 'stream' || l.family === 'other')) {
      throw new PodsockError(
        'PODSOCK_ERR_BAD_SOCKET',
        `Socket ${describeFd(l)} cannot be proxied: proxy mode serves listening stream sockets (ListenStream=) and UDP sockets (ListenDatagram= on an IP address); use Mode=handover for the others`,
      );
    }
  }
  const probe = cfg.ready?.kind;
  if (cfg.mode === 'proxy' && (probe === 'tcp' || probe === 'http') && listeners.length > 0 && listeners.every((l) => l.type === 'dgram')) {
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `Ready=${probe} probes the backend over TCP, but every socket of this service is a datagram socket (${listeners.map(describeFd).join(', ')}): ` +
        'set Ready=notify (the app sends READY=1), Ready=healthy (its HealthCmd=) or Ready=started (datagrams refused while it starts are sent again)',
    );
  }
  if (cfg.mode === 'proxy' && cfg.backends.some((b) => b.name !== null)) {
    for (const l of listeners) {
      if (!cfg.backends.some((b) => b.name === l.name)) {
        throw new PodsockError(
          'PODSOCK_ERR_CONFIG',
          `Socket ${q(l.name)} has no backend: Backend= names ${cfg.backends.map((b) => q(b.name)).join(', ')} (set FileDescriptorName= in the .socket unit to match)`,
        );
      }
    }
  }
}
