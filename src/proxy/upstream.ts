/**
 * Connecting to the container's backend, with a bounded retry.
 *
 * systemd-socket-proxyd closes the client as soon as one connect() fails (systemd's
 * src/socket-proxy/socket-proxyd.c: no retry).
 * podsock only connects once the container reported ready, so a failure here means the app is
 * momentarily not accepting (a restart of its listener, a full accept queue: a unix socket with a
 * full backlog fails with EAGAIN at once). A few attempts with a short doubling backoff ride that
 * out; after the last one the caller closes that one client.
 */
import { connect, type Socket } from 'node:net';
import { connectTcp } from './netns-connect.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodsockError, q } from '../errors.js';

/**
 * Where a listener's connections go: a TCP host and port (`netns`: connected from inside that network
 * namespace, runtime/container-netns.ts), or a unix socket path.
 */
export type Target = { host: string; port: number; netns?: number } | { path: string };

export interface ConnectOptions {
  /** Per-attempt deadline for connect(). */
  timeoutMs: number;
  /** Total attempts, at least 1. */
  attempts: number;
  /** Delay before the second attempt; doubles for each further one. */
  backoffMs: number;
  /** highWaterMark for the upstream socket's buffers in both directions. */
  highWaterMark: number;
  /** Aborting stops the attempts and rejects with the signal's reason. */
  signal: AbortSignal;
}

/** 'host:port' or the path, for messages. */
export function describeTarget(target: Target): string {
  if ('path' in target) return target.path;
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/**
 * Connect to `target`, retrying failed attempts up to `attempts` times in total. Resolves with a
 * connected socket (allowHalfOpen, noDelay on TCP) that the caller owns. Rejects with
 * PODSOCK_ERR_BACKEND (the last attempt's error on `cause`) when every attempt failed, or with
 * `signal.reason` when aborted; no socket is left open in either case.
 */
export async function connectUpstream(target: Target, opts: ConnectOptions): Promise<Socket> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    try {
      opts.signal.throwIfAborted();
      if (attempt > 1) await sleep(retryDelayMs(opts.backoffMs, attempt), undefined, { signal: opts.signal });
      return await connectOnce(target, opts);
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason;
      lastError = err;
    }
  }
  throw connectFailed(target, opts.attempts, lastError);
}

/**
 * The PODSOCK_ERR_BACKEND error for a backend that could not be reached in `attempts` attempts, the
 * last one failing with `lastError` (its errno name in the message, the error itself on `cause`).
 */
export function connectFailed(target: Target, attempts: number, lastError: unknown): PodsockError {
  const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
  return new PodsockError(
    'PODSOCK_ERR_BACKEND',
    `Failed to connect to backend ${q(describeTarget(target))} after ${attempts} attempt(s): ${
      code ?? (lastError as Error | undefined)?.message ?? 'unknown error'
    }`,
    { cause: lastError, details: { target: describeTarget(target), attempts } },
  );
}

/**
 * `err` from reaching the backend of a connection on `listener` as PODSOCK_ERR_BACKEND (a PodsockError
 * as it is), naming the target when it is known (a target resolver that threw has none).
 */
export function backendError(err: unknown, listener: string, target?: Target): PodsockError {
  if (err instanceof PodsockError) return err;
  const where = target === undefined ? '' : ` ${q(describeTarget(target))}`;
  return new PodsockError(
    'PODSOCK_ERR_BACKEND',
    `No backend${where} for a connection on socket ${q(listener)}: ${(err as Error)?.message ?? String(err)}`,
    { cause: err, details: { listener } },
  );
}

/** Delay before attempt number `attempt` (2, 3...): `backoffMs`, doubling for each further attempt. */
export function retryDelayMs(backoffMs: number, attempt: number): number {
  return backoffMs * 2 ** (attempt - 2);
}

function connectOnce(target: Target, opts: ConnectOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    // readable/writableHighWaterMark reach stream.Duplex through net.Socket's options (not in @types/node).
    const common = {
      allowHalfOpen: true,
      readableHighWaterMark: opts.highWaterMark,
      writableHighWaterMark: opts.highWaterMark,
    };
    const socket =
      'path' in target
        ? connect({ ...common, path: target.path })
        : connectTcp({ ...common, host: target.host, port: target.port, noDelay: true, ...(target.netns === undefined ? {} : { netns: target.netns }) });
    const settle = (err: Error | null): void => {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onConnect = (): void => settle(null);
    const onError = (err: Error): void => settle(err);
    const onAbort = (): void => settle(opts.signal.reason as Error);
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`connect ETIMEDOUT ${describeTarget(target)}`);
      err.code = 'ETIMEDOUT';
      settle(err);
    }, opts.timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
}
