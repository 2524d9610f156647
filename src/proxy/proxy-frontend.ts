/**
 * The frontend for proxy mode: podsock accepts on the adopted (or bound) stream listeners through
 * `Proxy`, holds connections until the container is ready, then pipes each to the backend for its socket
 * (`Backend=PORT`, or `Backend=NAME=PORT` by FileDescriptorName): the container's loopback from inside
 * its network namespace (rootful), or the port published on the host's loopback (rootless). UDP sockets
 * are served as flows (udp-flows.ts); the service is active while a connection or a flow is.
 */
import { q } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServiceConfig } from '../config/load.js';
import type { Backend, Frontend } from '../frontend.js';
import type { ListenFd } from '../sd/listen-fds.js';
import { Proxy, type PipeKind } from './proxy.js';
import { backendIndexFor, isUdpListener, proxyProtocolFor } from './socket-backends.js';
import { lossMessage, UdpFlows, type OpenUdpEngine } from './udp-flows.js';

export interface ProxyFrontendOptions {
  cfg: ServiceConfig;
  /** The data path: the native relay (default) or the JS pipe (PODSOCK_PROXY_PIPE=js, read by the CLI). */
  pipe: PipeKind;
  listeners: readonly ListenFd[];
  log: Logger;
  /** Opens the flow engine of a UDP socket (native/udp-proxy.ts; a parameter for tests). */
  openUdp: OpenUdpEngine;
}

/** Connections held before the container is ready, at most; past this podsock stops accepting. */
const MAX_PENDING = 1024;

export function createProxyFrontend(o: ProxyFrontendOptions): Frontend {
  const streams = o.listeners.filter((l) => !isUdpListener(l));
  const proxy = new Proxy({
    listeners: streams.map((l) => ({ name: l.name, fd: l.fd, proxyProtocol: proxyProtocolFor(o.cfg, l.name) })),
    maxConnections: o.cfg.maxConnections,
    maxPending: Math.min(MAX_PENDING, o.cfg.maxConnections),
    pipe: o.pipe,
    connectionIdleTimeoutMs: o.cfg.connectionIdleTimeoutMs,
  });
  proxy.on('connectionError', (err, info) => o.log.warn({ err, connection: info.id, socket: info.listener }, `${err.message}, closing that connection`));
  proxy.on('connectionTimeout', (info, idleMs) =>
    o.log.info({ connection: info.id, socket: info.listener, idleMs }, `Connection ${info.id} on socket ${q(info.listener)} moved no byte for ${idleMs} ms (ConnectionIdleTimeout=), closing it`),
  );
  proxy.on('warning', (err) => o.log.warn({ err }, `${err.message}, ignoring`));
  proxy.on('error', (err) => o.log.error({ err }, err.message));
  const udp = new UdpFlows({
    listeners: o.listeners.filter(isUdpListener),
    options: (l) => ({ flowTimeoutMs: o.cfg.flowTimeoutMs, maxFlows: o.cfg.maxFlows, proxyV2: proxyProtocolFor(o.cfg, l.name) === 'v2' }),
    backendIndex: (name) => backendIndexFor(o.cfg, name),
    open: o.openUdp,
  });
  udp.on('loss', (socket, totals) => o.log.warn({ socket, ...totals }, lossMessage(socket, totals)));
  udp.on('error', (err, socket) => o.log.error({ err, socket }, `Socket ${q(socket)}: ${err.message}; its datagrams wait in the socket for the next start`));
  const activeCount = (): number => proxy.activeCount + udp.activeCount;
  let activity: ((n: number) => void) | null = null;
  const changed = new EventTarget();
  const report = (): void => {
    activity?.(activeCount());
    if (activeCount() > 0) changed.dispatchEvent(new Event('active'));
  };
  proxy.on('count', report);
  udp.on('count', report);
  let closed = false;

  return {
    async start(): Promise<void> {
      await proxy.start();
      udp.start();
    },
    waitForConnection(signal: AbortSignal): Promise<boolean> {
      if (activeCount() > 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const onActive = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        };
        const onAbort = (): void => {
          changed.removeEventListener('active', onActive);
          resolve(false);
        };
        changed.addEventListener('active', onActive, { once: true });
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    ready(backends: Backend[]): void {
      udp.ready(backends);
      proxy.setTargets((name) => {
        const b = backends[backendIndexFor(o.cfg, name)] ?? backends[0];
        if (b === undefined) throw new Error(`no backend for socket '${name}'`);
        return b.netns === undefined ? { host: b.host, port: b.port } : { host: b.host, port: b.port, netns: b.netns };
      });
    },
    notReady(): void {
      proxy.unsetTargets();
      udp.notReady();
    },
    onActivity(cb) {
      activity = cb;
    },
    activeCount,
    async stopAccepting(): Promise<void> {
      udp.close();
      await proxy.stopAccepting();
    },
    async drain(timeoutMs: number): Promise<void> {
      if (proxy.activeCount === 0) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(t);
          proxy.off('idle', done);
          resolve();
        }
        proxy.once('idle', done);
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      udp.close();
      proxy.destroy();
    },
  };
}
