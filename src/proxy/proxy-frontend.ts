/**
 * The frontend for proxy mode: podsock accepts on the adopted (or bound) listeners through `Proxy`,
 * holds connections until the container is ready, then pipes each to the backend for its socket
 * (`Backend=PORT`, or `Backend=NAME=PORT` by FileDescriptorName): the container's loopback from inside
 * its network namespace (rootful), or the port published on the host's loopback (rootless).
 */
import { q } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServiceConfig } from '../config/load.js';
import type { ProxyProtocolVersion } from '../config/podsock-values.js';
import type { Backend, Frontend } from '../frontend.js';
import type { ListenFd } from '../sd/listen-fds.js';
import { Proxy, type PipeKind } from './proxy.js';

export interface ProxyFrontendOptions {
  cfg: ServiceConfig;
  /** The data path: the native relay (default) or the JS pipe (PODSOCK_PROXY_PIPE=js, read by the CLI). */
  pipe: PipeKind;
  listeners: readonly ListenFd[];
  log: Logger;
}

/** Connections held before the container is ready, at most; past this podsock stops accepting. */
const MAX_PENDING = 1024;

/** Which backend (index into cfg.backends) serves the socket named `name`. */
export function backendIndexFor(cfg: ServiceConfig, name: string): number {
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

export function createProxyFrontend(o: ProxyFrontendOptions): Frontend {
  const proxy = new Proxy({
    listeners: o.listeners.map((l) => ({ name: l.name, fd: l.fd, proxyProtocol: proxyProtocolFor(o.cfg, l.name) })),
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
  let activity: ((n: number) => void) | null = null;
  proxy.on('count', (n) => activity?.(n));
  let closed = false;

  return {
    start: () => proxy.start(),
    waitForConnection(signal: AbortSignal): Promise<boolean> {
      if (proxy.activeCount > 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const onActive = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        };
        const onAbort = (): void => {
          proxy.off('active', onActive);
          resolve(false);
        };
        proxy.once('active', onActive);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    ready(backends: Backend[]): void {
      proxy.setTargets((name) => {
        const b = backends[backendIndexFor(o.cfg, name)] ?? backends[0];
        if (b === undefined) throw new Error(`no backend for socket '${name}'`);
        return b.netns === undefined ? { host: b.host, port: b.port } : { host: b.host, port: b.port, netns: b.netns };
      });
    },
    notReady: () => proxy.unsetTargets(),
    onActivity(cb) {
      activity = cb;
    },
    activeCount: () => proxy.activeCount,
    stopAccepting: () => proxy.stopAccepting(),
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
      proxy.destroy();
    },
  };
}
