/**
 * One entry point for every readiness strategy (`Ready=`): picks the strategy for the configured spec
 * and resolves when the container is ready. It never decides failure: the supervisor races this against
 * the container's exit and the StartTimeout deadline and aborts `signal` when either wins.
 *
 * - started: podman has created the container (cidfile written) and it is running. In handover mode
 *   that is enough: the kernel queues connections until the app accepts them.
 * - notify: the container sent READY=1 on podsock's notify socket (`notified` resolves).
 * - tcp, http: the backend port accepts a connection / answers 2xx-3xx (proxy mode).
 * - healthy: `podman healthcheck run` passes.
 */
import type { ReadySpec } from '../config/load.js';
import { abortable } from './backoff.js';

export interface ReadyContext {
  signal: AbortSignal;
  /** Resolves with the container id once it runs (cidfile + podman wait). */
  running: () => Promise<string>;
  /** Resolves when the container sent READY=1. */
  notified: Promise<void>;
  /** Backend address for probes (proxy mode), once running() resolved; `netns`: connect from inside that network namespace. */
  backend: () => { host: string; port: number; netns?: number } | null;
  /** How long a TCP probe's connection must survive to count (tcpGraceFor). */
  tcpGraceMs: number;
  /** Runs a podman command (for the healthcheck). */
  podman: (args: string[], signal: AbortSignal) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

/** Resolve when the container is ready by `spec`; reject only when ctx.signal aborts. */
export async function waitReady(spec: ReadySpec, ctx: ReadyContext): Promise<void> {
  switch (spec.kind) {
    case 'started':
      await ctx.running();
      return;
    case 'notify':
      await abortable(ctx.notified, ctx.signal);
      return;
    case 'tcp':
    case 'http': {
      await ctx.running();
      const b = ctx.backend();
      if (b === null) throw new Error('no backend address for the readiness probe');
      // The probes load on use: node:net and node:http are no part of a handover start.
      if (spec.kind === 'tcp') await (await import('./tcp.js')).waitTcpReady({ ...b, signal: ctx.signal, graceMs: ctx.tcpGraceMs });
      else await (await import('./http.js')).waitHttpReady({ ...b, path: spec.path, signal: ctx.signal });
      return;
    }
    case 'healthy': {
      const cid = await ctx.running();
      const { waitHealthy } = await import('./healthy.js');
      await waitHealthy({ container: cid, signal: ctx.signal, run: (args) => ctx.podman(args, ctx.signal) });
      return;
    }
  }
}
