/**
 * Where proxy mode reaches the container's ports. Rootful (direct): the container's own loopback, from
 * inside its network namespace, opened once the container runs (runtime/container-netns.ts). Otherwise:
 * the loopback ports podsock picked and published, checked once the container runs to be listened on by
 * podsock's uid (runtime/published-port.ts). Handover mode has no backends.
 */
import type { ServiceConfig } from '../config/load.js';
import type { Backend } from '../frontend.js';
import { NETNS_BACKEND_HOST, openContainerNetns } from '../runtime/container-netns.js';
import { checkPublishedPorts } from '../runtime/published-port.js';
import { closeFd } from '../native/fds.js';
import type { RunFiles } from './run-files.js';

export interface PublishedPort {
  hostPort: number;
  containerPort: number;
}

export interface BackendsOptions {
  cfg: ServiceConfig;
  /** Reach the backends inside the container's namespace (needs files.pidfile and files.conmonPidfile). */
  direct: boolean;
  files: RunFiles;
  /** The loopback ports picked for the backends, by backend index (published unless direct). */
  hostPorts: number[];
  /** podsock's uid: published ports must be listened on by it. */
  uid: number;
}

/** One activation's view of the backends; owns the namespace fd, released by `close()` (idempotent). */
export class Backends {
  /** The ports podman publishes (`-p 127.0.0.1:host:container`): none in handover mode or when direct. */
  readonly publish: PublishedPort[];
  private readonly o: BackendsOptions;
  private netns: number | null = null;
  private checked = false;

  constructor(o: BackendsOptions) {
    this.o = o;
    const { cfg } = o;
    this.publish = cfg.mode === 'proxy' && !o.direct ? cfg.backends.map((b, i) => ({ hostPort: o.hostPorts[i] ?? 0, containerPort: b.port })) : [];
  }

  /** The addresses to connect to, in listener order; empty while direct and the namespace is not open yet. */
  list(): Backend[] {
    const { cfg } = this.o;
    if (!this.o.direct) return this.publish.map((p) => ({ host: '127.0.0.1', port: p.hostPort }));
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
