/**
 * HTTP readiness probe: the backend is ready when `GET <path>` answers with a 2xx or 3xx status.
 *
 * Each attempt is a fresh HTTP/1.1 connection (`agent: false` or its own `createConnection`, `Connection: close`), so no pooled socket
 * outlives the probe or carries over into the proxied traffic. `Host: localhost`, because the probe talks to
 * the container over loopback and virtual hosts usually have a localhost default. Only the status line and
 * headers are read (Node's parser caps them at --max-http-header-size, 16 KiB by default); the body is
 * never read, the socket is destroyed as soon as the status is known. Any other status, a connection error,
 * a reset, or no status within requestTimeoutMs is "not yet", and the probe retries with backoff.
 */

import http from 'node:http';
import { connectTcp } from '../proxy/netns-connect.js';
import { PodsockError, q } from '../errors.js';
import { pollUntil, type BackoffOptions } from './backoff.js';

export interface HttpProbeOptions {
  host: string;
  port: number;
  /** Connect from inside this network namespace (an open /proc/PID/ns/net). */
  netns?: number;
  /** Request target: an absolute path, optionally with a query (`/healthz?full=1`). */
  path: string;
  signal: AbortSignal;
  /** How long one request may take until the status line and headers arrive. Default 2000 ms. */
  requestTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 2000;

// An origin-form request target (RFC 9112 3.2.1): starts with '/', visible ASCII only, no '#'.
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

/**
 * Resolve when `GET path` on `host:port` returns a status from 200 to 399, retrying with backoff otherwise.
 * Rejects when `signal` aborts, with `signal.reason`, leaving no socket or timer behind; and at once with
 * PODSOCK_ERR_CONFIG when `path` is not an origin-form request target, since no retry could fix that
 * (configuration validation should have refused it already).
 */
export async function waitHttpReady(options: HttpProbeOptions): Promise<void> {
  if (!ORIGIN_FORM.test(options.path) || options.path.includes('#')) {
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `Invalid HTTP readiness path ${q(options.path)}: expected an absolute path such as '/healthz' without spaces or '#'`,
      { details: { path: options.path } },
    );
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  await pollUntil(
    (signal) => probeHttpOnce({ host: options.host, port: options.port, ...(options.netns === undefined ? {} : { netns: options.netns }), path: options.path, signal, requestTimeoutMs }),
    { signal: options.signal, ...(options.backoff === undefined ? {} : { backoff: options.backoff }) },
  );
}

/**
 * One attempt: resolves with the response status (a number), or `null` when the request failed, timed out or
 * was aborted. Never rejects; always destroys its socket and clears its timer.
 */
export function requestStatus(options: {
  host: string;
  port: number;
  netns?: number;
  path: string;
  signal: AbortSignal;
  requestTimeoutMs: number;
}): Promise<number | null> {
  const { signal } = options;
  if (signal.aborted) return Promise.resolve(null);
  return new Promise<number | null>((resolve) => {
    let done = false;
    const req = http.request({
      host: options.host,
      port: options.port,
      path: options.path,
      method: 'GET',
      // A fresh connection each time: no agent (agent: false would make a new Agent, which ignores createConnection).
      ...(options.netns === undefined
        ? { agent: false as const }
        : { createConnection: () => connectTcp({ host: options.host, port: options.port, netns: options.netns as number }) }),
      headers: { Host: 'localhost', Connection: 'close' },
    });
    const timer = setTimeout(() => finish(null), options.requestTimeoutMs);
    const onAbort = (): void => finish(null);
    function finish(status: number | null): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(status);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('response', (res) => {
      res.on('error', () => {});
      res.destroy();
      finish(res.statusCode ?? null);
    });
    req.on('error', () => finish(null));
    req.once('close', () => finish(null));
    req.end();
  });
}

/** One attempt: true for a 2xx or 3xx answer. */
export async function probeHttpOnce(options: Parameters<typeof requestStatus>[0]): Promise<boolean> {
  const status = await requestStatus(options);
  return status !== null && status >= 200 && status < 400;
}
