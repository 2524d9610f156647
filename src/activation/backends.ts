/**
 * Where proxy mode reaches the container's ports. Rootful (direct): the container's own loopback, from
 * inside its network namespace, opened once the container runs (runtime/container-netns.ts). Otherwise:
 * the loopback ports podsock picked and published, checked once the container runs to be listened on by
 * podsock's uid (runtime/published-port.ts). Handover mode has no backends.
 */
import type { ServiceConfig } from '../config/load.js';
import type { Backend } from '../frontend.js';
import { NETNS_BACKEND_HOST, openContainerNetns } from '../runtime/container-netns.js';
import { checkPublishedPorts, type PublishedPort } from '../runtime/published-port.js';
import { closeFd } from '../native/fds.js';
import type { RunFiles } from './run-files.js';

export interface BackendsOptions {
  cfg: ServiceConfig;
  /** Reach the backends inside the container's namespace (needs files.pidfile and files.conmonPidfile). */
  direct: boolean;
  files: RunFiles;
  /** The loopback ports picked for the backends, by backend index (published unless direct). */
  hostPorts: number[];
  /** The same for the backends that datagram sockets use, published as /udp; null where none does. */
  udpHostPorts?: ReadonlyArray<number | null>;
  /** podsock's uid: published ports must be listened on by it. */
  uid: number;
}

/** One activation's view of the backends; owns the namespace fd, released by `close()` (idempotent). */
export class Backends {
  /** The ports podman publishes (`-p 127.0.0.1:host:container/tcp`, and `/udp` for datagram sockets): none in handover mode or when direct. */
  readonly publish: PublishedPort[];
  private readonly o: BackendsOptions;
  private netns: number | null = null;
  private checked = false;

  constructor(o: BackendsOptions) {
    this.o = o;
    const { cfg } = o;
    this.publish = [];
    if (cfg.mode !== 'proxy' || o.direct) return;
    cfg.backends.forEach((b, i) => this.publish.push({ hostPort: o.hostPorts[i] ?? 0, containerPort: b.port }));
    cfg.backends.forEach((b, i) => {
      const udp = o.udpHostPorts?.[i];
      if (udp !== undefined && udp !== null) this.publish.push({ hostPort: udp, containerPort: b.port, protocol: 'udp' });
    });
  }

  /** The addresses to connect to, in listener order; empty while direct and the namespace is not open yet. */
  list(): Backend[] {
    const { cfg } = this.o;
    if (!this.o.direct) {
      return cfg.mode !== 'proxy'
        ? []
        : cfg.backends.map((_, i) => {
            const udp = this.o.udpHostPorts?.[i];
            const port = this.o.hostPorts[i] ?? 0;
            return udp === undefined || udp === null ? { host: '127.0.0.1', port } : { host: '127.0.0.1', port, udpPort: udp };
          });
    }
    const netns = this.netns;
    return netns === null ? [] : cfg.backends.map((b) => ({ host: NETNS_BACKEND_HOST, port: b.port, netns }));
  }

  /** Once the container runs (at most once): open its namespace, or check that the published ports are podsock's own. Throws when they cannot be reached safely. */
  reach(): void {
    const { cfg, files } = this.o;
    if (cfg.mode !== 'proxy' || this.checked) return;
    if (files.pidfile !== null && files.conmonPidfile !== null) this.netns = openContainerNetns(files.pidfile, files.conmonPidfile, cfg.containerName);
    else checkPublishedPorts(this.publish, this.o.uid, cfg.containerName);
    this.checked = true;
  }

  close(): void {
    if (this.netns !== null) closeFd(this.netns);
    this.netns = null;
  }
}
