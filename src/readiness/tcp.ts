/**
 * TCP readiness probe: the backend is ready when it accepts a connection and keeps it.
 *
 * "Accepts" alone is not enough. With rootless podman, a published port is held on the host by
 * rootlessport (or slirp4netns' port forwarder), which accepts every connection itself and only then
 * connects to the app inside the container; while the app does not listen yet, that inner connect fails
 * and the forwarder closes or resets the outer connection a moment after accepting it. So a connection
 * only counts as ready when, within a short grace window after connecting, the peer neither closes
 * ('end') nor resets ('error') it; a peer that sends data first (a banner: SMTP, SSH, Redis' errors...) is
 * ready at once. A rootful port mapping is a DNAT rule instead: observed with podman 4.3.1 (root, default
 * bridge network, `-p 127.0.0.1:PORT:8080`), every connect was refused (ECONNREFUSED) until the app listened,
 * then accepted; there the grace window only delays the verdict by graceMs once.
 * A backend that accepts, waits longer than graceMs and then closes is indistinguishable from a ready one.
 */

import { connectTcp } from '../proxy/netns-connect.js';
import { pollUntil, type BackoffOptions } from './backoff.js';
import { DEFAULT_GRACE_MS } from './tcp-grace.js';

export { DEFAULT_GRACE_MS };

export interface TcpProbeOptions {
  host: string;
  port: number;
  /** Connect from inside this network namespace (an open /proc/PID/ns/net). */
  netns?: number;
  signal: AbortSignal;
  /** How long one connect may take before it counts as a failed attempt. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** How long a fresh connection must survive to count as accepted by the app. Default 150 ms. */
  graceMs?: number;
  backoff?: Partial<BackoffOptions>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/**
 * Resolve when `host:port` accepts a TCP connection that survives `graceMs` (or delivers data sooner),
 * retrying with backoff after refusals, resets, early closes and connect timeouts. The probe connection is
 * closed before resolving. Rejects only when `signal` aborts, with `signal.reason`, leaving no socket or
 * timer behind.
 */
export async function waitTcpReady(options: TcpProbeOptions): Promise<void> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  await pollUntil(
    (signal) => probeTcpOnce({ host: options.host, port: options.port, ...(options.netns === undefined ? {} : { netns: options.netns }), signal, connectTimeoutMs, graceMs }),
    { signal: options.signal, ...(options.backoff === undefined ? {} : { backoff: options.backoff }) },
  );
}

/**
 * One attempt: true when the connection is up and survived the grace window (or the peer sent data),
 * false on any failure or on abort. Never rejects; always destroys its socket and clears its timer.
 */
export function probeTcpOnce(options: {
  host: string;
  port: number;
  netns?: number;
  signal: AbortSignal;
  connectTimeoutMs: number;
  graceMs: number;
}): Promise<boolean> {
  const { signal } = options;
  if (signal.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let done = false;
    const socket = connectTcp({ host: options.host, port: options.port, ...(options.netns === undefined ? {} : { netns: options.netns }) });
    let timer = setTimeout(() => finish(false), options.connectTimeoutMs);
    const onAbort = (): void => finish(false);
    function finish(ready: boolean): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(ready);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(true), options.graceMs);
    });
    socket.once('data', () => finish(true));
    socket.once('end', () => finish(false));
    socket.on('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}
